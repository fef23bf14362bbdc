// `tx_ring`: PACKET_TX_RING with TPACKET_V2 frames (V3 on request). Every
// frame is built once at open — Ethernet/IPv4/UDP headers and the flood
// payload — so the hot path only restamps the flood header and the UDP source
// port in place, flips the status word and kicks the kernel every
// `kick_every` frames. The data then leaves from the ring's pages without a
// copy into the skb (tpacket_fill_skb links the pages as fragments).
#include "drivers/tx_ring.h"

#include <arpa/inet.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/frame_build.h"
#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/pacer.h"

namespace zc {

const char* tp_status_name(uint32_t s) {
  switch (s) {
    case TP_STATUS_AVAILABLE: return "AVAILABLE";
    case TP_STATUS_SEND_REQUEST: return "SEND_REQUEST";
    case TP_STATUS_SENDING: return "SENDING";
    case TP_STATUS_WRONG_FORMAT: return "WRONG_FORMAT";
    default: return "other";
  }
}

namespace {

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

void set_int(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) < 0)
    throw EnvError(errno_text(std::string("setsockopt(") + what + ")", errno), errno);
}

}  // namespace

PacketTxRing::PacketTxRing(const TxRingConfig& cfg) : cfg_(cfg) {
  if (cfg.version != 2 && cfg.version != 3)
    throw UsageError("TX ring version " + std::to_string(cfg.version) + " is not accepted; accepted: 2, 3");
  if (cfg.frame_size < TPACKET_ALIGNMENT || cfg.frame_size % TPACKET_ALIGNMENT)
    throw UsageError("TX ring frame size " + std::to_string(cfg.frame_size) + " is not a multiple of " +
                     std::to_string(TPACKET_ALIGNMENT) + " (TPACKET_ALIGNMENT)");
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  block_size_ = cfg.block_size ? cfg.block_size : round_up(cfg.frame_size, page);
  const size_t per_block = block_size_ / cfg.frame_size;
  if (per_block == 0)
    throw UsageError("TX ring block size " + std::to_string(block_size_) + " is smaller than the frame size " +
                     std::to_string(cfg.frame_size));
  frames_per_block_ = per_block;
  const size_t blocks = std::max<size_t>(1, cfg.frame_count / per_block);
  frame_count_ = blocks * per_block;
  data_offset_ = cfg.version == 2 ? TPACKET_ALIGN(sizeof(tpacket2_hdr)) : TPACKET_ALIGN(sizeof(tpacket3_hdr));

  fd_ = Fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  check_sys(fd_.get(), "socket(AF_PACKET, SOCK_RAW)");
  set_int(fd_.get(), SOL_PACKET, PACKET_VERSION, cfg.version == 2 ? TPACKET_V2 : TPACKET_V3,
          cfg.version == 2 ? "PACKET_VERSION TPACKET_V2" : "PACKET_VERSION TPACKET_V3");
  if (cfg.qdisc_bypass) set_int(fd_.get(), SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS");
  if (cfg.packet_loss) set_int(fd_.get(), SOL_PACKET, PACKET_LOSS, 1, "PACKET_LOSS");
  if (cfg.tx_has_off) set_int(fd_.get(), SOL_PACKET, PACKET_TX_HAS_OFF, 1, "PACKET_TX_HAS_OFF");
  if (cfg.sndbuf > 0) set_int(fd_.get(), SOL_SOCKET, SO_SNDBUFFORCE, int(cfg.sndbuf), "SO_SNDBUFFORCE");
  int rc;
  if (cfg.version == 2) {
    tpacket_req req{unsigned(block_size_), unsigned(blocks), unsigned(cfg.frame_size), unsigned(frame_count_)};
    rc = setsockopt(fd_.get(), SOL_PACKET, PACKET_TX_RING, &req, sizeof req);
  } else {
    tpacket_req3 req{};
    req.tp_block_size = unsigned(block_size_);
    req.tp_block_nr = unsigned(blocks);
    req.tp_frame_size = unsigned(cfg.frame_size);
    req.tp_frame_nr = unsigned(frame_count_);
    req.tp_retire_blk_tov = cfg.v3_retire_tov;
    req.tp_sizeof_priv = cfg.v3_sizeof_priv;
    req.tp_feature_req_word = cfg.v3_feature_word;
    rc = setsockopt(fd_.get(), SOL_PACKET, PACKET_TX_RING, &req, sizeof req);
  }
  if (rc < 0)
    throw EnvError(errno_text("setsockopt(PACKET_TX_RING, TPACKET_V" + std::to_string(cfg.version) + ", " +
                                  std::to_string(blocks) + " x " + std::to_string(block_size_) + " B blocks, " +
                                  std::to_string(cfg.frame_size) + " B frames)",
                              errno),
                   errno);
  map_bytes_ = blocks * block_size_;
  void* m = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_.get(), 0);
  if (m == MAP_FAILED) throw EnvError(errno_text("mmap(PACKET_TX_RING)", errno), errno);
  base_ = static_cast<uint8_t*>(m);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;  // sends only; protocol 0 hooks no receive handler
  sll.sll_ifindex = cfg.ifindex;
  if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0)
    throw EnvError(errno_text("bind(AF_PACKET, ifindex " + std::to_string(cfg.ifindex) + ")", errno), errno);
}

PacketTxRing::PacketTxRing(PacketTxRing&& o) noexcept
    : cfg_(o.cfg_),
      fd_(std::move(o.fd_)),
      base_(o.base_),
      map_bytes_(o.map_bytes_),
      frame_count_(o.frame_count_),
      block_size_(o.block_size_),
      frames_per_block_(o.frames_per_block_),
      data_offset_(o.data_offset_) {
  o.base_ = nullptr;
}

PacketTxRing::~PacketTxRing() {
  if (base_) munmap(base_, map_bytes_);
}

// The status word is shared with the kernel: acquire/release pair with its
// smp_wmb/smp_rmb around __packet_{get,set}_status.
uint32_t PacketTxRing::status(size_t i) const {
  const uint8_t* f = frame(i);
  const uint32_t* p = cfg_.version == 2 ? &reinterpret_cast<const tpacket2_hdr*>(f)->tp_status
                                        : &reinterpret_cast<const tpacket3_hdr*>(f)->tp_status;
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void PacketTxRing::set_status(size_t i, uint32_t s) {
  uint8_t* f = frame(i);
  uint32_t* p = cfg_.version == 2 ? &reinterpret_cast<tpacket2_hdr*>(f)->tp_status
                                  : &reinterpret_cast<tpacket3_hdr*>(f)->tp_status;
  __atomic_store_n(p, s, __ATOMIC_RELEASE);
}

void PacketTxRing::set_length(size_t i, uint32_t len, uint32_t mac_offset) {
  uint8_t* f = frame(i);
  uint16_t mac = uint16_t(mac_offset ? mac_offset : data_offset_);
  if (cfg_.version == 2) {
    auto* h = reinterpret_cast<tpacket2_hdr*>(f);
    h->tp_len = len;
    h->tp_snaplen = len;
    h->tp_mac = mac;
  } else {
    auto* h = reinterpret_cast<tpacket3_hdr*>(f);
    h->tp_next_offset = 0;  // variable-sized slots are refused (tpacket_parse_header)
    h->tp_len = len;
    h->tp_snaplen = len;
    h->tp_mac = mac;
  }
}

long PacketTxRing::kick(int flags) { return send(fd_.get(), nullptr, 0, flags); }

namespace {

class TxRingTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    const size_t frame_bytes = kFrameHeaderBytes + ctx.payload_bytes;
    TxRingConfig cfg;
    cfg.version = ctx.options.text("version") == "3" ? 3 : 2;
    size_t data_off = cfg.version == 2 ? TPACKET_ALIGN(sizeof(tpacket2_hdr)) : TPACKET_ALIGN(sizeof(tpacket3_hdr));
    size_t need = round_up(data_off + frame_bytes, TPACKET_ALIGNMENT);
    cfg.frame_size = size_t(ctx.options.integer("frame_size"));
    if (cfg.frame_size == 0) cfg.frame_size = need;
    if (cfg.frame_size < need)
      throw UsageError("tx_ring frame_size " + std::to_string(cfg.frame_size) + " cannot hold a " +
                       std::to_string(ctx.payload_bytes) + "-byte payload; needs >= " + std::to_string(need) +
                       " (TPACKET_V" + std::to_string(cfg.version) + " header " + std::to_string(data_off) +
                       " + frame " + std::to_string(frame_bytes) + ")");
    cfg.frame_count = size_t(ctx.options.integer("frame_count"));
    cfg.qdisc_bypass = ctx.options.boolean("qdisc_bypass");
    cfg.packet_loss = ctx.options.boolean("packet_loss");
    cfg.sndbuf = ctx.options.integer("sndbuf");
    cfg.ifindex = ctx.ifindex;
    ring_ = std::make_unique<PacketTxRing>(cfg);
    kick_every_ = size_t(ctx.options.integer("kick_every"));
    src_port_ = ctx.src_port;
    payload_bytes_ = ctx.payload_bytes;
    frame_bytes_ = frame_bytes;
    max_batch_ = std::max<size_t>(1, std::min<size_t>(256, ring_->frame_count() / 2));
    FrameAddresses a{ctx.src_mac, ctx.dst_mac, ctx.src_ip, ctx.dst_ip, ctx.src_port, ctx.dst_port};
    for (size_t i = 0; i < ring_->frame_count(); ++i) {
      uint8_t* d = ring_->data(i);
      build_udp_frame_headers(d, a, ctx.payload_bytes);
      flood_write_payload(d + kFrameHeaderBytes, ctx.payload_bytes, FloodHeader{});
      ring_->set_length(i, uint32_t(frame_bytes));
      slot_payload_.push_back(ctx.payload_bytes);
      if (ring_->status(i) != TP_STATUS_AVAILABLE)
        throw InternalError("fresh TX ring frame " + std::to_string(i) + " is not TP_STATUS_AVAILABLE");
    }
    ptrs_.resize(max_batch_);
  }

  size_t max_batch() const override { return max_batch_; }

  std::span<uint8_t* const> acquire(size_t n) override {
    n = std::min(n, max_batch_);
    size_t got = 0;
    for (int attempt = 0; attempt < 2 && got == 0; ++attempt) {
      while (got < n) {
        size_t i = (head_ + got) % ring_->frame_count();
        uint32_t s = ring_->status(i);
        if (s == TP_STATUS_WRONG_FORMAT) {
          // Our frames are well-formed, so this is the kernel refusing one
          // (e.g. a length limit): count it, and hand the slot back.
          ++wrong_format_;
          ring_->set_status(i, TP_STATUS_AVAILABLE);
          s = TP_STATUS_AVAILABLE;
        }
        if (s != TP_STATUS_AVAILABLE) break;
        ptrs_[got] = ring_->data(i) + kFrameHeaderBytes;
        ++got;
      }
      if (got == 0) {
        // Ring full: frames still owned by the kernel are not reusable. Make
        // sure it was asked to send what we queued, then wait a little.
        ++ring_full_waits_;
        do_kick();
        pollfd p{ring_->fd(), POLLOUT, 0};
        poll(&p, 1, 1);
      }
    }
    return {ptrs_.data(), got};
  }

  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    const uint16_t port = uint16_t(src_port_ + flow);
    for (size_t j = 0; j < k; ++j) {
      size_t i = (head_ + j) % ring_->frame_count();
      set_frame_src_port(ring_->data(i), port);
      if (lengths[j] != slot_payload_[i]) {  // a frame-size mix: this slot last went out at another length
        set_frame_payload_length(ring_->data(i), lengths[j]);
        ring_->set_length(i, uint32_t(kFrameHeaderBytes + lengths[j]));
        slot_payload_[i] = lengths[j];
      }
      ring_->set_status(i, TP_STATUS_SEND_REQUEST);
    }
    head_ = (head_ + k) % ring_->frame_count();
    pending_ += k;
    if (pending_ >= kick_every_) do_kick();
    return k;
  }

  void flush() override {
    const uint64_t t0 = monotonic_ns();
    const uint64_t deadline = t0 + 2000000000ull;  // bounded: a stuck ring must not hang the trial
    size_t busy = 0;
    for (;;) {
      busy = 0;
      bool unsent = false;
      for (size_t i = 0; i < ring_->frame_count(); ++i) {
        uint32_t s = ring_->status(i);
        if (s == TP_STATUS_WRONG_FORMAT) {
          ++wrong_format_;
          ring_->set_status(i, TP_STATUS_AVAILABLE);
        } else if (s != TP_STATUS_AVAILABLE) {
          ++busy;
          unsent = unsent || s == TP_STATUS_SEND_REQUEST;
        }
      }
      if (busy == 0 || monotonic_ns() > deadline) break;
      if (unsent) do_kick();
      pollfd p{ring_->fd(), POLLOUT, 0};
      poll(&p, 1, 1);
    }
    flush_ns_ = monotonic_ns() - t0;
    frames_unfinished_ = busy;
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json errs = nlohmann::json::object();
    for (const auto& [e, n] : kick_errors_) errs[errno_name(e)] = n;
    return {{"tpacket_version", ring_->version()},
            {"frame_size", ring_->frame_size()},
            {"frame_count", ring_->frame_count()},
            {"block_size", ring_->block_size()},
            {"frame_bytes", frame_bytes_},
            {"kicks", kicks_},
            {"kick_errors", errs},
            {"ring_full_waits", ring_full_waits_},
            {"wrong_format_frames", wrong_format_},
            {"flush_wait_ns", flush_ns_},
            {"frames_unfinished_after_flush", frames_unfinished_}};
  }

 private:
  void do_kick() {
    ++kicks_;
    pending_ = 0;
    if (ring_->kick(MSG_DONTWAIT) < 0) {
      int e = errno;
      // EAGAIN: socket send buffer full (frames stay SEND_REQUEST, sent on a
      // later kick); ENOBUFS: the device dropped a frame (it is counted by the
      // link counters). Anything else means the ring cannot work.
      if (e != EAGAIN && e != ENOBUFS && e != EINTR && e != EINVAL && e != EMSGSIZE)
        throw EnvError(errno_text("send(PACKET_TX_RING kick)", e), e);
      ++kick_errors_[e];
    }
  }

  std::unique_ptr<PacketTxRing> ring_;
  std::vector<uint8_t*> ptrs_;
  std::vector<size_t> slot_payload_;  // the payload length each slot's headers say
  size_t head_ = 0, pending_ = 0, kick_every_ = 1, max_batch_ = 1;
  size_t payload_bytes_ = 0, frame_bytes_ = 0;
  uint16_t src_port_ = 0;
  uint64_t kicks_ = 0, ring_full_waits_ = 0, wrong_format_ = 0, flush_ns_ = 0, frames_unfinished_ = 0;
  std::map<int, uint64_t> kick_errors_;
};

}  // namespace

DriverInfo tx_ring_driver_info() {
  DriverInfo d;
  d.name = "tx_ring";
  d.direction = Direction::tx;
  d.description = "AF_PACKET PACKET_TX_RING (mmap), frames prebuilt once, flood header restamped in place, "
                  "send(NULL, 0) kicks";
  d.options = {
      {"version", OptionType::choice, "2", "TPACKET version of the frames (3: V3 TX, fixed-size slots only)", 0, 0,
       {"2", "3"}},
      {"frame_size", OptionType::size, "0",
       "ring frame size, a multiple of 16 (0: the smallest that holds header + frame)", 0, 1 << 20, {}},
      {"frame_count", OptionType::integer, "1024", "frames in the ring (rounded down to whole blocks)", 2,
       1 << 20, {}},
      {"kick_every", OptionType::integer, "1",
       "queued frames per send(NULL, 0) kick (1: every commit; larger trades pacing for fewer syscalls)", 1,
       1 << 20, {}},
      {"qdisc_bypass", OptionType::boolean, "off", "PACKET_QDISC_BYPASS: straight to the driver, no qdisc, no taps",
       0, 0, {}},
      {"packet_loss", OptionType::boolean, "off",
       "PACKET_LOSS: a malformed frame is skipped (AVAILABLE) instead of stopping the ring (WRONG_FORMAT)", 0, 0,
       {}},
      sndbuf_option(),
  };
  d.tx_mixed_lengths = true;
  d.probe = [] {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return Usability{false, errno_text("socket(AF_PACKET, SOCK_RAW)", errno)};
    ::close(fd);
    return Usability{};
  };
  d.make_tx = [] { return std::make_unique<TxRingTx>(); };
  return d;
}

}  // namespace zc
