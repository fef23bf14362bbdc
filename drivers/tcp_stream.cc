#include "drivers/tcp_stream.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "harness/errors.h"
#include "harness/lab.h"

namespace zc {
namespace {

sockaddr_in make_addr(in_addr ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr = ip;
  a.sin_port = htons(port);
  return a;
}

// SO_*BUFFORCE needs CAP_NET_ADMIN and ignores the host-wide cap; without it
// the plain option (capped by the sysctl).
void force_buffer(int fd, int force_opt, int plain_opt, int64_t bytes, const char* what) {
  if (bytes <= 0) return;
  int v = int(std::min<int64_t>(bytes, INT32_MAX / 2));
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) == 0) return;
  if (errno != EPERM) throw EnvError(errno_text(std::string("setsockopt(") + what + ")", errno), errno);
  check_sys(setsockopt(fd, SOL_SOCKET, plain_opt, &v, sizeof v), std::string("setsockopt(") + what + ")");
}

std::string endpoint(in_addr ip, uint16_t port) { return ipv4_to_string(ip) + ":" + std::to_string(port); }

}  // namespace

OptionSpec proto_option() {
  return {"proto", OptionType::choice, "udp",
          "udp: one datagram per flood message; tcp: one connection per flow, messages back-to-back in the "
          "stream (the sink must speak tcp too)",
          0, 0, {"udp", "tcp"}};
}

bool proto_is_tcp(const DriverOptions& o) { return o.text("proto") == "tcp"; }

namespace {

// `group`: join the address's SO_REUSEPORT group (set before bind, as
// socket(7) requires of every member).
Fd tcp_listener(in_addr ip, uint16_t port, int64_t rcvbuf, bool group, const std::function<void(int)>& before_bind) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  check_sys(fd.get(), "socket(AF_INET, SOCK_STREAM)");
  int one = 1;
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), "setsockopt(SO_REUSEADDR)");
  if (group) check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), "setsockopt(SO_REUSEPORT)");
  if (before_bind) before_bind(fd.get());
  // Set on the listener so accepted sockets inherit it before the handshake
  // fixes the window scale.
  force_buffer(fd.get(), SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf, "SO_RCVBUFFORCE");
  sockaddr_in a = make_addr(ip, port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
    throw EnvError(errno_text("bind TCP " + endpoint(ip, port) + (group ? " with SO_REUSEPORT" : ""), errno), errno);
  check_sys(listen(fd.get(), 1024), "listen TCP " + endpoint(ip, port));
  return fd;
}

}  // namespace

Fd open_tcp_listener(in_addr ip, uint16_t port, int64_t rcvbuf) { return tcp_listener(ip, port, rcvbuf, false, {}); }

Fd open_tcp_worker_listener(const RxContext& ctx, nlohmann::json* record) {
  const int64_t rcvbuf = ctx.options.integer("rcvbuf");
  if (ctx.workers <= 1) return open_tcp_listener(ctx.local_ip, ctx.udp_port, rcvbuf);
  const std::string steering =
      ctx.options.values().count("reuseport") ? ctx.options.text("reuseport") : std::string("hash");
  nlohmann::json rec{{"group_size", ctx.workers}, {"worker", ctx.worker}, {"steering", steering}, {"proto", "tcp"}};
  std::function<void(int)> steer;
  if (steering == "cpu") {
    if (ctx.cpu < 0)
      throw UsageError("reuseport=cpu steers by the worker's CPU, but sink worker " + std::to_string(ctx.worker) +
                       " has none; give --sink-cpus");
    steer = [cpu = ctx.cpu](int fd) {
      check_sys(setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu),
                "setsockopt(SO_INCOMING_CPU, " + std::to_string(cpu) + ")");
    };
    rec["how"] = "SO_INCOMING_CPU of the listener, per connection";
    rec["incoming_cpu"] = ctx.cpu;
  } else {
    rec["how"] = "kernel 4-tuple hash of each connection's SYN (reuseport_select_sock_by_hash)";
  }
  Fd fd = tcp_listener(ctx.local_ip, ctx.udp_port, rcvbuf, true, steer);
  if (record) *record = rec;
  return fd;
}

Fd connect_tcp_source(in_addr src_ip, uint16_t src_port, in_addr dst_ip, uint16_t dst_port, int64_t sndbuf,
                      const std::string& who) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    check_sys(fd.get(), "socket(AF_INET, SOCK_STREAM)");
    int one = 1;
    check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), "setsockopt(SO_REUSEADDR)");
    force_buffer(fd.get(), SO_SNDBUFFORCE, SO_SNDBUF, sndbuf, "SO_SNDBUFFORCE");
    timeval tv{0, 100000};
    check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), "setsockopt(SO_SNDTIMEO)");
    sockaddr_in src = make_addr(src_ip, src_port);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) < 0)
      throw EnvError(errno_text("bind TCP " + endpoint(src_ip, src_port), errno), errno);
    sockaddr_in dst = make_addr(dst_ip, dst_port);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) return fd;
    int e = errno;
    if (e != ECONNREFUSED && e != EINTR)
      throw EnvError(errno_text("connect TCP " + endpoint(dst_ip, dst_port), e), e);
    if (std::chrono::steady_clock::now() > give_up)
      throw UsageError(who + " proto=tcp found no TCP listener at " + endpoint(dst_ip, dst_port) + " (" +
                       errno_name(e) + "): the sink must speak TCP too, e.g. --rx recv:proto=tcp or "
                       "--rx splice:proto=tcp");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<Fd> open_tcp_flow_sockets(const TxContext& ctx, const std::string& who) {
  std::vector<Fd> socks;
  for (int f = 0; f < ctx.flows; ++f)
    if (ctx.workers > 1 && f % ctx.workers != ctx.worker)
      socks.emplace_back();  // another generator worker's flow
    else
      socks.push_back(connect_tcp_source(ctx.src_ip, uint16_t(ctx.src_port + f), ctx.dst_ip, ctx.dst_port,
                                       ctx.options.integer("sndbuf"), who));
  return socks;
}

size_t StreamFramer::feed(const uint8_t* data, size_t len, Accounting& acct) {
  size_t done = 0;
  if (!partial_.empty()) {
    size_t take = std::min(len, msg_ - partial_.size());
    partial_.insert(partial_.end(), data, data + take);
    data += take;
    len -= take;
    if (partial_.size() < msg_) return 0;
    acct.on_packet(partial_.data(), msg_);
    partial_.clear();
    ++done;
  }
  // Whole messages straight from the caller's buffer: no copy on the common path.
  for (; len >= msg_; data += msg_, len -= msg_, ++done) acct.on_packet(data, msg_);
  partial_.assign(data, data + len);
  return done;
}

size_t StreamFramer::feed_count(size_t len, Accounting& acct) {
  // Count mode never reads the payload; any valid pointer will do.
  static const uint8_t kNothing[1] = {0};
  size_t total = count_pending_ + len;
  size_t done = total / msg_;
  count_pending_ = total % msg_;
  for (size_t i = 0; i < done; ++i) acct.on_packet(kNothing, msg_);
  return done;
}

void TcpStreamSink::open(in_addr ip, uint16_t port, int64_t rcvbuf, size_t msg_bytes) {
  listener_ = open_tcp_listener(ip, port, rcvbuf);
  msg_ = msg_bytes;
}

void TcpStreamSink::open_worker(const RxContext& ctx) {
  listener_ = open_tcp_worker_listener(ctx, &reuseport_);
  msg_ = ctx.payload_bytes;
}

std::vector<TcpStreamSink::Conn*> TcpStreamSink::wait(int timeout_ms) {
  std::vector<pollfd> fds;
  fds.push_back({listener_.get(), POLLIN, 0});
  for (const auto& c : conns_) fds.push_back({c->fd.get(), POLLIN, 0});
  int rc = poll(fds.data(), nfds_t(fds.size()), timeout_ms);
  if (rc < 0 && errno != EINTR) throw EnvError(errno_text("poll", errno), errno);
  std::vector<Conn*> ready;
  if (rc <= 0) return ready;
  for (size_t i = 1; i < fds.size(); ++i)
    if (fds[i].revents) ready.push_back(conns_[i - 1].get());
  if (fds[0].revents & POLLIN) {
    for (;;) {
      int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) break;
        throw EnvError(errno_text("accept4", errno), errno);
      }
      conns_.push_back(std::make_unique<Conn>(Conn{Fd(fd), StreamFramer(msg_)}));
      ++accepted_;
      ready.push_back(conns_.back().get());  // data may already be queued
    }
  }
  return ready;
}

void TcpStreamSink::close(Conn* c) {
  truncated_bytes_ += c->framer.pending();
  std::erase_if(conns_, [c](const std::unique_ptr<Conn>& p) { return p.get() == c; });
}

nlohmann::json TcpStreamSink::stats() const {
  uint64_t pending = truncated_bytes_;
  for (const auto& c : conns_) pending += c->framer.pending();
  nlohmann::json j{{"tcp_connections_accepted", accepted_}, {"tcp_partial_message_bytes", pending}};
  if (!reuseport_.is_null()) j["reuseport"] = reuseport_;
  return j;
}

}  // namespace zc
