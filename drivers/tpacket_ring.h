// PACKET_MMAP receive rings (Documentation/networking/packet_mmap.rst), shared
// by the tpacket_v1/v2/v3 sinks and their conformance tests: option specs,
// ring geometry, socket + ring + mmap + bind + fanout, PACKET_STATISTICS.
//
// Layout: the ring is block_count blocks of block_size bytes, mapped in one
// piece. V1/V2 cut each block into block_size / frame_size frames of one
// packet each; V3 packs variable-length packets into a block and hands over
// whole blocks (full, or retired after retire_ms).
#pragma once
#include <linux/if_packet.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "drivers/frame_parse.h"
#include "drivers/udp_socket.h"
#include "harness/driver.h"
#include "harness/options.h"
#include "harness/pacer.h"
#include "harness/timestamps.h"

namespace zc {

struct RingGeometry {
  uint32_t block_size = 0;
  uint32_t block_count = 0;
  uint32_t frame_size = 0;   // V1/V2 slot; V3: only the kernel's tp_frame_nr bookkeeping
  uint32_t retire_ms = 0;    // V3
  uint32_t priv_size = 0;    // V3 per-block private area
  uint32_t frames_per_block() const { return frame_size ? block_size / frame_size : 0; }
  uint32_t frame_count() const { return frames_per_block() * block_count; }
  size_t bytes() const { return size_t(block_size) * block_count; }
  // "block_size=4096 block_count=64 frame_size=2048 frame_nr=128 ..." for errors.
  std::string describe(int version) const;
};

struct RingConfig {
  int version = TPACKET_V3;  // TPACKET_V1 / TPACKET_V2 / TPACKET_V3
  RingGeometry geometry;
  bool dgram = false;        // SOCK_DGRAM: frames start at the network header
  uint32_t reserve = 0;      // PACKET_RESERVE
  std::string fanout = "none";
  uint16_t fanout_group = 0;
  bool busy = false;         // wait=busy: spin on the status word instead of poll(2)
  bool ignore_outgoing = true;  // PACKET_IGNORE_OUTGOING: only what arrives on the port
  int worker = 0, workers = 1;  // this ring's place among the sink workers (recorded)
  bool hw_timestamps = false;   // PACKET_TIMESTAMP RAW_HARDWARE (RxContext::hw_timestamps)
};

// The options of a tpacket_vN sink (geometry, socket, fanout, wait), with the
// defaults a capture-tool author would pick for that version.
std::vector<OptionSpec> tpacket_option_specs(int version);
// Reads validated options into a config; throws UsageError for geometry that
// breaks the kernel's documented rules (PM: block size a multiple of the page
// size, frame size >= header and a multiple of TPACKET_ALIGNMENT, ...).
RingConfig tpacket_config(const DriverOptions& opts, int version);
// The same for one sink worker: with ctx.workers > 1 every worker's ring joins
// one PACKET_FANOUT group (fanout=none becomes hash; fanout_group 0 becomes one
// id shared by the trial's workers).
RingConfig tpacket_config(const RxContext& ctx, int version);
void check_ring_geometry(const RingGeometry& g, int version);

// Cheap kernel-support check for `zcbench list`: an AF_PACKET socket taking
// this PACKET_VERSION, no ring, no traffic.
Usability probe_packet_ring(int version);

// "tpacket_v3" etc.
const char* tpacket_version_name(int version);
// PACKET_FANOUT mode constant for "hash", "lb", "cpu", "qm", "rollover"; -1 for "none".
int fanout_mode(const std::string& name);

// One AF_PACKET socket with an RX ring, mapped. Creation order follows the
// kernel's constraints: ring before bind (so no packet is queued outside the
// ring), fanout after bind (fanout_add needs a running socket).
class PacketRing {
 public:
  PacketRing() = default;
  PacketRing(PacketRing&&) noexcept;
  PacketRing& operator=(PacketRing&&) noexcept;
  PacketRing(const PacketRing&) = delete;
  PacketRing& operator=(const PacketRing&) = delete;
  ~PacketRing();

  // Opens in the calling thread's network namespace and binds to ifindex
  // (0: every interface). Ring geometry the kernel rejects -> UsageError with
  // the kernel's errno and the geometry; a missing feature -> EnvError.
  void open(const RingConfig& cfg, int ifindex, const std::string& ifname);

  int fd() const { return fd_.get(); }
  const RingConfig& config() const { return cfg_; }
  uint8_t* block(uint32_t i) const { return map_ + size_t(i) * cfg_.geometry.block_size; }
  // V1/V2 frame i (block-major, as the kernel numbers them).
  uint8_t* frame(uint32_t i) const {
    const auto& g = cfg_.geometry;
    uint32_t fpb = g.frames_per_block();
    return block(i / fpb) + size_t(i % fpb) * g.frame_size;
  }
  FrameStart frame_start() const { return cfg_.dgram ? FrameStart::network : FrameStart::ethernet; }

  // poll(2) for POLLIN; false on timeout.
  bool wait(int timeout_ms) const;

  // PACKET_STATISTICS: the kernel clears its counters on every read, so each
  // read is added to the totals here.
  void collect_stats();
  uint64_t packets() const { return packets_; }  // tp_packets: includes drops
  uint64_t drops() const { return drops_; }
  uint64_t freezes() const { return freezes_; }  // V3 tp_freeze_q_cnt
  nlohmann::json stats_json() const;

 private:
  void close();
  RingConfig cfg_;
  Fd fd_;
  uint8_t* map_ = nullptr;
  size_t map_bytes_ = 0;
  uint64_t packets_ = 0, drops_ = 0, freezes_ = 0;
};

// Status words are shared with the kernel: read with acquire, hand back with
// release (packet_mmap.rst: "the user ... must use memory barriers").
template <class T>
T load_status(const T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <class T>
void release_to_kernel(T* p) {
  __atomic_store_n(p, T(TP_STATUS_KERNEL), __ATOMIC_RELEASE);
}

// How long a sink waits for the status word at `status` to show
// TP_STATUS_USER: poll(2) on the socket, or (wait=busy) spin on the word
// itself. Returns whether it did.
template <class T>
bool wait_for_user(const PacketRing& ring, const T* status, int timeout_ms) {
  if (load_status(status) & TP_STATUS_USER) return true;
  if (!ring.config().busy) {
    ring.wait(timeout_ms);
    return load_status(status) & TP_STATUS_USER;
  }
  const uint64_t deadline = monotonic_ns() + uint64_t(timeout_ms) * 1000000ull;
  for (unsigned spins = 1;; ++spins) {
    if (load_status(status) & TP_STATUS_USER) return true;
    if (spins % 256 == 0 && monotonic_ns() >= deadline) return false;
    __builtin_ia32_pause();
  }
}

// The V1 and V2 sinks: one packet per frame slot, walked in ring order; each
// slot is handed back (TP_STATUS_KERNEL) as soon as its packet is accounted.
// Hdr is tpacket_hdr (V1) or tpacket2_hdr (V2); they differ in the width of
// tp_status and the timestamp's unit, which the walk does not read.
template <class Hdr>
class FrameRingSink : public RxDriver {
 public:
  explicit FrameRingSink(int version) : version_(version) {}

  void open(const RxContext& ctx) override {
    ring_.open(tpacket_config(ctx, version_), ctx.ifindex, ctx.ifname);
    udp_port_ = ctx.udp_port;
    frame_count_ = ring_.config().geometry.frame_count();
    stamps_ = sink_stamp_capability(ctx.ifname, ctx.hw_timestamps);
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    if (!wait_for_user(ring_, &current()->tp_status, timeout_ms)) return 0;
    size_t total = 0;
    // Bounded so the caller regains control at any rate; one batch timestamp
    // per kBatch frames.
    while (total < kMaxPerCall) {
      acct.begin_batch();
      size_t n = 0;
      for (; n < kBatch; ++n) {
        Hdr* h = current();
        if (!(load_status(&h->tp_status) & TP_STATUS_USER)) break;
        deliver(acct, h);
        release_to_kernel(&h->tp_status);
        if (++cur_ == frame_count_) cur_ = 0;
      }
      total += n;
      if (n < kBatch) break;
    }
    return total;
  }

  nlohmann::json kernel_stats() override {
    ring_.collect_stats();
    nlohmann::json j = ring_.stats_json();
    j["frames_seen"] = frames_;
    j["non_flood_packets"] = non_flood_;
    j["truncated_packets"] = truncated_;
    j["timestamps"] = stamps_;
    return j;
  }

  uint64_t kernel_drops() override {
    ring_.collect_stats();
    return ring_.drops();
  }

 private:
  static constexpr size_t kBatch = 64;
  static constexpr size_t kMaxPerCall = 4096;

  Hdr* current() const { return reinterpret_cast<Hdr*>(ring_.frame(cur_)); }

  void deliver(Accounting& acct, const Hdr* h) {
    ++frames_;
    // tp_mac is the frame's start for SOCK_RAW and equals tp_net for SOCK_DGRAM.
    const uint8_t* data = reinterpret_cast<const uint8_t*>(h) + h->tp_mac;
    if (h->tp_snaplen < h->tp_len) ++truncated_;
    auto p = flood_udp_payload(data, h->tp_snaplen, ring_.frame_start(), udp_port_);
    if (p.data())
      acct.on_packet(p.data(), p.size(), tpacket_stamp(h->tp_status, stamp_ns(h)));
    else
      ++non_flood_;
  }

  // CLOCK_REALTIME of the frame: V1 gives microseconds, V2 nanoseconds.
  static uint64_t stamp_ns(const Hdr* h) {
    if constexpr (requires { h->tp_nsec; })
      return uint64_t(h->tp_sec) * 1000000000ull + h->tp_nsec;
    else
      return uint64_t(h->tp_sec) * 1000000000ull + uint64_t(h->tp_usec) * 1000ull;
  }

  nlohmann::json stamps_;
  int version_;
  PacketRing ring_;
  uint16_t udp_port_ = 0;
  uint32_t frame_count_ = 0;
  uint32_t cur_ = 0;
  uint64_t frames_ = 0, non_flood_ = 0, truncated_ = 0;
};

}  // namespace zc
