#include "harness/timestamps.h"

#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/errqueue.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "harness/accounting.h"
#include "harness/errors.h"

// glibc aliases SO_TIMESTAMPING to the _OLD or _NEW number by time_t width;
// a kernel answers with the one the socket option was set with, so both are read.
#ifndef SO_TIMESTAMPING_OLD
#define SO_TIMESTAMPING_OLD 37
#endif
#ifndef SO_TIMESTAMPING_NEW
#define SO_TIMESTAMPING_NEW 65
#endif

namespace zc {
namespace {

constexpr uint32_t kSoftwareFlags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
constexpr uint32_t kHardwareFlags = SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;

uint64_t ts_ns(int64_t sec, int64_t nsec) {
  if (sec <= 0 && nsec <= 0) return 0;
  return uint64_t(sec) * 1000000000ull + uint64_t(nsec);
}

uint64_t clock_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// One datagram socket per ioctl, in the calling thread's namespace.
class IfIoctl {
 public:
  explicit IfIoctl(const std::string& ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ)
      throw UsageError("interface name '" + ifname + "' is empty or longer than IFNAMSIZ-1 (15)");
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw EnvError(errno_text("socket(AF_INET, SOCK_DGRAM) for interface ioctls", errno), errno);
    std::strncpy(ifr_.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  }
  ~IfIoctl() { close(fd_); }
  // 0 or the errno.
  int call(unsigned long req, void* data) {
    ifr_.ifr_data = static_cast<char*>(data);
    return ioctl(fd_, req, &ifr_) < 0 ? errno : 0;
  }

 private:
  int fd_ = -1;
  ifreq ifr_{};
};

}  // namespace

void StampCounts::merge(const StampCounts& o) {
  software += o.software;
  hardware += o.hardware;
  unstamped += o.unstamped;
  order_violations += o.order_violations;
  control_truncated += o.control_truncated;
}

void enable_socket_rx_timestamps(int fd, bool hardware) {
  uint32_t flags = kSoftwareFlags | (hardware ? kHardwareFlags : 0);
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) < 0)
    throw EnvError(errno_text(std::string("setsockopt(SO_TIMESTAMPING, RX_SOFTWARE|SOFTWARE") +
                                  (hardware ? "|RX_HARDWARE|RAW_HARDWARE" : "") + ")",
                              errno),
                   errno);
}

void enable_packet_rx_timestamps(int fd, bool hardware) {
  enable_socket_rx_timestamps(fd, hardware);
  // tpacket_get_timestamp prefers the raw hardware stamp when this asks for it.
  int which = hardware ? int(SOF_TIMESTAMPING_RAW_HARDWARE) : int(SOF_TIMESTAMPING_SOFTWARE);
  if (setsockopt(fd, SOL_PACKET, PACKET_TIMESTAMP, &which, sizeof which) < 0)
    throw EnvError(errno_text("setsockopt(PACKET_TIMESTAMP)", errno), errno);
}

// scm_timestamping64 (SO_TIMESTAMPING_NEW) and scm_timestamping (_OLD) hold the
// same three stamps in timespecs of different widths: [0] software, [2] raw hardware.
template <class Scm>
bool copy_scm_stamps(const void* src, size_t data, KernelStamp* k) {
  if (data < sizeof(Scm)) return false;
  Scm t;
  std::memcpy(&t, src, sizeof t);
  k->software_ns = ts_ns(t.ts[0].tv_sec, t.ts[0].tv_nsec);
  k->hardware_ns = ts_ns(t.ts[2].tv_sec, t.ts[2].tv_nsec);
  return true;
}

bool read_stamp_cmsg(const cmsghdr& c, KernelStamp* k) {
  if (c.cmsg_level != SOL_SOCKET) return false;
  const size_t data = c.cmsg_len - CMSG_LEN(0);
  const void* src = CMSG_DATA(const_cast<cmsghdr*>(&c));  // CMSG_DATA takes a non-const pointer, reads only
  if (c.cmsg_type == SO_TIMESTAMPING_NEW) return copy_scm_stamps<scm_timestamping64>(src, data, k);
  if (c.cmsg_type == SO_TIMESTAMPING_OLD) return copy_scm_stamps<scm_timestamping>(src, data, k);
  return false;
}

KernelStamp parse_rx_stamp(const msghdr& msg) {
  KernelStamp k;
  if (!msg.msg_control || msg.msg_controllen < sizeof(cmsghdr)) return k;
  msghdr& m = const_cast<msghdr&>(msg);  // CMSG_NXTHDR takes a non-const pointer, reads only
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) read_stamp_cmsg(*c, &k);
  return k;
}

KernelStamp tpacket_stamp(uint32_t tp_status, uint64_t ns) {
  KernelStamp k;
  if (tp_status & TP_STATUS_TS_RAW_HARDWARE)
    k.hardware_ns = ns;
  else if (tp_status & TP_STATUS_TS_SOFTWARE)
    k.software_ns = ns;
  // Neither flag: ktime_get_real at tpacket_rcv, not the skb's stamp.
  return k;
}

OffsetRead read_realtime_minus_monotonic() {
  // A preemption between the reads widens the bracket (by milliseconds under
  // load: recv's conformance check saw stamps "outside" their packet's life
  // from one such read), so the narrowest of a few brackets is kept.
  OffsetRead best{0, UINT64_MAX};
  for (int i = 0; i < 4 && best.width > 1000; ++i) {
    const uint64_t m1 = clock_ns(CLOCK_MONOTONIC);
    const uint64_t r = clock_ns(CLOCK_REALTIME);
    const uint64_t m2 = clock_ns(CLOCK_MONOTONIC);
    if (m2 - m1 < best.width) best = {int64_t(r) - int64_t(m1 + (m2 - m1) / 2), m2 - m1};
  }
  return best;
}

int64_t realtime_minus_monotonic_ns() { return read_realtime_minus_monotonic().offset; }

int64_t RealtimeOffset::update(const OffsetRead& r) {
  const uint64_t apart = uint64_t(std::llabs(r.offset - held_.offset));
  const bool stepped = !valid_ || apart > r.width / 2 + held_.width / 2 + 1;
  if (stepped || r.width < held_.width) held_ = r, valid_ = true;
  return held_.offset;
}

bool split_latency(uint64_t tx_mono, uint64_t user_mono, uint64_t kernel_real, int64_t offset, uint64_t* stack,
                   uint64_t* wakeup) {
  const int64_t k = int64_t(kernel_real) - offset;
  if (k < int64_t(tx_mono) || k > int64_t(user_mono)) return false;
  *stack = uint64_t(k) - tx_mono;
  *wakeup = user_mono - uint64_t(k);
  return true;
}

void add_latency_split_json(nlohmann::json& latency, const LatencyHistogram& stack, const LatencyHistogram& wakeup,
                            const StampCounts& c) {
  latency["stack"] = latency_histogram_json(stack);
  latency["wakeup"] = latency_histogram_json(wakeup);
  const char* source = c.software ? "software" : c.hardware ? "hardware" : "none";
  latency["stamps"] = {{"software", c.software},
                       {"hardware", c.hardware},
                       {"unstamped", c.unstamped},
                       {"order_violations", c.order_violations},
                       {"control_truncated", c.control_truncated},
                       {"split_source", c.software ? "software" : "none"},
                       {"source", source},
                       {"clock", "kernel CLOCK_REALTIME stamp converted to CLOCK_MONOTONIC per batch"}};
}

HwStampProbe probe_hw_timestamps(const std::string& ifname) {
  HwStampProbe p;
  IfIoctl io(ifname);
  ethtool_drvinfo d{};
  d.cmd = ETHTOOL_GDRVINFO;
  if (io.call(SIOCETHTOOL, &d) == 0) p.driver = std::string(d.driver, strnlen(d.driver, sizeof d.driver));
  const std::string who = p.driver.empty() ? ifname : p.driver;
  ethtool_ts_info ti{};
  ti.cmd = ETHTOOL_GET_TS_INFO;
  if (int e = io.call(SIOCETHTOOL, &ti)) {
    p.reason = errno_text(who + " on " + ifname + ": ETHTOOL_GET_TS_INFO", e);
    return p;
  }
  p.so_timestamping = ti.so_timestamping;
  p.phc_index = ti.phc_index;
  p.rx_filters = ti.rx_filters;
  p.hardware = (ti.so_timestamping & kHardwareFlags) == kHardwareFlags;
  if (!p.hardware) {
    p.reason = who + " reports no SOF_TIMESTAMPING_" +
               ((ti.so_timestamping & SOF_TIMESTAMPING_RX_HARDWARE) ? "RAW_HARDWARE" : "RX_HARDWARE") +
               " (ETHTOOL_GET_TS_INFO)";
  } else if (!(ti.rx_filters & (1u << HWTSTAMP_FILTER_ALL))) {
    // HWTSTAMP_FILTER_SOME is an answer, never a request (net_tstamp.h); the
    // PTP and NTP filters miss our UDP port: only ALL stamps every packet.
    p.hardware = false;
    p.reason = who + " stamps in hardware only for filtered (PTP) packets: rx_filters 0x" +
               [](uint32_t v) {
                 char b[16];
                 std::snprintf(b, sizeof b, "%x", v);
                 return std::string(b);
               }(ti.rx_filters) +
               " lacks HWTSTAMP_FILTER_ALL (ETHTOOL_GET_TS_INFO)";
  }
  return p;
}

nlohmann::json timestamps_json(bool software, const HwStampProbe& hw, bool hardware_enabled) {
  nlohmann::json j{{"software", software},
                   {"hardware", hw.hardware && hardware_enabled},
                   {"hardware_capable", hw.hardware},
                   {"driver", hw.driver},
                   {"phc_index", hw.phc_index}};
  if (!hw.hardware)
    j["hardware_reason"] = hw.reason;
  else if (!hardware_enabled)
    j["hardware_reason"] = "the interface supports RX hardware stamps; not enabled (--hw-timestamps)";
  return j;
}

nlohmann::json sink_stamp_capability(const std::string& ifname, bool hardware_enabled) {
  HwStampProbe hw;
  try {
    hw = probe_hw_timestamps(ifname);
  } catch (const Error& e) {
    hw.reason = e.what();
  }
  return timestamps_json(true, hw, hardware_enabled);
}

nlohmann::json stamps_unavailable_json(const std::string& why) {
  return {{"software", false}, {"hardware", false}, {"reason", why}, {"hardware_reason", why}};
}

nlohmann::json sink_timestamps(const nlohmann::json& rx) {
  if (!rx.is_object()) return nullptr;
  if (rx.contains("timestamps")) return rx["timestamps"];
  if (rx.contains("workers") && rx["workers"].is_array() && !rx["workers"].empty() &&
      rx["workers"][0].is_object() && rx["workers"][0].contains("timestamps"))
    return rx["workers"][0]["timestamps"];
  return nullptr;
}

HwTstampConfig read_hwtstamp(const std::string& ifname) {
  IfIoctl io(ifname);
  hwtstamp_config cfg{};
  if (int e = io.call(SIOCGHWTSTAMP, &cfg))
    throw EnvError(errno_text(ifname + ": SIOCGHWTSTAMP (reading the hardware timestamping configuration)", e), e);
  return {cfg.tx_type, cfg.rx_filter};
}

HwTstampConfig write_hwtstamp(const std::string& ifname, HwTstampConfig want) {
  IfIoctl io(ifname);
  hwtstamp_config cfg{};
  cfg.tx_type = want.tx_type;
  cfg.rx_filter = want.rx_filter;
  if (int e = io.call(SIOCSHWTSTAMP, &cfg))
    throw EnvError(errno_text(ifname + ": SIOCSHWTSTAMP tx_type " + std::to_string(want.tx_type) + " rx_filter " +
                                  std::to_string(want.rx_filter),
                              e),
                   e);
  return {cfg.tx_type, cfg.rx_filter};  // the driver writes back what it set
}

}  // namespace zc
