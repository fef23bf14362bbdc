// `tpacket_v3`: a PACKET_RX_RING with TPACKET_V3 blocks. The kernel packs
// variable-length packets into large blocks and hands over a whole block at
// once (full, or retired after retire_ms), so the sink touches one status
// word per block rather than one per packet — the V3-over-V1 gain of claim 1.
//
// aggregate=on: one V3 ring per lab port, merged into one stream in
// timestamp order, as a capture tool merges the two directions of a network
// TAP. Each ring is in order by itself; across rings a packet may be emitted
// once every other ring either holds a later packet or has been idle so long
// (retire_ms + merge_slack_ms) that the kernel would have retired any block
// holding an earlier one.
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "drivers/drivers.h"
#include "drivers/tpacket_ring.h"
#include "harness/errors.h"
#include "harness/timestamps.h"

namespace zc {
namespace {

uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// tp_sec/tp_nsec: CLOCK_REALTIME (software stamp or ktime_get_real at
// tpacket_rcv).
uint64_t packet_ns(const tpacket3_hdr* h) { return uint64_t(h->tp_sec) * 1000000000ull + h->tp_nsec; }
uint64_t bd_ns(const tpacket_bd_ts& t) { return uint64_t(t.ts_sec) * 1000000000ull + t.ts_nsec; }

// One V3 ring and the walk over its blocks in ring order.
class BlockRing {
 public:
  void open(const RingConfig& cfg, int ifindex, const std::string& ifname, uint16_t udp_port) {
    ring_.open(cfg, ifindex, ifname);
    udp_port_ = udp_port;
    ifname_ = ifname;
    stamps_ = sink_stamp_capability(ifname, cfg.hw_timestamps);
  }
  const PacketRing& ring() const { return ring_; }
  tpacket_block_desc* block() const { return reinterpret_cast<tpacket_block_desc*>(ring_.block(cur_)); }
  bool ready() const { return load_status(&block()->hdr.bh1.block_status) & TP_STATUS_USER; }
  static tpacket3_hdr* first_packet(tpacket_block_desc* bd) {
    return reinterpret_cast<tpacket3_hdr*>(reinterpret_cast<uint8_t*>(bd) + bd->hdr.bh1.offset_to_first_pkt);
  }
  static tpacket3_hdr* next_packet(tpacket3_hdr* h) {
    return reinterpret_cast<tpacket3_hdr*>(reinterpret_cast<uint8_t*>(h) + h->tp_next_offset);
  }
  // Block statistics, then the block goes back to the kernel.
  void note_block(const tpacket_block_desc* bd) {
    ++blocks_;
    uint32_t st = bd->hdr.bh1.block_status;
    if (st & TP_STATUS_BLK_TMO) ++blocks_timed_out_;
    if (st & TP_STATUS_LOSING) ++blocks_losing_;
  }
  void release() {
    release_to_kernel(&block()->hdr.bh1.block_status);
    if (++cur_ == ring_.config().geometry.block_count) cur_ = 0;
  }
  void deliver(Accounting& acct, const tpacket3_hdr* h) {
    ++frames_;
    if (h->tp_snaplen < h->tp_len) ++truncated_;
    auto p = flood_udp_payload(reinterpret_cast<const uint8_t*>(h) + h->tp_mac, h->tp_snaplen, ring_.frame_start(),
                               udp_port_);
    if (p.data())
      acct.on_packet(p.data(), p.size(), tpacket_stamp(h->tp_status, packet_ns(h)));
    else
      ++non_flood_;
  }
  const nlohmann::json& timestamps() const { return stamps_; }
  nlohmann::json stats() {
    ring_.collect_stats();
    nlohmann::json j = ring_.stats_json();
    j["ifname"] = ifname_;
    j["blocks"] = blocks_;
    j["blocks_timed_out"] = blocks_timed_out_;
    j["blocks_losing"] = blocks_losing_;
    j["frames_seen"] = frames_;
    j["non_flood_packets"] = non_flood_;
    j["truncated_packets"] = truncated_;
    j["timestamps"] = stamps_;
    return j;
  }
  uint64_t drops() {
    ring_.collect_stats();
    return ring_.drops();
  }

 private:
  PacketRing ring_;
  std::string ifname_;
  nlohmann::json stamps_;
  uint16_t udp_port_ = 0;
  uint32_t cur_ = 0;
  uint64_t blocks_ = 0, blocks_timed_out_ = 0, blocks_losing_ = 0;
  uint64_t frames_ = 0, non_flood_ = 0, truncated_ = 0;
};

class V3Sink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    ring_.open(tpacket_config(ctx, TPACKET_V3), ctx.ifindex, ctx.ifname, ctx.udp_port);
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    if (!wait_for_user(ring_.ring(), &ring_.block()->hdr.bh1.block_status, timeout_ms)) return 0;
    size_t total = 0;
    for (int b = 0; b < kMaxBlocksPerCall && ring_.ready(); ++b) {
      tpacket_block_desc* bd = ring_.block();
      acct.begin_batch();
      const uint32_t n = bd->hdr.bh1.num_pkts;
      tpacket3_hdr* h = BlockRing::first_packet(bd);
      for (uint32_t i = 0; i < n; ++i, h = BlockRing::next_packet(h)) ring_.deliver(acct, h);
      ring_.note_block(bd);
      ring_.release();
      total += n;
    }
    return total;
  }

  nlohmann::json kernel_stats() override { return ring_.stats(); }
  uint64_t kernel_drops() override { return ring_.drops(); }

 private:
  static constexpr int kMaxBlocksPerCall = 8;
  BlockRing ring_;
};

struct PortRef {
  std::string ifname;
  int ifindex = 0;
};
// Every sink-side port of the lab (RxContext::ports); a context without the
// list (an older harness) has the single port only.
template <class Ctx>
std::vector<PortRef> rx_ports(const Ctx& ctx) {
  std::vector<PortRef> v;
  if constexpr (requires { ctx.ports; }) {
    for (const auto& p : ctx.ports) v.push_back(PortRef{p.ifname, p.ifindex});
  } else {
    v.push_back(PortRef{ctx.ifname, ctx.ifindex});
  }
  return v;
}

class MergingV3Sink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    RingConfig cfg = tpacket_config(ctx.options, TPACKET_V3);
    cfg.hw_timestamps = ctx.hw_timestamps;
    if (ctx.workers > 1)
      throw UsageError("tpacket_v3 aggregate=on merges every port's ring in one thread; sink workers " +
                       std::to_string(ctx.workers) + " cannot share it; accepted: 1 sink worker with aggregate=on");
    const int64_t slack = ctx.options.integer("merge_slack_ms");
    if (cfg.fanout != "none")
      throw UsageError("tpacket_v3 aggregate=on opens one ring per port; fanout=" + cfg.fanout +
                       " cannot join rings of different devices into one group; accepted: fanout=none");
    if (cfg.geometry.retire_ms + slack > 90)
      throw UsageError("tpacket_v3 aggregate=on holds packets up to retire_ms + merge_slack_ms = " +
                       std::to_string(cfg.geometry.retire_ms + slack) +
                       " ms; accepted: at most 90 (a trial drains after 100 ms of silence)");
    const std::vector<PortRef> ports = rx_ports(ctx);
    if (ports.size() < 2)
      throw UsageError("tpacket_v3 aggregate=on merges several lab ports; this trial has " +
                       std::to_string(ports.size()) + " port: run it with --ports 2 (suite field \"ports\")");
    hold_ns_ = (uint64_t(cfg.geometry.retire_ms) + uint64_t(slack)) * 1000000ull;
    ports_.resize(ports.size());
    for (size_t i = 0; i < ports.size(); ++i) ports_[i].ring.open(cfg, ports[i].ifindex, ports[i].ifname, ctx.udp_port);
    fds_.resize(ports_.size());
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    size_t n = merge(acct);
    if (n) return n;
    // Nothing could be emitted: sleep until a block arrives, or until the
    // earliest held packet's hold expires.
    int wait_ms = timeout_ms;
    for (const Port& p : ports_)
      if (p.head) {
        uint64_t release_at = packet_ns(p.head) + hold_ns_, now = realtime_ns();
        wait_ms = std::min<int>(wait_ms, release_at > now ? int((release_at - now) / 1000000 + 1) : 0);
      }
    for (size_t i = 0; i < ports_.size(); ++i) fds_[i] = {ports_[i].ring.ring().fd(), POLLIN, 0};
    if (wait_ms > 0 && poll(fds_.data(), fds_.size(), wait_ms) < 0 && errno != EINTR)
      throw EnvError(errno_text("poll(AF_PACKET rings)", errno), errno);
    return merge(acct);
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json ports = nlohmann::json::array();
    uint64_t drops = 0, freezes = 0;
    for (Port& p : ports_) {
      ports.push_back(p.ring.stats());
      drops += p.ring.ring().drops();
      freezes += p.ring.ring().freezes();
    }
    const double span_s = last_emit_ns_ > first_emit_ns_ ? double(last_emit_ns_ - first_emit_ns_) / 1e9 : 0.0;
    return {{"aggregate", true},
            {"ports", ports},
            {"timestamps", ports_.empty() ? nlohmann::json(nullptr) : ports_[0].ring.timestamps()},
            {"tp_drops", drops},
            {"tp_freeze_q_cnt", freezes},
            {"hold_ns", hold_ns_},
            {"merged_packets", merged_},
            {"merge_span_ns", last_emit_ns_ - first_emit_ns_},
            {"merge_rate_pps", span_s > 0 ? nlohmann::json(double(merged_) / span_s) : nlohmann::json(nullptr)},
            {"order_violations", order_violations_},
            {"timestamp_ties", ties_},
            {"blocks_merged_whole", whole_blocks_},
            {"merge_delay_max_ns", max_delay_ns_},
            {"held_at_end", held_packets()}};
  }

  uint64_t kernel_drops() override {
    uint64_t d = 0;
    for (Port& p : ports_) d += p.ring.drops();
    return d;
  }

 private:
  struct Port {
    BlockRing ring;
    tpacket3_hdr* head = nullptr;  // next packet of this port, inside the current block
    uint32_t left = 0;             // packets of the current block from head on
  };

  // Makes head point at the port's next packet if a block is ready.
  static void refill(Port& p) {
    while (!p.head && p.ring.ready()) {
      tpacket_block_desc* bd = p.ring.block();
      if (bd->hdr.bh1.num_pkts == 0) {  // never retired empty (AFP), but do not trust a zero
        p.ring.note_block(bd);
        p.ring.release();
        continue;
      }
      p.head = BlockRing::first_packet(bd);
      p.left = bd->hdr.bh1.num_pkts;
    }
  }

  void advance(Port& p) {
    if (--p.left) {
      p.head = BlockRing::next_packet(p.head);
      return;
    }
    p.ring.note_block(p.ring.block());
    p.ring.release();
    p.head = nullptr;
    refill(p);
  }

  void emit(Accounting& acct, Port& p, uint64_t ts, uint64_t now) {
    if (merged_ && ts < last_ts_) ++order_violations_;
    if (merged_ && ts == last_ts_) ++ties_;
    if (!merged_) first_emit_ns_ = now;
    last_emit_ns_ = now;
    last_ts_ = std::max(last_ts_, ts);
    if (now > ts) max_delay_ns_ = std::max(max_delay_ns_, now - ts);
    ++merged_;
    p.ring.deliver(acct, p.head);
    advance(p);
  }

  // Emits every packet that is safe to emit now, in timestamp order.
  size_t merge(Accounting& acct) {
    size_t emitted = 0;
    const uint64_t now = realtime_ns();
    const uint64_t watermark = now > hold_ns_ ? now - hold_ns_ : 0;
    for (Port& p : ports_) refill(p);
    for (;;) {
      Port* a = nullptr;
      for (Port& p : ports_)
        if (p.head && (!a || packet_ns(p.head) < packet_ns(a->head))) a = &p;
      if (!a) break;
      // Whatever another port delivers later is later than its head, or —
      // if it has none — later than the watermark.
      uint64_t bound = std::numeric_limits<uint64_t>::max();
      for (Port& p : ports_)
        if (&p != a) bound = std::min(bound, p.head ? packet_ns(p.head) : watermark);
      if (packet_ns(a->head) > bound) break;
      acct.begin_batch();
      // The block descriptor says whether the rest of this block is all
      // before the bound: then it goes out without a per-packet comparison.
      tpacket_block_desc* bd = a->ring.block();
      if (bd_ns(bd->hdr.bh1.ts_last_pkt) <= bound) {
        ++whole_blocks_;
        for (uint32_t k = a->left; k; --k, ++emitted) emit(acct, *a, packet_ns(a->head), now);
      } else {
        while (a->head && a->ring.block() == bd && packet_ns(a->head) <= bound) {
          emit(acct, *a, packet_ns(a->head), now);
          ++emitted;
        }
      }
      if (emitted >= kMaxPerCall) break;
    }
    return emitted;
  }

  uint64_t held_packets() const {
    uint64_t n = 0;
    for (const Port& p : ports_) n += p.head ? p.left : 0;
    return n;
  }

  static constexpr size_t kMaxPerCall = 8192;
  std::vector<Port> ports_;
  std::vector<pollfd> fds_;
  uint64_t hold_ns_ = 0;
  uint64_t merged_ = 0, order_violations_ = 0, ties_ = 0, whole_blocks_ = 0;
  uint64_t last_ts_ = 0, first_emit_ns_ = 0, last_emit_ns_ = 0, max_delay_ns_ = 0;
};

// make_rx cannot see the options, so the choice between one ring and the
// merge of several is made at open().
class Tpacket3Sink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    if (ctx.options.text("aggregate") == "on")
      impl_ = std::make_unique<MergingV3Sink>();
    else
      impl_ = std::make_unique<V3Sink>();
    impl_->open(ctx);
  }
  size_t receive(Accounting& acct, int timeout_ms) override { return impl_->receive(acct, timeout_ms); }
  nlohmann::json kernel_stats() override { return impl_ ? impl_->kernel_stats() : nlohmann::json::object(); }
  uint64_t kernel_drops() override { return impl_ ? impl_->kernel_drops() : 0; }

 private:
  std::unique_ptr<RxDriver> impl_;
};

}  // namespace

DriverInfo tpacket_v3_driver_info() {
  DriverInfo d;
  d.name = "tpacket_v3";
  d.rx_hw_stamps = true;  // RxContext::hw_timestamps (sink --hw-timestamps)
  d.direction = Direction::rx;
  d.description = "PACKET_RX_RING, TPACKET_V3 blocks: packets packed into large blocks handed over whole or on a "
                  "retire timeout; aggregate=on merges one ring per lab port in timestamp order";
  d.traffic = "tap";
  d.options = tpacket_option_specs(TPACKET_V3);
  d.options.push_back({"aggregate", OptionType::choice, "off",
                       "on: one ring per lab port (--ports N), merged in timestamp order like a TAP's two directions",
                       0, 0, {"off", "on"}});
  d.options.push_back({"merge_slack_ms", OptionType::integer, "20",
                       "aggregate=on: how long past retire_ms an idle port may still hand over an older packet",
                       0, 80, {}});
  d.probe = [] { return probe_packet_ring(TPACKET_V3); };
  d.make_rx = [] { return std::make_unique<Tpacket3Sink>(); };
  return d;
}

}  // namespace zc
