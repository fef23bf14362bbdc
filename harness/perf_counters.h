// perf_event counters for one thread, events named as users write them
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
#include <string>
#include <vector>

namespace zc {

struct PerfEventState {
  std::string name;         // as asked, e.g. "cycles"
  bool available = false;
  std::string reason;       // why unavailable: "perf_event_open: No such file or directory (ENOENT)"
  int fd = -1;
};

class PerfCounterGroup {
 public:
  // Opens each named event for thread `tid` (0 = calling thread), any CPU,
  // user+kernel. Never throws for an unavailable event; throws UsageError for
  // a name libpfm4 does not know.
  PerfCounterGroup(pid_t tid, const std::vector<std::string>& event_names);
  ~PerfCounterGroup();
  PerfCounterGroup(const PerfCounterGroup&) = delete;
  PerfCounterGroup& operator=(const PerfCounterGroup&) = delete;

  // Current raw values (scaled for multiplexing); unavailable events read 0.
  std::vector<uint64_t> read() const;
  const std::vector<PerfEventState>& events() const { return events_; }

 private:
  std::vector<PerfEventState> events_;
};

// Default event lists.
const std::vector<std::string>& default_hardware_events();  // cycles, instructions, cache-misses
const std::vector<std::string>& default_software_events();  // task-clock, context-switches, cpu-migrations

// Probe once per process: is there a hardware PMU? {"available": bool,
// "reason": "...", "pmus": [libpfm4 PMUs detected]}. Goes in the run context.
nlohmann::json probe_pmu();

}  // namespace zc
