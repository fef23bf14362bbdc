// The inside of run_trial (harness/trial.h), as named steps over one state
// struct. run_trial (trial.cc) is the sequence: validate → build lab → start
// sink workers → start generator workers → meter the window → drain →
// collect → build the record. Each step is one function in one of the
// trial_*.cc files; none knows which generator or transport it runs (the
// GeneratorInfo's declarations say how to count, harness/generator.h).
#pragma once
#include <sys/types.h>

#include <atomic>
#include <exception>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/accounting.h"
#include "harness/driver.h"
#include "harness/generator.h"
#include "harness/lab.h"
#include "harness/perf_counters.h"
#include "harness/sysstat.h"
#include "harness/trial.h"

namespace zc {

// Drain policy: after the last generator stopped, each sink keeps receiving
// until it has seen nothing for kDrainSilenceNs — packets still in flight
// (veth backlog, a ring not yet read, a softirq on another CPU) arrive well
// within that on a loaded 2-vCPU machine — but never longer than kDrainMaxNs,
// so a sink that keeps seeing stray traffic cannot hold the trial.
inline constexpr uint64_t kDrainSilenceNs = 100'000'000;  // 100 ms
inline constexpr uint64_t kDrainMaxNs = 2'000'000'000;    // 2 s
// A sink's receive() waits at most this long, so it sees stop and drain
// flags promptly.
inline constexpr int kReceiveTimeoutMs = 10;
// Lead time between the first snapshot and the generators' start, so the
// snapshot's own reads are done before traffic begins.
inline constexpr uint64_t kStartLeadNs = 2'000'000;  // 2 ms

// Which CPU each worker thread is pinned to (resolved from the spec before
// any lab: trial_layout.cc).
struct WorkerLayout {
  std::vector<int> sink_cpus;  // one per sink worker
  std::vector<int> gen_cpus;   // one per generator worker
  std::vector<int> lab_cpus() const;  // every CPU a worker runs on, sorted, unique
};

// Throws UsageError naming the fix for layouts that cannot run: more workers
// than the CPUs given, two workers of one side on one CPU without a list that
// says so, fewer queues than af_xdp workers, more generator workers than flows.
WorkerLayout resolve_worker_layout(const TrialSpec& spec, const GeneratorInfo& gen, const DriverInfo* tx,
                                   const DriverInfo& rx, int online_cpus);

struct SinkWorker {
  int index = 0;
  int cpu = -1;
  std::unique_ptr<RxDriver> rx;
  std::thread thread;
  std::promise<pid_t> ready;  // the thread's tid once its driver is open
  std::exception_ptr error;
  nlohmann::json kernel_stats = nlohmann::json::object();
  nlohmann::json thread_cpu = nlohmann::json::object();
  uint64_t kernel_drops = 0;
  pid_t tid = 0;
};

struct GenWorker {
  int index = 0;
  int cpu = -1;
  std::unique_ptr<Generator> gen;
  std::thread thread;
  std::promise<pid_t> ready;
  std::exception_ptr error;
  nlohmann::json driver_stats = nlohmann::json::object();
  nlohmann::json thread_cpu = nlohmann::json::object();
  pid_t tid = 0;
};

// Counters read at the edges of the trial and of its measurement window.
struct Snapshot {
  uint64_t t_ns = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
  std::vector<CpuTimes> cpu;
  std::vector<uint64_t> net_rx;
  std::vector<SoftnetCpu> softnet;
  std::map<std::string, uint64_t> snmp;
  LinkCounters gen_link, sink_link;
  std::vector<std::vector<PerfCount>> perf_sinks, perf_gens;  // per worker
  std::vector<std::vector<PerfCount>> perf_cpus;              // per PerfCpu, in order
};

// CPU-wide counters on one lab CPU: what ran there besides our threads
// (NAPI threads, ksoftirqd, the softirq itself).
struct PerfCpu {
  int cpu;
  std::vector<std::string> roles;  // "gen", "sink"
  std::unique_ptr<PerfCounterGroup> group;
};

struct TrialRun {
  TrialRun(const TrialSpec& s, const std::atomic<bool>* stop) : spec(s), external_stop(stop) {}
  const TrialSpec& spec;
  const std::atomic<bool>* external_stop;

  // validate
  const DriverInfo* tx_info = nullptr;  // null unless the generator sends through a TX transport
  const DriverInfo* rx_info = nullptr;
  const GeneratorInfo* gen_info = nullptr;
  DriverOptions tx_opts, rx_opts, gen_opts;
  LabOptions lab_opts;
  WorkerLayout layout;
  std::string accounting;  // accounting_mode_name of the sinks' mode
  std::vector<std::string> perf_events;
  nlohmann::json record;

  // build lab, workers
  std::unique_ptr<Lab> lab;
  std::unique_ptr<AccountingSet> acct;
  std::vector<std::unique_ptr<SinkWorker>> sinks;
  std::vector<std::unique_ptr<GenWorker>> gens;
  std::atomic<bool> stop_gen{false}, stop_sink{false};
  std::atomic<int> gens_running{0};    // generator threads not finished yet
  std::atomic<bool> gens_done{false};  // every generator finished: the sinks drain
  std::promise<uint64_t> go;         // generators' start time; 0: do not start
  std::shared_future<uint64_t> go_future = go.get_future().share();
  bool go_sent = false;

  // meter
  std::vector<std::unique_ptr<PerfCounterGroup>> perf_sinks, perf_gens;
  std::vector<PerfCpu> perf_cpus;
  uint64_t t0 = 0, a_time = 0, b_time = 0;
  Snapshot s0, sa, sb, sc;
  nlohmann::json intervals = nlohmann::json::array();
  bool interrupted = false;
};

// Steps, in order (trial.cc runs them).
// Resolves drivers, generator, options, layout and perf events; fills
// run.record's head. Throws UsageError before any lab.
void validate_step(TrialRun& run);
// The kernel's reason a transport or generator cannot run here; nullopt: all usable.
std::optional<std::string> probe_step(const TrialRun& run);
void build_lab(TrialRun& run);
// Each returns the EnvError text when a worker's driver could not open.
std::optional<std::string> start_sink_workers(TrialRun& run);
std::optional<std::string> start_generator_workers(TrialRun& run);
void open_perf_counters(TrialRun& run);
void meter_window(TrialRun& run);
// Lets the generators finish and the sinks drain; joins every thread.
void drain(TrialRun& run);
// Stops and joins every worker (any path out of the trial); idempotent.
void stop_workers(TrialRun& run) noexcept;
// Rethrows the first worker error.
void check_worker_errors(const TrialRun& run);
void collect(TrialRun& run);
void build_record(TrialRun& run);

// Everything after validate_step: probe, lab, workers, record (run_trial is
// validate_step + this; tests call it with a validated run whose generator
// they chose).
TrialOutcome run_prepared_trial(TrialRun& run);

// Helpers the steps share.
Snapshot take_snapshot(const TrialRun& run);
uint64_t sub(uint64_t b, uint64_t a);
uint64_t get_u64(const nlohmann::json& j, const char* key);

// The `params` block of the record. The params helper's table
// (harness/params.cc, trial_params_json(spec)) replaces the spelled-out part;
// the run-resolved fields (traffic, accounting, the worker layout) are added here.
nlohmann::json trial_params_block(const TrialRun& run);

}  // namespace zc
