// Shared set-up of plain UDP sockets for the socket transports (recv,
// recvmmsg, sendto, sendmmsg): the four drivers differ only in their syscalls.
#pragma once
#include <netinet/in.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include <vector>

#include "harness/driver.h"
#include "harness/options.h"

namespace zc {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Sink socket: bound to ip:port; receive buffer forced to `rcvbuf` bytes
// (SO_RCVBUFFORCE, per socket — never the host-wide rmem_max sysctl);
// SO_RXQ_OVFL on so per-socket drops are reported.
Fd open_udp_sink_socket(in_addr ip, uint16_t port, int64_t rcvbuf);

// The sink socket of one worker (RxContext::worker of workers): alone, as
// open_udp_sink_socket; with workers > 1 every worker's socket joins one
// SO_REUSEPORT group on ip:port, steered by the `reuseport` option:
//   hash: the kernel's own choice, reciprocal_scale(4-tuple hash, members)
//         (reuseport_select_sock_by_hash) — a flow stays on one socket;
//   cpu:  SO_INCOMING_CPU = the worker's CPU; since Linux 6.2 the group picks
//         the member whose sk_incoming_cpu is the receiving CPU, and falls back
//         to the hash when no member is on that CPU.
// `record` receives what was done, for the driver's kernel_stats()["reuseport"].
Fd open_udp_worker_socket(const RxContext& ctx, nlohmann::json* record);

// Source socket of one flow: bound to src_ip:src_port, connected to dst.
Fd open_udp_source_socket(in_addr src_ip, uint16_t src_port, in_addr dst_ip, uint16_t dst_port, int64_t sndbuf);

// One source socket per flow (flow f from port ctx.src_port + f), with the
// driver's `sndbuf` option. With generator workers > 1 only this worker's
// flows (f % workers == worker) get a socket; the others stay invalid Fds so
// the vector is still indexed by flow id.
std::vector<Fd> open_flow_sockets(const TxContext& ctx);

// Errors a connected UDP socket reports for an earlier datagram's ICMP error
// (port/host/net unreachable: a receiver with no socket, a capture box, an
// FPGA). The datagram of the failing call was not sent; the error is consumed,
// so the caller treats it as a refusal and retries. Never fatal: the harness
// counts them from the namespace's Icmp counters (harness/wire.cc).
inline bool is_icmp_soft_error(int err) {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN || err == EPROTO;
}

// Waits for readability; returns false on timeout. EINTR counts as timeout.
bool wait_readable(int fd, int timeout_ms);

// Option specs the socket sinks share.
OptionSpec rcvbuf_option();
OptionSpec wait_option();
OptionSpec sndbuf_option();
OptionSpec reuseport_option();

// Size of a receive buffer able to hold any datagram of this lab plus one byte
// (so truncation is detectable).
size_t receive_buffer_bytes(int mtu, size_t payload_bytes);

}  // namespace zc
