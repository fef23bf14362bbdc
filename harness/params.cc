#include "harness/params.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>
#include <string_view>

#include "harness/errors.h"
#include "harness/generator.h"
#include "harness/registry.h"

namespace zc {
namespace {

using nlohmann::json;
using Texts = std::vector<std::string>;

Texts one(std::string v) { return Texts{std::move(v)}; }

}  // namespace

std::string format_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

namespace {

double parse_number(const std::string& what, const std::string& s) {
  try {
    size_t pos = 0;
    double d = std::stod(s, &pos);
    if (pos != s.size()) throw std::invalid_argument(s);
    return d;
  } catch (const std::exception&) {
    throw UsageError(what + " '" + s + "' is not a number");
  }
}

}  // namespace

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t c = s.find(sep, start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

std::string join_list(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

namespace {

bool bounded(const Param& p) { return p.min != 0 || p.max != 0; }

std::string range_text(const Param& p) {
  if (p.min_exclusive) return "> " + format_number(p.min) + " and <= " + format_number(p.max);
  return format_number(p.min) + ".." + format_number(p.max);
}

void check_range(const Param& p, const std::string& name, double v, const std::string& text) {
  if (!bounded(p)) return;
  bool low = p.min_exclusive ? !(v > p.min) : !(v >= p.min);
  if (low || !(v <= p.max))
    throw UsageError(name + " " + text + p.unit + " is not accepted; accepted: " + range_text(p));
}

json typed(const Param& p, const Texts& v) {
  switch (p.type) {
    case ParamType::integer:
    case ParamType::cpu: return v.empty() ? json(0) : json(std::stoll(v[0]));
    case ParamType::number: return v.empty() ? json(0) : json(std::stod(v[0]));
    case ParamType::flag: return !v.empty();
    case ParamType::cpu_list: return v.empty() ? json::array() : json(parse_cpu_list("", v[0]));
    case ParamType::list:
    case ParamType::key_value: return v;
    default: return v.empty() ? json("") : json(v[0]);
  }
}

std::string help_default(const Param& p) {
  if (p.help.find("default") != std::string::npos) return "";
  if (!p.default_note.empty()) return " (default: " + p.default_note + ")";
  if (p.type == ParamType::flag || p.type == ParamType::key_value) return "";
  Texts d = p.get(TrialSpec{});
  if (d.empty()) return "";
  return " (default " + d[0] + ")";
}

// Shell-quotes a value for the printed command where it needs it.
std::string quote(const std::string& v) {
  bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_.,:=/+@%").find(c) != std::string_view::npos;
  });
  if (plain) return v;
  std::string q = "'";
  for (char c : v) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> command_names(unsigned commands) {
  std::vector<std::string> v;
  for (Command c : {kRun, kSend, kSink})
    if (commands & c) v.push_back(command_name(c));
  return v;
}

// A suite value as the text(s) check_param_value takes, type-checked.
Texts suite_texts(const Param& p, const std::string& key, const json& v, const std::string& where) {
  auto bad = [&](const std::string& want) { return UsageError(where + ": " + key + " must be " + want + ", got " + v.dump()); };
  auto whole = [&]() -> std::string {
    if (v.is_number_integer()) return v.dump();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return format_number(v.get<double>());
    throw bad("a whole number");
  };
  switch (p.type) {
    case ParamType::integer:
    case ParamType::cpu: return one(whole());
    case ParamType::number:
      if (!v.is_number()) throw bad("a number");
      return one(format_number(v.get<double>()));
    case ParamType::rate:
      if (v.is_string() && v.get<std::string>() == "max") return one("max");
      if (!v.is_number()) throw bad("a number or \"max\"");
      return one(format_number(v.get<double>()));
    case ParamType::size:
      if (v.is_string()) return one(v.get<std::string>());
      return one(whole());
    case ParamType::flag:
      if (!v.is_boolean()) throw bad("true or false");
      return one(v.get<bool>() ? "on" : "off");
    case ParamType::cpu_list:
      if (v.is_number_integer()) return one(v.dump());
      if (!v.is_string()) throw bad("a CPU list such as \"0,2-3\"");
      return one(v.get<std::string>());
    case ParamType::key_value: {
      if (!v.is_object()) throw bad("an object of option: value");
      Texts out;
      for (auto it = v.begin(); it != v.end(); ++it)
        out.push_back(it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump()));
      return out;
    }
    case ParamType::extra: return one(v.dump());
    default:
      if (!v.is_string()) throw bad("a string");
      return one(v.get<std::string>());
  }
}

// Transports and generators first, so their options given alongside
// (`--tx-opt`, `gen_opts`) land on the driver they name, in any order.
bool applies_first(const Param& p) { return p.type == ParamType::driver; }

}  // namespace

const char* command_name(Command c) {
  switch (c) {
    case kRun: return "run";
    case kSend: return "send";
    case kSink: return "sink";
  }
  return "?";
}

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::integer: return "int";
    case ParamType::number: return "number";
    case ParamType::rate: return "rate";
    case ParamType::flag: return "flag";
    case ParamType::text: return "text";
    case ParamType::choice: return "choice";
    case ParamType::cpu: return "cpu";
    case ParamType::cpu_list: return "cpu_list";
    case ParamType::driver: return "driver";
    case ParamType::key_value: return "key_value";
    case ParamType::size: return "size";
    case ParamType::mac: return "mac";
    case ParamType::ipv4: return "ipv4";
    case ParamType::list: return "list";
    case ParamType::extra: return "json";
  }
  return "?";
}

const std::vector<Param>& trial_params() {
  static const std::vector<Param> table = build_param_table();
  return table;
}

const Param* find_param_by_flag(const std::string& flag) {
  for (const auto& p : trial_params())
    if (!p.flag.empty() && p.flag == flag) return &p;
  return nullptr;
}

const Param* find_param_by_suite_key(const std::string& key) {
  for (const auto& p : trial_params())
    if (!p.suite_key.empty() && p.suite_key == key) return &p;
  return nullptr;
}

std::vector<SizeMixEntry> parse_size_mix(const std::string& what, const std::string& s) {
  std::vector<SizeMixEntry> mix;
  const std::string form = "; give FRAME:WEIGHT,... with frame bytes 64..65553 and weights 1..1000000 (e.g. 64:7,576:4,1518:1)";
  for (const auto& item : split_list(s, ',')) {
    auto colon = item.find(':');
    if (colon == std::string::npos) throw UsageError(what + " mix item '" + item + "' is not FRAME:WEIGHT" + form);
    int64_t frame = 0, weight = 0;
    try {
      frame = parse_integer("frame", item.substr(0, colon));
      weight = parse_integer("weight", item.substr(colon + 1));
    } catch (const UsageError&) {
      throw UsageError(what + " mix item '" + item + "' is not FRAME:WEIGHT" + form);
    }
    // 64: the smallest Ethernet frame (payload 18); 65553: payload 65507, the UDP maximum.
    if (frame < 64 || frame > 65553 || weight < 1 || weight > 1000000)
      throw UsageError(what + " mix item '" + item + "' is out of range" + form);
    mix.push_back({size_t(frame), unsigned(weight)});
  }
  return mix;
}

std::string size_mix_to_string(const std::vector<SizeMixEntry>& mix) {
  std::string s;
  for (const auto& e : mix) s += (s.empty() ? "" : ",") + std::to_string(e.frame_bytes) + ":" + std::to_string(e.weight);
  return s;
}

std::vector<int> parse_cpu_list(const std::string& what, const std::string& s) {
  std::vector<int> cpus;
  auto bad = [&]() { return UsageError(what + " '" + s + "' is not a CPU list; give e.g. 0,2-3"); };
  for (const auto& item : split_list(s, ',')) {
    auto dash = item.find('-');
    int64_t lo = 0, hi = 0;
    try {
      lo = parse_integer("cpu", item.substr(0, dash));
      hi = dash == std::string::npos ? lo : parse_integer("cpu", item.substr(dash + 1));
    } catch (const UsageError&) {
      throw bad();
    }
    if (lo < 0 || hi < lo || hi > 65535) throw bad();
    for (int64_t c = lo; c <= hi; ++c) {
      if (std::find(cpus.begin(), cpus.end(), int(c)) != cpus.end())
        throw UsageError(what + " '" + s + "' names CPU " + std::to_string(c) + " twice");
      cpus.push_back(int(c));
    }
  }
  return cpus;
}

std::string cpu_list_to_string(const std::vector<int>& cpus) {
  std::string s;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + std::to_string(cpus[i]);
    if (j > i) s += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return s;
}

MacAddr parse_mac(const std::string& what, const std::string& s) {
  MacAddr m{};
  auto parts = split_list(s, ':');
  bool ok = parts.size() == 6;
  for (size_t i = 0; ok && i < 6; ++i) {
    ok = parts[i].size() == 2 && std::isxdigit(static_cast<unsigned char>(parts[i][0])) &&
         std::isxdigit(static_cast<unsigned char>(parts[i][1]));
    if (ok) m[i] = uint8_t(std::stoul(parts[i], nullptr, 16));
  }
  if (!ok) throw UsageError(what + " '" + s + "' is not a MAC address; give six hex pairs, e.g. 02:00:00:00:00:01");
  return m;
}

in_addr parse_ipv4(const std::string& what, const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) throw UsageError(what + " '" + s + "' is not an IPv4 address");
  return a;
}

std::string closest_name(const std::string& given, const std::vector<std::string>& accepted) {
  std::string best;
  size_t best_d = 3;
  for (const auto& a : accepted) {
    size_t d = edit_distance(given, a);
    bool prefix = given.size() >= 4 && a.rfind(given, 0) == 0;
    if (prefix) d = std::min<size_t>(d, 1);
    if (d < best_d) best_d = d, best = a;
  }
  return best;
}

std::string check_param_value(const Param& p, const std::string& name, const std::string& value) {
  switch (p.type) {
    case ParamType::integer: {
      int64_t v = parse_integer(name, value);
      check_range(p, name, double(v), value);
      return std::to_string(v);
    }
    case ParamType::number: {
      double v = parse_number(name, value);
      check_range(p, name, v, value);
      return format_number(v);
    }
    case ParamType::rate: {
      if (value == "max") return value;
      double r = parse_number(name, value);
      if (!std::isfinite(r) || !(r > 0))
        throw UsageError(name + " " + value + " is not accepted; give packets/s > 0 or 'max'");
      if (r > p.max)
        throw UsageError(name + " " + format_number(std::floor(r)) + " pps is impossible here (above " +
                         format_number(p.max / 1e6) + " Mpps); give a lower rate or 'max'");
      return format_number(r);
    }
    case ParamType::flag: return parse_bool(name, value) ? "on" : "off";
    case ParamType::choice:
      if (p.flag == "--lab-mode") return lab_mode_name(parse_lab_mode(value));  // lab.cc owns the names' message
      if (std::find(p.choices.begin(), p.choices.end(), value) == p.choices.end())
        throw UsageError(name + " '" + value + "' is not accepted; accepted: " + join_list(p.choices, ", "));
      return value;
    case ParamType::cpu: {
      int64_t cpu = parse_integer(name, value);
      int cpus = online_cpu_count();
      if (cpu < 0 || cpu >= cpus)
        throw UsageError("CPU " + value + " does not exist; this machine has CPUs 0.." + std::to_string(cpus - 1));
      return std::to_string(cpu);
    }
    case ParamType::cpu_list: {
      std::vector<int> list = parse_cpu_list(name, value);
      int cpus = online_cpu_count();
      for (int c : list)
        if (c >= cpus)
          throw UsageError(name + " " + value + ": CPU " + std::to_string(c) + " does not exist; this machine has CPUs 0.." +
                           std::to_string(cpus - 1));
      return cpu_list_to_string(list);
    }
    case ParamType::driver: {
      DriverSpec d = parse_driver_spec(value);
      return d.to_string();
    }
    case ParamType::key_value: {
      auto kv = parse_key_value(name, value);
      return kv.first + "=" + kv.second;
    }
    case ParamType::size: {
      if (value.find(':') != std::string::npos || value.find(',') != std::string::npos)
        return size_mix_to_string(parse_size_mix(name, value));
      int64_t v = parse_integer(name, value);
      if (v < 0) throw UsageError(name + " " + value + " is not accepted; give payload bytes (18 .. MTU-28) or a mix");
      return std::to_string(v);  // against the MTU: validate_trial
    }
    case ParamType::mac: return mac_to_string(parse_mac(name, value));
    case ParamType::ipv4: return ipv4_to_string(parse_ipv4(name, value));
    case ParamType::list: {
      Texts items;
      for (auto& i : split_list(value, ','))
        if (!i.empty()) items.push_back(i);
      return join_list(items, ",");
    }
    case ParamType::text:
    case ParamType::extra: return value;
  }
  return value;
}

CommandLine parse_command_line(Command cmd, const std::vector<std::string>& args) {
  CommandLine out;
  std::vector<std::pair<const Param*, std::string>> given;
  const std::string who = command_name(cmd);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], inline_value;
    bool has_inline = false;
    if (flag.rfind("--", 0) == 0) {
      auto eq = flag.find('=');
      if (eq != std::string::npos) {
        inline_value = flag.substr(eq + 1), flag = flag.substr(0, eq), has_inline = true;
      }
    }
    if (flag == "--json") {
      out.json = has_inline ? parse_bool("--json", inline_value) : true;
      continue;
    }
    const Param* p = find_param_by_flag(flag);
    if (!p || !(p->commands & cmd)) {
      std::vector<std::string> accepted{"--json"};
      for (const auto& q : trial_params())
        if (!q.flag.empty() && (q.commands & cmd)) accepted.push_back(q.flag);
      std::string msg = who + ": unknown option '" + flag + "'";
      if (p) msg = who + ": option '" + flag + "' is not for " + who + " (it is for " + join_list(command_names(p->commands), ", ") + ")";
      std::string near = closest_name(flag, accepted);
      if (!near.empty() && near != flag) msg += "; did you mean '" + near + "'?";
      throw UsageError(msg + " (accepted options: zcbench " + who + " --help)");
    }
    std::string value;
    if (has_inline) {
      value = inline_value;
    } else if (p->type == ParamType::flag) {
      value = "on";
    } else {
      if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)
        throw UsageError(flag + " needs a value (" + p->metavar + ")");
      value = args[++i];
    }
    given.push_back({p, check_param_value(*p, flag, value)});
    out.given_flags.push_back(flag);
  }
  for (bool first : {true, false})
    for (const auto& [p, v] : given)
      if (applies_first(*p) == first) p->set(out.spec, v);
  return out;
}

std::string params_help(Command cmd) {
  std::ostringstream o;
  const size_t width = 79, indent = 23;
  for (const auto& p : trial_params()) {
    if (p.flag.empty() || !(p.commands & cmd)) continue;
    std::string left = "  " + p.flag + (p.metavar.empty() ? "" : " " + p.metavar);
    std::string text = p.help + help_default(p);
    if (left.size() + 1 > indent) {
      o << left << "\n";
      left.clear();
    }
    left.resize(indent, ' ');
    // Word-wrap the help at `width`, continuation lines indented.
    std::string line = left;
    std::istringstream words(text);
    std::string w;
    bool first = true;
    while (words >> w) {
      if (!first && line.size() + 1 + w.size() > width) {
        o << line << "\n";
        line = std::string(indent, ' ');
        first = true;
      }
      line += (first ? "" : " ") + w;
      first = false;
    }
    o << line << "\n";
  }
  o << "  --json               print the result document on stdout\n";
  return o.str();
}

void apply_suite_field(TrialSpec& s, const std::string& key, const json& v, const std::string& where) {
  const Param* p = find_param_by_suite_key(key);
  if (!p) throw UsageError(where + ": unknown field '" + key + "'; accepted: " + suite_keys_text());
  for (const auto& text : suite_texts(*p, key, v, where)) {
    try {
      p->set(s, check_param_value(*p, key, text));
    } catch (const UsageError& e) {
      throw UsageError(where + ": " + e.what());
    }
  }
}

std::string suite_keys_text() {
  std::vector<std::string> keys;
  for (const auto& p : trial_params())
    if (!p.suite_key.empty()) keys.push_back(p.suite_key);
  return join_list(keys, ", ");
}

bool suite_key_applies_first(const std::string& key) {
  const Param* p = find_param_by_suite_key(key);
  return p && applies_first(*p);
}

void check_param_ranges(const TrialSpec& s, Command cmd) {
  for (const auto& p : trial_params()) {
    if (!(p.commands & cmd)) continue;
    switch (p.type) {
      case ParamType::integer:
      case ParamType::number:
      case ParamType::rate:
      case ParamType::choice:
      case ParamType::cpu:
      case ParamType::cpu_list:
      case ParamType::size:
        for (const auto& v : p.get(s)) check_param_value(p, p.label.empty() ? p.flag : p.label, v);
        break;
      default: break;
    }
  }
}

std::string params_command(const TrialSpec& s, Command cmd) {
  std::ostringstream o;
  o << "build/zcbench " << command_name(cmd);
  const TrialSpec defaults;
  for (const auto& p : trial_params()) {
    if (p.flag.empty() || !p.in_command || !(p.commands & cmd)) continue;
    Texts v = p.get(s);
    if (!p.always_in_command && v == p.get(defaults)) continue;
    for (const auto& text : v) {
      if (p.type == ParamType::flag) o << " " << p.flag;
      else o << " " << p.flag << " " << quote(text);
    }
  }
  o << " --json";
  return o.str();
}

json trial_params_json(const TrialSpec& s, const RecordContext& ctx) {
  json j = json::object();
  for (const auto& p : trial_params()) {
    if (p.record_key.empty() || !(p.commands & ctx.command)) continue;
    if (p.record) p.record(s, ctx, j);
    else j[p.record_key] = typed(p, p.get(s));
  }
  j["kernel"] = ctx.kernel;
  j["accounting"] = ctx.accounting;
  for (auto it = s.extra_params.begin(); it != s.extra_params.end(); ++it) j[it.key()] = it.value();
  return j;
}

json Param::to_json() const {
  json j = {{"flag", flag.empty() ? json(nullptr) : json(flag)},
            {"suite_key", suite_key.empty() ? json(nullptr) : json(suite_key)},
            {"record_key", record_key.empty() ? json(nullptr) : json(record_key)},
            {"type", param_type_name(type)},
            {"metavar", metavar},
            {"help", help},
            {"commands", command_names(commands)},
            {"always_in_command", always_in_command},
            {"in_command", in_command && !flag.empty()}};
  Texts d = get ? get(TrialSpec{}) : Texts{};
  if (type == ParamType::flag) j["default"] = !d.empty();
  else if (type == ParamType::key_value) j["default"] = d;
  else j["default"] = d.empty() ? json(nullptr) : json(d[0]);
  if (!default_note.empty()) j["default_note"] = default_note;
  if (bounded(*this)) {
    j["min"] = min;
    j["max"] = max;
    j["min_exclusive"] = min_exclusive;
  }
  if (type == ParamType::size) {
    j["range_note"] = "payload 18..MTU-28; mix frames 64..MTU+18";
    j["frame_overhead_bytes"] = kEthernetOverhead;  // frame = payload + this
  }
  if (type == ParamType::cpu || type == ParamType::cpu_list) j["range_note"] = "CPUs 0..online-1";
  if (!choices.empty()) j["choices"] = choices;
  if (type == ParamType::driver) j["options_flag"] = flag == "--generator" ? "--gen-opt" : flag + "-opt";
  return j;
}

json params_json() {
  json arr = json::array();
  for (const auto& p : trial_params()) arr.push_back(p.to_json());
  return arr;
}

void validate_trial(const TrialSpec& s) {
  const DriverInfo& tx = find_driver(s.tx.name, Direction::tx);
  const DriverInfo& rx = find_driver(s.rx.name, Direction::rx);
  validate_driver_options(tx, s.tx.options);
  validate_driver_options(rx, s.rx.options);
  if (s.generator.name != kFloodGenerator)
    validate_generator_options(find_generator(s.generator.name), s.generator.options);
  else if (!s.generator.options.empty())
    throw UsageError("the flood generator takes no --gen-opt; its transport's options go to --tx-opt");
  check_param_ranges(s, kRun);
  // Cross-field checks: what no single parameter's range can say.
  size_t max_payload = size_t(s.lab.mtu) - kUdpIpv4Overhead;
  if (!s.size_mix.empty()) {
    for (const auto& e : parse_size_mix("--size", s.size_mix))
      if (e.frame_bytes - kEthernetOverhead > max_payload)
        throw UsageError("frame size " + std::to_string(e.frame_bytes) + " of the mix " + s.size_mix +
                         " does not fit MTU " + std::to_string(s.lab.mtu) + "; accepted: 64.." +
                         std::to_string(max_payload + kEthernetOverhead) + " (it needs --mtu " +
                         std::to_string(e.frame_bytes - kEthernetOverhead + kUdpIpv4Overhead) + ")");
  } else if (s.payload_bytes < 18 || s.payload_bytes > max_payload) {
    std::string msg = "payload size " + std::to_string(s.payload_bytes) + " is out of range for MTU " +
                      std::to_string(s.lab.mtu) + "; accepted: 18.." + std::to_string(max_payload);
    if (s.payload_bytes > max_payload)
      msg += " (a " + std::to_string(s.payload_bytes) + "-byte payload needs --mtu " +
             std::to_string(s.payload_bytes + kUdpIpv4Overhead) + ")";
    throw UsageError(msg);
  }
  if (!(s.interval_s >= 0.01))
    throw UsageError("sample interval " + format_number(s.interval_s) + " s is not accepted; accepted: >= 0.01");
}

std::string trial_command(const TrialSpec& s) { return params_command(s, kRun); }

}  // namespace zc
