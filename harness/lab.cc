#include "harness/lab.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "harness/errors.h"
#include "harness/lab_xdp.h"
#include "harness/netlink.h"

namespace zc {

// ---- small conversions -------------------------------------------------

namespace {
struct ModeName {
  LabMode mode;
  const char* name;
};
constexpr ModeName kModes[] = {
    {LabMode::sender_softirq, "sender-softirq"},
    {LabMode::rps, "rps"},
    {LabMode::xdp, "xdp"},
};
}  // namespace

const char* lab_mode_name(LabMode m) {
  for (const auto& e : kModes)
    if (e.mode == m) return e.name;
  return "unknown";
}

std::vector<std::string> lab_mode_names() {
  std::vector<std::string> out;
  for (const auto& e : kModes) out.push_back(e.name);
  return out;
}

LabMode parse_lab_mode(const std::string& s) {
  std::string accepted;
  for (const auto& e : kModes) {
    if (s == e.name) return e.mode;
    accepted += accepted.empty() ? "" : ", ";
    accepted += e.name;
  }
  throw UsageError("lab mode '" + s + "' is not known; accepted: " + accepted);
}

std::string mac_to_string(const MacAddr& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

std::string ipv4_to_string(in_addr a) {
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &a, buf, sizeof buf) ? buf : "?";
}

nlohmann::json LinkCounters::to_json() const {
  return {{"rx_packets", rx_packets}, {"tx_packets", tx_packets}, {"rx_bytes", rx_bytes},
          {"tx_bytes", tx_bytes},     {"rx_dropped", rx_dropped}, {"tx_dropped", tx_dropped},
          {"rx_errors", rx_errors},   {"tx_errors", tx_errors}};
}

// ---- CPUs ----------------------------------------------------------------

int online_cpu_count() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

void pin_this_thread(int cpu) {
  const int n = online_cpu_count();
  if (cpu < 0 || cpu >= n)
    throw UsageError("CPU " + std::to_string(cpu) + " does not exist: " + std::to_string(n) +
                     " CPUs online (0.." + std::to_string(n - 1) + ")");
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  // EINVAL here means the CPU is outside our cpuset (container, taskset).
  if (rc != 0) throw UsageError(errno_text("pin thread to CPU " + std::to_string(cpu), rc));
}

int lab_sink_cpu_for_queue(const LabOptions& o, int q) {
  return o.sink_cpus.empty() ? o.sink_cpu : o.sink_cpus[static_cast<size_t>(q) % o.sink_cpus.size()];
}

int lab_gen_cpu_for_queue(const LabOptions& o, int q) {
  return o.gen_cpus.empty() ? o.gen_cpu : o.gen_cpus[static_cast<size_t>(q) % o.gen_cpus.size()];
}

// ---- lab pieces ------------------------------------------------------------

namespace {

constexpr int kMinMtu = 68;     // ETH_MIN_MTU, also the IPv4 minimum
constexpr int kMaxMtu = 65535;  // ETH_MAX_MTU, veth's max_mtu
constexpr int kMaxPortPairs = 16;
// As many queues as the lab's XSKMAP has entries: an AF_XDP socket can then
// bind any queue the lab has.
constexpr int kMaxQueues = static_cast<int>(kLabXskmapEntries);

in_addr lab_ip(int port, int host) {
  in_addr a{};
  a.s_addr = htonl((198u << 24) | (18u << 16) | (static_cast<uint32_t>(port) << 8) | static_cast<uint32_t>(host));
  return a;
}

void check_cpu(const char* what, int cpu, int online) {
  if (cpu < 0 || cpu >= online)
    throw UsageError(std::string("lab ") + what + " " + std::to_string(cpu) + " does not exist: " +
                     std::to_string(online) + " CPUs online (0.." + std::to_string(online - 1) + ")");
}

void validate(const LabOptions& o) {
  if (o.port_pairs < 1 || o.port_pairs > kMaxPortPairs)
    throw UsageError("lab port_pairs " + std::to_string(o.port_pairs) + " is out of range; accepted: 1.." +
                     std::to_string(kMaxPortPairs));
  if (o.mtu < kMinMtu || o.mtu > kMaxMtu)
    throw UsageError("lab MTU " + std::to_string(o.mtu) + " is out of range for veth; accepted: " +
                     std::to_string(kMinMtu) + ".." + std::to_string(kMaxMtu));
  const int online = online_cpu_count();
  check_cpu("gen_cpu", o.gen_cpu, online);
  check_cpu("sink_cpu", o.sink_cpu, online);
  if (o.queues < 1 || o.queues > kMaxQueues)
    throw UsageError("lab queues " + std::to_string(o.queues) + " is out of range; accepted: 1.." +
                     std::to_string(kMaxQueues) + " (the lab XSKMAP's entries)");
  for (int c : o.sink_cpus) check_cpu("sink_cpus entry", c, online);
  for (int c : o.gen_cpus) check_cpu("gen_cpus entry", c, online);
}

// The bitmap text the kernel's rps_cpus parser takes: hex words of 32 CPUs,
// most significant first, joined by commas ("2" for CPU 1).
std::string cpu_mask_hex(int cpu) {
  std::string out;
  for (int word = cpu / 32; word >= 0; --word) {
    const uint32_t bits = (word == cpu / 32) ? (1u << (cpu % 32)) : 0u;
    char buf[12];
    std::snprintf(buf, sizeof buf, out.empty() ? "%x" : "%08x", bits);
    if (!out.empty()) out += ",";
    out += buf;
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// IPv6 off on lab links: no router solicitations or DAD traffic in the
// counters. These sysctls belong to the namespace of the writing thread.
// Returns false when the kernel has no IPv6 at all (nothing to disable).
// A device whose MTU is below IPv6's minimum (1280) has no IPv6 state and
// no conf/<dev> directory: nothing to disable there, and nothing to send.
bool disable_ipv6(const std::vector<std::string>& conf_names) {
  if (access("/proc/sys/net/ipv6", F_OK) != 0) return false;
  for (const auto& name : conf_names) {
    const std::string dir = "/proc/sys/net/ipv6/conf/" + name;
    if (access(dir.c_str(), F_OK) == 0) write_file(dir + "/disable_ipv6", "1");
  }
  return true;
}

bool ipv6_is_disabled(const std::string& dev) {
  const std::string path = "/proc/sys/net/ipv6/conf/" + dev + "/disable_ipv6";
  if (access(path.c_str(), F_OK) != 0) return true;
  return trim(read_file(path)) == "1";
}

// GRO through the legacy ethtool ioctl (ETHTOOL_SGRO maps onto NETIF_F_GRO);
// the socket, and so the device lookup, lives in the calling thread's namespace.
bool set_gro(const std::string& dev, bool on) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  check_sys(fd, "socket for ethtool on " + dev);
  auto ethtool = [&](uint32_t cmd, uint32_t value, const char* what) {
    ethtool_value ev{};
    ev.cmd = cmd;
    ev.data = value;
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev.c_str());
    ifr.ifr_data = reinterpret_cast<char*>(&ev);
    if (ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
      const int e = errno;
      close(fd);
      throw EnvError(errno_text(std::string(what) + " on " + dev, e), e);
    }
    return ev.data;
  };
  ethtool(ETHTOOL_SGRO, on ? 1 : 0, on ? "ethtool ETHTOOL_SGRO (enable GRO)" : "ethtool ETHTOOL_SGRO (disable GRO)");
  const bool state = ethtool(ETHTOOL_GGRO, 0, "ethtool ETHTOOL_GGRO") != 0;
  close(fd);
  return state;
}

// Queue directories as the kernel shows them (prefix "rx-" or "tx-"): the
// record's queue counts are read back, not what was asked for.
int count_queues(const std::string& dev, const char* prefix) {
  const std::string path = "/sys/class/net/" + dev + "/queues";
  DIR* d = opendir(path.c_str());
  if (!d) check_sys(-1, "open " + path);
  int n = 0;
  while (const dirent* e = readdir(d))
    if (std::strncmp(e->d_name, prefix, 3) == 0) ++n;
  closedir(d);
  return n;
}

// XPS: TX queue q of a generator veth is the one its queue CPU transmits on
// (netdev_pick_tx consults xps_cpus before the socket hash), so a generator
// worker pinned to that CPU feeds queue q and, through veth_xmit, the sink's
// RX queue q. Without CONFIG_XPS the file is absent: recorded, not fatal —
// the sockets then spread over queues by their own hash.
nlohmann::json set_xps(const LabOptions& o, const std::string& dev) {
  nlohmann::json per_queue = nlohmann::json::array();
  for (int q = 0; q < o.queues; ++q) {
    const std::string path = "/sys/class/net/" + dev + "/queues/tx-" + std::to_string(q) + "/xps_cpus";
    if (access(path.c_str(), F_OK) != 0) return "unavailable: " + path + " is absent (kernel without CONFIG_XPS)";
    write_file(path, cpu_mask_hex(lab_gen_cpu_for_queue(o, q)));
    per_queue.push_back(trim(read_file(path)));
  }
  return per_queue;
}

nlohmann::json queue_cpus(const LabOptions& o) {
  nlohmann::json out = nlohmann::json::array();
  for (int q = 0; q < o.queues; ++q)
    out.push_back({{"queue", q}, {"sink_cpu", lab_sink_cpu_for_queue(o, q)}, {"gen_cpu", lab_gen_cpu_for_queue(o, q)}});
  return out;
}

LinkCounters read_counters(const Netns& ns, const std::string& dev, int ifindex) {
  LinkCounters c;
  ns.run([&] {
    netlink::Socket nl;
    c = nl.get_link(ifindex, dev).stats;
  });
  return c;
}

}  // namespace

// ---- Lab -----------------------------------------------------------------

Lab Lab::create(const LabOptions& opts) {
  validate(opts);
  Lab lab;
  lab.opts_ = opts;
  lab.gen_ns_ = Netns::create_anonymous();
  lab.sink_ns_ = Netns::create_anonymous();
  const int n = opts.port_pairs;
  lab.ports_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    LabPort& p = lab.ports_[static_cast<size_t>(i)];
    p.gen_ifname = "zcg" + std::to_string(i);
    p.sink_ifname = "zcs" + std::to_string(i);
    p.gen_ip = lab_ip(i, 1);
    p.sink_ip = lab_ip(i, 2);
  }

  // Set "default" before the devices exist so they are born with IPv6 off
  // and never send a single router solicitation.
  bool ipv6_available = true;
  lab.sink_ns_.run([&] { ipv6_available = disable_ipv6({"all", "default"}); });

  // Generator side: both veth ends are created from here, the peer directly
  // inside the sink namespace, so no lab device ever exists in the host's.
  std::vector<netlink::LinkInfo> gen_links, sink_links;
  lab.gen_ns_.run([&] {
    disable_ipv6({"all", "default"});
    netlink::Socket nl;
    for (auto& p : lab.ports_) {
      nl.create_veth_pair(p.gen_ifname, p.sink_ifname, lab.sink_ns_.fd(), opts.mtu, opts.queues);
      gen_links.push_back(nl.get_link(p.gen_ifname));
      nl.set_link_up(gen_links.back());
      nl.add_ipv4_address(gen_links.back(), p.gen_ip, p.prefix_len);
    }
  });

  std::vector<bool> sink_gro(static_cast<size_t>(n));
  bool ipv6_off = true;
  lab.sink_ns_.run([&] {
    netlink::Socket nl;
    for (int i = 0; i < n; ++i) {
      auto& p = lab.ports_[static_cast<size_t>(i)];
      sink_links.push_back(nl.get_link(p.sink_ifname));
      const auto& link = sink_links.back();
      nl.set_link_up(link);
      nl.add_ipv4_address(link, p.sink_ip, p.prefix_len);
      nl.add_permanent_neighbour(link, p.gen_ip, gen_links[static_cast<size_t>(i)].mac);
      if (ipv6_available) disable_ipv6({p.sink_ifname});
      ipv6_off = ipv6_off && ipv6_is_disabled(p.sink_ifname);
      // Explicit both ways, so the recorded state never depends on the
      // kernel's veth default.
      sink_gro[static_cast<size_t>(i)] = set_gro(p.sink_ifname, opts.gro);
    }
  });

  lab.gen_ns_.run([&] {
    netlink::Socket nl;
    for (int i = 0; i < n; ++i) {
      auto& p = lab.ports_[static_cast<size_t>(i)];
      const MacAddr dst = opts.tap_traffic ? kTapForeignMac : sink_links[static_cast<size_t>(i)].mac;
      nl.add_permanent_neighbour(gen_links[static_cast<size_t>(i)], p.sink_ip, dst);
      if (ipv6_available) disable_ipv6({p.gen_ifname});
      ipv6_off = ipv6_off && ipv6_is_disabled(p.gen_ifname);
    }
  });

  // A veth that is up still drops everything until linkwatch swaps its noop
  // qdisc for the real one, a few ms later (seen: 1 fresh lab in 25 lost its
  // first datagram while sendto() reported success). Wait for every end.
  auto wait_active = [&](const Netns& ns, bool gen_side) {
    ns.run([&] {
      netlink::Socket nl;
      for (const auto& p : lab.ports_) {
        const std::string& dev = gen_side ? p.gen_ifname : p.sink_ifname;
        for (int tries = 0;; ++tries) {
          if (nl.get_link(dev).qdisc != "noop") break;
          if (tries >= 2000)
            throw EnvError("veth " + dev + " never became active (qdisc still noop after 2 s)");
          usleep(1000);
        }
      }
    });
  };
  wait_active(lab.gen_ns_, true);
  wait_active(lab.sink_ns_, false);

  for (int i = 0; i < n; ++i) {
    auto& p = lab.ports_[static_cast<size_t>(i)];
    p.gen_ifindex = gen_links[static_cast<size_t>(i)].index;
    p.sink_ifindex = sink_links[static_cast<size_t>(i)].index;
    p.gen_mac = gen_links[static_cast<size_t>(i)].mac;
    p.sink_mac = sink_links[static_cast<size_t>(i)].mac;
    p.traffic_dst_mac = opts.tap_traffic ? kTapForeignMac : p.sink_mac;
  }

  // RPS: rps_cpus is only reachable through a sysfs mounted inside the sink
  // namespace. sender-softirq writes 0 explicitly rather than trusting the
  // default, so the recorded value is what the kernel holds. Each RX queue
  // gets its own queue's CPU (LabOptions::sink_cpus).
  std::vector<nlohmann::json> rps_read(static_cast<size_t>(n));
  std::vector<int> rx_queues(static_cast<size_t>(n)), tx_queues(static_cast<size_t>(n));
  run_with_netns_sysfs(lab.sink_ns_, [&] {
    for (int i = 0; i < n; ++i) {
      const auto& dev = lab.ports_[static_cast<size_t>(i)].sink_ifname;
      rps_read[static_cast<size_t>(i)] = nlohmann::json::array();
      for (int q = 0; q < opts.queues; ++q) {
        const std::string path = "/sys/class/net/" + dev + "/queues/rx-" + std::to_string(q) + "/rps_cpus";
        write_file(path, opts.mode == LabMode::rps ? cpu_mask_hex(lab_sink_cpu_for_queue(opts, q)) : "0");
        rps_read[static_cast<size_t>(i)].push_back(trim(read_file(path)));
      }
      rx_queues[static_cast<size_t>(i)] = count_queues(dev, "rx-");
    }
  });
  std::vector<nlohmann::json> xps(static_cast<size_t>(n));
  run_with_netns_sysfs(lab.gen_ns_, [&] {
    for (int i = 0; i < n; ++i) {
      const auto& dev = lab.ports_[static_cast<size_t>(i)].gen_ifname;
      tx_queues[static_cast<size_t>(i)] = count_queues(dev, "tx-");
      // One queue needs no steering; leaving it untouched keeps single-queue
      // labs exactly as they were.
      xps[static_cast<size_t>(i)] = opts.queues > 1 ? set_xps(opts, dev) : nlohmann::json("not set (one queue)");
    }
  });

  nlohmann::json ports = nlohmann::json::array();
  bool gro_all = true;
  for (int i = 0; i < n; ++i) {
    const auto& p = lab.ports_[static_cast<size_t>(i)];
    const auto k = static_cast<size_t>(i);
    gro_all = gro_all && sink_gro[k];
    ports.push_back({{"gen_ifname", p.gen_ifname},
                     {"sink_ifname", p.sink_ifname},
                     {"gen_ifindex", p.gen_ifindex},
                     {"sink_ifindex", p.sink_ifindex},
                     {"gen_ip", ipv4_to_string(p.gen_ip)},
                     {"sink_ip", ipv4_to_string(p.sink_ip)},
                     {"prefix_len", p.prefix_len},
                     {"gen_mac", mac_to_string(p.gen_mac)},
                     {"sink_mac", mac_to_string(p.sink_mac)},
                     {"traffic_dst_mac", mac_to_string(p.traffic_dst_mac)},
                     {"mtu", sink_links[k].mtu},
                     {"sink_gro", static_cast<bool>(sink_gro[k])},
                     {"rps_cpus", rps_read[k][0]},
                     {"rps_cpus_per_queue", rps_read[k]},
                     {"gen_xps_cpus_per_queue", xps[k]},
                     {"rx_queues", rx_queues[k]},
                     {"gen_tx_queues", tx_queues[k]}});
  }
  lab.description_ = {{"mode", lab_mode_name(opts.mode)},
                      {"mtu", opts.mtu},
                      {"gen_cpu", opts.gen_cpu},
                      {"sink_cpu", opts.sink_cpu},
                      {"gro", gro_all},
                      {"ipv6_disabled", ipv6_off},
                      {"ipv6_available", ipv6_available},
                      {"port_pairs", n},
                      {"queues", opts.queues},
                      {"queue_cpus", queue_cpus(opts)},
                      {"traffic", opts.tap_traffic ? "tap" : "host-addressed"},
                      {"ports", ports},
                      {"namespaces", "anonymous"}};
  if (opts.mode == LabMode::xdp)
    lab.description_["xdp"] = setup_xdp_lab(lab.gen_ns_, lab.sink_ns_, lab.ports_, opts);
  return lab;
}

namespace {
void check_port(int port, size_t count) {
  if (port < 0 || static_cast<size_t>(port) >= count)
    throw UsageError("lab port " + std::to_string(port) + " does not exist; accepted: 0.." +
                     std::to_string(count - 1));
}
}  // namespace

LinkCounters Lab::gen_link_counters(int port) const {
  check_port(port, ports_.size());
  const auto& p = ports_[static_cast<size_t>(port)];
  return read_counters(gen_ns_, p.gen_ifname, p.gen_ifindex);
}

LinkCounters Lab::sink_link_counters(int port) const {
  check_port(port, ports_.size());
  const auto& p = ports_[static_cast<size_t>(port)];
  return read_counters(sink_ns_, p.sink_ifname, p.sink_ifindex);
}

nlohmann::json Lab::describe() const { return description_; }

}  // namespace zc
