// `recv`: one recv(2) per datagram on a UDP socket — the baseline every other
// receive path is compared against. With proto=tcp it is the stream-mode
// baseline: big reads from each accepted connection, cut back into messages.
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/tcp_stream.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/timestamps.h"

namespace zc {
namespace {

class RecvSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    busy_ = ctx.options.text("wait") == "busy";
    if (proto_is_tcp(ctx.options)) {
      tcp_ = std::make_unique<TcpStreamSink>();
      tcp_->open_worker(ctx);
      buf_.resize(kStreamReadBytes);
      return;
    }
    fd_ = open_udp_worker_socket(ctx, &reuseport_);
    buf_.resize(receive_buffer_bytes(ctx.mtu, ctx.payload_bytes));
    // recvmsg(2) instead of recv(2): same one syscall per datagram, plus the
    // kernel's RX stamp in the control buffer.
    enable_socket_rx_timestamps(fd_.get(), ctx.hw_timestamps);
    stamps_ = sink_stamp_capability(ctx.ifname, ctx.hw_timestamps);
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    if (tcp_) return receive_stream(acct, timeout_ms);
    if (!busy_ && !wait_readable(fd_.get(), timeout_ms)) return 0;
    size_t n = 0;
    // Drain what is queued, bounded so the meter's stop flag is seen promptly.
    while (n < 256) {
      iovec iov{buf_.data(), buf_.size()};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = ctrl_;
      m.msg_controllen = sizeof ctrl_;
      ssize_t len = ::recvmsg(fd_.get(), &m, MSG_DONTWAIT);
      if (len < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        throw EnvError(errno_text("recvmsg", errno), errno);
      }
      acct.begin_batch();
      if (m.msg_flags & MSG_CTRUNC) acct.on_stamp_truncated();
      acct.on_packet(buf_.data(), size_t(len), parse_rx_stamp(m));
      ++n;
    }
    return n;
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json j = tcp_ ? tcp_->stats() : nlohmann::json::object();
    if (!tcp_) j["timestamps"] = stamps_;
    if (!reuseport_.is_null()) j["reuseport"] = reuseport_;
    return j;
  }

 private:
  // One read per readable connection per call, as big as the socket gives.
  static constexpr size_t kStreamReadBytes = 256 * 1024;

  size_t receive_stream(Accounting& acct, int timeout_ms) {
    size_t n = 0;
    for (TcpStreamSink::Conn* c : tcp_->wait(busy_ ? 0 : timeout_ms)) {
      ssize_t len = ::recv(c->fd.get(), buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (len < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        throw EnvError(errno_text("recv (TCP)", errno), errno);
      }
      if (len == 0) {
        tcp_->close(c);
        continue;
      }
      acct.begin_batch();
      n += c->framer.feed(buf_.data(), size_t(len), acct);
    }
    return n;
  }

  std::unique_ptr<TcpStreamSink> tcp_;
  nlohmann::json reuseport_;
  Fd fd_;
  bool busy_ = false;
  std::vector<uint8_t> buf_;
  alignas(cmsghdr) uint8_t ctrl_[kStampControlBytes];
  nlohmann::json stamps_;
};

}  // namespace

DriverInfo recv_driver_info() {
  DriverInfo d;
  d.name = "recv";
  d.rx_hw_stamps = true;  // RxContext::hw_timestamps (sink --hw-timestamps)
  d.direction = Direction::rx;
  d.description = "UDP socket, one recvmsg(2) per datagram (recv(2) plus its RX stamp) after poll(2); proto=tcp: stream reads, reframed";
  d.options = {proto_option(), rcvbuf_option(), wait_option(), reuseport_option()};
  d.probe = [] { return Usability{}; };
  d.make_rx = [] { return std::make_unique<RecvSink>(); };
  return d;
}

}  // namespace zc
