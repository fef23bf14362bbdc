#include "harness/options.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "harness/errors.h"

namespace zc {
namespace {

const char* type_name(OptionType t) {
  switch (t) {
    case OptionType::integer: return "int";
    case OptionType::size: return "size";
    case OptionType::boolean: return "bool";
    case OptionType::choice: return "choice";
    case OptionType::text: return "text";
  }
  return "?";
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string size_text(int64_t v) {
  if (v == INT64_MAX) return "unlimited";
  return std::to_string(v);
}

}  // namespace

nlohmann::json OptionSpec::to_json() const {
  nlohmann::json j{{"name", name}, {"type", type_name(type)}, {"default", default_value}, {"help", help}};
  if (type == OptionType::integer || type == OptionType::size) {
    j["min"] = min;
    if (max != INT64_MAX) j["max"] = max;
  }
  if (type == OptionType::choice) j["choices"] = choices;
  return j;
}

int64_t parse_integer(const std::string& what, const std::string& s) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno || *end) throw UsageError(what + " '" + s + "' is not an integer");
  return v;
}

int64_t parse_size(const std::string& what, const std::string& s) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno || end == s.c_str() || v < 0)
    throw UsageError(what + " '" + s + "' is not a size (e.g. 4096, 64K, 1M, 1G)");
  int shift = 0;
  std::string suffix(end);
  if (suffix == "" || suffix == "B") shift = 0;
  else if (suffix == "K" || suffix == "k" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  else throw UsageError(what + " '" + s + "' has an unknown unit; accepted: K, M, G (powers of 1024)");
  if (v > (INT64_MAX >> shift)) throw UsageError(what + " '" + s + "' is too large");
  return int64_t(v) << shift;
}

bool parse_bool(const std::string& what, const std::string& s) {
  if (s == "1" || s == "on" || s == "true" || s == "yes") return true;
  if (s == "0" || s == "off" || s == "false" || s == "no") return false;
  throw UsageError(what + " '" + s + "' is not a boolean; accepted: on, off (or 1/0, true/false)");
}

std::pair<std::string, std::string> parse_key_value(const std::string& what, const std::string& s) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError(what + " '" + s + "' must be key=value");
  return {s.substr(0, eq), s.substr(eq + 1)};
}

DriverSpec parse_driver_spec(const std::string& s) {
  DriverSpec spec;
  auto colon = s.find(':');
  spec.name = s.substr(0, colon);
  if (spec.name.empty()) throw UsageError("transport '" + s + "' has no name");
  if (colon == std::string::npos) return spec;
  std::string rest = s.substr(colon + 1);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t comma = rest.find(',', start);
    std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      auto kv = parse_key_value("option of " + spec.name, item);
      spec.options[kv.first] = kv.second;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return spec;
}

std::string DriverSpec::to_string() const {
  std::string s = name;
  char sep = ':';
  for (const auto& [k, v] : options) {
    s += sep + k + "=" + v;
    sep = ',';
  }
  return s;
}

DriverOptions validate_options(const std::string& owner, const std::vector<OptionSpec>& specs,
                               const std::map<std::string, std::string>& given) {
  std::map<std::string, std::string> values;
  for (const auto& [key, value] : given) {
    auto it = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& o) { return o.name == key; });
    if (it == specs.end()) {
      std::vector<std::string> names;
      for (const auto& o : specs) names.push_back(o.name);
      throw UsageError(owner + " has no option '" + key + "'; accepted: " +
                       (names.empty() ? std::string("none") : join(names, ", ")));
    }
    std::string what = owner + " option " + key;
    switch (it->type) {
      case OptionType::integer:
      case OptionType::size: {
        int64_t v = it->type == OptionType::size ? parse_size(what, value) : parse_integer(what, value);
        if (v < it->min || v > it->max)
          throw UsageError(what + "=" + value + " is out of range; accepted: " + std::to_string(it->min) + ".." +
                           size_text(it->max));
        values[key] = std::to_string(v);
        break;
      }
      case OptionType::boolean:
        values[key] = parse_bool(what, value) ? "on" : "off";
        break;
      case OptionType::choice:
        if (std::find(it->choices.begin(), it->choices.end(), value) == it->choices.end())
          throw UsageError(what + "='" + value + "' is not accepted; accepted: " + join(it->choices, ", "));
        values[key] = value;
        break;
      case OptionType::text:
        values[key] = value;
        break;
    }
  }
  for (const auto& o : specs) {
    if (!values.count(o.name)) {
      std::string v = o.default_value;
      if (o.type == OptionType::size && !v.empty()) v = std::to_string(parse_size(o.name, v));
      if (o.type == OptionType::boolean && !v.empty()) v = parse_bool(o.name, v) ? "on" : "off";
      values[o.name] = v;
    }
  }
  return DriverOptions(owner, std::move(values));
}

const std::string& DriverOptions::raw(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw InternalError(owner_ + ": option '" + name + "' was never declared");
  return it->second;
}

int64_t DriverOptions::integer(const std::string& name) const { return parse_integer(owner_ + " " + name, raw(name)); }
bool DriverOptions::boolean(const std::string& name) const { return raw(name) == "on"; }
const std::string& DriverOptions::text(const std::string& name) const { return raw(name); }

nlohmann::json DriverOptions::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : values_) j[k] = v;
  return j;
}

}  // namespace zc
