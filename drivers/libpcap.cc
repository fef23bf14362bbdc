// `libpcap`: the capture library itself, in-process, as tcpdump and every
// pcap-based tool use it — pcap_create / pcap_activate on the sink port, so
// the ring is the one libpcap lays out (TPACKET_V3 unless immediate mode,
// which makes libpcap 1.10 fall back to TPACKET_V2 because V3 blocks cannot
// hand over single packets), read with pcap_dispatch. Unlike the tcpdump
// peer there is no pipe and no pcap file: each packet libpcap hands to the
// callback goes through the same frame parse and Accounting as tpacket_v3's,
// so the difference to tpacket_v3 is libpcap's own cost per packet and per
// block.
//
// Drops: pcap_stats' ps_drop is libpcap's running sum of PACKET_STATISTICS
// tp_drops (the kernel clears the counter on each read; libpcap adds them
// up), i.e. the ring layer of the drop attribution, like tp_drops for
// tpacket_v3. ps_ifdrop is the device's rx_dropped since activation — the
// attribution's link layer already counts that from IFLA_STATS64, so it is
// recorded, not added again.
#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "drivers/drivers.h"
#include "drivers/frame_parse.h"
#include "drivers/tpacket_ring.h"
#include "harness/errors.h"

namespace zc {
namespace {

// Ethernet + IPv4 + UDP headers in front of the flood's payload.
constexpr int64_t kFrameOverhead = 14 + 20 + 8;

std::string pcap_failure(const std::string& what, pcap_t* p, int rc) {
  std::string err = p ? pcap_geterr(p) : "";
  return what + ": " + pcap_statustostr(rc) + (err.empty() ? "" : " (" + err + ")") + " [" + pcap_lib_version() + "]";
}

const char* tpacket_name(int fd) {
  int v = -1;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, &len) != 0) return "unknown";
  return tpacket_version_name(v);
}

class LibpcapSink : public RxDriver {
 public:
  ~LibpcapSink() override {
    if (p_) pcap_close(p_);
  }

  void open(const RxContext& ctx) override {
    const int64_t snaplen = ctx.options.integer("snaplen");
    const int64_t frame = kFrameOverhead + int64_t(ctx.payload_bytes);
    // A cut frame has no checkable flood payload (flood_udp_payload yields
    // nothing for it), so every packet would count as lost.
    if (snaplen < frame)
      throw UsageError("libpcap snaplen " + std::to_string(snaplen) + " cuts the flood's " + std::to_string(frame) +
                       "-byte frames (14 + 20 + 8 header bytes + " + std::to_string(ctx.payload_bytes) +
                       " payload); accepted: >= " + std::to_string(frame));
    udp_port_ = ctx.udp_port;
    char err[PCAP_ERRBUF_SIZE] = {0};
    p_ = pcap_create(ctx.ifname.c_str(), err);
    if (!p_) throw EnvError("pcap_create(" + ctx.ifname + "): " + err + " [" + pcap_lib_version() + "]");
    set("pcap_set_snaplen", pcap_set_snaplen(p_, int(snaplen)));
    set("pcap_set_promisc", pcap_set_promisc(p_, ctx.options.boolean("promisc") ? 1 : 0));
    set("pcap_set_immediate_mode", pcap_set_immediate_mode(p_, ctx.options.boolean("immediate") ? 1 : 0));
    // The V3 block retire timeout (libpcap passes it as tp_retire_blk_tov).
    set("pcap_set_timeout", pcap_set_timeout(p_, int(ctx.options.integer("timeout_ms"))));
    buffer_ = ctx.options.integer("buffer");
    set("pcap_set_buffer_size", pcap_set_buffer_size(p_, int(buffer_)));
    const int rc = pcap_activate(p_);
    if (rc < 0) {
      // pcap's own words: "socket: Operation not permitted", "That device is not up", ...
      std::string msg = pcap_failure("pcap_activate(" + ctx.ifname + ")", p_, rc);
      pcap_close(p_);
      p_ = nullptr;
      if (rc == PCAP_ERROR) throw UsageError(msg + "; check the libpcap options (buffer, snaplen)");
      throw EnvError(msg);
    }
    if (rc > 0) activate_warning_ = pcap_failure("pcap_activate warning", p_, rc);
    if (const int dlt = pcap_datalink(p_); dlt != DLT_EN10MB) {
      const char* name = pcap_datalink_val_to_name(dlt);
      throw EnvError("libpcap on " + ctx.ifname + " captures link type " + (name ? name : std::to_string(dlt)) +
                     "; the flood parse needs EN10MB");
    }
    // Our own replies (none with TAP traffic, ICMP with host-addressed) are
    // not the flood: like the tpacket sinks' PACKET_IGNORE_OUTGOING.
    if (pcap_setdirection(p_, PCAP_D_IN) != 0) direction_ = std::string("inout (") + pcap_geterr(p_) + ")";
    if (pcap_setnonblock(p_, 1, err) != 0) throw EnvError(std::string("pcap_setnonblock: ") + err);
    fd_ = pcap_get_selectable_fd(p_);
    if (fd_ < 0) throw EnvError("pcap_get_selectable_fd(" + ctx.ifname + "): no selectable descriptor");
    tpacket_ = tpacket_name(pcap_fileno(p_));
    ifname_ = ctx.ifname;
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    size_t total = dispatch(acct);
    if (total) return total;
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) throw EnvError(errno_text("poll(pcap fd)", errno), errno);
    return dispatch(acct);
  }

  nlohmann::json kernel_stats() override {
    pcap_stat s{};
    nlohmann::json j = {{"library", pcap_lib_version()},
                        {"ifname", ifname_},
                        {"tpacket_version", tpacket_},
                        {"direction", direction_},
                        {"activate_warning", activate_warning_},
                        {"buffer_size_requested", buffer_},
                        {"frames_seen", frames_},
                        {"non_flood_packets", non_flood_},
                        {"truncated_packets", truncated_},
                        {"dispatch_calls", dispatch_calls_}};
    if (p_ && pcap_stats(p_, &s) == 0) {
      j["ps_recv"] = s.ps_recv;
      j["ps_drop"] = s.ps_drop;
      j["ps_ifdrop"] = s.ps_ifdrop;
    } else if (p_) {
      j["pcap_stats_error"] = pcap_geterr(p_);
    }
    return j;
  }

  uint64_t kernel_drops() override {
    pcap_stat s{};
    return p_ && pcap_stats(p_, &s) == 0 ? s.ps_drop : 0;
  }

 private:
  struct Batch {
    LibpcapSink* self;
    Accounting* acct;
  };

  void set(const char* what, int rc) {
    if (rc != 0) throw UsageError(pcap_failure(what, p_, rc));
  }

  static void on_packet(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
    auto* b = reinterpret_cast<Batch*>(user);
    LibpcapSink* s = b->self;
    ++s->frames_;
    if (h->caplen < h->len) ++s->truncated_;
    auto p = flood_udp_payload(bytes, h->caplen, FrameStart::ethernet, s->udp_port_);
    if (p.data())
      b->acct->on_packet(p.data(), p.size());
    else
      ++s->non_flood_;
  }

  // One pcap_dispatch: with a V3 ring, every retired block, at most
  // kMaxPerCall packets so the caller regains control at any rate.
  size_t dispatch(Accounting& acct) {
    Batch b{this, &acct};
    acct.begin_batch();
    ++dispatch_calls_;
    const int n = pcap_dispatch(p_, kMaxPerCall, on_packet, reinterpret_cast<u_char*>(&b));
    if (n < 0) throw EnvError("pcap_dispatch(" + ifname_ + "): " + pcap_geterr(p_));
    return size_t(n);
  }

  static constexpr int kMaxPerCall = 8192;
  pcap_t* p_ = nullptr;
  int fd_ = -1;
  uint16_t udp_port_ = 0;
  int64_t buffer_ = 0;
  std::string ifname_, tpacket_, direction_ = "in", activate_warning_;
  uint64_t frames_ = 0, non_flood_ = 0, truncated_ = 0, dispatch_calls_ = 0;
};

}  // namespace

DriverInfo libpcap_driver_info() {
  DriverInfo d;
  d.name = "libpcap";
  d.direction = Direction::rx;
  d.traffic = "tap";
  d.description = "libpcap in-process (pcap_create/pcap_activate/pcap_dispatch): the library's own TPACKET_V3 ring "
                  "as capture tools use it, non-blocking with poll on its selectable fd";
  d.options = {
      {"snaplen", OptionType::integer, "262144",
       "pcap_set_snaplen: bytes kept per packet; must hold the whole flood frame (42 + payload bytes); "
       "libpcap itself would take 0 as 262144", 60, 262144,
       {}},
      // libpcap accepts any size without a word (pcap_activate succeeded with
      // 1 byte, libpcap 1.10.3), so the floor is ours: 64 KiB, ~180 flood
      // frames of 272 bytes.
      {"buffer", OptionType::size, "2M",
       "pcap_set_buffer_size: the ring's size (libpcap's default 2 MiB); at least 64K", 1 << 16, 1ll << 30, {}},
      {"timeout_ms", OptionType::integer, "60",
       "pcap_set_timeout: the V3 block retire timeout; at most 90 so a trial's 100 ms drain sees the last block", 1,
       90, {}},
      {"immediate", OptionType::boolean, "off",
       "pcap_set_immediate_mode: on makes libpcap 1.10 use a TPACKET_V2 ring (packets handed over one by one, "
       "one snaplen-sized slot each: lower snaplen or the ring holds few packets)", 0, 0,
       {}},
      {"promisc", OptionType::boolean, "on", "pcap_set_promisc (tcpdump's default is on)", 0, 0, {}},
  };
  d.probe = [] { return probe_packet_ring(TPACKET_V3); };
  d.make_rx = [] { return std::make_unique<LibpcapSink>(); };
  return d;
}

}  // namespace zc
