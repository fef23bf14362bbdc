// `sendmmsg`: batches of datagrams per syscall (sendmmsg(2)), one connected
// UDP socket per flow.
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

class SendmmsgTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    batch_ = size_t(ctx.options.integer("batch"));
    size_t payload = ctx.payload_bytes;
    socks_ = open_flow_sockets(ctx);
    storage_.resize(batch_ * payload);
    iov_.resize(batch_);
    msgs_.resize(batch_);
    for (size_t i = 0; i < batch_; ++i) {
      ptrs_.push_back(storage_.data() + i * payload);
      flood_write_payload(ptrs_[i], payload, FloodHeader{});
      iov_[i] = {ptrs_[i], payload};
      msgs_[i] = {};
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
  }

  size_t max_batch() const override { return batch_; }

  std::span<uint8_t* const> acquire(size_t n) override { return {ptrs_.data(), std::min(n, batch_)}; }

  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    for (size_t i = 0; i < k; ++i) iov_[i].iov_len = lengths[i];
    int n = sendmmsg(socks_[size_t(flow)].get(), msgs_.data(), unsigned(k), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR || is_icmp_soft_error(errno)) return 0;
      throw EnvError(errno_text("sendmmsg", errno), errno);
    }
    return size_t(n);
  }

 private:
  size_t batch_ = 0;
  std::vector<Fd> socks_;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> msgs_;
};

}  // namespace

DriverInfo sendmmsg_driver_info() {
  DriverInfo d;
  d.name = "sendmmsg";
  d.direction = Direction::tx;
  d.description = "UDP socket per flow, sendmmsg(2) batches";
  d.options = {{"batch", OptionType::integer, "32", "datagrams per sendmmsg call", 1, 1024, {}}, sndbuf_option()};
  d.tx_mixed_lengths = true;
  d.probe = [] { return Usability{}; };
  d.make_tx = [] { return std::make_unique<SendmmsgTx>(); };
  return d;
}

}  // namespace zc
