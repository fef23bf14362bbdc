// Constant-rate pacing on an absolute schedule, as an FPGA emits: packet k is
// due at start + floor(k / burst) * burst / rate. Because due times are
// computed from the start (never "last send + period"), rounding and wake-up
// jitter do not accumulate into rate error.
#pragma once
#include <cstdint>

namespace zc {

uint64_t monotonic_ns();

class Pacer {
 public:
  // rate_pps <= 0 means "as fast as possible" (every packet is due at once).
  Pacer(double rate_pps, uint32_t burst, uint64_t start_ns);

  bool unlimited() const { return burst_period_ns_ <= 0; }
  // Due time of packet k (0-based).
  uint64_t due_time(uint64_t k) const;
  // Number of packets due at or before now (a multiple of burst).
  uint64_t due_by(uint64_t now_ns) const;
  // Moves the schedule so that packet k is due at now: used when the sender
  // fell further behind than it may catch up with a burst (recorded as a slip).
  void rebase(uint64_t k, uint64_t now_ns);

 private:
  double burst_period_ns_;  // time between burst starts
  uint32_t burst_;
  uint64_t start_ns_;
  uint64_t start_index_ = 0;  // packet index due at start_ns_
};

// Sleeps until t_ns (CLOCK_MONOTONIC): clock_nanosleep while far away, then
// spins the last stretch, because a sleeping wake-up is ~50 µs late here.
void wait_until(uint64_t t_ns);

}  // namespace zc
