#include "harness/perf_counters.h"

#include <gtest/gtest.h>
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

}  // namespace
}  // namespace zc
