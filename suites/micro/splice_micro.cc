// Per-call cost of vmsplice(2) and splice(2), for claim 3 ("one vmsplice per
// packet costs ~80 µs" on a small embedded CPU, years ago). Google Benchmark
// with manual time: each iteration times only the call under test (the
// set-up that makes the call possible — filling or emptying the pipe,
// draining the receiver — runs outside the timed part), so the reported time
// per iteration is the cost of one call. Socket benchmarks run over loopback
// inside an anonymous network namespace (zc::Netns): no host interface is
// touched, and they skip with the reason where one cannot be created.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "drivers/splice_util.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/netns.h"
#include "harness/pacer.h"

namespace zc {
namespace {

constexpr uint16_t kPort = 9000;

// Enters (once, on the benchmark thread) a fresh namespace with loopback up.
// Empty on success, else why not.
std::string enter_private_netns() {
  static std::string why = [] {
    try {
      static Netns ns = Netns::create_anonymous();
      ns.enter_this_thread();
      return std::string();
    } catch (const Error& e) {
      return std::string("unsupported: cannot enter a private network namespace: ") + e.what();
    }
  }();
  return why;
}

std::vector<uint8_t> flood_payload(size_t len) {
  std::vector<uint8_t> p(len);
  flood_write_payload(p.data(), len, FloodHeader{});
  return p;
}

// A UDP receiver on 127.0.0.1 and a sender connected to it, with a big
// receive buffer so drains between timed calls keep it from dropping.
struct UdpPair {
  Fd rx, tx;
  UdpPair() {
    in_addr lo{htonl(INADDR_LOOPBACK)};
    rx = open_udp_sink_socket(lo, kPort, 32 << 20);
    check_sys(fcntl(rx.get(), F_SETFL, O_NONBLOCK), "fcntl(O_NONBLOCK)");
    tx = open_udp_source_socket(lo, kPort + 1, lo, kPort, 0);
  }
  void drain(std::vector<uint8_t>& buf) {
    while (recv(rx.get(), buf.data(), buf.size(), MSG_DONTWAIT) >= 0) {
    }
  }
};

void set_error(benchmark::State& state, const std::string& what) { state.SkipWithError(what.c_str()); }

uint64_t elapsed_since(uint64_t t0) { return monotonic_ns() - t0; }

// vmsplice of one payload into an empty pipe (the pipe is emptied, untimed,
// by splicing to /dev/null).
void BM_vmsplice_to_pipe(benchmark::State& state) {
  const size_t len = size_t(state.range(0));
  std::vector<uint8_t> payload = flood_payload(len);
  Pipe pipe = open_pipe(1 << 20);
  Fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  for (auto _ : state) {
    iovec iov{payload.data(), len};
    uint64_t t0 = monotonic_ns();
    ssize_t v = vmsplice(pipe.write_end.get(), &iov, 1, 0);
    state.SetIterationTime(double(elapsed_since(t0)) / 1e9);
    if (v != ssize_t(len)) return set_error(state, errno_text("vmsplice", errno));
    if (splice(pipe.read_end.get(), nullptr, null.get(), nullptr, len, 0) != ssize_t(len))
      return set_error(state, errno_text("splice(pipe -> /dev/null)", errno));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

// splice of one payload from a pipe to /dev/null (the pipe is filled,
// untimed, by vmsplice).
void BM_splice_pipe_to_null(benchmark::State& state) {
  const size_t len = size_t(state.range(0));
  std::vector<uint8_t> payload = flood_payload(len);
  Pipe pipe = open_pipe(1 << 20);
  Fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  for (auto _ : state) {
    iovec iov{payload.data(), len};
    if (vmsplice(pipe.write_end.get(), &iov, 1, 0) != ssize_t(len)) return set_error(state, errno_text("vmsplice", errno));
    uint64_t t0 = monotonic_ns();
    ssize_t w = splice(pipe.read_end.get(), nullptr, null.get(), nullptr, len, 0);
    state.SetIterationTime(double(elapsed_since(t0)) / 1e9);
    if (w != ssize_t(len)) return set_error(state, errno_text("splice(pipe -> /dev/null)", errno));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

// One datagram the vmsplice way: vmsplice + splice(pipe -> UDP socket), both
// timed — the per-packet pair of claim 3. Loopback delivery runs inside the
// send, as the receive softirq would on a veth.
void BM_vmsplice_splice_udp(benchmark::State& state) {
  if (std::string why = enter_private_netns(); !why.empty()) return set_error(state, why);
  const size_t len = size_t(state.range(0));
  std::vector<uint8_t> payload = flood_payload(len), buf(len + 64);
  Pipe pipe = open_pipe(1 << 20);
  UdpPair udp;
  uint64_t n = 0;
  for (auto _ : state) {
    iovec iov{payload.data(), len};
    uint64_t t0 = monotonic_ns();
    ssize_t v = vmsplice(pipe.write_end.get(), &iov, 1, 0);
    ssize_t w = splice(pipe.read_end.get(), nullptr, udp.tx.get(), nullptr, len, 0);
    state.SetIterationTime(double(elapsed_since(t0)) / 1e9);
    if (v != ssize_t(len) || w != ssize_t(len)) return set_error(state, errno_text("vmsplice/splice to UDP", errno));
    if (++n % 256 == 0) udp.drain(buf);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

// The same datagram by a plain send(2): the copy path the claim compares with.
void BM_send_udp(benchmark::State& state) {
  if (std::string why = enter_private_netns(); !why.empty()) return set_error(state, why);
  const size_t len = size_t(state.range(0));
  std::vector<uint8_t> payload = flood_payload(len), buf(len + 64);
  UdpPair udp;
  uint64_t n = 0;
  for (auto _ : state) {
    uint64_t t0 = monotonic_ns();
    ssize_t w = send(udp.tx.get(), payload.data(), len, 0);
    state.SetIterationTime(double(elapsed_since(t0)) / 1e9);
    if (w != ssize_t(len)) return set_error(state, errno_text("send", errno));
    if (++n % 256 == 0) udp.drain(buf);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

// The receive side: splice of one queued datagram from a UDP socket into a
// pipe (the `splice` sink's per-packet call); sending and emptying the pipe
// are untimed.
void BM_splice_udp_to_pipe(benchmark::State& state) {
  if (std::string why = enter_private_netns(); !why.empty()) return set_error(state, why);
  const size_t len = size_t(state.range(0));
  std::vector<uint8_t> payload = flood_payload(len);
  Pipe pipe = open_pipe(1 << 20);
  Fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  UdpPair udp;
  for (auto _ : state) {
    if (send(udp.tx.get(), payload.data(), len, 0) != ssize_t(len)) return set_error(state, errno_text("send", errno));
    if (!wait_readable(udp.rx.get(), 1000)) return set_error(state, "the loopback datagram did not arrive within 1 s");
    uint64_t t0 = monotonic_ns();
    ssize_t r = splice(udp.rx.get(), nullptr, pipe.write_end.get(), nullptr, len + 64, SPLICE_F_NONBLOCK);
    state.SetIterationTime(double(elapsed_since(t0)) / 1e9);
    if (r != ssize_t(len)) return set_error(state, errno_text("splice(UDP socket -> pipe)", errno));
    if (splice(pipe.read_end.get(), nullptr, null.get(), nullptr, len, 0) != ssize_t(len))
      return set_error(state, errno_text("splice(pipe -> /dev/null)", errno));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

// Claim 3's frame (7200-byte payload) plus the suite's 272 and 1472.
void payload_sizes(benchmark::internal::Benchmark* b) {
  for (int64_t len : {272, 1472, 7200}) b->Arg(len);
  b->ArgName("payload_bytes")->UseManualTime();
}

BENCHMARK(BM_vmsplice_to_pipe)->Apply(payload_sizes);
BENCHMARK(BM_splice_pipe_to_null)->Apply(payload_sizes);
BENCHMARK(BM_vmsplice_splice_udp)->Apply(payload_sizes);
BENCHMARK(BM_send_udp)->Apply(payload_sizes);
BENCHMARK(BM_splice_udp_to_pipe)->Apply(payload_sizes);

}  // namespace
}  // namespace zc
