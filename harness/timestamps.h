// Kernel receive timestamps (SO_TIMESTAMPING, PACKET_TIMESTAMP) for the
// sinks, so one-way latency splits at the kernel's RX stamp into
//   stack  = kernel RX stamp − generator send time  (the path to the socket/ring)
//   wakeup = user receive time − kernel RX stamp     (queueing + scheduler wake-up)
// (docs/results-format.md "Latency split").
//
// Clocks: the flood header's send time and the sink's batch time are
// CLOCK_MONOTONIC (harness/pacer.h); the kernel's software RX stamp is
// CLOCK_REALTIME (skb->tstamp, ktime_get_real; Documentation/networking/
// timestamping.rst). Stamps are converted with the REALTIME − MONOTONIC
// offset read at the batch (realtime_minus_monotonic_ns), never compared raw.
// Hardware stamps (ts[2] of scm_timestamping, TP_STATUS_TS_RAW_HARDWARE) are
// the NIC's PHC clock, comparable with neither: they split only through a
// measured PHC offset (harness/hw_stamps.h, `sink --hw-timestamps`).
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace zc {

class LatencyHistogram;  // harness/accounting.h

// One packet's kernel stamps, ns; 0 = absent.
struct KernelStamp {
  uint64_t software_ns = 0;  // CLOCK_REALTIME
  uint64_t hardware_ns = 0;  // the NIC's clock (raw hardware stamp)
};

// Per-sink counts of what the stamps said (merged across workers by adding).
struct StampCounts {
  uint64_t software = 0;          // packets with a software stamp
  uint64_t hardware = 0;          // packets with a raw hardware stamp
  uint64_t unstamped = 0;         // packets the sink asked stamps for and got none
  uint64_t order_violations = 0;  // stamp outside [send, user receive]: not split
  uint64_t control_truncated = 0; // MSG_CTRUNC: the stamp did not fit the control buffer
  void merge(const StampCounts& o);
};

// The kernel's RX stamps on one socket: SO_TIMESTAMPING with
// SOF_TIMESTAMPING_RX_SOFTWARE | SOFTWARE (and RX_HARDWARE | RAW_HARDWARE when
// `hardware`). Throws EnvError with the kernel's reason.
void enable_socket_rx_timestamps(int fd, bool hardware);

// A PACKET_MMAP ring's socket: SO_TIMESTAMPING (so the kernel stamps skbs at
// all: net_enable_timestamp) and PACKET_TIMESTAMP, which chooses what
// tp_sec/tp_nsec carry (tpacket_get_timestamp in net/packet/af_packet.c).
void enable_packet_rx_timestamps(int fd, bool hardware);

// Control-buffer bytes a socket sink gives each message: one
// scm_timestamping, the SO_RXQ_OVFL counter the sink sockets also enable,
// and room for one more cmsg.
constexpr size_t kStampControlBytes = 192;

// The stamps of one received message (SCM_TIMESTAMPING: ts[0] software,
// ts[2] raw hardware; both the _OLD and _NEW layouts). Other cmsgs ignored.
KernelStamp parse_rx_stamp(const msghdr& msg);

// One control message of any walk (io_uring's multishot recvmsg buffers have
// no msghdr of their own: io_uring_recvmsg_cmsg_firsthdr/nexthdr): when it is
// SCM_TIMESTAMPING, its stamps go to *k and it returns true.
bool read_stamp_cmsg(const cmsghdr& c, KernelStamp* k);

// TPACKET tp_status bits -> which source tp_sec/tp_nsec came from.
KernelStamp tpacket_stamp(uint32_t tp_status, uint64_t ns);

// CLOCK_REALTIME − CLOCK_MONOTONIC now, ns (the realtime read between two
// monotonic reads, their midpoint taken; the narrowest of a few brackets).
// `width` is that bracket: the estimate is within width/2 of the truth.
struct OffsetRead {
  int64_t offset = 0;
  uint64_t width = 0;
};
OffsetRead read_realtime_minus_monotonic();
int64_t realtime_minus_monotonic_ns();

// The offset a sink converts kernel stamps with. It changes only when the
// wall clock is stepped, while one read's error is half its bracket, and on a
// loaded VM every bracket of a batch can be microseconds wide (the clock reads
// preempted), more than a veth packet's whole stack latency: conformance
// floods then counted stamps "before the send". So the narrowest read is held
// while later reads agree with it within their brackets; a read that disagrees
// beyond both is a step and replaces it.
class RealtimeOffset {
 public:
  int64_t update(const OffsetRead& r);
  int64_t update() { return update(read_realtime_minus_monotonic()); }
  const OffsetRead& held() const { return held_; }

 private:
  OffsetRead held_;
  bool valid_ = false;
};

// Splits one packet's latency. tx and user are CLOCK_MONOTONIC; kernel_real
// is CLOCK_REALTIME, converted by `offset` (realtime − monotonic). False when
// the converted stamp lies outside [tx, user] (a clock step, or stamps not
// taken on this path): nothing is written then.
bool split_latency(uint64_t tx_mono, uint64_t user_mono, uint64_t kernel_real, int64_t offset, uint64_t* stack,
                   uint64_t* wakeup);

// The record's raw.latency_ns additions: "stack", "wakeup" (histograms as
// latency_histogram_json) and "stamps" (counts, source used, clock note).
void add_latency_split_json(nlohmann::json& latency, const LatencyHistogram& stack, const LatencyHistogram& wakeup,
                            const StampCounts& counts);

// Hardware RX timestamping of one interface (ETHTOOL_GET_TS_INFO), in the
// calling thread's network namespace.
struct HwStampProbe {
  bool hardware = false;  // SOF_TIMESTAMPING_RX_HARDWARE and RAW_HARDWARE, rx_filter HWTSTAMP_FILTER_ALL offered
  std::string driver;     // ETHTOOL_GDRVINFO's driver name ("" when unknown)
  int phc_index = -1;
  uint32_t so_timestamping = 0;
  uint32_t rx_filters = 0;
  std::string reason;     // why not, when !hardware
};
HwStampProbe probe_hw_timestamps(const std::string& ifname);

// What a sink that enabled software stamps on `ifname` records: the probe's
// answer as timestamps_json, a failing probe's reason as hardware_reason.
// `hardware_enabled`: the sink asked for hardware stamps (--hw-timestamps).
nlohmann::json sink_stamp_capability(const std::string& ifname, bool hardware_enabled = false);

// The record's "timestamps" block: {software, hardware, hardware_reason,
// driver, phc_index}; software is what the sink enabled.
nlohmann::json timestamps_json(bool software, const HwStampProbe& hw, bool hardware_enabled);

// The "timestamps" block of a socket sink that cannot take stamps on the
// path chosen: software and hardware false, `why` as the reason for both.
nlohmann::json stamps_unavailable_json(const std::string& why);

// raw.timestamps of a trial from its sink driver statistics (one worker's
// object, or {"workers": [...]}, whose first is taken: all workers share the
// interface): null when the sink does not stamp.
nlohmann::json sink_timestamps(const nlohmann::json& rx_driver_stats);

// The interface's hardware timestamping configuration (SIOCGHWTSTAMP /
// SIOCSHWTSTAMP's hwtstamp_config, tx_type and rx_filter). Changed only
// through InterfaceGuard (hwtstamp_setting, harness/iface_guard.h), which
// records it before the change and restores it, after a SIGKILL too.
struct HwTstampConfig {
  int tx_type = 0;
  int rx_filter = 0;
};
// Both throw EnvError with the kernel's reason (EOPNOTSUPP: no hardware stamps).
HwTstampConfig read_hwtstamp(const std::string& ifname);
// Returns what the driver accepted (it may widen rx_filter).
HwTstampConfig write_hwtstamp(const std::string& ifname, HwTstampConfig cfg);

}  // namespace zc
