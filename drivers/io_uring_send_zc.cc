// `io_uring_send_zc`: IORING_OP_SEND_ZC (kernel 6.0). Each send posts a result
// CQE with IORING_CQE_F_MORE, then — once the kernel has let go of the pages —
// a notification CQE with IORING_CQE_F_NOTIF. A buffer is handed to the
// generator again only after its notification. With
// IORING_SEND_ZC_REPORT_USAGE (6.2) the notification says whether the data
// was copied after all (IORING_NOTIF_USAGE_ZC_COPIED): to a local socket, veth
// included, it always is (skb_orphan_frags_rx on receive).
#include <cerrno>
#include <deque>
#include <memory>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "drivers/uring_common.h"
#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/pacer.h"

namespace zc {
namespace {

class UringSendZcTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    batch_ = unsigned(ctx.options.integer("batch"));
    unsigned depth = unsigned(ctx.options.integer("sq_depth"));
    unsigned pool = unsigned(ctx.options.integer("buffers"));
    if (batch_ > depth)
      throw UsageError("tx io_uring_send_zc: batch=" + std::to_string(batch_) + " exceeds sq_depth=" +
                       std::to_string(depth) + "; accepted: batch <= sq_depth");
    if (pool < batch_)
      throw UsageError("tx io_uring_send_zc: buffers=" + std::to_string(pool) + " is below batch=" +
                       std::to_string(batch_) + "; accepted: buffers >= batch");
    payload_ = ctx.payload_bytes;
    sqpoll_ = ctx.options.boolean("sqpoll");
    socks_ = open_flow_sockets(ctx);
    // Notifications arrive besides results: room for every buffer's two CQEs.
    ring_ = std::make_unique<Uring>(std::max(depth, pool), sqpoll_);
    storage_.resize(size_t(pool) * payload_);
    for (unsigned i = 0; i < pool; ++i) {
      ptrs_.push_back(storage_.data() + size_t(i) * payload_);
      flood_write_payload(ptrs_[i], payload_, FloodHeader{});
      free_.push_back(i);
    }
    acquired_ptrs_.reserve(batch_);
    results_.assign(pool, 0);
    had_more_.assign(pool, false);
    state_.assign(pool, kIdle);
  }

  size_t max_batch() const override { return batch_; }

  std::span<uint8_t* const> acquire(size_t n) override {
    n = std::min<size_t>(n, batch_);
    if (acquired_.size() + free_.size() < n) reap(false);
    if (acquired_.empty() && free_.empty()) reap(true);  // every buffer in flight: wait for a notification
    while (acquired_.size() < n && !free_.empty()) {
      acquired_.push_back(free_.front());
      free_.pop_front();
    }
    acquired_ptrs_.clear();
    for (size_t i = 0; i < std::min(n, acquired_.size()); ++i) acquired_ptrs_.push_back(ptrs_[acquired_[i]]);
    return {acquired_ptrs_.data(), acquired_ptrs_.size()};
  }

  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    std::vector<uint64_t> ids(acquired_.begin(), acquired_.begin() + ptrdiff_t(k));
    for (uint64_t id : ids) had_more_[id] = false;
    queue_linked_sends(*ring_, socks_[size_t(flow)].get(), acquired_ptrs_.data(), unsigned(k), lengths.data(), true,
                       ids.data());
    int rc = io_uring_submit(ring_->get());
    if (rc < 0) throw EnvError(errno_text("io_uring_submit", -rc), -rc);
    in_flight_ += k;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    // Wait for the k result CQEs; notifications of earlier sends come interleaved.
    pending_results_ = k;
    while (pending_results_ > 0) reap(true);
    size_t accepted = 0;
    while (accepted < k && results_[ids[accepted]] == int(lengths[accepted])) ++accepted;
    if (accepted < k) {
      int res = results_[ids[accepted]];
      if (res >= 0)
        throw InternalError("send_zc of a " + std::to_string(lengths[accepted]) + "-byte datagram returned " +
                            std::to_string(res));
      if (res != -EAGAIN && res != -ENOBUFS && res != -EINTR && !is_icmp_soft_error(-res)) throw EnvError(errno_text("IORING_OP_SEND_ZC", -res), -res);
      ++refused_;
    }
    // Accepted buffers are the kernel's until their notification; refused or
    // cancelled ones without a pending notification stay with the generator.
    std::deque<uint32_t> keep;
    for (size_t i = 0; i < acquired_.size(); ++i) {
      uint32_t id = acquired_[i];
      if (i < k && (i < accepted || had_more_[id])) continue;
      keep.push_back(id);
    }
    acquired_.swap(keep);
    sent_ += accepted;
    return accepted;
  }

  void flush() override {
    uint64_t deadline = monotonic_ns() + 2000000000ull;
    while (in_flight_ > 0 && monotonic_ns() < deadline) reap(true);
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json notes = nlohmann::json::array();
    if (notifs_ && copied_ == notifs_)
      notes.push_back("every notification reported IORING_NOTIF_USAGE_ZC_COPIED: the data was copied after all "
                      "(veth delivers to a local socket, which copies zero-copy pages on receive)");
    return {{"sends", sent_},
            {"result_cqes", results_seen_},
            {"result_cqes_with_more", results_more_},
            {"notification_cqes", notifs_},
            {"notif_usage_zc_copied", copied_},
            {"notif_usage_zerocopy", notifs_ - copied_},
            {"refused", refused_},
            {"max_buffers_in_flight", max_in_flight_},
            {"buffers_in_flight_at_end", in_flight_},
            {"buffers", ptrs_.size()},
            {"sqpoll", sqpoll_},
            {"notes", notes}};
  }

 private:
  enum : uint8_t { kIdle = 0, kAwaitNotif = 1 };

  void release(uint32_t id) {
    state_[id] = kIdle;
    free_.push_back(id);
    --in_flight_;
  }

  // Consumes every available CQE (waiting up to 1 s for the first when
  // `wait`): results set results_[id]; notifications free their buffer.
  void reap(bool wait) {
    io_uring_cqe* cqe = nullptr;
    if (wait) {
      __kernel_timespec ts{1, 0};
      int rc = io_uring_wait_cqe_timeout(ring_->get(), &cqe, &ts);
      if (rc == -ETIME) {
        if (pending_results_ > 0) throw InternalError("io_uring send_zc: no result CQE within 1 s");
        return;
      }
      if (rc < 0 && rc != -EINTR) throw EnvError(errno_text("io_uring_wait_cqe (send_zc)", -rc), -rc);
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(ring_->get(), head, cqe) {
      ++seen;
      uint32_t id = uint32_t(io_uring_cqe_get_data64(cqe));
      if (cqe->flags & IORING_CQE_F_NOTIF) {
        ++notifs_;
        if (uint32_t(cqe->res) & kNotifUsageZcCopied) ++copied_;
        release(id);
        continue;
      }
      ++results_seen_;
      results_[id] = cqe->res;
      if (pending_results_) --pending_results_;
      if (cqe->flags & IORING_CQE_F_MORE) {
        ++results_more_;
        had_more_[id] = true;
        state_[id] = kAwaitNotif;
      } else {
        --in_flight_;  // no notification will follow: the buffer is back with us
      }
    }
    io_uring_cq_advance(ring_->get(), seen);
  }

  unsigned batch_ = 0;
  size_t payload_ = 0;
  bool sqpoll_ = false;
  std::vector<Fd> socks_;
  std::unique_ptr<Uring> ring_;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
  std::deque<uint32_t> free_, acquired_;
  std::vector<uint8_t*> acquired_ptrs_;
  std::vector<int> results_;
  std::vector<bool> had_more_;
  std::vector<uint8_t> state_;
  size_t pending_results_ = 0;
  uint64_t in_flight_ = 0, max_in_flight_ = 0;
  uint64_t sent_ = 0, refused_ = 0, results_seen_ = 0, results_more_ = 0, notifs_ = 0, copied_ = 0;
};

}  // namespace

DriverInfo io_uring_send_zc_driver_info() {
  DriverInfo d;
  d.name = "io_uring_send_zc";
  d.direction = Direction::tx;
  d.description =
      "io_uring IORING_OP_SEND_ZC with IORING_SEND_ZC_REPORT_USAGE; buffers reused only after their notification CQE";
  d.options = {uring_batch_option(),
               sq_depth_option(),
               sqpoll_option(),
               {"buffers", OptionType::integer, "256", "payload buffers in the pool (in flight until notified)", 1,
                32768, {}},
               sndbuf_option()};
  d.tx_mixed_lengths = true;
  d.probe = [] { return probe_io_uring({IORING_OP_SEND_ZC}, {"IORING_OP_SEND_ZC"}); };
  d.make_tx = [] { return std::make_unique<UringSendZcTx>(); };
  return d;
}

}  // namespace zc
