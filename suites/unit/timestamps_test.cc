// harness/timestamps: the SCM_TIMESTAMPING parser, the TPACKET status bits,
// the latency split and its clock conversion, and the accounting that keeps
// the split (counts agree with the total, merged across workers exactly).
#include "harness/timestamps.h"

#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <time.h>

#include <linux/errqueue.h>

#include <cstring>
#include <vector>

#include "harness/accounting.h"
#include "harness/flood_header.h"
#include "harness/pacer.h"
#include "harness/trial.h"

namespace zc {
namespace {

// A control buffer holding the cmsgs a UDP sink socket gets: SO_RXQ_OVFL's
// counter first (the sink sockets enable it), then the stamps.
struct Control {
  alignas(cmsghdr) uint8_t buf[kStampControlBytes] = {};
  msghdr msg{};
  cmsghdr* next = nullptr;
  Control() {
    msg.msg_control = buf;
    msg.msg_controllen = sizeof buf;
    next = CMSG_FIRSTHDR(&msg);
  }
  template <class T>
  void add(int type, const T& v) {
    next->cmsg_level = SOL_SOCKET;
    next->cmsg_type = type;
    next->cmsg_len = CMSG_LEN(sizeof v);
    std::memcpy(CMSG_DATA(next), &v, sizeof v);
    used += CMSG_SPACE(sizeof v);
    msg.msg_controllen = used;
    next = reinterpret_cast<cmsghdr*>(buf + used);
  }
  size_t used = 0;
};

TEST(timestamps, parses_software_and_hardware_stamps) {
  Control c;
  c.add(SO_RXQ_OVFL, uint32_t(3));
  scm_timestamping t{};
  t.ts[0] = {12, 345};
  t.ts[2] = {7, 8};
  c.add(37 /* SO_TIMESTAMPING_OLD */, t);
  KernelStamp k = parse_rx_stamp(c.msg);
  EXPECT_EQ(k.software_ns, 12000000345ull);
  EXPECT_EQ(k.hardware_ns, 7000000008ull);
}

TEST(timestamps, parses_the_new_layout) {
  Control c;
  scm_timestamping64 t{};
  t.ts[0].tv_sec = 1700000000;
  t.ts[0].tv_nsec = 999999999;
  c.add(65 /* SO_TIMESTAMPING_NEW */, t);
  KernelStamp k = parse_rx_stamp(c.msg);
  EXPECT_EQ(k.software_ns, 1700000000999999999ull);
  EXPECT_EQ(k.hardware_ns, 0u) << "an all-zero ts[2] is no hardware stamp";
}

TEST(timestamps, no_stamp_without_the_cmsg) {
  Control c;
  c.add(SO_RXQ_OVFL, uint32_t(0));
  KernelStamp k = parse_rx_stamp(c.msg);
  EXPECT_EQ(k.software_ns, 0u);
  EXPECT_EQ(k.hardware_ns, 0u);
  msghdr empty{};
  EXPECT_EQ(parse_rx_stamp(empty).software_ns, 0u);
}

TEST(timestamps, short_cmsg_is_ignored) {
  // A cmsg of the right type but too short for scm_timestamping (a truncated
  // or foreign layout) must not be read past its end.
  Control c;
  struct timespec one = {5, 5};
  c.add(37, one);
  EXPECT_EQ(parse_rx_stamp(c.msg).software_ns, 0u);
}

TEST(timestamps, tpacket_status_names_the_source) {
  EXPECT_EQ(tpacket_stamp(TP_STATUS_USER | TP_STATUS_TS_SOFTWARE, 42).software_ns, 42u);
  EXPECT_EQ(tpacket_stamp(TP_STATUS_USER | TP_STATUS_TS_SOFTWARE, 42).hardware_ns, 0u);
  EXPECT_EQ(tpacket_stamp(TP_STATUS_USER | TP_STATUS_TS_RAW_HARDWARE, 42).hardware_ns, 42u);
  EXPECT_EQ(tpacket_stamp(TP_STATUS_USER | TP_STATUS_TS_RAW_HARDWARE, 42).software_ns, 0u);
  KernelStamp none = tpacket_stamp(TP_STATUS_USER, 42);
  EXPECT_EQ(none.software_ns + none.hardware_ns, 0u) << "no TS flag: the time tpacket_rcv ran, not a stamp";
}

TEST(timestamps, split_converts_realtime_to_monotonic) {
  const int64_t offset = 1000000;  // realtime is 1 ms ahead
  uint64_t stack = 0, wakeup = 0;
  ASSERT_TRUE(split_latency(5000, 9000, 5000 + 3000 + 1000000, offset, &stack, &wakeup));
  EXPECT_EQ(stack, 3000u);
  EXPECT_EQ(wakeup, 1000u);
  EXPECT_EQ(stack + wakeup, 9000u - 5000u);
  // A stamp before the send or after the user's receive is refused, untouched.
  stack = wakeup = 7;
  EXPECT_FALSE(split_latency(5000, 9000, 4999 + 1000000, offset, &stack, &wakeup));
  EXPECT_FALSE(split_latency(5000, 9000, 9001 + 1000000, offset, &stack, &wakeup));
  EXPECT_EQ(stack, 7u);
  EXPECT_EQ(wakeup, 7u);
  // Comparing the raw realtime stamp with monotonic times would be this refusal.
  EXPECT_FALSE(split_latency(5000, 9000, 8000 + 1000000, 0, &stack, &wakeup));
}

TEST(timestamps, realtime_offset_holds_its_narrowest_read_until_a_step) {
  RealtimeOffset o;
  EXPECT_EQ(o.update({1000000, 8000}), 1000000);  // the first read, wide
  EXPECT_EQ(o.update({1002000, 200}), 1002000);   // narrower and consistent: taken
  // Wider reads that agree within their brackets (a preempted read) leave it.
  EXPECT_EQ(o.update({1004000, 9000}), 1002000);
  EXPECT_EQ(o.update({999000, 7000}), 1002000);
  EXPECT_EQ(o.held().width, 200u);
  // A read that disagrees beyond both brackets is a wall-clock step.
  EXPECT_EQ(o.update({5000000, 9000}), 5000000);
  EXPECT_EQ(o.held().width, 9000u);
}

TEST(timestamps, realtime_offset_matches_the_clocks) {
  timespec r{}, m{};
  clock_gettime(CLOCK_MONOTONIC, &m);
  clock_gettime(CLOCK_REALTIME, &r);
  const int64_t direct = (int64_t(r.tv_sec) - int64_t(m.tv_sec)) * 1000000000 + (r.tv_nsec - m.tv_nsec);
  const int64_t o = realtime_minus_monotonic_ns();
  EXPECT_LT(std::llabs(o - direct), 50000000) << "the offset is the clocks' difference (±50 ms: a loaded host)";
}

// A flood packet sent at `tx_ns` (monotonic).
std::vector<uint8_t> flood_packet(uint64_t seq, uint64_t tx_ns) {
  std::vector<uint8_t> p(64);
  flood_write_payload(p.data(), p.size(), FloodHeader{seq, tx_ns, 0});
  return p;
}

TEST(timestamps, accounting_splits_every_stamped_packet) {
  Accounting a(AccountingMode::full, 1);
  a.set_latency_window(0, UINT64_MAX - 1);
  const int64_t off = realtime_minus_monotonic_ns();
  const uint64_t t0 = monotonic_ns();
  for (uint64_t s = 0; s < 100; ++s) {
    auto p = flood_packet(s, t0 - 20000);
    // The kernel stamped it 10 us after the send (realtime).
    KernelStamp k{uint64_t(int64_t(t0 - 10000) + off), 0};
    a.begin_batch();
    a.on_packet(p.data(), p.size(), k);
  }
  EXPECT_EQ(a.latency().count(), 100u);
  EXPECT_EQ(a.latency_stack().count(), 100u);
  EXPECT_EQ(a.latency_wakeup().count(), 100u);
  EXPECT_EQ(a.stamps().software, 100u);
  EXPECT_EQ(a.stamps().order_violations, 0u);
  // Each packet: stack + wake-up = total, so neither part exceeds the total.
  EXPECT_LE(a.latency_stack().max(), a.latency().max());
  EXPECT_LE(a.latency_wakeup().max(), a.latency().max());
  // The stack part is the 10 us the kernel took, give or take the offset's precision.
  EXPECT_NEAR(double(a.latency_stack().quantile(0.5)), 10000.0, 10000.0 * 0.07 + 2000.0);
  const nlohmann::json j = a.latency_json();
  EXPECT_EQ(j["stack"]["count"], 100);
  EXPECT_EQ(j["wakeup"]["count"], 100);
  EXPECT_EQ(j["stamps"]["source"], "software");
  EXPECT_EQ(j["count"], 100) << "the total keeps its meaning";
}

TEST(timestamps, stamp_outside_the_packets_life_is_counted_not_split) {
  Accounting a(AccountingMode::full, 1);
  a.set_latency_window(0, UINT64_MAX - 1);
  const int64_t off = realtime_minus_monotonic_ns();
  const uint64_t t0 = monotonic_ns();
  auto p = flood_packet(0, t0 - 20000);
  a.begin_batch();
  a.on_packet(p.data(), p.size(), KernelStamp{uint64_t(int64_t(t0 - 30000) + off), 0});  // before the send
  auto q = flood_packet(1, t0 - 20000);
  a.on_packet(q.data(), q.size(), KernelStamp{});  // asked for, none came
  EXPECT_EQ(a.latency().count(), 2u);
  EXPECT_EQ(a.latency_stack().count(), 0u);
  EXPECT_EQ(a.stamps().order_violations, 1u);
  EXPECT_EQ(a.stamps().unstamped, 1u);
  EXPECT_EQ(a.stamps().software, 1u);
}

TEST(timestamps, unstamped_sinks_keep_an_empty_split) {
  Accounting a(AccountingMode::full, 1);
  a.set_latency_window(0, UINT64_MAX - 1);
  auto p = flood_packet(0, monotonic_ns());
  a.begin_batch();
  a.on_packet(p.data(), p.size());
  const nlohmann::json j = a.latency_json();
  EXPECT_EQ(j["stack"]["count"], 0);
  EXPECT_TRUE(j["stack"]["p50"].is_null());
  EXPECT_EQ(j["stamps"]["source"], "none");
  EXPECT_EQ(j["stamps"]["unstamped"], 0) << "a sink that never asked for stamps lacks none";
}

TEST(timestamps, workers_merge_exactly) {
  AccountingSet set(AccountingMode::full, 1, 2);
  set.set_latency_window(0, UINT64_MAX - 1);
  const int64_t off = realtime_minus_monotonic_ns();
  const uint64_t t0 = monotonic_ns();
  for (uint64_t s = 0; s < 10; ++s) {
    Accounting& w = set.worker(int(s % 2));
    auto p = flood_packet(s, t0 - 50000);
    w.begin_batch();
    w.on_packet(p.data(), p.size(), KernelStamp{uint64_t(int64_t(t0 - 40000 + s * 1000) + off), 0});
  }
  const nlohmann::json j = set.latency_json();
  EXPECT_EQ(j["count"], 10);
  EXPECT_EQ(j["stack"]["count"], 10);
  EXPECT_EQ(j["wakeup"]["count"], 10);
  EXPECT_EQ(j["stamps"]["software"], 10);
  uint64_t in_buckets = 0;
  for (const auto& b : j["stack"]["buckets"]) in_buckets += b[1].get<uint64_t>();
  EXPECT_EQ(in_buckets, 10u);
}

TEST(timestamps, record_block_says_why_no_hardware) {
  HwStampProbe p;
  p.driver = "veth";
  p.reason = "veth reports no SOF_TIMESTAMPING_RX_HARDWARE (ETHTOOL_GET_TS_INFO)";
  const nlohmann::json j = timestamps_json(true, p, false);
  EXPECT_EQ(j["software"], true);
  EXPECT_EQ(j["hardware"], false);
  EXPECT_EQ(j["hardware_reason"], p.reason);
  HwStampProbe capable;
  capable.hardware = true;
  const nlohmann::json k = timestamps_json(true, capable, false);
  EXPECT_EQ(k["hardware"], false);
  EXPECT_NE(k["hardware_reason"].get<std::string>().find("--hw-timestamps"), std::string::npos);
}

TEST(timestamps, record_block_from_driver_stats) {
  const nlohmann::json one{{"timestamps", {{"software", true}}}};
  EXPECT_EQ(sink_timestamps(one)["software"], true);
  const nlohmann::json workers{{"workers", {one, one}}};
  EXPECT_EQ(sink_timestamps(workers)["software"], true);
  EXPECT_TRUE(sink_timestamps(nlohmann::json::object()).is_null()) << "a sink that takes no stamps";
}

TEST(timestamps, derived_split_percentiles) {
  const nlohmann::json params{{"payload_bytes", 272}, {"offered_pps", 1000.0}};
  nlohmann::json raw{{"window_ns", 1000000000}, {"sent_in_window", 1000}, {"received_in_window", 1000}};
  raw["latency_ns"] = {{"count", 10}, {"p50", 9000}, {"p99", 20000},
                       {"stack", {{"count", 10}, {"p50", 6000}, {"p99", 8000}}},
                       {"wakeup", {{"count", 10}, {"p50", 3000}, {"p99", 12000}}}};
  nlohmann::json d = derive_trial(params, raw);
  EXPECT_EQ(d["latency_stack_p50_ns"], 6000);
  EXPECT_EQ(d["latency_stack_p99_ns"], 8000);
  EXPECT_EQ(d["latency_wakeup_p50_ns"], 3000);
  EXPECT_EQ(d["latency_wakeup_p99_ns"], 12000);
  raw["latency_ns"]["stack"] = {{"count", 0}, {"p50", nullptr}};
  raw["latency_ns"].erase("wakeup");
  d = derive_trial(params, raw);
  EXPECT_TRUE(d["latency_stack_p50_ns"].is_null()) << "an empty split derives nothing";
  EXPECT_TRUE(d["latency_wakeup_p99_ns"].is_null()) << "a record from before the split";
}

}  // namespace
}  // namespace zc
