// `msg_zerocopy`: SO_ZEROCOPY + send(MSG_ZEROCOPY) (Documentation/networking/
// msg_zerocopy.rst). The kernel pins the user pages instead of copying them
// and later reports on the socket's error queue (MSG_ERRQUEUE, origin
// SO_EE_ORIGIN_ZEROCOPY) the range [ee_info, ee_data] of send ids it has let
// go of; SO_EE_CODE_ZEROCOPY_COPIED says it copied after all — always, when
// the receiver is a local socket (veth included). Until then a buffer must
// not be rewritten, so buffers come from a pool and return on completion.
//
// proto=udp: one connected UDP socket per flow, sendmmsg batches (one id per
// datagram). proto=tcp: one TCP connection per flow to the sink's port
// (a stream sink such as recv:proto=tcp), the flood's fixed-size payloads back
// to back, one sendmsg (one id) per batch.
#include <time.h>
// after time.h: the uapi header uses struct timespec
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/pacer.h"

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

namespace zc {
namespace {

// A buffer covered by a send id in flight (a TCP send id may cover several
// buffers, and a buffer split across two calls is covered by both ids).
struct Pin {
  uint32_t id;
  uint32_t buf;
};

class MsgZerocopyTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    batch_ = size_t(ctx.options.integer("batch"));
    size_t pool = size_t(ctx.options.integer("buffers"));
    if (pool < batch_)
      throw UsageError("tx msg_zerocopy: buffers=" + std::to_string(pool) + " is below batch=" +
                       std::to_string(batch_) + "; accepted: buffers >= batch");
    tcp_ = ctx.options.text("proto") == "tcp";
    if (tcp_ && ctx.mixed_lengths())
      throw UsageError("tx msg_zerocopy proto=tcp: the stream sink cuts records of one payload size, so a "
                       "frame-size mix cannot be framed; give proto=udp or one --size");
    payload_ = ctx.payload_bytes;
    socks_ = tcp_ ? open_tcp_flows(ctx) : open_flow_sockets(ctx);
    for (auto& s : socks_) {
      if (!s.valid()) continue;  // another generator worker's flow
      int one = 1;
      check_sys(setsockopt(s.get(), SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one), "setsockopt(SO_ZEROCOPY)");
    }
    flows_.resize(socks_.size());
    storage_.resize(pool * payload_);
    for (size_t i = 0; i < pool; ++i) {
      ptrs_.push_back(storage_.data() + i * payload_);
      flood_write_payload(ptrs_[i], payload_, FloodHeader{});
      free_.push_back(uint32_t(i));
    }
    pins_.assign(pool, 0);
    iov_.resize(batch_);
    msgs_.resize(batch_);
  }

  size_t max_batch() const override { return batch_; }

  std::span<uint8_t* const> acquire(size_t n) override {
    n = std::min(n, batch_);
    if (acquired_.size() + free_.size() < n) reap_all(0);
    if (acquired_.empty() && free_.empty()) reap_all(100);  // all in flight: wait for completions
    while (acquired_.size() < n && !free_.empty()) {
      acquired_.push_back(free_.front());
      free_.pop_front();
    }
    acquired_ptrs_.clear();
    for (size_t i = 0; i < std::min(n, acquired_.size()); ++i) acquired_ptrs_.push_back(ptrs_[acquired_[i]]);
    return {acquired_ptrs_.data(), acquired_ptrs_.size()};
  }

  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    size_t accepted = 0;
    for (int attempt = 0; attempt < 4 && accepted == 0; ++attempt) {
      accepted = tcp_ ? send_tcp(k, flow) : send_udp(k, flow, lengths);
      if (accepted == SIZE_MAX) {
        // ENOBUFS: optmem or locked-page limit; completions release both.
        ++enobufs_;
        accepted = 0;
        reap_all(attempt ? 10 : 0);
        continue;
      }
      break;
    }
    acquired_.erase(acquired_.begin(), acquired_.begin() + ptrdiff_t(accepted));
    in_flight_ += int64_t(accepted);
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    sent_ += accepted;
    return accepted;
  }

  void flush() override {
    uint64_t deadline = monotonic_ns() + 2000000000ull;
    while (in_flight_ > 0 && monotonic_ns() < deadline) reap_all(10);
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json notes = nlohmann::json::array();
    if (completed_ && copied_ == completed_)
      notes.push_back("every completion was a deferred copy (SO_EE_CODE_ZEROCOPY_COPIED): veth delivers locally, and "
                      "a local receive copies zero-copy pages (skb_orphan_frags_rx)");
    if (in_flight_) notes.push_back(std::to_string(in_flight_) + " sends still uncompleted 2 s after the flood");
    return {{"proto", tcp_ ? "tcp" : "udp"},
            {"sends", sent_},
            {"send_calls", send_calls_},
            {"send_ids", ids_issued_},
            {"completion_notifications", notifications_},
            {"completed_ids", completed_},
            {"coalesced_notifications", coalesced_},
            {"largest_range", largest_range_},
            {"copied_ids", copied_},
            {"zerocopy_ids", completed_ - copied_},
            {"enobufs_retries", enobufs_},
            {"max_buffers_in_flight", max_in_flight_},
            {"buffers_in_flight_at_end", in_flight_},
            {"buffers", ptrs_.size()},
            {"notes", notes}};
  }

 private:
  struct FlowState {
    uint32_t next_id = 0;
    std::deque<Pin> pending;  // in id order
  };

  static std::vector<Fd> open_tcp_flows(const TxContext& ctx) {
    std::vector<Fd> socks;
    for (int f = 0; f < ctx.flows; ++f) {
      Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      check_sys(fd.get(), "socket(AF_INET, SOCK_STREAM)");
      timeval tv{0, 100000};
      check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), "setsockopt(SO_SNDTIMEO)");
      int one = 1;
      check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), "setsockopt(SO_REUSEADDR)");
      sockaddr_in src{AF_INET, htons(uint16_t(ctx.src_port + f)), ctx.src_ip, {}};
      check_sys(bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src), "bind TCP " + ipv4_to_string(ctx.src_ip));
      sockaddr_in dst{AF_INET, htons(ctx.dst_port), ctx.dst_ip, {}};
      if (connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) < 0)
        throw EnvError(errno_text("connect TCP " + ipv4_to_string(ctx.dst_ip) + ":" + std::to_string(ctx.dst_port) +
                                      " (proto=tcp needs a stream sink, e.g. --rx recv:proto=tcp)",
                                  errno),
                       errno);
      socks.push_back(std::move(fd));
    }
    return socks;
  }

  // Returns datagrams sent, or SIZE_MAX on ENOBUFS with none sent.
  size_t send_udp(size_t k, int flow, std::span<const size_t> lengths) {
    for (size_t i = 0; i < k; ++i) {
      iov_[i] = {acquired_ptrs_[i], lengths[i]};
      msgs_[i] = {};
      msgs_[i].msg_hdr.msg_iov = &iov_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
    ++send_calls_;
    int n = sendmmsg(socks_[size_t(flow)].get(), msgs_.data(), unsigned(k), MSG_ZEROCOPY);
    if (n < 0) {
      if (errno == ENOBUFS) return SIZE_MAX;
      if (errno == EAGAIN || errno == EINTR) return 0;
      throw EnvError(errno_text("sendmmsg(MSG_ZEROCOPY)", errno), errno);
    }
    // Each datagram is its own send call inside sendmmsg: one id each.
    FlowState& fs = flows_[size_t(flow)];
    for (int i = 0; i < n; ++i) pin(fs, fs.next_id++, acquired_[size_t(i)]);
    ids_issued_ += uint64_t(n);
    return size_t(n);
  }

  void pin(FlowState& fs, uint32_t id, uint32_t buf) {
    fs.pending.push_back({id, buf});
    ++pins_[buf];
  }

  // The whole batch as one stream write; a record is never left half sent, so
  // the sink's framing holds.
  size_t send_tcp(size_t k, int flow) {
    int fd = socks_[size_t(flow)].get();
    size_t total = k * payload_, done = 0;
    bool first = true;
    uint64_t deadline = monotonic_ns() + 2000000000ull;
    while (done < total) {
      size_t skip = done;
      size_t iovcnt = 0;
      for (size_t i = 0; i < k; ++i) {
        size_t start = i * payload_;
        if (start + payload_ <= skip) continue;
        size_t off = skip > start ? skip - start : 0;
        iov_[iovcnt++] = {acquired_ptrs_[i] + off, payload_ - off};
      }
      msghdr m{};
      m.msg_iov = iov_.data();
      m.msg_iovlen = iovcnt;
      ++send_calls_;
      ssize_t n = sendmsg(fd, &m, MSG_ZEROCOPY | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == ENOBUFS && first) return SIZE_MAX;
        if ((errno == EAGAIN || errno == EINTR || errno == ENOBUFS) && done % payload_ == 0) break;
        if ((errno == EAGAIN || errno == EINTR || errno == ENOBUFS) && monotonic_ns() < deadline) {
          if (errno == ENOBUFS) reap_all(10);
          continue;  // mid-record: finish it
        }
        throw EnvError(errno_text("sendmsg(MSG_ZEROCOPY) on TCP", errno), errno);
      }
      if (n > 0) {
        FlowState& fs = flows_[size_t(flow)];
        // One id per successful call; the buffers it touched stay pinned
        // until that id completes.
        size_t lo = done / payload_, hi = (done + size_t(n) - 1) / payload_;
        for (size_t i = lo; i <= hi; ++i) pin(fs, fs.next_id, acquired_[i]);
        ++fs.next_id;
        ++ids_issued_;
      }
      done += size_t(n);
      first = false;
    }
    return done / payload_;
  }

  // Reads every completion waiting on every socket; with timeout_ms > 0 first
  // waits that long for one (POLLERR).
  void reap_all(int timeout_ms) {
    if (timeout_ms > 0) {
      std::vector<pollfd> pfds;
      for (auto& s : socks_) pfds.push_back({s.get(), 0, 0});  // POLLERR is always reported
      poll(pfds.data(), pfds.size(), timeout_ms);
    }
    for (size_t f = 0; f < socks_.size(); ++f)
      if (socks_[f].valid()) reap(f);
  }

  void reap(size_t flow) {
    alignas(cmsghdr) char control[128];
    for (;;) {
      msghdr m{};
      m.msg_control = control;
      m.msg_controllen = sizeof control;
      ssize_t rc = recvmsg(socks_[flow].get(), &m, MSG_ERRQUEUE | MSG_DONTWAIT);
      if (rc < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        throw EnvError(errno_text("recvmsg(MSG_ERRQUEUE)", errno), errno);
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
              (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
          continue;
        const auto* ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
        if (ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee->ee_errno != 0) {
          ++other_errors_;
          continue;
        }
        complete(flow, ee->ee_info, ee->ee_data, ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED);
      }
    }
  }

  // Ids lo..hi of `flow` completed.
  void complete(size_t flow, uint32_t lo, uint32_t hi, bool copied) {
    uint64_t range = uint64_t(hi - lo) + 1;
    ++notifications_;
    completed_ += range;
    if (copied) copied_ += range;
    if (range > 1) ++coalesced_;
    largest_range_ = std::max(largest_range_, range);
    FlowState& fs = flows_[size_t(flow)];
    for (auto it = fs.pending.begin(); it != fs.pending.end();) {
      if (int32_t(it->id - lo) >= 0 && int32_t(hi - it->id) >= 0) {
        unpin(it->buf);
        it = fs.pending.erase(it);
      } else {
        ++it;
      }
    }
  }

  // A buffer whose every covering id completed goes back to the pool.
  void unpin(uint32_t buf) {
    if (--pins_[buf] > 0) return;
    free_.push_back(buf);
    --in_flight_;
  }

  size_t batch_ = 0;
  size_t payload_ = 0;
  bool tcp_ = false;
  std::vector<Fd> socks_;
  std::vector<FlowState> flows_;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
  std::deque<uint32_t> free_, acquired_;
  std::vector<uint8_t*> acquired_ptrs_;
  std::vector<uint32_t> pins_;  // per buffer: pending ids covering it
  std::vector<iovec> iov_;
  std::vector<mmsghdr> msgs_;
  int64_t in_flight_ = 0, max_in_flight_ = 0;  // buffers
  uint64_t sent_ = 0, send_calls_ = 0, ids_issued_ = 0, notifications_ = 0, completed_ = 0, coalesced_ = 0;
  uint64_t largest_range_ = 0, copied_ = 0, enobufs_ = 0, other_errors_ = 0;
};

}  // namespace

DriverInfo msg_zerocopy_driver_info() {
  DriverInfo d;
  d.name = "msg_zerocopy";
  d.direction = Direction::tx;
  d.description = "SO_ZEROCOPY + MSG_ZEROCOPY sends, completions read from MSG_ERRQUEUE; UDP (sendmmsg) or TCP";
  d.options = {{"batch", OptionType::integer, "32", "datagrams per sendmmsg call (TCP: payloads per sendmsg)", 1, 1024, {}},
               {"buffers", OptionType::integer, "1024", "payload buffers in the pool (pinned until completed)", 1,
                65536, {}},
               {"proto", OptionType::choice, "udp",
                "udp: datagrams to the sink; tcp: a stream to the sink's port (needs a stream sink)", 0, 0,
                {"udp", "tcp"}},
               sndbuf_option()};
  d.tx_mixed_lengths = true;  // proto=udp only: open() refuses a mix on proto=tcp
  d.probe = [] {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Usability{false, errno_text("socket(AF_INET, SOCK_DGRAM)", errno)};
    int one = 1;
    Usability u;
    if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) < 0)
      u = {false, errno_text("setsockopt(SO_ZEROCOPY) on UDP", errno)};
    close(fd);
    return u;
  };
  d.make_tx = [] { return std::make_unique<MsgZerocopyTx>(); };
  return d;
}

}  // namespace zc
