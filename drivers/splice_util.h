// Pieces the splice-family transports (splice, vmsplice, sendfile) share:
// a pipe with a chosen capacity and an unnamed scratch file.
#pragma once
#include <cstdint>
#include <string>

#include "drivers/udp_socket.h"
#include "harness/options.h"

namespace zc {

struct Pipe {
  Fd read_end;
  Fd write_end;
  size_t capacity = 0;  // bytes, as F_GETPIPE_SZ reports after the resize
};

// A pipe resized with F_SETPIPE_SZ to at least `bytes` (0 keeps the default);
// throws EnvError with the kernel's reason (EPERM above pipe-max-size without
// CAP_SYS_RESOURCE, EBUSY when the pipe holds more than the new size).
Pipe open_pipe(int64_t bytes);

// `pipe_size` option shared by the splice family.
OptionSpec pipe_size_option(const std::string& default_value);

// An unnamed regular file in `dir` (O_TMPFILE, so nothing is left behind even
// after SIGKILL), opened read-write. Throws EnvError naming the directory.
Fd open_scratch_file(const std::string& dir);

// The filesystem type of an open file ("tmpfs", "ext4", ... or the magic in hex).
std::string filesystem_type(int fd);

}  // namespace zc

namespace zc {

// Stream senders (TCP) have no refusals: flow control makes them wait. These
// loop until every byte moved, and give up (EnvError naming `what`) only when
// nothing moved for 2 s, so a stalled path cannot hang a bounded flood.
class StallGuard {
 public:
  explicit StallGuard(std::string what);
  // Call after each attempt: `moved` bytes (0 when the call returned EAGAIN).
  void progress(size_t moved);

 private:
  std::string what_;
  uint64_t last_progress_ns_;
};

// splice(2) `len` bytes from a pipe to a stream socket, waiting as flow
// control dictates.
void splice_all_to_stream(int pipe_read, int sock, size_t len, const std::string& what);

}  // namespace zc
