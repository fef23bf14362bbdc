// The splice family (splice, vmsplice, tee, sendfile) against the kernel's
// contract, docs/conformance.md items 25-29, plus flood integrity of the `splice`
// sink and the `vmsplice` and `sendfile` transmitters, over UDP and TCP,
// through real lab trials.
//
// The syscall checks use pipes, /dev/null and unnamed scratch files in
// /dev/shm (tmpfs); the relays and floods run between the lab's two anonymous
// namespaces (198.18.0.1 -> 198.18.0.2). Without root, checks that need the
// lab skip with the reason.
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/splice_util.h"
#include "drivers/tcp_stream.h"
#include "drivers/udp_socket.h"
#include "harness/errors.h"
#include "harness/lab.h"
#include "harness/trial.h"
#include "suites/conformance/flood_run.h"
#include "suites/conformance/flood_rate.h"
#include "suites/conformance/records.h"

namespace zc {
namespace {

using nlohmann::json;

constexpr uint16_t kRelayPort = 7100;
constexpr uint16_t kBackPort = 7101;
constexpr const char* kScratchDir = "/dev/shm";

void conformance_item(int n) { ::testing::Test::RecordProperty(kConformanceItemProperty, n); }

std::vector<uint8_t> pattern(size_t len, uint32_t tag) {
  std::vector<uint8_t> p(len);
  for (size_t i = 0; i < len; ++i) p[i] = uint8_t(tag * 31 + i * 7 + 1);
  return p;
}

// A scratch file holding `content`, its file offset back at 0.
Fd file_with(const std::vector<uint8_t>& content) {
  Fd fd = open_scratch_file(kScratchDir);
  check_sys(pwrite(fd.get(), content.data(), content.size(), 0), "pwrite(scratch file)");
  return fd;
}

Fd dev_null() {
  Fd fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  check_sys(fd.get(), "open(/dev/null)");
  return fd;
}

std::vector<uint8_t> read_n(int fd, size_t n) {
  std::vector<uint8_t> out(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, out.data() + got, n - got);
    if (r <= 0) break;
    got += size_t(r);
  }
  out.resize(got);
  return out;
}

// ---------------------------------------------------------------------------
// splice(2), item 25

TEST(splice, neither_end_pipe_einval) {
  conformance_item(25);
  Fd file = file_with(pattern(4096, 1));
  Fd null = dev_null();
  errno = 0;
  EXPECT_EQ(splice(file.get(), nullptr, null.get(), nullptr, 100, 0), -1);
  EXPECT_EQ(errno, EINVAL) << "splice(file -> /dev/null): " << strerror(errno);
}

TEST(splice, offset_on_pipe_espipe) {
  conformance_item(25);
  Pipe pipe = open_pipe(0);
  Fd file = file_with(pattern(4096, 2));
  ASSERT_EQ(::write(pipe.write_end.get(), "0123456789", 10), 10);
  loff_t off = 0;
  errno = 0;
  EXPECT_EQ(splice(pipe.read_end.get(), &off, file.get(), nullptr, 10, 0), -1);
  EXPECT_EQ(errno, ESPIPE) << "off_in given for a pipe: " << strerror(errno);
  off = 0;
  errno = 0;
  EXPECT_EQ(splice(file.get(), nullptr, pipe.write_end.get(), &off, 10, 0), -1);
  EXPECT_EQ(errno, ESPIPE) << "off_out given for a pipe: " << strerror(errno);
}

TEST(splice, append_target_einval) {
  conformance_item(25);
  Fd file = open_scratch_file(kScratchDir);
  // The same file again, O_APPEND (an O_TMPFILE has no name to open).
  Fd append(::open(("/proc/self/fd/" + std::to_string(file.get())).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  ASSERT_TRUE(append.valid()) << "reopen with O_APPEND: " << strerror(errno);
  Pipe pipe = open_pipe(0);
  ASSERT_EQ(::write(pipe.write_end.get(), "0123456789", 10), 10);
  errno = 0;
  EXPECT_EQ(splice(pipe.read_end.get(), nullptr, append.get(), nullptr, 10, 0), -1);
  EXPECT_EQ(errno, EINVAL) << "splice into an O_APPEND file: " << strerror(errno);
}

TEST(splice, off_in_advances_file_offset_untouched) {
  conformance_item(25);
  const std::vector<uint8_t> content = pattern(8192, 3);
  Fd file = file_with(content);
  ASSERT_EQ(lseek(file.get(), 100, SEEK_SET), 100);
  Pipe pipe = open_pipe(0);
  loff_t off = 1000;
  ASSERT_EQ(splice(file.get(), &off, pipe.write_end.get(), nullptr, 500, 0), 500) << strerror(errno);
  EXPECT_EQ(off, 1500) << "off_in must advance by the bytes spliced";
  EXPECT_EQ(lseek(file.get(), 0, SEEK_CUR), 100) << "the file offset must not move when off_in is given";
  EXPECT_EQ(read_n(pipe.read_end.get(), 500),
            std::vector<uint8_t>(content.begin() + 1000, content.begin() + 1500));
  // Contrast: without off_in the file offset is used and advanced.
  ASSERT_EQ(splice(file.get(), nullptr, pipe.write_end.get(), nullptr, 50, 0), 50);
  EXPECT_EQ(lseek(file.get(), 0, SEEK_CUR), 150);
  EXPECT_EQ(read_n(pipe.read_end.get(), 50), std::vector<uint8_t>(content.begin() + 100, content.begin() + 150));
}

TEST(splice, nonblock_empty_pipe_eagain) {
  conformance_item(25);
  Pipe pipe = open_pipe(0);  // the write end stays open: empty, not EOF
  Fd null = dev_null();
  errno = 0;
  EXPECT_EQ(splice(pipe.read_end.get(), nullptr, null.get(), nullptr, 100, SPLICE_F_NONBLOCK), -1);
  EXPECT_EQ(errno, EAGAIN) << "SPLICE_F_NONBLOCK on an empty pipe: " << strerror(errno);
}

// ---------------------------------------------------------------------------
// Byte-exact relays through a pipe, item 26

LabOptions lab_options() {
  LabOptions o;
  o.gen_cpu = 0;
  o.sink_cpu = online_cpu_count() > 1 ? 1 : 0;
  return o;
}

std::string build_lab(std::optional<Lab>* lab) {
  if (geteuid() != 0)
    return "needs root: the lab's network namespaces and veth pair need CAP_SYS_ADMIN and CAP_NET_ADMIN";
  try {
    lab->emplace(Lab::create(lab_options()));
    return "";
  } catch (const EnvError& e) {
    return std::string("unsupported: cannot build the lab: ") + e.what();
  }
}

#define ZC_REQUIRE_LAB(lab)                                              \
  std::optional<Lab> lab;                                                \
  if (const std::string why_ = build_lab(&lab); !why_.empty()) GTEST_SKIP() << why_

void set_timeouts(const Fd& fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), "setsockopt(SO_RCVTIMEO)");
  check_sys(setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), "setsockopt(SO_SNDTIMEO)");
}

// Datagrams of many sizes, socket -> pipe -> file, one splice per datagram;
// the file ends up holding exactly the payloads sent, back to back.
TEST(splice, udp_socket_to_file_byte_exact) {
  conformance_item(26);
  ZC_REQUIRE_LAB(lab);
  const LabPort& port = lab->ports().at(0);
  Fd sink, src;
  lab->sink_ns().run([&] { sink = open_udp_sink_socket(port.sink_ip, kRelayPort, 1 << 20); });
  lab->gen_ns().run([&] { src = open_udp_source_socket(port.gen_ip, kRelayPort, port.sink_ip, kRelayPort, 0); });
  set_timeouts(sink, 5000);
  Pipe pipe = open_pipe(0);
  Fd file = open_scratch_file(kScratchDir);
  std::vector<uint8_t> expected;
  const std::vector<size_t> sizes = {1, 18, 100, 272, 999, 1472, 1200, 1024};
  for (uint32_t i = 0; i < 64; ++i) {
    std::vector<uint8_t> p = pattern(sizes[i % sizes.size()], i);
    ASSERT_EQ(send(src.get(), p.data(), p.size(), 0), ssize_t(p.size())) << strerror(errno);
    // Blocking splice: waits for the datagram (SO_RCVTIMEO bounds it).
    ssize_t r = splice(sink.get(), nullptr, pipe.write_end.get(), nullptr, 2048, 0);
    ASSERT_EQ(r, ssize_t(p.size())) << "splice(UDP socket -> pipe) of datagram " << i << ": " << strerror(errno);
    loff_t off = loff_t(expected.size());
    ASSERT_EQ(splice(pipe.read_end.get(), nullptr, file.get(), &off, size_t(r), 0), r) << strerror(errno);
    expected.insert(expected.end(), p.begin(), p.end());
  }
  std::vector<uint8_t> got(expected.size() + 1);
  ASSERT_EQ(pread(file.get(), got.data(), got.size(), 0), ssize_t(expected.size()));
  got.resize(expected.size());
  EXPECT_EQ(got, expected) << "the file differs from the datagrams sent";
}

// TCP relay: generator -> (sink namespace: accepted socket -> pipe -> second
// socket) -> back to the generator namespace; 4 MiB arrive byte-exact.
TEST(splice, tcp_socket_to_socket_byte_exact) {
  conformance_item(26);
  ZC_REQUIRE_LAB(lab);
  const LabPort& port = lab->ports().at(0);
  Fd listener, back_listener, client, relay_out;
  lab->sink_ns().run([&] { listener = open_tcp_listener(port.sink_ip, kRelayPort, 0); });
  lab->gen_ns().run([&] { back_listener = open_tcp_listener(port.gen_ip, kBackPort, 0); });
  lab->gen_ns().run([&] { client = connect_tcp_source(port.gen_ip, kRelayPort, port.sink_ip, kRelayPort, 0, "test"); });
  lab->sink_ns().run([&] { relay_out = connect_tcp_source(port.sink_ip, kBackPort, port.gen_ip, kBackPort, 0, "test"); });
  ASSERT_TRUE(wait_readable(listener.get(), 5000));
  Fd relay_in(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(relay_in.valid()) << strerror(errno);
  ASSERT_TRUE(wait_readable(back_listener.get(), 5000));
  Fd server(accept4(back_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid()) << strerror(errno);
  for (const Fd* fd : {&relay_in, &server, &client}) set_timeouts(*fd, 5000);

  const std::vector<uint8_t> sent = pattern(4 << 20, 9);
  std::vector<uint8_t> received;
  std::exception_ptr writer_error, reader_error;
  std::thread writer([&] {
    try {
      for (size_t off = 0; off < sent.size();) {
        ssize_t w = send(client.get(), sent.data() + off, std::min<size_t>(sent.size() - off, 65536), 0);
        check_sys(w, "send (TCP client)");
        off += size_t(w);
      }
      shutdown(client.get(), SHUT_WR);
    } catch (...) {
      writer_error = std::current_exception();
    }
  });
  std::thread reader([&] {
    try {
      std::vector<uint8_t> buf(65536);
      for (;;) {
        ssize_t r = recv(server.get(), buf.data(), buf.size(), 0);
        check_sys(r, "recv (TCP server)");
        if (r == 0) break;
        received.insert(received.end(), buf.begin(), buf.begin() + r);
      }
    } catch (...) {
      reader_error = std::current_exception();
    }
  });
  Pipe pipe = open_pipe(1 << 20);
  uint64_t relayed = 0;
  std::string relay_error;
  for (;;) {
    ssize_t r = splice(relay_in.get(), nullptr, pipe.write_end.get(), nullptr, pipe.capacity, 0);
    if (r < 0) {
      relay_error = errno_text("splice(TCP socket -> pipe)", errno);
      break;
    }
    if (r == 0) break;
    try {
      splice_all_to_stream(pipe.read_end.get(), relay_out.get(), size_t(r), "splice(pipe -> TCP socket)");
    } catch (const Error& e) {
      relay_error = e.what();
      break;
    }
    relayed += uint64_t(r);
  }
  shutdown(relay_out.get(), SHUT_WR);
  writer.join();
  reader.join();
  if (writer_error) std::rethrow_exception(writer_error);
  if (reader_error) std::rethrow_exception(reader_error);
  EXPECT_EQ(relay_error, "");
  EXPECT_EQ(relayed, sent.size());
  ASSERT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent) << "the relayed stream differs from the one sent";
}

// ---------------------------------------------------------------------------
// vmsplice(2), item 27

TEST(vmsplice, not_a_pipe_ebadf) {
  conformance_item(27);
  Fd file = open_scratch_file(kScratchDir);
  std::vector<uint8_t> p = pattern(100, 4);
  iovec iov{p.data(), p.size()};
  errno = 0;
  EXPECT_EQ(vmsplice(file.get(), &iov, 1, 0), -1);
  EXPECT_EQ(errno, EBADF) << "vmsplice on a regular file: " << strerror(errno);
}

TEST(vmsplice, too_many_segments_einval) {
  conformance_item(27);
  Pipe pipe = open_pipe(0);
  uint8_t byte = 1;
  std::vector<iovec> iov(IOV_MAX + 1, iovec{&byte, 1});
  errno = 0;
  EXPECT_EQ(vmsplice(pipe.write_end.get(), iov.data(), iov.size(), 0), -1);
  EXPECT_EQ(errno, EINVAL) << "vmsplice with nr_segs = IOV_MAX + 1: " << strerror(errno);
  // Contrast: IOV_MAX segments are accepted (as much as the pipe takes).
  EXPECT_GT(vmsplice(pipe.write_end.get(), iov.data(), IOV_MAX, SPLICE_F_NONBLOCK), 0) << strerror(errno);
}

// ---------------------------------------------------------------------------
// tee(2), item 28

TEST(tee, does_not_consume) {
  conformance_item(28);
  Pipe a = open_pipe(0), b = open_pipe(0);
  const std::vector<uint8_t> data = pattern(3000, 5);
  ASSERT_EQ(::write(a.write_end.get(), data.data(), data.size()), ssize_t(data.size()));
  ASSERT_EQ(tee(a.read_end.get(), b.write_end.get(), data.size(), 0), ssize_t(data.size())) << strerror(errno);
  EXPECT_EQ(read_n(b.read_end.get(), data.size()), data) << "the tee copy differs";
  EXPECT_EQ(read_n(a.read_end.get(), data.size()), data) << "tee consumed from its input pipe";
  // Both pipes are empty now: tee on an empty pipe with SPLICE_F_NONBLOCK.
  errno = 0;
  EXPECT_EQ(tee(a.read_end.get(), b.write_end.get(), 10, SPLICE_F_NONBLOCK), -1);
  EXPECT_EQ(errno, EAGAIN);
}

// ---------------------------------------------------------------------------
// sendfile(2), item 29

TEST(sendfile, offset_pointer_updated_file_offset_untouched) {
  conformance_item(29);
  const std::vector<uint8_t> content = pattern(8192, 6);
  Fd file = file_with(content);
  ASSERT_EQ(lseek(file.get(), 123, SEEK_SET), 123);
  Pipe pipe = open_pipe(0);
  off_t off = 1000;
  ASSERT_EQ(sendfile(pipe.write_end.get(), file.get(), &off, 500), 500) << strerror(errno);
  EXPECT_EQ(off, 1500) << "*offset must advance by the bytes sent";
  EXPECT_EQ(lseek(file.get(), 0, SEEK_CUR), 123) << "the file offset must not move when offset is given";
  EXPECT_EQ(read_n(pipe.read_end.get(), 500), std::vector<uint8_t>(content.begin() + 1000, content.begin() + 1500));
  // Contrast: with a null offset the file offset is used and advanced.
  ASSERT_EQ(sendfile(pipe.write_end.get(), file.get(), nullptr, 77), 77);
  EXPECT_EQ(lseek(file.get(), 0, SEEK_CUR), 200);
}

TEST(sendfile, nonseekable_in_with_offset_espipe) {
  conformance_item(29);
  Pipe in = open_pipe(0);
  ASSERT_EQ(::write(in.write_end.get(), "0123456789", 10), 10);
  Fd null = dev_null();
  off_t off = 0;
  errno = 0;
  EXPECT_EQ(sendfile(null.get(), in.read_end.get(), &off, 10), -1);
  EXPECT_EQ(errno, ESPIPE) << "sendfile from a pipe with an offset: " << strerror(errno);
}

TEST(sendfile, at_most_max_rw_count_per_call) {
  conformance_item(29);
  constexpr size_t kMaxRw = 0x7ffff000;  // MAX_RW_COUNT: INT_MAX rounded down to a page
  // A sparse tmpfs file longer than one call may move: holes cost no memory.
  Fd file = open_scratch_file(kScratchDir);
  ASSERT_EQ(ftruncate(file.get(), off_t(kMaxRw) + (1 << 20)), 0) << strerror(errno);
  Fd null = dev_null();
  off_t off = 0;
  ssize_t n = sendfile(null.get(), file.get(), &off, size_t(1) << 31);
  ASSERT_GT(n, 0) << strerror(errno);
  EXPECT_LE(size_t(n), kMaxRw) << "one sendfile call moved more than MAX_RW_COUNT";
  EXPECT_EQ(off, off_t(n));
}

TEST(sendfile, short_write_to_full_socket) {
  conformance_item(29);
  ZC_REQUIRE_LAB(lab);
  const LabPort& port = lab->ports().at(0);
  Fd listener, client;
  lab->sink_ns().run([&] { listener = open_tcp_listener(port.sink_ip, kRelayPort, 64 << 10); });
  lab->gen_ns().run([&] { client = connect_tcp_source(port.gen_ip, kRelayPort, port.sink_ip, kRelayPort, 64 << 10, "test"); });
  ASSERT_TRUE(wait_readable(listener.get(), 5000));
  Fd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));  // never read: the window closes
  ASSERT_TRUE(server.valid()) << strerror(errno);
  check_sys(fcntl(client.get(), F_SETFL, fcntl(client.get(), F_GETFL) | O_NONBLOCK), "fcntl(O_NONBLOCK)");
  const size_t want = 16 << 20;
  Fd file = open_scratch_file(kScratchDir);
  ASSERT_EQ(ftruncate(file.get(), off_t(want)), 0);
  off_t off = 0;
  ssize_t n = sendfile(client.get(), file.get(), &off, want);
  ASSERT_GT(n, 0) << "sendfile to an empty non-blocking socket: " << strerror(errno);
  EXPECT_LT(size_t(n), want) << "16 MiB fit into a 64 KiB socket buffer and a closed window";
  EXPECT_EQ(off, off_t(n)) << "*offset must say how far the short write got";
  // ACKs for what is in flight free send-buffer space until the receiver's
  // buffer is full too, so a few more calls may still move bytes; the socket
  // must then refuse with EAGAIN, and every short write must move *offset by
  // exactly what it returned. (A single retry raced with those ACKs.)
  size_t moved = size_t(n);
  ssize_t r = 0;
  for (int call = 0; call < 1000; ++call) {
    errno = 0;
    r = sendfile(client.get(), file.get(), &off, want - moved);
    if (r <= 0) break;
    moved += size_t(r);
    ASSERT_EQ(off, off_t(moved)) << "*offset must follow every short write";
    if (call % 16 == 15) usleep(1000);  // let pending ACKs land before concluding
  }
  EXPECT_EQ(r, -1) << "the socket never filled: " << moved << " of " << want << " bytes moved";
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_LT(moved, want) << "16 MiB fit into a 64 KiB socket buffer and a closed window";
}

// ---------------------------------------------------------------------------
// Flood integrity through lab trials: every sequence number arrives once,
// intact, and the counts reconcile. Offered well below what the paths
// sustain here; nothing is timed.

TrialSpec flood_spec(const std::string& tx, const std::string& rx) {
  TrialSpec s;
  s.tx = parse_driver_spec(tx);
  s.rx = parse_driver_spec(rx);
  s.payload_bytes = 1472;
  s.rate_pps = 10000;
  s.count = 10000;
  s.duration_s = 5.0;  // an upper bound: the count (1 s at this rate) ends the flood
  s.warmup_s = 0.2;
  s.flows = 2;
  s.lab = lab_options();
  s.suite = "conformance";
  pace_flood(s);  // an emulated CPU sustains far less (flood_rate.h)
  return s;
}




void expect_intact(const json& rec, uint64_t count, bool full_accounting = true) {
  SCOPED_TRACE(rec.value("name", "trial"));
  EXPECT_EQ(rec.value("status", ""), "pass") << rec.value("reason", "");
  const json& raw = rec.at("raw");
  EXPECT_EQ(u64(raw, "sent_total"), count);
  EXPECT_EQ(u64(raw, "received_total"), count);
  if (full_accounting) {
    const json& seq = raw.at("sequence");
    EXPECT_EQ(u64(seq, "unique"), count) << "sequence: " << seq.dump();
    EXPECT_EQ(u64(seq, "duplicates"), 0u);
    EXPECT_EQ(u64(seq, "corrupt"), 0u);
    EXPECT_EQ(u64(seq, "reordered"), 0u);
  }
  const json& derived = rec.at("derived");
  EXPECT_EQ(derived.value("reconciliation_ok", false), true) << "drops: " << derived.value("drops", json()).dump();
  EXPECT_EQ(u64(derived, "lost_packets"), 0u) << "drops: " << derived.value("drops", json()).dump();
}

#define ZC_FLOOD_TEST(suite, name, tx, rx)      \
  TEST(suite, name) {                           \
    TrialSpec spec = flood_spec(tx, rx);        \
    ZC_RUN_FLOOD(spec, rec);                    \
    expect_intact(rec, spec.count);             \
  }

// The splice sink, full accounting (tee + read / read back from the file).
ZC_FLOOD_TEST(splice, flood_integrity_udp, "sendmmsg", "splice")
ZC_FLOOD_TEST(splice, flood_integrity_udp_file, "sendmmsg", "splice:target=file")
ZC_FLOOD_TEST(splice, flood_integrity_tcp, "sendfile:proto=tcp", "splice:proto=tcp")
ZC_FLOOD_TEST(splice, flood_integrity_tcp_file, "vmsplice:proto=tcp", "splice:proto=tcp,target=file")

// Count-only: the payload never reaches user space; counts must still be exact.
TEST(splice, count_accounting_counts_all) {
  for (const char* rx : {"splice:accounting=count", "splice:accounting=count,proto=tcp"}) {
    TrialSpec spec = flood_spec(std::string(rx).find("tcp") != std::string::npos ? "sendfile:proto=tcp" : "sendmmsg", rx);
    ZC_RUN_FLOOD(spec, rec);
    expect_intact(rec, spec.count, false);
  }
}

ZC_FLOOD_TEST(vmsplice, flood_integrity_udp, "vmsplice", "recvmmsg")
ZC_FLOOD_TEST(vmsplice, flood_integrity_tcp, "vmsplice:proto=tcp", "recv:proto=tcp")
ZC_FLOOD_TEST(vmsplice, flood_integrity_header_send_udp, "vmsplice:header=send", "recvmmsg")
ZC_FLOOD_TEST(vmsplice, flood_integrity_header_send_tcp, "vmsplice:header=send,proto=tcp", "recv:proto=tcp")

ZC_FLOOD_TEST(sendfile, flood_integrity_udp, "sendfile", "recvmmsg")
ZC_FLOOD_TEST(sendfile, flood_integrity_tcp, "sendfile:proto=tcp,chunk=4000", "recv:proto=tcp")
ZC_FLOOD_TEST(sendfile, flood_integrity_pwrite_stamp, "sendfile:stamp=pwrite", "recvmmsg")
// A regular file on disk rather than tmpfs (the page cache of the test's
// own filesystem; skips where that directory has no O_TMPFILE).
ZC_FLOOD_TEST(sendfile, flood_integrity_disk_file, "sendfile:dir=/var/tmp", "recvmmsg")

// A TCP transmitter without a TCP sink is a usage error naming the fix.
TEST(sendfile, tcp_without_tcp_sink_is_usage_error) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: a trial builds its lab in new network namespaces (CAP_SYS_ADMIN)";
  TrialSpec spec = flood_spec("sendfile:proto=tcp", "recvmmsg");
  try {
    run_trial(spec, nullptr);
    FAIL() << "a TCP sendfile flood into a UDP sink was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("proto=tcp"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zc
