// contamination_json (harness/contamination.h) on hand-made raw records: steal
// and foreign task time on the lab CPUs only, the threshold, and what is said
// when the record lacks what it needs.
#include <gtest/gtest.h>

#include "harness/contamination.h"
#include "harness/trial.h"

namespace zc {
namespace {

using nlohmann::json;

// 1 s window; CPU 0 = generator, CPU 1 = sink, CPU 2 is not the lab's.
json raw(uint64_t steal1, uint64_t task1, uint64_t sink_clock, uint64_t gen_clock) {
  json r = {{"window_ns", 1000000000}};
  r["cpu_delta"] = json::array({
      {{"cpu", 0}, {"user_ns", 100000000}, {"nice_ns", 0}, {"system_ns", 300000000}, {"irq_ns", 0},
       {"softirq_ns", 500000000}, {"steal_ns", 0}},
      {{"cpu", 1}, {"user_ns", task1 / 2}, {"nice_ns", 0}, {"system_ns", task1 - task1 / 2}, {"irq_ns", 0},
       {"softirq_ns", 200000000}, {"steal_ns", steal1}},
      {{"cpu", 2}, {"user_ns", 900000000}, {"nice_ns", 0}, {"system_ns", 0}, {"irq_ns", 0},
       {"softirq_ns", 0}, {"steal_ns", 900000000}}});
  r["perf"] = {{"sink", json::array({{{"name", "task-clock"}, {"value", sink_clock}}})},
               {"gen", json::array({{{"name", "task-clock"}, {"value", gen_clock}}})}};
  return r;
}

const json kParams = {{"gen_cpu", 0}, {"sink_cpu", 1}};

TEST(Contamination, CleanTrialIsNotContaminated) {
  // All task time on CPUs 0 and 1 (0.4 s + 0.6 s) is the threads' own.
  json c = contamination_json(kParams, raw(0, 600000000, 600000000, 400000000));
  EXPECT_EQ(c["steal_ns"], 0u);
  EXPECT_EQ(c["foreign_ns"], 0u);
  EXPECT_EQ(c["lab_cpus"], json::array({0, 1}));
  EXPECT_DOUBLE_EQ(c["ratio"].get<double>(), 0.0);
  EXPECT_FALSE(c["contaminated"].get<bool>());
  EXPECT_DOUBLE_EQ(c["max_ratio"].get<double>(), kContaminationMaxRatio);
}

TEST(Contamination, ForeignTaskTimeOnALabCpuCounts) {
  // CPU 1 ran 0.9 s of tasks, the sink thread 0.6 s of it: 0.3 s of 2 CPU-seconds.
  json c = contamination_json(kParams, raw(0, 900000000, 600000000, 400000000));
  EXPECT_EQ(c["foreign_ns"], 300000000u);
  EXPECT_DOUBLE_EQ(c["ratio"].get<double>(), 0.15);
  EXPECT_TRUE(c["contaminated"].get<bool>());
}

TEST(Contamination, StealOnALabCpuCountsAndOtherCpusDoNot) {
  // CPU 2's steal and task time are not the lab's; CPU 1's 0.2 s steal is.
  json c = contamination_json(kParams, raw(200000000, 600000000, 600000000, 400000000));
  EXPECT_EQ(c["steal_ns"], 200000000u);
  EXPECT_DOUBLE_EQ(c["ratio"].get<double>(), 0.1);
  EXPECT_TRUE(c["contaminated"].get<bool>());
  json small = contamination_json(kParams, raw(20000000, 600000000, 600000000, 400000000));
  EXPECT_FALSE(small["contaminated"].get<bool>());  // 1 %: below the threshold
}

TEST(Contamination, WorkerCpuListsAreTheLabCpus) {
  json params = {{"gen_cpu", 0}, {"sink_cpu", 1}, {"sink_cpus", "1-2"}, {"gen_cpus", json::array({0})}};
  json c = contamination_json(params, raw(0, 600000000, 600000000, 400000000));
  EXPECT_EQ(c["lab_cpus"], json::array({0, 1, 2}));
  EXPECT_EQ(c["steal_ns"], 900000000u);  // CPU 2 is a worker CPU now
  EXPECT_TRUE(c["contaminated"].get<bool>());
}

TEST(Contamination, WithoutTaskClockOnlyStealDecides) {
  json r = raw(0, 900000000, 0, 0);
  r.erase("perf");
  json c = contamination_json(kParams, r);
  EXPECT_TRUE(c["foreign_ns"].is_null());
  EXPECT_FALSE(c["contaminated"].get<bool>());
  EXPECT_NE(c["reason"].get<std::string>().find("task-clock"), std::string::npos);
}

TEST(Contamination, NoWindowSaysSo) {
  json c = contamination_json(kParams, json::object());
  EXPECT_TRUE(c["ratio"].is_null());
  EXPECT_FALSE(c["contaminated"].get<bool>());
  EXPECT_FALSE(c["reason"].get<std::string>().empty());
}

TEST(Contamination, DeriveTrialWritesIt) {
  json d = derive_trial(json{{"payload_bytes", 64}, {"gen_cpu", 0}, {"sink_cpu", 1}},
                        raw(0, 900000000, 600000000, 400000000));
  ASSERT_TRUE(d.contains("contamination"));
  EXPECT_TRUE(d["contamination"]["contaminated"].get<bool>());
}

}  // namespace
}  // namespace zc
