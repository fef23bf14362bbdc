#include "drivers/uring_common.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "harness/errors.h"

namespace zc {

Uring::Uring(unsigned entries, bool sqpoll) {
  io_uring_params p{};
  if (sqpoll) {
    p.flags |= IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 50;  // ms before the poller sleeps and submit needs a wake-up
  }
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc < 0)
    throw EnvError(errno_text("io_uring_queue_init(" + std::to_string(entries) + " entries" +
                                  (sqpoll ? ", IORING_SETUP_SQPOLL" : "") + ")",
                              -rc),
                   -rc);
  features_ = p.features;
}

Uring::~Uring() { io_uring_queue_exit(&ring_); }

io_uring_sqe* Uring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s) return s;
  int rc = io_uring_submit(&ring_);
  if (rc < 0) throw EnvError(errno_text("io_uring_submit", -rc), -rc);
  s = io_uring_get_sqe(&ring_);
  if (!s) throw InternalError("io_uring: no free SQE right after a submit");
  return s;
}

BufferRing::BufferRing(io_uring* ring, uint16_t group, unsigned count, size_t size)
    : ring_(ring), group_(group), count_(count), size_(size) {
  if (count == 0 || (count & (count - 1)) || count > 32768)
    throw UsageError("provided-buffer count " + std::to_string(count) + " is not accepted; accepted: a power of two, 1..32768");
  br_bytes_ = count * sizeof(io_uring_buf);
  void* br = mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (br == MAP_FAILED) throw EnvError(errno_text("mmap provided-buffer ring", errno), errno);
  br_ = static_cast<io_uring_buf_ring*>(br);
  bufs_bytes_ = size_t(count) * size;
  void* bufs = mmap(nullptr, bufs_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (bufs == MAP_FAILED) {
    int e = errno;
    munmap(br_, br_bytes_);
    throw EnvError(errno_text("mmap " + std::to_string(bufs_bytes_) + " bytes of receive buffers", e), e);
  }
  bufs_ = static_cast<uint8_t*>(bufs);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group;
  int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc < 0) {
    munmap(bufs_, bufs_bytes_);
    munmap(br_, br_bytes_);
    throw EnvError(errno_text("io_uring_register_buf_ring (IORING_REGISTER_PBUF_RING)", -rc), -rc);
  }
  for (unsigned i = 0; i < count; ++i) recycle(i);
  publish();
}

BufferRing::~BufferRing() {
  io_uring_unregister_buf_ring(ring_, group_);
  munmap(bufs_, bufs_bytes_);
  munmap(br_, br_bytes_);
}

void BufferRing::recycle(unsigned id) {
  io_uring_buf_ring_add(br_, buffer(id), unsigned(size_), uint16_t(id), io_uring_buf_ring_mask(count_), pending_++);
}

void BufferRing::publish() {
  if (!pending_) return;
  io_uring_buf_ring_advance(br_, pending_);
  pending_ = 0;
}

Usability probe_io_uring(const std::vector<int>& ops, const std::vector<const char*>& op_names) {
  io_uring ring{};
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) return {false, errno_text("io_uring_queue_init", -rc)};
  Usability u;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (!probe) {
    u = {false, "io_uring_register(IORING_REGISTER_PROBE) failed: the kernel cannot list its opcodes"};
  } else {
    for (size_t i = 0; i < ops.size(); ++i)
      if (!io_uring_opcode_supported(probe, ops[i])) {
        u = {false, std::string("io_uring opcode ") + op_names[i] + " is not supported by this kernel (probe)"};
        break;
      }
    io_uring_free_probe(probe);
  }
  io_uring_queue_exit(&ring);
  return u;
}

OptionSpec sq_depth_option() {
  return {"sq_depth", OptionType::integer, "256", "io_uring submission queue entries (the CQ gets twice as many)", 4,
          32768, {}};
}

OptionSpec sqpoll_option() {
  return {"sqpoll", OptionType::boolean, "off",
          "IORING_SETUP_SQPOLL: a kernel thread polls the SQ, so submission needs no syscall while it is awake", 0, 0,
          {}};
}

OptionSpec uring_batch_option() {
  return {"batch", OptionType::integer, "32", "sends queued per submission (<= sq_depth)", 1, 4096, {}};
}

unsigned queue_linked_sends(Uring& ring, int fd, uint8_t* const* bufs, unsigned k, const size_t* lens, bool zerocopy,
                            const uint64_t* user_data) {
  for (unsigned i = 0; i < k; ++i) {
    io_uring_sqe* s = ring.sqe();
    if (zerocopy)
      io_uring_prep_send_zc(s, fd, bufs[i], lens[i], 0, kSendZcReportUsage);
    else
      io_uring_prep_send(s, fd, bufs[i], lens[i], 0);
    if (i + 1 < k) s->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(s, user_data[i]);
  }
  return k;
}

}  // namespace zc
