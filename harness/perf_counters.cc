#include "harness/perf_counters.h"

// libpfm4 ships its own copy of the perf_event ABI (struct perf_event_attr,
// the perf_event_open() stub); <linux/perf_event.h> would clash with it.
#include <perfmon/pfmlib_perf_event.h>
#include <sys/ioctl.h>
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

// The format of a read() of the leader: nr, time_enabled, time_running, then
// one value per grouped event in the order they joined. An event opened
// alone reads the same way with nr = 1.
constexpr uint64_t kReadFormat =
    PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;

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
  attr.read_format = kReadFormat;
  // Opened disabled, enabled once the group is whole (as perf stat does);
  // a group member is then opened enabled, so it counts whenever its leader
  // does (see the constructor). Readers take deltas.
  attr.disabled = 1;
  attr.inherit = 0;   // this thread only, not threads it creates later
  return attr;
}

int open_event(perf_event_attr* attr, const PerfTarget& t, int group_fd) {
  // With a tid and cpu -1 the event follows the thread across CPUs and is
  // readable from any thread (the sink's counters are read from the main
  // thread); pid -1 with a cpu counts every task on that CPU.
  return perf_event_open(attr, t.tid, t.cpu, group_fd, PERF_FLAG_FD_CLOEXEC);
}

}  // namespace

std::optional<uint64_t> scaled_delta(const PerfCount& a, const PerfCount& b) {
  const uint64_t value = b.value >= a.value ? b.value - a.value : 0;
  const uint64_t enabled = b.time_enabled_ns >= a.time_enabled_ns ? b.time_enabled_ns - a.time_enabled_ns : 0;
  const uint64_t running = b.time_running_ns >= a.time_running_ns ? b.time_running_ns - a.time_running_ns : 0;
  // Enabled but never running: multiplexed out the whole time.
  if (running == 0) return enabled == 0 ? std::optional<uint64_t>(value) : std::nullopt;
  if (running >= enabled) return value;
  return uint64_t(static_cast<long double>(value) * enabled / running);
}

PerfCounterGroup::PerfCounterGroup(PerfTarget target, const std::vector<std::string>& event_names)
    : target_(target) {
  // Encode every name before opening anything, so a bad name leaks no fd.
  std::vector<perf_event_attr> attrs;
  attrs.reserve(event_names.size());
  for (const auto& name : event_names) attrs.push_back(encode_event(name));

  events_.resize(event_names.size());
  for (size_t i = 0; i < event_names.size(); ++i) {
    PerfEventState st;
    st.name = event_names[i];
    const int leader_fd = leader_ >= 0 ? events_[size_t(leader_)].fd : -1;
    // Members are opened enabled: they count only while their leader does, and
    // the leader starts disabled (perf_event_open(2)'s recipe, as perf stat
    // does). Members opened disabled and enabled through the leader with
    // PERF_IOC_FLAG_GROUP read 0 page-faults in 4 of 10 per-thread runs and
    // 0 for every member of a CPU-wide group (6.18).
    if (leader_fd >= 0) attrs[i].disabled = 0;
    st.fd = open_event(&attrs[i], target_, leader_fd);
    int err = st.fd < 0 ? errno : 0;
    if (st.fd >= 0) {
      st.grouped = true;
      if (leader_ < 0) leader_ = int(i);
      members_.push_back(i);
    } else if (leader_fd >= 0) {
      // Refused as a member (a group the PMU can never schedule whole is
      // EINVAL): counting it alone beats not counting it.
      attrs[i].disabled = 1;  // enabled with the other lone events below
      st.fd = open_event(&attrs[i], target_, -1);
      if (st.fd < 0) err = errno;
    }
    if (st.fd >= 0) {
      st.available = true;
    } else {
      st.reason = errno_text("perf_event_open(" + st.name + ")", err);
    }
    events_[i] = std::move(st);
  }
  if (leader_ >= 0) ::ioctl(events_[size_t(leader_)].fd, PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP);
  for (const auto& e : events_)
    if (e.available && !e.grouped) ::ioctl(e.fd, PERF_EVENT_IOC_ENABLE, 0);
}

PerfCounterGroup::~PerfCounterGroup() {
  // Members before the leader, as perf closes them.
  for (auto it = events_.rbegin(); it != events_.rend(); ++it)
    if (it->fd >= 0) ::close(it->fd);
}

namespace {

// read() of a leader (or a lone event) in kReadFormat: n values.
std::vector<uint64_t> read_group_fd(int fd, size_t n, const std::string& name) {
  std::vector<uint64_t> buf(3 + n);
  const ssize_t want = ssize_t(buf.size() * sizeof(uint64_t));
  const ssize_t got = ::read(fd, buf.data(), size_t(want));
  if (got != want || buf[0] != n) {
    const int err = got < 0 ? errno : EIO;
    throw EnvError(errno_text("read perf counter group led by " + name, err), err);
  }
  return buf;
}

}  // namespace

std::vector<PerfCount> PerfCounterGroup::read_counts() const {
  std::vector<PerfCount> out(events_.size());
  if (leader_ >= 0) {
    // The whole group in one read: every value from the same schedule.
    auto buf = read_group_fd(events_[size_t(leader_)].fd, members_.size(), events_[size_t(leader_)].name);
    for (size_t k = 0; k < members_.size(); ++k) out[members_[k]] = {buf[3 + k], buf[1], buf[2]};
  }
  for (size_t i = 0; i < events_.size(); ++i) {
    const auto& e = events_[i];
    if (!e.available || e.grouped) continue;
    auto buf = read_group_fd(e.fd, 1, e.name);
    out[i] = {buf[3], buf[1], buf[2]};
  }
  return out;
}

std::vector<uint64_t> PerfCounterGroup::read() const {
  std::vector<uint64_t> out;
  for (const auto& c : read_counts()) out.push_back(scaled_delta(PerfCount{}, c).value_or(0));
  return out;
}

nlohmann::json PerfCounterGroup::delta_json(const std::vector<PerfCount>& a, const std::vector<PerfCount>& b) const {
  nlohmann::json arr = nlohmann::json::array();
  for (size_t i = 0; i < events_.size(); ++i) {
    const auto& e = events_[i];
    nlohmann::json j{{"name", e.name}, {"available", e.available}, {"reason", e.reason}};
    const bool have = e.available && i < a.size() && i < b.size();
    if (!have) {
      j["value"] = nullptr;
      arr.push_back(j);
      continue;
    }
    const auto scaled = scaled_delta(a[i], b[i]);
    j["value"] = scaled ? nlohmann::json(*scaled) : nlohmann::json(nullptr);
    j["raw_value"] = b[i].value >= a[i].value ? b[i].value - a[i].value : 0;
    j["time_enabled_ns"] = b[i].time_enabled_ns - a[i].time_enabled_ns;
    j["time_running_ns"] = b[i].time_running_ns - a[i].time_running_ns;
    j["grouped"] = e.grouped;
    arr.push_back(j);
  }
  return arr;
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
