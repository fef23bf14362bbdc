// `zcbench sink --iface`: a sink on an interface the user named, fed by our
// `send` elsewhere or by an external source (an FPGA, trafgen). Its rate is
// over the traffic's active period (first to last packet) as well as its
// window; it ends after --count packets, its --duration or a --silence.
#include "harness/wire.h"

#include <arpa/inet.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <thread>

#include "harness/errors.h"
#include "harness/ethtool.h"
#include "harness/flood.h"
#include "harness/hw_stamps.h"
#include "harness/iface_addr.h"
#include "harness/iface_guard.h"
#include "harness/pacer.h"
#include "harness/perf_counters.h"
#include "harness/seq_format.h"
#include "harness/registry.h"
#include "harness/size_mix.h"
#include "harness/timestamps.h"
#include "harness/wire_common.h"
#include "harness/xdp_link.h"

namespace zc {

using nlohmann::json;
using namespace wire_detail;

namespace {

// Busy and softirq ns per CPU between two interval samples.
struct CpuSample {
  uint64_t t_ns = 0;
  uint64_t received = 0;
  std::vector<CpuTimes> cpu;
};

}  // namespace

WireOutcome run_wire_sink(const TrialSpec& spec, const WireOptions& w, const std::atomic<bool>* stop) {
  validate_common(spec);
  int ifindex = check_named_interface(spec.iface, w.allow_host_interface);
  const bool external = spec.source == "external";
  const DriverInfo& info = find_driver(spec.rx.name, Direction::rx);
  DriverOptions opts = validate_driver_options(info, spec.rx.options);
  // Checked here, not only when the driver opens: by then the interface
  // guard has already set hwtstamp (a change, even if restored after).
  if (auto proto = opts.values().find("proto");
      w.hw_timestamps && proto != opts.values().end() && proto->second == "tcp")
    throw UsageError("--hw-timestamps: " + info.name +
                     " proto=tcp reads a stream, which carries no per-datagram RX stamps; use proto=udp");
  std::optional<SeqFormat> seqf;
  if (!spec.seq.empty()) {
    seqf = parse_seq_format(spec.seq);
    validate_seq_format(*seqf, spec.payload_bytes, !external);
  }
  // Our own flood carries its header; an external source's counter is found
  // by --seq, else the sink can only count.
  std::string accounting = seqf ? "seq" : external ? "count" : opts.text("accounting");
  auto local = iface_ipv4(spec.iface);
  if (!local && info.traffic != "tap")
    throw UsageError("interface '" + spec.iface + "' has no IPv4 address, which the socket sink " + info.name +
                     " binds to; give it one in 198.18.0.0/15 or use a packet-capture sink (tpacket_v3)");
  const double silence_s = spec.silence_s > 0 ? spec.silence_s : 0;
  // A declared frame-size mix (harness/size_mix.h): our flood's headers say
  // each packet's size (a wrong length is corrupt); an external source's
  // packets are binned by length.
  const auto mix = SizeMix::parse(spec.size_mix);

  json wire = ethtool::describe(spec.iface);
  auto speed = ethtool::link_speed_mbps(spec.iface);
  json params = base_params("sink", spec, wire);
  params["rx"] = spec.rx.name;
  params["rx_opts"] = opts.to_json();
  params["generator"] = external ? "external" : "zcbench-send";
  params["source"] = spec.source;
  params["accounting"] = accounting;
  params["seq"] = seqf ? seqf->to_json() : json(nullptr);
  params["silence_s"] = silence_s;
  params["sink_cpu"] = spec.lab.sink_cpu;
  params["promisc"] = w.promisc;
  params["hw_timestamps"] = w.hw_timestamps;
  params["declared_pps"] = w.rate_given && spec.rate_pps > 0 ? json(spec.rate_pps) : json(nullptr);
  params["declared_count"] = w.count_given ? json(spec.count) : json(nullptr);
  params["offered_pps"] = params["declared_pps"];
  // No generator of ours: `tx` names the source (schema: a string).
  params["tx"] = external ? "external" : "zcbench-send";
  std::ostringstream name;
  name << spec.source << "->" << spec.rx.to_string() << "@" << spec.iface << " "
       << (mix ? "IMIX " + spec.size_mix : std::to_string(spec.payload_bytes) + "B") << " #" << spec.repetition;
  json record = new_record(spec, name.str(), wire_command_line("sink", spec, w), params);
  if (skip_unusable(info, record)) return {record, false};
  // --hw-timestamps: the NIC's probe first, before the interface is touched.
  // A NIC that cannot stamp every packet in hardware (veth cannot) is a skip
  // with the probe's reason, exit 3 as any missing kernel or NIC feature
  // (docs/design.md "Exit codes"); so is a sink that takes no kernel stamps,
  // which a suite's list of sinks under ./run.py --hw-timestamps may hold.
  std::optional<PhcClock> phc;
  if (w.hw_timestamps) {
    if (!info.rx_hw_stamps) {
      record["status"] = "skip";
      std::string can;
      for (const auto& d : all_drivers())
        if (d.direction == Direction::rx && d.rx_hw_stamps) can += (can.empty() ? "" : ", ") + d.name;
      record["reason"] = "unsupported: --hw-timestamps: sink " + info.name + " takes no kernel RX stamps (" + can + " do)";
      return {record, false};
    }
    HwStampProbe hw;
    try {
      hw = probe_hw_timestamps(spec.iface);
    } catch (const EnvError& e) {
      hw.reason = e.what();
    }
    if (!hw.hardware) {
      record["status"] = "skip";
      record["reason"] = "unsupported: --hw-timestamps on " + spec.iface + ": " + hw.reason;
      return {record, false};
    }
    phc.emplace(hw.phc_index);  // no offset: the nic->kernel split is marked unavailable with its reason
  }
  // The XDP sinks find their program on the device, as in the xdp lab;
  // here it is attached through a BPF link, so it vanishes with us, and an
  // interface with a program of someone else's is refused first, before
  // anything on it changes. Declared before `rx`: the socket closes first.
  std::optional<LinkedXskRedirect> xdp;
  if (info.name == "af_xdp" || info.name == "xdp_drop") {
    xdp = attach_xsk_redirect_by_link(ifindex, spec.iface);
    record["params"]["wire"]["xdp"] = xdp->link->describe();
  }
  InterfaceGuard guard(spec.iface, iface_plan("sink", spec, w));
  record_changes(record, guard);
  netlink::Socket nl;

  Accounting acct(parse_accounting_mode(accounting), spec.flows);
  if (seqf) acct.set_seq_format(*seqf);
  if (mix && accounting == "full") acct.set_size_mix(mix);
  else if (mix) acct.set_length_bins(mix);
  if (phc) acct.set_phc(&*phc);
  RxContext ctx;
  ctx.ifname = spec.iface;
  ctx.ifindex = ifindex;
  ctx.local_ip = local ? *local : in_addr{htonl(INADDR_ANY)};
  ctx.udp_port = kFloodUdpPort;
  ctx.payload_bytes = spec.payload_bytes;
  ctx.mtu = wire["mtu"].is_number() ? wire["mtu"].get<int>() : 1500;
  ctx.flows = spec.flows;
  ctx.options = opts;
  ctx.ports.push_back({ctx.ifname, ctx.ifindex, ctx.local_ip});
  ctx.max_packets = spec.count;
  ctx.rate_pps = spec.rate_pps;
  ctx.seconds = spec.duration_s;
  ctx.cpu = spec.lab.sink_cpu;
  ctx.hw_timestamps = w.hw_timestamps;
  std::unique_ptr<RxDriver> rx = info.make_rx();

  std::promise<void> opened;
  std::exception_ptr err;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> t0_atomic{0};
  WireSnapshot s0, s1;  // written by the sink thread (before `opened`, before `done`)
  uint64_t first_ns = 0, last_ns = 0, first_batch = 0;
  std::string end_reason = "duration";
  json rx_stats;
  json sink_perf = json::array();
  uint64_t ring_drops = 0;
  std::thread t([&] {
    bool ready = false;
    try {
      pin_this_thread(spec.lab.sink_cpu);
      rx->open(ctx);
      // The sink thread's own CPU (task-clock, a software event), as a lab
      // trial's raw.perf.sink: derived.cpu_ns_per_pkt_sink_thread is then the
      // same metric on a wire as in the lab (harness/derive.cc).
      PerfCounterGroup perf(0, {"task-clock"});
      // The interface's counters are read on this thread right before the
      // first receive and right after the last: with a source that never
      // pauses, every packet between the two reads and the receive loop's
      // edges would be loss nobody attributes (measured: 714 of 40 000 at
      // 20 kpps when the main thread read them).
      s0 = wire_snapshot(nl, spec.iface);
      const uint64_t t0 = s0.t_ns;
      const auto perf0 = perf.read_counts();
      t0_atomic.store(t0);
      opened.set_value();
      ready = true;
      const uint64_t end = t0 + uint64_t(spec.duration_s * 1e9), silence_ns = uint64_t(silence_s * 1e9);
      acct.set_latency_window(t0, end);
      while (true) {
        if (stop && stop->load()) {
          end_reason = "interrupted";
          break;
        }
        size_t n = rx->receive(acct, 10);
        uint64_t now = monotonic_ns();
        if (n) {
          if (!first_ns) first_ns = now, first_batch = n;
          last_ns = now;
        }
        if (spec.count && acct.packets() >= spec.count) {
          end_reason = "count";
          break;
        }
        if (now >= end) break;
        if (silence_ns && first_ns && now - last_ns >= silence_ns) {
          end_reason = "silence";
          break;
        }
        if (silence_ns && !first_ns && now - t0 >= silence_ns) {
          end_reason = "nothing_arrived";
          break;
        }
      }
      s1 = wire_snapshot(nl, spec.iface, /*link_first=*/true);
      sink_perf = perf.delta_json(perf0, perf.read_counts());
      // What the interface had counted by then may still sit in the socket
      // or ring (this thread can be preempted between its last receive and
      // that read): take it, a few non-blocking rounds, no more (a source
      // that never pauses would keep the queue non-empty).
      if (end_reason == "duration")
        for (int round = 0; round < 4 && rx->receive(acct, 0) > 0; ++round) {
        }
      rx_stats = rx->kernel_stats();
      ring_drops = rx->kernel_drops();
    } catch (...) {
      err = std::current_exception();
      if (!ready) opened.set_exception(err);
    }
    done.store(true);
  });
  if (!wait_opened(opened, t, record)) return {record, false};
  // run.py --remote starts the generator on this line (zcrun/remote.py READY_LINE).
  std::fprintf(stderr, "zcbench sink: ready on %s\n", spec.iface.c_str());
  const uint64_t t0 = t0_atomic.load();
  std::vector<CpuSample> samples{{t0, 0, s0.cpu}};
  const uint64_t interval_ns = uint64_t(std::max(spec.interval_s, 0.01) * 1e9);
  while (!done.load()) {
    wait_until(std::min(samples.back().t_ns + interval_ns, monotonic_ns() + 10000000));
    if (monotonic_ns() >= samples.back().t_ns + interval_ns)
      samples.push_back({monotonic_ns(), acct.packets(), read_proc_stat()});
  }
  t.join();
  if (err) std::rethrow_exception(err);
  samples.push_back({s1.t_ns, acct.packets(), s1.cpu});
  if (end_reason == "interrupted") return {record, true};

  // The active period, first to last packet, to the nearest CPU sample
  // outside it (an external source's traffic rarely fills the window).
  const CpuSample* ca = &samples.front();
  const CpuSample* cb = &samples.back();
  if (first_ns) {
    for (const auto& s : samples)
      if (s.t_ns <= first_ns) ca = &s;
    for (auto it = samples.rbegin(); it != samples.rend(); ++it)
      if (it->t_ns >= last_ns) cb = &*it;
  }

  json raw;
  raw["window_ns"] = sub(s1.t_ns, t0);
  raw["end_reason"] = end_reason;
  raw["received_total"] = acct.packets();
  raw["received_in_window"] = acct.packets();
  raw["received_bytes_total"] = acct.bytes();
  raw["first_packet_ns"] = first_ns ? json(first_ns - t0) : json(nullptr);
  raw["last_packet_ns"] = last_ns ? json(last_ns - t0) : json(nullptr);
  raw["active_ns"] = sub(last_ns, first_ns);
  raw["received_in_first_batch"] = first_batch;
  raw["cpu_delta"] = cpu_json(s0.cpu, s1.cpu);
  raw["cpu_delta_active"] = cpu_json(ca->cpu, cb->cpu);
  raw["cpu_active_span_ns"] = sub(cb->t_ns, ca->t_ns);
  raw["sequence"] = acct.sequence_json();
  raw["latency_ns"] = acct.latency_json();
  raw["softnet_delta"] = softnet_delta(s0.softnet, s1.softnet);
  const uint64_t softnet_dropped = zc::softnet_dropped(raw["softnet_delta"]);
  raw["snmp_sink_delta"] = snmp_delta(s0.snmp, s1.snmp);
  raw["link_delta"] = {{"sink", link_delta(s0.link, s1.link)}};
  raw["iface_stats_delta"] = map_delta(s0.sysfs, s1.sysfs);
  raw["driver_counters_delta"] = ethtool::stats_delta(s0.driver, s1.driver);
  raw["driver_stats"] = {{"rx", rx_stats.is_null() ? json::object() : rx_stats}};
  raw["timestamps"] = sink_timestamps(raw["driver_stats"]["rx"]);  // harness/timestamps.h
  if (phc && raw["timestamps"].is_object()) raw["timestamps"]["phc"] = phc->to_json();  // harness/hw_stamps.h
  json intervals = json::array();
  for (size_t i = 1; i < samples.size(); ++i) {
    json busy = json::array(), softirq = json::array();
    for (const auto& c : cpu_delta(samples[i - 1].cpu, samples[i].cpu)) {
      busy.push_back(c.busy_ns());
      softirq.push_back(c.softirq_ns);
    }
    intervals.push_back({{"t_ns", samples[i].t_ns - t0}, {"received", samples[i].received},
                         {"cpu_busy_ns", busy}, {"cpu_softirq_ns", softirq}});
  }
  raw["intervals"] = intervals;
  raw["perf"] = {{"sink", sink_perf}};

  // What was sent toward us, by the best evidence there is: the source's own
  // counter (flood header or --seq), else what the user declared, else what
  // the interface itself received.
  const json& sq = raw["sequence"];
  std::string basis;
  uint64_t sent = 0;
  if (seqf) {
    basis = "seq_counter", sent = get_u64(sq, "seq_expected") + get_u64(sq, "seq_unreadable");
  } else if (accounting == "full") {
    basis = "flood_seq", sent = get_u64(sq, "unique") + get_u64(sq, "gaps");
  } else if (w.count_given && spec.count) {
    basis = "declared_count", sent = spec.count;
  } else {
    basis = "interface_rx_packets", sent = get_u64(raw["link_delta"]["sink"], "rx_packets");
  }
  raw["sent_basis"] = basis;
  raw["sent_total"] = sent;
  raw["sent_in_window"] = sent;
  const json& snmp = raw["snmp_sink_delta"];
  uint64_t rcvbuf = get_u64(snmp, "Udp.RcvbufErrors"), in_err = get_u64(snmp, "Udp.InErrors");
  uint64_t link_drops = get_u64(raw["link_delta"]["sink"], "rx_dropped") + get_u64(raw["iface_stats_delta"], "rx_missed_errors") +
                        get_u64(raw["iface_stats_delta"], "rx_fifo_errors");
  raw["drop_counters"] = {{"sent", sent},
                          {"received_unique", acct.unique()},
                          {"softnet_dropped", softnet_dropped},
                          {"sink_rx_dropped", link_drops},
                          {"gen_tx_dropped", 0},
                          {"udp_rcvbuf_errors", rcvbuf},
                          {"udp_other_errors", sub(in_err, rcvbuf) + get_u64(snmp, "Udp.NoPorts")},
                          {"ring_drops", ring_drops}};
  if (mix) {
    // Sent per size only where our flood's headers show it (as sent_total's
    // flood_seq basis); a sink that saw only counts (xdp_drop) has no lengths.
    std::vector<uint64_t> sent_by_size;
    if (accounting == "full") {
      sent_by_size.assign(mix->entries(), 0);
      for (uint64_t n : acct.flow_expected())
        for (size_t e = 0; e < mix->entries(); ++e) sent_by_size[e] += mix->count_below(n, e);
    }
    const bool lengths_seen = get_u64(sq, "counted_only") == 0;
    raw["sizes"] = size_table_json(*mix, sent_by_size, lengths_seen ? acct.by_size() : std::vector<SizeCounts>{});
    if (accounting != "full")
      for (auto& e : raw["sizes"]) e["corrupt"] = nullptr;  // no header says which size a packet should have
    raw["sizes_length_unmatched"] = acct.length_unmatched();
  }
  record["raw"] = raw;
  json d = derive_wire("sink", params, raw);
  uint64_t received = acct.packets();
  double window_s = double(get_u64(raw, "window_ns")) / 1e9;
  double active_s = double(get_u64(raw, "active_ns")) / 1e9;
  // Packets after the first batch over first-to-last: the first batch's own
  // arrival spread is unknown (stamped when receive() returned).
  d["received_pps_window"] = d["received_pps"];
  d["received_pps_active"] =
      active_s > 0 && received > first_batch ? json(double(received - first_batch) / active_s) : json(nullptr);
  if (d["received_pps_active"].is_number()) d["received_pps"] = d["received_pps_active"];
  double mean_payload = received ? double(acct.bytes()) / double(received) : double(spec.payload_bytes);
  d["mean_payload_bytes"] = received ? json(mean_payload) : json(nullptr);
  d["bits"] = bit_rates(d["received_pps"].is_number() ? d["received_pps"].get<double>() : 0, mean_payload + kEthernetOverhead, speed);
  uint64_t busy = 0, busy_sink = 0, softirq = 0;
  json per_cpu = json::array();
  for (const auto& c : raw["cpu_delta_active"]) {
    uint64_t b = get_u64(c, "user_ns") + get_u64(c, "nice_ns") + get_u64(c, "system_ns") + get_u64(c, "irq_ns") + get_u64(c, "softirq_ns");
    busy += b, softirq += get_u64(c, "softirq_ns");
    if (c.value("cpu", -1) == spec.lab.sink_cpu) busy_sink = b;
    double span = double(get_u64(raw, "cpu_active_span_ns"));
    per_cpu.push_back({{"cpu", c.value("cpu", -1)},
                       {"busy_percent", span > 0 ? json(100.0 * double(b) / span) : json(nullptr)},
                       {"softirq_percent", span > 0 ? json(100.0 * double(get_u64(c, "softirq_ns")) / span) : json(nullptr)}});
  }
  d["cpu_active"] = per_cpu;
  d["cpu_ns_per_pkt_total"] = received ? json(double(busy) / double(received)) : json(nullptr);
  d["cpu_ns_per_pkt_sink"] = received ? json(double(busy_sink) / double(received)) : json(nullptr);
  d["end_reason"] = end_reason;
  d["sent_basis"] = basis;
  d["declared_vs_received"] = w.count_given && spec.count ? json(double(received) / double(spec.count)) : json(nullptr);
  (void)window_s;
  record["derived"] = d;

  std::vector<std::string> problems;
  if (received == 0)
    problems.push_back(end_reason == "nothing_arrived"
                           ? "no packets arrived on " + spec.iface + " within the silence period of " + fmt(silence_s) +
                                 " s: is the source sending to this interface (UDP port " + std::to_string(kFloodUdpPort) + ")?"
                           : "no packets arrived on " + spec.iface + " in " + fmt(spec.duration_s) +
                                 " s: is the source sending to this interface (UDP port " + std::to_string(kFloodUdpPort) + ")?");
  if (acct.corrupt()) problems.push_back(std::to_string(acct.corrupt()) + " corrupt packets");
  if (acct.length_unmatched())
    problems.push_back(std::to_string(acct.length_unmatched()) + " packets of a length the declared mix " + spec.size_mix +
                       " does not name");
  if (!external && acct.duplicates()) problems.push_back(std::to_string(acct.duplicates()) + " duplicated packets");
  if (received && !d["reconciliation_ok"].get<bool>()) {
    const json& dr = d["drops"];
    problems.push_back("loss does not reconcile (sent by " + basis + "): lost " + dr["lost"].dump() + ", unattributed " +
                       dr["unattributed"].dump() + ", over-attributed " + dr["over_attributed"].dump());
  }
  if (!problems.empty()) {
    record["status"] = "fail";
    std::string r;
    for (const auto& p : problems) r += (r.empty() ? "" : "; ") + p;
    record["reason"] = r;
  }
  return {record, false};
}

}  // namespace zc
