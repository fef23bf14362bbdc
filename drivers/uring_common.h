// io_uring pieces the three io_uring transports share (io_uring_recv,
// io_uring_send, io_uring_send_zc): ring set-up with the kernel's reason on
// failure, opcode probing, a provided-buffer ring (liburing 2.3 from Debian
// has no io_uring_setup_buf_ring, so it is built here), and the common options.
#pragma once
#include <liburing.h>

#include <cstdint>
#include <string>
#include <vector>

#include "harness/driver.h"
#include "harness/options.h"

namespace zc {

// Kernel 6.0/6.2 uapi bits that liburing 2.3's header predates.
inline constexpr uint16_t kSendZcReportUsage = 1U << 3;         // IORING_SEND_ZC_REPORT_USAGE
inline constexpr uint32_t kNotifUsageZcCopied = 1U << 31;       // IORING_NOTIF_USAGE_ZC_COPIED

class Uring {
 public:
  // io_uring_queue_init_params with `entries` SQ entries; SQPOLL when asked
  // (idle 50 ms). Throws EnvError with the kernel's reason.
  Uring(unsigned entries, bool sqpoll);
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;
  io_uring* get() { return &ring_; }
  // A free SQE; submits what is queued to make room when the SQ is full.
  io_uring_sqe* sqe();
  unsigned features() const { return features_; }

 private:
  io_uring ring_{};
  unsigned features_ = 0;
};

// Provided-buffer ring (IORING_REGISTER_PBUF_RING, kernel 5.19): `count`
// buffers of `size` bytes, buffer id i at base + i * size.
class BufferRing {
 public:
  // count must be a power of two (<= 32768). Throws EnvError naming errno.
  BufferRing(io_uring* ring, uint16_t group, unsigned count, size_t size);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  uint8_t* buffer(unsigned id) { return bufs_ + size_t(id) * size_; }
  size_t size() const { return size_; }
  uint16_t group() const { return group_; }
  // Hands buffer `id` back to the kernel (published by publish()).
  void recycle(unsigned id);
  void publish();

 private:
  io_uring* ring_;
  uint16_t group_;
  unsigned count_;
  size_t size_;
  io_uring_buf_ring* br_ = nullptr;
  size_t br_bytes_ = 0;
  uint8_t* bufs_ = nullptr;
  size_t bufs_bytes_ = 0;
  int pending_ = 0;
};

// Cheap probe: can a ring be created, and does the kernel know `ops`?
// Unusable -> the kernel's reason ("io_uring_queue_init: ... (EPERM)").
Usability probe_io_uring(const std::vector<int>& ops, const std::vector<const char*>& op_names);

OptionSpec sq_depth_option();
OptionSpec sqpoll_option();
OptionSpec uring_batch_option();

// The transmit side shared by io_uring_send and io_uring_send_zc: k linked
// sends per commit, so a refused send cancels those after it and what was
// accepted is always a prefix (the generator retries the rest in order).
// Returns the number of SQEs queued; submission is the caller's.
unsigned queue_linked_sends(Uring& ring, int fd, uint8_t* const* bufs, unsigned k, const size_t* lens, bool zerocopy,
                            const uint64_t* user_data);

}  // namespace zc
