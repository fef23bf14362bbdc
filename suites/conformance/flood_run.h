// Running one lab trial from a conformance test: a trial the environment
// cannot give (no root, an unsupported path) is a skip with its reason, never
// a pass, and record fields are read without throwing on a missing key.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/errors.h"
#include "harness/trial.h"

namespace zc {

// Runs the trial into *record; returns "" when it ran, else the skip reason.
inline std::string run_flood(const TrialSpec& spec, nlohmann::json* record) {
  if (geteuid() != 0) return "needs root: a trial builds its lab in new network namespaces (CAP_SYS_ADMIN)";
  try {
    *record = run_trial(spec, nullptr).record;
  } catch (const EnvError& e) {
    return std::string("unsupported: ") + e.what();
  }
  if (record->value("status", "") == "skip") return record->value("reason", "unsupported: (no reason given)");
  return "";
}

// A counter of a record; UINT64_MAX (which no expectation matches) when absent or negative.
inline uint64_t u64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return UINT64_MAX;
  return it->get<uint64_t>();
}

// A capture sink's flood arrived whole: every sequence number once, intact,
// in order, nothing lost, TAP-style traffic, and the ring's own drop counter
// (`ring_drop_key` in driver_stats.rx: tp_drops, ps_drop) at 0.
inline void expect_capture_intact(const nlohmann::json& rec, uint64_t count, const char* ring_drop_key) {
  SCOPED_TRACE(rec.value("name", "trial"));
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  const nlohmann::json& raw = rec.at("raw");
  const nlohmann::json& seq = raw.at("sequence");
  EXPECT_EQ(u64(raw, "sent_total"), count);
  EXPECT_EQ(u64(seq, "unique"), count) << "sequence: " << seq.dump();
  EXPECT_EQ(u64(seq, "duplicates"), 0u);
  EXPECT_EQ(u64(seq, "corrupt"), 0u);
  EXPECT_EQ(u64(seq, "reordered"), 0u);
  EXPECT_EQ(u64(raw, "received_total"), count);
  EXPECT_EQ(u64(rec.at("derived"), "lost_packets"), 0u) << rec.at("derived").value("drops", nlohmann::json()).dump();
  EXPECT_EQ(rec.at("params").value("traffic", ""), "tap") << "capture sinks default to TAP-style traffic";
  const nlohmann::json& st = raw.at("driver_stats").at("rx");
  EXPECT_EQ(u64(st, ring_drop_key), 0u) << st.dump();
}

}  // namespace zc

// Declares `record` and runs `spec` into it, or skips the test with the reason.
#define ZC_RUN_FLOOD(spec, record) \
  nlohmann::json record;           \
  if (const std::string why_ = ::zc::run_flood(spec, &record); !why_.empty()) GTEST_SKIP() << why_
