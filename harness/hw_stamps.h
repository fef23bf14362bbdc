// The NIC's PTP hardware clock (PHC) against CLOCK_REALTIME, for the
// hardware half of the latency split (docs/results-format.md "Latency
// split", "Hardware stamps").
//
// A raw hardware RX stamp (scm_timestamping ts[2], TP_STATUS_TS_RAW_HARDWARE)
// is the PHC's time: comparable with the kernel's CLOCK_REALTIME software
// stamp only through an offset measured on /dev/ptpN (N = ETHTOOL_GET_TS_INFO's
// phc_index) by PTP_SYS_OFFSET_EXTENDED (each PHC read bracketed by two
// CLOCK_REALTIME reads; older kernels: PTP_SYS_OFFSET, the same reads
// interleaved). A PHC is free-running or disciplined by ptp4l; either way it
// drifts against the system clock, so the offset is re-measured as the trial
// goes (PhcClock::offset). Without an offset only hardware inter-arrival is
// valid (one clock, the NIC's): harness/accounting.h NicInterarrival.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zc {

// One PHC read between two CLOCK_REALTIME reads, ns.
struct PhcSample {
  uint64_t sys_before_ns = 0;
  uint64_t phc_ns = 0;
  uint64_t sys_after_ns = 0;
};

// CLOCK_REALTIME − PHC: a hardware stamp h is h + realtime_minus_phc_ns in
// CLOCK_REALTIME, to within ±bracket_ns / 2.
struct PhcOffset {
  bool valid = false;
  int64_t realtime_minus_phc_ns = 0;
  uint64_t bracket_ns = 0;  // sys_after − sys_before of the sample used
};

// The offset from the sample with the narrowest bracket (the one least
// disturbed by an interrupt or a PCIe stall between its reads), taken at the
// bracket's midpoint. Samples whose system clock ran backwards (a clock step
// between the reads) or whose PHC read is 0 are ignored; none left: invalid.
PhcOffset phc_offset_from_samples(const std::vector<PhcSample>& samples);

// PTP_SYS_OFFSET's ts[]: sys, phc, sys, phc, ..., sys (2n + 1 values, ns)
// as n samples sharing their edges.
std::vector<PhcSample> phc_samples_interleaved(const std::vector<uint64_t>& ts);

// One packet's hardware split. hw_phc is its raw hardware stamp (PHC),
// sw_real its software stamp (CLOCK_REALTIME), user_mono when the sink got
// it (CLOCK_MONOTONIC):
//   nic_kernel  = sw_real − (hw_phc + realtime_minus_phc)        (CLOCK_REALTIME)
//   kernel_user = user_mono − (sw_real − realtime_minus_monotonic) (CLOCK_MONOTONIC)
// so nic_kernel + kernel_user is NIC to user. False (nothing written) when
// the converted stamps are out of order: hardware after software, or
// software after the user's receive (an offset gone stale, a clock step).
bool split_hw_latency(uint64_t hw_phc, int64_t realtime_minus_phc, uint64_t sw_real, uint64_t user_mono,
                      int64_t realtime_minus_monotonic, uint64_t* nic_kernel, uint64_t* kernel_user);

// /dev/ptpN, opened read-only; measures at construction. Not thread-safe:
// one per sink thread.
class PhcClock {
 public:
  // phc_index < 0 (the NIC has no PHC) or a device or ioctl the kernel
  // refuses: ok() is false and reason() is the kernel's answer.
  explicit PhcClock(int phc_index);
  ~PhcClock();
  PhcClock(const PhcClock&) = delete;
  PhcClock& operator=(const PhcClock&) = delete;

  bool ok() const { return last_.valid; }
  const std::string& reason() const { return reason_; }
  // The offset, re-measured when the last is older than kRefreshNs by the
  // caller's CLOCK_MONOTONIC `now_ns` (a 100 ppm drift moves it 10 µs/100 ms).
  const PhcOffset& offset(uint64_t now_ns);
  // raw.timestamps.phc: device, method, measurements, the first and last
  // offsets, the widest bracket used, and the drift between first and last.
  nlohmann::json to_json() const;

  static constexpr uint64_t kRefreshNs = 100000000;

 private:
  bool measure();
  int fd_ = -1;
  std::string device_, method_, reason_;
  PhcOffset first_, last_;
  uint64_t last_attempt_ns_ = 0;  // the caller's time of the last offset() that measured; 0: none yet
  uint64_t measurements_ = 0, failures_ = 0, widest_bracket_ns_ = 0;
};

}  // namespace zc
