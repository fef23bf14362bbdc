#include "harness/trial.h"

#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <exception>
#include <future>
#include <memory>
#include <sstream>
#include <thread>

#include "harness/errors.h"
#include "harness/flood.h"
#include "harness/generator.h"
#include "harness/params.h"
#include "harness/pacer.h"
#include "harness/perf_counters.h"
#include "harness/registry.h"
#include "harness/sysstat.h"

namespace zc {
namespace {

using nlohmann::json;

pid_t this_tid() { return pid_t(syscall(SYS_gettid)); }

// Counters read at the edges of the trial and of its measurement window.
struct Snapshot {
  uint64_t t_ns = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
  std::vector<CpuTimes> cpu;
  std::vector<uint64_t> net_rx;
  std::vector<SoftnetCpu> softnet;
  std::map<std::string, uint64_t> snmp;
  LinkCounters gen_link, sink_link;
  std::vector<PerfCount> perf_sink, perf_gen;
  std::vector<std::vector<PerfCount>> perf_cpus;  // per PerfCpu, in order
};

// CPU-wide counters on one lab CPU: what ran there besides our threads
// (NAPI threads, ksoftirqd, the softirq itself).
struct PerfCpu {
  int cpu;
  std::vector<std::string> roles;  // "gen", "sink"
  std::unique_ptr<PerfCounterGroup> group;
};

struct Probes {
  const Lab* lab = nullptr;
  const FloodGenerator* gen = nullptr;  // null for external generators: sent = gen links' tx_packets
  const Accounting* acct = nullptr;
  const PerfCounterGroup* perf_sink = nullptr;
  const PerfCounterGroup* perf_gen = nullptr;
  const std::vector<PerfCpu>* perf_cpus = nullptr;
};

LinkCounters add_links(LinkCounters a, const LinkCounters& b) {
  a.rx_packets += b.rx_packets, a.tx_packets += b.tx_packets, a.rx_bytes += b.rx_bytes, a.tx_bytes += b.tx_bytes;
  a.rx_dropped += b.rx_dropped, a.tx_dropped += b.tx_dropped, a.rx_errors += b.rx_errors, a.tx_errors += b.tx_errors;
  return a;
}

Snapshot take_snapshot(const Probes& p) {
  Snapshot s;
  s.t_ns = monotonic_ns();
  s.received = p.acct->packets();
  s.cpu = read_proc_stat();
  s.net_rx = read_softirqs("NET_RX");
  s.softnet = read_softnet_stat();
  p.lab->sink_ns().run([&] { s.snmp = read_snmp_this_thread(); });
  for (int i = 0; i < int(p.lab->ports().size()); ++i) {
    s.gen_link = add_links(s.gen_link, p.lab->gen_link_counters(i));
    s.sink_link = add_links(s.sink_link, p.lab->sink_link_counters(i));
  }
  s.sent = p.gen ? p.gen->sent() : s.gen_link.tx_packets;
  if (p.perf_sink) s.perf_sink = p.perf_sink->read_counts();
  if (p.perf_gen) s.perf_gen = p.perf_gen->read_counts();
  if (p.perf_cpus)
    for (const auto& c : *p.perf_cpus) s.perf_cpus.push_back(c.group->read_counts());
  return s;
}

uint64_t sub(uint64_t b, uint64_t a) { return b >= a ? b - a : 0; }

json link_delta(const LinkCounters& a, const LinkCounters& b) {
  return {{"rx_packets", sub(b.rx_packets, a.rx_packets)}, {"tx_packets", sub(b.tx_packets, a.tx_packets)},
          {"rx_bytes", sub(b.rx_bytes, a.rx_bytes)},       {"tx_bytes", sub(b.tx_bytes, a.tx_bytes)},
          {"rx_dropped", sub(b.rx_dropped, a.rx_dropped)}, {"tx_dropped", sub(b.tx_dropped, a.tx_dropped)},
          {"rx_errors", sub(b.rx_errors, a.rx_errors)},    {"tx_errors", sub(b.tx_errors, a.tx_errors)}};
}

json snmp_delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b) {
  json j = json::object();
  for (const auto& [k, v] : b) {
    if (k.rfind("Udp.", 0) != 0 && k != "Ip.InDiscards" && k != "Ip.InReceives") continue;
    auto it = a.find(k);
    j[k] = sub(v, it == a.end() ? 0 : it->second);
  }
  return j;
}

json softnet_delta(const std::vector<SoftnetCpu>& a, const std::vector<SoftnetCpu>& b) {
  json arr = json::array();
  for (size_t i = 0; i < b.size(); ++i) {
    SoftnetCpu z;
    const SoftnetCpu& x = i < a.size() ? a[i] : z;
    arr.push_back({{"cpu", i},
                   {"processed", sub(b[i].processed, x.processed)},
                   {"dropped", sub(b[i].dropped, x.dropped)},
                   {"time_squeeze", sub(b[i].time_squeeze, x.time_squeeze)}});
  }
  return arr;
}

json vec_delta(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  json arr = json::array();
  for (size_t i = 0; i < b.size(); ++i) arr.push_back(sub(b[i], i < a.size() ? a[i] : 0));
  return arr;
}

json perf_cpus_delta(const std::vector<PerfCpu>& cpus, const Snapshot& a, const Snapshot& b) {
  json arr = json::array();
  for (size_t i = 0; i < cpus.size(); ++i)
    arr.push_back({{"cpu", cpus[i].cpu},
                   {"roles", cpus[i].roles},
                   {"events", cpus[i].group->delta_json(a.perf_cpus.at(i), b.perf_cpus.at(i))}});
  return arr;
}

json thread_cpu_json(const ThreadCpu& t) {
  return {{"user_ns", t.user_ns},
          {"system_ns", t.system_ns},
          {"voluntary_switches", t.voluntary_switches},
          {"involuntary_switches", t.involuntary_switches}};
}

uint64_t get_u64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

std::string format_rate(double pps) {
  if (pps <= 0) return "max";
  std::ostringstream o;
  o << uint64_t(std::llround(pps)) << "pps";
  return o.str();
}

}  // namespace

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

// validate_trial and trial_command: harness/params.cc, from the parameter table.

TrialOutcome run_trial(const TrialSpec& spec, const std::atomic<bool>* external_stop) {
  validate_trial(spec);
  const DriverInfo& tx_info = find_driver(spec.tx.name, Direction::tx);
  const DriverInfo& rx_info = find_driver(spec.rx.name, Direction::rx);
  DriverOptions tx_opts = validate_driver_options(tx_info, spec.tx.options);
  DriverOptions rx_opts = validate_driver_options(rx_info, spec.rx.options);
  const bool external = spec.generator.name != kFloodGenerator;
  const GeneratorInfo* gen_info = external ? &find_generator(spec.generator.name) : nullptr;
  DriverOptions gen_opts = external ? validate_generator_options(*gen_info, spec.generator.options) : DriverOptions{};
  LabOptions lab_opts = spec.lab;
  lab_opts.tap_traffic = spec.traffic == "tap" || (spec.traffic == "auto" && rx_info.traffic == "tap");
  // External generators' packets carry no flood header: the sink can only count.
  // pktgen's packets carry its own header (magic + seq_num): gaps are still checked.
  const std::string accounting =
      !external ? rx_opts.text("accounting") : spec.generator.name == "pktgen" ? "pktgen" : "count";

  RecordContext record_ctx{kRun, external, tx_opts, rx_opts, gen_opts, lab_opts.tap_traffic, accounting, kernel_release()};
  json params = trial_params_json(spec, record_ctx);
  std::ostringstream name;
  name << (external ? spec.generator.to_string() : spec.tx.name) << "->" << spec.rx.to_string() << " " << spec.payload_bytes << "B "
       << format_rate(spec.rate_pps) << " #" << spec.repetition;
  json record = {{"kind", "trial"},   {"suite", spec.suite}, {"name", name.str()}, {"command", trial_command(spec)},
                 {"params", params},  {"status", "pass"},    {"reason", ""},       {"lab", json::object()},
                 {"raw", json::object()}, {"derived", json::object()}};

  auto skip = [&](const std::string& why) {
    record["status"] = "skip";
    record["reason"] = "unsupported: " + why;
    return TrialOutcome{record, false};
  };
  for (const DriverInfo* info : {&tx_info, &rx_info}) {
    if (external && info == &tx_info) continue;
    Usability u = info->probe ? info->probe() : Usability{};
    if (!u.usable) return skip(info->name + ": " + u.reason);
  }
  if (external) {
    Usability u = gen_info->probe ? gen_info->probe() : Usability{};
    if (!u.usable) return skip("generator " + gen_info->name + ": " + u.reason);
  }

  // No lab, no trial: an EnvError here is the environment's (privileges),
  // not the transport's, so it propagates to the caller.
  Lab lab = Lab::create(lab_opts);
  record["lab"] = lab.describe();
  const LabPort& port = lab.ports().at(0);

  AccountingMode acct_mode = parse_accounting_mode(accounting);
  Accounting acct(acct_mode, spec.flows);
  std::unique_ptr<RxDriver> rx = rx_info.make_rx();
  std::unique_ptr<TxDriver> tx = external ? nullptr : tx_info.make_tx();
  std::unique_ptr<Generator> ext_gen = external ? gen_info->make() : nullptr;
  // The TX side opens only once the sink is open, so a stream transport's
  // connect() finds the sink's listener.
  std::promise<bool> sink_opened;
  std::shared_future<bool> sink_opened_future = sink_opened.get_future().share();

  std::atomic<bool> stop_gen{false}, gen_done{false}, stop_sink{false};
  std::promise<pid_t> sink_ready, gen_ready;
  std::promise<uint64_t> go;  // generator start time
  std::shared_future<uint64_t> go_future = go.get_future().share();
  std::exception_ptr sink_error, gen_error;
  json rx_stats, sink_thread, gen_thread;
  uint64_t rx_kernel_drops = 0;

  const uint64_t warmup_ns = uint64_t(spec.warmup_s * 1e9);
  const uint64_t window_ns = uint64_t(spec.duration_s * 1e9);

  std::thread sink_thread_handle([&] {
    bool ready_sent = false;
    try {
      lab.sink_ns().enter_this_thread();
      pin_this_thread(spec.lab.sink_cpu);
      RxContext ctx;
      ctx.ifname = port.sink_ifname;
      ctx.ifindex = port.sink_ifindex;
      // Several ports: socket sinks bind the wildcard so every port's flows land.
      ctx.local_ip = lab.ports().size() > 1 ? in_addr{htonl(INADDR_ANY)} : port.sink_ip;
      ctx.udp_port = kFloodUdpPort;
      ctx.payload_bytes = spec.payload_bytes;
      ctx.mtu = spec.lab.mtu;
      ctx.flows = spec.flows;
      ctx.options = rx_opts;
      for (const auto& p : lab.ports()) ctx.ports.push_back({p.sink_ifname, p.sink_ifindex, p.sink_ip});
      ctx.max_packets = spec.count;
      ctx.rate_pps = spec.rate_pps;
      ctx.seconds = spec.warmup_s + spec.duration_s;
      rx->open(ctx);
      sink_opened.set_value(true);
      sink_ready.set_value(this_tid());
      ready_sent = true;
      uint64_t last_rx = 0, deadline = 0;
      while (!stop_sink.load(std::memory_order_relaxed)) {
        size_t n = rx->receive(acct, 10);
        if (gen_done.load(std::memory_order_relaxed)) {
          // Drain: keep receiving until 100 ms of silence (at most 2 s).
          uint64_t now = monotonic_ns();
          if (!deadline) {
            deadline = now + 2000000000ull;
            last_rx = now;
          }
          if (n) last_rx = now;
          if (now - last_rx > 100000000ull || now > deadline) break;
        }
      }
      rx_stats = rx->kernel_stats();
      rx_kernel_drops = rx->kernel_drops();
      sink_thread = thread_cpu_json(read_thread_rusage());
    } catch (...) {
      sink_error = std::current_exception();
      if (!ready_sent) {
        sink_opened.set_value(false);
        sink_ready.set_exception(sink_error);
      }
    }
  });

  FloodSpec fs;
  fs.payload_bytes = spec.payload_bytes;
  fs.rate_pps = spec.rate_pps;
  fs.burst = spec.burst;
  fs.flows = spec.flows;
  fs.max_packets = spec.count;
  std::unique_ptr<FloodGenerator> gen;
  json tx_stats;
  std::thread gen_thread_handle([&] {
    bool ready_sent = false;
    try {
      lab.gen_ns().enter_this_thread();
      pin_this_thread(spec.lab.gen_cpu);
      if (!sink_opened_future.get()) throw InternalError("the sink failed to open; the generator did not start");
      if (external) {
        GenContext g;
        g.lab = &lab;
        g.payload_bytes = spec.payload_bytes;
        g.rate_pps = spec.rate_pps;
        g.count = spec.count;
        g.burst = spec.burst;
        g.flows = spec.flows;
        g.tap_traffic = lab_opts.tap_traffic;
        g.options = gen_opts;
        g.artifacts_dir = spec.artifacts_dir;
        ext_gen->open(g);
        gen_ready.set_value(this_tid());
        ready_sent = true;
        uint64_t start = go_future.get();
        if (start) ext_gen->run(start, start + warmup_ns + window_ns, stop_gen);
        tx_stats = ext_gen->stats();
        gen_thread = thread_cpu_json(read_thread_rusage());
        gen_done.store(true);
        return;
      }
      TxContext ctx;
      ctx.ifname = port.gen_ifname;
      ctx.ifindex = port.gen_ifindex;
      ctx.src_ip = port.gen_ip;
      ctx.dst_ip = port.sink_ip;
      ctx.src_mac = port.gen_mac;
      ctx.dst_mac = port.traffic_dst_mac;
      ctx.src_port = kFloodSrcPortBase;
      ctx.dst_port = kFloodUdpPort;
      ctx.payload_bytes = spec.payload_bytes;
      ctx.mtu = spec.lab.mtu;
      ctx.flows = spec.flows;
      ctx.options = tx_opts;
      for (const auto& p : lab.ports())
        ctx.ports.push_back({p.gen_ifname, p.gen_ifindex, p.gen_ip, p.sink_ip, p.gen_mac, p.traffic_dst_mac});
      tx->open(ctx);
      gen_ready.set_value(this_tid());
      ready_sent = true;
      uint64_t start = go_future.get();
      if (start) gen->run(start, stop_gen);
      tx_stats = tx->kernel_stats();
      gen_thread = thread_cpu_json(read_thread_rusage());
    } catch (...) {
      gen_error = std::current_exception();
      if (!ready_sent) gen_ready.set_exception(gen_error);
    }
    gen_done.store(true);
  });

  auto abort_threads = [&] {
    stop_gen.store(true);
    try {
      go.set_value(0);
    } catch (...) {
    }
    gen_thread_handle.join();
    gen_done.store(true);
    stop_sink.store(true);
    sink_thread_handle.join();
  };

  pid_t sink_tid = 0, gen_tid = 0;
  try {
    sink_tid = sink_ready.get_future().get();
    gen_tid = gen_ready.get_future().get();
  } catch (const EnvError& e) {
    abort_threads();
    return skip(e.what());
  } catch (...) {
    abort_threads();
    throw;
  }

  std::vector<std::string> events = spec.perf_events;
  if (events.empty()) {
    events = default_software_events();
    for (const auto& e : default_hardware_events()) events.push_back(e);
  }
  PerfCounterGroup perf_sink(sink_tid, events);
  PerfCounterGroup perf_gen(gen_tid, events);
  // Beside the per-thread counts: everything on each lab CPU (one group per
  // CPU, even when generator and sink share it).
  auto whole_cpu = [&](int cpu) { return std::make_unique<PerfCounterGroup>(PerfTarget::whole_cpu(cpu), events); };
  std::vector<PerfCpu> perf_cpus;
  perf_cpus.push_back({spec.lab.gen_cpu, {"gen"}, whole_cpu(spec.lab.gen_cpu)});
  if (spec.lab.sink_cpu == spec.lab.gen_cpu)
    perf_cpus[0].roles.push_back("sink");
  else
    perf_cpus.push_back({spec.lab.sink_cpu, {"sink"}, whole_cpu(spec.lab.sink_cpu)});
  Probes probes{&lab, gen.get(), &acct, &perf_sink, &perf_gen, &perf_cpus};

  Snapshot s0 = take_snapshot(probes);
  const uint64_t t0 = monotonic_ns() + 2000000;  // let the snapshot settle
  const uint64_t a_time = t0 + warmup_ns, b_time = a_time + window_ns;
  fs.end_ns = b_time;
  if (!external) {
    gen = std::make_unique<FloodGenerator>(*tx, fs);  // the generator thread touches it only after `go`
    probes.gen = gen.get();
  }
  acct.set_latency_window(a_time, b_time);
  go.set_value(t0);

  // Packets sent so far: the flood counts them itself; an external
  // generator's are read off the generator-side veths.
  auto sent_now = [&]() -> uint64_t {
    if (gen) return gen->sent();
    LinkCounters l;
    for (int i = 0; i < int(lab.ports().size()); ++i) l = add_links(l, lab.gen_link_counters(i));
    return sub(l.tx_packets, s0.gen_link.tx_packets);
  };
  json intervals = json::array();
  const uint64_t interval_ns = uint64_t(spec.interval_s * 1e9);
  uint64_t next_tick = t0 + interval_ns;
  Snapshot sa, sb;
  bool have_a = false, have_b = false, interrupted = false;
  while (!have_b) {
    uint64_t next_edge = have_a ? b_time : a_time;
    wait_until(std::min(next_tick, next_edge));
    if (external_stop && external_stop->load()) {
      interrupted = true;
      stop_gen.store(true);
      break;
    }
    uint64_t now = monotonic_ns();
    bool finished = gen_done.load();
    if (now >= next_tick) {
      auto cpu = read_proc_stat();
      json busy = json::array();
      for (size_t i = 0; i < cpu.size(); ++i)
        busy.push_back(sub(cpu[i].busy_ns(), i < s0.cpu.size() ? s0.cpu[i].busy_ns() : 0));
      intervals.push_back({{"t_ns", now - t0}, {"sent", sent_now()}, {"received", acct.packets()}, {"cpu_busy_ns", busy}});
      while (next_tick <= now) next_tick += interval_ns;
    }
    if (!have_a && (now >= a_time || finished)) {
      sa = take_snapshot(probes);
      have_a = true;
    }
    if (have_a && (now >= b_time || finished)) {
      sb = take_snapshot(probes);
      have_b = true;
    }
  }
  gen_thread_handle.join();
  gen_done.store(true);
  sink_thread_handle.join();
  if (gen_error) std::rethrow_exception(gen_error);
  if (sink_error) std::rethrow_exception(sink_error);
  if (interrupted) return TrialOutcome{record, true};
  Snapshot sc = take_snapshot(probes);

  json raw;
  raw["window_ns"] = sub(sb.t_ns, sa.t_ns);
  const uint64_t sent_total = gen ? gen->sent() : sub(sc.sent, s0.sent);
  raw["sent_total"] = sent_total;
  raw["sent_in_window"] = sub(sb.sent, sa.sent);
  json gstats = gen ? gen->stats() : json{{"refusals", 0}};
  raw["tx_errors"] = gstats["refusals"];
  raw["received_total"] = acct.packets();
  raw["received_in_window"] = sub(sb.received, sa.received);
  raw["received_bytes_total"] = acct.bytes();
  raw["sequence"] = acct.sequence_json();
  json cpu = json::array();
  for (const auto& c : cpu_delta(sa.cpu, sb.cpu)) cpu.push_back(c.to_json());
  raw["cpu_delta"] = cpu;
  raw["net_rx_softirqs_delta"] = vec_delta(sa.net_rx, sb.net_rx);
  raw["softnet_delta"] = softnet_delta(s0.softnet, sc.softnet);
  raw["snmp_sink_delta"] = snmp_delta(s0.snmp, sc.snmp);
  raw["link_delta"] = {{"gen", link_delta(s0.gen_link, sc.gen_link)}, {"sink", link_delta(s0.sink_link, sc.sink_link)}};
  if (external)
    raw["driver_stats"] = {{"rx", rx_stats.is_null() ? json::object() : rx_stats},
                           {"generator", tx_stats.is_null() ? json::object() : tx_stats}};
  else
    raw["driver_stats"] = {{"rx", rx_stats.is_null() ? json::object() : rx_stats},
                           {"tx", tx_stats.is_null() ? json::object() : tx_stats},
                           {"flood", gstats}};
  raw["threads"] = {{"sink", sink_thread}, {"gen", gen_thread}};
  raw["perf"] = {{"sink", perf_sink.delta_json(sa.perf_sink, sb.perf_sink)},
                 {"gen", perf_gen.delta_json(sa.perf_gen, sb.perf_gen)},
                 {"cpus", perf_cpus_delta(perf_cpus, sa, sb)}};
  raw["latency_ns"] = acct.latency_json();
  raw["intervals"] = intervals;

  uint64_t softnet_dropped = 0;
  for (const auto& c : raw["softnet_delta"]) softnet_dropped += c["dropped"].get<uint64_t>();
  const json& snmp = raw["snmp_sink_delta"];
  uint64_t rcvbuf = get_u64(snmp, "Udp.RcvbufErrors");
  uint64_t in_err = get_u64(snmp, "Udp.InErrors");
  // pktgen retries a transmit the veth peer refused: each refusal raises the
  // generator veth's tx_dropped *and* pktgen's `errors`, and the packet is
  // sent again, so those are not losses (measured: tx_dropped == errors, no gap).
  uint64_t gen_tx_dropped = get_u64(raw["link_delta"]["gen"], "tx_dropped");
  if (external && spec.generator.name == "pktgen") gen_tx_dropped = sub(gen_tx_dropped, get_u64(tx_stats, "errors"));
  raw["drop_counters"] = {{"sent", sent_total},
                          {"received_unique", acct.unique()},
                          {"softnet_dropped", softnet_dropped},
                          {"sink_rx_dropped", raw["link_delta"]["sink"]["rx_dropped"]},
                          {"gen_tx_dropped", gen_tx_dropped},
                          {"udp_rcvbuf_errors", rcvbuf},
                          {"udp_other_errors", sub(in_err, rcvbuf) + get_u64(snmp, "Udp.NoPorts")},
                          {"ring_drops", rx_kernel_drops}};
  record["raw"] = raw;
  record["derived"] = derive_trial(params, raw);

  std::vector<std::string> problems;
  if (acct.corrupt()) problems.push_back(std::to_string(acct.corrupt()) + " corrupt packets");
  if (acct.duplicates()) problems.push_back(std::to_string(acct.duplicates()) + " duplicated packets");
  if (!record["derived"]["reconciliation_ok"].get<bool>()) {
    const json& d = record["derived"]["drops"];
    problems.push_back("loss does not reconcile: lost " + d["lost"].dump() + ", unattributed " +
                       d["unattributed"].dump() + ", over-attributed " + d["over_attributed"].dump());
  }
  if (sent_total == 0) problems.push_back("the generator sent nothing");
  if (!problems.empty()) {
    record["status"] = "fail";
    std::string r;
    for (const auto& p : problems) r += (r.empty() ? "" : "; ") + p;
    record["reason"] = r;
  }
  return TrialOutcome{record, false};
}

}  // namespace zc
