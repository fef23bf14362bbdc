#include "drivers/splice_util.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "harness/errors.h"
#include "harness/pacer.h"

namespace zc {

Pipe open_pipe(int64_t bytes) {
  int fds[2];
  check_sys(pipe2(fds, O_CLOEXEC), "pipe2");
  Pipe p{Fd(fds[0]), Fd(fds[1]), 0};
  if (bytes > 0 && fcntl(p.write_end.get(), F_SETPIPE_SZ, int(bytes)) < 0)
    throw EnvError(errno_text("fcntl(F_SETPIPE_SZ, " + std::to_string(bytes) + ")", errno), errno);
  int cap = fcntl(p.write_end.get(), F_GETPIPE_SZ);
  check_sys(cap, "fcntl(F_GETPIPE_SZ)");
  p.capacity = size_t(cap);
  return p;
}

OptionSpec pipe_size_option(const std::string& default_value) {
  return {"pipe_size", OptionType::size, default_value,
          "pipe capacity (F_SETPIPE_SZ, rounded up to a power-of-two number of pages; 0 keeps the 64K default)", 0,
          1ll << 30, {}};
}

Fd open_scratch_file(const std::string& dir) {
  Fd fd(open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd.valid())
    throw EnvError(errno_text("open(" + dir + ", O_TMPFILE): a scratch file needs a writable directory on a "
                              "filesystem with O_TMPFILE (tmpfs, ext4, xfs, btrfs)",
                              errno),
                   errno);
  return fd;
}

std::string filesystem_type(int fd) {
  struct statfs s {};
  if (fstatfs(fd, &s) < 0) return "unknown";
  switch (s.f_type) {
    case TMPFS_MAGIC: return "tmpfs";
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

}  // namespace zc

namespace zc {

StallGuard::StallGuard(std::string what) : what_(std::move(what)), last_progress_ns_(monotonic_ns()) {}

void StallGuard::progress(size_t moved) {
  uint64_t now = monotonic_ns();
  if (moved) {
    last_progress_ns_ = now;
    return;
  }
  if (now - last_progress_ns_ > 2000000000ull)
    throw EnvError(what_ + ": no byte moved for 2 s (the receiver stopped reading?)", EAGAIN);
}

void splice_all_to_stream(int pipe_read, int sock, size_t len, const std::string& what) {
  StallGuard guard(what);
  while (len) {
    ssize_t w = splice(pipe_read, nullptr, sock, nullptr, len, 0);
    if (w < 0) {
      // SO_SNDTIMEO ends a blocked send with EAGAIN: wait on.
      if (errno != EAGAIN && errno != EINTR) throw EnvError(errno_text(what, errno), errno);
      w = 0;
    }
    guard.progress(size_t(w));
    len -= size_t(w);
  }
}

}  // namespace zc
