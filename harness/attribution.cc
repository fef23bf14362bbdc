#include "harness/attribution.h"

#include <algorithm>

namespace zc {

uint64_t reconciliation_tolerance(uint64_t sent) { return std::max<uint64_t>(10, sent / 1000); }

DropAttribution attribute_drops(const DropCounters& c) {
  DropAttribution a;
  a.lost = c.sent > c.received_unique ? c.sent - c.received_unique : 0;
  a.backlog = c.softnet_dropped;
  // The link counters include the backlog drops they share with softnet.
  uint64_t link_counted = std::max(c.sink_rx_dropped, c.gen_tx_dropped);
  a.link = link_counted > a.backlog ? link_counted - a.backlog : 0;
  a.socket_rcvbuf = c.udp_rcvbuf_errors;
  a.socket_other = c.udp_other_errors;
  a.ring = c.ring_drops;
  uint64_t attributed = a.backlog + a.link + a.socket_rcvbuf + a.socket_other + a.ring;
  if (attributed <= a.lost) {
    a.unattributed = a.lost - attributed;
  } else {
    a.over_attributed = attributed - a.lost;
  }
  uint64_t tol = reconciliation_tolerance(c.sent);
  a.reconciled = a.unattributed <= tol && a.over_attributed <= tol;
  return a;
}

nlohmann::json DropAttribution::to_json() const {
  return {{"lost", lost},
          {"backlog", backlog},
          {"link", link},
          {"socket_rcvbuf", socket_rcvbuf},
          {"socket_other", socket_other},
          {"ring", ring},
          {"unattributed", unattributed},
          {"over_attributed", over_attributed}};
}

}  // namespace zc
