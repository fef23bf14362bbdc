#include "harness/counter_delta.h"

namespace zc {
namespace {

using nlohmann::json;

uint64_t since(uint64_t b, uint64_t a) { return b >= a ? b - a : 0; }

}  // namespace

json link_delta(const LinkCounters& a, const LinkCounters& b) {
  return {{"rx_packets", since(b.rx_packets, a.rx_packets)}, {"tx_packets", since(b.tx_packets, a.tx_packets)},
          {"rx_bytes", since(b.rx_bytes, a.rx_bytes)},       {"tx_bytes", since(b.tx_bytes, a.tx_bytes)},
          {"rx_dropped", since(b.rx_dropped, a.rx_dropped)}, {"tx_dropped", since(b.tx_dropped, a.tx_dropped)},
          {"rx_errors", since(b.rx_errors, a.rx_errors)},    {"tx_errors", since(b.tx_errors, a.tx_errors)}};
}

json snmp_delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b) {
  json j = json::object();
  for (const auto& [k, v] : b) {
    if (k.rfind("Udp.", 0) != 0 && k != "Ip.InDiscards" && k != "Ip.InReceives") continue;
    auto it = a.find(k);
    j[k] = since(v, it == a.end() ? 0 : it->second);
  }
  return j;
}

json softnet_delta(const std::vector<SoftnetCpu>& a, const std::vector<SoftnetCpu>& b) {
  json arr = json::array();
  for (size_t i = 0; i < b.size(); ++i) {
    SoftnetCpu z;
    const SoftnetCpu& x = i < a.size() ? a[i] : z;
    arr.push_back({{"cpu", i},
                   {"processed", since(b[i].processed, x.processed)},
                   {"dropped", since(b[i].dropped, x.dropped)},
                   {"time_squeeze", since(b[i].time_squeeze, x.time_squeeze)}});
  }
  return arr;
}

uint64_t softnet_dropped(const json& softnet) {
  uint64_t n = 0;
  for (const auto& c : softnet) n += c.value("dropped", uint64_t(0));
  return n;
}

}  // namespace zc
