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
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    if (tcp_) return receive_stream(acct, timeout_ms);
    if (!busy_ && !wait_readable(fd_.get(), timeout_ms)) return 0;
    size_t n = 0;
    // Drain what is queued, bounded so the meter's stop flag is seen promptly.
    while (n < 256) {
      ssize_t len = ::recv(fd_.get(), buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (len < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        throw EnvError(errno_text("recv", errno), errno);
      }
      acct.begin_batch();
      acct.on_packet(buf_.data(), size_t(len));
      ++n;
    }
    return n;
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json j = tcp_ ? tcp_->stats() : nlohmann::json::object();
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
};

}  // namespace

DriverInfo recv_driver_info() {
  DriverInfo d;
  d.name = "recv";
  d.direction = Direction::rx;
  d.description = "UDP socket, one recv(2) per datagram after poll(2); proto=tcp: stream reads, reframed";
  d.options = {proto_option(), rcvbuf_option(), wait_option(), reuseport_option()};
  d.probe = [] { return Usability{}; };
  d.make_rx = [] { return std::make_unique<RecvSink>(); };
  return d;
}

}  // namespace zc
