// `recv`: one recv(2) per datagram on a UDP socket — the baseline every other
// receive path is compared against.
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"

namespace zc {
namespace {

class RecvSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    busy_ = ctx.options.text("wait") == "busy";
    fd_ = open_udp_sink_socket(ctx.local_ip, ctx.udp_port, ctx.options.integer("rcvbuf"));
    buf_.resize(receive_buffer_bytes(ctx.mtu, ctx.payload_bytes));
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
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

 private:
  Fd fd_;
  bool busy_ = false;
  std::vector<uint8_t> buf_;
};

}  // namespace

DriverInfo recv_driver_info() {
  DriverInfo d;
  d.name = "recv";
  d.direction = Direction::rx;
  d.description = "UDP socket, one recv(2) per datagram after poll(2)";
  d.options = {rcvbuf_option(), wait_option()};
  d.probe = [] { return Usability{}; };
  d.make_rx = [] { return std::make_unique<RecvSink>(); };
  return d;
}

}  // namespace zc
