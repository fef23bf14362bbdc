// Where the packets were lost: every drop attributed once, by a fixed
// precedence, with whatever the counters cannot explain shown as its own
// number (docs/design.md "Drop attribution"). Pure arithmetic on raw counter
// deltas, so it is unit-tested on its own.
//
// Why a precedence: one backlog drop on veth raises three counters at once —
// softnet `dropped` (enqueue_to_backlog), the receiving device's core
// `rx_dropped`, and the sending veth's `tx_dropped` (veth_xmit). Counting each
// would triple the loss.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace zc {

struct DropCounters {
  uint64_t sent = 0;              // packets the TX path accepted
  uint64_t received_unique = 0;   // distinct packets the sink saw
  uint64_t softnet_dropped = 0;   // /proc/net/softnet_stat dropped, all CPUs
  uint64_t sink_rx_dropped = 0;   // IFLA_STATS64 rx_dropped, sink device
  uint64_t gen_tx_dropped = 0;    // IFLA_STATS64 tx_dropped, generator device
  uint64_t udp_rcvbuf_errors = 0; // sink namespace Udp.RcvbufErrors
  uint64_t udp_other_errors = 0;  // Udp.InErrors - RcvbufErrors, plus Udp.NoPorts
  uint64_t ring_drops = 0;        // driver: tp_drops, XDP rx_dropped, ...
};

struct DropAttribution {
  uint64_t lost = 0;
  uint64_t backlog = 0;
  uint64_t link = 0;
  uint64_t socket_rcvbuf = 0;
  uint64_t socket_other = 0;
  uint64_t ring = 0;
  uint64_t unattributed = 0;     // lost but in no counter
  uint64_t over_attributed = 0;  // counters claim more than was lost
  bool reconciled = true;
  nlohmann::json to_json() const;
};

// The layers in precedence order, each with the counter it is read from: the
// one list of drop layers. to_json() writes them, `zcbench list --json`
// exports them (harness/vocabulary.cc), the report and the schema follow it.
struct DropLayer {
  const char* name;
  const char* counter;  // what the layer is read from, for readers
  uint64_t DropAttribution::*field;
};
const std::vector<DropLayer>& drop_layers();
// What is left when the layers do not add up to `lost`, in the record beside them.
inline constexpr const char* kDropUnattributed = "unattributed";
inline constexpr const char* kDropOverAttributed = "over_attributed";

// Tolerance for the reconciliation: max(10 packets, 0.1 % of sent).
uint64_t reconciliation_tolerance(uint64_t sent);
DropAttribution attribute_drops(const DropCounters& c);

}  // namespace zc
