#include "harness/pacer.h"

#include <time.h>

#include <cmath>

namespace zc {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

Pacer::Pacer(double rate_pps, uint32_t burst, uint64_t start_ns)
    : burst_period_ns_(rate_pps > 0 ? 1e9 * double(burst ? burst : 1) / rate_pps : 0),
      burst_(burst ? burst : 1),
      start_ns_(start_ns) {}

uint64_t Pacer::due_time(uint64_t k) const {
  if (unlimited() || k < start_index_) return start_ns_;
  uint64_t bursts = (k - start_index_) / burst_;
  return start_ns_ + uint64_t(std::llround(double(bursts) * burst_period_ns_));
}

uint64_t Pacer::due_by(uint64_t now_ns) const {
  if (unlimited()) return UINT64_MAX;
  if (now_ns < start_ns_) return start_index_;
  uint64_t bursts = uint64_t(double(now_ns - start_ns_) / burst_period_ns_) + 1;
  // Guard the double division against landing one burst late or early.
  while (bursts > 0 && due_time(start_index_ + (bursts - 1) * burst_) > now_ns) --bursts;
  while (due_time(start_index_ + bursts * burst_) <= now_ns) ++bursts;
  return start_index_ + bursts * burst_;
}

void Pacer::rebase(uint64_t k, uint64_t now_ns) {
  start_index_ = k;
  start_ns_ = now_ns;
}

void wait_until(uint64_t t_ns) {
  constexpr uint64_t kSpinNs = 60000;
  uint64_t now = monotonic_ns();
  if (t_ns > now + kSpinNs) {
    uint64_t wake = t_ns - kSpinNs;
    timespec ts{time_t(wake / 1000000000ull), long(wake % 1000000000ull)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
  while (monotonic_ns() < t_ns) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

}  // namespace zc
