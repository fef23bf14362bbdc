// `sendto`: one send(2) per datagram on a connected UDP socket per flow — the
// plain socket path the TX ring claim compares against.
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

class SendtoTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    batch_ = size_t(ctx.options.integer("batch"));
    payload_ = ctx.payload_bytes;
    socks_ = open_flow_sockets(ctx);
    storage_.resize(batch_ * payload_);
    for (size_t i = 0; i < batch_; ++i) {
      ptrs_.push_back(storage_.data() + i * payload_);
      flood_write_payload(ptrs_[i], payload_, FloodHeader{});
    }
  }

  size_t max_batch() const override { return batch_; }

  std::span<uint8_t* const> acquire(size_t n) override { return {ptrs_.data(), std::min(n, batch_)}; }

  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    int fd = socks_[size_t(flow)].get();
    for (size_t i = 0; i < k; ++i) {
      if (::send(fd, ptrs_[i], lengths[i], 0) < 0) {
        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR || is_icmp_soft_error(errno)) return i;
        throw EnvError(errno_text("send", errno), errno);
      }
    }
    return k;
  }

 private:
  size_t batch_ = 0;
  size_t payload_ = 0;
  std::vector<Fd> socks_;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
};

}  // namespace

DriverInfo sendto_driver_info() {
  DriverInfo d;
  d.name = "sendto";
  d.direction = Direction::tx;
  d.description = "UDP socket per flow, one send(2) per datagram";
  d.options = {{"batch", OptionType::integer, "32", "datagrams stamped per pacing step (one syscall each)", 1, 1024, {}},
               sndbuf_option()};
  d.tx_mixed_lengths = true;
  d.probe = [] { return Usability{}; };
  d.make_tx = [] { return std::make_unique<SendtoTx>(); };
  return d;
}

}  // namespace zc
