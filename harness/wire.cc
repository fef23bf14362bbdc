// `zcbench send|sink --iface`: the safety checks on the named interface and
// the command around a trial (print, exit code). The trials themselves are in
// harness/wire_send.cc and harness/wire_sink.cc, what they share in
// harness/wire_common.h, what they change on the interface in
// harness/iface_guard.h.
#include "harness/wire.h"

#include <net/if.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "harness/context.h"
#include "harness/errors.h"
#include "harness/iface_guard.h"
#include "harness/wire_common.h"

namespace zc {

using nlohmann::json;
using namespace wire_detail;

std::vector<std::string> default_route_interfaces(const std::string& route_text, const std::string& ipv6_route_text) {
  std::vector<std::string> out;
  std::istringstream r(route_text);
  std::string line;
  std::getline(r, line);  // header
  while (std::getline(r, line)) {
    std::istringstream f(line);
    std::string ifname, dest, gw, flags, refcnt, use, metric, mask;
    if (f >> ifname >> dest >> gw >> flags >> refcnt >> use >> metric >> mask && dest == "00000000" && mask == "00000000")
      out.push_back(ifname);
  }
  std::istringstream r6(ipv6_route_text);
  while (std::getline(r6, line)) {
    // dest prefix_len src src_len next_hop metric refcnt use flags ifname
    std::istringstream f(line);
    std::string dest, plen, src, slen, nh, metric, refcnt, use, flags, ifname;
    if (f >> dest >> plen >> src >> slen >> nh >> metric >> refcnt >> use >> flags >> ifname &&
        dest == std::string(32, '0') && plen == "00" && ifname != "lo")
      out.push_back(ifname);
  }
  return out;
}

int check_named_interface(const std::string& ifname, bool allow_host) {
  if (ifname.empty()) throw UsageError("--iface is required: name the interface explicitly");
  if (ifname.size() >= IFNAMSIZ) throw UsageError("interface name '" + ifname + "' is too long (IFNAMSIZ " + std::to_string(IFNAMSIZ) + ")");
  unsigned idx = if_nametoindex(ifname.c_str());
  if (!idx) throw UsageError("interface '" + ifname + "' does not exist in this network namespace");
  if (!allow_host) {
    for (const auto& i : default_route_interfaces(slurp("/proc/net/route"), slurp("/proc/net/ipv6_route")))
      if (i == ifname)
        throw UsageError("interface '" + ifname + "' carries this host's default route; name a dedicated test port, "
                         "or pass --allow-host-interface if you really mean it");
    if (const char* ssh = std::getenv("SSH_CONNECTION")) {
      std::istringstream f(ssh);
      std::string cip, cport, sip;
      if (f >> cip >> cport >> sip && iface_of_address(sip) == ifname)
        throw UsageError("interface '" + ifname + "' carries the current SSH session (" + sip + "); name another "
                         "port, or pass --allow-host-interface if you really mean it");
    }
  }
  short fl = iface_flags(ifname);
  if (!(fl & IFF_UP)) throw UsageError("interface '" + ifname + "' is down; bring it up first (ip link set " + ifname + " up)");
  if (!(fl & IFF_RUNNING))
    throw UsageError("interface '" + ifname + "' has no carrier (cable, peer or link partner down); check the link");
  return int(idx);
}

json bit_rates(double pps, double frame_bytes, std::optional<uint64_t> link_mbps) {
  json j;
  double l2 = frame_bytes * 8 * pps, l1 = (frame_bytes + 20) * 8 * pps;
  j["l2_bps"] = l2;
  j["l1_bps"] = l1;
  j["link_speed_mbps"] = link_mbps ? json(*link_mbps) : json(nullptr);
  j["link_percent_l1"] = link_mbps && *link_mbps ? json(100.0 * l1 / (double(*link_mbps) * 1e6)) : json(nullptr);
  return j;
}

int wire_command(const std::string& role, const TrialSpec& spec, const WireOptions& w,
                 const std::vector<std::string>& argv, const std::atomic<bool>* stop) {
  std::string started = utc_now_iso8601();
  WireOutcome out = role == "send" ? run_wire_send(spec, w, stop) : run_wire_sink(spec, w, stop);
  if (out.interrupted) {
    std::cerr << "zcbench: interrupted; the trial was not completed\n";
    return kExitInterrupted;
  }
  const json& rec = out.record;
  const json& d = rec["derived"];
  std::cerr << rec["name"].get<std::string>() << ": " << rec["status"].get<std::string>();
  if (!rec["reason"].get<std::string>().empty()) std::cerr << " (" << rec["reason"].get<std::string>() << ")";
  std::cerr << "\n";
  if (w.json_out) {
    std::cout << run_document("adhoc-" + started, "complete", started, argv, json::array({rec})).dump(2) << "\n";
  } else if (!d.empty()) {
    auto num = [&](const char* k) { return d.contains(k) && d[k].is_number() ? d[k].get<double>() : -1.0; };
    if (role == "send")
      std::printf("sent %llu packets, %.0f pps (%.1f Mb/s L1), ICMP errors %llu, interface tx_packets %llu\n",
                  (unsigned long long)get_u64(rec["raw"], "sent_total"), num("sent_pps"),
                  d["bits"]["l1_bps"].get<double>() / 1e6, (unsigned long long)get_u64(d, "icmp_errors"),
                  (unsigned long long)get_u64(d, "iface_tx_packets"));
    else
      std::printf("received %llu packets (%s), %.0f pps active, %.0f pps over the window, loss %.4f %% (sent by %s), "
                  "CPU %.0f ns/pkt; ended by %s\ndrops by layer: %s\n",
                  (unsigned long long)get_u64(rec["raw"], "received_total"), rec["params"]["accounting"].get<std::string>().c_str(),
                  num("received_pps_active"), num("received_pps_window"), 100 * num("loss_ratio"),
                  d["sent_basis"].get<std::string>().c_str(), num("cpu_ns_per_pkt_total"),
                  d["end_reason"].get<std::string>().c_str(), d["drops"].dump().c_str());
  }
  std::string st = rec["status"];
  if (st == "pass") return kExitOk;
  if (st == "skip") return kExitEnvironment;
  return kExitCheckFailed;
}

}  // namespace zc
