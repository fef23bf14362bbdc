// `zcbench send --iface`: our generator out of an interface the user named,
// toward a DUT or a second host. Loss is the receiver's to measure; this
// record says what was sent, what the interface put on the wire, the ICMP
// errors provoked (counted, never fatal) and the CPU it cost.
#include "harness/wire.h"

#include <arpa/inet.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <thread>

#include "harness/errors.h"
#include "harness/ethtool.h"
#include "harness/flood.h"
#include "harness/iface_addr.h"
#include "harness/iface_guard.h"
#include "harness/pacer.h"
#include "harness/registry.h"
#include "harness/size_mix.h"
#include "harness/wire_common.h"

namespace zc {

using nlohmann::json;
using namespace wire_detail;

WireOutcome run_wire_send(const TrialSpec& spec, const WireOptions& w, const std::atomic<bool>* stop) {
  validate_common(spec);
  int ifindex = check_named_interface(spec.iface, w.allow_host_interface);
  in_addr dst_ip{};
  if (spec.dst.empty() || inet_pton(AF_INET, spec.dst.c_str(), &dst_ip) != 1)
    throw UsageError("--dst '" + spec.dst + "' is not an IPv4 address; give the receiver's address, e.g. --dst 198.18.0.2");
  if (!in_benchmark_range(dst_ip) && !spec.allow_any_destination)
    throw UsageError("--dst " + spec.dst + " is outside the benchmarking range 198.18.0.0/15; pass --allow-any-destination to override");
  // Frames we build ourselves (packet transports) need the receiver's MAC:
  // --dst-mac, else the kernel's neighbour entry, else a usage error naming
  // the fix. Socket transports let the kernel resolve it; a known entry is
  // still recorded.
  const bool builds_frames = spec.tx.name == "tx_ring" || spec.tx.name == "af_xdp";
  MacAddr dst_mac = builds_frames || !spec.dst_mac.empty()
                        ? destination_mac(spec.iface, dst_ip, spec.dst_mac)
                        : neighbour_mac(spec.iface, dst_ip).value_or(MacAddr{});
  auto src = iface_ipv4(spec.iface);
  if (!src) throw UsageError("interface '" + spec.iface + "' has no IPv4 address; give it one in 198.18.0.0/15");
  if (spec.rate_pps < 0 || !std::isfinite(spec.rate_pps)) throw UsageError("--rate must be > 0 or 'max'");
  const DriverInfo& info = find_driver(spec.tx.name, Direction::tx);
  DriverOptions opts = validate_driver_options(info, spec.tx.options);
  // A frame-size mix goes out as in the lab (harness/size_mix.h: packet seq
  // of a flow has the size its position in the cycle gives), so a sink of
  // ours checks every length; a transport that sends one size is refused.
  validate_size_mix(spec.size_mix, &info);
  const auto mix = SizeMix::parse(spec.size_mix);
  // AF_XDP TX binds one TX queue and needs no XDP program: the XSK is
  // created with libxdp's program load inhibited (drivers/xsk_common.h), so
  // nothing is attached to the interface and nothing outlives the socket.
  const bool xsk = spec.tx.name == "af_xdp";
  int tx_queue = -1;
  if (spec.extra_params.contains("tx_queue")) {
    if (!xsk)
      throw UsageError("--tx-queue binds an AF_XDP socket to a queue; --tx " + spec.tx.name +
                       " leaves the queue to the kernel (XPS: --xps-cpus)");
    tx_queue = std::stoi(spec.extra_params["tx_queue"].get<std::string>());
  }
  if (xsk) {
    if (tx_queue < 0) tx_queue = 0;
    const size_t n = iface_queues(spec.iface, "tx").size();
    if (n && size_t(tx_queue) >= n)
      throw UsageError("--tx-queue " + std::to_string(tx_queue) + ": " + spec.iface + " has " + std::to_string(n) +
                       " TX queues; accepted: 0.." + std::to_string(n - 1));
  }

  json wire = ethtool::describe(spec.iface);
  auto speed = ethtool::link_speed_mbps(spec.iface);
  json params = base_params("send", spec, wire);
  params["tx"] = spec.tx.name;
  params["tx_opts"] = opts.to_json();
  params["generator"] = kFloodGenerator;
  params["rate_mode"] = spec.rate_pps > 0 ? "fixed" : "max";
  params["offered_pps"] = spec.rate_pps > 0 ? json(spec.rate_pps) : json(nullptr);
  params["warmup_s"] = spec.warmup_s;
  params["burst"] = spec.burst;
  params["dst"] = spec.dst;
  // The MACs the frames carry (resolved: --dst-mac or the neighbour entry; null
  // when a socket transport leaves it to the kernel).
  params["dst_mac"] = dst_mac == MacAddr{} ? json(nullptr) : json(mac_to_string(dst_mac));
  params["src_mac"] = mac_to_string(interface_mac(spec.iface));
  params["gen_cpu"] = spec.lab.gen_cpu;
  params["rx"] = "remote";  // the receiver is not ours (schema: a string)
  std::ostringstream name;
  name << spec.tx.name << "->" << spec.iface << " "
       << (mix ? "IMIX " + spec.size_mix : std::to_string(spec.payload_bytes) + "B") << " "
       << (spec.rate_pps > 0 ? std::to_string(uint64_t(spec.rate_pps)) + "pps" : "max") << " #" << spec.repetition;
  json record = new_record(spec, name.str(), wire_command_line("send", spec, w), params);
  if (skip_unusable(info, record)) return {record, false};
  InterfaceGuard guard(spec.iface, iface_plan("send", spec, w));
  record_changes(record, guard);
  netlink::Socket nl;

  TxContext ctx;
  ctx.ifname = spec.iface;
  ctx.ifindex = ifindex;
  ctx.src_ip = *src;
  ctx.dst_ip = dst_ip;
  ctx.src_mac = interface_mac(spec.iface);
  ctx.dst_mac = dst_mac;
  ctx.src_port = kFloodSrcPortBase;
  ctx.dst_port = kFloodUdpPort;
  ctx.payload_bytes = spec.payload_bytes;
  if (mix) ctx.min_payload_bytes = mix->smallest_payload();
  ctx.mtu = wire["mtu"].is_number() ? wire["mtu"].get<int>() : 1500;
  ctx.flows = spec.flows;
  ctx.options = opts;
  ctx.ports.push_back({ctx.ifname, ctx.ifindex, ctx.src_ip, ctx.dst_ip, ctx.src_mac, ctx.dst_mac});
  ctx.cpu = spec.lab.gen_cpu;
  ctx.queue = tx_queue;
  std::unique_ptr<TxDriver> tx = info.make_tx();

  std::atomic<bool> stop_gen{false};
  std::promise<void> opened;
  std::promise<uint64_t> go;
  std::shared_future<uint64_t> go_f = go.get_future().share();
  std::exception_ptr err;
  std::unique_ptr<FloodGenerator> gen;
  std::atomic<bool> done{false};
  json tx_stats;
  FloodSpec fs{spec.payload_bytes, spec.rate_pps, spec.burst, spec.flows, spec.count, 0};
  fs.mix = mix;
  std::thread t([&] {
    bool ready = false;
    try {
      pin_this_thread(spec.lab.gen_cpu);
      tx->open(ctx);
      opened.set_value();
      ready = true;
      uint64_t start = go_f.get();
      if (start) gen->run(start, stop_gen);
      tx->flush();
      tx_stats = tx->kernel_stats();
    } catch (...) {
      err = std::current_exception();
      if (!ready) opened.set_exception(err);
    }
    done.store(true);
  });
  if (!wait_opened(opened, t, record, [&] { go.set_value(0); })) return {record, false};
  WireSnapshot s0 = wire_snapshot(nl, spec.iface);
  const uint64_t t0 = monotonic_ns() + 2000000;
  const uint64_t a_time = t0 + uint64_t(spec.warmup_s * 1e9), b_time = a_time + uint64_t(spec.duration_s * 1e9);
  fs.end_ns = b_time;
  gen = std::make_unique<FloodGenerator>(*tx, fs);
  go.set_value(t0);
  bool interrupted = false;
  WireSnapshot sa, sb;
  uint64_t sent_a = 0, sent_b = 0;
  bool have_a = false;
  while (true) {
    wait_until(std::min(monotonic_ns() + 10000000, have_a ? b_time : a_time));
    if (stop && stop->load()) {
      interrupted = true;
      stop_gen.store(true);
      break;
    }
    uint64_t now = monotonic_ns();
    bool fin = done.load();
    if (!have_a && (now >= a_time || fin)) {
      sa = wire_snapshot(nl, spec.iface);
      sent_a = gen->sent();
      have_a = true;
    }
    if (have_a && (now >= b_time || fin)) {
      sb = wire_snapshot(nl, spec.iface);
      sent_b = gen->sent();
      break;
    }
  }
  t.join();
  if (err) std::rethrow_exception(err);
  if (interrupted) return {record, true};
  WireSnapshot sc = wire_snapshot(nl, spec.iface);

  json raw;
  raw["window_ns"] = sub(sb.t_ns, sa.t_ns);
  raw["sent_total"] = gen->sent();
  raw["sent_in_window"] = sub(sent_b, sent_a);
  raw["received_in_window"] = nullptr;  // the receiver is not ours
  json gstats = gen->stats();
  raw["tx_errors"] = gstats["refusals"];
  raw["cpu_delta"] = cpu_json(sa.cpu, sb.cpu);
  raw["softnet_delta"] = softnet_delta(s0.softnet, sc.softnet);
  raw["link_delta"] = {{"gen", link_delta(s0.link, sc.link)}};
  raw["iface_stats_delta"] = map_delta(s0.sysfs, sc.sysfs);
  raw["driver_counters_delta"] = ethtool::stats_delta(s0.driver, sc.driver);
  raw["icmp_delta"] = map_delta(s0.icmp, sc.icmp);
  raw["driver_stats"] = {{"tx", tx_stats.is_null() ? json::object() : tx_stats}, {"flood", gstats}};
  // Sent per size is the generator's own count; what arrived is the
  // receiver's to say (null here).
  if (mix) raw["sizes"] = size_table_json(*mix, gen->sent_by_size(), {});
  record["raw"] = raw;
  // The queue and the mode the kernel bound (zero-copy, or copy with its
  // refusal of zero-copy) beside the interface's own facts.
  if (xsk) {
    const json opened = tx_stats.is_object() ? tx_stats : json::object();
    record["params"]["wire"]["xsk"] = {{"queue", tx_queue},
                                       {"bind_mode", opened.value("bind_mode", "")},
                                       {"zerocopy_refused", opened.value("zerocopy_refused", json(nullptr))}};
  }

  json d = derive_wire("send", params, raw);
  // The packets the interface itself put on the wire (a refused or dropped
  // send never reaches it), beside what the generator counted.
  d["iface_tx_packets"] = get_u64(raw["link_delta"]["gen"], "tx_packets");
  d["iface_tx_dropped"] = get_u64(raw["link_delta"]["gen"], "tx_dropped");
  d["icmp_errors"] = get_u64(raw["icmp_delta"], "Icmp.InDestUnreachs");
  d["bits"] = bit_rates(d["sent_pps"].is_number() ? d["sent_pps"].get<double>() : 0,
                        mix ? mix->mean_frame_bytes() : double(spec.payload_bytes + kEthernetOverhead), speed);
  record["derived"] = d;
  if (gen->sent() == 0) {
    record["status"] = "fail";
    record["reason"] = "the generator sent nothing";
  }
  return {record, false};
}

}  // namespace zc
