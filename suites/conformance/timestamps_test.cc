// Kernel RX timestamps through the harness (docs/conformance.md item 44):
// at a rate the path sustains, every packet a stamping sink receives carries
// the kernel's software RX stamp, every stamp lies between the generator's
// send and the sink's receive (stack >= 0, wake-up >= 0: no order
// violations), and the total, stack and wake-up histograms count the same
// packets. On veth the hardware probe answers "no" with the driver's reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "harness/errors.h"
#include "harness/lab.h"
#include "harness/timestamps.h"
#include "harness/trial.h"
#include "suites/conformance/flood_rate.h"
#include "harness/iface_guard.h"
#include "suites/conformance/flood_run.h"
#include "suites/conformance/records.h"

namespace zc {
namespace {

using nlohmann::json;

void conformance_item(int n) { ::testing::Test::RecordProperty(kConformanceItemProperty, n); }

LabOptions stamp_lab_options() {
  LabOptions o;
  o.gen_cpu = 0;
  o.sink_cpu = online_cpu_count() > 1 ? 1 : 0;
  return o;
}

TrialSpec stamp_spec(const std::string& rx) {
  TrialSpec s;
  s.tx = {"sendmmsg", {}};
  s.rx = {rx, {}};
  s.payload_bytes = 272;
  s.rate_pps = 20000;
  s.count = 20000;
  s.duration_s = 5.0;  // an upper bound: the count ends the flood
  s.warmup_s = 0.2;
  s.flows = 2;
  s.lab = stamp_lab_options();
  s.suite = "conformance";
  pace_flood(s);  // an emulated CPU sustains far less (flood_rate.h)
  return s;
}

void expect_every_packet_stamped(const json& rec, uint64_t count) {
  SCOPED_TRACE(rec.value("name", "trial"));
  ASSERT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  const json& raw = rec.at("raw");
  EXPECT_EQ(u64(raw, "received_total"), count) << "a sustainable rate: nothing may be lost";
  const json& lat = raw.at("latency_ns");
  const json& st = lat.at("stamps");
  EXPECT_EQ(u64(st, "software"), u64(raw, "received_total")) << "stamps: " << st.dump();
  EXPECT_EQ(u64(st, "unstamped"), 0u) << st.dump();
  EXPECT_EQ(u64(st, "control_truncated"), 0u) << st.dump();
  EXPECT_EQ(u64(st, "order_violations"), 0u)
      << "a kernel stamp before the send or after the user's receive: " << st.dump();
  EXPECT_EQ(st.value("source", ""), "software");
  // The window's packets: total, stack and wake-up count the same ones.
  const uint64_t total = u64(lat, "count");
  EXPECT_GT(total, 0u);
  EXPECT_EQ(u64(lat.at("stack"), "count"), total);
  EXPECT_EQ(u64(lat.at("wakeup"), "count"), total);
  // Per packet stack + wake-up = total: neither part's maximum exceeds the total's.
  EXPECT_LE(u64(lat.at("stack"), "max"), u64(lat, "max"));
  EXPECT_LE(u64(lat.at("wakeup"), "max"), u64(lat, "max"));
  const json& ts = raw.at("timestamps");
  EXPECT_EQ(ts.value("software", false), true) << ts.dump();
  EXPECT_EQ(ts.value("hardware", true), false) << "veth has no hardware stamps: " << ts.dump();
  EXPECT_NE(ts.value("hardware_reason", "").find("ETHTOOL_GET_TS_INFO"), std::string::npos) << ts.dump();
  const json& d = rec.at("derived");
  EXPECT_FALSE(d.value("latency_stack_p50_ns", json()).is_null());
  EXPECT_FALSE(d.value("latency_wakeup_p99_ns", json()).is_null());
}

TEST(recvmmsg, rx_software_stamps_split_latency) {
  conformance_item(44);
  TrialSpec spec = stamp_spec("recvmmsg");
  ZC_RUN_FLOOD(spec, rec);
  expect_every_packet_stamped(rec, spec.count);
}

TEST(recv, rx_software_stamps_split_latency) {
  conformance_item(44);
  TrialSpec spec = stamp_spec("recv");
  ZC_RUN_FLOOD(spec, rec);
  expect_every_packet_stamped(rec, spec.count);
}

// Multishot IORING_OP_RECVMSG (io_uring_recv's default op) carries the same
// SCM_TIMESTAMPING per datagram in its buffer (item 46); every batch uses
// only CQEs posted before its receive time, so no wake-up is negative.
TEST(io_uring_recv, rx_software_stamps_split_latency) {
  conformance_item(46);
  TrialSpec spec = stamp_spec("io_uring_recv");
  ZC_RUN_FLOOD(spec, rec);
  expect_every_packet_stamped(rec, spec.count);
  const json& rx = rec["raw"]["driver_stats"]["rx"];
  EXPECT_EQ(rx.value("op", ""), "recvmsg") << rx.dump();
  EXPECT_EQ(u64(rx, "truncated_reads"), 0u) << rx.dump();
  EXPECT_EQ(u64(rx, "control_truncated"), 0u) << rx.dump();
}

// TPACKET_V3's tp_sec/tp_nsec with TP_STATUS_TS_SOFTWARE (item 11) feed the
// same split; TAP-style traffic as the capture sinks default to.
TEST(tpacket_v3, rx_software_stamps_split_latency) {
  conformance_item(44);
  TrialSpec spec = stamp_spec("tpacket_v3");
  ZC_RUN_FLOOD(spec, rec);
  expect_every_packet_stamped(rec, spec.count);
}

// The probe on a veth the test creates: no hardware stamps, and the driver's
// own answer as the reason; reading its hardware stamping (SIOCGHWTSTAMP, what
// InterfaceGuard does before any change) is refused, so nothing is changed.
TEST(timestamps, veth_has_no_hardware_stamps) {
  conformance_item(44);
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the lab's namespaces and veth pair need CAP_SYS_ADMIN";
  std::optional<Lab> lab;
  try {
    lab.emplace(Lab::create(stamp_lab_options()));
  } catch (const EnvError& e) {
    GTEST_SKIP() << "unsupported: cannot build the lab: " << e.what();
  }
  const std::string ifname = lab->ports().at(0).sink_ifname;
  HwStampProbe probe;
  std::string guard_error;
  int guard_errno = 0;
  lab->sink_ns().run([&] {
    probe = probe_hw_timestamps(ifname);
    try {
      hwtstamp_setting(ifname).read();
    } catch (const EnvError& e) {
      guard_error = e.what();
      guard_errno = e.err;
    }
  });
  EXPECT_FALSE(probe.hardware);
  EXPECT_EQ(probe.driver, "veth");
  EXPECT_EQ(probe.reason, "veth reports no SOF_TIMESTAMPING_RX_HARDWARE (ETHTOOL_GET_TS_INFO)");
  EXPECT_EQ(probe.phc_index, -1);
  EXPECT_NE(guard_error.find("SIOCGHWTSTAMP"), std::string::npos) << guard_error;
  EXPECT_EQ(guard_errno, EOPNOTSUPP) << guard_error;
}

}  // namespace
}  // namespace zc
