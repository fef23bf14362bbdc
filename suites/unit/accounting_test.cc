#include "harness/accounting.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/pacer.h"

namespace zc {
namespace {

SequenceTracker track(std::initializer_list<uint64_t> seqs) {
  SequenceTracker t;
  for (uint64_t s : seqs) t.on_seq(s);
  return t;
}

TEST(accounting, SequenceInOrder) {
  SequenceTracker t;
  for (uint64_t s = 0; s < 10000; ++s) t.on_seq(s);
  EXPECT_EQ(t.unique, 10000u);
  EXPECT_EQ(t.highest, 9999u);
  EXPECT_EQ(t.gaps(), 0u);
  EXPECT_EQ(t.duplicates, 0u);
  EXPECT_EQ(t.reordered, 0u);
  EXPECT_EQ(t.too_old, 0u);
}

TEST(accounting, SequenceEmpty) {
  SequenceTracker t;
  EXPECT_FALSE(t.started);
  EXPECT_EQ(t.gaps(), 0u);
}

TEST(accounting, SequenceGaps) {
  auto t = track({0, 1, 3, 4, 9});
  EXPECT_EQ(t.unique, 5u);
  EXPECT_EQ(t.gaps(), 5u);  // 2, 5, 6, 7, 8
  EXPECT_EQ(t.reordered, 0u);
  // Losing the first packets counts too: the flow starts at 0.
  EXPECT_EQ(track({3, 4}).gaps(), 3u);
}

TEST(accounting, SequenceReordering) {
  auto t = track({0, 2, 1, 5, 4, 3});
  EXPECT_EQ(t.unique, 6u);
  EXPECT_EQ(t.reordered, 3u);
  EXPECT_EQ(t.gaps(), 0u);
  EXPECT_EQ(t.duplicates, 0u);
}

TEST(accounting, SequenceDuplicatesInsideTheWindow) {
  auto t = track({0, 1, 2, 1, 2, 2, 0});
  EXPECT_EQ(t.unique, 3u);
  EXPECT_EQ(t.duplicates, 4u);
  EXPECT_EQ(t.reordered, 0u);
  // A duplicate of the newest packet, and of one just inside the window.
  SequenceTracker w;
  for (uint64_t s = 0; s < SequenceTracker::kWindow; ++s) w.on_seq(s);
  w.on_seq(SequenceTracker::kWindow - 1);
  w.on_seq(0);  // highest - 0 = kWindow - 1: still inside
  EXPECT_EQ(w.duplicates, 2u);
  EXPECT_EQ(w.too_old, 0u);
  EXPECT_EQ(w.unique, SequenceTracker::kWindow);
}

TEST(accounting, SkippedSlotsReadAsUnseen) {
  // Packet 5 and packet 5 + kWindow share a window slot: after a jump the
  // late arrival of a skipped number is a reorder, not a duplicate.
  const uint64_t W = SequenceTracker::kWindow;
  auto t = track({0, 1, 2, 3, 4, 5, W + 10, W + 5, 7});
  EXPECT_EQ(t.duplicates, 0u);
  EXPECT_EQ(t.reordered, 2u);
  EXPECT_EQ(t.unique, 9u);
  // A jump of less than a window keeps what is still inside it.
  auto u = track({0, 1, 2, 3, 4, 5, W + 2, 5, 2});
  EXPECT_EQ(u.duplicates, 1u);  // 5 is still inside (W + 2 - 5 < W) and was seen
  EXPECT_EQ(u.too_old, 1u);     // 2 is not (W + 2 - 2 = W)
}

TEST(accounting, SequenceTooOld) {
  const uint64_t W = SequenceTracker::kWindow;
  auto t = track({0, 10 * W, 1, 1});
  EXPECT_EQ(t.too_old, 2u);
  EXPECT_EQ(t.reordered, 2u);
  EXPECT_EQ(t.duplicates, 0u);  // not checked beyond the window
  EXPECT_EQ(t.unique, 4u);      // best effort: counted unique
}

TEST(accounting, HistogramIndexAndBucketBounds) {
  std::vector<uint64_t> samples;
  for (uint64_t ns = 0; ns < 5000; ++ns) samples.push_back(ns);
  for (int b = 4; b < 64; ++b) {
    uint64_t p = 1ull << b;
    for (uint64_t v : {p - 1, p, p + 1, p + p / 3, p + p / 2 + 7}) samples.push_back(v);
  }
  samples.push_back(UINT64_MAX);
  std::sort(samples.begin(), samples.end());
  size_t prev_idx = 0;
  for (uint64_t ns : samples) {
    size_t i = LatencyHistogram::index(ns);
    ASSERT_LT(i, 64u * 16u) << ns;
    ASSERT_GE(i, prev_idx) << "index not monotonic at " << ns;
    prev_idx = i;
    uint64_t up = LatencyHistogram::bucket_upper(i);
    ASSERT_GE(up, ns) << "bucket " << i << " does not hold " << ns;
    if (i > 0) {
      ASSERT_LT(LatencyHistogram::bucket_upper(i - 1), ns) << "bucket below " << i << " holds " << ns;
    }
    // Reporting the upper bound overstates by at most 1/16.
    ASSERT_LE(double(up - ns), double(ns) * 0.0625) << ns;
  }
  for (size_t i = 1; i < 61 * 16; ++i)
    ASSERT_GT(LatencyHistogram::bucket_upper(i), LatencyHistogram::bucket_upper(i - 1)) << i;
}

TEST(accounting, HistogramQuantiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.quantile(0.5), 0u);
  for (uint64_t v = 1; v <= 100000; ++v) h.add(v * 10);  // 10 ns .. 1 ms, uniform
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), 1000000u);
  for (double q : {0.01, 0.5, 0.9, 0.99, 0.999}) {
    double exact = q * 1e6;
    double got = double(h.quantile(q));
    EXPECT_GE(got, exact * (1 - 1e-9)) << q;
    EXPECT_LE(got, exact * 1.0625) << q;
  }
  EXPECT_EQ(h.quantile(1.0), 1000000u);  // never above the max seen

  LatencyHistogram one;
  one.add(1000);
  EXPECT_EQ(one.quantile(0.0), 1000u);
  EXPECT_EQ(one.quantile(0.5), 1000u);
  EXPECT_EQ(one.quantile(0.999), 1000u);
}

std::vector<uint8_t> packet(uint64_t seq, uint16_t flow, uint64_t tx_ns = 0, size_t len = 272) {
  std::vector<uint8_t> p(len);
  flood_write_payload(p.data(), len, FloodHeader{seq, tx_ns, flow});
  return p;
}

void feed(Accounting& a, const std::vector<uint8_t>& p) { a.on_packet(p.data(), p.size()); }

TEST(accounting, ModeNames) {
  EXPECT_EQ(parse_accounting_mode("full"), AccountingMode::full);
  EXPECT_EQ(parse_accounting_mode("count"), AccountingMode::count);
  EXPECT_STREQ(accounting_mode_name(AccountingMode::full), "full");
  EXPECT_STREQ(accounting_mode_name(AccountingMode::count), "count");
  try {
    parse_accounting_mode("fast");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'fast'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("full, count"), std::string::npos) << e.what();
  }
}

TEST(accounting, FullModeChecksEverything) {
  Accounting a(AccountingMode::full, 2);
  a.begin_batch();
  for (uint64_t s = 0; s < 10; ++s) feed(a, packet(s, 0));
  for (uint64_t s : {0, 1, 3}) feed(a, packet(s, 1));  // flow 1 lost seq 2
  feed(a, packet(4, 0));                               // duplicate on flow 0
  feed(a, packet(0, 7));                               // a flow we never sent
  std::vector<uint8_t> tiny(10, 0);
  feed(a, tiny);  // too short for a flood header
  auto bad = packet(10, 0);
  bad[200] ^= 0x10;
  feed(a, bad);  // corrupt: must not count as seq 10
  EXPECT_EQ(a.packets(), 17u);
  EXPECT_EQ(a.bytes(), 16u * 272 + 10);
  EXPECT_EQ(a.unique(), 13u);
  EXPECT_EQ(a.duplicates(), 1u);
  EXPECT_EQ(a.corrupt(), 1u);
  EXPECT_EQ(a.foreign(), 2u);
  auto j = a.sequence_json();
  EXPECT_EQ(j["checked"], true);
  EXPECT_EQ(j["unique"], 13);
  EXPECT_EQ(j["duplicates"], 1);
  EXPECT_EQ(j["gaps"], 1);
  EXPECT_EQ(j["reordered"], 0);
  EXPECT_EQ(j["too_old"], 0);
  EXPECT_EQ(j["corrupt"], 1);
  EXPECT_EQ(j["foreign"], 2);
}

TEST(accounting, CountModeOnlyCounts) {
  Accounting a(AccountingMode::count, 1);
  a.begin_batch();
  feed(a, packet(0, 0));
  feed(a, packet(0, 0));  // a duplicate: not looked at
  std::vector<uint8_t> junk(100, 0x55);
  feed(a, junk);
  EXPECT_EQ(a.packets(), 3u);
  EXPECT_EQ(a.bytes(), 2u * 272 + 100);
  EXPECT_EQ(a.unique(), 3u);
  EXPECT_EQ(a.duplicates(), 0u);
  EXPECT_EQ(a.corrupt(), 0u);
  EXPECT_EQ(a.foreign(), 0u);
  auto j = a.sequence_json();
  EXPECT_EQ(j["checked"], false);
  EXPECT_EQ(j["unique"], 3);
  EXPECT_EQ(a.latency_json()["count"], 0);
}

// A datagram the sink's buffer cut (MSG_TRUNC) is corrupt even when the
// bytes that fit check out; count mode looks at nothing, as for any packet.
TEST(accounting, TruncatedIsCorruptNeverGood) {
  Accounting a(AccountingMode::full, 1);
  a.begin_batch();
  auto p = packet(0, 0);
  a.on_truncated(p.data(), p.size());
  feed(a, packet(1, 0));
  EXPECT_EQ(a.packets(), 2u);
  EXPECT_EQ(a.bytes(), 2u * 272);
  EXPECT_EQ(a.corrupt(), 1u);
  EXPECT_EQ(a.unique(), 1u);
  EXPECT_EQ(a.sequence_json()["gaps"], 1) << "seq 0 never arrived whole";
  Accounting c(AccountingMode::count, 1);
  c.on_truncated(p.data(), p.size());
  EXPECT_EQ(c.packets(), 1u);
  EXPECT_EQ(c.corrupt(), 0u);
}

TEST(accounting, LatencyOnlyInsideTheWindow) {
  Accounting a(AccountingMode::full, 1);
  uint64_t seq = 0;
  // Stamped age_ns before the batch's receive time, so the latency is >= age_ns.
  auto send_now = [&](uint64_t age_ns) {
    uint64_t tx = monotonic_ns() - age_ns;
    a.begin_batch();
    feed(a, packet(seq++, 0, tx));
  };
  send_now(1000);  // no window set yet
  EXPECT_EQ(a.latency().count(), 0u);
  EXPECT_TRUE(a.latency_json()["p50"].is_null());
  EXPECT_TRUE(a.latency_json()["max"].is_null());

  uint64_t now = monotonic_ns();
  a.set_latency_window(now + 3'600'000'000'000ull, UINT64_MAX);  // starts in an hour
  send_now(1000);
  EXPECT_EQ(a.latency().count(), 0u);
  a.set_latency_window(0, now);  // ended already
  send_now(1000);
  EXPECT_EQ(a.latency().count(), 0u);

  a.set_latency_window(0, UINT64_MAX);
  send_now(5'000'000);  // 5 ms old
  EXPECT_EQ(a.latency().count(), 1u);
  EXPECT_GE(a.latency().max(), 5'000'000u);
  EXPECT_LT(a.latency().max(), 5'000'000'000u);
  a.begin_batch();
  feed(a, packet(seq++, 0, 0));  // tx_ns 0: no timestamp
  feed(a, packet(seq++, 0, monotonic_ns() + 1'000'000'000));  // from the future (other clock)
  EXPECT_EQ(a.latency().count(), 1u);
  auto j = a.latency_json();
  EXPECT_EQ(j["count"], 1);
  EXPECT_GE(j["p50"].get<uint64_t>(), 5'000'000u);
  EXPECT_EQ(j["max"], a.latency().max());
  EXPECT_EQ(a.unique(), seq);  // every packet still counted
}

}  // namespace
}  // namespace zc
