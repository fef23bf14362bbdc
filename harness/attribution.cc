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

const std::vector<DropLayer>& drop_layers() {
  static const std::vector<DropLayer> layers = {
      {"backlog", "softnet_stat dropped (enqueue_to_backlog), all CPUs", &DropAttribution::backlog},
      {"link", "IFLA_STATS64 rx_dropped of the sink / tx_dropped of the generator device, beyond backlog",
       &DropAttribution::link},
      {"socket_rcvbuf", "Udp RcvbufErrors in the sink namespace", &DropAttribution::socket_rcvbuf},
      {"socket_other", "Udp InErrors - RcvbufErrors, plus Udp NoPorts, in the sink namespace",
       &DropAttribution::socket_other},
      {"ring", "the sink driver's own drop counter (tp_drops, XDP rx_dropped, ...)", &DropAttribution::ring},
  };
  return layers;
}

nlohmann::json DropAttribution::to_json() const {
  nlohmann::json j = {{"lost", lost}};
  for (const auto& l : drop_layers()) j[l.name] = this->*l.field;
  j[kDropUnattributed] = unattributed;
  j[kDropOverAttributed] = over_attributed;
  return j;
}

}  // namespace zc
