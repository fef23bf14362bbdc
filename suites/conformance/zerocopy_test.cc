// The zero-copy and asynchronous transports against the kernel's contract:
// MSG_ZEROCOPY (docs/conformance.md items 30-32), UDP GSO/GRO (33-34), io_uring
// multishot recv (42) and send_zc (43), plus a bounded flood through each
// transport (msg_zerocopy, io_uring_send, io_uring_send_zc, udp_gso,
// io_uring_recv) that must arrive complete and intact.
//
// Each check builds its own lab (two anonymous namespaces joined by veth,
// 198.18.0.1 -> 198.18.0.2) and opens sockets in it; a socket stays in the
// namespace it was created in, so any thread may use it afterwards. What the
// kernel here cannot do is a skip with its reason, never a pass.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <liburing.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
// after time.h: the uapi header uses struct timespec
#include <linux/errqueue.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/udp_socket.h"
#include "drivers/uring_common.h"
#include "harness/accounting.h"
#include "harness/errors.h"
#include "harness/flood.h"
#include "harness/flood_header.h"
#include "harness/lab.h"
#include "harness/netns.h"
#include "harness/pacer.h"
#include "harness/registry.h"
#include "harness/trial.h"
#include "suites/conformance/flood_run.h"
#include "suites/conformance/flood_rate.h"
#include "suites/conformance/records.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

namespace zc {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kTestPort = 7100;
constexpr size_t kReadBytes = 65536 + 64;  // a coalesced GRO read is at most one 64 KiB datagram

void conformance_item(int n) { ::testing::Test::RecordProperty(kConformanceItemProperty, n); }

LabOptions lab_options(bool gro = false) {
  LabOptions o;
  o.gen_cpu = 0;
  o.sink_cpu = online_cpu_count() > 1 ? 1 : 0;
  o.gro = gro;
  return o;
}

std::string build_lab(std::optional<Lab>* lab, bool gro) {
  if (geteuid() != 0)
    return "needs root: the lab's network namespaces and veth pair need CAP_SYS_ADMIN and CAP_NET_ADMIN";
  try {
    lab->emplace(Lab::create(lab_options(gro)));
    return "";
  } catch (const EnvError& e) {
    return std::string("unsupported: cannot build the lab: ") + e.what();
  }
}

#define ZC_REQUIRE_LAB(lab, gro)                                            \
  std::optional<Lab> lab;                                                   \
  if (const std::string why_ = build_lab(&lab, gro); !why_.empty()) GTEST_SKIP() << why_

sockaddr_in sink_addr(const Lab& lab, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr = lab.ports().at(0).sink_ip;
  a.sin_port = htons(port);
  return a;
}

Fd open_sink(const Lab& lab, uint16_t port, int type = SOCK_DGRAM) {
  Fd fd;
  lab.sink_ns().run([&] {
    fd = Fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
    check_sys(fd.get(), "socket in the sink namespace");
    int one = 1;
    check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), "setsockopt(SO_REUSEADDR)");
    sockaddr_in a = sink_addr(lab, port);
    check_sys(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "bind sink socket");
    if (type == SOCK_STREAM) check_sys(listen(fd.get(), 8), "listen");
  });
  return fd;
}

// A UDP socket in the generator namespace, connected to the sink's port.
Fd open_source(const Lab& lab, uint16_t port) {
  Fd fd;
  lab.gen_ns().run([&] {
    fd = Fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    check_sys(fd.get(), "socket(AF_INET, SOCK_DGRAM) in the generator namespace");
    sockaddr_in a = sink_addr(lab, port);
    check_sys(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "connect to 198.18.0.2");
  });
  return fd;
}

void set_int(int fd, int level, int name, int value, const char* what) {
  check_sys(setsockopt(fd, level, name, &value, sizeof value), std::string("setsockopt(") + what + ")");
}

std::vector<uint8_t> pattern(size_t len, uint32_t tag) {
  std::vector<uint8_t> p(len);
  for (size_t i = 0; i < len; ++i) p[i] = uint8_t(tag * 31 + i * 7 + 1);
  return p;
}

// The first lab datagrams can vanish while the kernel's linkwatch has not yet
// activated the veth's qdisc: sends a probe until one arrives.
void wait_lab_forwards(const Lab& lab) {
  Fd sink = open_sink(lab, kTestPort + 50);
  Fd src = open_source(lab, kTestPort + 50);
  Clock::time_point t0 = Clock::now();
  for (;;) {
    uint8_t b = 1;
    check_sys(send(src.get(), &b, 1, 0), "send probe");
    if (wait_readable(sink.get(), 20)) return;
    if (Clock::now() - t0 > std::chrono::seconds(5))
      throw InternalError("the lab forwards nothing: no probe datagram arrived within 5 s");
  }
}

struct Read {
  std::vector<uint8_t> data;
  int gso_size = 0;  // from the UDP_GRO cmsg; 0 when absent
};

// One datagram (or coalesced read) within timeout_ms; nullopt on timeout.
std::optional<Read> read_one(const Fd& fd, int timeout_ms) {
  if (!wait_readable(fd.get(), timeout_ms)) return std::nullopt;
  Read r;
  r.data.resize(kReadBytes);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int)) * 2];
  iovec iov{r.data.data(), r.data.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ssize_t n = recvmsg(fd.get(), &m, MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  r.data.resize(size_t(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) std::memcpy(&r.gso_size, CMSG_DATA(c), sizeof(int));
  return r;
}

// ---------------------------------------------------------------------------
// MSG_ZEROCOPY (Documentation/networking/msg_zerocopy.rst)

struct Completion {
  uint32_t lo = 0, hi = 0;
  uint8_t origin = 0, code = 0;
  uint32_t err = 0;
};

// Reads completions from the error queue until `want` ids are covered or
// 5 s pass.
std::vector<Completion> read_completions(int fd, uint64_t want) {
  std::vector<Completion> out;
  uint64_t covered = 0;
  Clock::time_point t0 = Clock::now();
  while (covered < want && Clock::now() - t0 < std::chrono::seconds(5)) {
    pollfd p{fd, 0, 0};
    poll(&p, 1, 100);
    alignas(cmsghdr) char control[128];
    msghdr m{};
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) continue;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR) continue;
      sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      out.push_back({ee.ee_info, ee.ee_data, ee.ee_origin, ee.ee_code, ee.ee_errno});
      covered += uint64_t(ee.ee_data - ee.ee_info) + 1;
    }
  }
  return out;
}

TEST(msg_zerocopy, flag_ignored_without_so_zerocopy) {
  conformance_item(30);
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  auto p = pattern(272, 1);
  ssize_t n = send(src.get(), p.data(), p.size(), MSG_ZEROCOPY);
  ASSERT_EQ(n, ssize_t(p.size())) << "send(MSG_ZEROCOPY) without SO_ZEROCOPY: " << strerror(errno);
  auto r = read_one(sink, 2000);
  ASSERT_TRUE(r) << "the datagram did not arrive";
  EXPECT_EQ(r->data, p);
  // Without SO_ZEROCOPY no completion is ever queued.
  pollfd pf{src.get(), 0, 0};
  EXPECT_EQ(poll(&pf, 1, 200), 0) << "POLLERR on a socket without SO_ZEROCOPY";
  char control[128];
  msghdr m{};
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  errno = 0;
  EXPECT_EQ(recvmsg(src.get(), &m, MSG_ERRQUEUE | MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN) << "the error queue should be empty";
}

TEST(msg_zerocopy, completion_ids_and_ranges) {
  conformance_item(30);
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  int one = 1;
  ASSERT_EQ(setsockopt(src.get(), SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one), 0)
      << "setsockopt(SO_ZEROCOPY): " << strerror(errno);
  constexpr uint32_t kSends = 16;
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < kSends; ++i) sent.push_back(pattern(1000, i));
  for (uint32_t i = 0; i < kSends; ++i)
    ASSERT_EQ(send(src.get(), sent[i].data(), sent[i].size(), MSG_ZEROCOPY), ssize_t(sent[i].size()))
        << "send " << i << ": " << strerror(errno);
  for (uint32_t i = 0; i < kSends; ++i) {
    auto r = read_one(sink, 2000);
    ASSERT_TRUE(r) << "datagram " << i << " did not arrive";
    EXPECT_EQ(r->data, sent[i]) << "datagram " << i;
  }
  std::vector<Completion> done = read_completions(src.get(), kSends);
  std::vector<int> seen(kSends, 0);
  for (const Completion& c : done) {
    EXPECT_EQ(c.origin, SO_EE_ORIGIN_ZEROCOPY);
    EXPECT_EQ(c.err, 0u);
    ASSERT_LE(c.lo, c.hi) << "range [" << c.lo << ", " << c.hi << "]";
    ASSERT_LT(c.hi, kSends) << "completion id beyond the sends made";
    for (uint32_t id = c.lo; id <= c.hi; ++id) ++seen[id];
  }
  for (uint32_t id = 0; id < kSends; ++id) EXPECT_EQ(seen[id], 1) << "send id " << id << " completed " << seen[id] << " times";
  EXPECT_LE(done.size(), size_t(kSends));
  RecordProperty("notifications", int(done.size()));
}

TEST(msg_zerocopy, local_delivery_reports_copied) {
  conformance_item(31);
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  set_int(src.get(), SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
  constexpr uint32_t kSends = 8;
  auto p = pattern(1400, 3);
  for (uint32_t i = 0; i < kSends; ++i)
    ASSERT_EQ(send(src.get(), p.data(), p.size(), MSG_ZEROCOPY), ssize_t(p.size())) << strerror(errno);
  for (uint32_t i = 0; i < kSends; ++i) ASSERT_TRUE(read_one(sink, 2000)) << "datagram " << i;
  std::vector<Completion> done = read_completions(src.get(), kSends);
  ASSERT_FALSE(done.empty()) << "no completion within 5 s";
  for (const Completion& c : done)
    EXPECT_NE(c.code & SO_EE_CODE_ZEROCOPY_COPIED, 0)
        << "range [" << c.lo << ", " << c.hi << "] to a local socket over veth was not flagged COPIED";
}

TEST(msg_zerocopy, enobufs_at_optmem_limit) {
  conformance_item(32);
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  set_int(src.get(), SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
  // net.core.optmem_max is per network namespace (since 6.9); lowering it in
  // the lab's own generator namespace touches nothing outside the test.
  const std::string knob = "/proc/sys/net/core/optmem_max";
  std::string why;
  lab->gen_ns().run([&] {
    try {
      write_file(knob, "0");
    } catch (const EnvError& e) {
      why = e.what();
    }
  });
  if (!why.empty()) GTEST_SKIP() << "unsupported: cannot lower optmem_max in the lab namespace: " << why;
  auto p = pattern(1000, 5);
  errno = 0;
  ssize_t n = send(src.get(), p.data(), p.size(), MSG_ZEROCOPY);
  int e = errno;
  EXPECT_EQ(n, -1) << "a zerocopy send with optmem_max = 0 was accepted";
  EXPECT_EQ(e, ENOBUFS) << strerror(e);
  // The same datagram without MSG_ZEROCOPY needs no option memory.
  EXPECT_EQ(send(src.get(), p.data(), p.size(), 0), ssize_t(p.size())) << strerror(errno);
  auto r = read_one(sink, 2000);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->data, p);
}

// Pinned pages are charged to RLIMIT_MEMLOCK unless the sender has
// CAP_IPC_LOCK (mm_account_pinned_pages). Capabilities are per thread, so a
// helper thread drops CAP_IPC_LOCK from its effective set; the limit is per
// process and restored right after.
TEST(msg_zerocopy, enobufs_at_locked_page_limit) {
  conformance_item(32);
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  set_int(src.get(), SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &old), 0);
  rlimit zero{0, old.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_MEMLOCK, &zero), 0) << strerror(errno);
  auto p = pattern(8000, 9);
  ssize_t n = 0, n_plain = 0;
  int e = 0;
  std::string cap_error;
  std::thread t([&] {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &hdr, data) < 0) {
      cap_error = errno_text("capget", errno);
      return;
    }
    data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    if (syscall(SYS_capset, &hdr, data) < 0) {
      cap_error = errno_text("capset (drop CAP_IPC_LOCK)", errno);
      return;
    }
    errno = 0;
    n = send(src.get(), p.data(), p.size(), MSG_ZEROCOPY);
    e = errno;
    n_plain = send(src.get(), p.data(), p.size(), 0);
  });
  t.join();
  setrlimit(RLIMIT_MEMLOCK, &old);
  if (!cap_error.empty()) GTEST_SKIP() << "unsupported: " << cap_error;
  EXPECT_EQ(n, -1) << "a zerocopy send over RLIMIT_MEMLOCK = 0 without CAP_IPC_LOCK was accepted";
  EXPECT_EQ(e, ENOBUFS) << strerror(e);
  EXPECT_EQ(n_plain, ssize_t(p.size())) << "the plain send needs no locked pages";
}

// ---------------------------------------------------------------------------
// UDP GSO (tools/testing/selftests/net/udpgso.c)

// One sendmsg carrying `len` bytes with UDP_SEGMENT = gso_size; -errno on failure.
ssize_t send_gso(int fd, const std::vector<uint8_t>& data, uint16_t gso_size) {
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  std::memcpy(CMSG_DATA(c), &gso_size, sizeof gso_size);
  ssize_t n = sendmsg(fd, &m, 0);
  return n < 0 ? -errno : n;
}

TEST(udp_gso, segments_with_short_last) {
  conformance_item(33);
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  constexpr uint16_t kGso = 1000;
  auto data = pattern(3500, 11);  // 3 full segments and a 500-byte tail
  ASSERT_EQ(send_gso(src.get(), data, kGso), ssize_t(data.size()));
  size_t off = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = read_one(sink, 2000);
    ASSERT_TRUE(r) << "segment " << i << " did not arrive";
    size_t want = std::min<size_t>(kGso, data.size() - off);
    EXPECT_EQ(r->data.size(), want) << "segment " << i;
    EXPECT_EQ(r->data, std::vector<uint8_t>(data.begin() + ptrdiff_t(off), data.begin() + ptrdiff_t(off + want)))
        << "segment " << i;
    EXPECT_EQ(r->gso_size, 0) << "a socket without UDP_GRO gets plain datagrams";
    off += want;
  }
  EXPECT_FALSE(read_one(sink, 100)) << "more than 4 datagrams from one 3500-byte send with gso_size 1000";
}

TEST(udp_gso, rejects_more_than_max_segments) {
  conformance_item(33);
  ZC_REQUIRE_LAB(lab, false);
  // A bound sink, so no ICMP port-unreachable turns a later send into ECONNREFUSED.
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  constexpr uint16_t kGso = 10;
  EXPECT_EQ(send_gso(src.get(), pattern(128 * kGso, 1), kGso), ssize_t(128 * kGso))
      << "128 segments (UDP_MAX_SEGMENTS) should be accepted";
  EXPECT_EQ(send_gso(src.get(), pattern(129 * kGso, 1), kGso), -EINVAL) << "129 segments should be refused";
}

TEST(udp_gso, rejects_no_check) {
  conformance_item(33);
  ZC_REQUIRE_LAB(lab, false);
  // A bound sink, so no ICMP port-unreachable turns a later send into ECONNREFUSED.
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  set_int(src.get(), SOL_SOCKET, SO_NO_CHECK, 1, "SO_NO_CHECK");
  EXPECT_EQ(send_gso(src.get(), pattern(3000, 2), 1000), -EINVAL)
      << "GSO needs the UDP checksum: SO_NO_CHECK should make UDP_SEGMENT fail";
}

// ---------------------------------------------------------------------------
// UDP GRO (tools/testing/selftests/net/udpgro.sh): a socket with UDP_GRO
// receives what GRO merged as one read, with gso_size in a UDP_GRO cmsg.

// Reads until `want` payload bytes arrived (or 2 s of silence).
std::vector<Read> read_bytes(const Fd& fd, size_t want) {
  std::vector<Read> reads;
  size_t got = 0;
  while (got < want) {
    auto r = read_one(fd, 2000);
    if (!r) break;
    got += r->data.size();
    reads.push_back(std::move(*r));
  }
  return reads;
}

// A burst the receiving NAPI sees in one poll, as udpgro.sh makes it: an
// XDP program on the sink veth takes the GSO features off its peer
// (veth_fix_features), so one UDP_SEGMENT send is cut into datagrams at the
// sender's transmit, all queued to the sink's NAPI before it polls. GRO then
// decides alone whether they reach the socket merged or one by one.
constexpr int kBurst = 64;
constexpr size_t kGroPayload = 1000;

// XDP_PASS, two instructions: r0 = XDP_PASS; exit.
Fd load_xdp_pass() {
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = XDP_PASS;
  insns[1].code = BPF_JMP | BPF_EXIT;
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "zc_xdp_pass", "GPL", insns, 2, nullptr);
  if (fd < 0) throw EnvError(errno_text("bpf_prog_load(XDP_PASS)", -fd), -fd);
  return Fd(fd);
}

// Empty when the lab is ready, else why not (the kernel's reason).
std::string prepare_gro_lab(const Lab& lab, Fd* prog) {
  try {
    *prog = load_xdp_pass();
    const LabPort& port = lab.ports().at(0);
    lab.sink_ns().run([&] {
      int rc = bpf_xdp_attach(port.sink_ifindex, prog->get(), XDP_FLAGS_DRV_MODE, nullptr);
      if (rc < 0) throw EnvError(errno_text("bpf_xdp_attach(XDP_PASS, native) on " + port.sink_ifname, -rc), -rc);
    });
    wait_lab_forwards(lab);
  } catch (const EnvError& e) {
    return std::string("unsupported: ") + e.what();
  }
  return "";
}

std::vector<uint8_t> burst_bytes() {
  std::vector<uint8_t> all;
  for (int i = 0; i < kBurst; ++i) {
    auto p = pattern(kGroPayload, uint32_t(i));
    all.insert(all.end(), p.begin(), p.end());
  }
  return all;
}

Fd open_gro_sink(const Lab& lab) {
  Fd sink = open_sink(lab, kTestPort);
  set_int(sink.get(), IPPROTO_UDP, UDP_GRO, 1, "UDP_GRO");
  set_int(sink.get(), SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20, "SO_RCVBUFFORCE");
  return sink;
}

TEST(udp_gro, gro_on_coalesces_with_gso_size) {
  conformance_item(34);
  ZC_REQUIRE_LAB(lab, true);
  ASSERT_TRUE(lab->describe().value("gro", false)) << "the lab did not switch GRO on: " << lab->describe().dump();
  Fd prog;
  if (auto why = prepare_gro_lab(*lab, &prog); !why.empty()) GTEST_SKIP() << why;
  Fd sink = open_gro_sink(*lab);
  Fd src = open_source(*lab, kTestPort);
  const std::vector<uint8_t> burst = burst_bytes();
  ASSERT_EQ(send_gso(src.get(), burst, uint16_t(kGroPayload)), ssize_t(burst.size()));
  std::vector<Read> reads = read_bytes(sink, burst.size());
  std::vector<uint8_t> joined;
  size_t coalesced = 0;
  for (const Read& r : reads) {
    joined.insert(joined.end(), r.data.begin(), r.data.end());
    if (r.data.size() > kGroPayload) {
      ++coalesced;
      EXPECT_EQ(r.gso_size, int(kGroPayload)) << "a merged read of " << r.data.size() << " bytes";
      EXPECT_EQ(r.data.size() % kGroPayload, 0u);
    }
  }
  EXPECT_EQ(joined, burst) << "the burst's bytes, in order, across " << reads.size() << " reads";
  EXPECT_GT(coalesced, 0u) << "GRO on: none of " << reads.size() << " reads merged two or more datagrams";
  RecordProperty("reads", int(reads.size()));
}

TEST(udp_gro, gro_off_one_datagram_per_read) {
  conformance_item(34);
  ZC_REQUIRE_LAB(lab, false);
  EXPECT_FALSE(lab->describe().value("gro", true));
  Fd prog;
  if (auto why = prepare_gro_lab(*lab, &prog); !why.empty()) GTEST_SKIP() << why;
  Fd sink = open_gro_sink(*lab);
  Fd src = open_source(*lab, kTestPort);
  const std::vector<uint8_t> burst = burst_bytes();
  ASSERT_EQ(send_gso(src.get(), burst, uint16_t(kGroPayload)), ssize_t(burst.size()));
  std::vector<Read> reads = read_bytes(sink, burst.size());
  ASSERT_EQ(reads.size(), size_t(kBurst)) << "GRO off: one read per datagram";
  for (int i = 0; i < kBurst; ++i) {
    EXPECT_EQ(reads[size_t(i)].data, pattern(kGroPayload, uint32_t(i))) << "read " << i;
    EXPECT_EQ(reads[size_t(i)].gso_size, 0) << "read " << i;
  }
}

// ---------------------------------------------------------------------------
// io_uring multishot recv with a provided-buffer ring (io_uring_prep_recv_multishot(3))

std::string io_uring_unusable(int op, const char* name) {
  Usability u = probe_io_uring({op}, {name});
  return u.usable ? "" : "unsupported: " + u.reason;
}

TEST(io_uring_recv, multishot_flags_and_enobufs) {
  conformance_item(42);
  if (auto why = io_uring_unusable(IORING_OP_RECV, "IORING_OP_RECV"); !why.empty()) GTEST_SKIP() << why;
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  Uring ring(8, false);
  constexpr unsigned kBuffers = 4;
  BufferRing bufs(ring.get(), 7, kBuffers, 2048);
  auto arm = [&] {
    io_uring_sqe* s = ring.sqe();
    io_uring_prep_recv_multishot(s, sink.get(), nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 7;
    ASSERT_EQ(io_uring_submit(ring.get()), 1);
  };
  arm();
  // Two more datagrams than buffers, none handed back: four land, then the
  // request ends with -ENOBUFS and no F_MORE.
  constexpr uint32_t kSent = kBuffers + 2;
  for (uint32_t i = 0; i < kSent; ++i) {
    auto p = pattern(300 + i, i);
    ASSERT_EQ(send(src.get(), p.data(), p.size(), 0), ssize_t(p.size()));
  }
  std::vector<io_uring_cqe> cqes;
  std::vector<std::vector<uint8_t>> data;
  Clock::time_point t0 = Clock::now();
  while (Clock::now() - t0 < std::chrono::seconds(5)) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{0, 100000000};
    if (io_uring_wait_cqe_timeout(ring.get(), &cqe, &ts) < 0) continue;
    cqes.push_back(*cqe);
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
      uint8_t* b = bufs.buffer(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
      data.emplace_back(b, b + cqe->res);
    }
    io_uring_cqe_seen(ring.get(), cqe);
    if (!(cqes.back().flags & IORING_CQE_F_MORE)) break;
  }
  ASSERT_EQ(cqes.size(), size_t(kBuffers + 1)) << "CQEs until the multishot ended";
  for (unsigned i = 0; i < kBuffers; ++i) {
    EXPECT_EQ(cqes[i].res, int(300 + i)) << "CQE " << i;
    EXPECT_NE(cqes[i].flags & IORING_CQE_F_BUFFER, 0u) << "CQE " << i << " without IORING_CQE_F_BUFFER";
    EXPECT_NE(cqes[i].flags & IORING_CQE_F_MORE, 0u) << "CQE " << i << " without IORING_CQE_F_MORE while armed";
    if (i < data.size()) {
      EXPECT_EQ(data[i], pattern(300 + i, i)) << "CQE " << i;
    }
  }
  EXPECT_EQ(cqes.back().res, -ENOBUFS) << "the request should end with -ENOBUFS once the ring is empty";
  EXPECT_EQ(cqes.back().flags & IORING_CQE_F_MORE, 0u);
  // Buffers back, re-armed: the datagrams that waited in the socket arrive.
  for (unsigned i = 0; i < kBuffers; ++i) bufs.recycle(i);
  bufs.publish();
  arm();
  for (uint32_t i = kBuffers; i < kSent; ++i) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{2, 0};
    ASSERT_EQ(io_uring_wait_cqe_timeout(ring.get(), &cqe, &ts), 0) << "datagram " << i << " after re-arming";
    EXPECT_EQ(cqe->res, int(300 + i));
    EXPECT_NE(cqe->flags & IORING_CQE_F_MORE, 0u);
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
      uint8_t* b = bufs.buffer(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
      EXPECT_EQ(std::vector<uint8_t>(b, b + cqe->res), pattern(300 + i, i));
    }
    io_uring_cqe_seen(ring.get(), cqe);
  }
}

// ---------------------------------------------------------------------------
// io_uring send_zc (tools/testing/selftests/net/io_uring_zerocopy_tx.c)

TEST(io_uring_send_zc, result_then_notification) {
  conformance_item(43);
  if (auto why = io_uring_unusable(IORING_OP_SEND_ZC, "IORING_OP_SEND_ZC"); !why.empty()) GTEST_SKIP() << why;
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  Fd sink = open_sink(*lab, kTestPort);
  Fd src = open_source(*lab, kTestPort);
  Uring ring(8, false);
  auto p = pattern(1200, 4);
  io_uring_sqe* s = ring.sqe();
  io_uring_prep_send_zc(s, src.get(), p.data(), p.size(), 0, kSendZcReportUsage);
  io_uring_sqe_set_data64(s, 42);
  ASSERT_EQ(io_uring_submit(ring.get()), 1);
  auto r = read_one(sink, 2000);
  ASSERT_TRUE(r) << "the datagram did not arrive";
  EXPECT_EQ(r->data, p);
  std::vector<io_uring_cqe> cqes;
  for (int i = 0; i < 2; ++i) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{2, 0};
    ASSERT_EQ(io_uring_wait_cqe_timeout(ring.get(), &cqe, &ts), 0) << "CQE " << i << " of 2";
    cqes.push_back(*cqe);
    io_uring_cqe_seen(ring.get(), cqe);
  }
  EXPECT_EQ(cqes[0].user_data, 42u);
  EXPECT_EQ(cqes[0].res, int(p.size())) << "result CQE";
  EXPECT_NE(cqes[0].flags & IORING_CQE_F_MORE, 0u) << "the result CQE announces the notification with F_MORE";
  EXPECT_EQ(cqes[0].flags & IORING_CQE_F_NOTIF, 0u);
  EXPECT_EQ(cqes[1].user_data, 42u);
  EXPECT_NE(cqes[1].flags & IORING_CQE_F_NOTIF, 0u) << "the second CQE is the notification";
  EXPECT_EQ(cqes[1].flags & IORING_CQE_F_MORE, 0u) << "nothing follows the notification";
  EXPECT_NE(uint32_t(cqes[1].res) & kNotifUsageZcCopied, 0u)
      << "IORING_SEND_ZC_REPORT_USAGE to a local socket over veth should report IORING_NOTIF_USAGE_ZC_COPIED";
}

// ---------------------------------------------------------------------------
// Bounded floods through each transport: every sequence number once, intact.

TrialSpec flood_spec(const std::string& tx, const std::string& rx) {
  TrialSpec s;
  s.tx = parse_driver_spec(tx);
  s.rx = parse_driver_spec(rx);
  s.payload_bytes = 272;
  s.rate_pps = 20000;
  s.count = 20000;
  s.duration_s = 5.0;  // an upper bound: the count (1 s at this rate) ends the flood
  s.warmup_s = 0.2;
  s.flows = 2;
  s.lab = lab_options();
  s.suite = "conformance";
  pace_flood(s);  // an emulated CPU sustains far less (flood_rate.h)
  return s;
}




void expect_intact(const json& rec, uint64_t count) {
  SCOPED_TRACE(rec.value("name", "trial"));
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  const json& raw = rec.at("raw");
  const json& seq = raw.at("sequence");
  EXPECT_EQ(u64(raw, "sent_total"), count);
  EXPECT_EQ(u64(seq, "unique"), count) << "sequence: " << seq.dump();
  EXPECT_EQ(u64(seq, "duplicates"), 0u);
  EXPECT_EQ(u64(seq, "corrupt"), 0u);
  EXPECT_EQ(u64(raw, "received_total"), count);
  EXPECT_EQ(u64(rec.at("derived"), "lost_packets"), 0u) << rec.at("derived").value("drops", json()).dump();
}

TEST(msg_zerocopy, flood_integrity) {
  TrialSpec spec = flood_spec("msg_zerocopy", "recvmmsg");
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
  const json& tx = rec["raw"]["driver_stats"]["tx"];
  EXPECT_EQ(u64(tx, "completed_ids"), spec.count) << tx.dump();
  EXPECT_EQ(u64(tx, "copied_ids"), u64(tx, "completed_ids")) << "veth: every completion is a deferred copy";
  EXPECT_EQ(u64(tx, "buffers_in_flight_at_end"), 0u);
}

TEST(io_uring_send, flood_integrity) {
  TrialSpec spec = flood_spec("io_uring_send", "recvmmsg");
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
}

TEST(io_uring_send_zc, flood_integrity) {
  TrialSpec spec = flood_spec("io_uring_send_zc", "recvmmsg");
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
  const json& tx = rec["raw"]["driver_stats"]["tx"];
  EXPECT_EQ(u64(tx, "notification_cqes"), spec.count) << tx.dump();
  EXPECT_EQ(u64(tx, "buffers_in_flight_at_end"), 0u);
}

TEST(udp_gso, flood_integrity) {
  TrialSpec spec = flood_spec("udp_gso", "recvmmsg");
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
}

TEST(io_uring_recv, flood_integrity) {
  TrialSpec spec = flood_spec("sendmmsg", "io_uring_recv");
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
}

// The io_uring_recv driver opened by this test in the lab's sink namespace on
// kTestPort, for datagrams this test sends (docs/conformance.md item 46).
std::unique_ptr<RxDriver> open_uring_sink(const Lab& lab, size_t payload_bytes,
                                          const std::map<std::string, std::string>& options) {
  const DriverInfo& info = find_driver("io_uring_recv", Direction::rx);
  RxContext ctx;
  const LabPort& port = lab.ports().at(0);
  ctx.ifname = port.sink_ifname;
  ctx.ifindex = port.sink_ifindex;
  ctx.local_ip = port.sink_ip;
  ctx.udp_port = kTestPort;
  ctx.payload_bytes = payload_bytes;
  ctx.options = validate_driver_options(info, options);
  std::unique_ptr<RxDriver> sink = info.make_rx();
  lab.sink_ns().run([&] { sink->open(ctx); });
  return sink;
}

// MSG_TRUNC in io_uring_recvmsg_out.flags: the provided buffer cut the
// datagram. The cut one is built so that what fits the buffer is itself a
// valid flood payload of that length (its checksum passes over the bytes
// received), so only the kernel's MSG_TRUNC can tell it is not whole: it
// must count corrupt, never as a good packet.
TEST(io_uring_recv, truncated_datagram_counts_corrupt) {
  conformance_item(46);
  if (auto why = io_uring_unusable(IORING_OP_RECVMSG, "IORING_OP_RECVMSG"); !why.empty()) GTEST_SKIP() << why;
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  constexpr size_t kPayload = 272;
  std::unique_ptr<RxDriver> sink = open_uring_sink(*lab, kPayload, {});
  Fd src = open_source(*lab, kTestPort);
  // The payload room of a recvmsg buffer (drivers/io_uring_recv.cc): one byte
  // more than any datagram of the lab (MTU 1500).
  const size_t room = receive_buffer_bytes(1500, kPayload);
  const uint64_t tx = monotonic_ns();
  std::vector<uint8_t> good(kPayload), cut(room + 1000, 0xab);
  flood_write_payload(cut.data(), room, FloodHeader{1, tx, 0});
  auto send_good = [&](uint64_t seq) {
    flood_write_payload(good.data(), good.size(), FloodHeader{seq, tx, 0});
    ASSERT_EQ(send(src.get(), good.data(), good.size(), 0), ssize_t(good.size())) << "datagram " << seq;
  };
  send_good(0);
  ASSERT_EQ(send(src.get(), cut.data(), cut.size(), 0), ssize_t(cut.size())) << "the cut datagram";
  send_good(2);
  Accounting acct(AccountingMode::full, 1);
  acct.set_latency_window(0, UINT64_MAX - 1);
  Clock::time_point t0 = Clock::now();
  while (acct.packets() < 3 && Clock::now() - t0 < std::chrono::seconds(5)) sink->receive(acct, 100);
  const json st = sink->kernel_stats();
  ASSERT_EQ(acct.packets(), 3u) << st.dump();
  EXPECT_EQ(u64(st, "truncated_reads"), 1u) << st.dump();
  EXPECT_EQ(acct.corrupt(), 1u) << acct.sequence_json().dump();
  EXPECT_EQ(acct.unique(), 2u) << "the cut datagram counted as a good packet: " << acct.sequence_json().dump();
  // Only the whole datagrams reach the stamp counts. Whether these first ones
  // carry a stamp is the kernel's timing: the first SO_TIMESTAMPING socket
  // turns stamping on from a work item (net_enable_timestamp), so datagrams
  // right after open() may come unstamped.
  EXPECT_EQ(acct.stamps().software + acct.stamps().unstamped, 2u);
  EXPECT_EQ(u64(st, "control_truncated"), 0u) << st.dump();
  EXPECT_EQ(st.value("op", ""), "recvmsg");
}

// udp_gro=on needs the UDP_GRO cmsg, which op=recv cannot return: refused
// as a usage error with one line naming both options, before any traffic.
TEST(io_uring_recv, udp_gro_with_op_recv_is_a_usage_error) {
  conformance_item(46);
  ZC_REQUIRE_LAB(lab, false);
  try {
    open_uring_sink(*lab, 272, {{"op", "recv"}, {"udp_gro", "on"}});
    ADD_FAILURE() << "udp_gro=on with op=recv was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("udp_gro=on needs op=recvmsg"), std::string::npos) << e.what();
  }
}

// op=recv: today's multishot IORING_OP_RECV path, no stamps, and its record
// says why.
TEST(io_uring_recv, op_recv_flood_integrity_without_stamps) {
  conformance_item(46);
  TrialSpec spec = flood_spec("sendmmsg", "io_uring_recv:op=recv");
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
  const json& raw = rec["raw"];
  EXPECT_EQ(raw["driver_stats"]["rx"].value("op", ""), "recv") << raw["driver_stats"]["rx"].dump();
  const json& ts = raw["timestamps"];
  EXPECT_EQ(ts.value("software", true), false) << ts.dump();
  EXPECT_NE(ts.value("reason", "").find("IORING_OP_RECV"), std::string::npos) << ts.dump();
  const json& lat = raw["latency_ns"];
  EXPECT_GT(u64(lat, "count"), 0u);
  EXPECT_EQ(u64(lat["stamps"], "software"), 0u) << lat["stamps"].dump();
  EXPECT_EQ(u64(lat["stack"], "count"), 0u);
}

// A GSO sender and a UDP_GRO socket: the kernel hands the socket each GSO
// datagram whole (udp_unexpected_gso), so the sink must split it by gso_size.
TEST(io_uring_recv, udp_gro_reads_split_by_gso_size) {
  TrialSpec spec = flood_spec("udp_gso:segments=16", "io_uring_recv:udp_gro=on");
  ZC_RUN_FLOOD(spec, rec);
  expect_intact(rec, spec.count);
  const json& rx = rec["raw"]["driver_stats"]["rx"];
  EXPECT_GT(u64(rx, "coalesced_reads"), 0u) << rx.dump();
}

// The same path with a stream: TCP MSG_ZEROCOPY into a listener of this test,
// which cuts the stream into payload-sized records for the accounting.
TEST(msg_zerocopy, tcp_stream_intact) {
  conformance_item(30);
  ZC_REQUIRE_LAB(lab, false);
  wait_lab_forwards(*lab);
  const LabPort& port = lab->ports().at(0);
  constexpr size_t kPayload = 1000;
  const FloodRate pace = flood_rate(50000, 20000, 10.0);
  const uint64_t count = pace.count;
  Fd listener = open_sink(*lab, kFloodUdpPort, SOCK_STREAM);
  Accounting acct(AccountingMode::full, 1);
  std::atomic<bool> stop{false};
  std::exception_ptr sink_error;
  std::thread sink([&] {
    try {
      if (!wait_readable(listener.get(), 5000)) throw InternalError("no TCP connection within 5 s");
      Fd conn(accept(listener.get(), nullptr, nullptr));
      check_sys(conn.get(), "accept");
      std::vector<uint8_t> buf(kPayload * 64);
      size_t have = 0;
      while (!stop.load() || wait_readable(conn.get(), 0)) {
        if (!wait_readable(conn.get(), 50)) continue;
        ssize_t n = recv(conn.get(), buf.data() + have, buf.size() - have, MSG_DONTWAIT);
        if (n <= 0) break;
        have += size_t(n);
        acct.begin_batch();
        size_t off = 0;
        for (; off + kPayload <= have; off += kPayload) acct.on_packet(buf.data() + off, kPayload);
        std::memmove(buf.data(), buf.data() + off, have - off);
        have -= off;
      }
    } catch (...) {
      sink_error = std::current_exception();
    }
  });
  json tx_stats;
  uint64_t sent = 0;
  std::exception_ptr gen_error;
  std::thread gen([&] {
    try {
      lab->gen_ns().enter_this_thread();
      const DriverInfo& info = find_driver("msg_zerocopy", Direction::tx);
      TxContext ctx;
      ctx.ifname = port.gen_ifname;
      ctx.ifindex = port.gen_ifindex;
      ctx.src_ip = port.gen_ip;
      ctx.dst_ip = port.sink_ip;
      ctx.src_port = kFloodSrcPortBase;
      ctx.dst_port = kFloodUdpPort;
      ctx.payload_bytes = kPayload;
      ctx.flows = 1;
      ctx.options = validate_driver_options(info, {{"proto", "tcp"}, {"batch", "8"}});
      auto tx = info.make_tx();
      tx->open(ctx);
      FloodSpec fs;
      fs.payload_bytes = kPayload;
      fs.rate_pps = pace.rate_pps;
      fs.max_packets = count;
      fs.end_ns = monotonic_ns() + uint64_t(pace.duration_s * 1e9);
      FloodGenerator flood(*tx, fs);
      std::atomic<bool> never{false};
      flood.run(monotonic_ns(), never);
      sent = flood.sent();
      tx_stats = tx->kernel_stats();
    } catch (...) {
      gen_error = std::current_exception();
    }
    stop.store(true);
  });
  gen.join();
  sink.join();
  if (gen_error) std::rethrow_exception(gen_error);
  if (sink_error) std::rethrow_exception(sink_error);
  EXPECT_EQ(sent, count);
  EXPECT_EQ(acct.packets(), count);
  EXPECT_EQ(acct.unique(), count);
  EXPECT_EQ(acct.corrupt(), 0u);
  EXPECT_EQ(acct.duplicates(), 0u);
  EXPECT_EQ(u64(tx_stats, "completed_ids"), u64(tx_stats, "send_ids")) << tx_stats.dump();
  EXPECT_EQ(u64(tx_stats, "buffers_in_flight_at_end"), 0u) << tx_stats.dump();
  RecordProperty("tcp_coalesced_notifications", int(u64(tx_stats, "coalesced_notifications")));
}

}  // namespace
}  // namespace zc
