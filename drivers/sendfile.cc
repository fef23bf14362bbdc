// `sendfile`: a file pre-filled with flood messages → socket (sendfile(2)).
//
// The file holds a ring of message slots (`file_size` bytes), each a complete
// flood payload written once at open. The flood header must carry live
// sequence numbers, so each slot's header is rewritten just before its
// sendfile: stamp=mmap stamps it in place through a shared mapping of the
// file (no syscall; the generator writes the page cache), stamp=pwrite stamps
// a user buffer and pwrite(2)s the 24 header bytes into the slot. Why a ring
// of slots rather than one slot rewritten each time: sendfile passes page
// cache pages to the socket by reference (MSG_SPLICE_PAGES), so a datagram
// still queued at the sink points into the file; a slot is reused only after
// the ring wrapped; a ring too small shows up at the sink as duplicated and
// missing sequence numbers (a datagram carrying a later header), never silently.
//
// proto=udp: one sendfile per datagram (one call never spans datagrams);
// proto=tcp: a batch is a contiguous file range sent in `chunk`-byte calls,
// and flow control makes commit() wait, it never refuses.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
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

class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr_) munmap(addr_, len_);
  }
  void map(int fd, size_t len) {
    void* a = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a == MAP_FAILED) throw EnvError(errno_text("mmap(scratch file, MAP_SHARED)", errno), errno);
    addr_ = static_cast<uint8_t*>(a);
    len_ = len;
  }
  uint8_t* data() const { return addr_; }

 private:
  uint8_t* addr_ = nullptr;
  size_t len_ = 0;
};

class SendfileTx : public TxDriver {
 public:
  void open(const TxContext& ctx) override {
    tcp_ = proto_is_tcp(ctx.options);
    pwrite_ = ctx.options.text("stamp") == "pwrite";
    if (tcp_ && ctx.mixed_lengths())
      throw UsageError("tx sendfile proto=tcp: the stream sink cuts records of one payload size, so a "
                       "frame-size mix cannot be framed; give proto=udp or one --size");
    payload_ = ctx.payload_bytes;
    batch_ = size_t(ctx.options.integer("batch"));
    chunk_ = size_t(ctx.options.integer("chunk"));
    if (!tcp_ && chunk_)
      throw UsageError("tx sendfile chunk=" + std::to_string(chunk_) +
                       " applies to proto=tcp only: UDP sends one datagram per sendfile call; accepted: chunk=0");
    slots_ = std::max(batch_ * 2, size_t(ctx.options.integer("file_size")) / payload_);
    file_ = open_scratch_file(ctx.options.text("dir"));
    fs_ = filesystem_type(file_.get());
    const size_t bytes = slots_ * payload_;
    if (ftruncate(file_.get(), off_t(bytes)) < 0)
      throw EnvError(errno_text("ftruncate(scratch file, " + std::to_string(bytes) + ")", errno), errno);
    map_.map(file_.get(), bytes);
    for (size_t i = 0; i < slots_; ++i) flood_write_payload(map_.data() + i * payload_, payload_, FloodHeader{});
    if (pwrite_) {
      staging_.resize(batch_ * payload_);
      for (size_t i = 0; i < batch_; ++i) {
        staging_ptrs_.push_back(staging_.data() + i * payload_);
        flood_write_payload(staging_ptrs_[i], payload_, FloodHeader{});
      }
      header_ = std::min(payload_, kFloodExtendedMin);
    }
    for (size_t i = 0; i < slots_; ++i) slot_ptrs_.push_back(map_.data() + i * payload_);
    socks_ = tcp_ ? open_tcp_flow_sockets(ctx, "tx sendfile") : open_flow_sockets(ctx);
  }

  size_t max_batch() const override { return batch_; }

  std::span<uint8_t* const> acquire(size_t n) override {
    n = std::min(n, batch_);
    if (head_ + n > slots_) head_ = 0;  // a batch is one contiguous file range
    return pwrite_ ? std::span<uint8_t* const>{staging_ptrs_.data(), n}
                   : std::span<uint8_t* const>{slot_ptrs_.data() + head_, n};
  }

  // A mix: slots stay payload_ (the largest) apart; datagram i is the first
  // lengths[i] bytes of its slot.
  size_t commit(size_t k, int flow, std::span<const size_t> lengths) override {
    const int sock = socks_[size_t(flow)].get();
    if (pwrite_)
      for (size_t i = 0; i < k; ++i) {
        ssize_t w = pwrite(file_.get(), staging_ptrs_[i], header_, off_t((head_ + i) * payload_));
        if (w != ssize_t(header_)) throw EnvError(errno_text("pwrite(slot header)", w < 0 ? errno : EIO), errno);
        ++pwrite_calls_;
      }
    size_t done = 0;
    if (tcp_) {
      stream_out(sock, off_t(head_ * payload_), k * payload_);
      done = k;
    } else {
      for (; done < k; ++done) {
        off_t off = off_t((head_ + done) * payload_);
        ssize_t w = sendfile(sock, file_.get(), &off, lengths[done]);
        ++sendfile_calls_;
        if (w < 0) {
          if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) break;
          throw EnvError(errno_text("sendfile(file -> UDP socket)", errno), errno);
        }
        if (size_t(w) != lengths[done])
          throw InternalError("sendfile to a UDP socket sent " + std::to_string(w) + " of " +
                              std::to_string(lengths[done]) + " bytes");
      }
    }
    head_ += done;
    return done;
  }

  nlohmann::json kernel_stats() override {
    return {{"sendfile_calls", sendfile_calls_}, {"pwrite_calls", pwrite_calls_}, {"file_filesystem", fs_},
            {"ring_slots", slots_},              {"stamp", pwrite_ ? "pwrite" : "mmap"}};
  }

 private:
  void stream_out(int sock, off_t off, size_t len) {
    StallGuard guard("sendfile(file -> TCP socket)");
    while (len) {
      ssize_t w = sendfile(sock, file_.get(), &off, chunk_ ? std::min(chunk_, len) : len);
      ++sendfile_calls_;
      if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) throw EnvError(errno_text("sendfile(file -> TCP socket)", errno), errno);
        w = 0;  // SO_SNDTIMEO expired: flow control, wait on (sendfile advanced `off` by what it sent)
      }
      guard.progress(size_t(w));
      len -= size_t(w);
    }
  }

  bool tcp_ = false, pwrite_ = false;
  size_t payload_ = 0, batch_ = 0, chunk_ = 0, slots_ = 0, head_ = 0, header_ = 0;
  Fd file_;
  std::string fs_;
  Mapping map_;
  std::vector<uint8_t*> slot_ptrs_;
  std::vector<uint8_t> staging_;
  std::vector<uint8_t*> staging_ptrs_;
  std::vector<Fd> socks_;
  uint64_t sendfile_calls_ = 0, pwrite_calls_ = 0;
};

}  // namespace

DriverInfo sendfile_driver_info() {
  DriverInfo d;
  d.name = "sendfile";
  d.direction = Direction::tx;
  d.description = "file of prebuilt flood messages -> socket with sendfile(2); udp: one datagram per call";
  d.options = {proto_option(),
               {"dir", OptionType::text, "/dev/shm",
                "directory of the message file (tmpfs by default; a disk directory such as /var/tmp for a "
                "regular file)",
                0, 0, {}},
               {"file_size", OptionType::size, "64M",
                "message file (a ring of slots): a slot is rewritten only after the ring wrapped, because queued "
                "skbs still reference its page-cache page",
                1 << 20, 1ll << 34, {}},
               {"stamp", OptionType::choice, "mmap",
                "how live headers reach the file: mmap (stamped in place through a shared mapping) or pwrite "
                "(24 header bytes per message)",
                0, 0, {"mmap", "pwrite"}},
               {"chunk", OptionType::size, "0", "proto=tcp: bytes per sendfile call (0: a whole batch per call)", 0,
                1ll << 30, {}},
               {"batch", OptionType::integer, "32", "messages per pacing step", 1, 1024, {}},
               sndbuf_option()};
  d.tx_mixed_lengths = true;  // proto=udp only: open() refuses a mix on proto=tcp
  d.probe = [] { return Usability{}; };
  d.make_tx = [] { return std::make_unique<SendfileTx>(); };
  return d;
}

}  // namespace zc
