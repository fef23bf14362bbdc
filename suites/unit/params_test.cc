// The parameter table (harness/params.h): every flag parses, prints and parses
// back to the same spec; --flag=value; the documented refusals; --help and the
// suite keys come from the same rows.
#include "harness/params.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "harness/errors.h"
#include "harness/iface_addr.h"
#include "harness/suite.h"

namespace zc {
namespace {

using nlohmann::json;

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// The comparable content of a spec: every parameter's canonical value(s).
std::map<std::string, std::vector<std::string>> values_of(const TrialSpec& s) {
  std::map<std::string, std::vector<std::string>> m;
  for (const auto& p : trial_params()) m[p.flag.empty() ? p.suite_key : p.flag] = p.get(s);
  return m;
}

std::string usage_error(Command cmd, const std::vector<std::string>& args) {
  try {
    parse_command_line(cmd, args);
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (haystack) << "' lacks '" << (needle) << "'"

// A value for each flag that differs from its default, valid on any machine
// with at least one CPU.
const std::map<std::string, std::vector<std::string>> kSamples = {
    {"--tx", {"sendto"}},
    {"--tx-opt", {"batch=8"}},
    {"--rx", {"recv"}},
    {"--rx-opt", {"accounting=count"}},
    {"--size", {"1000"}},
    {"--rate", {"2350000"}},
    {"--duration", {"0.25"}},
    {"--warmup", {"0"}},
    {"--count", {"12345"}},
    {"--burst", {"16"}},
    {"--flows", {"8"}},
    {"--lab-mode", {"xdp"}},
    {"--mtu", {"9000"}},
    {"--queues", {"2"}},
    {"--ports", {"2"}},
    {"--gen-cpu", {"1"}},
    {"--sink-cpu", {"0"}},
    {"--gen-threads", {"2"}},
    {"--gen-cpus", {"0"}},
    {"--sink-threads", {"3"}},
    {"--sink-cpus", {"0"}},
    {"--gro", {}},
    {"--traffic", {"tap"}},
    {"--generator", {"pktgen"}},
    {"--gen-opt", {"clone_skb=0"}},
    {"--perf-events", {"task-clock,context-switches"}},
    {"--iface", {"veth9"}},
    {"--dst", {"198.18.0.2"}},
    {"--dst-mac", {"02:00:00:00:00:01"}},
    {"--allow-any-destination", {}},
    {"--allow-host-interface", {}},
    {"--promisc", {}},
    {"--hw-timestamps", {}},
    {"--source", {"external"}},
    {"--seq", {"offset=0,width=4,endian=big"}},
    {"--silence", {"1.5"}},
    {"--rps-cpus", {"1"}},
    {"--xps-cpus", {"1"}},
    {"--threaded-napi", {}},
    {"--rx-ring", {"512"}},
    {"--tx-ring", {"512"}},
    {"--tx-queue", {"1"}},
};

TEST(params, EveryFlagHasASampleAndOneRow) {
  std::set<std::string> flags;
  for (const auto& p : trial_params()) {
    if (p.flag.empty()) continue;
    EXPECT_TRUE(flags.insert(p.flag).second) << p.flag << " twice";
    if (p.in_command) {
      EXPECT_TRUE(kSamples.count(p.flag)) << p.flag << " has no sample in this test";
    }
    EXPECT_FALSE(p.help.empty()) << p.flag;
    EXPECT_TRUE(p.set && p.get) << p.flag;
  }
}

// parse -> trial_command -> parse gives the same spec, per command, each flag
// alone and all together.
TEST(params, EveryFlagRoundTrips) {
  for (Command cmd : {kRun, kSend, kSink}) {
    std::vector<std::string> all;
    for (const auto& p : trial_params()) {
      if (p.flag.empty() || !p.in_command || !(p.commands & cmd)) continue;
      if (p.flag == "--gen-cpu" && online_cpu_count() < 2) continue;  // no CPU but the default 0
      std::vector<std::string> args{p.flag};
      for (const auto& v : kSamples.at(p.flag)) args.push_back(v);
      SCOPED_TRACE(std::string(command_name(cmd)) + " " + p.flag);
      TrialSpec a = parse_command_line(cmd, args).spec;
      EXPECT_NE(values_of(a), values_of(TrialSpec{})) << "the sample is the default";
      std::string printed = params_command(a, cmd);
      EXPECT_CONTAINS(printed, p.flag);
      auto w = words(printed);
      ASSERT_GE(w.size(), 2u);
      EXPECT_EQ(w[1], command_name(cmd));
      TrialSpec b = parse_command_line(cmd, {w.begin() + 2, w.end()}).spec;
      EXPECT_EQ(values_of(a), values_of(b)) << printed;
      all.insert(all.end(), args.begin(), args.end());
    }
    TrialSpec a = parse_command_line(cmd, all).spec;
    auto w = words(params_command(a, cmd));
    TrialSpec b = parse_command_line(cmd, {w.begin() + 2, w.end()}).spec;
    EXPECT_EQ(values_of(a), values_of(b)) << params_command(a, cmd);
  }
}

TEST(params, EqualsFormAndOrder) {
  TrialSpec a = parse_command_line(kRun, {"--size=64", "--rate=max", "--gro=on", "--tx-opt=batch=4", "--tx=sendto"}).spec;
  EXPECT_EQ(a.payload_bytes, 64u);
  EXPECT_EQ(a.rate_pps, 0);
  EXPECT_TRUE(a.lab.gro);
  // The transport applies first: its option given before it is kept.
  EXPECT_EQ(a.tx.name, "sendto");
  EXPECT_EQ(a.tx.options.at("batch"), "4");
  EXPECT_FALSE(parse_command_line(kRun, {"--gro=off"}).spec.lab.gro);
  EXPECT_TRUE(parse_command_line(kRun, {"--json"}).json);
  TrialSpec d = parse_command_line(kRun, {"--rx", "recvmmsg:batch=8,accounting=count"}).spec;
  EXPECT_EQ(d.rx.options.at("batch"), "8");
  EXPECT_EQ(parse_command_line(kRun, {"--rcvbuf", "1M"}).spec.rx.options.at("rcvbuf"), "1M");
}

TEST(params, UnknownAndMisplacedFlags) {
  std::string m = usage_error(kRun, {"--sise", "64"});
  EXPECT_EQ(m, "run: unknown option '--sise'; did you mean '--size'? (accepted options: zcbench run --help)");
  m = usage_error(kRun, {"--frobnicate"});
  EXPECT_EQ(m, "run: unknown option '--frobnicate' (accepted options: zcbench run --help)");
  EXPECT_CONTAINS(usage_error(kSend, {"--rx", "recv"}), "send: option '--rx' is not for send (it is for run, sink)");
  EXPECT_CONTAINS(usage_error(kRun, {"--dst-mac", "02:00:00:00:00:01"}), "is not for run (it is for send)");
  EXPECT_CONTAINS(usage_error(kRun, {"--size"}), "--size needs a value (BYTES|MIX)");
  EXPECT_CONTAINS(usage_error(kRun, {"--size", "--rate", "5"}), "--size needs a value");
}

TEST(params, BadValuesGiveTheDocumentedErrors) {
  EXPECT_CONTAINS(usage_error(kRun, {"--rate", "-5"}), "--rate -5 is not accepted; give packets/s > 0 or 'max'");
  EXPECT_CONTAINS(usage_error(kRun, {"--rate", "1e12"}), "impossible here (above 100 Mpps)");
  EXPECT_CONTAINS(usage_error(kRun, {"--duration", "0"}), "--duration 0 s is not accepted; accepted: > 0 and <= 3600");
  EXPECT_CONTAINS(usage_error(kRun, {"--burst", "0"}), "--burst 0 is not accepted; accepted: 1..65536");
  EXPECT_CONTAINS(usage_error(kRun, {"--burst", "x"}), "--burst 'x' is not an integer");
  EXPECT_CONTAINS(usage_error(kRun, {"--lab-mode", "warp"}), "lab mode 'warp' is not known");
  EXPECT_CONTAINS(usage_error(kRun, {"--traffic", "x"}), "--traffic 'x' is not accepted; accepted: auto, tap, host-addressed");
  EXPECT_CONTAINS(usage_error(kRun, {"--gro=maybe"}), "is not a boolean");
  EXPECT_CONTAINS(usage_error(kRun, {"--tx-opt", "batch"}), "--tx-opt 'batch' must be key=value");
  int cpus = online_cpu_count();
  EXPECT_CONTAINS(usage_error(kRun, {"--sink-cpu", std::to_string(cpus)}),
                  "CPU " + std::to_string(cpus) + " does not exist; this machine has CPUs 0..");
  EXPECT_CONTAINS(usage_error(kRun, {"--sink-cpus", "0," + std::to_string(cpus)}),
                  "CPU " + std::to_string(cpus) + " does not exist");
  EXPECT_CONTAINS(usage_error(kRun, {"--sink-cpus", "0,0"}), "names CPU 0 twice");
  EXPECT_CONTAINS(usage_error(kRun, {"--gen-cpus", "1-0"}), "is not a CPU list; give e.g. 0,2-3");
  EXPECT_CONTAINS(usage_error(kSend, {"--dst-mac", "02:00:00:00:00"}), "--dst-mac '02:00:00:00:00' is not a MAC address");
  EXPECT_CONTAINS(usage_error(kSend, {"--dst-mac", "02:00:00:00:00:zz"}), "is not a MAC address");
  EXPECT_CONTAINS(usage_error(kSend, {"--dst", "198.18.0"}), "--dst '198.18.0' is not an IPv4 address");
  EXPECT_CONTAINS(usage_error(kSink, {"--source", "fpga"}), "--source 'fpga' is not accepted; accepted: generator, external");
  EXPECT_CONTAINS(usage_error(kSink, {"--silence", "-1"}), "--silence -1 s is not accepted; accepted: 0..3600");
  EXPECT_CONTAINS(usage_error(kRun, {"--queues", "0"}), "--queues 0 is not accepted; accepted: 1..64");
  EXPECT_CONTAINS(usage_error(kRun, {"--sink-threads", "0"}), "--sink-threads 0 is not accepted");
}

TEST(params, SizeMix) {
  TrialSpec s = parse_command_line(kRun, {"--size", "64:7,576:4,1518:1"}).spec;
  EXPECT_EQ(s.size_mix, "64:7,576:4,1518:1");
  EXPECT_EQ(s.payload_bytes, 1518u - kEthernetOverhead);  // buffers fit the largest frame
  EXPECT_EQ(parse_size_mix("x", s.size_mix),
            (std::vector<SizeMixEntry>{{64, 7}, {576, 4}, {1518, 1}}));
  if (online_cpu_count() < 2) s.lab.gen_cpu = s.lab.sink_cpu = 0;
  EXPECT_NO_THROW(validate_trial(s));
  // The largest frame must fit the MTU.
  TrialSpec big = parse_command_line(kRun, {"--size", "64:1,9000:1"}).spec;
  big.lab.gen_cpu = big.lab.sink_cpu = 0;
  try {
    validate_trial(big);
    ADD_FAILURE() << "accepted";
  } catch (const UsageError& e) {
    EXPECT_CONTAINS(e.what(), "frame size 9000 of the mix 64:1,9000:1 does not fit MTU 1500; accepted: 64..1518");
  }
  EXPECT_CONTAINS(usage_error(kRun, {"--size", "64:0"}), "mix item '64:0' is out of range");
  EXPECT_CONTAINS(usage_error(kRun, {"--size", "63:1"}), "out of range");
  EXPECT_CONTAINS(usage_error(kRun, {"--size", "64,128"}), "mix item '64' is not FRAME:WEIGHT");
  EXPECT_CONTAINS(usage_error(kRun, {"--size", "64:x"}), "is not FRAME:WEIGHT");
  // A plain size clears a mix.
  EXPECT_TRUE(parse_command_line(kRun, {"--size", "64:1", "--size", "100"}).spec.size_mix.empty());
}

TEST(params, HelpListsEveryParameterOfItsCommand) {
  for (Command cmd : {kRun, kSend, kSink}) {
    std::string help = params_help(cmd);
    for (const auto& p : trial_params()) {
      if (p.flag.empty()) continue;
      bool listed = help.find("  " + p.flag + " ") != std::string::npos || help.find("  " + p.flag + "\n") != std::string::npos;
      EXPECT_EQ(listed, bool(p.commands & cmd)) << command_name(cmd) << " " << p.flag;
    }
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 79u) << line;
  }
  std::string run = params_help(kRun);
  EXPECT_CONTAINS(run, "  --size BYTES|MIX     UDP payload, 18 .. MTU-28;");
  EXPECT_CONTAINS(run, "(default 272)");
  EXPECT_CONTAINS(run, "--count N            stop after N packets (sink: after N arrived) (default:");
  EXPECT_CONTAINS(run, "--rate PPS|max       offered rate in packets/s (sink: the rate the source is");
}

TEST(params, SuiteKeysComeFromTheTable) {
  std::string keys = suite_keys_text();
  for (const char* k : {"tx", "rx", "payload_bytes", "rate_pps", "duration_s", "warmup_s", "count", "burst", "flows",
                        "mtu", "gro", "lab_mode", "ports", "traffic", "generator", "gen_opts", "claim", "label", "series",
                        "queues", "sink_threads", "sink_cpus", "gen_threads", "gen_cpus"})
    EXPECT_CONTAINS(keys, std::string(k));
  json doc = json::parse(R"({"name": "p", "trials": [
      {"queues": 2, "sink_threads": 2, "gen_threads": 2, "sink_cpus": "0", "gen_cpus": 0,
       "payload_bytes": "64:7,576:4,1518:1", "gen_opts": {"clone_skb": 0}, "generator": "pktgen:delay=1"}]})");
  SuiteDefinition d = expand_suite(doc, "");
  ASSERT_EQ(d.trials.size(), 1u);
  const TrialSpec& t = d.trials[0];
  EXPECT_EQ(t.lab.queues, 2);
  EXPECT_EQ(t.sink_threads, 2);
  EXPECT_EQ(t.gen_threads, 2);
  EXPECT_EQ(t.sink_cpus, std::vector<int>{0});
  EXPECT_EQ(t.gen_cpus, std::vector<int>{0});
  EXPECT_EQ(t.size_mix, "64:7,576:4,1518:1");
  // gen_opts sorts before generator, and still lands on it.
  EXPECT_EQ(t.generator.name, "pktgen");
  EXPECT_EQ(t.generator.options.at("clone_skb"), "0");
  EXPECT_EQ(t.generator.options.at("delay"), "1");
  try {
    expand_suite(json::parse(R"({"name": "p", "trials": [{"burst": 0}]})"), "");
    ADD_FAILURE() << "accepted";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "suite p trial 0: burst 0 is not accepted; accepted: 1..65536");
  }
  try {
    expand_suite(json::parse(R"({"name": "p", "trials": [{"burst": 1.5}]})"), "");
    ADD_FAILURE() << "accepted";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "suite p trial 0: burst must be a whole number, got 1.5");
  }
}

TEST(params, RecordParams) {
  TrialSpec s = parse_command_line(kRun, {"--rate", "1000", "--sink-threads", "2", "--sink-cpus", "0"}).spec;
  s.extra_params["claim"] = 2;
  RecordContext c;
  c.tap_traffic = true;
  c.accounting = "full";
  c.kernel = "6.1";
  json j = trial_params_json(s, c);
  EXPECT_EQ(j["tx"], "sendmmsg");
  EXPECT_TRUE(j["tx_opts"].is_object());
  EXPECT_EQ(j["payload_bytes"], 272);
  EXPECT_EQ(j["frame_bytes"], 272 + 46);
  EXPECT_TRUE(j["size_mix"].is_null());
  EXPECT_EQ(j["rate_mode"], "fixed");
  EXPECT_EQ(j["offered_pps"], 1000.0);
  EXPECT_EQ(j["sink_threads"], 2);
  EXPECT_EQ(j["sink_cpus"], json::array({0}));
  EXPECT_EQ(j["gen_cpus"], json::array());
  EXPECT_EQ(j["queues"], 1);
  EXPECT_EQ(j["traffic"], "tap");
  EXPECT_EQ(j["lab_mode"], "rps");
  EXPECT_EQ(j["gro"], false);
  EXPECT_EQ(j["repetition"], 0);
  EXPECT_EQ(j["kernel"], "6.1");
  EXPECT_EQ(j["accounting"], "full");
  EXPECT_EQ(j["claim"], 2);
  EXPECT_FALSE(j.contains("iface")) << "send/sink parameters are not in a run record";
  c.command = kSend;
  s = parse_command_line(kSend, {"--iface", "veth0", "--dst", "198.18.0.2", "--dst-mac", "02:AA:00:00:00:01"}).spec;
  j = trial_params_json(s, c);
  EXPECT_EQ(j["iface"], "veth0");
  EXPECT_EQ(j["dst_mac"], "02:aa:00:00:00:01");
  EXPECT_FALSE(j.contains("lab_mode"));
  c.command = kRun;
  c.external = true;
  j = trial_params_json(TrialSpec{}, c);
  EXPECT_TRUE(j["tx"].is_null());
  EXPECT_EQ(j["rate_mode"], "fixed");
}

TEST(params, CommandMatchesTheOldForm) {
  TrialSpec s;
  EXPECT_EQ(trial_command(s),
            "build/zcbench run --tx sendmmsg --rx recvmmsg --size 272 --rate 100000 --duration 2 --warmup 0.5 "
            "--lab-mode rps --mtu 1500 --gen-cpu 0 --sink-cpu 1 --json");
  s.rate_pps = 0;
  s.rx = parse_driver_spec("recvmmsg:batch=8");
  s.artifacts_dir = "/tmp/a b";
  s.repetition = 3;
  EXPECT_EQ(trial_command(s),
            "build/zcbench run --tx sendmmsg --rx recvmmsg --rx-opt batch=8 --size 272 --rate max --duration 2 "
            "--warmup 0.5 --lab-mode rps --mtu 1500 --gen-cpu 0 --sink-cpu 1 --json");
  s.perf_events = {"task clock"};
  EXPECT_CONTAINS(trial_command(s), "--perf-events 'task clock'");
}

TEST(params, ListJsonParameters) {
  json arr = params_json();
  ASSERT_EQ(arr.size(), trial_params().size());
  bool saw_size = false;
  for (const auto& p : arr) {
    for (const char* k : {"flag", "suite_key", "record_key", "type", "help", "commands", "default"})
      EXPECT_TRUE(p.contains(k)) << p.dump() << " lacks " << k;
    if (p["flag"] == "--size") {
      saw_size = true;
      EXPECT_EQ(p["suite_key"], "payload_bytes");
      EXPECT_EQ(p["default"], "272");
      EXPECT_EQ(p["commands"], json::array({"run", "send", "sink"}));
    }
    if (p["flag"] == "--burst") {
      EXPECT_EQ(p["min"], 1);
      EXPECT_EQ(p["max"], 65536);
    }
    if (p["flag"] == "--tx") {
      EXPECT_EQ(p["options_flag"], "--tx-opt");
    }
    if (p["flag"] == "--generator") {
      EXPECT_EQ(p["options_flag"], "--gen-opt");
    }
  }
  EXPECT_TRUE(saw_size);
}

TEST(params, ClosestName) {
  EXPECT_EQ(closest_name("--sise", {"--size", "--rate"}), "--size");
  EXPECT_EQ(closest_name("--dur", {"--duration", "--rate"}), "--duration");  // a prefix
  EXPECT_EQ(closest_name("--d", {"--duration", "--rate"}), "");  // too short to be a prefix guess
  EXPECT_EQ(closest_name("--durat", {"--duration", "--rate"}), "--duration");
  EXPECT_EQ(closest_name("--zzzzzz", {"--size"}), "");
}

TEST(params, CpuList) {
  EXPECT_EQ(parse_cpu_list("x", "0,2-3"), (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(cpu_list_to_string({0, 2, 3, 5}), "0,2-3,5");
  EXPECT_EQ(cpu_list_to_string({3, 1}), "3,1");  // order kept: worker i gets the i-th CPU
}

TEST(iface_addr, NeighbourTable) {
  const std::string table =
      "IP address       HW type     Flags       HW address            Mask     Device\n"
      "198.18.0.2       0x1         0x2         02:11:22:33:44:55     *        veth0\n"
      "198.18.0.3       0x1         0x0         00:00:00:00:00:00     *        veth0\n"
      "198.18.0.2       0x1         0x6         02:aa:bb:cc:dd:ee     *        veth1\n";
  in_addr a = parse_ipv4("x", "198.18.0.2");
  EXPECT_EQ(mac_to_string(neighbour_mac_in(table, "veth0", a).value()), "02:11:22:33:44:55");
  EXPECT_EQ(mac_to_string(neighbour_mac_in(table, "veth1", a).value()), "02:aa:bb:cc:dd:ee");
  EXPECT_FALSE(neighbour_mac_in(table, "veth0", parse_ipv4("x", "198.18.0.3")));  // incomplete
  EXPECT_FALSE(neighbour_mac_in(table, "veth2", a));
  try {
    destination_mac("zc-no-such-if0", parse_ipv4("x", "198.18.9.9"), "");
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "no neighbour entry for 198.18.9.9 on zc-no-such-if0: give --dst-mac");
  }
  EXPECT_EQ(mac_to_string(destination_mac("x", a, "02:00:00:00:00:09")), "02:00:00:00:00:09");
}

}  // namespace
}  // namespace zc
