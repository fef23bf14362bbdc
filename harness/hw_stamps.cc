#include "harness/hw_stamps.h"

#include <fcntl.h>
#include <linux/ptp_clock.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "harness/errors.h"

namespace zc {
namespace {

uint64_t ptp_ns(const ptp_clock_time& t) {
  if (t.sec < 0) return 0;
  return uint64_t(t.sec) * 1000000000ull + t.nsec;
}

}  // namespace

PhcOffset phc_offset_from_samples(const std::vector<PhcSample>& samples) {
  PhcOffset best;
  for (const auto& s : samples) {
    if (s.phc_ns == 0 || s.sys_after_ns < s.sys_before_ns) continue;
    const uint64_t width = s.sys_after_ns - s.sys_before_ns;
    if (best.valid && width >= best.bracket_ns) continue;
    const uint64_t mid = s.sys_before_ns + width / 2;
    best.valid = true;
    best.bracket_ns = width;
    best.realtime_minus_phc_ns = int64_t(mid - s.phc_ns);  // two's complement: negative when the PHC is ahead
  }
  return best;
}

std::vector<PhcSample> phc_samples_interleaved(const std::vector<uint64_t>& ts) {
  std::vector<PhcSample> out;
  for (size_t i = 0; i + 2 < ts.size(); i += 2) out.push_back({ts[i], ts[i + 1], ts[i + 2]});
  return out;
}

bool split_hw_latency(uint64_t hw_phc, int64_t realtime_minus_phc, uint64_t sw_real, uint64_t user_mono,
                      int64_t realtime_minus_monotonic, uint64_t* nic_kernel, uint64_t* kernel_user) {
  const int64_t hw_real = int64_t(hw_phc) + realtime_minus_phc;
  const int64_t sw_mono = int64_t(sw_real) - realtime_minus_monotonic;
  if (hw_real > int64_t(sw_real) || sw_mono > int64_t(user_mono)) return false;
  *nic_kernel = uint64_t(int64_t(sw_real) - hw_real);
  *kernel_user = uint64_t(int64_t(user_mono) - sw_mono);
  return true;
}

PhcClock::PhcClock(int phc_index) {
  if (phc_index < 0) {
    reason_ = "the NIC reports no PTP hardware clock (ETHTOOL_GET_TS_INFO phc_index -1)";
    return;
  }
  device_ = "/dev/ptp" + std::to_string(phc_index);
  fd_ = ::open(device_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    reason_ = errno_text("open " + device_ + " (the NIC's PTP hardware clock)", errno);
    return;
  }
  measure();
}

PhcClock::~PhcClock() {
  if (fd_ >= 0) ::close(fd_);
}

bool PhcClock::measure() {
  if (fd_ < 0) return false;
  std::vector<PhcSample> samples;
  constexpr unsigned kSamples = 9;
  ptp_sys_offset_extended ext{};
  ext.n_samples = kSamples;  // rsv[0] == 0: CLOCK_REALTIME on kernels that let it choose
  if (ioctl(fd_, PTP_SYS_OFFSET_EXTENDED, &ext) == 0) {
    method_ = "PTP_SYS_OFFSET_EXTENDED";
    for (unsigned i = 0; i < ext.n_samples && i < kSamples; ++i)
      samples.push_back({ptp_ns(ext.ts[i][0]), ptp_ns(ext.ts[i][1]), ptp_ns(ext.ts[i][2])});
  } else {
    const int e_ext = errno;
    // Drivers without gettimex64 (the PHC read not bracketed by the driver
    // itself) answer EOPNOTSUPP; PTP_SYS_OFFSET brackets in the PTP core.
    ptp_sys_offset old{};
    old.n_samples = kSamples;
    if (ioctl(fd_, PTP_SYS_OFFSET, &old) < 0) {
      ++failures_;
      if (!last_.valid)
        reason_ = errno_text(device_ + ": PTP_SYS_OFFSET_EXTENDED", e_ext) + "; " +
                  errno_text("PTP_SYS_OFFSET", errno);
      return false;
    }
    method_ = "PTP_SYS_OFFSET";
    std::vector<uint64_t> ts;
    for (unsigned i = 0; i < 2 * old.n_samples + 1 && i < 2 * kSamples + 1; ++i) ts.push_back(ptp_ns(old.ts[i]));
    samples = phc_samples_interleaved(ts);
  }
  PhcOffset o = phc_offset_from_samples(samples);
  if (!o.valid) {
    ++failures_;
    if (!last_.valid) reason_ = device_ + ": " + method_ + " returned no usable sample (system clock stepped)";
    return false;
  }
  if (!measurements_) first_ = o;
  last_ = o;
  ++measurements_;
  if (o.bracket_ns > widest_bracket_ns_) widest_bracket_ns_ = o.bracket_ns;
  reason_.clear();
  return true;
}

const PhcOffset& PhcClock::offset(uint64_t now_ns) {
  // Timed from the caller's clock readings only (a batch's time can precede
  // a measurement made inside that batch); a failed re-measure keeps the
  // last offset (counted in failures) and is retried a period later.
  if (fd_ >= 0 && now_ns >= last_attempt_ns_ + kRefreshNs) {
    measure();  // the first too: the constructor's may be seconds older than the first packet
    last_attempt_ns_ = now_ns;
  }
  return last_;
}

nlohmann::json PhcClock::to_json() const {
  nlohmann::json j{{"device", device_.empty() ? nlohmann::json(nullptr) : nlohmann::json(device_)},
                   {"offset_valid", last_.valid}};
  if (!last_.valid) {
    j["reason"] = reason_;
    return j;
  }
  j["method"] = method_;
  j["clock"] = "CLOCK_REALTIME - PHC, midpoint of the narrowest of 9 bracketed reads";
  j["measurements"] = measurements_;
  j["failures"] = failures_;
  j["realtime_minus_phc_first_ns"] = first_.realtime_minus_phc_ns;
  j["realtime_minus_phc_last_ns"] = last_.realtime_minus_phc_ns;
  j["drift_ns"] = last_.realtime_minus_phc_ns - first_.realtime_minus_phc_ns;
  j["widest_bracket_ns"] = widest_bracket_ns_;
  return j;
}

}  // namespace zc
