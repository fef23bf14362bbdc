// `udp_gso`: UDP generic segmentation offload (UDP_SEGMENT, kernel 4.18).
// k flood payloads lie back to back in one buffer and leave in ONE sendmsg as
// one large datagram with gso_size = payload; the stack carries it as one skb
// and cuts it into k datagrams as late as possible (here: at the receiving
// socket, or at the veth when its peer cannot take GSO). Per-send cost is
// paid once per k datagrams (tools/testing/selftests/net/udpgso_bench_tx.c).
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/flood_header.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace zc {
namespace {

constexpr size_t kUdpMaxSegments = 128;        // UDP_MAX_SEGMENTS (include/linux/udp.h, since 5.x; was 64)
constexpr size_t kMaxUdpPayload = 65535 - 28;  // one IPv4 UDP datagram

// Largest k such that k payloads fit one UDP datagram, capped by the option.
size_t segments_that_fit(size_t wanted, size_t payload) {
  return std::max<size_t>(1, std::min(wanted, kMaxUdpPayload / payload));
}

class UdpGsoTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    payload_ = ctx.payload_bytes;
    wanted_ = size_t(ctx.options.integer("segments"));
    segments_ = segments_that_fit(wanted_, payload_);
    use_cmsg_ = ctx.options.text("gso") == "cmsg";
    socks_ = open_flow_sockets(ctx);
    if (!use_cmsg_)
      for (auto& s : socks_) {
        if (!s.valid()) continue;  // another generator worker's flow
        int gso = int(payload_);
        check_sys(setsockopt(s.get(), SOL_UDP, UDP_SEGMENT, &gso, sizeof gso), "setsockopt(UDP_SEGMENT)");
      }
    storage_.resize(segments_ * payload_);
    for (size_t i = 0; i < segments_; ++i) {
      ptrs_.push_back(storage_.data() + i * payload_);
      flood_write_payload(ptrs_[i], payload_, FloodHeader{});
    }
  }

  size_t max_batch() const override { return segments_; }

  std::span<uint8_t* const> acquire(size_t n) override { return {ptrs_.data(), std::min(n, segments_)}; }

  // lengths: all payload_ (tx_mixed_lengths is false: the stack cuts a GSO
  // send into gso_size pieces, only the last may be shorter, so a mix would
  // leave as one send per run of equal sizes — no longer the path measured).
  size_t commit(size_t k, int flow, std::span<const size_t>) override {
    iovec iov{storage_.data(), k * payload_};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
    if (use_cmsg_ && k > 1) {
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t gso = uint16_t(payload_);
      std::memcpy(CMSG_DATA(c), &gso, sizeof gso);
    }
    ssize_t n = sendmsg(socks_[size_t(flow)].get(), &m, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR || is_icmp_soft_error(errno)) {
        ++refused_;
        return 0;
      }
      throw EnvError(errno_text("sendmsg(UDP_SEGMENT " + std::to_string(payload_) + " x " + std::to_string(k) + ")", errno),
                     errno);
    }
    ++sends_;
    datagrams_ += k;
    return k;
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json notes = nlohmann::json::array();
    if (segments_ < wanted_)
      notes.push_back("segments per send lowered from " + std::to_string(wanted_) + " to " + std::to_string(segments_) +
                      ": " + std::to_string(wanted_) + " x " + std::to_string(payload_) +
                      " bytes exceed one UDP datagram (65507 bytes)");
    return {{"gso_size", payload_},      {"segments_per_send", segments_}, {"segments_asked", wanted_},
            {"sends", sends_},           {"datagrams", datagrams_},
            {"datagrams_per_send", sends_ ? double(datagrams_) / double(sends_) : 0.0},
            {"refused", refused_},       {"gso_via", use_cmsg_ ? "cmsg" : "sockopt"}, {"notes", notes}};
  }

 private:
  size_t payload_ = 0, wanted_ = 0, segments_ = 0;
  bool use_cmsg_ = true;
  std::vector<Fd> socks_;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
  uint64_t sends_ = 0, datagrams_ = 0, refused_ = 0;
};

}  // namespace

DriverInfo udp_gso_driver_info() {
  DriverInfo d;
  d.name = "udp_gso";
  d.direction = Direction::tx;
  d.description = "UDP_SEGMENT: k payloads in one sendmsg, segmented by the stack (gso_size = payload)";
  d.options = {{"segments", OptionType::integer, "64",
                "datagrams per send (kernel UDP_MAX_SEGMENTS = 128; lowered so segments x payload fits 65507 bytes)",
                1, int64_t(kUdpMaxSegments), {}},
               {"gso", OptionType::choice, "cmsg", "how gso_size is given: a UDP_SEGMENT cmsg per send, or the socket option",
                0, 0, {"cmsg", "sockopt"}},
               sndbuf_option()};
  d.probe = [] {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Usability{false, errno_text("socket(AF_INET, SOCK_DGRAM)", errno)};
    int gso = 1400;
    Usability u;
    if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso) < 0)
      u = {false, errno_text("setsockopt(UDP_SEGMENT)", errno)};
    close(fd);
    return u;
  };
  d.make_tx = [] { return std::make_unique<UdpGsoTx>(); };
  return d;
}

}  // namespace zc
