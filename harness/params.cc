#include "harness/params.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>

#include "harness/errors.h"
#include "harness/generator.h"
#include "harness/registry.h"

namespace zc {
namespace {

using nlohmann::json;
using Texts = std::vector<std::string>;

Texts one(std::string v) { return Texts{std::move(v)}; }

// Shortest text that reads back as the same double, never in exponent form
// (2350000, not 2.35e+06: commands are read by people).
std::string fmt_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

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

std::vector<std::string> split(const std::string& s, char sep) {
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

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

bool bounded(const Param& p) { return p.min != 0 || p.max != 0; }

std::string range_text(const Param& p) {
  if (p.min_exclusive) return "> " + fmt_number(p.min) + " and <= " + fmt_number(p.max);
  return fmt_number(p.min) + ".." + fmt_number(p.max);
}

void check_range(const Param& p, const std::string& name, double v, const std::string& text) {
  if (!bounded(p)) return;
  bool low = p.min_exclusive ? !(v > p.min) : !(v >= p.min);
  if (low || !(v <= p.max))
    throw UsageError(name + " " + text + p.unit + " is not accepted; accepted: " + range_text(p));
}

// ---- binding a row to its TrialSpec field ---------------------------------
// `field` returns a reference to the member; the getters call it on a const
// spec through const_cast only to read.

template <class Field>
void bind_integer(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) {
    auto& x = field(s);
    x = static_cast<std::remove_reference_t<decltype(x)>>(std::stoll(v));
  };
  p.get = [field](const TrialSpec& s) { return one(std::to_string(field(const_cast<TrialSpec&>(s)))); };
}

template <class Field>
void bind_number(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = std::stod(v); };
  p.get = [field](const TrialSpec& s) { return one(fmt_number(field(const_cast<TrialSpec&>(s)))); };
}

template <class Field>
void bind_text(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = v; };
  p.get = [field](const TrialSpec& s) {
    const std::string& v = field(const_cast<TrialSpec&>(s));
    return v.empty() ? Texts{} : one(v);
  };
}

template <class Field>
void bind_flag(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = v == "on"; };
  p.get = [field](const TrialSpec& s) { return field(const_cast<TrialSpec&>(s)) ? one("on") : Texts{}; };
}

template <class Field>
void bind_cpu_list(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = parse_cpu_list("", v); };
  p.get = [field](const TrialSpec& s) {
    const auto& v = field(const_cast<TrialSpec&>(s));
    return v.empty() ? Texts{} : one(cpu_list_to_string(v));
  };
}

// A transport or generator: the name here, its options through `opts_flag`.
template <class Field>
void bind_driver(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) { field(s) = parse_driver_spec(v); };
  p.get = [field](const TrialSpec& s) { return one(field(const_cast<TrialSpec&>(s)).name); };
}

template <class Field>
void bind_options(Param& p, Field field) {
  p.set = [field](TrialSpec& s, const std::string& v) {
    auto kv = parse_key_value("", v);
    field(s).options[kv.first] = kv.second;
  };
  p.get = [field](const TrialSpec& s) {
    Texts out;
    for (const auto& [k, v] : field(const_cast<TrialSpec&>(s)).options) out.push_back(k + "=" + v);
    return out;
  };
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

std::vector<std::string> lab_mode_names() {
  std::vector<std::string> v;
  for (LabMode m : {LabMode::sender_softirq, LabMode::rps, LabMode::xdp}) v.push_back(lab_mode_name(m));
  return v;
}

std::vector<Param> build_table() {
  std::vector<Param> t;
  auto add = [&](std::string flag, std::string suite_key, std::string record_key, ParamType type, std::string metavar,
                 unsigned commands, std::string help) -> Param& {
    Param p;
    p.flag = std::move(flag);
    p.suite_key = std::move(suite_key);
    p.record_key = std::move(record_key);
    p.type = type;
    p.metavar = std::move(metavar);
    p.commands = commands;
    p.help = std::move(help);
    t.push_back(std::move(p));
    return t.back();
  };
  auto range = [](Param& p, std::string label, double min, double max, std::string unit = "") {
    p.label = std::move(label);
    p.min = min;
    p.max = max;
    p.unit = std::move(unit);
  };

  // Transports.
  {
    Param& p = add("--tx", "tx", "tx", ParamType::driver, "NAME", kRun | kSend,
                   "transmit transport (options: NAME:KEY=VALUE,... or --tx-opt)");
    p.always_in_command = true;
    bind_driver(p, [](TrialSpec& s) -> DriverSpec& { return s.tx; });
    p.record = [](const TrialSpec& s, const RecordContext& c, json& j) {
      j["tx"] = c.external ? json(nullptr) : json(s.tx.name);
      j["tx_opts"] = c.external ? json::object() : c.tx_opts.to_json();
    };
  }
  {
    Param& p = add("--tx-opt", "", "", ParamType::key_value, "KEY=VALUE", kRun | kSend,
                   "option of the transmit transport (repeatable)");
    bind_options(p, [](TrialSpec& s) -> DriverSpec& { return s.tx; });
  }
  {
    Param& p = add("--rx", "rx", "rx", ParamType::driver, "NAME", kRun | kSink,
                   "receive transport (options: NAME:KEY=VALUE,... or --rx-opt)");
    p.always_in_command = true;
    bind_driver(p, [](TrialSpec& s) -> DriverSpec& { return s.rx; });
    p.record = [](const TrialSpec& s, const RecordContext& c, json& j) {
      j["rx"] = s.rx.name;
      j["rx_opts"] = c.rx_opts.to_json();
    };
  }
  {
    Param& p = add("--rx-opt", "", "", ParamType::key_value, "KEY=VALUE", kRun | kSink,
                   "option of the receive transport (repeatable)");
    bind_options(p, [](TrialSpec& s) -> DriverSpec& { return s.rx; });
  }
  {
    Param& p = add("--rcvbuf", "", "", ParamType::text, "SIZE", kRun | kSink, "shorthand for --rx-opt rcvbuf=SIZE");
    p.in_command = false;  // trial_command prints it as the --rx-opt it is
    p.set = [](TrialSpec& s, const std::string& v) { s.rx.options["rcvbuf"] = v; };
    p.get = [](const TrialSpec&) { return Texts{}; };
  }
  // The packets.
  {
    Param& p = add("--size", "payload_bytes", "payload_bytes", ParamType::size, "BYTES|MIX", kRun | kSend | kSink,
                   "UDP payload, 18 .. MTU-28; or a frame-size mix FRAME:WEIGHT,... (frame bytes with Ethernet "
                   "header and FCS, e.g. 64:7,576:4,1518:1), cycled deterministically");
    p.label = "payload size";
    p.always_in_command = true;
    p.set = [](TrialSpec& s, const std::string& v) {
      if (v.find(':') == std::string::npos) {
        s.payload_bytes = size_t(std::stoull(v));
        s.size_mix.clear();
        return;
      }
      // Buffers are sized by payload_bytes: the largest frame of the mix.
      size_t largest = 0;
      for (const auto& e : parse_size_mix("", v)) largest = std::max(largest, e.frame_bytes);
      s.payload_bytes = largest - kEthernetOverhead;
      s.size_mix = v;
    };
    p.get = [](const TrialSpec& s) { return one(s.size_mix.empty() ? std::to_string(s.payload_bytes) : s.size_mix); };
    p.record = [](const TrialSpec& s, const RecordContext&, json& j) {
      j["payload_bytes"] = s.payload_bytes;
      j["frame_bytes"] = s.payload_bytes + kEthernetOverhead;
      j["size_mix"] = s.size_mix.empty() ? json(nullptr) : json(s.size_mix);
    };
  }
  {
    Param& p = add("--rate", "rate_pps", "offered_pps", ParamType::rate, "PPS|max", kRun | kSend,
                   "offered rate in packets/s");
    range(p, "rate", 0, 1e8);
    p.min_exclusive = true;
    p.always_in_command = true;
    p.set = [](TrialSpec& s, const std::string& v) { s.rate_pps = v == "max" ? 0 : std::stod(v); };
    p.get = [](const TrialSpec& s) { return one(s.rate_pps == 0 ? "max" : fmt_number(s.rate_pps)); };
    p.record = [](const TrialSpec& s, const RecordContext&, json& j) {
      j["rate_mode"] = s.rate_pps > 0 ? "fixed" : "max";
      j["offered_pps"] = s.rate_pps > 0 ? json(s.rate_pps) : json(nullptr);
    };
  }
  {
    Param& p = add("--duration", "duration_s", "duration_s", ParamType::number, "S", kRun | kSend | kSink,
                   "measurement window in seconds");
    range(p, "duration", 0, 3600, " s");
    p.min_exclusive = true;
    p.always_in_command = true;
    bind_number(p, [](TrialSpec& s) -> double& { return s.duration_s; });
  }
  {
    Param& p = add("--warmup", "warmup_s", "warmup_s", ParamType::number, "S", kRun | kSend, "warm-up before the window");
    range(p, "warm-up", 0, 600, " s");
    p.always_in_command = true;
    bind_number(p, [](TrialSpec& s) -> double& { return s.warmup_s; });
  }
  {
    Param& p = add("--count", "count", "count", ParamType::integer, "N", kRun | kSend, "stop after N packets");
    range(p, "count", 0, 1e15);
    p.default_note = "bounded by time only";
    bind_integer(p, [](TrialSpec& s) -> uint64_t& { return s.count; });
  }
  {
    Param& p = add("--burst", "burst", "burst", ParamType::integer, "N", kRun | kSend,
                   "packets back-to-back per pacing step");
    range(p, "burst", 1, 65536);
    bind_integer(p, [](TrialSpec& s) -> uint32_t& { return s.burst; });
  }
  {
    Param& p = add("--flows", "flows", "flows", ParamType::integer, "N", kRun | kSend | kSink,
                   "flows (UDP source ports), round-robin");
    range(p, "flows", 1, 1024);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.flows; });
  }
  // The lab.
  {
    Param& p = add("--lab-mode", "lab_mode", "lab_mode", ParamType::choice, "MODE", kRun,
                   "where the receive softirq runs: sender-softirq | rps | xdp");
    p.label = "lab mode";
    p.choices = lab_mode_names();
    p.always_in_command = true;
    p.set = [](TrialSpec& s, const std::string& v) { s.lab.mode = parse_lab_mode(v); };
    p.get = [](const TrialSpec& s) { return one(lab_mode_name(s.lab.mode)); };
  }
  {
    Param& p = add("--mtu", "mtu", "mtu", ParamType::integer, "BYTES", kRun | kSink, "lab MTU");
    range(p, "MTU", 68, 65535);
    p.always_in_command = true;
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.mtu; });
  }
  {
    Param& p = add("--queues", "queues", "queues", ParamType::integer, "N", kRun,
                   "TX and RX queues per lab veth (IFLA_NUM_TX_QUEUES / IFLA_NUM_RX_QUEUES)");
    range(p, "queues", 1, 256);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.queues; });
  }
  {
    Param& p = add("--ports", "ports", "ports", ParamType::integer, "N", kRun,
                   "lab port pairs (veth pairs); flow f uses port f % N");
    range(p, "ports", 1, 16);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.port_pairs; });
  }
  {
    Param& p = add("--gen-cpu", "gen_cpu", "gen_cpu", ParamType::cpu, "N", kRun, "generator CPU");
    p.always_in_command = true;
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.gen_cpu; });
  }
  {
    Param& p = add("--sink-cpu", "sink_cpu", "sink_cpu", ParamType::cpu, "N", kRun, "sink CPU");
    p.always_in_command = true;
    bind_integer(p, [](TrialSpec& s) -> int& { return s.lab.sink_cpu; });
  }
  // Workers.
  {
    Param& p = add("--gen-threads", "gen_threads", "gen_threads", ParamType::integer, "N", kRun | kSend,
                   "generator workers; flows are partitioned across them");
    range(p, "generator threads", 1, 1024);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.gen_threads; });
  }
  {
    Param& p = add("--gen-cpus", "gen_cpus", "gen_cpus", ParamType::cpu_list, "LIST", kRun | kSend,
                   "CPUs of the generator workers, e.g. 0,2-3");
    p.label = "generator CPUs";
    p.default_note = "--gen-cpu, then the next CPUs";
    bind_cpu_list(p, [](TrialSpec& s) -> std::vector<int>& { return s.gen_cpus; });
  }
  {
    Param& p = add("--sink-threads", "sink_threads", "sink_threads", ParamType::integer, "N", kRun | kSink,
                   "sink workers (a reuseport group, a fanout group, one XSK per queue)");
    range(p, "sink threads", 1, 1024);
    bind_integer(p, [](TrialSpec& s) -> int& { return s.sink_threads; });
  }
  {
    Param& p = add("--sink-cpus", "sink_cpus", "sink_cpus", ParamType::cpu_list, "LIST", kRun | kSink,
                   "CPUs of the sink workers, e.g. 1,3");
    p.label = "sink CPUs";
    p.default_note = "--sink-cpu, then the next CPUs";
    bind_cpu_list(p, [](TrialSpec& s) -> std::vector<int>& { return s.sink_cpus; });
  }
  {
    Param& p = add("--gro", "gro", "gro", ParamType::flag, "", kRun, "enable GRO on the sink veth");
    bind_flag(p, [](TrialSpec& s) -> bool& { return s.lab.gro; });
  }
  {
    Param& p = add("--traffic", "traffic", "traffic", ParamType::choice, "MODE", kRun,
                   "auto (the sink's default) | tap (foreign destination MAC, as on a monitoring port) | "
                   "host-addressed");
    p.label = "traffic";
    p.choices = {"auto", "tap", "host-addressed"};
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.traffic; });
    p.record = [](const TrialSpec&, const RecordContext& c, json& j) { j["traffic"] = c.tap_traffic ? "tap" : "host-addressed"; };
  }
  // Generators.
  {
    Param& p = add("--generator", "generator", "generator", ParamType::driver, "NAME", kRun,
                   "flood (through --tx) | pktgen | trafgen | ... (see list)");
    bind_driver(p, [](TrialSpec& s) -> DriverSpec& { return s.generator; });
    p.record = [](const TrialSpec& s, const RecordContext& c, json& j) {
      j["generator"] = s.generator.name;
      j["gen_opts"] = c.external ? c.gen_opts.to_json() : json::object();
    };
  }
  {
    Param& p = add("--gen-opt", "gen_opts", "", ParamType::key_value, "KEY=VALUE", kRun,
                   "option of an external generator (repeatable; in suites an object)");
    bind_options(p, [](TrialSpec& s) -> DriverSpec& { return s.generator; });
  }
  {
    Param& p = add("--artifacts", "", "", ParamType::text, "DIR", kRun,
                   "where generators leave replayable scripts (default: none)");
    p.in_command = false;  // where files go, not what was measured
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.artifacts_dir; });
  }
  {
    Param& p = add("--perf-events", "", "", ParamType::list, "LIST", kRun,
                   "comma-separated perf events (default: software + cycles, instructions, cache-misses where a PMU "
                   "exists)");
    p.set = [](TrialSpec& s, const std::string& v) { s.perf_events = v.empty() ? Texts{} : split(v, ','); };
    p.get = [](const TrialSpec& s) { return s.perf_events.empty() ? Texts{} : one(join(s.perf_events, ",")); };
  }
  {
    Param& p = add("--repetition", "", "repetition", ParamType::integer, "N", kRun,
                   "repetition index recorded in the result");
    range(p, "repetition", 0, 1e9);
    p.in_command = false;  // bookkeeping: every repetition reproduces with the same command
    bind_integer(p, [](TrialSpec& s) -> int& { return s.repetition; });
  }
  // Named interfaces (send / sink).
  {
    Param& p = add("--iface", "", "iface", ParamType::text, "IF", kSend | kSink,
                   "the interface to use (required; only the one named is touched)");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.iface; });
  }
  {
    Param& p = add("--dst", "", "dst", ParamType::ipv4, "IP", kSend, "destination IPv4, in 198.18.0.0/15 (required)");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.dst; });
  }
  {
    Param& p = add("--dst-mac", "", "dst_mac", ParamType::mac, "MAC", kSend,
                   "destination MAC aa:bb:cc:dd:ee:ff (default: the kernel's neighbour entry for --dst)");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.dst_mac; });
  }
  {
    Param& p = add("--allow-any-destination", "", "allow_any_destination", ParamType::flag, "", kSend,
                   "allow a --dst outside 198.18.0.0/15");
    bind_flag(p, [](TrialSpec& s) -> bool& { return s.allow_any_destination; });
  }
  {
    Param& p = add("--source", "", "source", ParamType::choice, "KIND", kSink,
                   "generator (our flood) | external (a generator not ours: count, --seq)");
    p.label = "source";
    p.choices = {"generator", "external"};
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.source; });
  }
  {
    Param& p = add("--seq", "", "seq", ParamType::text, "DESC", kSink,
                   "sequence number of external packets: offset=N,width=4|8,endian=big|little[,flow=OFF:W]");
    bind_text(p, [](TrialSpec& s) -> std::string& { return s.seq; });
  }
  {
    Param& p = add("--silence", "", "silence_s", ParamType::number, "S", kSink,
                   "end after this long without packets (0: off)");
    range(p, "silence", 0, 3600, " s");
    bind_number(p, [](TrialSpec& s) -> double& { return s.silence_s; });
  }
  // Suite-only bookkeeping, copied into the record's params as given.
  for (const char* key : {"claim", "label", "series"}) {
    Param& p = add("", key, key, ParamType::extra, "", kRun, "");
    p.help = std::string(key) == "claim"   ? "the DESIGN.md claim a trial re-measures"
             : std::string(key) == "label" ? "a label the report groups by (e.g. ceiling)"
                                           : "the report series the trial belongs to";
    p.in_command = false;
    p.set = [key = std::string(key)](TrialSpec& s, const std::string& v) { s.extra_params[key] = json::parse(v); };
    p.get = [key = std::string(key)](const TrialSpec& s) {
      return s.extra_params.contains(key) ? one(s.extra_params[key].dump()) : Texts{};
    };
    p.record = [](const TrialSpec&, const RecordContext&, json&) {};  // trial_params_json copies extra_params
  }
  return t;
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
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return fmt_number(v.get<double>());
    throw bad("a whole number");
  };
  switch (p.type) {
    case ParamType::integer:
    case ParamType::cpu: return one(whole());
    case ParamType::number:
      if (!v.is_number()) throw bad("a number");
      return one(fmt_number(v.get<double>()));
    case ParamType::rate:
      if (v.is_string() && v.get<std::string>() == "max") return one("max");
      if (!v.is_number()) throw bad("a number or \"max\"");
      return one(fmt_number(v.get<double>()));
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
  static const std::vector<Param> table = build_table();
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
  for (const auto& item : split(s, ',')) {
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
  for (const auto& item : split(s, ',')) {
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
  auto parts = split(s, ':');
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
      return fmt_number(v);
    }
    case ParamType::rate: {
      if (value == "max") return value;
      double r = parse_number(name, value);
      if (!std::isfinite(r) || !(r > 0))
        throw UsageError(name + " " + value + " is not accepted; give packets/s > 0 or 'max'");
      if (r > p.max)
        throw UsageError(name + " " + fmt_number(std::floor(r)) + " pps is impossible here (above " +
                         fmt_number(p.max / 1e6) + " Mpps); give a lower rate or 'max'");
      return fmt_number(r);
    }
    case ParamType::flag: return parse_bool(name, value) ? "on" : "off";
    case ParamType::choice:
      if (p.flag == "--lab-mode") return lab_mode_name(parse_lab_mode(value));  // lab.cc owns the names' message
      if (std::find(p.choices.begin(), p.choices.end(), value) == p.choices.end())
        throw UsageError(name + " '" + value + "' is not accepted; accepted: " + join(p.choices, ", "));
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
      for (auto& i : split(value, ','))
        if (!i.empty()) items.push_back(i);
      return join(items, ",");
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
      if (p) msg = who + ": option '" + flag + "' is not for " + who + " (it is for " + join(command_names(p->commands), ", ") + ")";
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
  return join(keys, ", ");
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
    throw UsageError("sample interval " + fmt_number(s.interval_s) + " s is not accepted; accepted: >= 0.01");
}

std::string trial_command(const TrialSpec& s) { return params_command(s, kRun); }

}  // namespace zc
