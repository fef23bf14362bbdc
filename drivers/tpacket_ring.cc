#include "drivers/tpacket_ring.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "harness/errors.h"
#include "harness/timestamps.h"

namespace zc {
namespace {

uint32_t page_size() { return uint32_t(sysconf(_SC_PAGESIZE)); }

// tp_hdrlen as the kernel computes it (af_packet.c: TPACKETn_HDRLEN): the
// aligned header plus the sockaddr_ll that follows it.
uint32_t kernel_hdrlen(int version) {
  switch (version) {
    case TPACKET_V1: return TPACKET_HDRLEN;
    case TPACKET_V2: return TPACKET2_HDRLEN;
    default: return TPACKET3_HDRLEN;
  }
}

// af_packet.c BLK_PLUS_PRIV: the V3 block descriptor, aligned, plus the
// private area, aligned.
uint32_t blk_plus_priv(uint32_t priv) {
  auto align8 = [](uint32_t x) { return (x + 7u) & ~7u; };
  return align8(uint32_t(sizeof(tpacket_block_desc))) + align8(priv);
}

// Every V3 packet is packed; tp_frame_size only feeds the kernel's
// tp_frame_nr consistency check (psock_tpacket.c uses the same value).
constexpr uint32_t kV3FrameSize = TPACKET_ALIGNMENT << 7;

// PACKET_FANOUT_FLAG_IGNORE_OUTGOING (Linux 6.2), missing from older headers.
constexpr int kFanoutIgnoreOutgoing = 0x4000;

}  // namespace

const char* tpacket_version_name(int version) {
  switch (version) {
    case TPACKET_V1: return "tpacket_v1";
    case TPACKET_V2: return "tpacket_v2";
    case TPACKET_V3: return "tpacket_v3";
  }
  return "tpacket_v?";
}

Usability probe_packet_ring(int version) {
  Fd fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return {false, errno_text("socket(AF_PACKET, SOCK_RAW)", errno)};
  if (setsockopt(fd.get(), SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0)
    return {false, errno_text(std::string("setsockopt(PACKET_VERSION, ") + tpacket_version_name(version) + ")", errno)};
  return {};
}

int fanout_mode(const std::string& name) {
  if (name == "hash") return PACKET_FANOUT_HASH;
  if (name == "lb") return PACKET_FANOUT_LB;
  if (name == "cpu") return PACKET_FANOUT_CPU;
  if (name == "rollover") return PACKET_FANOUT_ROLLOVER;
  if (name == "qm") return PACKET_FANOUT_QM;
  if (name == "none") return -1;
  throw UsageError("fanout mode '" + name + "' is unknown; accepted: none, hash, lb, cpu, qm, rollover");
}

std::string RingGeometry::describe(int version) const {
  std::string s = "block_size=" + std::to_string(block_size) + " block_count=" + std::to_string(block_count) +
                  " frame_size=" + std::to_string(frame_size) + " frame_nr=" + std::to_string(frame_count());
  if (version == TPACKET_V3)
    s += " retire_ms=" + std::to_string(retire_ms) + " priv_size=" + std::to_string(priv_size);
  return s;
}

std::vector<OptionSpec> tpacket_option_specs(int version) {
  const bool v3 = version == TPACKET_V3;
  std::vector<OptionSpec> o;
  // V3: few large blocks, retired by timeout at low rates (a capture tool's
  // choice, e.g. netsniff-ng/libpcap). V1/V2: 2048-byte frames (one
  // 1500-MTU packet each) in page-sized blocks, 4 MiB in all, as libpcap
  // lays out its V2 ring.
  o.push_back({"block_size", OptionType::size, v3 ? "1M" : "4K",
               "ring block size (tp_block_size): a multiple of the page size", 4096, 1ll << 30, {}});
  o.push_back({"block_count", OptionType::integer, v3 ? "64" : "1024", "ring blocks (tp_block_nr)", 1, 1 << 20, {}});
  if (!v3)
    o.push_back({"frame_size", OptionType::size, "2048",
                 "frame slot size (tp_frame_size): >= the frame header, a multiple of 16, <= block_size; a "
                 "longer packet is truncated",
                 16, 1ll << 30, {}});
  if (v3) {
    // The trial's drain ends after 100 ms of silence; a block retired later
    // than that would be counted lost, so the timeout stays below it.
    o.push_back({"retire_ms", OptionType::integer, "60",
                 "block retire timeout (tp_retire_blk_tov, ms): a partly filled block is handed over after it; "
                 "at most 90 so a trial's 100 ms drain sees the last block",
                 1, 90, {}});
    o.push_back({"priv_size", OptionType::size, "0", "per-block private area (tp_sizeof_priv)", 0, 1 << 20, {}});
  }
  o.push_back({"socket", OptionType::choice, "raw",
               "raw: frames from the Ethernet header (SOCK_RAW); dgram: from the network header (SOCK_DGRAM)", 0, 0,
               {"raw", "dgram"}});
  o.push_back({"fanout", OptionType::choice, "none",
               "PACKET_FANOUT mode joining fanout_group (several sink sockets; with sink workers > 1 "
               "'none' means hash): hash = flow hash, lb = round robin, cpu = receiving CPU, "
               "qm = recorded RX queue, rollover = next ring when one is full",
               0, 0, {"none", "hash", "lb", "cpu", "qm", "rollover"}});
  o.push_back({"fanout_group", OptionType::integer, "0",
               "PACKET_FANOUT group id (0 with sink workers > 1: derived from the process id)", 0, 65535, {}});
  o.push_back(wait_option());
  return o;
}

RingConfig tpacket_config(const RxContext& ctx, int version) {
  RingConfig c = tpacket_config(ctx.options, version);
  c.worker = ctx.worker;
  c.workers = ctx.workers;
  c.hw_timestamps = ctx.hw_timestamps;
  if (ctx.workers > 1) {
    // One ring per worker, all in one group: the group, not the socket, is
    // what the kernel delivers to (fanout_demux picks the member ring).
    if (c.fanout == "none") c.fanout = "hash";
    // Groups are per network namespace (fanout_add matches f->net), so in a
    // lab any id is ours; on a named interface in the host namespace the pid
    // keeps two concurrent zcbench sinks out of each other's group.
    if (c.fanout_group == 0) c.fanout_group = uint16_t(getpid() & 0xffff);
  }
  return c;
}

void check_ring_geometry(const RingGeometry& g, int version) {
  const std::string name = tpacket_version_name(version);
  const std::string geo = " (" + g.describe(version) + ")";
  const uint32_t page = page_size();
  if (g.block_size == 0 || g.block_size % page)
    throw UsageError(name + " block size " + std::to_string(g.block_size) + " is not a multiple of the page size (" +
                     std::to_string(page) + ")" + geo);
  if (g.block_count == 0) throw UsageError(name + " block count 0: a ring needs at least one block" + geo);
  const uint32_t min_frame = kernel_hdrlen(version);
  if (g.frame_size < min_frame || g.frame_size % TPACKET_ALIGNMENT)
    throw UsageError(name + " frame size " + std::to_string(g.frame_size) + " must be >= " +
                     std::to_string(min_frame) + " (the frame header) and a multiple of " +
                     std::to_string(TPACKET_ALIGNMENT) + geo);
  if (g.frame_size > g.block_size)
    throw UsageError(name + " frame size " + std::to_string(g.frame_size) + " exceeds the block size " +
                     std::to_string(g.block_size) + geo);
  if (uint64_t(g.frames_per_block()) * g.block_count > UINT32_MAX)
    throw UsageError(name + " ring of " + std::to_string(uint64_t(g.frames_per_block()) * g.block_count) +
                     " frames is too large" + geo);
  if (version == TPACKET_V3 && uint64_t(g.block_size) < uint64_t(blk_plus_priv(g.priv_size)) + min_frame)
    throw UsageError(name + " block size " + std::to_string(g.block_size) + " leaves no room for a packet after the " +
                     std::to_string(blk_plus_priv(g.priv_size)) + "-byte block header and private area" + geo);
}

RingConfig tpacket_config(const DriverOptions& opts, int version) {
  RingConfig c;
  c.version = version;
  auto& g = c.geometry;
  g.block_size = uint32_t(opts.integer("block_size"));
  g.block_count = uint32_t(opts.integer("block_count"));
  if (version == TPACKET_V3) {
    g.frame_size = kV3FrameSize;
    g.retire_ms = uint32_t(opts.integer("retire_ms"));
    g.priv_size = uint32_t(opts.integer("priv_size"));
  } else {
    g.frame_size = uint32_t(opts.integer("frame_size"));
  }
  if (g.bytes() > (size_t(1) << 32))
    throw UsageError(std::string(tpacket_version_name(version)) + " ring of " + std::to_string(g.bytes()) +
                     " bytes exceeds 4 GiB (" + g.describe(version) + ")");
  c.dgram = opts.text("socket") == "dgram";
  c.fanout = opts.text("fanout");
  c.fanout_group = uint16_t(opts.integer("fanout_group"));
  c.busy = opts.text("wait") == "busy";
  check_ring_geometry(g, version);
  return c;
}

PacketRing::PacketRing(PacketRing&& o) noexcept
    : cfg_(o.cfg_), fd_(std::move(o.fd_)), map_(o.map_), map_bytes_(o.map_bytes_), packets_(o.packets_),
      drops_(o.drops_), freezes_(o.freezes_) {
  o.map_ = nullptr;
  o.map_bytes_ = 0;
}

PacketRing& PacketRing::operator=(PacketRing&& o) noexcept {
  if (this != &o) {
    close();
    cfg_ = o.cfg_;
    fd_ = std::move(o.fd_);
    map_ = o.map_;
    map_bytes_ = o.map_bytes_;
    packets_ = o.packets_;
    drops_ = o.drops_;
    freezes_ = o.freezes_;
    o.map_ = nullptr;
    o.map_bytes_ = 0;
  }
  return *this;
}

PacketRing::~PacketRing() { close(); }

void PacketRing::close() {
  if (map_) munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

void PacketRing::open(const RingConfig& cfg, int ifindex, const std::string& ifname) {
  close();
  cfg_ = cfg;
  const std::string name = tpacket_version_name(cfg.version);
  const auto& g = cfg.geometry;
  check_ring_geometry(g, cfg.version);
  // Protocol 0: nothing is queued until bind() names ETH_P_ALL, after the
  // ring exists.
  fd_ = Fd(socket(AF_PACKET, (cfg.dgram ? SOCK_DGRAM : SOCK_RAW) | SOCK_CLOEXEC, 0));
  if (!fd_.valid()) throw EnvError(errno_text("socket(AF_PACKET)", errno), errno);
  auto set = [&](int opt, const void* v, socklen_t len, const std::string& what) {
    if (setsockopt(fd_.get(), SOL_PACKET, opt, v, len) < 0)
      throw EnvError(errno_text(name + ": setsockopt(" + what + ")", errno), errno);
  };
  int version = cfg.version;
  set(PACKET_VERSION, &version, sizeof version, "PACKET_VERSION");
  // tp_sec/tp_nsec become the skb's software RX stamp (TP_STATUS_TS_SOFTWARE)
  // rather than the time tpacket_rcv ran: the latency split's kernel stamp.
  // With hw_timestamps the NIC's raw stamp where the skb has one
  // (TP_STATUS_TS_RAW_HARDWARE, checked per frame by tpacket_stamp).
  enable_packet_rx_timestamps(fd_.get(), cfg.hw_timestamps);
  if (cfg.reserve) set(PACKET_RESERVE, &cfg.reserve, sizeof cfg.reserve, "PACKET_RESERVE");
  if (cfg.ignore_outgoing) {
    int one = 1;
    set(PACKET_IGNORE_OUTGOING, &one, sizeof one, "PACKET_IGNORE_OUTGOING");
  }

  tpacket_req3 req{};
  req.tp_block_size = g.block_size;
  req.tp_block_nr = g.block_count;
  req.tp_frame_size = g.frame_size;
  req.tp_frame_nr = g.frame_count();
  socklen_t req_len = sizeof(tpacket_req);
  if (cfg.version == TPACKET_V3) {
    req.tp_retire_blk_tov = g.retire_ms;
    req.tp_sizeof_priv = g.priv_size;
    req_len = sizeof req;
  }
  if (setsockopt(fd_.get(), SOL_PACKET, PACKET_RX_RING, &req, req_len) < 0) {
    int e = errno;
    std::string msg = errno_text(name + ": setsockopt(PACKET_RX_RING) with " + g.describe(cfg.version), e);
    if (e == EINVAL) throw UsageError(msg + "; the kernel rejects this ring geometry");
    throw EnvError(msg, e);
  }
  map_bytes_ = g.bytes();
  void* m = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_.get(), 0);
  if (m == MAP_FAILED) {
    map_bytes_ = 0;
    throw EnvError(errno_text(name + ": mmap of the " + std::to_string(g.bytes()) + "-byte ring", errno), errno);
  }
  map_ = static_cast<uint8_t*>(m);

  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ALL);
  ll.sll_ifindex = ifindex;
  if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&ll), sizeof ll) < 0)
    throw EnvError(errno_text(name + ": bind to " + (ifname.empty() ? std::string("every interface") : ifname) +
                                  " (ifindex " + std::to_string(ifindex) + ")",
                              errno),
                   errno);
  int mode = fanout_mode(cfg.fanout);
  if (mode >= 0) {
    // The group has its own hook: PACKET_IGNORE_OUTGOING of the member
    // sockets does not apply to it, so outgoing packets (the sink's ICMP
    // replies) would take fanout slots unless the group says so too. Kernels
    // before 6.2 lack the flag (EINVAL): join without it there.
    int arg = int(cfg.fanout_group) | (mode << 16);
    int with_flag = arg | (cfg.ignore_outgoing ? kFanoutIgnoreOutgoing << 16 : 0);
    if (with_flag == arg || setsockopt(fd_.get(), SOL_PACKET, PACKET_FANOUT, &with_flag, sizeof with_flag) < 0)
      set(PACKET_FANOUT, &arg, sizeof arg, "PACKET_FANOUT " + cfg.fanout + " group " + std::to_string(cfg.fanout_group));
  }
}

bool PacketRing::wait(int timeout_ms) const {
  pollfd p{fd_.get(), POLLIN | POLLERR, 0};
  int rc = poll(&p, 1, timeout_ms);
  if (rc < 0 && errno != EINTR) throw EnvError(errno_text("poll(AF_PACKET ring)", errno), errno);
  return rc > 0;
}

void PacketRing::collect_stats() {
  if (!fd_.valid()) return;
  tpacket_stats_v3 st{};
  socklen_t len = cfg_.version == TPACKET_V3 ? sizeof(tpacket_stats_v3) : sizeof(tpacket_stats);
  if (getsockopt(fd_.get(), SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0)
    throw EnvError(errno_text("getsockopt(PACKET_STATISTICS)", errno), errno);
  packets_ += st.tp_packets;
  drops_ += st.tp_drops;
  if (cfg_.version == TPACKET_V3) freezes_ += st.tp_freeze_q_cnt;
}

nlohmann::json PacketRing::stats_json() const {
  nlohmann::json j{{"tp_packets", packets_}, {"tp_drops", drops_}};
  if (cfg_.version == TPACKET_V3) j["tp_freeze_q_cnt"] = freezes_;
  j["geometry"] = {{"block_size", cfg_.geometry.block_size},
                   {"block_count", cfg_.geometry.block_count},
                   {"frame_size", cfg_.geometry.frame_size},
                   {"frame_nr", cfg_.geometry.frame_count()}};
  if (cfg_.version == TPACKET_V3) {
    j["geometry"]["retire_ms"] = cfg_.geometry.retire_ms;
    j["geometry"]["priv_size"] = cfg_.geometry.priv_size;
  }
  j["socket"] = cfg_.dgram ? "dgram" : "raw";
  j["fanout"] = cfg_.fanout;
  if (cfg_.fanout != "none") j["fanout_group"] = cfg_.fanout_group;
  j["worker"] = cfg_.worker;
  j["workers"] = cfg_.workers;
  return j;
}

}  // namespace zc
