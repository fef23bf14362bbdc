// Accounting over several sink workers (harness/accounting.h, AccountingSet):
// loss, duplicates and gaps come from the union of the workers' exact
// per-flow sets, so they stay exact however a flow was spread over workers.
#include <gtest/gtest.h>

#include <vector>

#include "harness/accounting.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

constexpr size_t kPayload = 64;

void feed(Accounting& a, uint16_t flow, uint64_t seq) {
  std::vector<uint8_t> p(kPayload);
  flood_write_payload(p.data(), p.size(), FloodHeader{seq, 0, flow});
  a.begin_batch();
  a.on_packet(p.data(), p.size());
}

TEST(seq_set, InsertContainsAndSize) {
  SeqSet s;
  EXPECT_TRUE(s.insert(5));
  EXPECT_FALSE(s.insert(5));
  EXPECT_TRUE(s.insert(SeqSet::kChunkBits * 3 + 1));
  EXPECT_TRUE(s.contains(5));
  EXPECT_FALSE(s.contains(6));
  EXPECT_TRUE(s.contains(SeqSet::kChunkBits * 3 + 1));
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.highest(), SeqSet::kChunkBits * 3 + 1);
}

TEST(seq_set, FullChunkStaysExactAfterItsBitsAreFreed) {
  SeqSet s;
  for (uint64_t i = 0; i < SeqSet::kChunkBits; ++i) ASSERT_TRUE(s.insert(i));
  EXPECT_EQ(s.size(), SeqSet::kChunkBits);
  EXPECT_TRUE(s.contains(0));
  EXPECT_TRUE(s.contains(SeqSet::kChunkBits - 1));
  EXPECT_FALSE(s.insert(17));  // a duplicate into a full chunk
  EXPECT_EQ(s.size(), SeqSet::kChunkBits);
  EXPECT_FALSE(s.contains(SeqSet::kChunkBits));
}

TEST(seq_set, UnionOfInterleavedHalves) {
  SeqSet even, odd;
  for (uint64_t i = 0; i < 3 * SeqSet::kChunkBits; ++i) (i % 2 ? odd : even).insert(i);
  even.merge(odd);
  EXPECT_EQ(even.size(), 3 * SeqSet::kChunkBits);
  SeqSet again;
  again.insert(1);
  again.merge(even);  // merging a set with full chunks
  EXPECT_EQ(again.size(), 3 * SeqSet::kChunkBits);
}

TEST(seq_set, NumbersBeyondTheTrackedRangeAreCountedApart) {
  SeqSet s;
  EXPECT_FALSE(s.insert(SeqSet::kMaxTracked));
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.untracked(), 1u);
}

TEST(accounting_set, OneWorkerIsExactlyThatWorker) {
  AccountingSet set(AccountingMode::full, 2, 1);
  Accounting solo(AccountingMode::full, 2);
  for (uint64_t s : {0, 1, 3, 2, 2, 7}) {
    feed(set.worker(0), 1, s);
    feed(solo, 1, s);
  }
  EXPECT_EQ(set.sequence_json(), solo.sequence_json());
  EXPECT_EQ(set.unique(), solo.unique());
  EXPECT_EQ(set.duplicates(), solo.duplicates());
  EXPECT_EQ(set.latency_json(), solo.latency_json());
}

// PACKET_FANOUT_LB / reuseport without affinity: one flow alternates between
// two sinks. Each worker alone sees a gap after every packet; merged, none.
TEST(accounting_set, FlowAlternatingOverTwoWorkersHasNoFalseGapsOrDuplicates) {
  AccountingSet set(AccountingMode::full, 1, 2);
  const uint64_t n = 100001;
  for (uint64_t s = 0; s < n; ++s) feed(set.worker(int(s % 2)), 0, s);
  nlohmann::json j = set.sequence_json();
  EXPECT_EQ(j["unique"], n);
  EXPECT_EQ(j["duplicates"], 0u);
  EXPECT_EQ(j["gaps"], 0u);
  EXPECT_EQ(j["reordered"], 0u);
  EXPECT_EQ(j["merged_workers"], 2);
  EXPECT_EQ(set.packets(), n);
  EXPECT_EQ(set.unique(), n);
  // What trusting each worker's own gap count would have said:
  EXPECT_GT(set.worker(0).sequence_json()["gaps"].get<uint64_t>() +
                set.worker(1).sequence_json()["gaps"].get<uint64_t>(),
            n / 2 - 2);
}

TEST(accounting_set, PacketSeenByTwoWorkersIsOneDuplicate) {
  AccountingSet set(AccountingMode::full, 1, 2);
  for (uint64_t s = 0; s < 10; ++s) feed(set.worker(int(s % 2)), 0, s);
  feed(set.worker(1), 0, 4);  // worker 0 had it: a duplicate neither sees alone
  EXPECT_EQ(set.worker(0).duplicates() + set.worker(1).duplicates(), 0u);
  EXPECT_EQ(set.duplicates(), 1u);
  EXPECT_EQ(set.unique(), 10u);
  EXPECT_EQ(set.packets(), 11u);
  EXPECT_EQ(set.sequence_json()["gaps"], 0u);
  // Within one worker: counted once, not twice.
  feed(set.worker(0), 0, 0);
  EXPECT_EQ(set.duplicates(), 2u);
}

TEST(accounting_set, LossIsTheUnionsGapsOverFlows) {
  AccountingSet set(AccountingMode::full, 3, 3);
  // Flow f is spread over workers by sequence; 5 and 9 of flow 2 never arrive.
  for (uint16_t f = 0; f < 3; ++f)
    for (uint64_t s = 0; s < 20; ++s) {
      if (f == 2 && (s == 5 || s == 9)) continue;
      feed(set.worker(int((s + f) % 3)), f, s);
    }
  nlohmann::json j = set.sequence_json();
  EXPECT_EQ(j["unique"], 58u);
  EXPECT_EQ(j["gaps"], 2u);
  EXPECT_EQ(j["duplicates"], 0u);
}

TEST(accounting_set, ReorderingIsPerWorker) {
  AccountingSet set(AccountingMode::full, 1, 2);
  // Worker 0 sees 0, 2, then 1 late: reordered at that worker. Worker 1's 3
  // arriving "before" worker 0's 2 is not observable, not reordering.
  feed(set.worker(1), 0, 3);
  feed(set.worker(0), 0, 0);
  feed(set.worker(0), 0, 2);
  feed(set.worker(0), 0, 1);
  nlohmann::json j = set.sequence_json();
  EXPECT_EQ(j["reordered"], 1u);
  EXPECT_EQ(j["gaps"], 0u);
  EXPECT_EQ(j["unique"], 4u);
}

TEST(accounting_set, CorruptAndForeignAreSummed) {
  AccountingSet set(AccountingMode::full, 1, 2);
  std::vector<uint8_t> p(kPayload);
  flood_write_payload(p.data(), p.size(), FloodHeader{0, 0, 0});
  p[40] ^= 0xff;
  set.worker(0).on_packet(p.data(), p.size());
  flood_write_payload(p.data(), p.size(), FloodHeader{0, 0, 7});  // flow 7 was never sent
  set.worker(1).on_packet(p.data(), p.size());
  EXPECT_EQ(set.corrupt(), 1u);
  EXPECT_EQ(set.sequence_json()["foreign"], 1u);
  EXPECT_EQ(set.unique(), 0u);
}

TEST(accounting_set, PktgenRepeatsAndGapsOverWorkers) {
  AccountingSet set(AccountingMode::pktgen, 1, 2);
  auto pkt = [&](int w, uint32_t seq) {
    uint8_t p[16] = {0xbe, 0x9b, 0xe9, 0x55, uint8_t(seq >> 24), uint8_t(seq >> 16), uint8_t(seq >> 8), uint8_t(seq)};
    set.worker(w).on_packet(p, sizeof p);
  };
  for (uint32_t s = 1; s <= 10; ++s)
    if (s != 6) pkt(int(s % 2), s);
  pkt(0, 3);  // clone_skb-style repeat, seen at the other worker
  nlohmann::json j = set.sequence_json();
  EXPECT_EQ(j["gaps"], 1u);
  EXPECT_EQ(j["pktgen_repeats"], 1u);
  EXPECT_EQ(j["pktgen_headers"], 10u);
  EXPECT_EQ(j["duplicates"], 0u);
  EXPECT_EQ(set.unique(), set.packets());
}

TEST(accounting_set, LatencyHistogramsMerge) {
  LatencyHistogram a, b;
  a.add(100);
  a.add(200);
  b.add(5000);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.max(), 5000u);
}

}  // namespace
}  // namespace zc
