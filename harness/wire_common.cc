#include "harness/wire_common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <linux/net_tstamp.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "harness/errors.h"
#include "harness/ethtool.h"
#include "harness/flood.h"
#include "harness/flood_header.h"
#include "harness/lab.h"
#include "harness/pacer.h"
#include "harness/params.h"
#include "harness/size_mix.h"
#include "harness/timestamps.h"

namespace zc::wire_detail {

using nlohmann::json;

uint64_t sub(uint64_t b, uint64_t a) { return b >= a ? b - a : 0; }

uint64_t get_u64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool in_benchmark_range(in_addr a) { return (ntohl(a.s_addr) & 0xfffe0000u) == 0xc6120000u; }  // 198.18.0.0/15

std::optional<in_addr> iface_ipv4(const std::string& ifname) {
  ifaddrs* list = nullptr;
  check_sys(getifaddrs(&list), "getifaddrs");
  std::optional<in_addr> found;
  for (ifaddrs* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && ifname == i->ifa_name) {
      found = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
      break;
    }
  freeifaddrs(list);
  return found;
}

// The interface holding local address `ip` (SSH_CONNECTION's server side).
std::string iface_of_address(const std::string& ip) {
  in_addr a4{};
  in6_addr a6{};
  bool v4 = inet_pton(AF_INET, ip.c_str(), &a4) == 1, v6 = !v4 && inet_pton(AF_INET6, ip.c_str(), &a6) == 1;
  if (!v4 && !v6) return "";
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string name;
  for (ifaddrs* i = list; i && name.empty(); i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    if (v4 && i->ifa_addr->sa_family == AF_INET &&
        reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr == a4.s_addr)
      name = i->ifa_name;
    if (v6 && i->ifa_addr->sa_family == AF_INET6 &&
        std::memcmp(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, &a6, sizeof a6) == 0)
      name = i->ifa_name;
  }
  freeifaddrs(list);
  return name;
}

// The "Icmp:" lines of the calling thread's namespace's /proc/net/snmp:
// port/host unreachables our sends provoked (counted, never fatal).
std::map<std::string, uint64_t> read_icmp_counters() {
  std::istringstream in(slurp("/proc/thread-self/net/snmp"));
  std::string header, values;
  std::map<std::string, uint64_t> out;
  while (std::getline(in, header)) {
    if (header.rfind("Icmp: ", 0) != 0 || !std::getline(in, values)) continue;
    std::istringstream h(header.substr(6)), v(values.substr(6));
    std::string k;
    uint64_t x;
    while (h >> k && v >> x) out["Icmp." + k] = x;
    break;
  }
  return out;
}

// Every counter of /sys/class/net/IF/statistics (dev_get_stats: the same
// rtnl_link_stats64 IFLA_STATS64 carries), including rx_missed_errors and
// rx_fifo_errors, where a NIC reports ring overflows.
std::map<std::string, uint64_t> read_sysfs_stats(const std::string& ifname) {
  std::map<std::string, uint64_t> out;
  std::string dir = "/sys/class/net/" + ifname + "/statistics";
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) return out;
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    std::string v = slurp(dir + "/" + e->d_name);
    if (!v.empty() && isdigit(static_cast<unsigned char>(v[0]))) out[e->d_name] = std::stoull(v);
  }
  return out;
}

json map_delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b) {
  json j = json::object();
  for (const auto& [k, v] : b) {
    auto it = a.find(k);
    j[k] = sub(v, it == a.end() ? 0 : it->second);
  }
  return j;
}

// `link_first`: read the interface's counters before the rest (the end of a
// sink's window, so they are read the moment it stops receiving); otherwise
// last (its start, so they are read the moment before it starts).
WireSnapshot wire_snapshot(netlink::Socket& nl, const std::string& ifname, bool link_first) {
  WireSnapshot s;
  if (link_first) s.link = nl.get_link(ifname).stats;
  s.t_ns = monotonic_ns();
  s.cpu = read_proc_stat();
  s.softnet = read_softnet_stat();
  s.snmp = read_snmp_this_thread();
  s.icmp = read_icmp_counters();
  s.sysfs = read_sysfs_stats(ifname);
  s.driver = ethtool::driver_stats(ifname);
  if (!link_first) s.link = nl.get_link(ifname).stats;
  return s;
}

json cpu_json(const std::vector<CpuTimes>& a, const std::vector<CpuTimes>& b) {
  json arr = json::array();
  for (const auto& c : cpu_delta(a, b)) arr.push_back(c.to_json());
  return arr;
}

std::string fmt(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

namespace {

// A --rps-cpus style value (params_table.cc keeps them in extra_params).
std::string extra(const TrialSpec& s, const char* key) {
  return s.extra_params.contains(key) ? s.extra_params[key].get<std::string>() : "";
}

}  // namespace

// The `zcbench send|sink` command line that reproduces this trial.
std::string wire_command_line(const std::string& role, const TrialSpec& s, const WireOptions& w) {
  std::ostringstream o;
  o << "build/zcbench " << role << " --iface " << s.iface;
  if (role == "send") {
    o << " --dst " << s.dst;
    if (!s.dst_mac.empty()) o << " --dst-mac " << s.dst_mac;
    if (s.allow_any_destination) o << " --allow-any-destination";
    o << " --tx " << s.tx.name;
    for (const auto& [k, v] : s.tx.options) o << " --tx-opt " << k << "=" << v;
    o << " --rate " << (s.rate_pps > 0 ? std::to_string(uint64_t(s.rate_pps)) : "max") << " --warmup " << s.warmup_s;
  } else {
    o << " --rx " << s.rx.name;
    for (const auto& [k, v] : s.rx.options) o << " --rx-opt " << k << "=" << v;
    o << " --source " << s.source;
    if (!s.seq.empty()) o << " --seq " << s.seq;
    if (s.silence_s > 0) o << " --silence " << s.silence_s;
    if (w.rate_given && s.rate_pps > 0) o << " --rate " << uint64_t(s.rate_pps);
    if (w.promisc) o << " --promisc";
    if (w.hw_timestamps) o << " --hw-timestamps";
  }
  o << " --size " << (s.size_mix.empty() ? std::to_string(s.payload_bytes) : s.size_mix) << " --duration " << s.duration_s;
  if (s.count) o << " --count " << s.count;
  if (s.flows != 1) o << " --flows " << s.flows;
  if (s.lab.gro) o << " --gro";
  for (const char* key : {"rps_cpus", "xps_cpus", "rx_ring", "tx_ring", "tx_queue"})
    if (std::string v = extra(s, key); !v.empty()) {
      std::string flag = key;
      std::replace(flag.begin(), flag.end(), '_', '-');
      o << " --" << flag << " " << v;
    }
  if (extra(s, "threaded_napi") == "on") o << " --threaded-napi";
  if (w.allow_host_interface) o << " --allow-host-interface";
  o << " --json";
  return o.str();
}

json base_params(const std::string& role, const TrialSpec& s, const json& wire) {
  json j = {{"role", role},
          {"payload_bytes", s.payload_bytes},
          {"frame_bytes", s.payload_bytes + kEthernetOverhead},
          {"size_mix", s.size_mix.empty() ? json(nullptr) : json(s.size_mix)},
          {"duration_s", s.duration_s},
          {"count", s.count},
          {"flows", s.flows},
          {"repetition", s.repetition},
          {"kernel", kernel_release()},
          {"lab_mode", "wire"},
          {"gro", s.lab.gro},
          {"iface", s.iface},
          {"wire", wire}};
  if (wire["mtu"].is_number()) {  // unknown: absent, never guessed
    j["mtu"] = wire["mtu"];
    // A mix's frames are sent as they are, never cut: each must fit the
    // interface (a single size beyond it is the kernel's EMSGSIZE to report).
    const size_t max_payload = size_t(wire["mtu"].get<int>()) - kUdpIpv4Overhead;
    if (!s.size_mix.empty() && s.payload_bytes > max_payload)
      throw UsageError("--size " + s.size_mix + ": its largest frame, " + std::to_string(s.payload_bytes + kEthernetOverhead) +
                       " bytes, does not fit " + s.iface + "'s MTU " + std::to_string(wire["mtu"].get<int>()) +
                       "; accepted: frames up to " + std::to_string(max_payload + kEthernetOverhead));
  }
  return j;
}

void validate_common(const TrialSpec& s) {
  if (!(s.duration_s > 0) || s.duration_s > 86400)
    throw UsageError("duration " + fmt(s.duration_s) + " s is not accepted; accepted: > 0 and <= 86400");
  if (!(s.silence_s >= 0) || s.silence_s > 3600)
    throw UsageError("--silence " + fmt(s.silence_s) + " s is not accepted; accepted: 0 (off) .. 3600");
  if (s.flows < 1 || s.flows > 1024)
    throw UsageError("flows " + std::to_string(s.flows) + " is not accepted; accepted: 1..1024");
  if (s.payload_bytes < kFloodMinPayload || s.payload_bytes > 65507)
    throw UsageError("payload size " + std::to_string(s.payload_bytes) + " is out of range; accepted: 18..65507");
  SizeMix::parse(s.size_mix);  // a mix's own bounds (harness/size_mix.h); payload_bytes is its largest
  int cpus = online_cpu_count();
  for (int cpu : {s.lab.gen_cpu, s.lab.sink_cpu})
    if (cpu < 0 || cpu >= cpus)
      throw UsageError("CPU " + std::to_string(cpu) + " does not exist; this machine has CPUs 0.." +
                       std::to_string(cpus - 1));
}

json derive_wire(const std::string& role, const json& params, const json& raw) {
  json d = derive_trial(params, raw);
  if (role != "send") return d;
  for (const char* k : {"received_pps", "received_mbps", "received_l2_mbps", "received_l1_mbps", "lost_packets",
                        "loss_ratio", "drops", "reconciliation_ok", "cpu_ns_per_pkt_sink", "sink_cpu_percent"})
    d[k] = nullptr;
  uint64_t busy = 0;
  for (const auto& c : raw.value("cpu_delta", json::array()))
    busy += get_u64(c, "user_ns") + get_u64(c, "nice_ns") + get_u64(c, "system_ns") + get_u64(c, "irq_ns") +
            get_u64(c, "softirq_ns");
  uint64_t tx_win = get_u64(raw, "sent_in_window");
  d["cpu_ns_per_pkt_total"] = tx_win ? json(double(busy) / double(tx_win)) : json(nullptr);
  return d;
}

std::vector<IfaceChange> iface_plan(const std::string& role, const TrialSpec& s, const WireOptions& w) {
  const std::string& i = s.iface;
  std::vector<IfaceChange> plan;
  if (s.lab.gro) plan.push_back({gro_setting(i), "on"});
  if (role == "sink" && w.promisc) plan.push_back({promisc_setting(i), "on"});
  // Every packet stamped (the only filter that covers UDP; run_wire_sink
  // refused a NIC that lacks it), TX stamping left as it is.
  if (role == "sink" && w.hw_timestamps)
    plan.push_back({hwtstamp_setting(i), std::to_string(read_hwtstamp(i).tx_type) + "," +
                                             std::to_string(int(HWTSTAMP_FILTER_ALL))});
  if (role == "sink" && extra(s, "threaded_napi") == "on") plan.push_back({threaded_napi_setting(i), "1"});
  const char* cpus_key = role == "sink" ? "rps_cpus" : "xps_cpus";
  if (std::string cpus = extra(s, cpus_key); !cpus.empty()) {
    const std::string mask = cpu_mask_hex(parse_cpu_list(std::string("--") + (role == "sink" ? "rps" : "xps") + "-cpus", cpus));
    const auto queues = iface_queues(i, role == "sink" ? "rx" : "tx");
    if (queues.empty()) throw EnvError(i + " lists no " + (role == "sink" ? "RX" : "TX") + " queues in /sys/class/net/" + i + "/queues");
    for (const auto& q : queues) plan.push_back({queue_cpus_setting(i, q, cpus_key), mask});
  }
  const char* ring_key = role == "sink" ? "rx_ring" : "tx_ring";
  if (std::string n = extra(s, ring_key); !n.empty()) plan.push_back({ring_setting(i, role == "sink"), n});
  return plan;
}

void record_changes(json& record, const InterfaceGuard& guard) {
  record["params"]["wire"]["changed"] = guard.changed();
  record["params"]["wire"]["not_restored_on_sigkill"] = guard.not_restored_on_sigkill();
}

json new_record(const TrialSpec& s, const std::string& name, const std::string& command, const json& params) {
  return {{"kind", "trial"}, {"suite", s.suite}, {"name", name}, {"command", command},
          {"params", params}, {"status", "pass"}, {"reason", ""}, {"lab", json::object()},
          {"raw", json::object()}, {"derived", json::object()}};
}

bool skip_unusable(const DriverInfo& info, json& record) {
  Usability u = info.probe ? info.probe() : Usability{};
  if (u.usable) return false;
  record["status"] = "skip";
  record["reason"] = "unsupported: " + info.name + ": " + u.reason;
  return true;
}

bool wait_opened(std::promise<void>& opened, std::thread& t, json& record, const std::function<void()>& release) {
  try {
    opened.get_future().get();
    return true;
  } catch (const EnvError& e) {
    if (release) release();
    t.join();
    record["status"] = "skip";
    record["reason"] = std::string("unsupported: ") + e.what();
    return false;
  } catch (...) {
    if (release) release();
    t.join();
    throw;
  }
}

}  // namespace zc::wire_detail
