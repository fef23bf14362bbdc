// The exported vocabularies follow the code they describe, and derive_trial's
// achieved-vs-offered, wire rates and loss denominator.
#include "harness/vocabulary.h"

#include <gtest/gtest.h>

#include "harness/accounting.h"
#include "harness/attribution.h"
#include "harness/errors.h"
#include "harness/trial.h"

namespace zc {
namespace {

using nlohmann::json;

TEST(vocabulary, DropLayersAreWhatTheAttributionWrites) {
  json v = vocabularies_json();
  DropAttribution a;
  json written = a.to_json();
  size_t n = 0;
  for (const auto& l : v["drop_layers"]) {
    EXPECT_TRUE(written.contains(l["name"].get<std::string>())) << l;
    EXPECT_FALSE(l["counter"].get<std::string>().empty());
    ++n;
  }
  for (const auto& r : v["drop_remainders"]) EXPECT_TRUE(written.contains(r.get<std::string>())) << r;
  // Every key the attribution writes is a layer, a remainder or `lost`.
  EXPECT_EQ(written.size(), n + v["drop_remainders"].size() + 1);
  EXPECT_EQ(v["drop_layers"][0]["name"], "backlog");  // precedence order
}

TEST(vocabulary, LabModesParseBack) {
  json v = vocabularies_json();
  ASSERT_GE(v["lab_modes"].size(), 3u);
  for (const auto& m : v["lab_modes"]) EXPECT_EQ(lab_mode_name(parse_lab_mode(m.get<std::string>())), m);
}

TEST(vocabulary, ExitCodesAndOverheads) {
  json v = vocabularies_json();
  EXPECT_EQ(v["exit_codes"]["usage"], int(kExitUsage));
  EXPECT_EQ(v["exit_codes"]["environment"], int(kExitEnvironment));
  EXPECT_EQ(v["exit_codes"]["interrupted"], int(kExitInterrupted));
  EXPECT_EQ(v["frame_overhead"]["l2_bytes"], kEthernetOverhead);
  EXPECT_EQ(v["frame_overhead"]["l1_bytes"], 20);
  EXPECT_EQ(v["schema_version"], kSchemaVersion);
  EXPECT_DOUBLE_EQ(v["generator_short_ratio"].get<double>(), kGeneratorShortRatio);
}

json window_raw(uint64_t sent_in_window, uint64_t received_in_window) {
  return {{"window_ns", 2000000000ull},
          {"sent_in_window", sent_in_window},
          {"received_in_window", received_in_window},
          {"drop_counters", {{"sent", 500000}, {"received_unique", 495000}, {"udp_rcvbuf_errors", 5000}}}};
}

TEST(derive, AchievedVsOffered) {
  json p = {{"payload_bytes", 272}, {"offered_pps", 100000.0}};
  json ok = derive_trial(p, window_raw(199000, 199000));  // 99.5 % of 200 000
  EXPECT_NEAR(ok["achieved_ratio"].get<double>(), 0.995, 1e-12);
  EXPECT_EQ(ok["generator_short"], false);
  json shortfall = derive_trial(p, window_raw(62000, 62000));  // the 0.73-of-2.35-Mpps case, scaled
  EXPECT_NEAR(shortfall["achieved_ratio"].get<double>(), 0.31, 1e-12);
  EXPECT_EQ(shortfall["generator_short"], true);
  json edge = derive_trial(p, window_raw(195999, 195999));  // just under 98 %
  EXPECT_EQ(edge["generator_short"], true);
  p.erase("offered_pps");  // rate max: nothing was promised
  json max = derive_trial(p, window_raw(62000, 62000));
  EXPECT_TRUE(max["achieved_ratio"].is_null());
  EXPECT_EQ(max["generator_short"], false);
}

TEST(derive, WireRatesBesideGoodput) {
  json p = {{"payload_bytes", 272}, {"frame_bytes", 318}, {"offered_pps", 100000.0}};
  json d = derive_trial(p, window_raw(200000, 200000));
  EXPECT_DOUBLE_EQ(d["received_mbps"].get<double>(), 100000.0 * 272 * 8 / 1e6);
  EXPECT_DOUBLE_EQ(d["received_l2_mbps"].get<double>(), 100000.0 * 318 * 8 / 1e6);
  EXPECT_DOUBLE_EQ(d["received_l1_mbps"].get<double>(), 100000.0 * 338 * 8 / 1e6);
}

TEST(derive, LossRatioDividesByTheWholeTrial) {
  // Window: 200 000 sent; whole trial (warm-up + window + drain): 500 000.
  json d = derive_trial({{"payload_bytes", 272}}, window_raw(200000, 200000));
  EXPECT_EQ(d["lost_packets"], 5000);
  EXPECT_DOUBLE_EQ(d["loss_ratio"].get<double>(), 0.01);  // 5 000 / 500 000, not / 200 000
}

TEST(accounting, LatencyBucketsAddUpToTheCount) {
  Accounting acct(AccountingMode::full, 1);
  json j = acct.latency_json();
  EXPECT_TRUE(j["buckets"].empty());
  LatencyHistogram h;
  for (uint64_t ns : {5ull, 1000ull, 1001ull, 250000ull}) h.add(ns);
  uint64_t total = 0;
  for (size_t i = 0; i < h.buckets().size(); ++i) total += h.buckets()[i];
  EXPECT_EQ(total, h.count());
}

}  // namespace
}  // namespace zc
