// `io_uring_recv`: one multishot receive on a UDP socket, buffers picked by
// the kernel from a provided-buffer ring: one SQE serves every datagram until
// the kernel ends it — a CQE without IORING_CQE_F_MORE, typically -ENOBUFS
// when the ring ran dry — and the sink re-arms it. The heir of claim 5's
// "asynchronous receive".
//
// op=recvmsg (default): IORING_OP_RECVMSG with IORING_RECV_MULTISHOT (kernel
// 6.0). Each buffer holds an io_uring_recvmsg_out header, the control
// messages and the payload (io_uring_prep_recvmsg_multishot(3)), so the
// kernel's SO_TIMESTAMPING RX stamp comes along and latency splits at it as
// for recv/recvmmsg (harness/timestamps.h, docs/conformance.md item 46).
// op=recv: IORING_OP_RECV with IORING_RECV_MULTISHOT, the payload alone — no
// control messages, so no stamps.
//
// udp_gro=on (op=recvmsg only) sets UDP_GRO on the socket; the UDP_GRO
// control message (gso_size) splits a GRO- or GSO-coalesced read into its
// datagrams for the accounting.
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "drivers/uring_common.h"
#include "harness/errors.h"
#include "harness/timestamps.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace zc {
namespace {

constexpr uint16_t kBufferGroup = 1;
constexpr size_t kGroReadBytes = 65536;  // a coalesced read is at most one 64 KiB UDP datagram

class UringRecvSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    busy_ = ctx.options.text("wait") == "busy";
    gro_ = ctx.options.boolean("udp_gro");
    recvmsg_ = ctx.options.text("op") == "recvmsg";
    if (gro_ && !recvmsg_)
      throw UsageError("rx io_uring_recv: udp_gro=on needs op=recvmsg: multishot IORING_OP_RECV returns no control "
                       "messages, so the UDP_GRO cmsg's gso_size that splits a coalesced read is lost");
    fd_ = open_udp_worker_socket(ctx, &reuseport_);
    if (gro_) {
      int one = 1;
      check_sys(setsockopt(fd_.get(), IPPROTO_UDP, UDP_GRO, &one, sizeof one), "setsockopt(UDP_GRO)");
    }
    if (recvmsg_) {
      enable_socket_rx_timestamps(fd_.get(), false);
      stamps_ = sink_stamp_capability(ctx.ifname);
    } else {
      stamps_ = stamps_unavailable_json(
          "op=recv: multishot IORING_OP_RECV returns the payload alone, no control messages (SCM_TIMESTAMPING); "
          "op=recvmsg carries them");
    }
    unsigned depth = unsigned(ctx.options.integer("ring_depth"));
    ring_ = std::make_unique<Uring>(depth, ctx.options.boolean("sqpoll"));
    cqes_batch_.resize(ring_->get()->cq.ring_entries);
    size_t bytes = gro_ ? kGroReadBytes : receive_buffer_bytes(ctx.mtu, ctx.payload_bytes);
    // A recvmsg buffer starts with its header and control area; the payload
    // room after them stays one byte larger than any datagram of the lab, so
    // MSG_TRUNC means a datagram really was cut.
    if (recvmsg_) bytes += sizeof(io_uring_recvmsg_out) + kStampControlBytes;
    bufs_ = std::make_unique<BufferRing>(ring_->get(), kBufferGroup, unsigned(ctx.options.integer("buffers")), bytes);
    msg_ = {};
    msg_.msg_controllen = kStampControlBytes;
    arm();
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    if (!armed_) arm();
    io_uring_cqe* cqe = nullptr;
    int rc;
    if (busy_) {
      rc = io_uring_submit(ring_->get());
      if (rc < 0) throw EnvError(errno_text("io_uring_submit", -rc), -rc);
      rc = io_uring_peek_cqe(ring_->get(), &cqe);
    } else {
      __kernel_timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000LL};
      rc = io_uring_submit_and_wait_timeout(ring_->get(), &cqe, 1, &ts, nullptr);
    }
    if (rc == -ETIME || rc == -EAGAIN || rc == -EINTR) return 0;
    if (rc < 0) throw EnvError(errno_text("io_uring_submit_and_wait_timeout (multishot recv)", -rc), -rc);
    // The batch is the CQEs posted so far (one read of the CQ tail), and its
    // receive time is taken after that read: a CQE the kernel posts while
    // this batch is accounted waits for the next one, so no packet's kernel
    // stamp can lie after its batch's receive time (wake-up >= 0).
    const unsigned n = io_uring_peek_batch_cqe(ring_->get(), cqes_batch_.data(), unsigned(cqes_batch_.size()));
    acct.begin_batch();
    size_t total = 0;
    for (unsigned i = 0; i < n; ++i) {
      cqe = cqes_batch_[i];
      ++cqes_;
      if (!(cqe->flags & IORING_CQE_F_MORE)) {
        armed_ = false;  // the kernel ended the multishot request: re-arm below
        ++terminations_;
        // A final CQE carrying data: the kernel could not post the next CQE
        // (completion queue full) and ended the request instead.
        if (cqe->res >= 0) ++ended_with_data_;
      }
      if (cqe->res < 0) {
        if (cqe->res == -ENOBUFS)
          ++enobufs_;
        else if (cqe->res != -EINTR && cqe->res != -ECANCELED)
          throw EnvError(errno_text(recvmsg_ ? "multishot recvmsg CQE" : "multishot recv CQE", -cqe->res), -cqe->res);
        continue;
      }
      if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
        ++without_buffer_;
        continue;
      }
      unsigned id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      total += recvmsg_ ? account_msg(acct, id, cqe->res) : account(acct, bufs_->buffer(id), size_t(cqe->res), 0, nullptr);
      bufs_->recycle(id);
    }
    bufs_->publish();
    io_uring_cq_advance(ring_->get(), n);
    if (!armed_) arm();
    return total;
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json j = uring_stats();
    j["timestamps"] = stamps_;
    if (!reuseport_.is_null()) j["reuseport"] = reuseport_;
    return j;
  }

 private:
  nlohmann::json uring_stats() const {
    return {{"op", recvmsg_ ? "recvmsg" : "recv"},
            {"cqes", cqes_},
            {"multishot_terminations", terminations_},
            {"rearms", rearms_},
            {"multishot_ended_with_data", ended_with_data_},
            {"enobufs", enobufs_},
            {"cqes_without_buffer", without_buffer_},
            {"coalesced_reads", coalesced_reads_},
            {"coalesced_datagrams", coalesced_datagrams_},
            {"truncated_reads", truncated_},
            {"control_truncated", control_truncated_},
            {"udp_gro", gro_}};
  }

  void arm() {
    io_uring_sqe* s = ring_->sqe();
    if (recvmsg_)
      io_uring_prep_recvmsg_multishot(s, fd_.get(), &msg_, 0);
    else
      io_uring_prep_recv_multishot(s, fd_.get(), nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = bufs_->group();
    io_uring_sqe_set_data64(s, 1);
    if (armed_once_) ++rearms_;
    armed_once_ = armed_ = true;
  }

  // One read of `len` bytes; gso_size > 0 means it carries several datagrams
  // of that size back to back (the last one may be shorter). A coalesced
  // read has one skb, so one stamp for all its datagrams.
  size_t account(Accounting& acct, const uint8_t* p, size_t len, int gso_size, const KernelStamp* k) {
    auto one = [&](const uint8_t* q, size_t l) { k ? acct.on_packet(q, l, *k) : acct.on_packet(q, l); };
    if (gso_size <= 0 || len <= size_t(gso_size)) {
      one(p, len);
      return 1;
    }
    size_t n = 0;
    for (size_t off = 0; off < len; off += size_t(gso_size), ++n) one(p + off, std::min(size_t(gso_size), len - off));
    ++coalesced_reads_;
    coalesced_datagrams_ += n;
    return n;
  }

  size_t account_msg(Accounting& acct, unsigned id, int res) {
    io_uring_recvmsg_out* o = io_uring_recvmsg_validate(bufs_->buffer(id), res, &msg_);
    if (!o) throw InternalError("multishot recvmsg: CQE of " + std::to_string(res) + " bytes is shorter than its header");
    int gso_size = 0;
    KernelStamp k;
    for (cmsghdr* c = io_uring_recvmsg_cmsg_firsthdr(o, &msg_); c; c = io_uring_recvmsg_cmsg_nexthdr(o, &msg_, c)) {
      if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO)
        std::memcpy(&gso_size, CMSG_DATA(c), sizeof gso_size);
      else
        read_stamp_cmsg(*c, &k);
    }
    // Not fatal: the stamp (or another cmsg) did not fit; the payload is whole.
    if (o->flags & MSG_CTRUNC) ++control_truncated_, acct.on_stamp_truncated();
    auto* payload = static_cast<const uint8_t*>(io_uring_recvmsg_payload(o, &msg_));
    const size_t len = io_uring_recvmsg_payload_length(o, res, &msg_);
    if (o->flags & MSG_TRUNC) {
      // The buffer cut the datagram (o->payloadlen is its real length):
      // corrupt, never a good packet, even when its header still checks out.
      ++truncated_;
      acct.on_truncated(payload, len);
      return 1;
    }
    return account(acct, payload, len, gso_size, &k);
  }

  Fd fd_;
  nlohmann::json reuseport_, stamps_;
  bool busy_ = false, gro_ = false, recvmsg_ = true, armed_ = false, armed_once_ = false;
  std::unique_ptr<Uring> ring_;
  std::unique_ptr<BufferRing> bufs_;
  std::vector<io_uring_cqe*> cqes_batch_;
  msghdr msg_{};
  uint64_t cqes_ = 0, terminations_ = 0, ended_with_data_ = 0, rearms_ = 0, enobufs_ = 0, without_buffer_ = 0;
  uint64_t coalesced_reads_ = 0, coalesced_datagrams_ = 0, truncated_ = 0, control_truncated_ = 0;
};

}  // namespace

DriverInfo io_uring_recv_driver_info() {
  DriverInfo d;
  d.name = "io_uring_recv";
  d.direction = Direction::rx;
  d.description =
      "io_uring multishot recvmsg (kernel RX stamps) or recv on a UDP socket, buffers from a provided-buffer ring, "
      "re-armed when it ends";
  d.options = {{"op", OptionType::choice, "recvmsg",
                "recvmsg: multishot IORING_OP_RECVMSG, SO_TIMESTAMPING RX stamps split latency; recv: multishot "
                "IORING_OP_RECV, payload only (no stamps)",
                0, 0, {"recvmsg", "recv"}},
               {"ring_depth", OptionType::integer, "64", "io_uring SQ entries (the CQ gets twice as many)", 4, 32768, {}},
               {"buffers", OptionType::integer, "1024",
                "provided buffers (power of two); when all are in use the multishot ends with -ENOBUFS", 1, 32768, {}},
               sqpoll_option(),
               {"wait", OptionType::choice, "wait",
                "wait: io_uring_submit_and_wait_timeout for a CQE; busy: spin peeking the CQ (one CPU at 100%)", 0, 0,
                {"wait", "busy"}},
               {"udp_gro", OptionType::boolean, "off",
                "UDP_GRO on the socket (op=recvmsg only: the cmsg carries gso_size); coalesced reads are split by gso_size", 0, 0,
                {}},
               rcvbuf_option(), reuseport_option()};
  d.probe = [] { return probe_io_uring({IORING_OP_RECV, IORING_OP_RECVMSG}, {"IORING_OP_RECV", "IORING_OP_RECVMSG"}); };
  d.make_rx = [] { return std::make_unique<UringRecvSink>(); };
  return d;
}

}  // namespace zc
