// `io_uring_send`: plain IORING_OP_SEND, a batch of linked sends per
// submission, one connected UDP socket per flow — the baseline io_uring_send_zc
// is compared with, and io_uring's answer to sendmmsg.
#include <cerrno>
#include <memory>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "drivers/uring_common.h"
#include "harness/errors.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

class UringSendTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    batch_ = unsigned(ctx.options.integer("batch"));
    unsigned depth = unsigned(ctx.options.integer("sq_depth"));
    if (batch_ > depth)
      throw UsageError("tx io_uring_send: batch=" + std::to_string(batch_) + " exceeds sq_depth=" +
                       std::to_string(depth) + "; accepted: batch <= sq_depth");
    payload_ = ctx.payload_bytes;
    socks_ = open_flow_sockets(ctx);
    sqpoll_ = ctx.options.boolean("sqpoll");
    ring_ = std::make_unique<Uring>(depth, sqpoll_);
    storage_.resize(size_t(batch_) * payload_);
    for (unsigned i = 0; i < batch_; ++i) {
      ptrs_.push_back(storage_.data() + size_t(i) * payload_);
      flood_write_payload(ptrs_[i], payload_, FloodHeader{});
      ids_.push_back(i);
    }
    results_.resize(batch_);
  }

  size_t max_batch() const override { return batch_; }

  std::span<uint8_t* const> acquire(size_t n) override { return {ptrs_.data(), std::min<size_t>(n, batch_)}; }

  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    // Every buffer of the batch is read by the kernel before its CQE, so
    // waiting for all k CQEs makes the buffers free again for the next batch.
    queue_linked_sends(*ring_, socks_[size_t(flow)].get(), ptrs_.data(), unsigned(k), lengths.data(), false,
                       ids_.data());
    int rc = io_uring_submit(ring_->get());
    if (rc < 0) throw EnvError(errno_text("io_uring_submit", -rc), -rc);
    ++submits_;
    for (size_t got = 0; got < k; ++got) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{5, 0};
      rc = io_uring_wait_cqe_timeout(ring_->get(), &cqe, &ts);
      if (rc < 0) throw EnvError(errno_text("io_uring_wait_cqe (send completions)", -rc), -rc);
      results_[size_t(io_uring_cqe_get_data64(cqe))] = cqe->res;
      io_uring_cqe_seen(ring_->get(), cqe);
    }
    size_t accepted = 0;
    while (accepted < k && results_[accepted] == int(lengths[accepted])) ++accepted;
    if (accepted < k) {
      int res = results_[accepted];
      if (res >= 0)
        throw InternalError("io_uring send of a " + std::to_string(lengths[accepted]) + "-byte datagram returned " +
                            std::to_string(res));
      if (res == -EAGAIN || res == -ENOBUFS || res == -EINTR || is_icmp_soft_error(-res))
        ++refused_;
      else
        throw EnvError(errno_text("IORING_OP_SEND", -res), -res);
      cancelled_ += k - accepted - 1;
    }
    sent_ += accepted;
    return accepted;
  }

  nlohmann::json kernel_stats() override {
    return {{"sends", sent_},       {"submits", submits_},      {"refused", refused_},
            {"cancelled_links", cancelled_}, {"sqpoll", sqpoll_}, {"ring_features", ring_ ? ring_->features() : 0}};
  }

 private:
  unsigned batch_ = 0;
  size_t payload_ = 0;
  bool sqpoll_ = false;
  std::vector<Fd> socks_;
  std::unique_ptr<Uring> ring_;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
  std::vector<uint64_t> ids_;
  std::vector<int> results_;
  uint64_t sent_ = 0, submits_ = 0, refused_ = 0, cancelled_ = 0;
};

}  // namespace

DriverInfo io_uring_send_driver_info() {
  DriverInfo d;
  d.name = "io_uring_send";
  d.direction = Direction::tx;
  d.description = "io_uring IORING_OP_SEND, linked batches per submission, one UDP socket per flow";
  d.options = {uring_batch_option(), sq_depth_option(), sqpoll_option(), sndbuf_option()};
  d.tx_mixed_lengths = true;
  d.probe = [] { return probe_io_uring({IORING_OP_SEND}, {"IORING_OP_SEND"}); };
  d.make_tx = [] { return std::make_unique<UringSendTx>(); };
  return d;
}

}  // namespace zc
