// Stream mode for byte-oriented paths (TCP): the flood's messages travel
// back-to-back over one TCP connection per flow, and the sink cuts the byte
// stream back into payload_bytes-sized messages, so Accounting::on_packet sees
// each message and loss, order and integrity reconcile as for datagrams.
//
// Connection set-up: the sink listens on its address at the flood's port (the
// same number as the UDP port); flow f connects from src_port + f.
#pragma once
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "drivers/udp_socket.h"
#include "harness/accounting.h"
#include "harness/options.h"

namespace zc {

// `proto=udp|tcp`, shared by every transport that speaks both.
OptionSpec proto_option();
bool proto_is_tcp(const DriverOptions& o);
// Listening socket bound to ip:port, non-blocking, receive buffer forced to
// `rcvbuf` bytes (0 keeps the kernel's autotuning).
Fd open_tcp_listener(in_addr ip, uint16_t port, int64_t rcvbuf);

// Sink worker `ctx.worker` of several: its listener joins one SO_REUSEPORT
// group on the flood's address, and the kernel gives each incoming
// connection (one per flow) to one member: reuseport=hash by the SYN's
// 4-tuple, reuseport=cpu to the member whose SO_INCOMING_CPU is the CPU the
// SYN arrives on. A connection never moves, so each flow stays whole on one
// worker. *record gets the group as the UDP sinks record it.
Fd open_tcp_worker_listener(const RxContext& ctx, nlohmann::json* record);

// Connected, blocking TCP socket of one flow (bounded by SO_SNDTIMEO so a
// stalled path cannot hang the flood). Retries a refused connection for up to
// 3 s, because the sink may still be opening its listener; then throws
// UsageError: a TCP transmitter needs a TCP sink.
Fd connect_tcp_source(in_addr src_ip, uint16_t src_port, in_addr dst_ip, uint16_t dst_port, int64_t sndbuf,
                      const std::string& who);

// One connected socket per flow, as open_flow_sockets() does for UDP.
std::vector<Fd> open_tcp_flow_sockets(const TxContext& ctx, const std::string& who);

// Cuts one connection's byte stream into messages of `msg_bytes`.
class StreamFramer {
 public:
  explicit StreamFramer(size_t msg_bytes) : msg_(msg_bytes) { partial_.reserve(msg_bytes); }
  // Bytes as read from the stream; every completed message goes to acct.
  // Returns how many messages completed.
  size_t feed(const uint8_t* data, size_t len, Accounting& acct);
  // Count-only: the bytes never reached user space (splice), so complete
  // messages are counted from byte totals alone (acct must be in count mode).
  size_t feed_count(size_t len, Accounting& acct);
  // Bytes of an unfinished message (non-zero at EOF means a truncated stream).
  size_t pending() const { return count_pending_ ? count_pending_ : partial_.size(); }

 private:
  size_t msg_;
  std::vector<uint8_t> partial_;
  size_t count_pending_ = 0;
};

// The sink side of stream mode: a listener plus the connections accepted
// from it (accepted lazily, when the listener polls readable), each with its
// own framer.
class TcpStreamSink {
 public:
  void open(in_addr ip, uint16_t port, int64_t rcvbuf, size_t msg_bytes);
  // The same for one of several sink workers (open_tcp_worker_listener).
  void open_worker(const RxContext& ctx);
  struct Conn {
    Fd fd;
    StreamFramer framer;
  };
  // Polls the listener and every connection for up to timeout_ms; accepts new
  // connections; returns the connections readable now (or hung up).
  std::vector<Conn*> wait(int timeout_ms);
  // Closes a connection that reached EOF, remembering a truncated message.
  void close(Conn* c);
  // After the trial: connections seen, and bytes of truncated messages.
  nlohmann::json stats() const;

 private:
  Fd listener_;
  nlohmann::json reuseport_;
  size_t msg_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  uint64_t accepted_ = 0;
  uint64_t truncated_bytes_ = 0;
};

}  // namespace zc
