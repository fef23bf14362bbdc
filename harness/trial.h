// One trial: generator × sink × payload size × offered rate × duration, in a
// fresh lab. warm-up → measurement window → stop generator → drain → collect
// (docs/design.md "A trial, measured"). The result is one record (docs/results-format.md).
#pragma once
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/lab.h"
#include "harness/options.h"

namespace zc {

struct TrialSpec {
  DriverSpec tx{"sendmmsg", {}};
  DriverSpec rx{"recvmmsg", {}};
  size_t payload_bytes = 272;
  double rate_pps = 100000;   // <= 0: max
  double duration_s = 2.0;    // measurement window
  double warmup_s = 0.5;
  uint64_t count = 0;         // 0: bounded by time only
  uint32_t burst = 1;
  int flows = 1;
  LabOptions lab;
  // "auto": the sink's DriverInfo::traffic; "tap": frames carry a foreign
  // destination MAC (packet-capture sinks); "host-addressed": the sink's MAC.
  std::string traffic = "auto";
  DriverSpec generator{"flood", {}};  // "flood" sends through `tx`; others are external (harness/generator.h)
  std::string artifacts_dir;          // passed to external generators
  // Workers (issue "Engine v2"): defaults keep one sink and one generator
  // thread, so every existing trial means what it meant. Empty CPU lists:
  // lab.sink_cpu / lab.gen_cpu for worker 0, then the next CPUs.
  int sink_threads = 1;
  std::vector<int> sink_cpus;
  int gen_threads = 1;
  std::vector<int> gen_cpus;
  // Frame-size mix "64:7,576:4,1518:1" (frame bytes : weight), cycled
  // deterministically by the flood; empty: every packet is payload_bytes.
  std::string size_mix;
  // Named interfaces (`zcbench send` / `zcbench sink`, issue "Leave the lab").
  std::string iface;          // the one interface the user named; empty: the lab
  std::string dst;            // send: destination IPv4, checked against 198.18.0.0/15
  std::string dst_mac;        // send: destination MAC (static, no ARP); empty: resolved/neighbour
  bool allow_any_destination = false;
  std::string source = "generator";  // sink: "external" = packets from a generator not ours
  std::string seq;            // sink: sequence descriptor "offset=N,width=4|8,endian=big|little[,flow=OFF:W]"
  double silence_s = 0;       // sink: end after this long without packets (0: off)
  bool allow_host_interface = false;  // send/sink: allow the default-route or SSH interface
  bool promisc = false;       // sink: IFF_PROMISC for the trial (restored after)
  bool hw_timestamps = false; // sink: RX hardware stamps (SIOCSHWTSTAMP for the trial, restored after)
  double interval_s = 0.1;    // per-interval samples
  std::vector<std::string> perf_events;  // empty: software + hardware defaults
  // Bookkeeping carried into the record.
  std::string suite = "adhoc";
  int repetition = 0;
  nlohmann::json extra_params = nlohmann::json::object();  // e.g. {"claim": 2}
};

inline constexpr uint16_t kFloodUdpPort = 9000;
inline constexpr uint16_t kFloodSrcPortBase = 10000;
inline constexpr size_t kUdpIpv4Overhead = 28;  // IPv4 20 + UDP 8
inline constexpr size_t kEthernetOverhead = 46; // header 14 + FCS 4 + IPv4 20 + UDP 8: frame = payload + 46

// Checks sizes, rates, durations and the drivers' options before any traffic;
// throws UsageError naming the value and what is accepted.
void validate_trial(const TrialSpec& spec);

// The `zcbench run` command line that reproduces this trial.
std::string trial_command(const TrialSpec& spec);

struct TrialOutcome {
  nlohmann::json record;
  bool interrupted = false;  // stop flag seen: record is incomplete, do not store
  // For an `error` record: the exit code of what went wrong (harness/errors.h:
  // kExitInternal, kExitEnvironment, ...); 0 otherwise.
  int exit_code = 0;
};

// Runs the trial (the steps: harness/trial_run.h). A transport the kernel
// cannot run becomes a `skip` record ("unsupported: <kernel's reason>");
// usage errors (also those a driver's open() finds), and an environment that
// cannot build the lab, are thrown; any other exception once workers started
// ends the trial as an `error` record (reason, exit_code). `stop` (may be null) aborts early (Ctrl-C).
TrialOutcome run_trial(const TrialSpec& spec, const std::atomic<bool>* stop);

// Derived figures from raw counters: the one place rates and ratios are
// computed (exposed for tests).
nlohmann::json derive_trial(const nlohmann::json& params, const nlohmann::json& raw);

std::string kernel_release();

}  // namespace zc
