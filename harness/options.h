// Per-driver options: declared next to the driver that owns them (type,
// default, range, help — fio-style), validated before any traffic, listed by
// `zcbench list`. One syntax everywhere: `--rx-opt key=value` on the command
// line, "name:key=value,key=value" in suite files.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zc {

enum class OptionType { integer, size, boolean, choice, text };

struct OptionSpec {
  std::string name;
  OptionType type = OptionType::integer;
  std::string default_value;
  std::string help;
  int64_t min = 0;                   // integer and size
  int64_t max = INT64_MAX;
  std::vector<std::string> choices;  // choice
  nlohmann::json to_json() const;
};

// Validated option values, defaults filled in. Accessors assume the option
// was declared (an undeclared name is an InternalError).
class DriverOptions {
 public:
  DriverOptions() = default;
  DriverOptions(std::string owner, std::map<std::string, std::string> values)
      : owner_(std::move(owner)), values_(std::move(values)) {}
  int64_t integer(const std::string& name) const;  // also sizes, in bytes
  bool boolean(const std::string& name) const;
  const std::string& text(const std::string& name) const;  // choices and text
  const std::map<std::string, std::string>& values() const { return values_; }
  nlohmann::json to_json() const;

 private:
  const std::string& raw(const std::string& name) const;
  std::string owner_;
  std::map<std::string, std::string> values_;
};

// Checks `given` against `specs` for driver `owner` ("rx recvmmsg"); throws
// UsageError naming the option, the value and what is accepted.
DriverOptions validate_options(const std::string& owner, const std::vector<OptionSpec>& specs,
                               const std::map<std::string, std::string>& given);

// "1M" -> 1048576, "64k" -> 65536, "4096" -> 4096; throws UsageError.
int64_t parse_size(const std::string& what, const std::string& s);
int64_t parse_integer(const std::string& what, const std::string& s);
bool parse_bool(const std::string& what, const std::string& s);

// "recvmmsg:batch=64,accounting=count" -> name + options.
struct DriverSpec {
  std::string name;
  std::map<std::string, std::string> options;
  std::string to_string() const;
};
DriverSpec parse_driver_spec(const std::string& s);
// "key=value" -> pair; throws UsageError.
std::pair<std::string, std::string> parse_key_value(const std::string& what, const std::string& s);

}  // namespace zc
