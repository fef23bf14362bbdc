#include "harness/sysstat.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "harness/errors.h"

namespace zc {
namespace {

std::string sample(const std::string& name) {
  const std::string path = std::string(ZC_SOURCE_DIR) + "/suites/unit/data/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing test sample " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Samples store USER_HZ ticks; expected values are computed the same way the
// parser must, from the live USER_HZ (100 on every Linux ABI in practice).
uint64_t ticks(uint64_t t) { return t * 1'000'000'000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK)); }

TEST(sysstat, ProcStatRealSample) {
  auto cpus = parse_proc_stat(sample("proc_stat.txt"));
  ASSERT_EQ(cpus.size(), 2u);  // the aggregate "cpu" line is not included
  // cpu0 4130 0 1580 28655 51 0 43 98 0 0
  EXPECT_EQ(cpus[0].cpu, 0);
  EXPECT_EQ(cpus[0].user_ns, ticks(4130));
  EXPECT_EQ(cpus[0].nice_ns, 0u);
  EXPECT_EQ(cpus[0].system_ns, ticks(1580));
  EXPECT_EQ(cpus[0].idle_ns, ticks(28655));
  EXPECT_EQ(cpus[0].iowait_ns, ticks(51));
  EXPECT_EQ(cpus[0].irq_ns, 0u);
  EXPECT_EQ(cpus[0].softirq_ns, ticks(43));
  EXPECT_EQ(cpus[0].steal_ns, ticks(98));
  // cpu1 6124 0 3134 24265 774 0 165 104 0 0
  EXPECT_EQ(cpus[1].cpu, 1);
  EXPECT_EQ(cpus[1].user_ns, ticks(6124));
  EXPECT_EQ(cpus[1].steal_ns, ticks(104));
  EXPECT_EQ(cpus[1].busy_ns(), ticks(6124 + 3134 + 165));
}

TEST(sysstat, ProcStatFourCpusOfflineAndShortLines) {
  auto cpus = parse_proc_stat(sample("proc_stat_4cpu.txt"));
  ASSERT_EQ(cpus.size(), 4u);
  EXPECT_EQ(cpus[0].irq_ns, ticks(10));
  EXPECT_EQ(cpus[0].steal_ns, ticks(150));
  // cpu1 has only user nice system idle: the rest reads 0.
  EXPECT_EQ(cpus[1].cpu, 1);
  EXPECT_EQ(cpus[1].user_ns, ticks(1200));
  EXPECT_EQ(cpus[1].nice_ns, ticks(2));
  EXPECT_EQ(cpus[1].system_ns, ticks(600));
  EXPECT_EQ(cpus[1].idle_ns, ticks(21000));
  EXPECT_EQ(cpus[1].iowait_ns, 0u);
  EXPECT_EQ(cpus[1].steal_ns, 0u);
  // cpu2 is offline (no line): its slot keeps its index, all zero.
  EXPECT_EQ(cpus[2].cpu, 2);
  EXPECT_EQ(cpus[2].busy_ns(), 0u);
  EXPECT_EQ(cpus[2].idle_ns, 0u);
  EXPECT_EQ(cpus[3].cpu, 3);
  EXPECT_EQ(cpus[3].softirq_ns, ticks(250));
  EXPECT_EQ(cpus[3].steal_ns, ticks(400));
}

TEST(sysstat, CpuTimesJson) {
  CpuTimes c{3, 1, 2, 3, 4, 5, 6, 7, 8};
  auto j = c.to_json();
  EXPECT_EQ(j["cpu"], 3);
  EXPECT_EQ(j["user_ns"], 1);
  EXPECT_EQ(j["nice_ns"], 2);
  EXPECT_EQ(j["system_ns"], 3);
  EXPECT_EQ(j["idle_ns"], 4);
  EXPECT_EQ(j["iowait_ns"], 5);
  EXPECT_EQ(j["irq_ns"], 6);
  EXPECT_EQ(j["softirq_ns"], 7);
  EXPECT_EQ(j["steal_ns"], 8);
  EXPECT_EQ(j.size(), 9u);
}

TEST(sysstat, CpuDeltaSubtractsAndClamps) {
  std::vector<CpuTimes> a{{0, 100, 0, 50, 1000, 0, 0, 10, 5}, {1, 500, 0, 0, 0, 0, 0, 0, 0}};
  std::vector<CpuTimes> b{{0, 150, 0, 70, 1500, 0, 0, 30, 5}, {1, 400, 0, 0, 0, 0, 0, 0, 0}};
  auto d = cpu_delta(a, b);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].cpu, 0);
  EXPECT_EQ(d[0].user_ns, 50u);
  EXPECT_EQ(d[0].system_ns, 20u);
  EXPECT_EQ(d[0].idle_ns, 500u);
  EXPECT_EQ(d[0].softirq_ns, 20u);
  EXPECT_EQ(d[0].steal_ns, 0u);
  EXPECT_EQ(d[1].user_ns, 0u);  // went backwards (hot-unplug): clamped, not wrapped
  // A CPU that appears only in the later snapshot contributes nothing.
  b.push_back({2, 999, 0, 0, 0, 0, 0, 0, 0});
  d = cpu_delta(a, b);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[2].cpu, 2);
  EXPECT_EQ(d[2].user_ns, 0u);
}

TEST(sysstat, SoftirqsRealSample) {
  EXPECT_EQ(parse_softirqs(sample("softirqs.txt"), "NET_RX"), (std::vector<uint64_t>{2377, 3074}));
  EXPECT_EQ(parse_softirqs(sample("softirqs.txt"), "NET_TX:"), (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(parse_softirqs(sample("softirqs.txt"), "BLOCK"), (std::vector<uint64_t>{0, 86546}));
}

TEST(sysstat, SoftirqsFourCpus) {
  EXPECT_EQ(parse_softirqs(sample("softirqs_4cpu.txt"), "NET_RX"),
            (std::vector<uint64_t>{123456, 0, 9876543, 42}));
  EXPECT_EQ(parse_softirqs(sample("softirqs_4cpu.txt"), "TIMER"),
            (std::vector<uint64_t>{11111, 22222, 33333, 44444}));
}

TEST(sysstat, SoftirqsUnknownRowNamesTheRows) {
  try {
    parse_softirqs(sample("softirqs.txt"), "NET_RXX");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("NET_RXX"), std::string::npos) << m;
    EXPECT_NE(m.find("NET_RX,"), std::string::npos) << m;
  }
}

TEST(sysstat, SoftnetRealSample) {
  auto s = parse_softnet_stat(sample("softnet_stat.txt"));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].processed, 0x8u);
  EXPECT_EQ(s[1].processed, 0x14a7u);
  EXPECT_EQ(s[1].dropped, 0u);
  EXPECT_EQ(s[1].time_squeeze, 0u);
}

TEST(sysstat, SoftnetUsesCpuIdColumnWhenRowsSkipOfflineCpus) {
  // Rows for CPUs 0, 2, 3 (CPU 1 offline); column 12 carries the id.
  auto s = parse_softnet_stat(sample("softnet_stat_4cpu.txt"));
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].processed, 0x1e240u);
  EXPECT_EQ(s[0].time_squeeze, 10u);
  EXPECT_EQ(s[1].processed, 0u);
  EXPECT_EQ(s[2].processed, 0x96b43f00u);  // > 2^31: hex, unsigned
  EXPECT_EQ(s[2].dropped, 1000u);
  EXPECT_EQ(s[2].time_squeeze, 255u);
  EXPECT_EQ(s[3].processed, 42u);
  EXPECT_EQ(s[3].dropped, 1u);
}

TEST(sysstat, SoftnetOldFormatRowIsCpu) {
  auto s = parse_softnet_stat(sample("softnet_stat_11col.txt"));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].processed, 16u);
  EXPECT_EQ(s[0].time_squeeze, 1u);
  EXPECT_EQ(s[1].processed, 32u);
  EXPECT_EQ(s[1].dropped, 2u);
}

TEST(sysstat, SnmpRealSample) {
  auto m = parse_snmp(sample("snmp.txt"));
  EXPECT_EQ(m.at("Ip.Forwarding"), 2u);
  EXPECT_EQ(m.at("Ip.DefaultTTL"), 64u);
  EXPECT_EQ(m.at("Ip.InReceives"), 5291u);
  EXPECT_EQ(m.at("Ip.OutTransmits"), 2669u);
  // UdpLite follows Udp with zeros; it must not overwrite Udp's values.
  EXPECT_EQ(m.at("Udp.InDatagrams"), 26u);
  EXPECT_EQ(m.at("Udp.OutDatagrams"), 27u);
  EXPECT_EQ(m.at("Udp.RcvbufErrors"), 0u);
  EXPECT_EQ(m.at("Udp.MemErrors"), 0u);
  for (const auto& [k, v] : m)
    EXPECT_TRUE(k.starts_with("Ip.") || k.starts_with("Udp.")) << k;
  EXPECT_EQ(m.count("UdpLite.InDatagrams"), 0u);
  EXPECT_EQ(m.count("Tcp.MaxConn"), 0u);
}

TEST(sysstat, LiveReadsAreSane) {
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  auto cpus = read_proc_stat();
  // Index = CPU number, so offline CPUs below the highest online one count too.
  EXPECT_GE(static_cast<long>(cpus.size()), ncpu);
  EXPECT_LE(static_cast<long>(cpus.size()), sysconf(_SC_NPROCESSORS_CONF));
  uint64_t idle = 0;
  for (const auto& c : cpus) idle += c.idle_ns;
  EXPECT_GT(idle, 0u);

  auto rx = read_softirqs("NET_RX");
  EXPECT_GE(static_cast<long>(rx.size()), ncpu);
  auto sn = read_softnet_stat();
  EXPECT_GE(static_cast<long>(sn.size()), ncpu);

  auto snmp = read_snmp_this_thread();
  EXPECT_EQ(snmp.count("Udp.RcvbufErrors"), 1u);
  EXPECT_EQ(snmp.count("Ip.InReceives"), 1u);
}

TEST(sysstat, ProcStatGrowsAcrossAWindow) {
  auto a = read_proc_stat();
  usleep(30'000);
  auto b = read_proc_stat();
  auto d = cpu_delta(a, b);
  ASSERT_EQ(d.size(), b.size());
  uint64_t total = 0;
  for (const auto& c : d) total += c.busy_ns() + c.idle_ns + c.iowait_ns + c.steal_ns;
  // Ticks are coarse (10 ms); 30 ms on >= 1 CPU gives at least one tick.
  EXPECT_GT(total, 0u);
}

TEST(sysstat, ThreadRusageCountsThisThread) {
  auto a = read_thread_rusage();
  volatile uint64_t x = 0;
  timespec t0{}, t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  do {
    for (int i = 0; i < 100000; ++i) x = x + i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1'000'000'000ll + (t.tv_nsec - t0.tv_nsec) < 20'000'000);
  usleep(1000);  // at least one voluntary switch
  auto b = read_thread_rusage();
  EXPECT_GT(b.user_ns + b.system_ns, a.user_ns + a.system_ns);
  EXPECT_GT(b.voluntary_switches, a.voluntary_switches);
}

}  // namespace
}  // namespace zc
