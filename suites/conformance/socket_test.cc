// The UDP socket transports (recv, recvmmsg, sendto, sendmmsg) against the
// kernel's contract, docs/conformance.md items 21-24, plus flood integrity through
// the harness and the harness's own refusals of impossible trials.
//
// Each check builds a fresh lab (two anonymous namespaces joined by veth,
// 198.18.0.1 -> 198.18.0.2) and opens plain sockets in it: the generator end
// in the generator namespace, the sink end in the sink namespace. A socket
// stays in the namespace it was created in, so after creation any thread may
// use it. Without root, or where the lab cannot be built, checks skip with
// the reason.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/lab.h"
#include "harness/sysstat.h"
#include "harness/trial.h"
#include "suites/conformance/flood_rate.h"
#include "suites/conformance/records.h"

namespace zc {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kTestPort = 7000;
constexpr uint16_t kFencePort = 7001;
constexpr size_t kBufferBytes = 2048;  // above any datagram of a 1500-byte MTU

// First statement of every check, so even a skipped check names its item.
void conformance_item(int n) { ::testing::Test::RecordProperty(kConformanceItemProperty, n); }

LabOptions socket_lab_options() {
  LabOptions o;
  o.gen_cpu = 0;
  o.sink_cpu = online_cpu_count() > 1 ? 1 : 0;
  return o;
}

// Empty when the lab was built, else why it cannot be built here.
std::string build_lab(std::optional<Lab>* lab) {
  if (geteuid() != 0)
    return "needs root: the lab's network namespaces and veth pair need CAP_SYS_ADMIN and CAP_NET_ADMIN";
  try {
    lab->emplace(Lab::create(socket_lab_options()));
    return "";
  } catch (const EnvError& e) {
    return std::string("unsupported: cannot build the lab: ") + e.what();
  }
}

#define ZC_REQUIRE_LAB(lab)                                              \
  std::optional<Lab> lab;                                                \
  if (const std::string why_ = build_lab(&lab); !why_.empty()) GTEST_SKIP() << why_

sockaddr_in sink_addr(const Lab& lab, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr = lab.ports().at(0).sink_ip;
  a.sin_port = htons(port);
  return a;
}

// A plain UDP socket bound to the sink address, created in the sink namespace.
Fd open_sink(const Lab& lab, uint16_t port) {
  Fd fd;
  lab.sink_ns().run([&] {
    fd = Fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    check_sys(fd.get(), "socket(AF_INET, SOCK_DGRAM) in the sink namespace");
    sockaddr_in a = sink_addr(lab, port);
    check_sys(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "bind sink socket");
  });
  return fd;
}

// An unbound UDP socket in the generator namespace (the route picks 198.18.0.1).
Fd open_source(const Lab& lab) {
  Fd fd;
  lab.gen_ns().run([&] {
    fd = Fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    check_sys(fd.get(), "socket(AF_INET, SOCK_DGRAM) in the generator namespace");
  });
  return fd;
}

void set_int_option(const Fd& fd, int level, int name, int value, const char* what) {
  check_sys(setsockopt(fd.get(), level, name, &value, sizeof value), std::string("setsockopt(") + what + ")");
}

void set_receive_timeout(const Fd& fd, std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = ms.count() / 1000;
  tv.tv_usec = (ms.count() % 1000) * 1000;
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), "setsockopt(SO_RCVTIMEO)");
}

// Payload i of a test: every byte depends on the datagram's tag, so a
// datagram read back can be told from its neighbours.
std::vector<uint8_t> pattern(size_t len, uint32_t tag) {
  std::vector<uint8_t> p(len);
  for (size_t i = 0; i < len; ++i) p[i] = uint8_t(tag * 31 + i * 7 + 1);
  return p;
}

void send_datagram(const Fd& src, const Lab& lab, uint16_t port, const std::vector<uint8_t>& payload) {
  sockaddr_in dst = sink_addr(lab, port);
  ssize_t n = sendto(src.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
  check_sys(n, "sendto 198.18.0.2:" + std::to_string(port));
  if (size_t(n) != payload.size())
    throw InternalError("sendto sent " + std::to_string(n) + " of " + std::to_string(payload.size()) + " bytes");
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Returns once every datagram sent before it has been queued on (or dropped
// by) its sink socket. Why this holds: the lab steers all receive processing
// of the sink veth to one CPU (RPS), whose backlog is processed in order, and
// UDP queues a datagram to its socket within that processing; so when the
// fence datagram is readable, everything sent earlier from the same thread
// has been through the socket layer too. Deterministic, unlike a sleep.
// Each fence carries its own token, so a late probe is never taken for it.
class Fence {
 public:
  // Also waits until the fresh lab forwards at all: until the kernel's
  // linkwatch activates the veth's qdisc (asynchronously, after the link came
  // up), transmitted datagrams are silently dropped by the placeholder noop
  // qdisc while sendto() still reports success.
  Fence(const Lab& lab, const Fd& source) : lab_(lab), source_(source), sink_(open_sink(lab, kFencePort)) {
    Clock::time_point t0 = Clock::now();
    for (;;) {
      send_token(++token_);
      if (wait_readable(sink_.get(), 10)) break;
      if (seconds_since(t0) > 5.0)
        throw InternalError("the lab forwards nothing: no datagram to 198.18.0.2:" + std::to_string(kFencePort) +
                            " arrived within 5 s of its creation");
    }
    pass();
  }

  void pass() {
    const uint32_t want = ++token_;
    send_token(want);
    Clock::time_point t0 = Clock::now();
    for (;;) {
      if (!wait_readable(sink_.get(), 100) && seconds_since(t0) > 5.0)
        throw InternalError("fence datagram to 198.18.0.2:" + std::to_string(kFencePort) + " not received within 5 s");
      uint32_t got = 0;
      while (recv(sink_.get(), &got, sizeof got, MSG_DONTWAIT) == ssize_t(sizeof got))
        if (got == want) return;
    }
  }

 private:
  void send_token(uint32_t t) {
    std::vector<uint8_t> p(sizeof t);
    std::memcpy(p.data(), &t, sizeof t);
    send_datagram(source_, lab_, kFencePort, p);
  }
  const Lab& lab_;
  const Fd& source_;
  Fd sink_;
  uint32_t token_ = 0;
};

// A recvmmsg vector of `vlen` messages, each one buffer, optionally with room
// for control messages.
class MessageBatch {
 public:
  explicit MessageBatch(unsigned vlen, size_t buffer_bytes = kBufferBytes)
      : msgs_(vlen), iovs_(vlen), buffers_(vlen, std::vector<uint8_t>(buffer_bytes)) {
    reset();
  }
  void reset() {
    for (size_t i = 0; i < msgs_.size(); ++i) {
      iovs_[i] = {buffers_[i].data(), buffers_[i].size()};
      msgs_[i] = {};
      msgs_[i].msg_hdr.msg_iov = &iovs_[i];
      msgs_[i].msg_hdr.msg_iovlen = 1;
    }
  }
  mmsghdr* data() { return msgs_.data(); }
  unsigned vlen() const { return unsigned(msgs_.size()); }
  const mmsghdr& msg(size_t i) const { return msgs_[i]; }
  std::vector<uint8_t> payload(size_t i) const {
    return {buffers_[i].begin(), buffers_[i].begin() + ptrdiff_t(msgs_[i].msg_len)};
  }

 private:
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<std::vector<uint8_t>> buffers_;
};

std::map<std::string, uint64_t> sink_snmp(const Lab& lab) {
  std::map<std::string, uint64_t> snmp;
  lab.sink_ns().run([&] { snmp = read_snmp_this_thread(); });
  return snmp;
}

uint64_t counter(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

// ---------------------------------------------------------------------------
// recvmmsg(2)

TEST(recvmmsg, nonblocking_returns_min_available) {
  conformance_item(21);
  ZC_REQUIRE_LAB(lab);
  Fd src = open_source(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fence fence(*lab, src);
  constexpr unsigned kVlen = 8;
  MessageBatch batch(kVlen);

  // Fewer than vlen available: MSG_DONTWAIT returns what is there.
  constexpr unsigned kFew = 5;
  for (uint32_t i = 0; i < kFew; ++i) send_datagram(src, *lab, kTestPort, pattern(100, i));
  fence.pass();
  int n = recvmmsg(sink.get(), batch.data(), kVlen, MSG_DONTWAIT, nullptr);
  ASSERT_EQ(n, int(kFew)) << "recvmmsg(MSG_DONTWAIT, vlen " << kVlen << ") with " << kFew
                          << " queued: " << (n < 0 ? strerror(errno) : "");
  for (unsigned i = 0; i < kFew; ++i) EXPECT_EQ(batch.payload(i), pattern(100, i)) << "message " << i;
  errno = 0;
  EXPECT_EQ(recvmmsg(sink.get(), batch.data(), kVlen, MSG_DONTWAIT, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN) << "an empty non-blocking socket answers EAGAIN";

  // More than vlen available: vlen now, the rest next time; O_NONBLOCK this
  // time, the other way to be non-blocking.
  constexpr unsigned kMany = 12;
  check_sys(fcntl(sink.get(), F_SETFL, fcntl(sink.get(), F_GETFL) | O_NONBLOCK), "fcntl(O_NONBLOCK)");
  for (uint32_t i = 0; i < kMany; ++i) send_datagram(src, *lab, kTestPort, pattern(100, 100 + i));
  fence.pass();
  batch.reset();
  EXPECT_EQ(recvmmsg(sink.get(), batch.data(), kVlen, 0, nullptr), int(kVlen));
  for (unsigned i = 0; i < kVlen; ++i) EXPECT_EQ(batch.payload(i), pattern(100, 100 + i)) << "message " << i;
  batch.reset();
  EXPECT_EQ(recvmmsg(sink.get(), batch.data(), kVlen, 0, nullptr), int(kMany - kVlen));
  for (unsigned i = 0; i < kMany - kVlen; ++i)
    EXPECT_EQ(batch.payload(i), pattern(100, 100 + kVlen + i)) << "message " << i;
  errno = 0;
  EXPECT_EQ(recvmmsg(sink.get(), batch.data(), kVlen, 0, nullptr), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(recvmmsg, msg_len_matches_recvmsg) {
  conformance_item(21);
  ZC_REQUIRE_LAB(lab);
  Fd src = open_source(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fence fence(*lab, src);
  // Empty, tiny, the flood header's minimum, typical and the 1500-MTU maximum.
  const std::vector<size_t> sizes = {0, 1, 17, 18, 100, 272, 999, 1472};
  MessageBatch batch(unsigned(sizes.size()));

  for (size_t i = 0; i < sizes.size(); ++i) send_datagram(src, *lab, kTestPort, pattern(sizes[i], uint32_t(i)));
  fence.pass();
  int n = recvmmsg(sink.get(), batch.data(), batch.vlen(), MSG_DONTWAIT, nullptr);
  ASSERT_EQ(n, int(sizes.size()));
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(batch.msg(i).msg_len, sizes[i]) << "recvmmsg msg_len of message " << i;
    EXPECT_EQ(batch.msg(i).msg_hdr.msg_flags & MSG_TRUNC, 0) << "message " << i;
    EXPECT_EQ(batch.payload(i), pattern(sizes[i], uint32_t(i))) << "message " << i;
  }

  // The same datagrams again, one recvmsg each: the same lengths.
  for (size_t i = 0; i < sizes.size(); ++i) send_datagram(src, *lab, kTestPort, pattern(sizes[i], uint32_t(i)));
  fence.pass();
  std::vector<uint8_t> buf(kBufferBytes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    iovec iov{buf.data(), buf.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t got = recvmsg(sink.get(), &m, MSG_DONTWAIT);
    ASSERT_GE(got, 0) << "recvmsg of message " << i << ": " << strerror(errno);
    EXPECT_EQ(size_t(got), batch.msg(i).msg_len) << "recvmsg and recvmmsg disagree on message " << i;
    EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + got), pattern(sizes[i], uint32_t(i)));
  }
}

TEST(recvmmsg, waitforone_blocks_for_first_only) {
  conformance_item(22);
  ZC_REQUIRE_LAB(lab);
  Fd src = open_source(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fence fence(*lab, src);
  constexpr unsigned kVlen = 8, kSent = 3;
  // Safety net only: if the call waited to fill vlen, SO_RCVTIMEO would end
  // it after 5 s instead of hanging the suite.
  set_receive_timeout(sink, std::chrono::milliseconds(5000));
  MessageBatch batch(kVlen);

  std::exception_ptr sender_error;
  std::thread sender([&] {
    try {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      for (uint32_t i = 0; i < kSent; ++i) send_datagram(src, *lab, kTestPort, pattern(64, i));
    } catch (...) {
      sender_error = std::current_exception();
    }
  });
  Clock::time_point t0 = Clock::now();
  int n = recvmmsg(sink.get(), batch.data(), kVlen, MSG_WAITFORONE, nullptr);
  int call_errno = errno;
  double elapsed = seconds_since(t0);
  sender.join();
  if (sender_error) std::rethrow_exception(sender_error);

  // The socket was empty when the call began, so n >= 1 means it blocked for
  // the first datagram; returning with fewer than vlen means it did not block
  // for the rest.
  ASSERT_GE(n, 1) << "recvmmsg(MSG_WAITFORONE): " << strerror(call_errno);
  EXPECT_LE(n, int(kSent));
  EXPECT_LT(elapsed, 4.0) << "MSG_WAITFORONE waited for more than the first datagram (until SO_RCVTIMEO)";
  EXPECT_EQ(batch.payload(0), pattern(64, 0));

  // Contrast: without MSG_WAITFORONE a blocking call waits for all vlen, here
  // until SO_RCVTIMEO ends the wait for the 4th, then returns what it has.
  fence.pass();
  while (recvmmsg(sink.get(), batch.data(), kVlen, MSG_DONTWAIT, nullptr) > 0) batch.reset();
  for (uint32_t i = 0; i < kSent; ++i) send_datagram(src, *lab, kTestPort, pattern(64, i));
  fence.pass();
  set_receive_timeout(sink, std::chrono::milliseconds(300));
  batch.reset();
  t0 = Clock::now();
  n = recvmmsg(sink.get(), batch.data(), kVlen, 0, nullptr);
  elapsed = seconds_since(t0);
  EXPECT_EQ(n, int(kSent));
  // A lower bound only: a socket timeout does not expire early (jiffy slack aside).
  EXPECT_GE(elapsed, 0.25) << "a blocking recvmmsg without MSG_WAITFORONE returned before its socket timeout";
}

// The recvmmsg(2) BUGS section (kernel bugzilla #75371): "The timeout is
// checked only after the receipt of each datagram". do_recvmmsg() in
// net/socket.c compares the clock with the deadline only after each
// datagram; each datagram itself is waited for by a plain blocking recvmsg,
// bounded by nothing but the socket's own SO_RCVTIMEO. So:
//  (a) with nothing arriving, the call blocks for the first datagram past its
//      timeout; here SO_RCVTIMEO ends it with EAGAIN (a honoured timeout would
//      return 0);
//  (b) with one datagram queued and the next arriving after the timeout has
//      expired, the call waits for and returns that next one too (a honoured
//      timeout would return 1), and then stops because the deadline passed.
// These are assertions on counts, not on speed; the elapsed bounds are far
// from the values they separate.
TEST(recvmmsg, timeout_checked_after_each_datagram) {
  conformance_item(22);
  ZC_REQUIRE_LAB(lab);
  Fd src = open_source(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fence fence(*lab, src);
  constexpr unsigned kVlen = 4;
  MessageBatch batch(kVlen);

  // (a) Empty socket, 50 ms timeout, 1 s SO_RCVTIMEO.
  set_receive_timeout(sink, std::chrono::milliseconds(1000));
  timespec timeout{0, 50 * 1000 * 1000};
  Clock::time_point t0 = Clock::now();
  errno = 0;
  int n = recvmmsg(sink.get(), batch.data(), kVlen, 0, &timeout);
  int call_errno = errno;
  double elapsed = seconds_since(t0);
  EXPECT_EQ(n, -1) << "recvmmsg with an expired timeout and no datagram returned " << n
                   << "; the documented quirk is that it blocks for the first datagram";
  EXPECT_EQ(call_errno, EAGAIN) << "expected SO_RCVTIMEO (EAGAIN) to end the wait: " << strerror(call_errno);
  EXPECT_GE(elapsed, 0.5) << "the 50 ms recvmmsg timeout ended the wait for the first datagram";

  // (b) One datagram queued, 100 ms timeout, the second sent after 600 ms.
  set_receive_timeout(sink, std::chrono::milliseconds(5000));
  send_datagram(src, *lab, kTestPort, pattern(64, 1));
  fence.pass();
  std::exception_ptr sender_error;
  std::thread sender([&] {
    try {
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      send_datagram(src, *lab, kTestPort, pattern(64, 2));
    } catch (...) {
      sender_error = std::current_exception();
    }
  });
  timeout = {0, 100 * 1000 * 1000};
  batch.reset();
  t0 = Clock::now();
  n = recvmmsg(sink.get(), batch.data(), kVlen, 0, &timeout);
  call_errno = errno;
  elapsed = seconds_since(t0);
  sender.join();
  if (sender_error) std::rethrow_exception(sender_error);
  ASSERT_EQ(n, 2) << "recvmmsg(vlen " << kVlen << ", timeout 100 ms) with one datagram queued and one sent at 600 ms"
                  << (n < 0 ? std::string(": ") + strerror(call_errno) : std::string());
  EXPECT_EQ(batch.payload(0), pattern(64, 1));
  EXPECT_EQ(batch.payload(1), pattern(64, 2));
  // After the second datagram the expired deadline is noticed: the call does
  // not go on to wait for the third until SO_RCVTIMEO (5 s).
  EXPECT_LT(elapsed, 4.0) << "the timeout was not checked after the second datagram";
}

// ---------------------------------------------------------------------------
// recv(2)

TEST(recv, msg_trunc_returns_full_length) {
  conformance_item(23);
  ZC_REQUIRE_LAB(lab);
  Fd src = open_source(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fence fence(*lab, src);
  constexpr size_t kDatagram = 1000, kSmall = 100;
  const std::vector<uint8_t> sent = pattern(kDatagram, 7);

  // recv(MSG_TRUNC): the datagram's real length, the buffer holds its start.
  send_datagram(src, *lab, kTestPort, sent);
  fence.pass();
  std::vector<uint8_t> buf(kSmall);
  ssize_t n = recv(sink.get(), buf.data(), buf.size(), MSG_TRUNC | MSG_DONTWAIT);
  ASSERT_EQ(n, ssize_t(kDatagram)) << "recv(MSG_TRUNC) into " << kSmall << " bytes"
                                   << (n < 0 ? std::string(": ") + strerror(errno) : std::string());
  EXPECT_EQ(buf, std::vector<uint8_t>(sent.begin(), sent.begin() + kSmall));

  // Contrast: without the flag, the bytes copied, and MSG_TRUNC in msg_flags.
  send_datagram(src, *lab, kTestPort, sent);
  fence.pass();
  iovec iov{buf.data(), buf.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  n = recvmsg(sink.get(), &m, MSG_DONTWAIT);
  EXPECT_EQ(n, ssize_t(kSmall));
  EXPECT_NE(m.msg_flags & MSG_TRUNC, 0) << "recvmsg did not flag the truncated datagram";
  // The rest of a truncated datagram is discarded, not left for the next read.
  errno = 0;
  EXPECT_EQ(recv(sink.get(), buf.data(), buf.size(), MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
}

// Reads one datagram with its SO_RXQ_OVFL control message. The kernel stamps
// each queued datagram with the socket's drop counter at queueing time and
// sends the cmsg only when that counter is non-zero, so no cmsg means 0.
struct OverflowRead {
  ssize_t len = -1;
  uint32_t drops = 0;
};
OverflowRead recv_with_overflow(const Fd& fd) {
  std::vector<uint8_t> buf(kBufferBytes);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
  iovec iov{buf.data(), buf.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  OverflowRead r;
  r.len = recvmsg(fd.get(), &m, MSG_DONTWAIT);
  if (r.len < 0) return r;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) std::memcpy(&r.drops, CMSG_DATA(c), sizeof r.drops);
  return r;
}

TEST(recv, rcvbuf_overflow_counted) {
  conformance_item(24);
  ZC_REQUIRE_LAB(lab);
  Fd src = open_source(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fence fence(*lab, src);
  // The smallest receive buffer the kernel allows (it raises 1 to its
  // minimum), set per socket with the FORCE variant: no host sysctl touched.
  set_int_option(sink, SOL_SOCKET, SO_RCVBUFFORCE, 1, "SO_RCVBUFFORCE");
  set_int_option(sink, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL");

  // Fewer datagrams than the backlog holds (netdev_max_backlog, 1000 by
  // default), so the socket buffer is the only place they can be dropped.
  constexpr uint32_t kFlood = 400;
  std::map<std::string, uint64_t> before = sink_snmp(*lab);
  for (uint32_t i = 0; i < kFlood; ++i) send_datagram(src, *lab, kTestPort, pattern(272, i));
  fence.pass();
  std::map<std::string, uint64_t> after = sink_snmp(*lab);
  const uint64_t rcvbuf_errors = counter(after, "Udp.RcvbufErrors") - counter(before, "Udp.RcvbufErrors");
  EXPECT_GT(rcvbuf_errors, 0u) << kFlood << " unread datagrams into a minimal SO_RCVBUF dropped none";
  EXPECT_GE(counter(after, "Udp.InErrors") - counter(before, "Udp.InErrors"), rcvbuf_errors)
      << "Udp.InErrors counts every receive-buffer error too";

  // Drain: the stamps only grow, and what was queued plus what was dropped
  // is everything that was sent.
  uint64_t queued = 0;
  uint32_t last_stamp = 0;
  for (OverflowRead r; (r = recv_with_overflow(sink)).len >= 0; ++queued) {
    EXPECT_GE(r.drops, last_stamp) << "SO_RXQ_OVFL went backwards at datagram " << queued;
    last_stamp = r.drops;
  }
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GT(queued, 0u);
  EXPECT_EQ(queued + rcvbuf_errors, kFlood) << "queued " << queued << " + Udp.RcvbufErrors " << rcvbuf_errors;

  // One more datagram into the now empty buffer carries the socket's total.
  send_datagram(src, *lab, kTestPort, pattern(272, kFlood));
  fence.pass();
  OverflowRead last = recv_with_overflow(sink);
  ASSERT_EQ(last.len, 272) << "recvmsg: " << strerror(errno);
  EXPECT_EQ(uint64_t(last.drops), rcvbuf_errors)
      << "the per-socket drop counter (SO_RXQ_OVFL) disagrees with the namespace's Udp.RcvbufErrors";
}

// ---------------------------------------------------------------------------
// Flood integrity through the harness: every sequence number arrives once,
// intact, and the counts reconcile. Offered well below what the path
// sustains here; nothing is timed.

TrialSpec flood_spec(const std::string& tx, const std::string& rx, size_t payload) {
  TrialSpec s;
  s.tx = {tx, {}};
  s.rx = {rx, {}};
  s.payload_bytes = payload;
  s.rate_pps = 20000;
  s.count = 20000;
  s.duration_s = 5.0;  // an upper bound: the count (1 s at this rate) ends the flood
  s.warmup_s = 0.2;
  s.flows = 2;
  s.lab = socket_lab_options();
  s.suite = "conformance";
  pace_flood(s);  // an emulated CPU sustains far less (flood_rate.h)
  return s;
}

// Empty when the trial ran (record filled), else why it cannot run here.
std::string run_flood(const TrialSpec& spec, json* record) {
  if (geteuid() != 0) return "needs root: a trial builds its lab in new network namespaces (CAP_SYS_ADMIN)";
  try {
    TrialOutcome out = run_trial(spec, nullptr);
    *record = out.record;
  } catch (const EnvError& e) {
    return std::string("unsupported: ") + e.what();
  }
  if (record->value("status", "") == "skip") return record->value("reason", "unsupported: (no reason given)");
  return "";
}

#define ZC_RUN_FLOOD(spec, record)                                             \
  json record;                                                                 \
  if (const std::string why_ = run_flood(spec, &record); !why_.empty()) GTEST_SKIP() << why_

uint64_t u64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return UINT64_MAX;  // shows as a mismatch
  return it->get<uint64_t>();
}

void expect_intact(const json& rec, uint64_t count) {
  SCOPED_TRACE(rec.value("name", "trial"));
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  const json& raw = rec.at("raw");
  const json& seq = raw.at("sequence");
  EXPECT_EQ(u64(raw, "sent_total"), count);
  EXPECT_EQ(u64(seq, "unique"), u64(raw, "sent_total")) << "sequence: " << seq.dump();
  EXPECT_EQ(u64(seq, "duplicates"), 0u);
  EXPECT_EQ(u64(seq, "corrupt"), 0u);
  EXPECT_EQ(u64(seq, "reordered"), 0u);
  EXPECT_EQ(u64(raw, "received_total"), count);
  const json& derived = rec.at("derived");
  EXPECT_EQ(derived.value("reconciliation_ok", false), true) << "drops: " << derived.value("drops", json()).dump();
  EXPECT_EQ(u64(derived, "lost_packets"), 0u) << "drops: " << derived.value("drops", json()).dump();
}

TEST(recv, flood_integrity) {
  TrialSpec spec = flood_spec("sendmmsg", "recv", 272);
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
}

TEST(recvmmsg, flood_integrity) {
  TrialSpec spec = flood_spec("sendmmsg", "recvmmsg", 272);
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
}

TEST(sendto, flood_integrity) {
  TrialSpec spec = flood_spec("sendto", "recvmmsg", 272);
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
}

// wait=interval: the sink drains its queue, then sleeps to the next 1 ms tick, so
// its wake-ups come on the clock, not one per datagram, and nothing is lost for it:
// every read follows a tick's sleep or a full batch (the queue not yet drained), and
// a tick carries several of a 20 kpps flood's datagrams (docs/conformance.md item 47).
TEST(recvmmsg, interval_wait_drains_on_schedule) {
  conformance_item(47);
  TrialSpec spec = flood_spec("sendmmsg", "recvmmsg", 272);
  spec.rx.options["wait"] = "interval";
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
  const json& w = rec.at("raw").at("driver_stats").at("rx").at("interval_wait");
  EXPECT_EQ(w.at("tick_ns").get<int64_t>(), 1'000'000);
  EXPECT_EQ(u64(w, "packets"), spec.count) << w.dump();
  const uint64_t batch = 64;  // the driver's default vlen
  EXPECT_LE(u64(w, "drains"), u64(w, "ticks_slept") + spec.count / batch + 1) << w.dump();
  // 20 datagrams a tick at 20 kpps; an emulated CPU paces at 2 kpps (flood_rate.h).
  const double per_tick = double(u64(w, "packets")) / double(std::max<uint64_t>(1, u64(w, "ticks_slept")));
  EXPECT_GT(per_tick, emulated_cpu() ? 0.5 : 4.0) << w.dump();
}

// accounting=count skips header checks (the harness measuring its own cost)
// but must still count every packet.
TEST(recvmmsg, count_accounting_counts_all) {
  TrialSpec spec = flood_spec("sendmmsg", "recvmmsg", 272);
  spec.rx.options["accounting"] = "count";
  ZC_RUN_FLOOD(spec, rec);
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  EXPECT_EQ(u64(rec.at("raw"), "sent_total"), spec.count);
  EXPECT_EQ(u64(rec.at("raw"), "received_total"), spec.count);
  EXPECT_EQ(rec.at("derived").value("reconciliation_ok", false), true);
}

// The flood header's minimum payload (18 bytes: seq, tx_ns, flow only) and the
// largest a 1500-byte MTU carries.
TEST(flood, sizes_min_and_max) {
  for (size_t payload : {size_t(18), size_t(1472)}) {
    TrialSpec spec = flood_spec("sendmmsg", "recvmmsg", payload);
    spec.count = 10000;
    pace_flood(spec);
    ZC_RUN_FLOOD(spec, rec);
    expect_intact(rec, spec.count);
  }
}

// ---------------------------------------------------------------------------
// The harness refuses impossible trials before any traffic.

std::string usage_error_of(const TrialSpec& spec) {
  try {
    validate_trial(spec);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(trial, rejects_payload_above_mtu) {
  TrialSpec spec = flood_spec("sendmmsg", "recvmmsg", 1473);
  std::string msg = usage_error_of(spec);
  ASSERT_FALSE(msg.empty()) << "a 1473-byte payload at MTU 1500 was accepted";
  EXPECT_NE(msg.find("1473"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1501"), std::string::npos) << "the error should name the MTU needed (1501): " << msg;
}

TEST(trial, rejects_unknown_transport) {
  TrialSpec spec = flood_spec("sendmmsg", "recvfoo", 272);
  std::string msg = usage_error_of(spec);
  ASSERT_FALSE(msg.empty()) << "receive transport 'recvfoo' was accepted";
  EXPECT_NE(msg.find("recvfoo"), std::string::npos) << msg;
  EXPECT_NE(msg.find("recvmmsg"), std::string::npos) << "the error should list the accepted transports: " << msg;

  spec = flood_spec("sendfoo", "recvmmsg", 272);
  msg = usage_error_of(spec);
  ASSERT_FALSE(msg.empty()) << "transmit transport 'sendfoo' was accepted";
  EXPECT_NE(msg.find("sendfoo"), std::string::npos) << msg;
}

TEST(trial, rejects_unknown_option) {
  TrialSpec spec = flood_spec("sendmmsg", "recvmmsg", 272);
  spec.rx.options["bacth"] = "64";
  std::string msg = usage_error_of(spec);
  ASSERT_FALSE(msg.empty()) << "rx option 'bacth' was accepted";
  EXPECT_NE(msg.find("bacth"), std::string::npos) << msg;
  EXPECT_NE(msg.find("batch"), std::string::npos) << "the error should list the accepted options: " << msg;

  spec = flood_spec("sendmmsg", "recvmmsg", 272);
  spec.rx.options["batch"] = "0";
  EXPECT_FALSE(usage_error_of(spec).empty()) << "rx option batch=0 was accepted (range 1..1024)";
}

}  // namespace
}  // namespace zc
