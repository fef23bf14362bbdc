#include "harness/flood.h"

#include <sched.h>

#include <algorithm>
#include <vector>

#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/generator.h"
#include "harness/pacer.h"
#include "harness/registry.h"
#include "harness/trial.h"

namespace zc {

FloodShare flood_worker_share(double rate_pps, uint64_t max_packets, int worker, int workers) {
  workers = std::max(1, workers);
  FloodShare s;
  s.rate_pps = rate_pps > 0 ? rate_pps / workers : rate_pps;
  if (max_packets) s.max_packets = max_packets / uint64_t(workers) + (uint64_t(worker) < max_packets % uint64_t(workers));
  return s;
}

std::vector<int> flood_worker_flows(int flows, int worker, int workers) {
  std::vector<int> mine;
  for (int f = 0; f < std::max(1, flows); ++f)
    if (f % std::max(1, workers) == worker) mine.push_back(f);
  return mine;
}

void FloodGenerator::run(uint64_t start_ns, const std::atomic<bool>& stop) {
  Pacer pacer(spec_.rate_pps, spec_.burst, start_ns);
  const size_t batch_cap = std::max<size_t>(1, driver_.max_batch());
  // Catch-up allowance: a preempted sender (2 noisy vCPUs) may make good up to
  // 20 ms worth of packets, in batches, so the average rate holds; further
  // behind, the schedule is rebased (a slip, counted) rather than bursting
  // without bound.
  const uint64_t max_lag =
      pacer.unlimited() ? UINT64_MAX : std::max<uint64_t>(batch_cap * 4, uint64_t(spec_.rate_pps / 50.0));
  // With a mix, packet seq of a flow has the size mix->index_at(seq) gives
  // (harness/size_mix.h): the prebuilt body pattern depends on the offset
  // only, so one buffer of the largest size holds every shorter payload and
  // only the checksum's body sum changes with the length.
  const SizeMix* mix = spec_.mix.get();
  const uint32_t body_sum = flood_body_sum(spec_.payload_bytes);
  std::vector<uint32_t> body_sums;
  if (mix) {
    for (size_t e = 0; e < mix->entries(); ++e) body_sums.push_back(flood_body_sum(mix->payload_bytes(e)));
    sent_by_size_.assign(mix->entries(), 0);
  }
  std::vector<size_t> lengths(batch_cap, spec_.payload_bytes);
  std::vector<size_t> entry(batch_cap, 0);
  const std::vector<int> my_flows = flood_worker_flows(spec_.flows, spec_.worker, spec_.workers);
  if (my_flows.empty()) throw InternalError("flood worker " + std::to_string(spec_.worker) + " has no flow to send");
  std::vector<uint64_t> flow_seq(my_flows.size(), 0);
  uint64_t k = 0;
  size_t next = 0;  // index into my_flows
  wait_until(start_ns);
  while (!stop.load(std::memory_order_relaxed)) {
    uint64_t now = monotonic_ns();
    if (now >= spec_.end_ns) break;
    if (spec_.max_packets && k >= spec_.max_packets) break;
    uint64_t due = pacer.due_by(now);
    if (due <= k) {
      wait_until(std::min(pacer.due_time(k), spec_.end_ns));
      continue;
    }
    uint64_t n = due - k;
    if (n > max_lag) {
      ++slips_;
      pacer.rebase(k, now);
      n = std::min<uint64_t>(n, spec_.burst);
    }
    n = std::min<uint64_t>(n, batch_cap);
    if (spec_.max_packets) n = std::min(n, spec_.max_packets - k);
    auto bufs = driver_.acquire(size_t(n));
    if (bufs.empty()) {
      ++refusals_;
      sched_yield();
      continue;
    }
    uint64_t tx_ns = monotonic_ns();
    const int flow = my_flows[next];
    uint64_t seq = flow_seq[next];
    for (size_t i = 0; i < bufs.size(); ++i) {
      uint32_t sum = body_sum;
      if (mix) {
        entry[i] = mix->index_at(seq + i);
        lengths[i] = mix->payload_bytes(entry[i]);
        sum = body_sums[entry[i]];
      }
      flood_stamp(bufs[i], lengths[i], FloodHeader{seq + i, tx_ns, uint16_t(flow)}, sum);
    }
    size_t accepted = driver_.commit(bufs.size(), flow, {lengths.data(), bufs.size()});
    if (mix)
      for (size_t i = 0; i < accepted; ++i) ++sent_by_size_[entry[i]];
    ++commits_;
    flow_seq[next] += accepted;
    k += accepted;
    sent_.store(k, std::memory_order_relaxed);
    if (accepted < bufs.size()) refusals_ += bufs.size() - accepted;
    if (accepted > 0) next = (next + 1) % my_flows.size();
  }
  driver_.flush();
}

nlohmann::json FloodGenerator::stats() const {
  nlohmann::json j = {{"sent", sent()}, {"refusals", refusals_}, {"schedule_slips", slips_}, {"commits", commits_}};
  if (spec_.mix) j["sent_by_size"] = sent_by_size_;  // per mix entry, in the mix's order
  return j;
}

void validate_size_mix(const std::string& size_mix, const DriverInfo* tx) {
  if (size_mix.empty()) return;
  SizeMix::parse(size_mix);  // the period's bound
  if (tx && tx->tx_mixed_lengths) return;
  std::string can;
  for (const auto& d : all_drivers())
    if (d.direction == Direction::tx && d.tx_mixed_lengths) can += (can.empty() ? "" : ", ") + d.name;
  if (!tx)
    throw UsageError("--size " + size_mix + ": a frame-size mix is sent by the flood generator only (--generator flood); "
                     "give one size, or --tx one of: " + can);
  throw UsageError("--size " + size_mix + ": tx " + tx->name + " sends one payload size per trial; a mix needs --tx " +
                   "one of: " + can);
}

}  // namespace zc

namespace zc {

TxContext lab_tx_context(const Lab& lab, size_t payload_bytes, int flows) {
  const LabPort& port = lab.ports().at(0);
  TxContext ctx;
  ctx.ifname = port.gen_ifname;
  ctx.ifindex = port.gen_ifindex;
  ctx.src_ip = port.gen_ip;
  ctx.dst_ip = port.sink_ip;
  ctx.src_mac = port.gen_mac;
  ctx.dst_mac = port.traffic_dst_mac;
  ctx.src_port = kFloodSrcPortBase;
  ctx.dst_port = kFloodUdpPort;
  ctx.payload_bytes = payload_bytes;
  ctx.mtu = lab.options().mtu;
  ctx.flows = flows;
  for (const auto& p : lab.ports())
    ctx.ports.push_back({p.gen_ifname, p.gen_ifindex, p.gen_ip, p.sink_ip, p.gen_mac, p.traffic_dst_mac});
  return ctx;
}

namespace {

// The flood as a Generator: one instance per generator worker, each with its
// own TX driver instance (its own sockets / ring / XSK), sending its flows at
// its share of the rate.
class FloodSource : public Generator {
 public:
  void open(const GenContext& g) override {
    TxContext ctx = lab_tx_context(*g.lab, g.payload_bytes, g.flows);
    ctx.mtu = g.mtu;
    ctx.options = g.tx_options;
    ctx.worker = g.worker;
    ctx.workers = g.workers;
    ctx.queue = g.queue;
    ctx.cpu = g.cpu;
    spec_.mix = SizeMix::parse(g.size_mix);
    if (spec_.mix) ctx.min_payload_bytes = spec_.mix->smallest_payload();
    if (!g.tx) throw InternalError("the flood was given no TX transport");
    tx_ = g.tx->make_tx();
    tx_->open(ctx);
    spec_.payload_bytes = g.payload_bytes;
    spec_.rate_pps = g.rate_pps;
    spec_.burst = g.burst;
    spec_.flows = g.flows;
    spec_.max_packets = g.count;
    spec_.worker = g.worker;
    spec_.workers = g.workers;
  }
  void run(uint64_t start_ns, uint64_t end_ns, const std::atomic<bool>& stop) override {
    spec_.end_ns = end_ns;
    flood_ = std::make_unique<FloodGenerator>(*tx_, spec_);
    flood_ptr_.store(flood_.get(), std::memory_order_release);
    flood_->run(start_ns, stop);
  }
  uint64_t sent() const override {
    const FloodGenerator* f = flood_ptr_.load(std::memory_order_acquire);
    return f ? f->sent() : 0;
  }
  uint64_t refusals() const override {
    const FloodGenerator* f = flood_ptr_.load(std::memory_order_acquire);
    return f ? f->refusals() : 0;
  }
  nlohmann::json driver_stats() override {
    nlohmann::json flood = flood_ ? flood_->stats() : FloodGenerator(*tx_, spec_).stats();
    nlohmann::json tx = tx_ ? tx_->kernel_stats() : nlohmann::json::object();
    return {{"tx", tx.is_null() ? nlohmann::json::object() : tx}, {"flood", flood}};
  }
  nlohmann::json stats() override { return flood_ ? flood_->stats() : nlohmann::json::object(); }

 private:
  std::unique_ptr<TxDriver> tx_;
  FloodSpec spec_;
  std::unique_ptr<FloodGenerator> flood_;
  std::atomic<const FloodGenerator*> flood_ptr_{nullptr};  // the meter thread reads sent() before run() set it
};

}  // namespace

const GeneratorInfo& flood_generator_info() {
  static const GeneratorInfo info = [] {
    GeneratorInfo g;
    g.name = kFloodGenerator;
    g.description = "the FPGA-style flood: sequence-numbered, paced UDP datagrams through the TX transport (--tx)";
    g.make = [] { return std::make_unique<FloodSource>(); };
    g.packets = PacketFormat::flood;
    g.sent = SentFrom::own_count;  // packets the kernel accepted, counted as sent
    g.tx_transport = true;
    g.max_workers = 1024;          // one TX driver instance per worker; each needs a flow (flows <= 1024)
    return g;
  }();
  return info;
}

const GeneratorInfo& trial_generator_info(const std::string& name) {
  return name == kFloodGenerator ? flood_generator_info() : find_generator(name);
}

}  // namespace zc
