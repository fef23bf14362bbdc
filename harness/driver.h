// The driver interface: one file per transport in drivers/, each behind one of
// these two small classes. A driver only moves packets; the harness owns
// clocks, pacing, counting and the results (docs/design.md "Data flow").
#pragma once
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "harness/accounting.h"
#include "harness/lab.h"
#include "harness/options.h"

namespace zc {

enum class Direction { rx, tx };
const char* direction_name(Direction d);

// One sink-side interface of the lab (trials with several ports).
struct RxPort {
  std::string ifname;
  int ifindex = 0;
  in_addr local_ip{};
};

// One generator-side interface of the lab and where it sends to.
struct TxPort {
  std::string ifname;
  int ifindex = 0;
  in_addr src_ip{};
  in_addr dst_ip{};
  MacAddr src_mac{};
  MacAddr dst_mac{};
};

// Where a sink receives: inside the sink namespace of a lab, or on a named
// interface (`zcbench sink --iface`). The single-interface fields describe
// ports[0]; multi-port sinks (e.g. tpacket_v3 aggregation) use `ports`.
struct RxContext {
  std::string ifname;
  int ifindex = 0;
  in_addr local_ip{};       // address datagrams are sent to
  uint16_t udp_port = 0;    // destination UDP port of the flood
  size_t payload_bytes = 0;
  int mtu = 1500;
  int flows = 1;
  DriverOptions options;
  std::vector<RxPort> ports;  // every lab port, ports[0] == the fields above
  // The trial's bound, from which external programs get bounds of their own
  // (tcpdump -c, netsniff-ng -n, a time limit: harness/child_process.h).
  uint64_t max_packets = 0;  // the generator sends at most this many (0: bounded by time)
  double rate_pps = 0;       // <= 0: unpaced
  double seconds = 0;        // warmup + window (0: unknown, no time limit)
  // This driver instance's place among the trial's sink workers (issue
  // "Engine v2"): one instance per worker, each on its own thread and CPU.
  // With workers > 1 a driver joins the group that spreads traffic over the
  // instances (SO_REUSEPORT, PACKET_FANOUT, one XSK per queue).
  int worker = 0;
  int workers = 1;
  int queue = -1;  // the RX queue this worker owns (af_xdp); -1: all
  int cpu = -1;    // the CPU its thread is pinned to
  // Ask the kernel for the NIC's raw hardware RX stamps too (`sink
  // --hw-timestamps`; only drivers with rx_hw_stamps, on an interface whose
  // hwtstamp_config the wire sink set to stamp every packet).
  bool hw_timestamps = false;
};

// Where a TX transport sends from. Flow f uses UDP source port src_port + f
// and leaves through ports[f % ports.size()] (the single-interface fields
// describe ports[0]). dst_mac is the sink's MAC, or kTapForeignMac for
// TAP-style traffic.
struct TxContext {
  std::string ifname;
  int ifindex = 0;
  in_addr src_ip{};
  in_addr dst_ip{};
  MacAddr src_mac{};
  MacAddr dst_mac{};        // static neighbour: an FPGA does no ARP
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  size_t payload_bytes = 0;      // the largest datagram: buffers are this big
  // A frame-size mix (harness/size_mix.h): commit() is given lengths from
  // min_payload_bytes up to payload_bytes. 0: every datagram payload_bytes.
  size_t min_payload_bytes = 0;
  bool mixed_lengths() const { return min_payload_bytes && min_payload_bytes < payload_bytes; }
  int mtu = 1500;
  int flows = 1;
  DriverOptions options;
  std::vector<TxPort> ports;  // every lab port, ports[0] == the fields above
  // This instance's place among the generator workers: it sends only the
  // flows f with f % workers == worker, paced at its share of the rate.
  int worker = 0;
  int workers = 1;
  int queue = -1;  // the TX queue this worker owns (af_xdp); -1: any
  int cpu = -1;
};

class RxDriver {
 public:
  virtual ~RxDriver() = default;
  // Called on the sink thread, already inside the sink namespace and pinned.
  // Throws EnvError with the kernel's reason when the path cannot be set up.
  virtual void open(const RxContext& ctx) = 0;
  // The hot path: waits at most timeout_ms for traffic, hands every packet to
  // acct (begin_batch() once per batch, then on_packet()), returns how many.
  virtual size_t receive(Accounting& acct, int timeout_ms) = 0;
  // Kernel-side statistics after the trial (e.g. PACKET_STATISTICS), raw.
  virtual nlohmann::json kernel_stats() { return nlohmann::json::object(); }
  // Drops the kernel attributes to this socket/ring (e.g. tp_drops), for the
  // `ring` layer of the drop attribution; sockets report their rcvbuf drops
  // through the namespace's UDP counters instead.
  virtual uint64_t kernel_drops() { return 0; }
};

class TxDriver {
 public:
  virtual ~TxDriver() = default;
  // Called on the generator thread, inside the generator namespace, pinned.
  virtual void open(const TxContext& ctx) = 0;
  // Largest batch commit() takes.
  virtual size_t max_batch() const = 0;
  // Up to n payload buffers (each ctx.payload_bytes) for the generator to
  // stamp. The driver writes every buffer once at open (flood_write_payload)
  // and buffers keep their contents, so the generator only restamps the
  // header (flood_stamp). May return fewer than n (ring full).
  virtual std::span<uint8_t* const> acquire(size_t n) = 0;
  // Sends the first k acquired buffers as flow `flow`, buffer i as a datagram
  // of lengths[i] payload bytes (lengths.size() == k; all ctx.payload_bytes
  // unless ctx.mixed_lengths(), which only drivers with
  // DriverInfo::tx_mixed_lengths get). Returns how many the kernel accepted
  // (the rest are retried by the generator with the same sequence numbers
  // and lengths, and counted as tx refusals).
  virtual size_t commit(size_t k, int flow, std::span<const size_t> lengths) = 0;
  // Completes anything still queued (TX rings); called once after the flood.
  virtual void flush() {}
  virtual nlohmann::json kernel_stats() { return nlohmann::json::object(); }
};

struct Usability {
  bool usable = true;
  std::string reason;  // why not, in the kernel's words ("socket(AF_XDP): ... (EAFNOSUPPORT)")
};

struct DriverInfo {
  std::string name;
  Direction direction = Direction::rx;
  std::string description;      // one line: which kernel interface, how
  std::string traffic = "host-addressed";  // or "tap" for packet-capture sinks
  std::vector<OptionSpec> options;
  // TX: commit() sends each datagram at its own length, so the driver takes a
  // frame-size mix (`--size 64:7,576:4,1518:1`); false: one size per trial.
  bool tx_mixed_lengths = false;
  // RX: takes the NIC's raw hardware stamps when RxContext::hw_timestamps
  // (SO_TIMESTAMPING RX_HARDWARE, PACKET_TIMESTAMP RAW_HARDWARE).
  bool rx_hw_stamps = false;
  std::function<Usability()> probe;  // cheap check of kernel support, no traffic
  std::function<std::unique_ptr<RxDriver>()> make_rx;
  std::function<std::unique_ptr<TxDriver>()> make_tx;
  nlohmann::json to_json(bool with_probe) const;
};

}  // namespace zc
