// Frame-size mixes end to end (docs/conformance.md item 45): for every TX
// transport that takes a mix (DriverInfo::tx_mixed_lengths), a flood of
// `64:7,576:4,1518:1` into recvmmsg and into tpacket_v3 reconciles exactly
// per size — sent per size (the generator's own count) == received per size,
// zero corrupt, the counts in the mix's proportions — at a rate the path
// sustains with margin (flood_rate.h).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "harness/registry.h"
#include "harness/trial.h"
#include "suites/conformance/flood_rate.h"
#include "suites/conformance/flood_run.h"
#include "suites/conformance/records.h"

namespace zc {
namespace {

using nlohmann::json;

constexpr const char* kMix = "64:7,576:4,1518:1";

TrialSpec imix_spec(const std::string& tx, const std::string& rx) {
  TrialSpec s;
  s.tx = {tx, {}};
  s.rx = {rx, {}};
  s.size_mix = kMix;
  s.payload_bytes = 1472;  // the mix's largest, as the params table sets it
  s.rate_pps = 20000;
  s.count = 12000;         // 1000 periods of 12
  s.duration_s = 5.0;
  s.warmup_s = 0.2;
  s.flows = 2;
  s.lab.gen_cpu = 0;
  s.lab.sink_cpu = online_cpu_count() > 1 ? 1 : 0;
  // af_xdp TX needs the xdp lab; the other sinks pass it by (docs/design.md "Lab modes").
  if (tx == "af_xdp") s.lab.mode = LabMode::xdp;
  s.suite = "conformance";
  pace_flood(s);
  s.count -= s.count % 12;  // whole periods, also when paced down under emulation
  return s;
}

void expect_sizes_reconcile(const TrialSpec& spec, const json& rec) {
  SCOPED_TRACE(rec.value("name", "trial"));
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  EXPECT_EQ(rec.at("params").value("size_mix", ""), kMix);
  const json& raw = rec.at("raw");
  EXPECT_EQ(u64(raw, "sent_total"), spec.count);
  ASSERT_TRUE(raw.contains("sizes") && raw["sizes"].is_object()) << raw.value("sizes", json()).dump();
  const json& sizes = raw["sizes"];
  // Per size: what was sent arrived, exactly, intact. How many of each were
  // sent depends on how the pacing split the count over the flows (each
  // flow cycles from its seq 0), so the weights hold to within one period's
  // weight per flow; the exact counts are the generator's own (raw.sizes.sent).
  const uint64_t periods = spec.count / 12;
  const std::pair<const char*, uint64_t> weights[] = {{"64", 7}, {"576", 4}, {"1518", 1}};
  EXPECT_EQ(sizes.size(), 3u) << sizes.dump();
  uint64_t sent = 0;
  for (const auto& [frame, w] : weights) {
    SCOPED_TRACE(std::string("frame ") + frame);
    ASSERT_TRUE(sizes.contains(frame)) << sizes.dump();
    const uint64_t n = u64(sizes[frame], "sent");
    sent += n;
    EXPECT_EQ(u64(sizes[frame], "received"), n);
    EXPECT_EQ(u64(sizes[frame], "corrupt"), 0u);
    EXPECT_LE(n > w * periods ? n - w * periods : w * periods - n, w * uint64_t(spec.flows)) << sizes.dump();
  }
  EXPECT_EQ(sent, spec.count);
  EXPECT_EQ(u64(raw.at("sequence"), "corrupt"), 0u);
  EXPECT_EQ(u64(rec.at("derived"), "lost_packets"), 0u);
  const double mean = (64.0 * 7 + 576.0 * 4 + 1518.0) / 12;
  EXPECT_DOUBLE_EQ(rec.at("derived").value("mean_frame_bytes", 0.0), mean);
}

void imix_into_every_sink(const std::string& tx) {
  ::testing::Test::RecordProperty(kConformanceItemProperty, 44);
  for (const char* rx : {"recvmmsg", "tpacket_v3"}) {
    SCOPED_TRACE(tx + " -> " + rx);
    TrialSpec spec = imix_spec(tx, rx);
    ZC_RUN_FLOOD(spec, rec);
    expect_sizes_reconcile(spec, rec);
  }
}

// One test per transport that declares mixes; the list below must name them
// all (a driver that starts declaring tx_mixed_lengths gets a test or fails here).
const std::set<std::string> kTested = {"sendto",        "sendmmsg",         "io_uring_send", "io_uring_send_zc",
                                       "msg_zerocopy",  "tx_ring",          "sendfile",      "vmsplice",
                                       "af_xdp"};

TEST(imix, every_mixing_tx_transport_is_tested) {
  std::set<std::string> declared;
  for (const auto& d : all_drivers())
    if (d.direction == Direction::tx && d.tx_mixed_lengths) declared.insert(d.name);
  EXPECT_EQ(declared, kTested);
}

TEST(sendto, imix_reconciles_per_size) { imix_into_every_sink("sendto"); }
TEST(sendmmsg, imix_reconciles_per_size) { imix_into_every_sink("sendmmsg"); }
TEST(io_uring_send, imix_reconciles_per_size) { imix_into_every_sink("io_uring_send"); }
TEST(io_uring_send_zc, imix_reconciles_per_size) { imix_into_every_sink("io_uring_send_zc"); }
TEST(msg_zerocopy, imix_reconciles_per_size) { imix_into_every_sink("msg_zerocopy"); }
TEST(tx_ring, imix_reconciles_per_size) { imix_into_every_sink("tx_ring"); }
TEST(sendfile, imix_reconciles_per_size) { imix_into_every_sink("sendfile"); }
TEST(vmsplice, imix_reconciles_per_size) { imix_into_every_sink("vmsplice"); }
TEST(af_xdp, imix_reconciles_per_size) { imix_into_every_sink("af_xdp"); }

}  // namespace
}  // namespace zc
