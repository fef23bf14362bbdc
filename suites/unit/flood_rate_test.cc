// The conformance floods' pace (suites/conformance/flood_rate.h): unchanged
// on a host CPU, paced down under emulation with a bound the count ends first.
#include "suites/conformance/flood_rate.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace zc {
namespace {

TEST(flood_rate, host_cpu_keeps_the_tests_own_rate) {
  const FloodRate r = flood_rate(20000, 20000, 5.0, false);
  EXPECT_EQ(r.rate_pps, 20000);
  EXPECT_EQ(r.count, 20000u);
  EXPECT_EQ(r.duration_s, 5.0);
}

TEST(flood_rate, emulated_cpu_paces_down_and_the_count_ends_the_flood) {
  // The 6.1 and 6.12 guests lost 1-40 % at 10-20 kpps (socket_rcvbuf).
  const FloodRate r = flood_rate(20000, 20000, 5.0, true);
  EXPECT_EQ(r.rate_pps, kEmulatedFloodPps);
  EXPECT_EQ(r.count, uint64_t(kEmulatedFloodPps * kEmulatedFloodS));
  EXPECT_GE(r.duration_s, 2.0 * double(r.count) / r.rate_pps) << "the clock must not end the flood first";
}

TEST(flood_rate, emulated_never_raises_a_lower_rate_or_count) {
  const FloodRate r = flood_rate(500, 300, 5.0, true);
  EXPECT_EQ(r.rate_pps, 500);
  EXPECT_EQ(r.count, 300u);
  EXPECT_GE(r.duration_s, 5.0);
}

TEST(flood_rate, emulated_max_rate_gets_a_pace) {
  // rate <= 0 means "max": never that on an emulated CPU.
  EXPECT_EQ(flood_rate(0, 1000, 5.0, true).rate_pps, kEmulatedFloodPps);
}

struct FakeSpec {
  double rate_pps = 10000;
  uint64_t count = 10000;
  double duration_s = 5.0;
};

TEST(flood_rate, pace_flood_is_idempotent) {
  FakeSpec s;
  pace_flood(s);
  const FakeSpec once = s;
  pace_flood(s);
  EXPECT_EQ(s.rate_pps, once.rate_pps);
  EXPECT_EQ(s.count, once.count);
  EXPECT_EQ(s.duration_s, once.duration_s);
}

}  // namespace
}  // namespace zc
