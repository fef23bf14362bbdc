#include "harness/flood.h"

#include <sched.h>

#include <algorithm>
#include <vector>

#include "harness/flood_header.h"
#include "harness/pacer.h"

namespace zc {

void FloodGenerator::run(uint64_t start_ns, const std::atomic<bool>& stop) {
  Pacer pacer(spec_.rate_pps, spec_.burst, start_ns);
  const size_t batch_cap = std::max<size_t>(1, driver_.max_batch());
  // Catch-up allowance: a preempted sender (2 noisy vCPUs) may make good up to
  // 20 ms worth of packets, in batches, so the average rate holds; further
  // behind, the schedule is rebased (a slip, counted) rather than bursting
  // without bound.
  const uint64_t max_lag =
      pacer.unlimited() ? UINT64_MAX : std::max<uint64_t>(batch_cap * 4, uint64_t(spec_.rate_pps / 50.0));
  const uint32_t body_sum = flood_body_sum(spec_.payload_bytes);
  const int flows = std::max(1, spec_.flows);
  std::vector<uint64_t> flow_seq(size_t(flows), 0);
  uint64_t k = 0;
  int flow = 0;
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
    uint64_t seq = flow_seq[size_t(flow)];
    for (size_t i = 0; i < bufs.size(); ++i)
      flood_stamp(bufs[i], spec_.payload_bytes, FloodHeader{seq + i, tx_ns, uint16_t(flow)}, body_sum);
    size_t accepted = driver_.commit(bufs.size(), flow);
    ++commits_;
    flow_seq[size_t(flow)] += accepted;
    k += accepted;
    sent_.store(k, std::memory_order_relaxed);
    if (accepted < bufs.size()) refusals_ += bufs.size() - accepted;
    if (accepted > 0) flow = (flow + 1) % flows;
  }
  driver_.flush();
}

nlohmann::json FloodGenerator::stats() const {
  return {{"sent", sent()}, {"refusals", refusals_}, {"schedule_slips", slips_}, {"commits", commits_}};
}

}  // namespace zc
