// zcbench — the command line: list, run, send --iface, sink --iface.
// Diagnostics go to stderr; `--json` output on stdout is one JSON document.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "harness/context.h"
#include "harness/errors.h"
#include "harness/flood.h"
#include "harness/iface_addr.h"
#include "harness/pacer.h"
#include "harness/params.h"
#include "harness/perf_counters.h"
#include "harness/registry.h"
#include "harness/trial.h"
#include "harness/vocabulary.h"
#include "harness/wire.h"

using nlohmann::json;
using namespace zc;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

const char* kCommands = R"(zcbench — packet I/O benchmarking and conformance

usage:
  zcbench list [--json]            transports and generators, usable here or why not
  zcbench run [trial options]      generator and sink inside a private lab (two
                                   anonymous network namespaces joined by veth)
  zcbench send --iface IF --dst IP [--dst-mac MAC] [trial options]
                                   generator only, out of a named interface
  zcbench sink --iface IF [--rx NAME] [--source generator|external]
               [--seq offset=N,width=4|8,endian=big|little[,flow=OFF:W][,base=frame]|pktgen]
               [--count N] [--silence S] [--duration S] [--promisc]
               [--hw-timestamps]
                                   sink only, on a named interface (ends after
                                   --count packets, --silence S without any, or
                                   --duration S; default 10)
  send/sink refuse an interface carrying the default route or the SSH session
  unless --allow-host-interface; --dst outside 198.18.0.0/15 needs
  --allow-any-destination
  zcbench --version | --help       (zcbench send --help, zcbench sink --help: theirs)
)";

const char* kExitCodes = R"(
options take `--flag value` or `--flag=value`.
exit codes: 0 ok, 1 a check failed, 2 usage error, 3 environment (privilege,
kernel feature), 4 internal error, 130 interrupted.
)";

// The options part comes from the parameter table (harness/params.h).
std::string usage(Command cmd, bool with_commands) {
  std::string u = with_commands ? kCommands : std::string("usage: zcbench ") + command_name(cmd) + " [options]\n";
  u += std::string("\n") + command_name(cmd) + " options:\n" + params_help(cmd) + kExitCodes;
  return u;
}

struct Args {
  std::vector<std::string> v;
  size_t i = 0;
  bool done() const { return i >= v.size(); }
  const std::string& next() { return v[i++]; }
};

void print_human(const json& rec) {
  std::cerr << rec["name"].get<std::string>() << ": " << rec["status"].get<std::string>();
  if (!rec["reason"].get<std::string>().empty()) std::cerr << " (" << rec["reason"].get<std::string>() << ")";
  std::cerr << "\n";
  const json& d = rec["derived"];
  if (d.empty()) return;
  auto num = [&](const char* k) { return d.contains(k) && d[k].is_number() ? d[k].get<double>() : -1.0; };
  std::printf("received %.0f pps of %.0f sent pps, loss %.4f %%, CPU %.0f ns/pkt (sink CPU %.0f), p99 latency %.0f ns\n",
              num("received_pps"), num("sent_pps"), 100 * num("loss_ratio"), num("cpu_ns_per_pkt_total"),
              num("cpu_ns_per_pkt_sink"), num("latency_p99_ns"));
  std::printf("drops by layer: %s\n", d["drops"].dump().c_str());
}

int cmd_list(Args& a) {
  bool as_json = false;
  while (!a.done()) {
    std::string f = a.next();
    if (f == "--json") as_json = true;
    else throw UsageError("list: unknown option '" + f + "'; accepted: --json");
  }
  json transports = transports_context();
  json generators = generators_context();
  json doc = {{"transports", transports},
              {"generators", generators},
              {"pmu", probe_pmu()},
              {"lab_modes", lab_mode_names()},
              {"parameters", params_json()},
              {"vocabularies", vocabularies_json()},
              {"host", host_context()}};
  if (as_json) {
    std::cout << doc.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-12s %-3s %-7s %s\n", "transport", "dir", "usable", "description / reason");
  for (const auto& t : transports) {
    std::printf("%-12s %-3s %-7s %s\n", t["name"].get<std::string>().c_str(), t["direction"].get<std::string>().c_str(),
                t["usable"].get<bool>() ? "yes" : "no",
                (t["usable"].get<bool>() ? t["description"] : t["reason"]).get<std::string>().c_str());
    for (const auto& o : t["options"])
      std::printf("    %s-opt %s=%s  %s\n", t["direction"].get<std::string>().c_str(),
                  o["name"].get<std::string>().c_str(), o["default"].get<std::string>().c_str(),
                  o["help"].get<std::string>().c_str());
  }
  std::printf("%-12s %-3s %-7s %s\n", "generator", "", "usable", "description / reason");
  for (const auto& g : generators) {
    std::printf("%-12s %-3s %-7s %s\n", g["name"].get<std::string>().c_str(), "gen",
                g["usable"].get<bool>() ? "yes" : "no",
                (g["usable"].get<bool>() ? g["description"] : g["reason"]).get<std::string>().c_str());
    for (const auto& o : g["options"])
      std::printf("    gen-opt %s=%s  %s\n", o["name"].get<std::string>().c_str(), o["default"].get<std::string>().c_str(),
                  o["help"].get<std::string>().c_str());
  }
  const json pmu = doc["pmu"];
  std::printf("PMU hardware counters: %s\n",
              pmu["available"].get<bool>() ? "available" : ("unavailable: " + pmu["reason"].get<std::string>()).c_str());
  return kExitOk;
}

int cmd_run(Args& a, const std::vector<std::string>& argv) {
  CommandLine cl = parse_command_line(kRun, a.v);
  const TrialSpec& spec = cl.spec;
  const bool as_json = cl.json;
  validate_trial(spec);
  std::string started = utc_now_iso8601();
  TrialOutcome out = run_trial(spec, &g_stop);
  if (out.interrupted) {
    std::cerr << "zcbench: interrupted; the trial was not completed\n";
    return kExitInterrupted;
  }
  const json& rec = out.record;
  if (as_json) {
    std::cout << run_document("adhoc-" + started, "complete", started, argv, json::array({rec})).dump(2) << "\n";
  } else {
    print_human(rec);
  }
  std::string st = rec["status"];
  if (st == "pass") return kExitOk;
  if (st == "error") {  // an exception after the workers started (run_trial)
    std::cerr << "zcbench: " << rec["reason"].get<std::string>() << "\n";
    return out.exit_code ? out.exit_code : kExitInternal;
  }
  if (st == "skip") {
    std::cerr << "zcbench: " << rec["reason"].get<std::string>() << "\n";
    return kExitEnvironment;
  }
  return kExitCheckFailed;
}

// Named interfaces (harness/wire.h): send and sink are trials like `run`,
// parsed from the same parameter table (harness/params_table.cc).
int cmd_wire(Command cmd, Args& a, const std::vector<std::string>& argv) {
  CommandLine cl = parse_command_line(cmd, a.v);
  TrialSpec spec = cl.spec;
  // A sink waits for traffic from elsewhere: no warm-up of ours, a longer window.
  if (cmd == kSink && !cl.given("--duration")) spec.duration_s = kSinkDefaultDurationS;
  if (cmd == kSink && !cl.given("--warmup")) spec.warmup_s = 0;
  check_param_ranges(spec, cmd);
  WireOptions w;
  w.allow_host_interface = spec.allow_host_interface;
  w.promisc = spec.promisc;
  w.hw_timestamps = spec.hw_timestamps;
  w.rate_given = cl.given("--rate");
  w.count_given = cl.given("--count");
  w.json_out = cl.json;
  return wire_command(cmd == kSend ? "send" : "sink", spec, w, argv, &g_stop);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> all(argv + 1, argv + argc);
  std::vector<std::string> argv_full(argv, argv + argc);
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    if (all.empty() || all[0] == "--help" || all[0] == "-h" || all[0] == "help") {
      std::cout << usage(kRun, true);
      return all.empty() ? kExitUsage : kExitOk;
    }
    if (all[0] == "--version") {
      std::cout << "zcbench " << ZC_VERSION << " (git " << ZC_GIT_SHA << ")\n";
      return kExitOk;
    }
    Args a{std::vector<std::string>(all.begin() + 1, all.end())};
    const std::string& cmd = all[0];
    for (const auto& s : a.v)
      if (s == "--help" || s == "-h") {
        if (cmd == "send") std::cout << usage(kSend, false);
        else if (cmd == "sink") std::cout << usage(kSink, false);
        else std::cout << usage(kRun, cmd != "run");
        return kExitOk;
      }
    if (cmd == "list") return cmd_list(a);
    if (cmd == "run") return cmd_run(a, argv_full);
    if (cmd == "send") return cmd_wire(kSend, a, argv_full);
    if (cmd == "sink") return cmd_wire(kSink, a, argv_full);
    throw UsageError("unknown command '" + cmd + "'; accepted: list, run, send, sink, --version, --help");
  } catch (const Error& e) {
    std::cerr << "zcbench: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "zcbench: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}
