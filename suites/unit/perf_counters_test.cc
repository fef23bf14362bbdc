#include "harness/perf_counters.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "harness/errors.h"

namespace zc {
namespace {

int64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1'000'000'000ll + t.tv_nsec;
}

// Burns this thread's CPU time (not wall time, which a busy VM stretches).
void burn_cpu(int64_t ns) {
  volatile uint64_t x = 0;
  const int64_t start = thread_cpu_ns();
  while (thread_cpu_ns() - start < ns)
    for (int i = 0; i < 10000; ++i) x = x + i;
}

// Touches `pages` fresh anonymous pages: that many page faults, at least.
void fault_pages(size_t pages) {
  const size_t len = pages * size_t(sysconf(_SC_PAGESIZE));
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  for (size_t i = 0; i < pages; ++i) static_cast<volatile char*>(m)[i * size_t(sysconf(_SC_PAGESIZE))] = 1;
  munmap(m, len);
}

// Software events need perf_event_open at all; a sandbox (seccomp,
// perf_event_paranoid 3) may refuse it, which is a SKIP, not a failure.
#define SKIP_IF_UNAVAILABLE(group, i)                                               \
  if (!(group).events()[i].available)                                               \
  GTEST_SKIP() << (group).events()[i].reason

TEST(perf_counters, DefaultEventLists) {
  EXPECT_EQ(default_hardware_events(),
            (std::vector<std::string>{"cycles", "instructions", "cache-misses"}));
  EXPECT_EQ(default_software_events(),
            (std::vector<std::string>{"task-clock", "context-switches", "cpu-migrations"}));
}

TEST(perf_counters, TaskClockCountsBusyLoop) {
  PerfCounterGroup g(0, {"task-clock"});
  SKIP_IF_UNAVAILABLE(g, 0);
  ASSERT_GE(g.events()[0].fd, 0);
  auto a = g.read();
  burn_cpu(20'000'000);
  auto b = g.read();
  ASSERT_EQ(b.size(), 1u);
  const uint64_t d = b[0] - a[0];  // task-clock is in ns
  EXPECT_GE(d, 10'000'000u);
  EXPECT_LE(d, 100'000'000u);
}

TEST(perf_counters, ContextSwitchesOfAnotherThread) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> go{false}, slept{false}, done{false};
  std::thread sleeper([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    while (!go) std::this_thread::yield();
    for (int i = 0; i < 20; ++i) usleep(1000);
    burn_cpu(5'000'000);
    slept = true;
    // Stay alive until read: the counters belong to this thread.
    while (!done) usleep(1000);
  });
  while (tid == 0) std::this_thread::yield();

  PerfCounterGroup g(tid, {"context-switches", "task-clock"});
  if (!g.events()[0].available) {
    done = go = true;
    sleeper.join();
    GTEST_SKIP() << g.events()[0].reason;
  }
  auto a = g.read();
  go = true;
  while (!slept) usleep(1000);
  auto b = g.read();
  done = true;
  sleeper.join();

  // 20 sleeps are 20 voluntary switches; allow for coalescing, never demand more.
  EXPECT_GE(b[0] - a[0], 10u);
  EXPECT_LE(b[0] - a[0], 1000u);
  // And its CPU time, not ours: at least the 5 ms it burned.
  EXPECT_GE(b[1] - a[1], 2'500'000u);
}

TEST(perf_counters, LibpfmNamesAndPerfToolNamesBothWork) {
  PerfCounterGroup g(0, {"PERF_COUNT_SW_TASK_CLOCK", "perf::task-clock", "task-clock", "page-faults"});
  ASSERT_EQ(g.events().size(), 4u);
  EXPECT_EQ(g.events()[0].name, "PERF_COUNT_SW_TASK_CLOCK");
  for (const auto& e : g.events()) EXPECT_EQ(e.available, g.events()[2].available) << e.name;
}

TEST(perf_counters, HardwareEventsAvailableOrExplained) {
  PerfCounterGroup g(0, default_hardware_events());
  auto v = g.read();
  ASSERT_EQ(v.size(), 3u);
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& e = g.events()[i];
    EXPECT_EQ(e.name, default_hardware_events()[i]);
    if (e.available) {
      EXPECT_GE(e.fd, 0);
      EXPECT_TRUE(e.reason.empty()) << e.reason;
    } else {
      EXPECT_EQ(e.fd, -1);
      EXPECT_EQ(v[i], 0u);
      EXPECT_NE(e.reason.find("perf_event_open(" + e.name + ")"), std::string::npos) << e.reason;
    }
  }
}

TEST(perf_counters, ProbePmuIsConsistent) {
  auto j = probe_pmu();
  ASSERT_TRUE(j["available"].is_boolean());
  ASSERT_TRUE(j["reason"].is_string());
  ASSERT_TRUE(j["software_events"].is_boolean());
  ASSERT_TRUE(j["pmus"].is_array());
  PerfCounterGroup g(0, {"cycles", "task-clock"});
  EXPECT_EQ(j["available"].get<bool>(), g.events()[0].available);
  EXPECT_EQ(j["reason"].get<std::string>().empty(), j["available"].get<bool>());
  EXPECT_EQ(j["software_events"].get<bool>(), g.events()[1].available);
  EXPECT_EQ(probe_pmu(), j);  // cached, stable
}

TEST(perf_counters, UnknownEventThrowsUsageError) {
  try {
    PerfCounterGroup g(0, {"task-clock", "no-such-event"});
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("no-such-event"), std::string::npos) << m;
    EXPECT_NE(m.find("cycles"), std::string::npos) << m;
    EXPECT_NE(m.find("task-clock"), std::string::npos) << m;
    EXPECT_EQ(e.exit_code(), kExitUsage);
  }
}


// ---- groups ----------------------------------------------------------------------

const std::vector<std::string> kSoftware{"task-clock", "context-switches", "cpu-migrations", "page-faults"};

TEST(perf_counters, SoftwareEventsReadAsOneGroup) {
  PerfCounterGroup g(0, kSoftware);
  SKIP_IF_UNAVAILABLE(g, 0);
  for (const auto& e : g.events()) {
    EXPECT_TRUE(e.available) << e.name << ": " << e.reason;
    EXPECT_TRUE(e.grouped) << e.name;
  }
  auto a = g.read_counts();
  burn_cpu(20'000'000);
  fault_pages(256);
  auto b = g.read_counts();
  ASSERT_EQ(b.size(), kSoftware.size());
  // One read, one schedule: every member carries the leader's times.
  for (size_t i = 1; i < b.size(); ++i) {
    EXPECT_EQ(b[i].time_enabled_ns, b[0].time_enabled_ns) << kSoftware[i];
    EXPECT_EQ(b[i].time_running_ns, b[0].time_running_ns) << kSoftware[i];
  }
  const uint64_t clock = b[0].value - a[0].value;
  const uint64_t enabled = b[0].time_enabled_ns - a[0].time_enabled_ns;
  EXPECT_GE(clock, 10'000'000u);
  EXPECT_LE(clock, 200'000'000u);
  // Software events are never multiplexed, and a thread's CPU time fits in
  // the wall time it was counted over.
  EXPECT_EQ(b[0].time_running_ns - a[0].time_running_ns, enabled);
  EXPECT_LE(clock, enabled + enabled / 100);  // task-clock's last update may run a little ahead
  EXPECT_GE(b[3].value - a[3].value, 256u);  // page-faults
  EXPECT_LE(b[3].value - a[3].value, 10'000u);
  // Moving CPU takes leaving it: no more migrations than switches (+ the one in flight).
  EXPECT_LE(b[2].value - a[2].value, b[1].value - a[1].value + 1);
}

TEST(perf_counters, TaskClockGrowsWithBusyWork) {
  PerfCounterGroup g(0, kSoftware);
  SKIP_IF_UNAVAILABLE(g, 0);
  auto a = g.read_counts();
  burn_cpu(5'000'000);
  auto b = g.read_counts();
  burn_cpu(40'000'000);
  auto c = g.read_counts();
  const uint64_t short_run = b[0].value - a[0].value, long_run = c[0].value - b[0].value;
  EXPECT_GT(long_run, short_run);
  EXPECT_GE(long_run, 30'000'000u);
}

TEST(perf_counters, DeltaJsonCarriesScalingAndGrouping) {
  PerfCounterGroup g(0, {"task-clock", "cycles", "page-faults"});
  SKIP_IF_UNAVAILABLE(g, 0);
  auto a = g.read_counts();
  burn_cpu(5'000'000);
  auto b = g.read_counts();
  auto j = g.delta_json(a, b);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["name"], "task-clock");
  EXPECT_TRUE(j[0]["grouped"].get<bool>());
  EXPECT_GE(j[0]["value"].get<uint64_t>(), 2'500'000u);
  EXPECT_EQ(j[0]["raw_value"], j[0]["value"]);  // software: never multiplexed
  EXPECT_EQ(j[0]["time_enabled_ns"], j[0]["time_running_ns"]);
  EXPECT_EQ(j[2]["time_enabled_ns"], j[0]["time_enabled_ns"]);
  if (g.events()[1].available) {
    EXPECT_TRUE(j[1]["value"].is_number() || j[1]["value"].is_null());
  } else {
    // No PMU: reported as today, and the group goes on without it.
    EXPECT_TRUE(j[1]["value"].is_null());
    EXPECT_FALSE(j[1].contains("raw_value"));
    EXPECT_NE(j[1]["reason"].get<std::string>().find("perf_event_open(cycles)"), std::string::npos);
  }
}

TEST(perf_counters, UnavailableFirstEventDoesNotLeadTheGroup) {
  PerfCounterGroup g(0, {"cycles", "task-clock", "context-switches"});
  SKIP_IF_UNAVAILABLE(g, 1);
  EXPECT_TRUE(g.events()[1].grouped);
  EXPECT_TRUE(g.events()[2].grouped);
  auto a = g.read_counts();
  burn_cpu(5'000'000);
  auto b = g.read_counts();
  EXPECT_GE(b[1].value - a[1].value, 2'500'000u);
  if (!g.events()[0].available) {
    EXPECT_EQ(b[0].value, 0u);
  }
}

TEST(perf_counters, ScaledDeltaExtrapolatesMultiplexing) {
  // Ran half the time it was enabled: the count is doubled, as perf stat does.
  EXPECT_EQ(scaled_delta({100, 1000, 500}, {300, 3000, 1500}), std::optional<uint64_t>(400));
  EXPECT_EQ(scaled_delta({100, 1000, 1000}, {300, 3000, 3000}), std::optional<uint64_t>(200));
  // Enabled but multiplexed out the whole window: no information, not zero.
  EXPECT_EQ(scaled_delta({100, 1000, 500}, {100, 3000, 500}), std::nullopt);
  EXPECT_EQ(scaled_delta({}, {}), std::optional<uint64_t>(0));
}

// ---- CPU-wide ------------------------------------------------------------------

// The busy thread is pinned to a CPU this process may use; CPU-wide counting
// there must see its work, which the per-thread counters of an idle thread do not.
TEST(perf_counters, CpuWideCountsWhatRunsOnThatCpu) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &allowed)) ++cpu;
  ASSERT_LT(cpu, CPU_SETSIZE);

  PerfCounterGroup whole(PerfTarget::whole_cpu(cpu), {"task-clock", "page-faults", "context-switches"});
  if (!whole.events()[0].available)
    GTEST_SKIP() << "CPU-wide counting needs root or perf_event_paranoid <= 0: " << whole.events()[0].reason;
  EXPECT_EQ(whole.target().tid, -1);
  EXPECT_EQ(whole.target().cpu, cpu);
  // One group, as for a thread: members count (they read 0 while they were
  // opened disabled and enabled through the leader).
  for (const auto& e : whole.events()) EXPECT_TRUE(e.grouped) << e.name;

  std::atomic<pid_t> idle_tid{0};
  std::atomic<bool> done{false};
  std::thread idle([&] {
    idle_tid = static_cast<pid_t>(syscall(SYS_gettid));
    while (!done) usleep(2000);
  });
  while (idle_tid == 0) std::this_thread::yield();
  PerfCounterGroup idle_counts(idle_tid, {"task-clock", "page-faults", "context-switches"});

  auto wa = whole.read_counts();
  auto ia = idle_counts.read_counts();
  std::atomic<uint64_t> busy_clock{0};
  std::thread busy([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    PerfCounterGroup mine(0, {"task-clock"});
    auto a = mine.read_counts();
    burn_cpu(30'000'000);
    fault_pages(512);
    busy_clock = mine.read_counts()[0].value - a[0].value;
  });
  busy.join();
  auto wb = whole.read_counts();
  auto ib = idle_counts.read_counts();
  done = true;
  idle.join();

  const uint64_t whole_clock = wb[0].value - wa[0].value, idle_clock = ib[0].value - ia[0].value;
  const uint64_t whole_faults = wb[1].value - wa[1].value, idle_faults = ib[1].value - ia[1].value;
  EXPECT_GT(whole_clock, idle_clock);
  EXPECT_GE(whole_clock, busy_clock.load() * 9 / 10);  // the CPU's count includes the busy thread's
  EXPECT_GE(whole_faults, 512u);
  EXPECT_GT(whole_faults, idle_faults);
  EXPECT_LT(idle_faults, 512u);
}

}  // namespace
}  // namespace zc
