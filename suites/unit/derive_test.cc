// derive_trial (raw counters -> derived figures) on hand-made records, and
// validate_trial's refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "harness/errors.h"
#include "harness/lab.h"
#include "harness/trial.h"

namespace zc {
namespace {

using nlohmann::json;

json params() { return {{"payload_bytes", 272}, {"offered_pps", 100000.0}, {"sink_cpu", 1}}; }

json raw() {
  return json::parse(R"({
    "window_ns": 2000000000,
    "sent_in_window": 200000,
    "received_in_window": 180000,
    "cpu_delta": [
      {"cpu": 0, "user_ns": 100000000, "nice_ns": 0, "system_ns": 200000000, "idle_ns": 900000000,
       "iowait_ns": 0, "irq_ns": 10000000, "softirq_ns": 40000000, "steal_ns": 500000000},
      {"cpu": 1, "user_ns": 300000000, "nice_ns": 0, "system_ns": 100000000, "idle_ns": 100000000,
       "iowait_ns": 1000000000, "irq_ns": 0, "softirq_ns": 200000000, "steal_ns": 0}
    ],
    "net_rx_softirqs_delta": [100, 300],
    "perf": {"sink": [{"name": "cpu-cycles", "value": null},
                      {"name": "task-clock", "value": 360000000}]},
    "latency_ns": {"count": 10, "p50": 1000, "p99": 5000, "p999": 9000, "max": 12000},
    "drop_counters": {"sent": 400000, "received_unique": 396000, "softnet_dropped": 1000,
                      "sink_rx_dropped": 1000, "gen_tx_dropped": 1000, "udp_rcvbuf_errors": 3000,
                      "udp_other_errors": 0, "ring_drops": 0}
  })");
}

TEST(derive, RatesAndLoss) {
  json d = derive_trial(params(), raw());
  EXPECT_EQ(d["offered_pps"], 100000.0);
  EXPECT_DOUBLE_EQ(d["sent_pps"].get<double>(), 100000.0);
  EXPECT_DOUBLE_EQ(d["received_pps"].get<double>(), 90000.0);
  EXPECT_DOUBLE_EQ(d["received_mbps"].get<double>(), 180000.0 * 272 * 8 / 2 / 1e6);
  EXPECT_EQ(d["lost_packets"], 4000);
  EXPECT_DOUBLE_EQ(d["loss_ratio"].get<double>(), 0.01);
  EXPECT_EQ(d["drops"]["backlog"], 1000);  // counted once, not three times
  EXPECT_EQ(d["drops"]["link"], 0);
  EXPECT_EQ(d["drops"]["socket_rcvbuf"], 3000);
  EXPECT_EQ(d["drops"]["unattributed"], 0);
  EXPECT_EQ(d["reconciliation_ok"], true);
  EXPECT_EQ(d["latency_p50_ns"], 1000);
  EXPECT_EQ(d["latency_p99_ns"], 5000);
  EXPECT_EQ(d["latency_p999_ns"], 9000);
}

TEST(derive, CpuPerPacket) {
  json d = derive_trial(params(), raw());
  // Busy = user + nice + system + irq + softirq; idle, iowait and steal are not ours.
  const double cpu0 = 100e6 + 200e6 + 10e6 + 40e6, cpu1 = 300e6 + 100e6 + 200e6;
  EXPECT_DOUBLE_EQ(d["cpu_ns_per_pkt_total"].get<double>(), (cpu0 + cpu1) / 180000);
  EXPECT_DOUBLE_EQ(d["cpu_ns_per_pkt_sink"].get<double>(), cpu1 / 180000);
  EXPECT_DOUBLE_EQ(d["sink_cpu_percent"].get<double>(), 100 * cpu1 / 2e9);
  EXPECT_DOUBLE_EQ(d["cpu_ns_per_pkt_sink_thread"].get<double>(), 360e6 / 180000);
  EXPECT_DOUBLE_EQ(d["net_rx_share_on_sink_cpu"].get<double>(), 0.75);

  json p = params();
  p["sink_cpu"] = 0;  // the sink CPU comes from the params
  json d0 = derive_trial(p, raw());
  EXPECT_DOUBLE_EQ(d0["cpu_ns_per_pkt_sink"].get<double>(), cpu0 / 180000);
  EXPECT_DOUBLE_EQ(d0["net_rx_share_on_sink_cpu"].get<double>(), 0.25);
}

TEST(derive, NullsWhenNothingToDivideBy) {
  json r = raw();
  r["window_ns"] = 0;
  r["received_in_window"] = 0;
  r["net_rx_softirqs_delta"] = {0, 0};
  r["drop_counters"]["sent"] = 0;
  r["drop_counters"]["received_unique"] = 0;
  r.erase("latency_ns");
  json p = params();
  p.erase("offered_pps");  // rate "max"
  json d = derive_trial(p, r);
  for (const char* k : {"offered_pps", "sent_pps", "received_pps", "received_mbps", "sink_cpu_percent",
                        "cpu_ns_per_pkt_total", "cpu_ns_per_pkt_sink", "cpu_ns_per_pkt_sink_thread",
                        "net_rx_share_on_sink_cpu", "loss_ratio", "latency_p50_ns", "latency_p99_ns",
                        "latency_p999_ns"}) {
    ASSERT_TRUE(d.contains(k)) << k;
    EXPECT_TRUE(d[k].is_null()) << k << " = " << d[k].dump();
  }
  EXPECT_EQ(d["lost_packets"], 0);
}

TEST(derive, MissingPerfValueIsNull) {
  json r = raw();
  r["perf"]["sink"] = json::array({{{"name", "task-clock"}, {"value", nullptr}}});
  EXPECT_TRUE(derive_trial(params(), r)["cpu_ns_per_pkt_sink_thread"].is_null());
  r.erase("perf");
  EXPECT_TRUE(derive_trial(params(), r)["cpu_ns_per_pkt_sink_thread"].is_null());
}

TEST(derive, SinkThreadCpuSumsEverySinkWorker) {
  // Two sink workers: the trial's sink-thread CPU is both task-clocks, not
  // worker 0's (raw.perf.sink) alone; generators do not count.
  json r = raw();
  auto perf = [](json v) { return json::array({{{"name", "task-clock"}, {"value", v}}}); };
  r["workers"] = json::array({{{"role", "sink"}, {"worker", 0}, {"perf", perf(200e6)}},
                              {{"role", "sink"}, {"worker", 1}, {"perf", perf(160e6)}},
                              {{"role", "gen"}, {"worker", 0}, {"perf", perf(999e6)}}});
  r["perf"]["sink"] = perf(200e6);
  EXPECT_DOUBLE_EQ(derive_trial(params(), r)["cpu_ns_per_pkt_sink_thread"].get<double>(), 360e6 / 180000);
  r["workers"][1]["perf"] = perf(nullptr);  // one worker unmeasured: no figure rather than half of one
  EXPECT_TRUE(derive_trial(params(), r)["cpu_ns_per_pkt_sink_thread"].is_null());
}

std::string refusal(const TrialSpec& s) {
  try {
    validate_trial(s);
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << trial_command(s);
  return "";
}

TrialSpec valid_spec() {
  TrialSpec s;
  if (online_cpu_count() < 2) s.lab.gen_cpu = s.lab.sink_cpu = 0;
  return s;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (haystack) << "' lacks '" << (needle) << "'"

TEST(derive, ValidateAcceptsDefaultsAndMax) {
  TrialSpec s = valid_spec();
  EXPECT_NO_THROW(validate_trial(s));
  s.rate_pps = 0;  // max
  EXPECT_NO_THROW(validate_trial(s));
  s.payload_bytes = 18;
  EXPECT_NO_THROW(validate_trial(s));
  s.payload_bytes = 1472;
  EXPECT_NO_THROW(validate_trial(s));
  s.lab.mtu = 9000;
  s.payload_bytes = 8972;
  EXPECT_NO_THROW(validate_trial(s));
}

TEST(derive, ValidatePayloadAboveMtuNamesTheMtuNeeded) {
  TrialSpec s = valid_spec();
  s.payload_bytes = 1473;
  EXPECT_EQ(refusal(s),
            "payload size 1473 is out of range for MTU 1500; accepted: 18..1472 (a 1473-byte payload needs --mtu 1501)");
  s.lab.mtu = 9000;
  s.payload_bytes = 9000;
  EXPECT_CONTAINS(refusal(s), "needs --mtu 9028");
  s = valid_spec();
  s.payload_bytes = 17;
  std::string m = refusal(s);
  EXPECT_CONTAINS(m, "payload size 17 is out of range");
  EXPECT_EQ(m.find("needs --mtu"), std::string::npos) << m;
  s = valid_spec();
  s.lab.mtu = 67;
  EXPECT_CONTAINS(refusal(s), "MTU 67 is not accepted; accepted: 68..65535");
}

TEST(derive, ValidateRateAndDuration) {
  TrialSpec s = valid_spec();
  s.rate_pps = -1;
  EXPECT_CONTAINS(refusal(s), "rate -1 is not accepted");
  s.rate_pps = std::numeric_limits<double>::quiet_NaN();
  EXPECT_CONTAINS(refusal(s), "is not accepted");
  s.rate_pps = 2e8;
  EXPECT_CONTAINS(refusal(s), "above 100 Mpps");
  s = valid_spec();
  s.duration_s = 0;
  EXPECT_EQ(refusal(s), "duration 0 s is not accepted; accepted: > 0 and <= 3600");
  s.duration_s = -2;
  EXPECT_CONTAINS(refusal(s), "duration -2 s");
  s = valid_spec();
  s.warmup_s = -0.5;
  EXPECT_CONTAINS(refusal(s), "warm-up -0.5 s is not accepted");
  s = valid_spec();
  s.burst = 0;
  EXPECT_CONTAINS(refusal(s), "burst 0 is not accepted; accepted: 1..65536");
  s = valid_spec();
  s.flows = 0;
  EXPECT_CONTAINS(refusal(s), "flows 0 is not accepted");
}

TEST(derive, ValidateCpus) {
  int cpus = online_cpu_count();
  TrialSpec s = valid_spec();
  s.lab.sink_cpu = cpus;
  EXPECT_EQ(refusal(s), "CPU " + std::to_string(cpus) + " does not exist; this machine has CPUs 0.." +
                            std::to_string(cpus - 1));
  s = valid_spec();
  s.lab.gen_cpu = -1;
  EXPECT_CONTAINS(refusal(s), "CPU -1 does not exist");
}

TEST(derive, ValidateDrivers) {
  TrialSpec s = valid_spec();
  s.rx = parse_driver_spec("recvfrom");
  EXPECT_CONTAINS(refusal(s), "'recvfrom'");
  s = valid_spec();
  s.rx = parse_driver_spec("recvmmsg:accounting=fast");
  EXPECT_CONTAINS(refusal(s), "accounting='fast' is not accepted; accepted: full, count");
  s = valid_spec();
  s.tx = parse_driver_spec("sendmmsg:nosuch=1");
  EXPECT_CONTAINS(refusal(s), "has no option 'nosuch'");
}

}  // namespace
}  // namespace zc
