// `vmsplice`: user pages → pipe (vmsplice(2)) → socket (splice(2)).
//
// header=splice: the whole payload goes through the pipe. vmsplice hands the
// pipe *references* to the user pages and splice passes them on to the
// socket (MSG_SPLICE_PAGES): nothing is copied, so a page must not be
// rewritten while an skb still points at it — on veth the receiving socket's
// queue holds the sender's pages until the sink reads them. The payloads
// therefore live in a ring (`ring` bytes) and a slot is restamped only after
// the ring wrapped; the ring must exceed what the kernel can still hold (the
// sink's receive buffer, the backlog, the pipe). A ring too small never passes
// silently: queued datagrams then carry a later header (measured: ring=1M into
// recv:rcvbuf=64M at 1472 bytes gave 2182 duplicates and as many gaps, status
// fail), or a torn one (checksum: corrupt).
// header=send: the header (24 bytes, or the whole 18..23-byte payload) goes by
// a normal send(MSG_MORE), copied; only the body is spliced. The body is the
// same for every message, so its pages never change and need no ring.
//
// proto=udp: one vmsplice and one splice per datagram (the "one vmsplice per
// packet" of claim 3); a splice call without MSG_MORE ends the datagram.
// proto=tcp: header=splice moves a whole batch per vmsplice; the socket's flow
// control makes commit() wait, it never refuses.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/splice_util.h"
#include "drivers/tcp_stream.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

class VmspliceTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    tcp_ = proto_is_tcp(ctx.options);
    header_send_ = ctx.options.text("header") == "send";
    if (tcp_ && ctx.mixed_lengths())
      throw UsageError("tx vmsplice proto=tcp: the stream sink cuts records of one payload size, so a "
                       "frame-size mix cannot be framed; give proto=udp or one --size");
    if (header_send_ && ctx.mixed_lengths() && ctx.min_payload_bytes <= kFloodExtendedMin)
      throw UsageError("tx vmsplice header=send needs a body to splice in every datagram: the mix's smallest "
                       "payload is " + std::to_string(ctx.min_payload_bytes) + " bytes; accepted: frames above " +
                       std::to_string(kFloodExtendedMin + 46) + " bytes, or header=splice");
    payload_ = ctx.payload_bytes;
    batch_ = size_t(ctx.options.integer("batch"));
    if (header_send_) {
      header_ = std::min(payload_, kFloodExtendedMin);
      if (payload_ <= header_)
        throw UsageError("tx vmsplice header=send needs a body to splice: payload " + std::to_string(payload_) +
                         " bytes; accepted: more than " + std::to_string(kFloodExtendedMin) + " bytes");
      slots_ = batch_;
    } else {
      slots_ = std::max(batch_ * 2, size_t(ctx.options.integer("ring")) / payload_);
    }
    storage_.resize(slots_ * payload_);
    for (size_t i = 0; i < slots_; ++i) {
      ptrs_.push_back(storage_.data() + i * payload_);
      flood_write_payload(ptrs_[i], payload_, FloodHeader{});
    }
    // One pipe per flow: a stream's bytes must not mix with another flow's.
    for (int f = 0; f < ctx.flows; ++f) {
      pipes_.push_back(open_pipe(ctx.options.integer("pipe_size")));
      if (pipes_.back().capacity < payload_ + 2 * 4096)
        throw UsageError("tx vmsplice pipe_size " + std::to_string(pipes_.back().capacity) +
                         " cannot hold one " + std::to_string(payload_) + "-byte payload; accepted: >= " +
                         std::to_string(payload_ + 2 * 4096));
    }
    socks_ = tcp_ ? open_tcp_flow_sockets(ctx, "tx vmsplice") : open_flow_sockets(ctx);
    null_ = Fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    check_sys(null_.get(), "open(/dev/null)");
  }

  size_t max_batch() const override { return batch_; }

  std::span<uint8_t* const> acquire(size_t n) override {
    n = std::min(n, batch_);
    if (header_send_) return {ptrs_.data(), n};
    if (head_ + n > slots_) head_ = 0;  // a batch is contiguous, so TCP moves it in one vmsplice
    return {ptrs_.data() + head_, n};
  }

  // A mix (UDP): slots stay payload_ (the largest) apart; datagram i is the
  // first lengths[i] bytes of its slot.
  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    const Pipe& pipe = pipes_[size_t(flow)];
    const int sock = socks_[size_t(flow)].get();
    size_t done = 0;
    if (tcp_ && !header_send_) {
      stream_out(pipe, sock, ptrs_[head_], k * payload_);
      done = k;
    } else {
      for (; done < k; ++done) {
        const uint8_t* p = header_send_ ? ptrs_[done] : ptrs_[head_ + done];
        if (!send_one(pipe, sock, p, lengths[done])) break;
      }
    }
    if (!header_send_) head_ += done;
    return done;
  }

  nlohmann::json kernel_stats() override {
    return {{"vmsplice_calls", vmsplice_calls_},
            {"splice_calls", splice_calls_},
            {"send_calls", send_calls_},
            {"pipe_capacity", pipes_.empty() ? 0 : pipes_[0].capacity},
            {"ring_slots", header_send_ ? 0 : slots_},
            {"discarded_after_refusal", discarded_}};
  }

 private:
  // One message: (header by send,) payload or body through the pipe. UDP: one
  // datagram; false when the socket refused it (nothing of it was sent).
  bool send_one(const Pipe& pipe, int sock, const uint8_t* p, size_t payload) {
    const uint8_t* spliced = p;
    size_t len = payload;
    if (header_send_) {
      if (!send_header(sock, p)) return false;
      spliced = ptrs_[0] + header_;  // every body is the same bytes (a prefix of the largest)
      len = payload - header_;
    }
    vmsplice_all(pipe, spliced, len);
    if (tcp_) {
      splice_all_to_stream(pipe.read_end.get(), sock, len, "splice(pipe -> TCP socket)");
      ++splice_calls_;
      return true;
    }
    // With the header corked, the body must follow or the next datagram
    // would carry two headers: wait (bounded) rather than refuse.
    for (StallGuard g("splice(pipe -> UDP socket)");;) {
      ssize_t w = splice(pipe.read_end.get(), nullptr, sock, nullptr, len, 0);
      ++splice_calls_;
      if (w == ssize_t(len)) return true;
      if (w >= 0) throw InternalError("splice to a UDP socket sent " + std::to_string(w) + " of " + std::to_string(len) + " bytes");
      if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
        throw EnvError(errno_text("splice(pipe -> UDP socket)", errno), errno);
      if (!header_send_) {
        // Refused: empty the pipe so the next datagram starts clean.
        check_sys(splice(pipe.read_end.get(), nullptr, null_.get(), nullptr, len, 0), "splice(pipe -> /dev/null)");
        ++discarded_;
        return false;
      }
      g.progress(0);
    }
  }

  // The header by a normal, copying send; MSG_MORE keeps the UDP datagram
  // open for the spliced body. False when a UDP socket refused it.
  bool send_header(int sock, const uint8_t* p) {
    StallGuard guard("send(header, MSG_MORE)");
    for (size_t left = header_; left;) {
      ssize_t s = ::send(sock, p, left, MSG_MORE);
      ++send_calls_;
      if (s > 0) {
        if (!tcp_ && size_t(s) != left)
          throw InternalError("send(header) sent " + std::to_string(s) + " of " + std::to_string(left) + " bytes");
        p += s;
        left -= size_t(s);
        guard.progress(size_t(s));
        continue;
      }
      if (s < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
        throw EnvError(errno_text("send(header, MSG_MORE)", errno), errno);
      if (!tcp_) return false;  // nothing corked yet: a clean refusal
      guard.progress(0);
    }
    return true;
  }

  void vmsplice_all(const Pipe& pipe, const uint8_t* p, size_t len) {
    while (len) {
      iovec iov{const_cast<uint8_t*>(p), len};
      ssize_t v = vmsplice(pipe.write_end.get(), &iov, 1, 0);
      ++vmsplice_calls_;
      if (v <= 0) {
        if (v < 0 && errno == EINTR) continue;
        throw EnvError(errno_text("vmsplice", v < 0 ? errno : EIO), v < 0 ? errno : EIO);
      }
      p += v;
      len -= size_t(v);
    }
  }

  // TCP, header=splice: as much of the batch per vmsplice as the pipe takes.
  void stream_out(const Pipe& pipe, int sock, const uint8_t* p, size_t len) {
    while (len) {
      size_t chunk = std::min(len, pipe.capacity);
      vmsplice_all(pipe, p, chunk);
      splice_all_to_stream(pipe.read_end.get(), sock, chunk, "splice(pipe -> TCP socket)");
      ++splice_calls_;
      p += chunk;
      len -= chunk;
    }
  }

  bool tcp_ = false;
  bool header_send_ = false;
  size_t payload_ = 0, header_ = 0, batch_ = 0, slots_ = 0, head_ = 0;
  std::vector<uint8_t> storage_;
  std::vector<uint8_t*> ptrs_;
  std::vector<Pipe> pipes_;
  std::vector<Fd> socks_;
  Fd null_;
  uint64_t vmsplice_calls_ = 0, splice_calls_ = 0, send_calls_ = 0, discarded_ = 0;
};

Usability probe_vmsplice() {
  try {
    Pipe p = open_pipe(0);
    char byte = 'x';
    iovec iov{&byte, 1};
    check_sys(vmsplice(p.write_end.get(), &iov, 1, 0), "vmsplice");
  } catch (const EnvError& e) {
    return Usability{false, e.what()};
  }
  return Usability{};
}

}  // namespace

DriverInfo vmsplice_driver_info() {
  DriverInfo d;
  d.name = "vmsplice";
  d.direction = Direction::tx;
  d.description = "user pages -> pipe (vmsplice(2)) -> socket (splice(2)); udp: one of each per datagram";
  d.options = {proto_option(),
               {"header", OptionType::choice, "splice",
                "splice: the whole payload through the pipe; send: header by send(MSG_MORE), body spliced", 0, 0,
                {"splice", "send"}},
               {"batch", OptionType::integer, "32", "messages per pacing step", 1, 1024, {}},
               {"ring", OptionType::size, "64M",
                "payload ring (header=splice): a slot is rewritten only after the ring wrapped, because the kernel "
                "still references spliced pages; must exceed the sink's receive buffer plus backlog",
                1 << 20, 1ll << 32, {}},
               pipe_size_option("1M"),
               sndbuf_option()};
  d.tx_mixed_lengths = true;  // proto=udp only: open() refuses a mix on proto=tcp
  d.probe = probe_vmsplice;
  d.make_tx = [] { return std::make_unique<VmspliceTx>(); };
  return d;
}

}  // namespace zc
