// Worker layouts (harness/trial_layout.cc) and the flood's per-worker shares
// (harness/flood.h): impossible layouts are usage errors naming the fix, and
// the shares add up to exactly the trial's rate, count and flows.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "harness/errors.h"
#include "harness/flood.h"
#include "harness/registry.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

WorkerLayout layout(const TrialSpec& s, int online = 2) {
  const GeneratorInfo& g = trial_generator_info(s.generator.name);
  const DriverInfo* tx = g.tx_transport ? &find_driver(s.tx.name, Direction::tx) : nullptr;
  return resolve_worker_layout(s, g, tx, find_driver(s.rx.name, Direction::rx), online);
}

std::string usage_error(const TrialSpec& s, int online = 2) {
  try {
    layout(s, online);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(trial_layout, DefaultsAreOneWorkerEachOnTheLabCpus) {
  TrialSpec s;
  WorkerLayout l = layout(s);
  EXPECT_EQ(l.sink_cpus, std::vector<int>{1});
  EXPECT_EQ(l.gen_cpus, std::vector<int>{0});
  EXPECT_EQ(l.lab_cpus(), (std::vector<int>{0, 1}));
}

TEST(trial_layout, ImplicitListsTakeTheNextCpusWrapping) {
  TrialSpec s;
  s.sink_threads = 2, s.gen_threads = 2, s.flows = 8;
  WorkerLayout l = layout(s);
  EXPECT_EQ(l.sink_cpus, (std::vector<int>{1, 0}));
  EXPECT_EQ(l.gen_cpus, (std::vector<int>{0, 1}));
}

TEST(trial_layout, MoreWorkersThanCpusIsAUsageError) {
  TrialSpec s;
  s.sink_threads = 3;
  EXPECT_NE(usage_error(s).find("needs 3 CPUs and this machine has 2; give --sink-cpus"), std::string::npos);
}

TEST(trial_layout, FewerCpusGivenThanWorkers) {
  TrialSpec s;
  s.sink_threads = 2;
  s.sink_cpus = {1};
  EXPECT_NE(usage_error(s).find("--sink-cpus gives 1 (1)"), std::string::npos);
  s.sink_cpus = {0, 1, 1};
  EXPECT_NE(usage_error(s).find("give --sink-threads 3"), std::string::npos);
}

TEST(trial_layout, AListMayShareACpuBySayingSo) {
  TrialSpec s;
  s.sink_threads = 3;
  s.sink_cpus = {1, 1, 0};
  EXPECT_EQ(layout(s).sink_cpus, (std::vector<int>{1, 1, 0}));
}

TEST(trial_layout, CpuThatDoesNotExist) {
  TrialSpec s;
  s.gen_cpus = {7};
  EXPECT_NE(usage_error(s).find("CPU 7 does not exist"), std::string::npos);
}

TEST(trial_layout, AfXdpWorkersNeedAQueueEach) {
  TrialSpec s;
  s.rx = {"af_xdp", {}};
  s.sink_threads = 2;
  EXPECT_NE(usage_error(s).find("give --queues 2"), std::string::npos);
  s.lab.queues = 2;
  EXPECT_EQ(usage_error(s), "");
  s.tx = {"af_xdp", {}};
  s.gen_threads = 2, s.flows = 2, s.lab.queues = 1, s.sink_threads = 1;
  EXPECT_NE(usage_error(s).find("--gen-threads 2 af_xdp workers need as many queues"), std::string::npos);
}

TEST(trial_layout, GeneratorWorkersNeedAFlowAndAPacketEach) {
  TrialSpec s;
  s.gen_threads = 2;
  EXPECT_NE(usage_error(s).find("give --flows 2"), std::string::npos);
  s.flows = 2, s.count = 1;
  EXPECT_NE(usage_error(s).find("give --count 2"), std::string::npos);
}

TEST(trial_layout, ExternalGeneratorsRunOneInstance) {
  TrialSpec s;
  s.generator = {"pktgen", {}};
  s.gen_threads = 2, s.flows = 2;
  EXPECT_NE(usage_error(s).find("generator pktgen runs 1 instance(s)"), std::string::npos);
}

TEST(flood_share, RatesAndCountsAddUpExactly) {
  for (int workers : {1, 2, 3, 7}) {
    double rate = 0;
    uint64_t count = 0;
    for (int w = 0; w < workers; ++w) {
      FloodShare s = flood_worker_share(1000003, 1000003, w, workers);
      rate += s.rate_pps;
      count += s.max_packets;
      EXPECT_GT(s.max_packets, 0u);
    }
    EXPECT_NEAR(rate, 1000003, 1e-6);
    EXPECT_EQ(count, 1000003u);
  }
  EXPECT_EQ(flood_worker_share(0, 0, 1, 2).rate_pps, 0);  // max stays max
  EXPECT_EQ(flood_worker_share(0, 0, 1, 2).max_packets, 0u);
}

TEST(flood_share, FlowsArePartitioned) {
  std::set<int> all;
  for (int w = 0; w < 3; ++w)
    for (int f : flood_worker_flows(8, w, 3)) {
      EXPECT_EQ(f % 3, w);
      EXPECT_TRUE(all.insert(f).second);
    }
  EXPECT_EQ(all.size(), 8u);
  EXPECT_EQ(flood_worker_flows(1, 0, 1), std::vector<int>{0});
}

TEST(generator_info, DeclarationsNotNames) {
  const GeneratorInfo& flood = trial_generator_info("flood");
  EXPECT_EQ(flood.packets, PacketFormat::flood);
  EXPECT_EQ(flood.sent, SentFrom::own_count);
  EXPECT_TRUE(flood.tx_transport);
  const GeneratorInfo& pktgen = trial_generator_info("pktgen");
  EXPECT_EQ(pktgen.packets, PacketFormat::pktgen);
  EXPECT_EQ(pktgen.sent, SentFrom::gen_link_tx);
  EXPECT_EQ(pktgen.resent_stat, "errors");
  const GeneratorInfo& trafgen = trial_generator_info("trafgen");
  EXPECT_EQ(trafgen.packets, PacketFormat::count);
  EXPECT_TRUE(trafgen.resent_stat.empty());
  EXPECT_THROW(trial_generator_info("nope"), UsageError);
}

}  // namespace
}  // namespace zc

namespace zc {
namespace {

TEST(size_cycle, EachSizeItsWeightPerPeriodSpreadOut) {
  SizeCycle c({{18, 7}, {530, 4}, {1472, 1}});
  EXPECT_EQ(c.period(), 12u);
  EXPECT_EQ(c.largest(), 1472u);
  std::map<size_t, int> seen;
  std::vector<size_t> first;
  for (int i = 0; i < 12 * 5; ++i) {
    size_t s = c.next();
    ++seen[s];
    if (i < 12) first.push_back(s);
  }
  EXPECT_EQ(seen[18], 35);
  EXPECT_EQ(seen[530], 20);
  EXPECT_EQ(seen[1472], 5);
  int run = 0, longest = 0;
  for (size_t s : first) longest = std::max(longest, run = s == 18 ? run + 1 : 0);
  EXPECT_LE(longest, 2);  // never seven small frames back to back
  SizeCycle again({{18, 7}, {530, 4}, {1472, 1}});
  for (size_t s : first) EXPECT_EQ(again.next(), s);  // deterministic
}

}  // namespace
}  // namespace zc
