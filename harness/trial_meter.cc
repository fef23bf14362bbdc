// The meter: the main thread's part of a trial. It opens the perf counters
// once every worker thread exists, starts the generators, takes snapshots at
// the window's edges and samples per-interval figures in between.
#include <algorithm>

#include "harness/pacer.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

LinkCounters add_links(LinkCounters a, const LinkCounters& b) {
  a.rx_packets += b.rx_packets, a.tx_packets += b.tx_packets, a.rx_bytes += b.rx_bytes, a.tx_bytes += b.tx_bytes;
  a.rx_dropped += b.rx_dropped, a.tx_dropped += b.tx_dropped, a.rx_errors += b.rx_errors, a.tx_errors += b.tx_errors;
  return a;
}

// Packets sent so far, where the generator's declaration says to read them:
// its own count (summed over workers), or the generator-side veths.
uint64_t sent_now(const TrialRun& run, const LinkCounters& gen_link) {
  if (run.gen_info->sent == SentFrom::gen_link_tx) return gen_link.tx_packets;
  uint64_t n = 0;
  for (const auto& w : run.gens) n += w->gen->sent();
  return n;
}

LinkCounters gen_links(const TrialRun& run) {
  LinkCounters l;
  for (int i = 0; i < int(run.lab->ports().size()); ++i) l = add_links(l, run.lab->gen_link_counters(i));
  return l;
}

void sample_interval(TrialRun& run, uint64_t now) {
  auto cpu = read_proc_stat();
  nlohmann::json busy = nlohmann::json::array();
  for (size_t i = 0; i < cpu.size(); ++i)
    busy.push_back(sub(cpu[i].busy_ns(), i < run.s0.cpu.size() ? run.s0.cpu[i].busy_ns() : 0));
  uint64_t sent = run.gen_info->sent == SentFrom::gen_link_tx ? sub(gen_links(run).tx_packets, run.s0.gen_link.tx_packets)
                                                              : sent_now(run, {});
  run.intervals.push_back(
      {{"t_ns", now - run.t0}, {"sent", sent}, {"received", run.acct->packets()}, {"cpu_busy_ns", busy}});
}

}  // namespace

uint64_t sub(uint64_t b, uint64_t a) { return b >= a ? b - a : 0; }

uint64_t get_u64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

Snapshot take_snapshot(const TrialRun& run) {
  Snapshot s;
  s.t_ns = monotonic_ns();
  s.received = run.acct->packets();
  s.cpu = read_proc_stat();
  s.net_rx = read_softirqs("NET_RX");
  s.softnet = read_softnet_stat();
  run.lab->sink_ns().run([&] { s.snmp = read_snmp_this_thread(); });
  for (int i = 0; i < int(run.lab->ports().size()); ++i)
    s.sink_link = add_links(s.sink_link, run.lab->sink_link_counters(i));
  s.gen_link = gen_links(run);
  s.sent = sent_now(run, s.gen_link);
  for (const auto& g : run.perf_sinks) s.perf_sinks.push_back(g->read_counts());
  for (const auto& g : run.perf_gens) s.perf_gens.push_back(g->read_counts());
  for (const auto& c : run.perf_cpus) s.perf_cpus.push_back(c.group->read_counts());
  return s;
}

// Per worker thread, and beside them everything on each lab CPU (one group
// per CPU, whichever workers share it).
void open_perf_counters(TrialRun& run) {
  for (const auto& w : run.sinks) run.perf_sinks.push_back(std::make_unique<PerfCounterGroup>(w->tid, run.perf_events));
  for (const auto& w : run.gens) run.perf_gens.push_back(std::make_unique<PerfCounterGroup>(w->tid, run.perf_events));
  for (int cpu : run.layout.lab_cpus()) {
    PerfCpu c{cpu, {}, std::make_unique<PerfCounterGroup>(PerfTarget::whole_cpu(cpu), run.perf_events)};
    auto has = [&](const std::vector<int>& v) { return std::find(v.begin(), v.end(), cpu) != v.end(); };
    if (has(run.layout.gen_cpus)) c.roles.push_back("gen");
    if (has(run.layout.sink_cpus)) c.roles.push_back("sink");
    run.perf_cpus.push_back(std::move(c));
  }
  // The generator worker 0's CPU first, as the record always listed it.
  std::stable_partition(run.perf_cpus.begin(), run.perf_cpus.end(),
                        [&](const PerfCpu& c) { return c.cpu == run.layout.gen_cpus.at(0); });
}

// Starts the generators (warm-up, then the window [a_time, b_time)) and
// snapshots the window's edges; an early finish (count reached) closes the
// window where it happened. External stop: the trial is interrupted.
void meter_window(TrialRun& run) {
  const TrialSpec& spec = run.spec;
  run.s0 = take_snapshot(run);
  run.t0 = monotonic_ns() + kStartLeadNs;
  run.a_time = run.t0 + uint64_t(spec.warmup_s * 1e9);
  run.b_time = run.a_time + uint64_t(spec.duration_s * 1e9);
  run.acct->set_latency_window(run.a_time, run.b_time);
  run.go_sent = true;
  run.go.set_value(run.t0);

  const uint64_t interval_ns = uint64_t(spec.interval_s * 1e9);
  uint64_t next_tick = run.t0 + interval_ns;
  bool have_a = false, have_b = false;
  while (!have_b) {
    wait_until(std::min(next_tick, have_a ? run.b_time : run.a_time));
    if (run.external_stop && run.external_stop->load()) {
      run.interrupted = true;
      run.stop_gen.store(true);
      return;
    }
    const uint64_t now = monotonic_ns();
    const bool finished = run.gens_done.load();
    if (now >= next_tick) {
      sample_interval(run, now);
      while (next_tick <= now) next_tick += interval_ns;
    }
    if (!have_a && (now >= run.a_time || finished)) {
      run.sa = take_snapshot(run);
      have_a = true;
    }
    if (have_a && (now >= run.b_time || finished)) {
      run.sb = take_snapshot(run);
      have_b = true;
    }
  }
}

}  // namespace zc
