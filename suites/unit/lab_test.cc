// The lab: two anonymous namespaces joined by veth, built by netlink.
// Needs CAP_SYS_ADMIN (namespaces, sysfs mount); skipped with the reason without it.
#include "harness/lab.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "harness/errors.h"

namespace zc {
namespace {

using lab = ::testing::Test;

// Empty when namespaces can be made here, else the kernel's reason.
std::string netns_unavailable_reason() {
  try {
    Netns probe = Netns::create_anonymous();
    return "";
  } catch (const EnvError& e) {
    return std::string("cannot create network namespaces here (needs root/CAP_SYS_ADMIN): ") + e.what();
  }
}

#define REQUIRE_NETNS()                                              \
  do {                                                               \
    if (const std::string why = netns_unavailable_reason(); !why.empty()) \
      GTEST_SKIP() << why;                                           \
  } while (0)

std::set<std::string> host_net_devices() {
  std::set<std::string> names;
  if (DIR* d = opendir("/sys/class/net")) {
    while (const dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.insert(e->d_name);
    closedir(d);
  }
  return names;
}

// rps_cpus reads back zero-padded and comma-grouped on big machines.
unsigned long long parse_mask(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  return std::strtoull(s.c_str(), nullptr, 16);
}

LabOptions two_cpu_options() {
  LabOptions o;
  o.gen_cpu = 0;
  o.sink_cpu = online_cpu_count() > 1 ? 1 : 0;
  return o;
}

TEST_F(lab, BuildsNamedAddressedPortsInAnonymousNamespaces) {
  REQUIRE_NETNS();
  LabOptions o = two_cpu_options();
  o.port_pairs = 2;
  o.mtu = 9000;
  Lab l = Lab::create(o);
  ASSERT_EQ(l.ports().size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const LabPort& p = l.ports()[static_cast<size_t>(i)];
    EXPECT_EQ(p.gen_ifname, "zcg" + std::to_string(i));
    EXPECT_EQ(p.sink_ifname, "zcs" + std::to_string(i));
    EXPECT_EQ(ipv4_to_string(p.gen_ip), "198.18." + std::to_string(i) + ".1");
    EXPECT_EQ(ipv4_to_string(p.sink_ip), "198.18." + std::to_string(i) + ".2");
    EXPECT_GT(p.gen_ifindex, 1);
    EXPECT_GT(p.sink_ifindex, 1);
    EXPECT_NE(p.gen_mac, MacAddr{});
    EXPECT_NE(p.gen_mac, p.sink_mac);
    EXPECT_EQ(p.gen_mac[0] & 1, 0) << "multicast bit set in " << mac_to_string(p.gen_mac);
  }
  const auto d = l.describe();
  EXPECT_EQ(d["namespaces"], "anonymous");
  EXPECT_EQ(d["mode"], "rps");
  EXPECT_EQ(d["mtu"], 9000);
  EXPECT_EQ(d["ipv6_disabled"], true);
  EXPECT_EQ(d["gro"], false);
  ASSERT_EQ(d["ports"].size(), 2u);
  EXPECT_EQ(d["ports"][1]["sink_ip"], "198.18.1.2");
  EXPECT_EQ(d["ports"][1]["prefix_len"], 24);
  EXPECT_EQ(d["ports"][1]["mtu"], 9000);
  EXPECT_EQ(d["ports"][0]["sink_mac"], mac_to_string(l.ports()[0].sink_mac));
  EXPECT_GE(d["ports"][0]["rx_queues"].get<int>(), 1);
}

TEST_F(lab, UdpFromGeneratorReachesSinkAndMovesLinkCounters) {
  REQUIRE_NETNS();
  Lab l = Lab::create(two_cpu_options());
  const LabPort& p = l.ports()[0];
  const LinkCounters gen_before = l.gen_link_counters();
  const LinkCounters sink_before = l.sink_link_counters();

  // A socket belongs to the namespace it was created in, whoever uses it later.
  int rx = -1;
  l.sink_ns().run([&] {
    rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    check_sys(rx, "sink socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(9000);
    a.sin_addr = p.sink_ip;
    check_sys(bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a), "bind sink socket");
    timeval tv{2, 0};
    check_sys(setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), "SO_RCVTIMEO");
  });

  constexpr int kDatagrams = 5;
  std::string send_error;
  std::thread gen([&] {
    try {
      l.gen_ns().enter_this_thread();
      const int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      check_sys(tx, "gen socket");
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(9000);
      to.sin_addr = p.sink_ip;
      for (int i = 0; i < kDatagrams; ++i) {
        const std::string msg = "zc" + std::to_string(i);
        check_sys(sendto(tx, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to), "sendto");
      }
      close(tx);
    } catch (const std::exception& e) {
      send_error = e.what();
    }
  });
  gen.join();
  ASSERT_EQ(send_error, "");

  for (int i = 0; i < kDatagrams; ++i) {
    char buf[64];
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    const ssize_t n = recvfrom(rx, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    ASSERT_GT(n, 0) << "datagram " << i << ": " << errno_text("recvfrom", errno);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "zc" + std::to_string(i));
    EXPECT_EQ(ipv4_to_string(from.sin_addr), "198.18.0.1");
  }
  close(rx);

  const LinkCounters gen_after = l.gen_link_counters();
  const LinkCounters sink_after = l.sink_link_counters();
  // Exactly ours: static neighbours (no ARP) and IPv6 off (no RS/DAD/MLD).
  EXPECT_EQ(gen_after.tx_packets - gen_before.tx_packets, static_cast<uint64_t>(kDatagrams));
  EXPECT_EQ(sink_after.rx_packets - sink_before.rx_packets, static_cast<uint64_t>(kDatagrams));
  EXPECT_GT(sink_after.rx_bytes, sink_before.rx_bytes);
  EXPECT_EQ(sink_after.rx_dropped, sink_before.rx_dropped);
  EXPECT_EQ(l.gen_link_counters().to_json()["tx_packets"], gen_after.tx_packets);
}

TEST_F(lab, RpsCpusReadBackFollowsMode) {
  REQUIRE_NETNS();
  LabOptions o = two_cpu_options();
  o.mode = LabMode::rps;
  {
    Lab l = Lab::create(o);
    const std::string mask = l.describe()["ports"][0]["rps_cpus"];
    EXPECT_EQ(parse_mask(mask), 1ull << o.sink_cpu) << "rps_cpus read back as " << mask;
  }
  o.mode = LabMode::sender_softirq;
  Lab l = Lab::create(o);
  EXPECT_EQ(l.describe()["mode"], "sender-softirq");
  EXPECT_EQ(parse_mask(l.describe()["ports"][0]["rps_cpus"]), 0u);
}

TEST_F(lab, GroStateIsReadBack) {
  REQUIRE_NETNS();
  LabOptions o = two_cpu_options();
  o.gro = true;
  Lab l = Lab::create(o);
  EXPECT_EQ(l.describe()["gro"], true);
  EXPECT_EQ(l.describe()["ports"][0]["sink_gro"], true);
}

TEST_F(lab, NothingLeaksIntoHostAndDevicesDieWithTheLab) {
  REQUIRE_NETNS();
  const auto host_devices = host_net_devices();
  const std::string host_mounts = read_file("/proc/self/mountinfo");
  int sink_ns_copy = -1;
  {
    Lab l = Lab::create(two_cpu_options());  // rps mode: uses the private sysfs mount
    EXPECT_EQ(if_nametoindex("zcs0"), 0u);
    EXPECT_EQ(if_nametoindex("zcg0"), 0u);
    EXPECT_EQ(host_net_devices(), host_devices);
    EXPECT_EQ(read_file("/proc/self/mountinfo"), host_mounts);
    // Keep the sink namespace alive past the lab to watch its veth end die
    // with the generator namespace.
    sink_ns_copy = fcntl(l.sink_ns().fd(), F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(sink_ns_copy, 0);
  }
  EXPECT_EQ(host_net_devices(), host_devices);

  // Namespace teardown is asynchronous (cleanup_net runs from a workqueue).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    std::thread t([&] {
      if (setns(sink_ns_copy, CLONE_NEWNET) == 0) gone = if_nametoindex("zcs0") == 0;
    });
    t.join();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  close(sink_ns_copy);
  EXPECT_TRUE(gone) << "zcs0 still exists 2 s after the lab was destroyed";
}

TEST_F(lab, CreateIsFastEnoughToRunPerTrial) {
  REQUIRE_NETNS();
  const auto t0 = std::chrono::steady_clock::now();
  { Lab l = Lab::create(two_cpu_options()); }
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  RecordProperty("create_ms", std::to_string(ms));
  // Budget is 200 ms per trial; typical is far below. Generous bound for loaded CI.
  EXPECT_LT(ms, 500.0);
}

TEST_F(lab, KernelAcceptsTheMtuBounds) {
  REQUIRE_NETNS();
  LabOptions o = two_cpu_options();
  for (int mtu : {68, 65535}) {
    o.mtu = mtu;
    Lab l = Lab::create(o);
    EXPECT_EQ(l.describe()["ports"][0]["mtu"], mtu);
  }
}

TEST_F(lab, RejectsImpossibleOptionsNamingTheValue) {
  REQUIRE_NETNS();
  const int cpus = online_cpu_count();
  auto message_of = [](const LabOptions& o) -> std::string {
    try {
      Lab::create(o);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "no UsageError";
  };
  LabOptions o = two_cpu_options();
  o.sink_cpu = cpus;
  const std::string cpu_msg = message_of(o);
  EXPECT_NE(cpu_msg.find("sink_cpu " + std::to_string(cpus)), std::string::npos) << cpu_msg;
  EXPECT_NE(cpu_msg.find(std::to_string(cpus) + " CPUs online"), std::string::npos) << cpu_msg;

  o = two_cpu_options();
  o.gen_cpu = -1;
  EXPECT_NE(message_of(o).find("gen_cpu -1"), std::string::npos);
  for (int mtu : {0, 67, 65536}) {
    o = two_cpu_options();
    o.mtu = mtu;
    EXPECT_NE(message_of(o).find("MTU " + std::to_string(mtu)), std::string::npos) << mtu;
  }
  for (int n : {0, 17}) {
    o = two_cpu_options();
    o.port_pairs = n;
    EXPECT_NE(message_of(o).find("port_pairs"), std::string::npos) << n;
  }
  EXPECT_THROW(pin_this_thread(cpus), UsageError);
  // The xdp mode builds now: af_xdp.xdp_lab_threaded_napi_pinned checks it.
}

TEST_F(lab, ModesMacsAndErrnoText) {
  EXPECT_EQ(parse_lab_mode("sender-softirq"), LabMode::sender_softirq);
  EXPECT_EQ(parse_lab_mode("rps"), LabMode::rps);
  EXPECT_STREQ(lab_mode_name(LabMode::xdp), "xdp");
  try {
    parse_lab_mode("napi");
    ADD_FAILURE() << "no UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("sender-softirq, rps, xdp"), std::string::npos) << e.what();
  }
  EXPECT_EQ(mac_to_string({0x02, 0, 0xab, 0x10, 0xff, 1}), "02:00:ab:10:ff:01");
  EXPECT_EQ(errno_text("open x", ENOENT), "open x: No such file or directory (ENOENT)");
  EXPECT_STREQ(errno_name(EOPNOTSUPP), "EOPNOTSUPP");
  EXPECT_STREQ(errno_name(4242), "E4242");
  errno = EBADF;
  try {
    check_sys(-1, "thing");  // errno as left by whatever ran last; only the shape matters
  } catch (const EnvError& e) {
    EXPECT_EQ(e.exit_code(), kExitEnvironment);
    EXPECT_EQ(e.err, EBADF);
  }
}

}  // namespace
}  // namespace zc

namespace zc {
namespace {

// Queue directories of a lab device, counted through a sysfs mounted inside
// its namespace (independently of what describe() says).
std::pair<int, int> queue_dirs(const Netns& ns, const std::string& dev) {
  int rx = 0, tx = 0;
  run_with_netns_sysfs(ns, [&] {
    const std::string path = "/sys/class/net/" + dev + "/queues";
    DIR* d = opendir(path.c_str());
    if (!d) throw EnvError("cannot open " + path);
    while (const dirent* e = readdir(d)) {
      if (std::strncmp(e->d_name, "rx-", 3) == 0) ++rx;
      if (std::strncmp(e->d_name, "tx-", 3) == 0) ++tx;
    }
    closedir(d);
  });
  return {rx, tx};
}

TEST(lab_queues, two_queues_give_two_rx_and_tx_dirs_on_both_ends) {
  REQUIRE_NETNS();
  LabOptions o = two_cpu_options();
  o.queues = 2;
  Lab l = Lab::create(o);
  const LabPort& p = l.ports()[0];
  EXPECT_EQ(queue_dirs(l.sink_ns(), p.sink_ifname), std::make_pair(2, 2));
  EXPECT_EQ(queue_dirs(l.gen_ns(), p.gen_ifname), std::make_pair(2, 2));
  const auto d = l.describe();
  EXPECT_EQ(d["queues"], 2);
  EXPECT_EQ(d["ports"][0]["rx_queues"], 2);
  EXPECT_EQ(d["ports"][0]["gen_tx_queues"], 2);
  ASSERT_EQ(d["queue_cpus"].size(), 2u) << d.dump();
  // rps mode: every RX queue steered to its queue's sink CPU.
  ASSERT_EQ(d["ports"][0]["rps_cpus_per_queue"].size(), 2u) << d.dump();
  for (int q = 0; q < 2; ++q)
    EXPECT_EQ(parse_mask(d["ports"][0]["rps_cpus_per_queue"][size_t(q)]), 1ull << lab_sink_cpu_for_queue(o, q));
}

TEST(lab_queues, one_queue_by_default_and_xps_left_alone) {
  REQUIRE_NETNS();
  Lab l = Lab::create(two_cpu_options());
  EXPECT_EQ(queue_dirs(l.sink_ns(), l.ports()[0].sink_ifname), std::make_pair(1, 1));
  EXPECT_EQ(l.describe()["ports"][0]["gen_xps_cpus_per_queue"], "not set (one queue)");
}

TEST(lab_queues, xps_sends_each_queue_from_its_generator_cpu) {
  REQUIRE_NETNS();
  if (online_cpu_count() < 2) GTEST_SKIP() << "needs 2 CPUs to give two queues different CPUs";
  LabOptions o = two_cpu_options();
  o.queues = 2;
  o.gen_cpus = {1, 0};
  Lab l = Lab::create(o);
  // describe() returns a copy: keep the value, not a reference into it.
  const auto xps = l.describe()["ports"][0]["gen_xps_cpus_per_queue"];
  if (xps.is_string()) GTEST_SKIP() << "unsupported: " << xps.get<std::string>();
  ASSERT_EQ(xps.size(), 2u) << l.describe().dump();
  EXPECT_EQ(parse_mask(xps[0]), 1ull << 1);
  EXPECT_EQ(parse_mask(xps[1]), 1ull << 0);
}

TEST(lab_queues, rejects_impossible_queue_counts_naming_the_range) {
  LabOptions o = two_cpu_options();
  for (int bad : {0, 65}) {
    o.queues = bad;
    try {
      Lab::create(o);
      ADD_FAILURE() << "queues " << bad << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("queues " + std::to_string(bad)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("1..64"), std::string::npos) << e.what();
    }
  }
  o.queues = 1;
  o.sink_cpus = {online_cpu_count()};
  EXPECT_THROW(Lab::create(o), UsageError);
}

}  // namespace
}  // namespace zc
