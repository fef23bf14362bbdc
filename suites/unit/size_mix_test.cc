// Frame-size mixes (harness/size_mix.h): the cycle's exact counts, the
// seq -> size table the generator and the sinks share, per-size accounting
// (a mis-sized or truncated packet is corrupt), the derived rates from the
// mix's mean frame, and the flood's per-size sent counts through a TX driver
// interface test double that records the lengths it was given.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "harness/accounting.h"
#include "harness/errors.h"
#include "harness/flood.h"
#include "harness/flood_header.h"
#include "harness/size_mix.h"
#include "harness/trial.h"

namespace zc {

namespace {

TEST(size_mix, ExactCountsOverAnyWholeNumberOfPeriods) {
  auto m = SizeMix::parse("64:7,576:4,1518:1");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->period(), 12u);
  EXPECT_EQ(m->entries(), 3u);
  EXPECT_EQ(m->largest_payload(), 1472u);
  EXPECT_EQ(m->smallest_payload(), 18u);
  std::map<size_t, uint64_t> n;
  for (uint64_t seq = 0; seq < 12 * 1000; ++seq) ++n[m->payload_at(seq)];
  EXPECT_EQ(n[18], 7000u);
  EXPECT_EQ(n[530], 4000u);
  EXPECT_EQ(n[1472], 1000u);
  EXPECT_EQ(n.size(), 3u);
  // The table is one SizeCycle period: the same order as the cycle itself.
  SizeCycle c({{18, 7}, {530, 4}, {1472, 1}});
  for (uint64_t seq = 0; seq < 36; ++seq) EXPECT_EQ(m->payload_at(seq), c.next()) << seq;
  EXPECT_DOUBLE_EQ(m->mean_frame_bytes(), (64.0 * 7 + 576.0 * 4 + 1518.0) / 12);
}

TEST(size_mix, EmptyIsNoMixAndBadInputNamesTheFix) {
  EXPECT_EQ(SizeMix::parse(""), nullptr);
  EXPECT_THROW(SizeMix::parse("63:1"), UsageError);  // below the flood header's 18-byte payload
  try {
    SizeMix::parse("64:1000000,128:1000000");
    FAIL() << "a period of 2e6 packets was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("divide the weights"), std::string::npos) << e.what();
  }
}

std::vector<uint8_t> payload(size_t len, uint64_t seq, uint16_t flow = 0) {
  std::vector<uint8_t> p(len);
  flood_write_payload(p.data(), len, FloodHeader{seq, 0, flow});
  return p;
}

TEST(size_mix, AccountingCountsPerSizeAndMisSizedIsCorrupt) {
  auto m = SizeMix::parse("64:1,100:1,1518:2");
  Accounting a(AccountingMode::full, 1);
  a.set_size_mix(m);
  a.begin_batch();
  for (uint64_t seq = 0; seq < 8; ++seq) {
    auto p = payload(m->payload_at(seq), seq);
    a.on_packet(p.data(), p.size());
  }
  EXPECT_EQ(a.corrupt(), 0u);
  ASSERT_EQ(a.by_size().size(), 3u);
  EXPECT_EQ(a.by_size()[0].received, 2u);
  EXPECT_EQ(a.by_size()[1].received, 2u);
  EXPECT_EQ(a.by_size()[2].received, 4u);
  // A whole, checksummed flood payload of the wrong size for its seq.
  uint64_t seq = 8;
  while (m->payload_at(seq) != 1472) ++seq;
  auto wrong = payload(54, seq);
  a.on_packet(wrong.data(), wrong.size());
  // A 64-byte frame (18-byte payload, no checksum) cut from a larger one.
  uint64_t big = seq + 1;
  while (m->payload_at(big) != 1472) ++big;
  auto cut = payload(1472, big);
  a.on_packet(cut.data(), 18);
  // Truncated in the middle: the checksum fails.
  a.on_packet(cut.data(), 700);
  EXPECT_EQ(a.corrupt(), 3u);
  EXPECT_EQ(a.by_size()[2].corrupt, 3u) << "charged to the size the header's seq gives";
  EXPECT_EQ(a.by_size()[2].received, 4u);
  EXPECT_EQ(a.unique(), 8u);
}

TEST(size_mix, AccountingSetSumsWorkersAndCountModeChecksNothing) {
  auto m = SizeMix::parse("64:1,1518:1");
  AccountingSet set(AccountingMode::full, 2, 2);
  set.set_size_mix(m);
  for (int w = 0; w < 2; ++w) {
    set.worker(w).begin_batch();
    for (uint64_t seq = 0; seq < 4; ++seq) {
      auto p = payload(m->payload_at(seq), seq, uint16_t(w));
      set.worker(w).on_packet(p.data(), p.size());
    }
  }
  auto by = set.by_size();
  ASSERT_EQ(by.size(), 2u);
  EXPECT_EQ(by[0].received, 4u);
  EXPECT_EQ(by[1].received, 4u);
  nlohmann::json t = size_table_json(*m, {4, 4}, by);
  EXPECT_EQ(t["64"]["sent"], 4);
  EXPECT_EQ(t["1518"]["received"], 4);
  EXPECT_EQ(t["1518"]["corrupt"], 0);
  AccountingSet count(AccountingMode::count, 1, 1);
  count.set_size_mix(m);
  EXPECT_TRUE(count.by_size().empty());
  EXPECT_TRUE(size_table_json(*m, {4, 4}, count.by_size())["64"]["received"].is_null());
}

// The wire sink (harness/wire_sink.cc): sent per size from a flow's highest
// sequence number, and an external source's packets binned by length.
TEST(size_mix, CountBelowMatchesTheTableAndLengthBinsCountUnmatched) {
  auto m = SizeMix::parse("64:7,576:4,1518:1");
  for (uint64_t n : {0u, 1u, 5u, 12u, 13u, 1200u, 1207u}) {
    std::vector<uint64_t> want(3, 0);
    for (uint64_t seq = 0; seq < n; ++seq) ++want[m->index_at(seq)];
    for (size_t e = 0; e < 3; ++e) EXPECT_EQ(m->count_below(n, e), want[e]) << "n " << n << " entry " << e;
  }
  EXPECT_EQ(m->entry_of_length(530), 1u);
  EXPECT_EQ(m->entry_of_length(531), m->entries());
  Accounting a(AccountingMode::count, 1);
  a.set_length_bins(m);
  std::vector<uint8_t> buf(1472);
  for (size_t len : {18, 18, 530, 1472, 100}) a.on_packet(buf.data(), len);
  ASSERT_EQ(a.by_size().size(), 3u);
  EXPECT_EQ(a.by_size()[0].received, 2u);
  EXPECT_EQ(a.by_size()[1].received, 1u);
  EXPECT_EQ(a.by_size()[2].received, 1u);
  EXPECT_EQ(a.length_unmatched(), 1u);
  nlohmann::json t = size_table_json(*m, {}, a.by_size());
  EXPECT_TRUE(t["64"]["sent"].is_null()) << "no generator of ours: sent unknown";
  EXPECT_EQ(t["64"]["received"], 2);
  Accounting full(AccountingMode::full, 2);
  full.set_size_mix(m);
  full.begin_batch();
  for (uint64_t seq : {0u, 1u, 4u}) {
    auto p = payload(m->payload_at(seq), seq, 1);
    full.on_packet(p.data(), p.size());
  }
  EXPECT_EQ(full.flow_expected(), (std::vector<uint64_t>{0, 5}));
}

TEST(size_mix, DerivedRatesUseTheMixMeanFrame) {
  nlohmann::json params = {{"payload_bytes", 1472}, {"frame_bytes", 1518}, {"size_mix", "64:7,576:4,1518:1"}};
  nlohmann::json raw = {{"window_ns", 1000000000}, {"received_in_window", 12000}, {"sent_in_window", 12000}};
  nlohmann::json d = derive_trial(params, raw);
  const double mean = (64.0 * 7 + 576.0 * 4 + 1518.0) / 12;
  EXPECT_DOUBLE_EQ(d["mean_frame_bytes"].get<double>(), mean);
  EXPECT_NEAR(d["received_l2_mbps"].get<double>(), 12000 * mean * 8 / 1e6, 1e-9);
  EXPECT_NEAR(d["received_l1_mbps"].get<double>(), 12000 * (mean + 20) * 8 / 1e6, 1e-9);
  EXPECT_NEAR(d["received_mbps"].get<double>(), 12000 * (mean - 46) * 8 / 1e6, 1e-9);
  params.erase("size_mix");
  EXPECT_NEAR(derive_trial(params, raw)["received_l2_mbps"].get<double>(), 12000 * 1518.0 * 8 / 1e6, 1e-9);
}

// A TX driver that keeps every datagram it was handed (as the kernel would
// see it: the first `length` bytes); with refuse_every = n it refuses the
// last packet of every n-th commit, to show retries keep their size.
class RecordingTx : public TxDriver {
 public:
  explicit RecordingTx(size_t refuse_every) : refuse_every_(refuse_every) {}
  void open(const TxContext& ctx) override {
    payload_ = ctx.payload_bytes;
    storage_.resize(8 * payload_);
    for (size_t i = 0; i < 8; ++i) {
      ptrs_.push_back(storage_.data() + i * payload_);
      flood_write_payload(ptrs_[i], payload_, FloodHeader{});
    }
  }
  size_t max_batch() const override { return 8; }
  std::span<uint8_t* const> acquire(size_t n) override { return {ptrs_.data(), std::min<size_t>(n, 8)}; }
  size_t commit(size_t k, int, std::span<const size_t> lengths) override {
    EXPECT_EQ(lengths.size(), k);
    size_t take = (refuse_every_ && ++commits_ % refuse_every_ == 0 && k > 1) ? k - 1 : k;
    for (size_t i = 0; i < take; ++i) sent.emplace_back(ptrs_[i], ptrs_[i] + lengths[i]);
    return take;
  }
  std::vector<std::vector<uint8_t>> sent;

 private:
  size_t refuse_every_ = 0, payload_ = 0, commits_ = 0;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
};

struct MixFlood {
  std::shared_ptr<const SizeMix> mix;
  RecordingTx tx;
  std::vector<uint64_t> sent_by_size;
  uint64_t sent = 0;
  MixFlood(const char* text, uint64_t count, size_t refuse_every) : mix(SizeMix::parse(text)), tx(refuse_every) {
    TxContext ctx;
    ctx.payload_bytes = mix->largest_payload();
    ctx.min_payload_bytes = mix->smallest_payload();
    tx.open(ctx);
    FloodSpec spec;
    spec.payload_bytes = mix->largest_payload();
    spec.flows = 2;
    spec.max_packets = count;
    spec.end_ns = UINT64_MAX;
    spec.mix = mix;
    FloodGenerator gen(tx, spec);
    std::atomic<bool> stop{false};
    gen.run(0, stop);
    sent = gen.sent();
    sent_by_size = gen.sent_by_size();
    EXPECT_EQ(gen.stats()["sent_by_size"], nlohmann::json(sent_by_size));
  }
};

TEST(size_mix, FloodSendsWholePeriodsExactly) {
  // No refusals: commits of 8 alternate the two flows, 600 packets each =
  // 50 whole periods per flow, so exactly the weights.
  MixFlood f("64:7,576:4,1518:1", 1200, 0);
  ASSERT_EQ(f.sent, 1200u);
  ASSERT_EQ(f.tx.sent.size(), 1200u);
  EXPECT_EQ(f.sent_by_size, (std::vector<uint64_t>{700, 400, 100}));
}

TEST(size_mix, RetriesKeepTheirSizeAndEverySinkPacketChecks) {
  MixFlood f("64:7,576:4,1518:1", 1000, 5);
  ASSERT_EQ(f.sent, 1000u);
  ASSERT_EQ(f.tx.sent.size(), 1000u);
  Accounting a(AccountingMode::full, 2);
  a.set_size_mix(f.mix);
  a.begin_batch();
  for (const auto& p : f.tx.sent) a.on_packet(p.data(), p.size());
  EXPECT_EQ(a.corrupt(), 0u);
  EXPECT_EQ(a.foreign(), 0u);
  EXPECT_EQ(a.unique(), 1000u);
  EXPECT_EQ(a.sequence_json().value("gaps", uint64_t(1)), 0u) << "a refused packet was resent with its seq";
  ASSERT_EQ(a.by_size().size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(a.by_size()[i].received, f.sent_by_size[i]) << i;
  EXPECT_EQ(f.sent_by_size[0] + f.sent_by_size[1] + f.sent_by_size[2], 1000u);
}

}  // namespace
}  // namespace zc
