// perf_event counters for one thread or one CPU, events named as users write them
// ("cycles", "instructions", "cache-misses", "task-clock", "context-switches")
// and encoded through libpfm4 (pfm_get_os_event_encoding, PFM_OS_PERF_EVENT).
//
// Where an event cannot be opened (this VM has no PMU: hardware events fail)
// it is kept as `unavailable` with the kernel's reason; software events work
// everywhere and are what the tests use.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace zc {

// Whom a group counts: one thread on whatever CPU it runs (perf stat -t), or
// everything that runs on one CPU, kernel threads included (perf stat -a -C),
// which is where NAPI threads and ksoftirqd show up.
struct PerfTarget {
  pid_t tid = 0;  // the thread (0 = the caller); -1 for CPU-wide
  int cpu = -1;   // -1 with a thread; the CPU for CPU-wide
  static PerfTarget thread(pid_t tid) { return {tid, -1}; }
  static PerfTarget whole_cpu(int cpu) { return {-1, cpu}; }
};

struct PerfEventState {
  std::string name;         // as asked, e.g. "cycles"
  bool available = false;
  std::string reason;       // why unavailable: "perf_event_open(cycles): No such file or directory (ENOENT)"
  int fd = -1;
  // Read in the group (one schedule with the other grouped events, so their
  // ratios are exact); false for an event the kernel would only open alone.
  bool grouped = false;
};

// One reading of one event: its raw count and how long it was enabled and
// actually counting (less when the PMU multiplexed it).
struct PerfCount {
  uint64_t value = 0;
  uint64_t time_enabled_ns = 0;
  uint64_t time_running_ns = 0;
};

// The count between two readings, extrapolated by enabled/running time as
// perf does; nullopt when it never ran in between (no information).
std::optional<uint64_t> scaled_delta(const PerfCount& a, const PerfCount& b);

// The events are opened as one perf group, as perf stat does: the first event
// the kernel accepts leads, the rest join it (PERF_FORMAT_GROUP with
// TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING), so one read() returns every grouped
// count from the same schedule.
class PerfCounterGroup {
 public:
  // Never throws for an unavailable event; throws UsageError for a name
  // libpfm4 does not know. Counts user and kernel, from construction on.
  PerfCounterGroup(PerfTarget target, const std::vector<std::string>& event_names);
  PerfCounterGroup(pid_t tid, const std::vector<std::string>& event_names)
      : PerfCounterGroup(PerfTarget::thread(tid), event_names) {}
  ~PerfCounterGroup();
  PerfCounterGroup(const PerfCounterGroup&) = delete;
  PerfCounterGroup& operator=(const PerfCounterGroup&) = delete;

  // One reading per event, in the order asked; unavailable events read zeros.
  std::vector<PerfCount> read_counts() const;
  // Cumulative values scaled for multiplexing; unavailable events read 0.
  std::vector<uint64_t> read() const;
  // The record's per-event array between two read_counts() (see
  // docs/results-format.md, raw.perf).
  nlohmann::json delta_json(const std::vector<PerfCount>& a, const std::vector<PerfCount>& b) const;
  const std::vector<PerfEventState>& events() const { return events_; }
  const PerfTarget& target() const { return target_; }

 private:
  PerfTarget target_;
  std::vector<PerfEventState> events_;
  int leader_ = -1;              // index into events_ of the group leader
  std::vector<size_t> members_;  // events_ indices in the group's read order
};

// Default event lists.
const std::vector<std::string>& default_hardware_events();  // cycles, instructions, cache-misses
const std::vector<std::string>& default_software_events();  // task-clock, context-switches, cpu-migrations

// Probe once per process: is there a hardware PMU? {"available": bool,
// "reason": "...", "pmus": [libpfm4 PMUs detected]}. Goes in the run context.
nlohmann::json probe_pmu();

}  // namespace zc
