#include "drivers/udp_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "harness/errors.h"
#include "harness/lab.h"

namespace zc {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

sockaddr_in make_addr(in_addr ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr = ip;
  a.sin_port = htons(port);
  return a;
}

void set_buffer(int fd, int force_opt, int plain_opt, int64_t bytes, const char* what) {
  if (bytes <= 0) return;
  int v = int(std::min<int64_t>(bytes, INT32_MAX / 2));
  // The FORCE variant needs CAP_NET_ADMIN and ignores the host-wide cap; fall
  // back to the plain option (capped by the sysctl) without it.
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) == 0) return;
  if (errno != EPERM) throw EnvError(errno_text(std::string("setsockopt(") + what + ")", errno), errno);
  check_sys(setsockopt(fd, SOL_SOCKET, plain_opt, &v, sizeof v), std::string("setsockopt(") + what + ")");
}

}  // namespace

Fd open_udp_sink_socket(in_addr ip, uint16_t port, int64_t rcvbuf) {
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  check_sys(fd.get(), "socket(AF_INET, SOCK_DGRAM)");
  set_buffer(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf, "SO_RCVBUFFORCE");
  int one = 1;
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one), "setsockopt(SO_RXQ_OVFL)");
  sockaddr_in a = make_addr(ip, port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
    throw EnvError(errno_text("bind UDP " + ipv4_to_string(ip) + ":" + std::to_string(port), errno), errno);
  return fd;
}

Fd open_udp_worker_socket(const RxContext& ctx, nlohmann::json* record) {
  const int64_t rcvbuf = ctx.options.integer("rcvbuf");
  if (ctx.workers <= 1) return open_udp_sink_socket(ctx.local_ip, ctx.udp_port, rcvbuf);
  const std::string steering = ctx.options.values().count("reuseport") ? ctx.options.text("reuseport") : std::string("hash");
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  check_sys(fd.get(), "socket(AF_INET, SOCK_DGRAM)");
  set_buffer(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf, "SO_RCVBUFFORCE");
  int one = 1;
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one), "setsockopt(SO_RXQ_OVFL)");
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), "setsockopt(SO_REUSEPORT)");
  nlohmann::json rec{{"group_size", ctx.workers}, {"worker", ctx.worker}, {"steering", steering}};
  if (steering == "cpu") {
    if (ctx.cpu < 0)
      throw UsageError("reuseport=cpu steers by the worker's CPU, but sink worker " + std::to_string(ctx.worker) +
                       " has none; give --sink-cpus");
    int cpu = ctx.cpu;
    check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu),
              "setsockopt(SO_INCOMING_CPU, " + std::to_string(cpu) + ")");
    rec["how"] = "SO_INCOMING_CPU";
    rec["incoming_cpu"] = cpu;
  } else {
    rec["how"] = "kernel 4-tuple hash (reuseport_select_sock_by_hash)";
  }
  sockaddr_in a = make_addr(ctx.local_ip, ctx.udp_port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
    throw EnvError(errno_text("bind UDP " + ipv4_to_string(ctx.local_ip) + ":" + std::to_string(ctx.udp_port) +
                                  " with SO_REUSEPORT (sink worker " + std::to_string(ctx.worker) + ")",
                              errno),
                   errno);
  if (record) *record = rec;
  return fd;
}

Fd open_udp_source_socket(in_addr src_ip, uint16_t src_port, in_addr dst_ip, uint16_t dst_port, int64_t sndbuf) {
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  check_sys(fd.get(), "socket(AF_INET, SOCK_DGRAM)");
  set_buffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF, sndbuf, "SO_SNDBUFFORCE");
  // Bounded blocking: the flood must stop by itself even if the path stalls.
  timeval tv{0, 100000};
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), "setsockopt(SO_SNDTIMEO)");
  sockaddr_in src = make_addr(src_ip, src_port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) < 0)
    throw EnvError(errno_text("bind UDP " + ipv4_to_string(src_ip) + ":" + std::to_string(src_port), errno), errno);
  sockaddr_in dst = make_addr(dst_ip, dst_port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) < 0)
    throw EnvError(errno_text("connect UDP " + ipv4_to_string(dst_ip) + ":" + std::to_string(dst_port), errno), errno);
  return fd;
}

std::vector<Fd> open_flow_sockets(const TxContext& ctx) {
  std::vector<Fd> socks;
  for (int f = 0; f < ctx.flows; ++f) {
    if (ctx.workers > 1 && f % ctx.workers != ctx.worker) {
      socks.emplace_back();
      continue;
    }
    // Flow f leaves through port f % ports: the bound source address picks the route.
    in_addr src = ctx.src_ip, dst = ctx.dst_ip;
    if (!ctx.ports.empty()) {
      const TxPort& p = ctx.ports[size_t(f) % ctx.ports.size()];
      src = p.src_ip;
      dst = p.dst_ip;
    }
    socks.push_back(open_udp_source_socket(src, uint16_t(ctx.src_port + f), dst, ctx.dst_port,
                                           ctx.options.integer("sndbuf")));
  }
  return socks;
}

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int rc = poll(&p, 1, timeout_ms);
  if (rc < 0 && errno != EINTR) throw EnvError(errno_text("poll", errno), errno);
  return rc > 0;
}

OptionSpec rcvbuf_option() {
  return {"rcvbuf", OptionType::size, "4M",
          "socket receive buffer (SO_RCVBUFFORCE; 0 keeps the kernel default)", 0, 1ll << 30, {}};
}

OptionSpec wait_option() {
  return {"wait", OptionType::choice, "poll",
          "poll: sleep in poll(2) until data; busy: spin on non-blocking calls (one CPU at 100%)", 0, 0,
          {"poll", "busy"}};
}

OptionSpec sndbuf_option() {
  return {"sndbuf", OptionType::size, "0", "socket send buffer (SO_SNDBUFFORCE; 0 keeps the kernel default)", 0,
          1ll << 30, {}};
}

OptionSpec reuseport_option() {
  return {"reuseport", OptionType::choice, "hash",
          "with sink workers > 1, how the SO_REUSEPORT group picks a socket: hash = the kernel's 4-tuple hash; "
          "cpu = SO_INCOMING_CPU, the worker on the receiving CPU",
          0, 0, {"hash", "cpu"}};
}

size_t receive_buffer_bytes(int mtu, size_t payload_bytes) {
  return std::max<size_t>(size_t(std::max(mtu, 0)), payload_bytes) + 64;
}

}  // namespace zc
