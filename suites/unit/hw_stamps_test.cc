// harness/hw_stamps and the hardware half of the accounting's latency split:
// the PHC offset arithmetic (narrowest bracket, both ioctl layouts), the
// nic->kernel / kernel->user split, and the nic_interarrival histogram, on
// timestamp sequences built here the way a NIC, the kernel and the sink
// would produce them. No hardware: the ioctls themselves are not exercised
// (README "What could not be tested without hardware").
#include "harness/hw_stamps.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "harness/accounting.h"
#include "harness/timestamps.h"

namespace zc {
namespace {

// A CLOCK_REALTIME of late 2026 and a PHC running TAI, 37 s ahead of UTC
// (ptp4l's usual setting), so the offset is large and negative.
constexpr uint64_t kReal0 = 1796000000000000000ull;
constexpr int64_t kTaiAhead = 37000000000ll;

TEST(hw_stamps, phc_offset_takes_the_narrowest_bracket_midpoint) {
  // Three reads; the PHC value is what the PHC said at its true read time.
  // The middle one's bracket is narrowest (300 ns): its midpoint is used.
  std::vector<PhcSample> s = {
      {kReal0, kReal0 + 500 + kTaiAhead, kReal0 + 900},             // mid 450, PHC read at +500
      {kReal0 + 2000, kReal0 + 2140 + kTaiAhead, kReal0 + 2300},    // mid 2150, PHC read at +2140
      {kReal0 + 5000, kReal0 + 5100 + kTaiAhead, kReal0 + 7000}};   // a stall: 2 µs wide
  PhcOffset o = phc_offset_from_samples(s);
  ASSERT_TRUE(o.valid);
  EXPECT_EQ(o.bracket_ns, 300u);
  EXPECT_EQ(o.realtime_minus_phc_ns, -kTaiAhead + 10);  // midpoint 2150 vs the read at 2140
  // A stamp the PHC gave at real time kReal0 + 10000 converts back within the bracket.
  const int64_t back = int64_t(kReal0 + 10000 + kTaiAhead) + o.realtime_minus_phc_ns;
  EXPECT_LE(std::llabs(back - int64_t(kReal0 + 10000)), int64_t(o.bracket_ns / 2));
}

TEST(hw_stamps, phc_offset_ignores_stepped_and_empty_samples) {
  // The system clock stepped back inside the first bracket; the second has no PHC read.
  std::vector<PhcSample> s = {{kReal0 + 1000, kReal0 + 1000 - 5000, kReal0 + 100},
                              {kReal0 + 2000, 0, kReal0 + 2010},
                              {kReal0 + 3000, kReal0 + 3000 - 5000, kReal0 + 3400}};
  PhcOffset o = phc_offset_from_samples(s);
  ASSERT_TRUE(o.valid);
  EXPECT_EQ(o.bracket_ns, 400u);
  EXPECT_EQ(o.realtime_minus_phc_ns, 5200);  // PHC 5 µs behind, read 200 ns before the midpoint
  EXPECT_FALSE(phc_offset_from_samples({s[0], s[1]}).valid);
  EXPECT_FALSE(phc_offset_from_samples({}).valid);
}

TEST(hw_stamps, phc_sys_offset_interleaved_layout) {
  // PTP_SYS_OFFSET: sys, phc, sys, phc, sys: two samples sharing the middle sys read.
  std::vector<uint64_t> ts = {kReal0, kReal0 + 400 + kTaiAhead, kReal0 + 1000, kReal0 + 1150 + kTaiAhead,
                              kReal0 + 1200};
  auto s = phc_samples_interleaved(ts);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].sys_after_ns, s[1].sys_before_ns);
  PhcOffset o = phc_offset_from_samples(s);
  ASSERT_TRUE(o.valid);
  EXPECT_EQ(o.bracket_ns, 200u);
  EXPECT_EQ(o.realtime_minus_phc_ns, -kTaiAhead - 50);  // mid 1100, read at 1150
  EXPECT_TRUE(phc_samples_interleaved({kReal0}).empty());
}

TEST(hw_stamps, split_hw_latency_parts_add_to_nic_to_user) {
  // The NIC stamps at real time R; the kernel's software stamp 3.2 µs later;
  // the sink gets it 41 µs after that. CLOCK_MONOTONIC = REALTIME - 1e18.
  const int64_t real_minus_mono = 1000000000000000000ll;
  const int64_t real_minus_phc = -kTaiAhead + 7;  // measured, 7 ns off the truth
  const uint64_t R = kReal0 + 123456789;
  const uint64_t hw_phc = R + kTaiAhead;  // what the NIC wrote
  const uint64_t sw_real = R + 3200;
  const uint64_t user_mono = sw_real + 41000 - uint64_t(real_minus_mono);
  uint64_t nk = 0, ku = 0;
  ASSERT_TRUE(split_hw_latency(hw_phc, real_minus_phc, sw_real, user_mono, real_minus_mono, &nk, &ku));
  EXPECT_EQ(nk, 3200u - 7u);
  EXPECT_EQ(ku, 41000u);
  // Out of order: an offset gone stale by 5 µs puts the NIC after the kernel;
  // a software stamp after the user's receive.
  nk = ku = 99;
  EXPECT_FALSE(split_hw_latency(hw_phc, real_minus_phc + 5000, sw_real, user_mono, real_minus_mono, &nk, &ku));
  EXPECT_FALSE(split_hw_latency(hw_phc, real_minus_phc, sw_real, user_mono - 42000, real_minus_mono, &nk, &ku));
  EXPECT_EQ(nk, 99u);
  EXPECT_EQ(ku, 99u);
}

TEST(hw_stamps, nic_interarrival_from_consecutive_stamps) {
  // 272-byte datagrams at 2.35 Mpps: ~425 ns apart, one burst gap, one
  // stamp from another queue arriving late (backwards).
  NicInterarrival ia;
  uint64_t t = kReal0 + kTaiAhead;
  std::vector<uint64_t> stamps;
  for (int i = 0; i < 100; ++i) stamps.push_back(t += 425);
  stamps.push_back(t += 50000);  // a 50 µs pause
  stamps.push_back(t - 10000);   // backwards: not a gap
  stamps.push_back(t += 425);    // measured from the backwards stamp: 10425
  for (uint64_t s : stamps) ia.add(s);
  EXPECT_EQ(ia.gaps().count(), 99u + 1u + 1u);
  EXPECT_EQ(ia.backwards(), 1u);
  EXPECT_EQ(ia.gaps().max(), 50000u);
  EXPECT_GE(ia.gaps().quantile(0.5), 425u);
  EXPECT_LT(ia.gaps().quantile(0.5), 500u);
  // Workers merge by adding.
  NicInterarrival other;
  other.add(1000), other.add(3000);
  ia.merge(other);
  EXPECT_EQ(ia.gaps().count(), 102u);
  EXPECT_EQ(ia.backwards(), 1u);
}

TEST(hw_stamps, accounting_records_interarrival_and_why_no_split) {
  // A PHC the NIC does not have: hardware stamps still give inter-arrival,
  // the nic->kernel split is marked unavailable with the reason.
  PhcClock phc(-1);
  ASSERT_FALSE(phc.ok());
  Accounting acct(AccountingMode::count, 1);
  acct.set_phc(&phc);
  acct.set_latency_window(0, UINT64_MAX);
  uint8_t payload[64] = {};
  uint64_t hw = kReal0 + kTaiAhead;
  for (int i = 0; i < 10; ++i) {
    acct.begin_batch();
    acct.on_packet(payload, sizeof payload, KernelStamp{kReal0 + uint64_t(i) * 1000, hw += 1000});
  }
  nlohmann::json j = acct.latency_json();
  ASSERT_TRUE(j.contains("nic_interarrival")) << j.dump();
  EXPECT_EQ(j["nic_interarrival"]["count"], 9);
  EXPECT_EQ(j["nic_interarrival"]["max"], 1000);
  EXPECT_FALSE(j["nic_split"]["available"].get<bool>());
  EXPECT_NE(j["nic_split"]["reason"].get<std::string>().find("phc_index -1"), std::string::npos) << j.dump();
  EXPECT_FALSE(j.contains("nic_kernel"));
  EXPECT_EQ(phc.to_json()["offset_valid"], false);
  // Neither asked for nor seen: the record keeps its old shape.
  Accounting plain(AccountingMode::count, 1);
  plain.begin_batch();
  plain.on_packet(payload, sizeof payload, KernelStamp{kReal0, 0});
  EXPECT_FALSE(plain.latency_json().contains("nic_split"));
}

}  // namespace
}  // namespace zc
