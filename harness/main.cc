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
#include "harness/pacer.h"
#include "harness/perf_counters.h"
#include "harness/registry.h"
#include "harness/trial.h"

using nlohmann::json;
using namespace zc;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

const char* kUsage = R"(zcbench — packet I/O benchmarking and conformance

usage:
  zcbench list [--json]            transports and generators, usable here or why not
  zcbench run [trial options]      generator and sink inside a private lab (two
                                   anonymous network namespaces joined by veth)
  zcbench send --iface IF --dst IP [--dst-mac MAC] [trial options]
                                   generator only, out of a named interface
  zcbench sink --iface IF [--rx NAME] [--duration S]
                                   sink only, on a named interface
  zcbench --version | --help

trial options (run; send takes the generator ones):
  --tx NAME            transmit transport (default sendmmsg)
  --tx-opt KEY=VALUE   option of the transmit transport (repeatable)
  --rx NAME            receive transport (default recvmmsg)
  --rx-opt KEY=VALUE   option of the receive transport (repeatable)
  --rcvbuf SIZE        shorthand for --rx-opt rcvbuf=SIZE
  --size BYTES         UDP payload, 18 .. MTU-28 (default 272)
  --rate PPS|max       offered rate in packets/s (default 100000)
  --duration S         measurement window in seconds (default 2)
  --warmup S           warm-up before the window (default 0.5)
  --count N            stop after N packets (default: bounded by time only)
  --burst N            packets back-to-back per pacing step (default 1)
  --flows N            flows (UDP source ports), round-robin (default 1)
  --lab-mode MODE      sender-softirq | rps (default) | xdp
  --mtu BYTES          lab MTU (default 1500)
  --gen-cpu N          generator CPU (default 0)
  --sink-cpu N         sink CPU (default 1)
  --gro                enable GRO on the sink veth
  --ports N            lab port pairs (veth pairs); flow f uses port f % N (default 1)
  --traffic MODE       auto (the sink's default) | tap (foreign destination MAC,
                       as on a monitoring port) | host-addressed
  --generator NAME     flood (default: through --tx) | pktgen | trafgen (see list)
  --gen-opt KEY=VALUE  option of an external generator (repeatable)
  --artifacts DIR      where generators leave replayable scripts (default: none)
  --perf-events LIST   comma-separated perf events (default: software + cycles,
                       instructions, cache-misses where a PMU exists)
  --repetition N       repetition index recorded in the result (default 0)
  --json               print the run.json document on stdout

exit codes: 0 ok, 1 a check failed, 2 usage error, 3 environment (privilege,
kernel feature), 4 internal error, 130 interrupted.
)";

struct Args {
  std::vector<std::string> v;
  size_t i = 0;
  bool done() const { return i >= v.size(); }
  const std::string& next() { return v[i++]; }
  std::string value(const std::string& flag) {
    if (done()) throw UsageError(flag + " needs a value");
    return next();
  }
};

double parse_double(const std::string& what, const std::string& s) {
  try {
    size_t pos = 0;
    double d = std::stod(s, &pos);
    if (pos != s.size()) throw std::invalid_argument(s);
    return d;
  } catch (const std::exception&) {
    throw UsageError(what + " '" + s + "' is not a number");
  }
}

double parse_rate(const std::string& s) {
  if (s == "max") return 0;
  double r = parse_double("--rate", s);
  if (!(r > 0)) throw UsageError("--rate " + s + " is not accepted; give packets/s > 0 or 'max'");
  return r;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t c = s.find(',', start);
    std::string item = s.substr(start, c == std::string::npos ? std::string::npos : c - start);
    if (!item.empty()) out.push_back(item);
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

// Parses one trial option at args.i; returns false when the flag is not one.
bool parse_trial_flag(Args& a, const std::string& f, TrialSpec& s, bool& json_out) {
  if (f == "--tx") s.tx = parse_driver_spec(a.value(f));
  else if (f == "--rx") s.rx = parse_driver_spec(a.value(f));
  else if (f == "--tx-opt") s.tx.options.insert(parse_key_value(f, a.value(f)));
  else if (f == "--rx-opt") s.rx.options.insert(parse_key_value(f, a.value(f)));
  else if (f == "--rcvbuf") s.rx.options["rcvbuf"] = a.value(f);
  else if (f == "--size") s.payload_bytes = size_t(parse_integer(f, a.value(f)));
  else if (f == "--rate") s.rate_pps = parse_rate(a.value(f));
  else if (f == "--duration") s.duration_s = parse_double(f, a.value(f));
  else if (f == "--warmup") s.warmup_s = parse_double(f, a.value(f));
  else if (f == "--count") s.count = uint64_t(parse_integer(f, a.value(f)));
  else if (f == "--burst") s.burst = uint32_t(parse_integer(f, a.value(f)));
  else if (f == "--flows") s.flows = int(parse_integer(f, a.value(f)));
  else if (f == "--lab-mode") s.lab.mode = parse_lab_mode(a.value(f));
  else if (f == "--mtu") s.lab.mtu = int(parse_integer(f, a.value(f)));
  else if (f == "--gen-cpu") s.lab.gen_cpu = int(parse_integer(f, a.value(f)));
  else if (f == "--sink-cpu") s.lab.sink_cpu = int(parse_integer(f, a.value(f)));
  else if (f == "--gro") s.lab.gro = true;
  else if (f == "--ports") s.lab.port_pairs = int(parse_integer(f, a.value(f)));
  else if (f == "--traffic") s.traffic = a.value(f);
  else if (f == "--generator") s.generator.name = a.value(f);
  else if (f == "--gen-opt") s.generator.options.insert(parse_key_value(f, a.value(f)));
  else if (f == "--artifacts") s.artifacts_dir = a.value(f);
  else if (f == "--perf-events") s.perf_events = split_commas(a.value(f));
  else if (f == "--repetition") s.repetition = int(parse_integer(f, a.value(f)));
  else if (f == "--json") json_out = true;
  else return false;
  return true;
}

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
              {"lab_modes", {"sender-softirq", "rps", "xdp"}}};
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
  TrialSpec spec;
  bool as_json = false;
  while (!a.done()) {
    std::string f = a.next();
    if (!parse_trial_flag(a, f, spec, as_json)) throw UsageError("run: unknown option '" + f + "' (see --help)");
  }
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
  if (st == "skip") {
    std::cerr << "zcbench: " << rec["reason"].get<std::string>() << "\n";
    return kExitEnvironment;
  }
  return kExitCheckFailed;
}

// Named interfaces: only ever the one the user named, checked to exist.
int require_iface(const std::string& ifname) {
  if (ifname.empty()) throw UsageError("--iface is required: name the interface explicitly");
  unsigned idx = if_nametoindex(ifname.c_str());
  if (!idx) throw UsageError("interface '" + ifname + "' does not exist in this network namespace");
  return int(idx);
}

in_addr iface_ipv4(const std::string& ifname) {
  ifaddrs* list = nullptr;
  check_sys(getifaddrs(&list), "getifaddrs");
  in_addr found{};
  bool ok = false;
  for (ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && ifname == i->ifa_name) {
      found = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
      ok = true;
      break;
    }
  freeifaddrs(list);
  if (!ok) throw UsageError("interface '" + ifname + "' has no IPv4 address; give it one in 198.18.0.0/15");
  return found;
}

bool in_benchmark_range(in_addr a) { return (ntohl(a.s_addr) & 0xfffe0000u) == 0xc6120000u; }  // 198.18.0.0/15

int cmd_send(Args& a) {
  TrialSpec spec;
  bool as_json = false, any_dst = false;
  std::string ifname, dst;
  while (!a.done()) {
    std::string f = a.next();
    if (f == "--iface") ifname = a.value(f);
    else if (f == "--dst") dst = a.value(f);
    else if (f == "--allow-any-destination") any_dst = true;
    else if (!parse_trial_flag(a, f, spec, as_json)) throw UsageError("send: unknown option '" + f + "'");
  }
  int ifindex = require_iface(ifname);
  in_addr dst_ip{};
  if (dst.empty() || inet_pton(AF_INET, dst.c_str(), &dst_ip) != 1)
    throw UsageError("--dst '" + dst + "' is not an IPv4 address");
  if (!in_benchmark_range(dst_ip) && !any_dst)
    throw UsageError("--dst " + dst + " is outside the benchmarking range 198.18.0.0/15; pass --allow-any-destination to override");
  const DriverInfo& info = find_driver(spec.tx.name, Direction::tx);
  TxContext ctx;
  ctx.ifname = ifname;
  ctx.ifindex = ifindex;
  ctx.src_ip = iface_ipv4(ifname);
  ctx.dst_ip = dst_ip;
  ctx.src_port = kFloodSrcPortBase;
  ctx.dst_port = kFloodUdpPort;
  ctx.payload_bytes = spec.payload_bytes;
  ctx.flows = spec.flows;
  ctx.options = validate_driver_options(info, spec.tx.options);
  auto tx = info.make_tx();
  tx->open(ctx);
  FloodSpec fs{spec.payload_bytes, spec.rate_pps, spec.burst, spec.flows, spec.count, 0};
  uint64_t start = monotonic_ns() + 1000000;
  fs.end_ns = start + uint64_t((spec.warmup_s + spec.duration_s) * 1e9);
  FloodGenerator gen(*tx, fs);
  gen.run(start, g_stop);
  double secs = double(monotonic_ns() - start) / 1e9;
  json out = {{"iface", ifname}, {"dst", dst}, {"flood", gen.stats()}, {"seconds", secs},
              {"sent_pps", double(gen.sent()) / secs}};
  std::cout << out.dump(as_json ? 2 : -1) << "\n";
  return g_stop ? kExitInterrupted : kExitOk;
}

int cmd_sink(Args& a) {
  TrialSpec spec;
  bool as_json = false;
  std::string ifname;
  while (!a.done()) {
    std::string f = a.next();
    if (f == "--iface") ifname = a.value(f);
    else if (!parse_trial_flag(a, f, spec, as_json)) throw UsageError("sink: unknown option '" + f + "'");
  }
  int ifindex = require_iface(ifname);
  const DriverInfo& info = find_driver(spec.rx.name, Direction::rx);
  RxContext ctx;
  ctx.ifname = ifname;
  ctx.ifindex = ifindex;
  ctx.local_ip = iface_ipv4(ifname);
  ctx.udp_port = kFloodUdpPort;
  ctx.payload_bytes = spec.payload_bytes;
  ctx.mtu = spec.lab.mtu;
  ctx.flows = spec.flows;
  ctx.options = validate_driver_options(info, spec.rx.options);
  auto rx = info.make_rx();
  rx->open(ctx);
  Accounting acct(parse_accounting_mode(ctx.options.text("accounting")), spec.flows);
  uint64_t start = monotonic_ns(), end = start + uint64_t(spec.duration_s * 1e9);
  acct.set_latency_window(start, end);
  // run.py --remote starts the generator on this line (zcrun/remote.py READY_LINE)
  std::fprintf(stderr, "zcbench sink: ready on %s\n", ifname.c_str());
  while (!g_stop && monotonic_ns() < end) rx->receive(acct, 10);
  double secs = double(monotonic_ns() - start) / 1e9;
  json out = {{"iface", ifname}, {"received", acct.packets()}, {"received_pps", double(acct.packets()) / secs},
              {"sequence", acct.sequence_json()}, {"latency_ns", acct.latency_json()},
              {"kernel_stats", rx->kernel_stats()}};
  std::cout << out.dump(as_json ? 2 : -1) << "\n";
  return g_stop ? kExitInterrupted : kExitOk;
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
      std::cout << kUsage;
      return all.empty() ? kExitUsage : kExitOk;
    }
    if (all[0] == "--version") {
      std::cout << "zcbench " << ZC_VERSION << " (git " << ZC_GIT_SHA << ")\n";
      return kExitOk;
    }
    Args a{std::vector<std::string>(all.begin() + 1, all.end())};
    for (const auto& s : a.v)
      if (s == "--help" || s == "-h") {
        std::cout << kUsage;
        return kExitOk;
      }
    const std::string& cmd = all[0];
    if (cmd == "list") return cmd_list(a);
    if (cmd == "run") return cmd_run(a, argv_full);
    if (cmd == "send") return cmd_send(a);
    if (cmd == "sink") return cmd_sink(a);
    throw UsageError("unknown command '" + cmd + "'; accepted: list, run, send, sink, --version, --help");
  } catch (const Error& e) {
    std::cerr << "zcbench: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "zcbench: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}
