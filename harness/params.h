// The one table of trial parameters (issue "Engine v2"): per parameter its
// flag, suite key, type, range, help, the commands that take it, where it
// lands in TrialSpec and its key in the record's `params`. Defaults are not
// restated here: they are whatever a default-constructed TrialSpec holds.
//
// From the table come the CLI parsing of run / send / sink (`--flag value` and
// `--flag=value`), their --help text, the range checks, suite-entry parsing
// and its "accepted:" list, trial_command, the record's params, and the
// `parameters` block of `zcbench list --json` (which run.py reads instead of
// keeping copies: zcrun/params.py).
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/lab.h"
#include "harness/options.h"
#include "harness/trial.h"

namespace zc {

// The commands that take trial parameters; a parameter names the ones it is for.
enum Command : unsigned { kRun = 1, kSend = 2, kSink = 4 };
const char* command_name(Command c);

enum class ParamType {
  integer,    // whole number in [min, max]
  number,     // real number in [min, max] (min exclusive where said)
  rate,       // packets/s > 0, or "max" (stored as 0)
  flag,       // present or not; `--flag=off` and suite false also accepted
  text,       // free text, checked by its consumer
  choice,     // one of `choices`
  cpu,        // one CPU index that exists here
  cpu_list,   // "0,2-3": CPUs that exist here, no repeats
  driver,     // "name:key=value,key=value" (options checked by the driver's own table)
  key_value,  // KEY=VALUE, repeatable
  size,       // payload bytes, or a frame-size mix "64:7,576:4,1518:1"
  mac,        // aa:bb:cc:dd:ee:ff
  ipv4,       // dotted quad
  list,       // comma-separated names
  extra,      // suite-only bookkeeping copied into the record (claim, label, series)
};
const char* param_type_name(ParamType t);

// What a record's params need beyond the spec: the drivers' validated options
// (defaults filled in), how the trial resolved its traffic and accounting.
struct RecordContext {
  Command command = kRun;
  bool external = false;  // an external generator (pktgen, trafgen): no tx
  DriverOptions tx_opts, rx_opts, gen_opts;
  bool tap_traffic = false;
  std::string accounting;
  std::string kernel;
};

struct Param {
  std::string flag;        // "--size"; empty: suite only
  std::string suite_key;   // "payload_bytes"; empty: not in suites
  std::string record_key;  // key in the record's params; empty: not recorded
  ParamType type = ParamType::integer;
  std::string metavar;     // "BYTES" in --help; empty for flags
  std::string label;       // "payload size": names the value in validate_trial's messages
  std::string unit;        // " s" after the value in messages
  double min = 0, max = 0; // integer / number / rate; min == max == 0: unbounded
  bool min_exclusive = false;
  std::vector<std::string> choices;
  std::string help;
  std::string default_note;  // help's "(default ...)" where the bare default says too little
  unsigned commands = kRun;
  bool always_in_command = false;  // trial_command prints it even at its default
  bool in_command = true;          // false: not part of the reproducing command (--artifacts)
  // Applies one checked, canonical value (see check_param_value).
  std::function<void(TrialSpec&, const std::string&)> set;
  // The spec's current value(s) as canonical text, the form set() takes; a
  // flag gives {"on"} or {}; repeatables give one entry per value.
  std::function<std::vector<std::string>(const TrialSpec&)> get;
  // Writes this parameter's key(s) into the record's params; empty: the
  // value of get() typed (number, bool, string, list).
  std::function<void(const TrialSpec&, const RecordContext&, nlohmann::json&)> record;
  nlohmann::json to_json() const;
};

// The table, in --help order (built once by build_param_table, params_table.cc).
const std::vector<Param>& trial_params();
std::vector<Param> build_param_table();
const Param* find_param_by_flag(const std::string& flag);
const Param* find_param_by_suite_key(const std::string& key);

// Parses and range-checks one value of `p` given as `name` (a flag, a suite
// key or the label) and returns its canonical text; throws UsageError naming
// the value and what is accepted.
std::string check_param_value(const Param& p, const std::string& name, const std::string& value);

// Command-line options of one command (after the command word). `--json` is
// the output option every command takes besides the table's parameters.
struct CommandLine {
  TrialSpec spec;
  bool json = false;
  std::vector<std::string> given_flags;  // flags on the command line, in order
  bool given(const std::string& flag) const {
    for (const auto& f : given_flags)
      if (f == flag) return true;
    return false;
  }
};

// `zcbench sink` waits for traffic from elsewhere: its window when --duration is not given.
inline constexpr double kSinkDefaultDurationS = 10;
CommandLine parse_command_line(Command cmd, const std::vector<std::string>& args);

// The options section of `zcbench CMD --help`, one line (or more) per parameter.
std::string params_help(Command cmd);

// Applies one suite field (a scalar of a sweep point); `where` prefixes errors.
void apply_suite_field(TrialSpec& s, const std::string& key, const nlohmann::json& v, const std::string& where);
// The keys apply_suite_field accepts, comma-separated, for "accepted:" lists.
std::string suite_keys_text();
// Transports and generators apply before the other fields of an entry, so
// options given beside them (gen_opts) land on the driver they name.
bool suite_key_applies_first(const std::string& key);

// Range checks of the parameters `cmd` takes, on a spec built any way (CLI,
// suite, code).
void check_param_ranges(const TrialSpec& s, Command cmd);

// The `zcbench run` command that reproduces `s`: the table's flags whose
// value differs from the default, plus the always-printed ones.
std::string params_command(const TrialSpec& s, Command cmd = kRun);

// The record's params object.
nlohmann::json trial_params_json(const TrialSpec& s, const RecordContext& ctx);

// The `parameters` array of `zcbench list --json`.
nlohmann::json params_json();

// Frame-size mix: frame bytes (Ethernet, FCS included) : weight.
struct SizeMixEntry {
  size_t frame_bytes;
  unsigned weight;
  bool operator==(const SizeMixEntry&) const = default;
};
std::vector<SizeMixEntry> parse_size_mix(const std::string& what, const std::string& s);
std::string size_mix_to_string(const std::vector<SizeMixEntry>& mix);

std::vector<int> parse_cpu_list(const std::string& what, const std::string& s);
std::string cpu_list_to_string(const std::vector<int>& cpus);

MacAddr parse_mac(const std::string& what, const std::string& s);
in_addr parse_ipv4(const std::string& what, const std::string& s);

// Shortest text that reads back as the same double, never in exponent form
// (2350000, not 2.35e+06: commands are read by people).
std::string format_number(double v);
std::vector<std::string> split_list(const std::string& s, char sep);  // empty items kept
std::string join_list(const std::vector<std::string>& v, const char* sep);

// Closest accepted name to `given` (edit distance <= 2, or a prefix); empty: none close.
std::string closest_name(const std::string& given, const std::vector<std::string>& accepted);

}  // namespace zc
