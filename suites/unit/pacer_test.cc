#include "harness/pacer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace zc {
namespace {

constexpr uint64_t kStart = 1'000'000'000'000ull;  // an arbitrary CLOCK_MONOTONIC-like origin

TEST(pacer, DueTimeArithmetic) {
  Pacer p(1e6, 1, kStart);  // 1 µs apart
  EXPECT_FALSE(p.unlimited());
  EXPECT_EQ(p.due_time(0), kStart);
  EXPECT_EQ(p.due_time(1), kStart + 1000);
  EXPECT_EQ(p.due_time(1000), kStart + 1'000'000);
  EXPECT_EQ(p.due_by(kStart - 1), 0u);
  EXPECT_EQ(p.due_by(kStart), 1u);
  EXPECT_EQ(p.due_by(kStart + 999), 1u);
  EXPECT_EQ(p.due_by(kStart + 1000), 2u);
  EXPECT_EQ(p.due_by(kStart + 1'000'000), 1001u);
}

TEST(pacer, FractionalPeriodRoundsToNearest) {
  Pacer p(3e6, 1, kStart);  // 333.33 ns apart
  EXPECT_EQ(p.due_time(1), kStart + 333);
  EXPECT_EQ(p.due_time(2), kStart + 667);
  EXPECT_EQ(p.due_time(3), kStart + 1000);
  EXPECT_EQ(p.due_by(kStart + 666), 2u);
  EXPECT_EQ(p.due_by(kStart + 667), 3u);
}

TEST(pacer, BurstsAreDueTogether) {
  Pacer p(1e6, 8, kStart);  // 8 packets every 8 µs
  for (uint64_t k = 0; k < 8; ++k) EXPECT_EQ(p.due_time(k), kStart) << k;
  for (uint64_t k = 8; k < 16; ++k) EXPECT_EQ(p.due_time(k), kStart + 8000) << k;
  EXPECT_EQ(p.due_time(16), kStart + 16000);
  EXPECT_EQ(p.due_by(kStart - 1), 0u);
  EXPECT_EQ(p.due_by(kStart), 8u);
  EXPECT_EQ(p.due_by(kStart + 7999), 8u);
  EXPECT_EQ(p.due_by(kStart + 8000), 16u);
  // The long-run rate is the asked rate, not rate * burst.
  EXPECT_EQ(p.due_time(8'000'000), kStart + 8'000'000'000ull);
}

TEST(pacer, ZeroBurstMeansOne) {
  Pacer p(1e6, 0, kStart);
  EXPECT_EQ(p.due_time(1), kStart + 1000);
  EXPECT_EQ(p.due_by(kStart), 1u);
}

TEST(pacer, Unlimited) {
  for (double rate : {0.0, -1.0}) {
    Pacer p(rate, 4, kStart);
    EXPECT_TRUE(p.unlimited());
    EXPECT_EQ(p.due_time(0), kStart);
    EXPECT_EQ(p.due_time(123456789), kStart);
    EXPECT_EQ(p.due_by(0), UINT64_MAX);
    EXPECT_EQ(p.due_by(kStart + 1), UINT64_MAX);
  }
}

TEST(pacer, Rebase) {
  Pacer p(1e6, 1, kStart);
  const uint64_t later = kStart + 5'000'000;  // the sender fell 4 ms behind packet 1000
  p.rebase(1000, later);
  EXPECT_EQ(p.due_time(1000), later);
  EXPECT_EQ(p.due_time(1001), later + 1000);
  EXPECT_EQ(p.due_time(999), later);  // earlier packets are simply overdue
  EXPECT_EQ(p.due_by(later - 1), 1000u);
  EXPECT_EQ(p.due_by(later), 1001u);
  EXPECT_EQ(p.due_by(later + 2500), 1003u);

  Pacer b(1e6, 4, kStart);
  b.rebase(10, later);  // a rebase mid-burst starts a new burst at k
  EXPECT_EQ(b.due_time(13), later);
  EXPECT_EQ(b.due_time(14), later + 4000);
  EXPECT_EQ(b.due_by(later), 14u);
}

// Every packet is due at its due time and not one nanosecond before, over a
// million packets, for rates whose periods are not whole nanoseconds.
TEST(pacer, ExactOverAMillionPackets) {
  struct Case {
    double rate;
    uint32_t burst;
  };
  for (Case c : {Case{2.35e6, 1}, Case{3e6 / 7, 1}, Case{1e7 / 3, 16}, Case{123457.0, 3}}) {
    Pacer p(c.rate, c.burst, kStart);
    uint64_t prev = 0;
    for (uint64_t k = 0; k < 1'000'000; ++k) {
      uint64_t t = p.due_time(k);
      ASSERT_GE(t, prev) << "rate " << c.rate << " k " << k;
      prev = t;
      uint64_t by = p.due_by(t);
      ASSERT_GE(by, k + 1) << "rate " << c.rate << " k " << k;
      ASSERT_EQ(by % c.burst, 0u) << "rate " << c.rate << " k " << k;
      if (t > kStart) {
        ASSERT_LE(p.due_by(t - 1), k) << "rate " << c.rate << " k " << k;
      }
    }
  }
}

TEST(pacer, NoDrift) {
  for (double rate : {1.0, 1000.0, 123457.0, 2.35e6, 1e7 / 3, 1e8}) {
    Pacer p(rate, 1, kStart);
    for (double T : {1.0, 60.0, 3600.0}) {
      uint64_t k = uint64_t(std::llround(rate * T));
      double expected = double(kStart) + double(k) / rate * 1e9;  // == start + T (k is whole)
      EXPECT_NEAR(double(p.due_time(k)), expected, 1.0) << "rate " << rate << " T " << T;
    }
  }
}

TEST(pacer, WaitUntilDoesNotReturnEarly) {
  uint64_t target = monotonic_ns() + 200'000;  // 0.2 ms: sleep, then spin
  wait_until(target);
  EXPECT_GE(monotonic_ns(), target);
  uint64_t past = monotonic_ns() - 1000;
  uint64_t before = monotonic_ns();
  wait_until(past);  // already due: returns at once
  EXPECT_LT(monotonic_ns() - before, 50'000'000u);
}

}  // namespace
}  // namespace zc
