// Derived figures from a trial's raw counters: the one place rates, CPU per
// packet and the loss attribution are computed from what run_trial measured
// (harness/trial.cc). Kept apart from the trial's orchestration so the record
// contract can change without touching the trial's threads.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "harness/attribution.h"
#include "harness/contamination.h"
#include "harness/size_mix.h"
#include "harness/trial.h"
#include "harness/vocabulary.h"

namespace zc {
namespace {

using nlohmann::json;

uint64_t get_u64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

}  // namespace

json derive_trial(const json& params, const json& raw) {
  json d = json::object();
  double window_s = double(get_u64(raw, "window_ns")) / 1e9;
  uint64_t rx_win = get_u64(raw, "received_in_window");
  uint64_t tx_win = get_u64(raw, "sent_in_window");
  double payload = double(params.value("payload_bytes", uint64_t(0)));
  double frame = double(params.value("frame_bytes", uint64_t(payload + kEthernetOverhead)));
  // A frame-size mix: params.payload_bytes is its largest (what buffers are
  // sized for); bytes and bits on the wire follow the mix's mean frame.
  if (params.contains("size_mix") && params["size_mix"].is_string()) {
    frame = SizeMix::parse(params["size_mix"].get<std::string>())->mean_frame_bytes();
    payload = frame - double(kEthernetOverhead);
    d["mean_frame_bytes"] = frame;
  }
  d["offered_pps"] = params.contains("offered_pps") ? params["offered_pps"] : json(nullptr);
  d["sent_pps"] = window_s > 0 ? json(double(tx_win) / window_s) : json(nullptr);
  d["received_pps"] = window_s > 0 ? json(double(rx_win) / window_s) : json(nullptr);
  d["received_mbps"] = window_s > 0 ? json(double(rx_win) * double(payload) * 8 / window_s / 1e6) : json(nullptr);
  // The same packets as bits on the wire: L2 counts the Ethernet frame
  // (header, payload, FCS), L1 adds preamble and inter-frame gap.
  d["received_l2_mbps"] = window_s > 0 ? json(double(rx_win) * frame * 8 / window_s / 1e6) : json(nullptr);
  d["received_l1_mbps"] =
      window_s > 0 ? json(double(rx_win) * (frame + kL1Overhead) * 8 / window_s / 1e6) : json(nullptr);

  // Achieved vs offered over the same window: a generator that fell short
  // did not offer the rate the trial is named by. Max-rate trials promised
  // nothing, so they cannot fall short.
  double offered = params.contains("offered_pps") && params["offered_pps"].is_number()
                       ? params["offered_pps"].get<double>()
                       : 0;
  double achieved = offered > 0 && window_s > 0 ? double(tx_win) / (offered * window_s) : -1;
  d["achieved_ratio"] = achieved >= 0 ? json(achieved) : json(nullptr);
  d["generator_short"] = achieved >= 0 && achieved < kGeneratorShortRatio;

  // CPU: busy time of every CPU in the window, per received packet.
  int sink_cpu = params.value("sink_cpu", 1);
  uint64_t busy_all = 0, busy_sink = 0, softirq_all = 0, softirq_sink = 0;
  if (raw.contains("cpu_delta"))
    for (const auto& c : raw["cpu_delta"]) {
      softirq_all += get_u64(c, "softirq_ns");
      if (c.value("cpu", -1) == sink_cpu) softirq_sink = get_u64(c, "softirq_ns");
      uint64_t busy = get_u64(c, "user_ns") + get_u64(c, "nice_ns") + get_u64(c, "system_ns") +
                      get_u64(c, "irq_ns") + get_u64(c, "softirq_ns");
      busy_all += busy;
      if (c.value("cpu", -1) == sink_cpu) busy_sink = busy;
    }
  d["cpu_ns_per_pkt_total"] = rx_win ? json(double(busy_all) / double(rx_win)) : json(nullptr);
  d["cpu_ns_per_pkt_sink"] = rx_win ? json(double(busy_sink) / double(rx_win)) : json(nullptr);
  d["sink_cpu_percent"] = window_s > 0 ? json(100.0 * double(busy_sink) / (window_s * 1e9)) : json(nullptr);
  // The sink threads' own CPU: every sink worker's task-clock summed (one
  // worker's alone would make a several-worker trial look cheaper), the
  // single sink's raw.perf.sink where the record has no workers.
  // A worker without a task-clock value makes the sum null, not smaller.
  json thread_ns = nullptr;
  bool thread_ns_missing = false;
  auto add_task_clock = [&](const json& perf) {
    bool found = false;
    for (const auto& e : perf)
      if (e.value("name", "") == "task-clock" && e["value"].is_number()) {
        thread_ns = (thread_ns.is_number() ? thread_ns.get<double>() : 0.0) + e["value"].get<double>();
        found = true;
      }
    if (!found) thread_ns_missing = true;
  };
  bool from_workers = false;
  if (raw.contains("workers") && raw["workers"].is_array())
    for (const auto& w : raw["workers"])
      if (w.value("role", "") == "sink" && w.contains("perf") && w["perf"].is_array()) {
        add_task_clock(w["perf"]);
        from_workers = true;
      }
  if (!from_workers && raw.contains("perf") && raw["perf"].contains("sink") && raw["perf"]["sink"].is_array())
    add_task_clock(raw["perf"]["sink"]);
  if (thread_ns_missing) thread_ns = nullptr;
  d["cpu_ns_per_pkt_sink_thread"] =
      rx_win && thread_ns.is_number() ? json(thread_ns.get<double>() / double(rx_win)) : json(nullptr);

  // Where the receive work ran: proves the lab mode took effect. Softirq
  // *time* is the proof; NET_RX *counts* split ~50/50 in rps mode because the
  // sending CPU also raises NET_RX to send the RPS IPIs.
  d["softirq_time_share_on_sink_cpu"] =
      softirq_all ? json(double(softirq_sink) / double(softirq_all)) : json(nullptr);
  if (raw.contains("net_rx_softirqs_delta")) {
    uint64_t total = 0, on_sink = 0;
    const auto& v = raw["net_rx_softirqs_delta"];
    for (size_t i = 0; i < v.size(); ++i) {
      total += v[i].get<uint64_t>();
      if (int(i) == sink_cpu) on_sink = v[i].get<uint64_t>();
    }
    d["net_rx_share_on_sink_cpu"] = total ? json(double(on_sink) / double(total)) : json(nullptr);
  }

  const json lat = raw.value("latency_ns", json::object());
  d["latency_p50_ns"] = lat.value("p50", json(nullptr));
  d["latency_p99_ns"] = lat.value("p99", json(nullptr));
  d["latency_p999_ns"] = lat.value("p999", json(nullptr));
  d["latency_samples"] = lat.value("count", json(nullptr));
  // The split at the kernel's RX stamp (harness/timestamps.h); null without stamps.
  for (const char* part : {"stack", "wakeup"}) {
    const json h = lat.value(part, json::object());
    const bool any = h.value("count", 0) > 0;
    d[std::string("latency_") + part + "_p50_ns"] = any ? h.value("p50", json(nullptr)) : json(nullptr);
    d[std::string("latency_") + part + "_p99_ns"] = any ? h.value("p99", json(nullptr)) : json(nullptr);
  }

  // Loss over the whole trial (after the drain), attributed layer by layer:
  // lost = sent_total - received_unique, and the ratio divides it by the
  // whole trial's sent (drop_counters.sent), never by the window's.
  const json dc = raw.value("drop_counters", json::object());
  DropCounters c;
  c.sent = get_u64(dc, "sent");
  c.received_unique = get_u64(dc, "received_unique");
  c.softnet_dropped = get_u64(dc, "softnet_dropped");
  c.sink_rx_dropped = get_u64(dc, "sink_rx_dropped");
  c.gen_tx_dropped = get_u64(dc, "gen_tx_dropped");
  c.udp_rcvbuf_errors = get_u64(dc, "udp_rcvbuf_errors");
  c.udp_other_errors = get_u64(dc, "udp_other_errors");
  c.ring_drops = get_u64(dc, "ring_drops");
  DropAttribution a = attribute_drops(c);
  d["lost_packets"] = a.lost;
  d["loss_ratio"] = c.sent ? json(double(a.lost) / double(c.sent)) : json(nullptr);
  d["drops"] = a.to_json();
  d["reconciliation_ok"] = a.reconciled;
  d["contamination"] = contamination_json(params, raw);  // harness/contamination.h
  return d;
}

}  // namespace zc
