// The lab: the isolated topology a trial runs in (docs/design.md "The lab").
//
// Two anonymous namespaces — generator and sink — joined by N veth pairs,
// addresses from the RFC 2544 benchmarking range 198.18.0.0/15, static
// neighbours (an FPGA does no ARP), IPv6 off on lab links, MTU as asked.
// Nothing here ever touches an interface the suite did not create.
#pragma once
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/netns.h"

namespace zc {

enum class LabMode { sender_softirq, rps, xdp };
const char* lab_mode_name(LabMode m);
LabMode parse_lab_mode(const std::string& s);  // throws UsageError listing the accepted names
std::vector<std::string> lab_mode_names();     // every mode, for `zcbench list --json`

using MacAddr = std::array<uint8_t, 6>;
std::string mac_to_string(const MacAddr& m);

// TAP-style traffic (docs/design.md "Traffic addressing"): frames addressed to a
// MAC nobody in the lab owns, so the sink veth marks them PACKET_OTHERHOST —
// packet sockets see them, the IP stack drops them right after the taps, as on
// a monitoring port. Locally administered, "ZCTAP".
inline constexpr MacAddr kTapForeignMac{0x02, 0x5a, 0x43, 0x54, 0x41, 0x50};
std::string ipv4_to_string(in_addr a);

struct LabOptions {
  int port_pairs = 1;
  int queues = 1;    // TX and RX queues per veth (IFLA_NUM_TX_QUEUES / IFLA_NUM_RX_QUEUES)
  int mtu = 1500;
  LabMode mode = LabMode::rps;
  int gen_cpu = 0;   // generator thread (and, in sender-softirq mode, the receive softirq)
  int sink_cpu = 1;  // sink thread (and, in rps mode, the receive softirq via rps_cpus)
  bool gro = false;  // veth GRO on the sink device (off by default)
  bool tap_traffic = false;  // generator's neighbour entry is kTapForeignMac, not the sink's MAC
  // Per-queue CPUs (issue "Engine v2"): queue q's receive work (its threaded
  // NAPI kthread in xdp mode, its rps_cpus in rps mode) goes to
  // sink_cpus[q % size], and gen_cpus[q % size] transmits on TX queue q (XPS),
  // so generator worker w pinned to gen_cpus[w] feeds queue w. Empty: sink_cpu / gen_cpu.
  std::vector<int> sink_cpus;
  std::vector<int> gen_cpus;
};

// The CPU owning queue q on each side (LabOptions::sink_cpus / gen_cpus).
int lab_sink_cpu_for_queue(const LabOptions& o, int q);
int lab_gen_cpu_for_queue(const LabOptions& o, int q);

// One veth pair. Port i lives in 198.18.i.0/24: generator end 198.18.i.1,
// sink end 198.18.i.2 (recorded in describe()).
struct LabPort {
  std::string gen_ifname;   // device name inside the generator namespace
  std::string sink_ifname;  // device name inside the sink namespace
  int gen_ifindex = 0;
  int sink_ifindex = 0;
  in_addr gen_ip{};
  in_addr sink_ip{};
  int prefix_len = 24;
  MacAddr gen_mac{};
  MacAddr sink_mac{};
  MacAddr traffic_dst_mac{};  // what frames toward the sink carry: sink_mac, or kTapForeignMac
};

// Link counters of one device (IFLA_STATS64), read from inside its namespace.
struct LinkCounters {
  uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
  uint64_t rx_dropped = 0, tx_dropped = 0, rx_errors = 0, tx_errors = 0;
  nlohmann::json to_json() const;
};

class Lab {
 public:
  // Builds the whole lab; throws EnvError (missing privilege, kernel feature)
  // or UsageError (impossible MTU, CPU index beyond the machine) naming the value.
  static Lab create(const LabOptions& opts);
  Lab(Lab&&) noexcept = default;
  Lab& operator=(Lab&&) noexcept = default;
  ~Lab() = default;  // namespaces die with their fds; veths die with them

  const LabOptions& options() const { return opts_; }
  const Netns& gen_ns() const { return gen_ns_; }
  const Netns& sink_ns() const { return sink_ns_; }
  const std::vector<LabPort>& ports() const { return ports_; }

  // Counters of the generator-side / sink-side device of port i.
  LinkCounters gen_link_counters(int port = 0) const;
  LinkCounters sink_link_counters(int port = 0) const;

  // Everything a reader needs to interpret results: mode, MTU, CPUs, per-port
  // names/addresses/MACs, rps_cpus as read back, GRO state, IPv6 state.
  nlohmann::json describe() const;

 private:
  Lab() = default;
  LabOptions opts_;
  Netns gen_ns_;
  Netns sink_ns_;
  std::vector<LabPort> ports_;
  nlohmann::json description_;
};

// Pins the calling thread to one CPU; throws UsageError if the CPU does not exist.
void pin_this_thread(int cpu);
int online_cpu_count();

}  // namespace zc
