// `splice`: socket → pipe (splice(2)) → /dev/null or a file (splice(2) again).
//
// proto=udp: one datagram per splice call (a UDP socket has no batched splice
// read: the kernel reads one datagram into the pipe per call); proto=tcp: one
// splice per readable connection, as much as the pipe holds, reframed into
// flood messages (stream mode, drivers/tcp_stream.h).
//
// Accounting. With accounting=count the payload never reaches user space:
// packets are counted from splice's return values (UDP: one datagram per
// call, its length returned; TCP: bytes / payload_bytes per connection).
// With accounting=full every message is still checked, from what the path
// actually carried: target=null duplicates the pipe with tee(2) and reads the
// copy; target=file reads back (pread) the range just spliced into the file.
// That copy costs CPU, so speed figures for the zero-copy path come from
// accounting=count; full stays the default so the sink is usable as is and
// integrity is verified end to end (conformance runs it).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "drivers/drivers.h"
#include "drivers/splice_util.h"
#include "drivers/tcp_stream.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"

namespace zc {
namespace {

class SpliceSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    busy_ = ctx.options.text("wait") == "busy";
    full_ = ctx.options.text("accounting") == "full";
    pipe_ = open_pipe(ctx.options.integer("pipe_size"));
    if (ctx.options.text("target") == "file") {
      file_max_ = uint64_t(ctx.options.integer("file_max"));
      if (file_max_ < pipe_.capacity)
        throw UsageError("rx splice file_max " + std::to_string(file_max_) + " is below the pipe capacity " +
                         std::to_string(pipe_.capacity) + "; accepted: file_max >= pipe_size");
      target_ = open_scratch_file(ctx.options.text("dir"));
      target_fs_ = filesystem_type(target_.get());
    } else {
      target_ = Fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
      check_sys(target_.get(), "open(/dev/null)");
    }
    if (full_) {
      if (!file_max_) tee_ = open_pipe(int64_t(pipe_.capacity));
      copy_.resize(pipe_.capacity);
    }
    if (proto_is_tcp(ctx.options)) {
      tcp_ = std::make_unique<TcpStreamSink>();
      tcp_->open_worker(ctx);
      return;
    }
    sock_ = open_udp_worker_socket(ctx, &reuseport_);
    // A UDP splice read honours the socket's O_NONBLOCK, not SPLICE_F_NONBLOCK
    // (it is a plain read of one datagram into pipe pages).
    check_sys(fcntl(sock_.get(), F_SETFL, fcntl(sock_.get(), F_GETFL) | O_NONBLOCK), "fcntl(O_NONBLOCK)");
    datagram_max_ = receive_buffer_bytes(ctx.mtu, ctx.payload_bytes);
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    if (tcp_) return receive_stream(acct, timeout_ms);
    if (!busy_ && !wait_readable(sock_.get(), timeout_ms)) return 0;
    size_t n = 0;
    while (n < 256) {
      ssize_t len = splice(sock_.get(), nullptr, pipe_.write_end.get(), nullptr, datagram_max_, SPLICE_F_NONBLOCK);
      if (len < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        throw EnvError(errno_text("splice(UDP socket -> pipe)", errno), errno);
      }
      ++splice_reads_;
      acct.begin_batch();
      const uint8_t* payload = deliver(size_t(len));
      acct.on_packet(payload ? payload : kNothing, size_t(len));
      ++n;
    }
    return n;
  }

  nlohmann::json kernel_stats() override {
    nlohmann::json j = {{"splice_reads", splice_reads_},
                        {"bytes_spliced", bytes_},
                        {"pipe_capacity", pipe_.capacity},
                        {"target", file_max_ ? "file" : "null"},
                        {"payload_read_to_user_space", full_}};
    if (file_max_) j["target_filesystem"] = target_fs_;
    if (tcp_) j.update(tcp_->stats());
    if (!reuseport_.is_null()) j["reuseport"] = reuseport_;
    return j;
  }

 private:
  static constexpr uint8_t kNothing[1] = {0};

  size_t receive_stream(Accounting& acct, int timeout_ms) {
    size_t n = 0;
    for (TcpStreamSink::Conn* c : tcp_->wait(busy_ ? 0 : timeout_ms)) {
      ssize_t len = splice(c->fd.get(), nullptr, pipe_.write_end.get(), nullptr, pipe_.capacity, SPLICE_F_NONBLOCK);
      if (len < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        throw EnvError(errno_text("splice(TCP socket -> pipe)", errno), errno);
      }
      if (len == 0) {
        tcp_->close(c);
        continue;
      }
      ++splice_reads_;
      acct.begin_batch();
      const uint8_t* bytes = deliver(size_t(len));
      n += bytes ? c->framer.feed(bytes, size_t(len), acct) : c->framer.feed_count(size_t(len), acct);
    }
    return n;
  }

  // Moves the `len` bytes now in the pipe to the target; with full
  // accounting returns them as the path carried them, else nullptr.
  const uint8_t* deliver(size_t len) {
    bytes_ += len;
    const uint8_t* copy = nullptr;
    if (full_ && !file_max_) {
      // tee leaves the pipe as it is, so the same pages still go to the target.
      ssize_t t = tee(pipe_.read_end.get(), tee_.write_end.get(), len, 0);
      if (t != ssize_t(len)) fail_short("tee(pipe -> pipe)", t, len);
      read_exact(tee_.read_end.get(), len);
      copy = copy_.data();
    }
    if (file_max_ && uint64_t(file_off_) + len > file_max_) file_off_ = 0;
    const loff_t off = file_off_;  // wrap: the file is a bounded scratch area
    for (size_t left = len; left;) {
      ssize_t w = file_max_ ? splice(pipe_.read_end.get(), nullptr, target_.get(), &file_off_,
                                     left, 0)
                            : splice(pipe_.read_end.get(), nullptr, target_.get(), nullptr, left, 0);
      if (w <= 0) fail_short(file_max_ ? "splice(pipe -> file)" : "splice(pipe -> /dev/null)", w, left);
      left -= size_t(w);
    }
    if (full_ && file_max_) {
      ssize_t r = pread(target_.get(), copy_.data(), len, off_t(off));
      if (r != ssize_t(len)) fail_short("pread(file)", r, len);
      copy = copy_.data();
    }
    return copy;
  }

  void read_exact(int fd, size_t len) {
    for (size_t got = 0; got < len;) {
      ssize_t r = ::read(fd, copy_.data() + got, len - got);
      if (r <= 0) fail_short("read(tee pipe)", r, len - got);
      got += size_t(r);
    }
  }

  [[noreturn]] static void fail_short(const std::string& what, ssize_t got, size_t want) {
    if (got < 0) throw EnvError(errno_text(what, errno), errno);
    throw InternalError(what + " moved " + std::to_string(got) + " of " + std::to_string(want) + " bytes");
  }

  bool busy_ = false;
  bool full_ = true;
  Pipe pipe_, tee_;
  Fd target_;
  std::string target_fs_;
  uint64_t file_max_ = 0;  // 0: target is /dev/null
  loff_t file_off_ = 0;   // next write offset in the file
  Fd sock_;
  size_t datagram_max_ = 0;
  std::unique_ptr<TcpStreamSink> tcp_;
  nlohmann::json reuseport_;
  std::vector<uint8_t> copy_;
  uint64_t splice_reads_ = 0;
  uint64_t bytes_ = 0;
};

Usability probe_splice() {
  // splice between a pipe and /dev/null: no traffic, just the syscall.
  try {
    Pipe p = open_pipe(0);
    Fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    check_sys(null.get(), "open(/dev/null)");
    check_sys(::write(p.write_end.get(), "x", 1), "write(pipe)");
    check_sys(splice(p.read_end.get(), nullptr, null.get(), nullptr, 1, 0), "splice(pipe -> /dev/null)");
  } catch (const EnvError& e) {
    return Usability{false, e.what()};
  }
  return Usability{};
}

}  // namespace

DriverInfo splice_driver_info() {
  DriverInfo d;
  d.name = "splice";
  d.direction = Direction::rx;
  d.description =
      "socket -> pipe -> /dev/null or a file with splice(2); udp: one datagram per call; tcp: stream, reframed";
  d.options = {proto_option(),
               {"target", OptionType::choice, "null", "where the pipe is spliced to: null (/dev/null) or file", 0, 0,
                {"null", "file"}},
               {"dir", OptionType::text, "/dev/shm",
                "directory of the target file (target=file; tmpfs by default, a disk directory for a regular file)", 0,
                0, {}},
               {"file_max", OptionType::size, "64M",
                "target file size bound: writes wrap to offset 0 beyond it (target=file)", 4096, 1ll << 40, {}},
               pipe_size_option("1M"),
               rcvbuf_option(),
               wait_option(),
               reuseport_option()};
  d.probe = probe_splice;
  d.make_rx = [] { return std::make_unique<SpliceSink>(); };
  return d;
}

}  // namespace zc
