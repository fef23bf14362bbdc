// `recvmmsg`: batches of datagrams per syscall (recvmmsg(2)) on a UDP socket —
// the path that could not keep up with the FPGA board's 2.35 Mpps.
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/timestamps.h"

namespace zc {
namespace {

class RecvmmsgSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    busy_ = ctx.options.text("wait") == "busy";
    size_t batch = size_t(ctx.options.integer("batch"));
    fd_ = open_udp_worker_socket(ctx, &reuseport_);
    buf_bytes_ = receive_buffer_bytes(ctx.mtu, ctx.payload_bytes);
    bufs_.resize(batch * buf_bytes_);
    iov_.resize(batch);
    msgs_.resize(batch);
    // Every datagram's kernel RX stamp rides in its own control buffer.
    enable_socket_rx_timestamps(fd_.get(), ctx.hw_timestamps);
    stamps_ = sink_stamp_capability(ctx.ifname, ctx.hw_timestamps);
    ctrl_.resize(batch * kStampControlBytes);
    for (size_t i = 0; i < batch; ++i) {
      iov_[i] = {bufs_.data() + i * buf_bytes_, buf_bytes_};
      msgs_[i] = {};
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
      msgs_[i].msg_hdr.msg_control = ctrl_.data() + i * kStampControlBytes;
      msgs_[i].msg_hdr.msg_controllen = kStampControlBytes;
    }
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    if (!busy_ && !wait_readable(fd_.get(), timeout_ms)) return 0;
    size_t total = 0;
    for (int rounds = 0; rounds < 8; ++rounds) {
      int n = recvmmsg(fd_.get(), msgs_.data(), unsigned(msgs_.size()), MSG_DONTWAIT, nullptr);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        throw EnvError(errno_text("recvmmsg", errno), errno);
      }
      acct.begin_batch();
      for (int i = 0; i < n; ++i) {
        msghdr& m = msgs_[i].msg_hdr;
        if (m.msg_flags & MSG_CTRUNC) acct.on_stamp_truncated();
        acct.on_packet(static_cast<uint8_t*>(iov_[i].iov_base), msgs_[i].msg_len, parse_rx_stamp(m));
        m.msg_controllen = kStampControlBytes;  // recvmmsg wrote back the length used
      }
      total += size_t(n);
      if (size_t(n) < msgs_.size()) break;  // queue drained
    }
    return total;
  }

 nlohmann::json kernel_stats() override {
    nlohmann::json j{{"timestamps", stamps_}};
    if (!reuseport_.is_null()) j["reuseport"] = reuseport_;
    return j;
  }

 private:
  Fd fd_;
  nlohmann::json reuseport_;
  bool busy_ = false;
  size_t buf_bytes_ = 0;
  std::vector<uint8_t> bufs_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> msgs_;
  std::vector<uint8_t> ctrl_;
  nlohmann::json stamps_;
};

}  // namespace

DriverInfo recvmmsg_driver_info() {
  DriverInfo d;
  d.name = "recvmmsg";
  d.rx_hw_stamps = true;  // RxContext::hw_timestamps (sink --hw-timestamps)
  d.direction = Direction::rx;
  d.description = "UDP socket, recvmmsg(2) batches after poll(2)";
  d.options = {{"batch", OptionType::integer, "64", "datagrams per recvmmsg call (vlen)", 1, 1024, {}},
               rcvbuf_option(), wait_option(), reuseport_option()};
  d.probe = [] { return Usability{}; };
  d.make_rx = [] { return std::make_unique<RecvmmsgSink>(); };
  return d;
}

}  // namespace zc
