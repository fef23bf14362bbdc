#include "harness/perf_counters.h"

// libpfm4 ships its own copy of the perf_event ABI (struct perf_event_attr,
// the perf_event_open() stub); <linux/perf_event.h> would clash with it.
#include <perfmon/pfmlib_perf_event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "harness/errors.h"

namespace zc {
namespace {

// The perf tool's names for the generic events. libpfm4 4.13 knows all of
// them in its "perf" PMU table; the type/config pair is the kernel ABI, used
// when libpfm4 itself is unusable so software events still work.
struct KnownEvent {
  const char* name;
  uint32_t type;
  uint64_t config;
};
constexpr KnownEvent kKnownEvents[] = {
    {"cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES},
    {"instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS},
    {"cache-references", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES},
    {"cache-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES},
    {"branches", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_INSTRUCTIONS},
    {"branch-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES},
    {"task-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK},
    {"cpu-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK},
    {"context-switches", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cpu-migrations", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS},
    {"page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS},
    {"minor-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN},
    {"major-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ},
};

const KnownEvent* find_known(const std::string& name) {
  for (const auto& e : kKnownEvents)
    if (name == e.name) return &e;
  return nullptr;
}

std::string known_names() {
  std::string s;
  for (const auto& e : kKnownEvents) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

int pfm_init_result() {
  static std::once_flag once;
  static int rc = PFM_ERR_NOINIT;
  std::call_once(once, [] { rc = pfm_initialize(); });
  return rc;
}

// 0 on success, else a libpfm4 error code.
int pfm_encode(const std::string& name, perf_event_attr* attr) {
  pfm_perf_encode_arg_t arg;
  std::memset(&arg, 0, sizeof arg);
  arg.attr = attr;
  arg.size = sizeof arg;
  // User and kernel (PLM3|PLM0): receive cost is mostly kernel time.
  return pfm_get_os_event_encoding(name.c_str(), PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT_EXT, &arg);
}

perf_event_attr encode_event(const std::string& name) {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof attr);
  const int init = pfm_init_result();
  const KnownEvent* known = find_known(name);
  if (known) {
    // Pin to libpfm4's generic "perf" PMU: unqualified, a core PMU event of
    // the same name could win the lookup.
    if (init != PFM_SUCCESS || pfm_encode("perf::" + name, &attr) != PFM_SUCCESS) {
      std::memset(&attr, 0, sizeof attr);
      attr.type = known->type;
      attr.config = known->config;
      attr.exclude_hv = 1;
    }
  } else {
    if (init != PFM_SUCCESS)
      throw UsageError("perf event '" + name + "' needs libpfm4, whose initialisation failed (" +
                       pfm_strerror(init) + "); accepted without it: " + known_names());
    int rc = pfm_encode(name, &attr);
    if (rc != PFM_SUCCESS)
      throw UsageError("perf event '" + name + "' is not known to libpfm4 (" + pfm_strerror(rc) +
                       "); accepted: " + known_names() +
                       ", or a libpfm4 event name such as perf::task-clock (showevtinfo lists them)");
  }
  attr.size = sizeof attr;
  attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  attr.disabled = 0;  // count from open; readers take deltas
  attr.inherit = 0;   // this thread only, not threads it creates later
  return attr;
}

}  // namespace

PerfCounterGroup::PerfCounterGroup(pid_t tid, const std::vector<std::string>& event_names) {
  // Encode every name before opening anything, so a bad name leaks no fd.
  std::vector<perf_event_attr> attrs;
  attrs.reserve(event_names.size());
  for (const auto& name : event_names) attrs.push_back(encode_event(name));

  events_.reserve(event_names.size());
  for (size_t i = 0; i < event_names.size(); ++i) {
    PerfEventState st;
    st.name = event_names[i];
    // cpu = -1 with a tid: follows that thread across CPUs, readable from any
    // thread (the sink's counters are read from the main thread).
    st.fd = perf_event_open(&attrs[i], tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (st.fd >= 0) {
      st.available = true;
    } else {
      st.reason = errno_text("perf_event_open(" + st.name + ")", errno);
    }
    events_.push_back(std::move(st));
  }
}

PerfCounterGroup::~PerfCounterGroup() {
  for (const auto& e : events_)
    if (e.fd >= 0) ::close(e.fd);
}

std::vector<uint64_t> PerfCounterGroup::read() const {
  std::vector<uint64_t> out;
  out.reserve(events_.size());
  for (const auto& e : events_) {
    if (!e.available) {
      out.push_back(0);
      continue;
    }
    uint64_t v[3] = {};  // value, time_enabled, time_running (read_format order)
    ssize_t n = ::read(e.fd, v, sizeof v);
    if (n != static_cast<ssize_t>(sizeof v)) {
      int err = n < 0 ? errno : EIO;
      throw EnvError(errno_text("read perf counter " + e.name, err), err);
    }
    // Multiplexed events ran only part of the time: extrapolate. An event
    // never scheduled has no information; report 0 rather than divide by 0.
    if (v[2] == 0) {
      out.push_back(0);
    } else if (v[2] >= v[1]) {
      out.push_back(v[0]);
    } else {
      out.push_back(static_cast<uint64_t>(static_cast<long double>(v[0]) * v[1] / v[2]));
    }
  }
  return out;
}

const std::vector<std::string>& default_hardware_events() {
  static const std::vector<std::string> v{"cycles", "instructions", "cache-misses"};
  return v;
}

const std::vector<std::string>& default_software_events() {
  static const std::vector<std::string> v{"task-clock", "context-switches", "cpu-migrations"};
  return v;
}

nlohmann::json probe_pmu() {
  static const nlohmann::json result = [] {
    PerfCounterGroup g(0, {"cycles", "task-clock"});
    const auto& ev = g.events();
    nlohmann::json j{{"available", ev[0].available},
                     {"reason", ev[0].reason},
                     {"software_events", ev[1].available},
                     {"pmus", nlohmann::json::array()}};
    if (!ev[1].available) j["software_reason"] = ev[1].reason;
    // libpfm4's view comes from CPUID, so a VM can list its core PMU here
    // while the kernel has none; "available" is the kernel's answer.
    if (pfm_init_result() == PFM_SUCCESS) {
      // pfm_for_all_pmus() increments an enum, which C++ rejects.
      for (int p = PFM_PMU_NONE; p < PFM_PMU_MAX; ++p) {
        pfm_pmu_info_t info;
        std::memset(&info, 0, sizeof info);
        info.size = sizeof info;
        if (pfm_get_pmu_info(static_cast<pfm_pmu_t>(p), &info) == PFM_SUCCESS && info.is_present)
          j["pmus"].push_back(info.name);
      }
    }
    return j;
  }();
  return result;
}

}  // namespace zc
