// The FPGA-style flood: fixed-size, sequence-numbered UDP datagrams at a
// constant, precisely paced rate, no flow control, bounded by count and time,
// sent through any TX transport.
#pragma once
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "harness/driver.h"
#include "harness/size_mix.h"

namespace zc {

// What a TX transport needs to flood the lab's sink: every generator-side
// port with its addresses and MACs, the flood's UDP ports, the payload size
// and flow count. Callers add options and their worker fields.
TxContext lab_tx_context(const Lab& lab, size_t payload_bytes, int flows);

struct FloodSpec {
  size_t payload_bytes = 272;
  double rate_pps = 0;     // <= 0: as fast as the TX path goes
  uint32_t burst = 1;      // packets back-to-back per pacing step
  int flows = 1;           // round-robin over flows, one UDP source port each
  uint64_t max_packets = 0;  // 0: bounded by time only
  uint64_t end_ns = 0;     // CLOCK_MONOTONIC time at which the flood stops by itself
  // Generator workers: this flood sends only the flows f with
  // f % workers == worker (round-robin over those), so each flow's sequence
  // stays one worker's; rate_pps and max_packets are this worker's share
  // (flood_worker_share).
  int worker = 0;
  int workers = 1;
  // A frame-size mix: packet seq of each flow has payload mix->payload_at(seq)
  // (payload_bytes is then the mix's largest). Null: every packet payload_bytes.
  std::shared_ptr<const SizeMix> mix = nullptr;
};

// Worker w's share of a trial's rate and count, so that the shares add up to
// exactly the trial's: rate / workers each; count / workers, the remainder
// going to the first workers.
struct FloodShare {
  double rate_pps = 0;
  uint64_t max_packets = 0;
};
FloodShare flood_worker_share(double rate_pps, uint64_t max_packets, int worker, int workers);

// The flows worker w of `workers` sends, in its round-robin order.
std::vector<int> flood_worker_flows(int flows, int worker, int workers);

class FloodGenerator {
 public:
  FloodGenerator(TxDriver& driver, const FloodSpec& spec) : driver_(driver), spec_(spec) {}
  // Runs on the generator thread until a bound is hit or `stop` is set.
  void run(uint64_t start_ns, const std::atomic<bool>& stop);

  // Packets the kernel accepted (read by the meter thread at any time).
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  // After run(): how often the TX path refused a packet (retried with the same
  // sequence number) and how often the schedule was rebased because the
  // sender fell more than a catch-up allowance behind.
  nlohmann::json stats() const;
  uint64_t refusals() const { return refusals_; }  // after run()
  // After run(), with a mix: packets the kernel accepted per mix entry.
  const std::vector<uint64_t>& sent_by_size() const { return sent_by_size_; }

 private:
  TxDriver& driver_;
  FloodSpec spec_;
  std::atomic<uint64_t> sent_{0};
  uint64_t refusals_ = 0;
  uint64_t slips_ = 0;
  uint64_t commits_ = 0;
  std::vector<uint64_t> sent_by_size_;
};

// What a mix asks of a trial's TX transport, checked before any lab is built:
// a driver that sends one size per trial is a usage error naming those that
// take mixes. No-op without a mix.
void validate_size_mix(const std::string& size_mix, const DriverInfo* tx);

}  // namespace zc
