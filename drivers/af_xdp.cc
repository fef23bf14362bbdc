// `af_xdp`: AF_XDP sockets through libxdp's xsk API, both directions.
//
// RX: the xdp lab's program redirects each sink veth queue q into the socket
// registered at XSKMAP[q] (one shared program per device, one socket per
// queue: sink worker w binds and registers RxContext::queue, default 0); frames land in the UMEM, the
// sink parses Ethernet/IPv4/UDP and hands the UDP payload to Accounting, then
// gives the chunk back on the fill ring.
// TX: every UMEM chunk holds a complete prebuilt frame (Ethernet + IPv4 + UDP
// with checksums, payload written once); acquire() hands out payload
// pointers, commit() sets the flow's source port and UDP checksum, submits
// descriptors and kicks the kernel (sendto) when it asks; completions are
// reaped to recycle chunks.
// Either side: umem=shared puts all workers of the side on worker 0's UMEM,
// each on its own slice of chunks (drivers/xsk_common.h).
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/xsk_common.h"
#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/xdp_prog.h"

namespace zc {
namespace {

using nlohmann::json;

uint16_t load_be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
void store_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

// Shared UMEM: libxdp gives two sockets on one queue one fill ring between
// them, which the per-worker frame partition cannot survive; every worker
// needs its own queue (the trial layout gives one per af_xdp worker).
void require_queue_per_worker(const char* dir, int queue, int workers) {
  if (queue < 0)
    throw UsageError(std::string(dir) + " af_xdp umem=shared: " + std::to_string(workers) +
                     " workers without a queue each; give --queues " + std::to_string(workers) + " or more");
}

class AfXdpSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    cfg_ = xsk_config(ctx.options, Direction::rx);
    cfg_.queue = uint32_t(std::max(ctx.queue, 0));
    worker_ = ctx.worker;
    udp_port_ = ctx.udp_port;
    // Our socket only sees what an XDP program redirects to it: without the
    // xdp lab's program (and its XSKMAP) it would wait forever.
    AttachedXdp prog = find_attached_xdp(ctx.ifindex, ctx.ifname);
    if (!prog.xskmap.valid())
      throw UsageError("rx af_xdp needs --lab-mode xdp: " + ctx.ifname + " has " +
                       (prog.prog_id ? "an XDP program ('" + prog.prog_name + "') without an XSKMAP"
                                     : std::string("no XDP program")) +
                       " to redirect frames to an AF_XDP socket");
    cfg_.worker = ctx.worker;
    cfg_.workers = ctx.workers;
    const FrameShare share = owned_frames(ctx);
    const size_t max_frame = ctx.payload_bytes + kXskFrameHeaders;
    if (max_frame + XDP_PACKET_HEADROOM > cfg_.frame_size)
      throw UsageError("rx af_xdp: a " + std::to_string(max_frame) + "-byte frame plus the kernel's " +
                       std::to_string(XDP_PACKET_HEADROOM) + "-byte headroom exceeds frame_size=" +
                       std::to_string(cfg_.frame_size) + "; use frame_size=4096");
    xsk_.open(ctx.ifname, cfg_, true, false);
    uint32_t idx = 0;
    if (xsk_ring_prod__reserve(&xsk_.fill, share.count, &idx) != share.count)
      throw InternalError("af_xdp: cannot reserve the initial fill ring");
    for (uint32_t i = 0; i < share.count; ++i)
      *xsk_ring_prod__fill_addr(&xsk_.fill, idx + i) = uint64_t(share.first + i) * cfg_.frame_size;
    xsk_ring_prod__submit(&xsk_.fill, share.count);
    const int fd = xsk_.fd();
    if (bpf_map_update_elem(prog.xskmap.get(), &cfg_.queue, &fd, 0) < 0)
      throw EnvError(errno_text("register AF_XDP socket in the XSKMAP of " + ctx.ifname, errno), errno);
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    uint32_t idx = 0;
    uint32_t n = xsk_ring_cons__peek(&xsk_.rx, cfg_.batch, &idx);
    if (n == 0) {
      wait(timeout_ms);
      n = xsk_ring_cons__peek(&xsk_.rx, cfg_.batch, &idx);
      if (n == 0) return 0;
    }
    acct.begin_batch();
    uint32_t fidx = 0;
    while (xsk_ring_prod__reserve(&xsk_.fill, n, &fidx) != n) {
      // Cannot stay short: every chunk is either in the fill ring, the RX
      // ring or in our hands, and the fill ring holds them all.
    }
    const uint64_t chunk_mask = ~uint64_t(cfg_.frame_size - 1);
    for (uint32_t i = 0; i < n; ++i) {
      const xdp_desc* d = xsk_ring_cons__rx_desc(&xsk_.rx, idx + i);
      const uint8_t* f = static_cast<const uint8_t*>(xsk_umem__get_data(xsk_.umem_area(), d->addr));
      deliver(acct, f, d->len);
      *xsk_ring_prod__fill_addr(&xsk_.fill, fidx + i) = d->addr & chunk_mask;
    }
    xsk_ring_prod__submit(&xsk_.fill, n);
    xsk_ring_cons__release(&xsk_.rx, n);
    return n;
  }

  json kernel_stats() override {
    json j = xsk_.open_report();
    j["queue"] = cfg_.queue;
    j["worker"] = worker_;
    stats_ = read_xdp_statistics(xsk_.fd());
    j["xdp_statistics"] = xdp_statistics_json(stats_);
    j["xsk_drops_in_link"] = stats_.rx_dropped + stats_.rx_ring_full;
    j["non_flood_frames"] = non_flood_;
    j["wakeups"] = wakeups_;
    j["fill_ring_needed_wakeup"] = fill_wakeups_;
    return j;
  }

  // Nothing for the `ring` layer, on purpose: on veth every frame the XSK
  // refuses (rx_dropped, which already includes each failed fill-ring
  // allocation, plus rx_ring_full) is a failed XDP redirect that veth also
  // counts in the sink device's rx_dropped — the `link` layer. Reporting it
  // here too would count each drop twice (measured: af_xdp.rx_ring_full_counted
  // and af_xdp.fill_ring_empty_counted record sink_rx_dropped_delta equal to
  // the XSK counters). kernel_stats() keeps the split as xsk_drops_in_link.
  uint64_t kernel_drops() override { return 0; }

 private:
  // The chunks this socket puts on its fill ring, and so the only ones its
  // RX ring can return: every chunk is then either in the fill ring, the RX
  // ring or in our hands, and the fill ring holds them all (receive() relies
  // on it). Own UMEM: fill_comp_size chunks from 0. Shared UMEM: this
  // worker's slice, at most fill_comp_size of it.
  FrameShare owned_frames(const RxContext& ctx) const {
    if (!umem_is_shared(cfg_)) {
      if (cfg_.frames < cfg_.fill_comp_size)
        throw UsageError("rx af_xdp: frames=" + std::to_string(cfg_.frames) + " is below fill_comp_size=" +
                         std::to_string(cfg_.fill_comp_size) + "; the fill ring is filled with every chunk");
      return {0, cfg_.fill_comp_size};
    }
    require_queue_per_worker("rx", ctx.queue, ctx.workers);
    FrameShare s = frame_share(cfg_);
    if (s.count < cfg_.batch)
      throw UsageError("rx af_xdp umem=shared: frames=" + std::to_string(cfg_.frames) + " over " +
                       std::to_string(ctx.workers) + " workers leaves " + std::to_string(s.count) +
                       " chunks each, below batch=" + std::to_string(cfg_.batch) + "; raise frames");
    s.count = std::min(s.count, cfg_.fill_comp_size);
    return s;
  }

  void wait(int timeout_ms) {
    if (cfg_.busy_poll) {
      // Busy poll: a non-blocking recvfrom runs the device's NAPI here.
      recvfrom(xsk_.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
      ++wakeups_;
      return;
    }
    if (cfg_.need_wakeup && xsk_ring_prod__needs_wakeup(&xsk_.fill)) ++fill_wakeups_;
    pollfd p{xsk_.fd(), POLLIN, 0};
    ++wakeups_;
    if (poll(&p, 1, timeout_ms) < 0 && errno != EINTR) throw EnvError(errno_text("poll AF_XDP socket", errno), errno);
  }

  void deliver(Accounting& acct, const uint8_t* f, uint32_t len) {
    if (len < kXskFrameHeaders || load_be16(f + 12) != 0x0800 || f[14] != 0x45 || f[23] != 17 ||
        load_be16(f + 36) != udp_port_) {
      ++non_flood_;
      return;
    }
    const uint16_t udp_len = load_be16(f + 38);
    if (udp_len < 8 || udp_len - 8u > len - kXskFrameHeaders) {
      ++non_flood_;
      return;
    }
    acct.on_packet(f + kXskFrameHeaders, udp_len - 8u);
  }

  XskConfig cfg_;
  XskSocket xsk_;
  int worker_ = 0;
  uint16_t udp_port_ = 0;
  uint64_t non_flood_ = 0, wakeups_ = 0, fill_wakeups_ = 0;
  xdp_statistics stats_{};
};

class AfXdpTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    cfg_ = xsk_config(ctx.options, Direction::tx);
    // Generator worker w transmits on TX queue TxContext::queue: in copy mode
    // xsk_generic_xmit sets the skb's queue_mapping to it, and veth_xmit
    // hands it to the sink's RX queue of the same index.
    cfg_.queue = uint32_t(std::max(ctx.queue, 0));
    payload_ = ctx.payload_bytes;
    frame_len_ = uint32_t(payload_ + kXskFrameHeaders);
    if (frame_len_ > cfg_.frame_size)
      throw UsageError("tx af_xdp: a " + std::to_string(frame_len_) + "-byte frame does not fit frame_size=" +
                       std::to_string(cfg_.frame_size));
    if (cfg_.fill_comp_size < cfg_.ring_size)
      throw UsageError("tx af_xdp: fill_comp_size=" + std::to_string(cfg_.fill_comp_size) +
                       " is below ring_size=" + std::to_string(cfg_.ring_size) +
                       "; the completion ring must hold every descriptor in flight");
    cfg_.worker = ctx.worker;
    cfg_.workers = ctx.workers;
    if (umem_is_shared(cfg_)) require_queue_per_worker("tx", ctx.queue, ctx.workers);
    // Shared UMEM: this worker builds frames in, and sends from, its own
    // slice only; its completion ring returns only what it sent.
    const FrameShare share = frame_share(cfg_);
    xsk_.open(ctx.ifname, cfg_, false, true);
    for (uint32_t i = share.first; i < share.first + share.count; ++i) {
      const uint64_t addr = uint64_t(i) * cfg_.frame_size;
      build_frame(ctx, static_cast<uint8_t*>(xsk_umem__get_data(xsk_.umem_area(), addr)));
      free_.push_back(addr);
    }
    // Per flow: source port and the UDP checksum. For payloads that carry
    // the flood checksum (>= 24 bytes) the payload's ones' complement sum is
    // the same for every restamp (the csum field balances it), so one UDP
    // checksum per flow holds for every packet.
    const uint8_t* f0 = static_cast<const uint8_t*>(xsk_umem__get_data(xsk_.umem_area(), free_.front()));
    for (int fl = 0; fl < ctx.flows; ++fl) {
      const uint16_t port = uint16_t(ctx.src_port + fl);
      flow_port_.push_back(port);
      flow_hdr_sum_.push_back(udp_header_sum(f0, port));
      flow_csum_.push_back(fold_udp(ones_complement_add(flow_hdr_sum_.back(), f0 + kXskFrameHeaders, payload_)));
    }
    taken_.reserve(cfg_.batch);
    ptrs_.reserve(cfg_.batch);
    mixed_ = ctx.mixed_lengths();
    payload_sum_ = ones_complement_add(0, f0 + kXskFrameHeaders, payload_);
  }

  size_t max_batch() const override { return cfg_.batch; }

  std::span<uint8_t* const> acquire(size_t n) override {
    complete();
    taken_.clear();
    ptrs_.clear();
    n = std::min<size_t>({n, cfg_.batch, free_.size()});
    for (size_t i = 0; i < n; ++i) {
      taken_.push_back(free_.back());
      free_.pop_back();
      ptrs_.push_back(static_cast<uint8_t*>(xsk_umem__get_data(xsk_.umem_area(), taken_.back())) + kXskFrameHeaders);
    }
    return {ptrs_.data(), ptrs_.size()};
  }

  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    uint32_t idx = 0;
    uint32_t got = std::min<uint32_t>(uint32_t(k), xsk_prod_nb_free(&xsk_.tx, uint32_t(k)));
    if (got && xsk_ring_prod__reserve(&xsk_.tx, got, &idx) != got) got = 0;
    const size_t fl = size_t(flow);
    for (uint32_t i = 0; i < got; ++i) {
      uint8_t* f = ptrs_[i] - kXskFrameHeaders;
      store_be16(f + 34, flow_port_[fl]);
      const uint16_t csum = mixed_ ? set_payload_length(f, flow_port_[fl], lengths[i])
                            : payload_ >= kFloodExtendedMin
                                ? flow_csum_[fl]
                                : fold_udp(ones_complement_add(flow_hdr_sum_[fl], ptrs_[i], payload_));
      store_be16(f + 40, csum);
      xdp_desc* d = xsk_ring_prod__tx_desc(&xsk_.tx, idx + i);
      d->addr = taken_[i];
      d->len = mixed_ ? uint32_t(lengths[i] + kXskFrameHeaders) : frame_len_;
      d->options = 0;
    }
    if (got) {
      xsk_ring_prod__submit(&xsk_.tx, got);
      outstanding_ += got;
      kick();
    }
    for (size_t i = got; i < taken_.size(); ++i) free_.push_back(taken_[i]);
    taken_.clear();
    return got;
  }

  void flush() override {
    // Bounded: copy mode sends at most 32 descriptors per kick, and a peer
    // that never drains must not hang the trial.
    for (int rounds = 0; outstanding_ > 0 && rounds < 100000; ++rounds) {
      complete();
      if (outstanding_) usleep(20);
    }
  }

  json kernel_stats() override {
    json j = xsk_.open_report();
    j["xdp_statistics"] = xdp_statistics_json(read_xdp_statistics(xsk_.fd()));
    j["queue"] = cfg_.queue;
    j["kicks"] = kicks_;
    // Not failures: copy mode sends at most 32 descriptors per sendto and
    // answers EAGAIN when more are queued; EAGAIN also when veth's peer ring
    // pushes back (NETDEV_TX_BUSY); EBUSY while another call drains the ring.
    j["kicks_eagain"] = kick_eagain_;
    j["kicks_ebusy_or_enobufs"] = kick_other_;
    j["completed"] = completed_;
    j["outstanding_at_end"] = outstanding_;
    return j;
  }

 private:
  void build_frame(const TxContext& ctx, uint8_t* f) {
    std::memcpy(f, ctx.dst_mac.data(), 6);
    std::memcpy(f + 6, ctx.src_mac.data(), 6);
    store_be16(f + 12, 0x0800);
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    store_be16(ip + 2, uint16_t(20 + 8 + payload_));
    store_be16(ip + 4, 0);       // id: DF set, never fragmented
    store_be16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = 17;
    store_be16(ip + 10, 0);
    std::memcpy(ip + 12, &ctx.src_ip, 4);
    std::memcpy(ip + 16, &ctx.dst_ip, 4);
    const uint16_t ipsum = ones_complement_fold(ones_complement_add(0, ip, 20));
    store_be16(ip + 10, ipsum);
    uint8_t* udp = f + 34;
    store_be16(udp, ctx.src_port);
    store_be16(udp + 2, ctx.dst_port);
    store_be16(udp + 4, uint16_t(8 + payload_));
    store_be16(udp + 6, 0);
    flood_write_payload(f + kXskFrameHeaders, payload_, FloodHeader{});
  }

  // A frame-size mix: this UMEM frame leaves with a `len`-byte payload (a
  // frame is reused at any length). Rewrites the IPv4 and UDP lengths and
  // returns the UDP checksum: a payload carrying the flood checksum (>= 24
  // bytes) has the same ones' complement sum at every length (payload_sum_),
  // shorter ones are summed.
  uint16_t set_payload_length(uint8_t* f, uint16_t port, size_t len) {
    store_be16(f + 16, uint16_t(20 + 8 + len));
    store_be16(f + 24, 0);
    store_be16(f + 24, ones_complement_fold(ones_complement_add(0, f + 14, 20)));
    store_be16(f + 38, uint16_t(8 + len));
    const uint32_t body = len >= kFloodExtendedMin ? payload_sum_ : ones_complement_add(0, f + kXskFrameHeaders, len);
    uint64_t sum = uint64_t(udp_header_sum(f, port, len)) + body;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return fold_udp(uint32_t(sum));
  }

  // Pseudo header + UDP header (checksum field 0) of a frame with source port `port`.
  uint32_t udp_header_sum(const uint8_t* f, uint16_t port, size_t payload = 0) const {
    if (!payload) payload = payload_;
    uint8_t pseudo[12];
    std::memcpy(pseudo, f + 26, 8);  // source and destination address
    pseudo[8] = 0;
    pseudo[9] = 17;
    store_be16(pseudo + 10, uint16_t(8 + payload));
    uint8_t udp[8];
    std::memcpy(udp, f + 34, 8);
    store_be16(udp, port);
    store_be16(udp + 6, 0);
    return ones_complement_add(ones_complement_add(0, pseudo, 12), udp, 8);
  }

  static uint16_t fold_udp(uint32_t sum) {
    const uint16_t c = ones_complement_fold(sum);  // already complemented
    return c ? c : 0xffff;  // RFC 768: a computed 0 is sent as all ones
  }

  void kick() {
    if (cfg_.need_wakeup && !xsk_ring_prod__needs_wakeup(&xsk_.tx)) return;
    ++kicks_;
    if (sendto(xsk_.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
      // Transient: ring being processed (EBUSY), peer full (EAGAIN/ENOBUFS).
      if (errno == EAGAIN) {
        ++kick_eagain_;
        return;
      }
      if (errno == EBUSY || errno == ENOBUFS || errno == EINTR) {
        ++kick_other_;
        return;
      }
      throw EnvError(errno_text("sendto AF_XDP socket (TX kick)", errno), errno);
    }
  }

  void complete() {
    if (!outstanding_) return;
    kick();  // copy mode transmits only inside a syscall, 32 descriptors at a time
    uint32_t idx = 0;
    const uint32_t n = xsk_ring_cons__peek(&xsk_.comp, cfg_.fill_comp_size, &idx);
    for (uint32_t i = 0; i < n; ++i) free_.push_back(*xsk_ring_cons__comp_addr(&xsk_.comp, idx + i));
    if (n) xsk_ring_cons__release(&xsk_.comp, n);
    outstanding_ -= n;
    completed_ += n;
  }

  XskConfig cfg_;
  XskSocket xsk_;
  size_t payload_ = 0;
  uint32_t frame_len_ = 0;
  bool mixed_ = false;        // a frame-size mix: lengths set per packet
  uint32_t payload_sum_ = 0;  // ones' complement sum of a flood payload >= 24 bytes
  std::vector<uint64_t> free_, taken_;
  std::vector<uint8_t*> ptrs_;
  std::vector<uint16_t> flow_port_, flow_csum_;
  std::vector<uint32_t> flow_hdr_sum_;
  uint64_t outstanding_ = 0, completed_ = 0, kicks_ = 0, kick_eagain_ = 0, kick_other_ = 0;
};

}  // namespace

DriverInfo af_xdp_rx_driver_info() {
  DriverInfo d;
  d.name = "af_xdp";
  d.direction = Direction::rx;
  d.description = "AF_XDP socket (libxdp xsk) fed by the xdp lab's XSKMAP redirect; needs --lab-mode xdp";
  d.options = xsk_option_specs(Direction::rx);
  d.probe = probe_af_xdp;
  d.make_rx = [] { return std::make_unique<AfXdpSink>(); };
  return d;
}

DriverInfo af_xdp_tx_driver_info() {
  DriverInfo d;
  d.name = "af_xdp";
  d.direction = Direction::tx;
  d.description = "AF_XDP socket (libxdp xsk): prebuilt Ethernet/IPv4/UDP frames in the UMEM, TX ring + sendto kicks";
  d.options = xsk_option_specs(Direction::tx);
  d.tx_mixed_lengths = true;
  d.probe = probe_af_xdp;
  d.make_tx = [] { return std::make_unique<AfXdpTx>(); };
  return d;
}

}  // namespace zc
