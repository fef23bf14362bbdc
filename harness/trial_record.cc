// Collect and build the record: the trial's raw counters (docs/results-format.md)
// from the snapshots and the workers, merged over workers, then the derived
// figures and the pass/fail verdict.
#include <sstream>

#include "harness/counter_delta.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

using nlohmann::json;

json vec_delta(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  json arr = json::array();
  for (size_t i = 0; i < b.size(); ++i) arr.push_back(sub(b[i], i < a.size() ? a[i] : 0));
  return arr;
}

json perf_cpus_delta(const TrialRun& run) {
  json arr = json::array();
  for (size_t i = 0; i < run.perf_cpus.size(); ++i)
    arr.push_back({{"cpu", run.perf_cpus[i].cpu},
                   {"roles", run.perf_cpus[i].roles},
                   {"events", run.perf_cpus[i].group->delta_json(run.sa.perf_cpus.at(i), run.sb.perf_cpus.at(i))}});
  return arr;
}

// Busy and softirq time of every lab CPU over the window: where the receive
// work ran, worker by worker CPU (the full split is raw.cpu_delta).
json lab_cpu_split(const TrialRun& run, const json& cpu_delta) {
  json arr = json::array();
  for (int cpu : run.layout.lab_cpus())
    for (const auto& c : cpu_delta)
      if (c.value("cpu", -1) == cpu) {
        uint64_t busy = get_u64(c, "user_ns") + get_u64(c, "nice_ns") + get_u64(c, "system_ns") +
                        get_u64(c, "irq_ns") + get_u64(c, "softirq_ns");
        arr.push_back({{"cpu", cpu}, {"busy_ns", busy}, {"softirq_ns", get_u64(c, "softirq_ns")}});
      }
  return arr;
}

// raw.workers[]: each worker's own figures (sinks: its accounting; the
// trial's totals are the merge, raw.sequence).
json workers_json(const TrialRun& run) {
  json arr = json::array();
  for (size_t i = 0; i < run.sinks.size(); ++i) {
    const SinkWorker& w = *run.sinks[i];
    const Accounting& a = run.acct->worker(w.index);
    arr.push_back({{"role", "sink"},
                   {"worker", w.index},
                   {"cpu", w.cpu},
                   {"packets", a.packets()},
                   {"bytes", a.bytes()},
                   {"drops", w.kernel_drops},
                   {"duplicates_seen", a.duplicates()},
                   {"thread", w.thread_cpu},
                   {"perf", run.perf_sinks.at(i)->delta_json(run.sa.perf_sinks.at(i), run.sb.perf_sinks.at(i))}});
  }
  for (size_t i = 0; i < run.gens.size(); ++i) {
    const GenWorker& w = *run.gens[i];
    arr.push_back({{"role", "gen"},
                   {"worker", w.index},
                   {"cpu", w.cpu},
                   {"packets", w.gen->sent()},
                   {"refusals", w.gen->refusals()},
                   {"thread", w.thread_cpu},
                   {"perf", run.perf_gens.at(i)->delta_json(run.sa.perf_gens.at(i), run.sb.perf_gens.at(i))}});
  }
  return arr;
}

// The generator's raw.driver_stats entries: one worker's as they are; several
// workers' as arrays under the same keys.
json generator_driver_stats(const TrialRun& run) {
  if (run.gens.size() == 1) return run.gens[0]->driver_stats;
  json merged = json::object();
  for (const auto& w : run.gens)
    for (auto it = w->driver_stats.begin(); it != w->driver_stats.end(); ++it) merged[it.key()].push_back(it.value());
  return merged;
}

json sink_driver_stats(const TrialRun& run) {
  if (run.sinks.size() == 1) return run.sinks[0]->kernel_stats;
  json arr = json::array();
  for (const auto& w : run.sinks) arr.push_back(w->kernel_stats);
  return {{"workers", arr}};
}

}  // namespace

void collect(TrialRun& run) {
  run.sc = take_snapshot(run);
  const AccountingSet& acct = *run.acct;
  json raw;
  raw["window_ns"] = sub(run.sb.t_ns, run.sa.t_ns);
  const uint64_t sent_total = sub(run.sc.sent, run.s0.sent);
  raw["sent_total"] = sent_total;
  raw["sent_in_window"] = sub(run.sb.sent, run.sa.sent);
  uint64_t refusals = 0, ring_drops = 0;
  for (const auto& w : run.gens) refusals += w->gen->refusals();
  for (const auto& w : run.sinks) ring_drops += w->kernel_drops;
  raw["tx_errors"] = refusals;
  raw["received_total"] = acct.packets();
  raw["received_in_window"] = sub(run.sb.received, run.sa.received);
  raw["received_bytes_total"] = acct.bytes();
  raw["sequence"] = acct.sequence_json();
  if (!run.spec.size_mix.empty()) raw["sizes"] = trial_size_table(run);  // harness/size_mix.h
  json cpu = json::array();
  for (const auto& c : cpu_delta(run.sa.cpu, run.sb.cpu)) cpu.push_back(c.to_json());
  raw["cpu_delta"] = cpu;
  raw["lab_cpus"] = lab_cpu_split(run, cpu);
  raw["net_rx_softirqs_delta"] = vec_delta(run.sa.net_rx, run.sb.net_rx);
  raw["softnet_delta"] = softnet_delta(run.s0.softnet, run.sc.softnet);
  raw["snmp_sink_delta"] = snmp_delta(run.s0.snmp, run.sc.snmp);
  raw["link_delta"] = {{"gen", link_delta(run.s0.gen_link, run.sc.gen_link)},
                       {"sink", link_delta(run.s0.sink_link, run.sc.sink_link)}};
  raw["driver_stats"] = generator_driver_stats(run);
  raw["driver_stats"]["rx"] = sink_driver_stats(run);
  raw["threads"] = {{"sink", run.sinks.at(0)->thread_cpu}, {"gen", run.gens.at(0)->thread_cpu}};
  raw["perf"] = {{"sink", run.perf_sinks.at(0)->delta_json(run.sa.perf_sinks.at(0), run.sb.perf_sinks.at(0))},
                 {"gen", run.perf_gens.at(0)->delta_json(run.sa.perf_gens.at(0), run.sb.perf_gens.at(0))},
                 {"cpus", perf_cpus_delta(run)}};
  raw["workers"] = workers_json(run);
  raw["latency_ns"] = acct.latency_json();
  raw["timestamps"] = sink_timestamps(raw["driver_stats"]["rx"]);  // harness/timestamps.h
  raw["intervals"] = run.intervals;

  const uint64_t softnet_dropped = zc::softnet_dropped(raw["softnet_delta"]);
  const json& snmp = raw["snmp_sink_delta"];
  const uint64_t rcvbuf = get_u64(snmp, "Udp.RcvbufErrors");
  const uint64_t in_err = get_u64(snmp, "Udp.InErrors");
  // Transmits the generator declares it sent again (GeneratorInfo::resent_stat)
  // raised the generator veth's tx_dropped without being lost.
  uint64_t gen_tx_dropped = get_u64(raw["link_delta"]["gen"], "tx_dropped");
  if (!run.gen_info->resent_stat.empty())
    for (const auto& w : run.gens)
      gen_tx_dropped = sub(gen_tx_dropped, get_u64(w->gen->stats(), run.gen_info->resent_stat.c_str()));
  raw["drop_counters"] = {{"sent", sent_total},
                          {"received_unique", acct.unique()},
                          {"softnet_dropped", softnet_dropped},
                          {"sink_rx_dropped", raw["link_delta"]["sink"]["rx_dropped"]},
                          {"gen_tx_dropped", gen_tx_dropped},
                          {"udp_rcvbuf_errors", rcvbuf},
                          {"udp_other_errors", sub(in_err, rcvbuf) + get_u64(snmp, "Udp.NoPorts")},
                          {"ring_drops", ring_drops}};
  run.record["raw"] = raw;
}

void build_record(TrialRun& run) {
  json& record = run.record;
  record["derived"] = derive_trial(record["params"], record["raw"]);
  std::vector<std::string> problems;
  const AccountingSet& acct = *run.acct;
  if (acct.corrupt()) problems.push_back(std::to_string(acct.corrupt()) + " corrupt packets");
  if (acct.duplicates()) problems.push_back(std::to_string(acct.duplicates()) + " duplicated packets");
  if (!record["derived"]["reconciliation_ok"].get<bool>()) {
    const json& d = record["derived"]["drops"];
    problems.push_back("loss does not reconcile: lost " + d["lost"].dump() + ", unattributed " +
                       d["unattributed"].dump() + ", over-attributed " + d["over_attributed"].dump());
  }
  if (record["raw"]["sent_total"].get<uint64_t>() == 0) problems.push_back("the generator sent nothing");
  if (!problems.empty()) {
    record["status"] = "fail";
    std::string r;
    for (const auto& p : problems) r += (r.empty() ? "" : "; ") + p;
    record["reason"] = r;
  }
}

}  // namespace zc
