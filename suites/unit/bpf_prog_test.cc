// The lab's hand-assembled XDP programs (harness/xdp_prog.cc) run on crafted
// frames through BPF_PROG_TEST_RUN: no device, no namespace, just the
// verifier and the program. Each case checks the verdict and what the program
// did to its map.
//
// Loading BPF needs root (CAP_BPF); where the kernel refuses (EPERM, ENOSYS,
// or test_run unsupported) the test is skipped with the kernel's reason.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "harness/errors.h"
#include "harness/xdp_prog.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif

namespace zc {
namespace {

constexpr uint16_t kPort = 9000;

// ---- frames --------------------------------------------------------------------

void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f[at] = uint8_t(v >> 8);
  f[at + 1] = uint8_t(v);
}

// Ethernet + IPv4 (IHL 5) + UDP to `port`, `payload` bytes; the IPv4 total
// length is what the header says, so tests can lie in it.
std::vector<uint8_t> udp4_frame(uint16_t port, size_t payload) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload, 0);
  const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 2}, src[6] = {0x02, 0, 0, 0, 0, 1};
  std::memcpy(&f[0], dst, 6);
  std::memcpy(&f[6], src, 6);
  put16(f, 12, 0x0800);
  f[14] = 0x45;
  put16(f, 16, uint16_t(20 + 8 + payload));
  f[22] = 64;
  f[23] = 17;  // UDP
  const uint8_t sip[4] = {198, 18, 0, 1}, dip[4] = {198, 18, 0, 2};
  std::memcpy(&f[26], sip, 4);
  std::memcpy(&f[30], dip, 4);
  put16(f, 34, 40000);
  put16(f, 36, port);
  put16(f, 38, uint16_t(8 + payload));
  for (size_t i = 0; i < payload; ++i) f[42 + i] = uint8_t(i);
  return f;
}

// The same datagram with 4 bytes of IP options (IHL 6): the UDP port moves to 40.
std::vector<uint8_t> udp4_with_options(uint16_t port, size_t payload) {
  std::vector<uint8_t> f = udp4_frame(port, payload);
  f.insert(f.begin() + 34, {0x01, 0x01, 0x01, 0x00});  // NOP NOP NOP EOL
  f[14] = 0x46;
  put16(f, 16, uint16_t(24 + 8 + payload));
  return f;
}

// 802.1Q tag (VLAN 5) in front of the IPv4 datagram.
std::vector<uint8_t> vlan_frame(uint16_t port, size_t payload) {
  std::vector<uint8_t> f = udp4_frame(port, payload);
  f.insert(f.begin() + 12, {0x81, 0x00, 0x00, 0x05});
  return f;
}

std::vector<uint8_t> arp_frame() {
  std::vector<uint8_t> f(42, 0);
  std::memset(&f[0], 0xff, 6);
  put16(f, 12, 0x0806);
  put16(f, 14, 1);
  put16(f, 16, 0x0800);
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, 1);  // request
  // Bytes 36..37 (the IPv4 UDP port's place) hold the target IP's tail:
  // make them the port, so only the EtherType check can reject it.
  put16(f, 36, kPort);
  return f;
}

// IPv6/UDP to the port: the IPv6 header is 40 bytes, so the port is at 56.
std::vector<uint8_t> udp6_frame(uint16_t port, size_t payload) {
  std::vector<uint8_t> f(14 + 40 + 8 + payload, 0);
  put16(f, 12, 0x86dd);
  f[14] = 0x60;
  put16(f, 18, uint16_t(8 + payload));
  f[20] = 17;
  f[21] = 64;
  put16(f, 56, port);
  put16(f, 58, uint16_t(8 + payload));
  return f;
}

// ---- running -------------------------------------------------------------------

// ENOTSUPP is the kernel's internal 524, which a test_run the program type
// lacks returns to user space; the C library has no name for it.
constexpr int kKernelENOTSUPP = 524;

// Runs the program once on the frame and returns the XDP verdict.
uint32_t test_run(int prog_fd, std::vector<uint8_t> frame, int* err = nullptr) {
  std::vector<uint8_t> out(frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = uint32_t(frame.size()), .data_size_out = uint32_t(out.size()), .repeat = 1);
  if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) {
    const int e = errno;
    if (err) *err = e;
    else ADD_FAILURE() << errno_text("bpf(BPF_PROG_TEST_RUN)", e);
    return UINT32_MAX;
  }
  return opts.retval;
}

// The kernel's refusal as a skip reason, or empty when XDP programs can be
// loaded and test-run here.
std::string bpf_unavailable_reason() {
  BpfFd p;
  try {
    p = load_xdp_pass_program();
  } catch (const EnvError& e) {
    if (e.err == EPERM || e.err == EACCES || e.err == ENOSYS)
      return std::string("BPF programs cannot be loaded here (needs root/CAP_BPF): ") + e.what();
    throw;  // anything else is the program's fault: fail
  }
  int e = 0;
  if (test_run(p.get(), std::vector<uint8_t>(64, 0), &e) == UINT32_MAX) {
    if (e == kKernelENOTSUPP) return "bpf(BPF_PROG_TEST_RUN) of an XDP program: not supported by this kernel (ENOTSUPP)";
    if (e == EPERM || e == EOPNOTSUPP || e == ENOSYS) return errno_text("bpf(BPF_PROG_TEST_RUN) of an XDP program", e);
    return "";  // let the tests fail on it with the errno
  }
  return "";
}

#define REQUIRE_BPF()                                         \
  do {                                                        \
    static const std::string why = bpf_unavailable_reason(); \
    if (!why.empty()) GTEST_SKIP() << why;                    \
  } while (0)


// The xdp_drop sink's program and its per-CPU counter, summed over CPUs.
struct CountDrop {
  BpfFd map = create_map(BPF_MAP_TYPE_PERCPU_ARRAY, "zc_test_count", 4, 16, 1);
  BpfFd prog = load_count_and_drop_program(map.get(), kPort);

  struct Totals {
    uint64_t packets = 0, bytes = 0;
  };
  Totals totals() const {
    const int ncpu = libbpf_num_possible_cpus();
    EXPECT_GT(ncpu, 0);
    std::vector<uint64_t> v(size_t(ncpu > 0 ? ncpu : 1) * 2);
    uint32_t key = 0;
    EXPECT_EQ(bpf_map_lookup_elem(map.get(), &key, v.data()), 0) << errno_text("lookup", errno);
    Totals t;
    for (size_t i = 0; i + 1 < v.size(); i += 2) t.packets += v[i], t.bytes += v[i + 1];
    return t;
  }
};

using bpf_prog = ::testing::Test;

// ---- xdp_drop: count and drop the flood ------------------------------------------

TEST(bpf_prog, CountDropCountsTheFloodFrame) {
  REQUIRE_BPF();
  CountDrop c;
  EXPECT_EQ(test_run(c.prog.get(), udp4_frame(kPort, 100)), uint32_t(XDP_DROP));
  EXPECT_EQ(test_run(c.prog.get(), udp4_frame(kPort, 1)), uint32_t(XDP_DROP));
  auto t = c.totals();
  EXPECT_EQ(t.packets, 2u);
  EXPECT_EQ(t.bytes, 101u);  // UDP payload bytes, no headers
}

TEST(bpf_prog, CountDropCountsAnEmptyDatagram) {
  REQUIRE_BPF();
  CountDrop c;
  EXPECT_EQ(test_run(c.prog.get(), udp4_frame(kPort, 0)), uint32_t(XDP_DROP));  // exactly 42 bytes
  auto t = c.totals();
  EXPECT_EQ(t.packets, 1u);
  EXPECT_EQ(t.bytes, 0u);
}

// Everything that is not the flood passes to the stack, uncounted.
struct PassCase {
  const char* what;
  std::vector<uint8_t> frame;
};

TEST(bpf_prog, CountDropPassesEverythingElse) {
  REQUIRE_BPF();
  std::vector<PassCase> cases;
  cases.push_back({"wrong UDP port", udp4_frame(kPort + 1, 100)});
  cases.push_back({"IP options (IHL 6)", udp4_with_options(kPort, 100)});
  cases.push_back({"VLAN-tagged", vlan_frame(kPort, 100)});
  cases.push_back({"ARP", arp_frame()});
  cases.push_back({"IPv6/UDP to the port", udp6_frame(kPort, 100)});
  {
    auto f = udp4_frame(kPort, 100);
    f.resize(41);  // one byte short of the UDP header's end
    cases.push_back({"truncated inside the UDP header", f});
  }
  {
    auto f = udp4_frame(kPort, 0);
    f.resize(14);  // Ethernet header only
    cases.push_back({"runt (14 bytes)", f});
  }
  {
    auto f = udp4_frame(kPort, 100);
    f[23] = 6;  // TCP
    cases.push_back({"TCP", f});
  }
  {
    auto f = udp4_frame(kPort, 100);
    put16(f, 20, 0x2000);  // MF: first fragment
    cases.push_back({"first fragment (MF)", f});
  }
  {
    auto f = udp4_frame(kPort, 100);
    put16(f, 20, 0x0010);  // offset 128 bytes: no UDP header here at all
    cases.push_back({"later fragment", f});
  }
  {
    auto f = udp4_frame(kPort, 100);
    put16(f, 16, 20);  // total length below IPv4 + UDP headers
    cases.push_back({"IPv4 total length 20 (< 28)", f});
  }
  {
    auto f = udp4_frame(kPort, 100);
    put16(f, 16, uint16_t(20 + 8 + 101));  // says one byte more than the frame holds
    cases.push_back({"IPv4 total length past the frame's end", f});
  }
  CountDrop c;
  for (const auto& k : cases) {
    SCOPED_TRACE(k.what);
    EXPECT_EQ(test_run(c.prog.get(), k.frame), uint32_t(XDP_PASS));
    auto t = c.totals();
    EXPECT_EQ(t.packets, 0u);
    EXPECT_EQ(t.bytes, 0u);
  }
}

TEST(bpf_prog, CountDropAcceptsTrailingPadding) {
  // A frame longer than the IPv4 total length (Ethernet minimum padding) is
  // still the flood; the byte count comes from the header, not the frame.
  REQUIRE_BPF();
  CountDrop c;
  auto f = udp4_frame(kPort, 4);
  f.resize(60, 0);
  EXPECT_EQ(test_run(c.prog.get(), f), uint32_t(XDP_DROP));
  auto t = c.totals();
  EXPECT_EQ(t.packets, 1u);
  EXPECT_EQ(t.bytes, 4u);
}

// ---- the xdp lab's programs ------------------------------------------------------

TEST(bpf_prog, PassProgramPassesAnything) {
  REQUIRE_BPF();
  BpfFd p = load_xdp_pass_program();
  EXPECT_EQ(test_run(p.get(), udp4_frame(kPort, 100)), uint32_t(XDP_PASS));
  EXPECT_EQ(test_run(p.get(), arp_frame()), uint32_t(XDP_PASS));
}

TEST(bpf_prog, AssemblerExitWithGivesThatVerdict) {
  REQUIRE_BPF();
  BpfAsm a;
  a.exit_with(XDP_TX);  // af_xdp conformance item 41's reflector
  BpfFd p = load_xdp_program("zc_test_tx", a.finish());
  EXPECT_EQ(test_run(p.get(), udp4_frame(kPort, 10)), uint32_t(XDP_TX));
}

// test_run gives rx_queue_index 0 (no ctx_in): the program looks up XSKMAP
// slot 0. Without LIVE_FRAMES, test_run returns bpf_redirect_map's value and
// redirects nothing, so the verdict is the whole observable effect.
TEST(bpf_prog, XskRedirectPassesWithoutASocket) {
  REQUIRE_BPF();
  BpfFd map = create_map(BPF_MAP_TYPE_XSKMAP, "zc_test_xsks", 4, 4, 4);
  BpfFd p = load_xsk_redirect_program(map.get());
  EXPECT_EQ(test_run(p.get(), udp4_frame(kPort, 100)), uint32_t(XDP_PASS));
  EXPECT_EQ(test_run(p.get(), arp_frame()), uint32_t(XDP_PASS));
}

TEST(bpf_prog, XskRedirectRedirectsToTheQueuesSocket) {
  REQUIRE_BPF();
  BpfFd map = create_map(BPF_MAP_TYPE_XSKMAP, "zc_test_xsks", 4, 4, 4);
  BpfFd p = load_xsk_redirect_program(map.get());
  const int xsk = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (xsk < 0) GTEST_SKIP() << errno_text("socket(AF_XDP)", errno);
  BpfFd xsk_owner(xsk);  // closes it
  uint32_t slot = 1, fd = uint32_t(xsk);
  // A socket on another queue: queue 0's frames still pass.
  ASSERT_EQ(bpf_map_update_elem(map.get(), &slot, &fd, BPF_ANY), 0) << errno_text("XSKMAP update slot 1", errno);
  EXPECT_EQ(test_run(p.get(), udp4_frame(kPort, 100)), uint32_t(XDP_PASS));
  slot = 0;
  ASSERT_EQ(bpf_map_update_elem(map.get(), &slot, &fd, BPF_ANY), 0) << errno_text("XSKMAP update slot 0", errno);
  // Every frame on that queue goes to the socket, flood or not: the socket's
  // reader sorts them (drivers/af_xdp.cc).
  EXPECT_EQ(test_run(p.get(), udp4_frame(kPort, 100)), uint32_t(XDP_REDIRECT));
  EXPECT_EQ(test_run(p.get(), arp_frame()), uint32_t(XDP_REDIRECT));
  ASSERT_EQ(bpf_map_delete_elem(map.get(), &slot), 0) << errno_text("XSKMAP delete slot 0", errno);
  EXPECT_EQ(test_run(p.get(), udp4_frame(kPort, 100)), uint32_t(XDP_PASS));
}

}  // namespace
}  // namespace zc
