// xdp-tools peers (drivers/xdp_tools.cc): `xdp-bench drop` as a sink and
// `xdp-trafficgen udp` as a generator, run in the lab. Where the programs
// run, their counts reconcile with the harness's; where they cannot (the
// kernel lacks a tracepoint their BPF object attaches to), the trial is a
// skip whose reason carries the program's own words and the BTF probe.
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "drivers/drivers.h"
#include "harness/errors.h"
#include "harness/registry.h"
#include "harness/trial.h"

namespace zc {
namespace {

using nlohmann::json;

uint64_t u64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return UINT64_MAX;
  return it->get<uint64_t>();
}

TrialSpec tools_spec() {
  TrialSpec s;
  s.payload_bytes = 272;
  s.rate_pps = 20000;
  s.count = 20000;
  s.duration_s = 5.0;  // an upper bound: the count ends the flood
  s.warmup_s = 0.2;
  s.lab.gen_cpu = 0;
  s.lab.sink_cpu = online_cpu_count() > 1 ? 1 : 0;
  s.suite = "conformance";
  return s;
}

// Runs the trial; returns the skip reason, empty when it ran. A skip that
// comes from the program failing must say why in the program's words and
// carry the probe.
std::string run_tool_trial(const TrialSpec& spec, const std::string& program, json* rec) {
  if (geteuid() != 0) return "needs root: a trial builds its lab in new network namespaces (CAP_SYS_ADMIN)";
  try {
    *rec = run_trial(spec, nullptr).record;
  } catch (const EnvError& e) {
    return std::string("unsupported: ") + e.what();
  }
  if (rec->value("status", "") != "skip") return "";
  const std::string why = rec->value("reason", "unsupported: (no reason given)");
  // Installed means installed: the probe once passed "drop --version" as one
  // argument and called an installed xdp-tools absent.
  const bool installed = access(("/usr/sbin/" + program).c_str(), X_OK) == 0 ||
                         access(("/usr/bin/" + program).c_str(), X_OK) == 0;
  if (installed) {
    EXPECT_EQ(why.find("not installed"), std::string::npos) << why;
  }
  if (why.find("not installed") == std::string::npos) {
    EXPECT_NE(why.find(program), std::string::npos) << why;
    EXPECT_NE(why.find("probe:"), std::string::npos) << "a failure without the probe: " << why;
    // The program's own words: where the kernel's BTF lacks a tracepoint,
    // libbpf's line that names it.
    EXPECT_NE(why.find("\""), std::string::npos) << "a failure without the program's words: " << why;
    if (xdp_tools_btf_probe().find("has no btf_trace_") != std::string::npos) {
      EXPECT_NE(why.find("failed to find kernel BTF type ID"), std::string::npos) << why;
    }
  }
  return why;
}

TEST(xdp_tools, btf_probe_names_the_kernel) {
  const std::string p = xdp_tools_btf_probe();
  EXPECT_EQ(p.rfind("probe: ", 0), 0u) << p;
  EXPECT_NE(p.find(kernel_release()), std::string::npos) << p;
}

// xdp-bench drop beside xdp_drop: every flood packet it drops is in its
// summary. It drops every frame, not only the flood's, so a few stray
// frames of a fresh lab may add to its count (at most 10 allowed).
TEST(xdp_bench, drop_counts_the_flood) {
  TrialSpec spec = tools_spec();
  spec.tx = {"sendmmsg", {}};
  spec.rx = {"xdp_bench", {}};
  spec.lab.mode = LabMode::sender_softirq;
  json rec;
  if (const std::string why = run_tool_trial(spec, "xdp-bench", &rec); !why.empty()) GTEST_SKIP() << why;
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  const json& st = rec["raw"]["driver_stats"]["rx"];
  EXPECT_EQ(u64(rec["raw"], "sent_total"), spec.count);
  EXPECT_GE(u64(st, "packets_received"), spec.count) << st.dump();
  EXPECT_LE(u64(st, "packets_received"), spec.count + 10) << st.dump();
  EXPECT_EQ(u64(rec["raw"], "received_total"), u64(st, "packets_received"));
}

TEST(xdp_bench, refuses_the_xdp_lab_mode) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the check runs in the sink's open() inside a lab";
  if (Usability u = xdp_bench_driver_info().probe(); !u.usable) GTEST_SKIP() << "unsupported: " << u.reason;
  TrialSpec spec = tools_spec();
  spec.rx = {"xdp_bench", {}};
  spec.lab.mode = LabMode::xdp;
  try {
    json rec = run_trial(spec, nullptr).record;
    if (rec.value("status", "") == "skip") GTEST_SKIP() << rec.value("reason", "");
    ADD_FAILURE() << "xdp_bench ran over the xdp lab's own program: " << rec.dump();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("default lab mode"), std::string::npos) << e.what();
  } catch (const EnvError& e) {
    GTEST_SKIP() << "unsupported: " << e.what();
  }
}

// xdp-trafficgen udp -n N sends exactly N frames out of the generator veth
// (the harness's sent_total is the veth's tx_packets), and what the sink
// counts reconciles with the drop counters.
TEST(xdp_trafficgen, sends_its_count) {
  TrialSpec spec = tools_spec();
  spec.generator = {"xdp_trafficgen", {}};
  spec.rx = {"recvmmsg", {{"accounting", "count"}}};
  spec.rate_pps = 0;
  spec.count = 10000;
  spec.lab.mode = LabMode::xdp;  // veth ndo_xdp_xmit needs an XDP program on the peer
  json rec;
  if (const std::string why = run_tool_trial(spec, "xdp-trafficgen", &rec); !why.empty()) GTEST_SKIP() << why;
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  EXPECT_EQ(u64(rec["raw"], "sent_total"), spec.count) << rec["raw"]["driver_stats"].dump();
  EXPECT_TRUE(rec["derived"].value("reconciliation_ok", false)) << rec["derived"].dump();
}

TEST(xdp_trafficgen, refuses_a_rate) {
  const GeneratorInfo& g = find_generator("xdp_trafficgen");
  if (geteuid() != 0) GTEST_SKIP() << "needs root: open() reads the lab";
  TrialSpec spec = tools_spec();
  spec.generator = {g.name, {}};
  spec.rx = {"recvmmsg", {{"accounting", "count"}}};
  spec.rate_pps = 1000;
  try {
    json rec = run_trial(spec, nullptr).record;
    if (rec.value("status", "") == "skip") GTEST_SKIP() << rec.value("reason", "");
    ADD_FAILURE() << "a rate was accepted: " << rec.dump();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--rate max"), std::string::npos) << e.what();
  } catch (const EnvError& e) {
    GTEST_SKIP() << "unsupported: " << e.what();
  }
}

}  // namespace
}  // namespace zc
