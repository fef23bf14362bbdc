#include "drivers/capture_peer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "harness/errors.h"
#include "harness/pacer.h"

namespace zc {
namespace {

constexpr size_t kPcapGlobalHeader = 24;
constexpr size_t kPcapRecordHeader = 16;
constexpr uint32_t kPcapMagicUsec = 0xa1b2c3d4;
constexpr uint32_t kPcapMagicNsec = 0xa1b23c4d;

uint32_t rd32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

}  // namespace

pid_t spawn_program(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd, int fd3) {
  ChildSpec spec;
  spec.argv = argv;
  spec.stdout_fd = stdout_fd;
  spec.stderr_fd = stderr_fd;
  if (fd3 >= 0) spec.fds.push_back({fd3, 3});
  return ChildProcess::spawn(spec).release();
}

uint64_t peer_packet_bound(const RxContext& ctx) {
  if (ctx.max_packets > 0) return 2 * ctx.max_packets + 100000;
  if (ctx.rate_pps > 0 && ctx.seconds > 0) return uint64_t(2 * ctx.rate_pps * (ctx.seconds + 15)) + 100000;
  return 0;
}

unsigned peer_time_limit_s(const RxContext& ctx) {
  // open() waits up to 10 s, the drain up to 2 s, stop() ~1 s linger + 3 s.
  return ctx.seconds > 0 ? unsigned(ctx.seconds) + 30 : 0;
}

std::string program_version_line(const std::string& prog, const std::string& arg) {
  std::vector<std::string> argv{prog};
  size_t at = 0;
  while (at < arg.size()) {
    const size_t end = std::min(arg.find(' ', at), arg.size());
    if (end > at) argv.push_back(arg.substr(at, end - at));
    at = end + 1;
  }
  return program_first_line(argv);
}

namespace {

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// How strongly a line reports a failure: 2 "failed"/"error" (a cause),
// 1 softer words ("can't", "no such": often a fallback, as libxdp's "Can't use
// dispatcher without a working bpffs" before it loads the program anyway), 0.
int failure_weight(std::string line) {
  std::transform(line.begin(), line.end(), line.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const char* w : {"fail", "error"})
    if (line.find(w) != std::string::npos) return 2;
  for (const char* w : {"cannot", "can't", "no such", "not found", "unknown", "invalid"})
    if (line.find(w) != std::string::npos) return 1;
  return 0;
}

}  // namespace

std::string quote_peer_messages(const std::string& messages) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at <= messages.size()) {
    const size_t end = std::min(messages.find('\n', at), messages.size());
    if (std::string l = trimmed(messages.substr(at, end - at)); !l.empty()) lines.push_back(l);
    at = end + 1;
  }
  if (lines.empty()) return "no output";
  const std::string last = "\"" + lines.back() + "\"";
  for (int weight = 2; weight > 0; --weight)
    for (size_t i = 0; i + 1 < lines.size(); ++i)
      if (failure_weight(lines[i]) == weight) return "\"" + lines[i] + "\" ... " + last;
  return last;
}

std::string peer_probe_reason(const std::string& prog, const std::string& arg, const std::string& expect,
                              const std::string& package, const std::string& answer) {
  if (answer.rfind(expect, 0) == 0) return "";
  if (answer.empty())
    return "peer " + prog + " not installed (`" + prog + " " + arg + "` failed): apt-get install " + package;
  return "peer " + prog + " did not answer as " + package + " does: `" + prog + " " + arg + "` printed \"" +
         answer + "\", expected a line starting \"" + expect + "\"";
}

Usability peer_installed(const std::string& prog, const std::string& arg, const std::string& expect,
                         const std::string& package) {
  const std::string why = peer_probe_reason(prog, arg, expect, package, program_version_line(prog, arg));
  return why.empty() ? Usability{} : Usability{false, why};
}

void CapturePeerSink::open(const RxContext& ctx) {
  udp_port_ = ctx.udp_port;
  argv_ = command(ctx);
  int p[2];
  check_sys(pipe2(p, O_CLOEXEC), "pipe2 for " + program() + " pcap output");
  pcap_fd_ = p[0];
  // A deep pipe: the program blocks on a full pipe, and its ring then fills
  // and the kernel drops (counted in its own statistics).
  fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  msg_fd_ = memfd_create((program() + "-messages").c_str(), MFD_CLOEXEC);
  check_sys(msg_fd_, "memfd_create");
  ChildSpec spec;
  spec.argv = argv_;
  spec.stdout_fd = pcap_on_fd3() ? msg_fd_ : p[1];
  spec.stderr_fd = msg_fd_;
  if (pcap_on_fd3()) spec.fds.push_back({p[1], 3});
  spec.time_limit_s = peer_time_limit_s(ctx);
  try {
    child_ = ChildProcess::spawn(spec);
  } catch (...) {
    ::close(p[1]);
    throw;
  }
  ::close(p[1]);
  fcntl(pcap_fd_, F_SETFL, O_NONBLOCK);
  buf_.resize(1 << 20);
  // Traffic starts when open() returns: wait until the program captures.
  const uint64_t deadline = monotonic_ns() + 10000000000ull;
  for (;;) {
    consume(nullptr);
    if (ready(messages())) break;  // the pcap header may sit in its stdio buffer
    if (child_.try_reap())
      throw EnvError(program() + " exited before capturing (exit " + std::to_string(child_.exit_code()) +
                     "): " + messages());
    if (monotonic_ns() > deadline) {
      stop();
      throw EnvError(program() + " did not start capturing on " + ctx.ifname + " within 10 s: " + messages());
    }
    usleep(10000);
  }
  usleep(100000);  // the message precedes the first poll of its ring by a little
}

std::string CapturePeerSink::messages() const {
  return msg_fd_ < 0 ? "" : read_child_messages(msg_fd_, 65536);
}

size_t CapturePeerSink::consume(Accounting* acct) {
  ssize_t n = read(pcap_fd_, buf_.data() + have_, buf_.size() - have_);
  if (n == 0) eof_ = true;
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 0;
    throw EnvError(errno_text("read " + program() + " pcap pipe", errno), errno);
  }
  have_ += size_t(n);
  pcap_bytes_ += size_t(n);
  size_t off = 0, packets = 0;
  if (!header_seen_ && have_ >= kPcapGlobalHeader) {
    uint32_t magic = rd32(buf_.data());
    if (magic != kPcapMagicUsec && magic != kPcapMagicNsec)
      throw EnvError(program() + " wrote no pcap stream (magic " + std::to_string(magic) + ")");
    nsec_ = magic == kPcapMagicNsec;
    header_seen_ = true;
    off = kPcapGlobalHeader;
  }
  if (header_seen_ && acct) acct->begin_batch();
  while (header_seen_ && have_ - off >= kPcapRecordHeader) {
    const uint8_t* rec = buf_.data() + off;
    uint32_t caplen = rd32(rec + 8);
    if (caplen > buf_.size() - kPcapRecordHeader)
      throw EnvError(program() + " pcap record of " + std::to_string(caplen) + " bytes: stream out of sync");
    if (have_ - off < kPcapRecordHeader + caplen) break;
    const uint8_t* f = rec + kPcapRecordHeader;
    ++frames_;
    // Ethernet / IPv4 / UDP to the flood port: hand the UDP payload over.
    bool flood = false;
    if (caplen >= 42 && be16(f + 12) == 0x0800 && (f[14] >> 4) == 4 && f[23] == 17) {
      size_t ihl = size_t(f[14] & 15) * 4;
      if (caplen >= 14 + ihl + 8 && be16(f + 14 + ihl + 2) == udp_port_) {
        size_t udp_len = be16(f + 14 + ihl + 4);
        size_t avail = caplen - 14 - ihl - 8;
        size_t len = udp_len >= 8 ? std::min(udp_len - 8, avail) : 0;
        if (acct) acct->on_packet(f + 14 + ihl + 8, len);
        flood = true;
        ++packets;
      }
    }
    if (!flood) ++non_flood_;
    off += kPcapRecordHeader + caplen;
  }
  if (off) {
    std::memmove(buf_.data(), buf_.data() + off, have_ - off);
    have_ -= off;
  }
  return packets;
}

size_t CapturePeerSink::receive(Accounting& acct, int timeout_ms) {
  acct_ = &acct;
  if (eof_) {
    // The program died mid-trial: a failed trial, with its own words.
    abandon();
    throw EnvError(program() + " stopped capturing (exit " + std::to_string(child_.exit_code()) +
                   "): " + messages());
  }
  pollfd p{pcap_fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return 0;
  size_t total = 0;
  try {
    for (int i = 0; i < 4; ++i) {
      size_t n = consume(&acct);
      total += n;
      if (n == 0) break;
    }
  } catch (...) {
    abandon();
    throw;
  }
  return total;
}

// The trial ends with an error: the program is killed and reaped here, on
// the sink thread that forked it, not left to the destructor on another one.
void CapturePeerSink::abandon() {
  stopped_ = true;
  child_.stop(SIGKILL, 0);
}

void CapturePeerSink::stop() {
  if (stopped_ || !child_.running()) return;
  stopped_ = true;
  // First let the program hand over what sits in a not yet retired ring
  // block: libpcap's TPACKET_V3 blocks retire after its 1 s timeout, so a
  // short silence does not mean the ring is empty.
  const uint64_t linger_end = monotonic_ns() + uint64_t(linger_ms()) * 1000000ull;
  while (!eof_ && monotonic_ns() < linger_end) {
    pollfd p{pcap_fd_, POLLIN, 0};
    if (poll(&p, 1, 10) > 0) consume(acct_);
  }
  // SIGINT: the program flushes its output and prints its statistics. Keep
  // reading so it never blocks on a full pipe; its tail is accounted too.
  child_.signal(SIGINT);
  const uint64_t deadline = monotonic_ns() + 3000000000ull;
  uint64_t before = frames_;
  bool reaped = false;
  while (monotonic_ns() < deadline) {
    pollfd p{pcap_fd_, POLLIN, 0};
    poll(&p, 1, 10);
    if (!eof_) consume(acct_);
    if (!reaped && child_.try_reap()) reaped = true;
    if (reaped && eof_) break;
  }
  if (!reaped) child_.stop(SIGKILL, 0);
  while (!eof_ && consume(acct_) > 0) {
  }
  tail_frames_ = frames_ - before;
  exit_status_ = child_.exit_code();
  stats_ = parse_stats(messages());
}

nlohmann::json CapturePeerSink::kernel_stats() {
  stop();
  nlohmann::json j = stats_.raw;
  j["program"] = program();
  std::string cmd;
  for (const auto& a : argv_) cmd += (cmd.empty() ? "" : " ") + a;
  j["command"] = cmd;
  j["captured"] = stats_.captured;
  j["dropped_by_kernel"] = stats_.dropped_by_kernel;
  j["exit_status"] = exit_status_;
  j["pcap_frames_read"] = frames_;
  j["non_flood_frames"] = non_flood_;
  j["frames_after_stop"] = tail_frames_;
  j["pcap_bytes"] = pcap_bytes_;
  j["pcap_timestamps"] = nsec_ ? "ns" : "us";
  return j;
}

CapturePeerSink::~CapturePeerSink() {
  child_.stop(SIGKILL, 0);  // normally done already, on the sink thread
  if (pcap_fd_ >= 0) ::close(pcap_fd_);
  if (msg_fd_ >= 0) ::close(msg_fd_);
}

}  // namespace zc
