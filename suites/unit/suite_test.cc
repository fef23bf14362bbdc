#include "harness/suite.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

#include "harness/errors.h"
#include "harness/lab.h"

namespace zc {
namespace {

using nlohmann::json;

std::string usage_error_of(const json& doc, const std::string& lab_mode = "") {
  try {
    expand_suite(doc, lab_mode);
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UsageError for " << doc.dump();
  return "";
}

TEST(suite, CartesianProductCountAndOrder) {
  json doc = json::parse(R"({
    "name": "t", "repetitions": 2,
    "trials": [
      {"payload_bytes": [18, 272, 1472], "rate_pps": [1000, "max"]},
      {"payload_bytes": 64}
    ]})");
  SuiteDefinition d = expand_suite(doc, "");
  EXPECT_EQ(d.name, "t");
  EXPECT_EQ(d.repetitions, 2);
  ASSERT_EQ(d.trials.size(), 7u);
  // Entries in declared order; within one, lists in declared order, the
  // last field varying fastest.
  const std::pair<size_t, double> want[] = {{18, 1000}, {18, 0},   {272, 1000}, {272, 0},
                                            {1472, 1000}, {1472, 0}, {64, 100000}};
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(d.trials[i].payload_bytes, want[i].first) << "trial " << i;
    EXPECT_EQ(d.trials[i].rate_pps, want[i].second) << "trial " << i;
    EXPECT_EQ(d.trials[i].suite, "t");
  }
}

TEST(suite, ThreeAxes) {
  json doc = {{"trials", json::array({{{"burst", {1, 2}}, {"flows", {1, 2, 3}}, {"rx", {"recv", "recvmmsg"}}}})}};
  SuiteDefinition d = expand_suite(doc, "");
  ASSERT_EQ(d.trials.size(), 12u);
  std::map<std::tuple<uint32_t, int, std::string>, int> seen;
  for (const auto& t : d.trials) ++seen[{t.burst, t.flows, t.rx.name}];
  EXPECT_EQ(seen.size(), 12u);  // every combination exactly once
  EXPECT_EQ(d.trials.front().rx.name, "recv");
  EXPECT_EQ(d.trials[1].rx.name, "recvmmsg");
  EXPECT_EQ(d.trials.back().burst, 2u);
  EXPECT_EQ(d.trials.back().flows, 3);
}

TEST(suite, DefaultsAndOverrides) {
  json doc = json::parse(R"({
    "name": "d",
    "defaults": {"duration_s": 0.5, "warmup_s": 0.1, "tx": "sendto", "rx": "recvmmsg:accounting=count",
                 "mtu": 9000, "gro": true, "lab_mode": "sender-softirq"},
    "trials": [{"payload_bytes": 8000}, {"payload_bytes": 100, "duration_s": 3, "claim": 2, "label": "x"}]
  })");
  SuiteDefinition d = expand_suite(doc, "");
  EXPECT_EQ(d.repetitions, 3);  // default
  ASSERT_EQ(d.trials.size(), 2u);
  const TrialSpec& a = d.trials[0];
  EXPECT_EQ(a.duration_s, 0.5);
  EXPECT_EQ(a.warmup_s, 0.1);
  EXPECT_EQ(a.tx.name, "sendto");
  EXPECT_EQ(a.rx.name, "recvmmsg");
  EXPECT_EQ(a.rx.options.at("accounting"), "count");
  EXPECT_EQ(a.lab.mtu, 9000);
  EXPECT_TRUE(a.lab.gro);
  EXPECT_EQ(a.lab.mode, LabMode::sender_softirq);
  EXPECT_EQ(a.payload_bytes, 8000u);
  EXPECT_EQ(a.rate_pps, 100000);  // TrialSpec default
  const TrialSpec& b = d.trials[1];
  EXPECT_EQ(b.duration_s, 3);
  EXPECT_EQ(b.warmup_s, 0.1);
  EXPECT_EQ(b.extra_params["claim"], 2);
  EXPECT_EQ(b.extra_params["label"], "x");
  EXPECT_TRUE(a.extra_params.empty());
}

TEST(suite, LabModeOverrideWins) {
  json doc = json::parse(R"({
    "defaults": {"lab_mode": "sender-softirq"},
    "trials": [{"payload_bytes": 18}, {"payload_bytes": 18, "lab_mode": "rps"}]})");
  for (const auto& t : expand_suite(doc, "").trials) EXPECT_NE(t.lab.mode, LabMode::xdp);
  EXPECT_EQ(expand_suite(doc, "").trials[1].lab.mode, LabMode::rps);
  for (const auto& t : expand_suite(doc, "xdp").trials) EXPECT_EQ(t.lab.mode, LabMode::xdp);
  EXPECT_NE(usage_error_of(doc, "bogus").find("lab mode 'bogus'"), std::string::npos);
}

TEST(suite, MaxRate) {
  json doc = json::parse(R"({"defaults": {"rate_pps": "max"}, "trials": [{}, {"rate_pps": 5}]})");
  auto d = expand_suite(doc, "");
  ASSERT_EQ(d.trials.size(), 2u);
  EXPECT_EQ(d.trials[0].rate_pps, 0);
  EXPECT_EQ(d.trials[1].rate_pps, 5);
  EXPECT_NE(usage_error_of(json::parse(R"({"trials": [{"rate_pps": "fast"}]})")).find("rate_pps must be a number"),
            std::string::npos);
}

TEST(suite, Errors) {
  std::string m = usage_error_of(json::parse(R"({"name": "s", "trials": [{}, {"payload": 64}]})"));
  EXPECT_NE(m.find("suite s trial 1: unknown field 'payload'; accepted: tx, rx, payload_bytes"), std::string::npos)
      << m;
  m = usage_error_of(json::parse(R"({"name": "s", "defaults": {"durration_s": 1}})"));
  EXPECT_NE(m.find("suite s: unknown field 'durration_s'"), std::string::npos) << m;
  m = usage_error_of(json::parse(R"({"name": "s", "trials": [{"payload_bytes": []}]})"));
  EXPECT_NE(m.find("field 'payload_bytes' is an empty list"), std::string::npos) << m;
  m = usage_error_of(json::parse(R"({"name": "s", "trials": [{"duration_s": "2s"}]})"));
  EXPECT_NE(m.find("duration_s must be a number, got \"2s\""), std::string::npos) << m;
}

// A field of the wrong JSON type is the suite author's mistake, so it must be a
// UsageError naming the field (exit 2), not a nlohmann type_error that main()
// reports as an internal error.
TEST(suite, WrongTypeIsUsageError) {
  for (const char* doc : {R"({"name": "s", "trials": [{"tx": 5}]})", R"({"name": "s", "trials": [{"rx": ["recv", 1]}]})",
                          R"({"name": "s", "trials": [{"gro": "yes"}]})",
                          R"({"name": "s", "defaults": {"lab_mode": 2}})", R"({"name": "s", "trials": [{"rate_pps": true}]})"}) {
    SCOPED_TRACE(doc);
    std::string field = json::parse(doc).contains("defaults") ? "lab_mode" : json::parse(doc)["trials"][0].begin().key();
    try {
      expand_suite(json::parse(doc), "");
      ADD_FAILURE() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a UsageError: " << e.what();
    }
  }
}

TEST(suite, LoadErrors) {
  try {
    load_suite_file("no_such_suite");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("suite 'no_such_suite' not found"), std::string::npos) << m;
    EXPECT_NE(m.find("quick"), std::string::npos) << "available suites not listed: " << m;
  }
}

TEST(suite, EveryRealSuiteExpandsAndValidates) {
  auto names = available_suites();
  ASSERT_FALSE(names.empty());
  for (const char* must : {"quick", "smoke"})
    EXPECT_NE(std::find(names.begin(), names.end(), must), names.end()) << must;
  // Suites do not pin CPUs; on a one-CPU machine the default sink CPU 1 is
  // the host's limit, not the suite's fault.
  bool one_cpu = online_cpu_count() < 2;
  for (const auto& name : names) {
    SCOPED_TRACE("suite " + name);
    SuiteDefinition d = expand_suite(load_suite_file(name), "");
    EXPECT_EQ(d.name, name) << "file name and \"name\" differ";
    EXPECT_FALSE(d.trials.empty());
    EXPECT_GE(d.repetitions, 1);
    for (size_t i = 0; i < d.trials.size(); ++i) {
      TrialSpec t = d.trials[i];
      if (one_cpu) t.lab.gen_cpu = t.lab.sink_cpu = 0;
      try {
        validate_trial(t);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "trial " << i << " (" << trial_command(t) << "): " << e.what();
      }
    }
  }
}

}  // namespace
}  // namespace zc
