#include "harness/wire.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "harness/context.h"
#include "harness/errors.h"
#include "harness/counter_delta.h"
#include "harness/ethtool.h"
#include "harness/iface_addr.h"
#include "harness/flood.h"
#include "harness/netlink.h"
#include "harness/pacer.h"
#include "harness/registry.h"
#include "harness/seq_format.h"
#include "harness/sysstat.h"

namespace zc {
namespace {

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

short iface_flags(const std::string& ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw EnvError(errno_text("socket(AF_INET)", errno), errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  int e = errno;
  close(fd);
  if (rc < 0) throw EnvError(errno_text("SIOCGIFFLAGS " + ifname, e), e);
  return ifr.ifr_flags;
}

void set_iface_flag(const std::string& ifname, short flag, bool on) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw EnvError(errno_text("socket(AF_INET)", errno), errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags = short(on ? (ifr.ifr_flags | flag) : (ifr.ifr_flags & ~flag));
    rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(fd);
  if (rc < 0) throw EnvError(errno_text("SIOCSIFFLAGS " + ifname, e), e);
}

// What a wire trial changes on the named interface, recorded before the
// change and restored on every exit path. A normal return or an exception
// restores in the destructor; for SIGKILL a restorer process, forked before
// any change and before any thread, blocks reading a pipe whose only writer
// is this process: the kernel closes it when we die however we die, and the
// restorer then puts the recorded settings back and exits. It ignores SIGINT
// and SIGTERM (a Ctrl-C to the process group must not kill it first).
class InterfaceGuard {
 public:
  InterfaceGuard(const std::string& ifname, bool want_gro, bool want_promisc) : ifname_(ifname) {
    gro_before_ = ethtool::get_gro(ifname);
    promisc_before_ = iface_flags(ifname) & IFF_PROMISC;
    change_gro_ = want_gro && gro_before_ && !*gro_before_;
    change_promisc_ = want_promisc && !promisc_before_;
    if (want_gro && !gro_before_) throw EnvError("--gro: " + ifname + " has no GRO setting (ETHTOOL_GGRO unsupported)");
    if (!change_gro_ && !change_promisc_) return;  // nothing to change: no restorer
    int p[2];
    check_sys(pipe2(p, O_CLOEXEC), "pipe2");
    pid_t pid = fork();
    if (pid < 0) throw EnvError(errno_text("fork (interface restorer)", errno), errno);
    if (pid == 0) {
      signal(SIGINT, SIG_IGN);
      signal(SIGTERM, SIG_IGN);
      signal(SIGHUP, SIG_IGN);
      close(p[1]);
      char c;
      while (read(p[0], &c, 1) != 0 && errno == EINTR) {
      }
      restore_noexcept();
      _exit(0);
    }
    close(p[0]);
    pipe_w_ = p[1];
    restorer_ = pid;
    if (change_gro_) ethtool::set_gro(ifname, true);
    if (change_promisc_) set_iface_flag(ifname, IFF_PROMISC, true);
  }
  ~InterfaceGuard() {
    restore_noexcept();
    if (pipe_w_ >= 0) close(pipe_w_);
    if (restorer_ > 0) waitpid(restorer_, nullptr, 0);
  }
  InterfaceGuard(const InterfaceGuard&) = delete;
  InterfaceGuard& operator=(const InterfaceGuard&) = delete;

  // params.wire.changes: what was changed, from what to what.
  json changes() const {
    json j = json::array();
    if (change_gro_) j.push_back({{"setting", "gro"}, {"before", false}, {"during", true}, {"restored_after_sigkill", true}});
    if (change_promisc_)
      j.push_back({{"setting", "promisc"}, {"before", false}, {"during", true}, {"restored_after_sigkill", true}});
    return j;
  }

 private:
  void restore_noexcept() noexcept {
    try {
      if (change_gro_) ethtool::set_gro(ifname_, *gro_before_);
    } catch (...) {
    }
    try {
      if (change_promisc_) set_iface_flag(ifname_, IFF_PROMISC, promisc_before_);
    } catch (...) {
    }
  }
  std::string ifname_;
  std::optional<bool> gro_before_;
  bool promisc_before_ = false, change_gro_ = false, change_promisc_ = false;
  int pipe_w_ = -1;
  pid_t restorer_ = -1;
};

// Counters of the named interface and the host, read at the edges.
struct WireSnapshot {
  uint64_t t_ns = 0;
  std::vector<CpuTimes> cpu;
  std::vector<SoftnetCpu> softnet;
  std::map<std::string, uint64_t> snmp, icmp, sysfs, driver;
  LinkCounters link;
};

// `link_first`: read the interface's counters before the rest (the end of a
// sink's window, so they are read the moment it stops receiving); otherwise
// last (its start, so they are read the moment before it starts).
WireSnapshot wire_snapshot(netlink::Socket& nl, const std::string& ifname, bool link_first = false) {
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

// XDP on an interface we did not create must vanish with the process; the
// XDP transports attach through netlink (harness/xdp_prog.h), which outlives
// a SIGKILL, so they are refused here until they attach through a BPF link.
void refuse_xdp_transport(const std::string& name, const char* role) {
  if (name == "xdp_drop" || name == "af_xdp")
    throw UsageError(std::string(role) + " " + name + " on a named interface is refused: its XDP program would be "
                     "attached through netlink, not a BPF link, and would outlive a SIGKILL of zcbench; use a socket "
                     "or packet transport (recvmmsg, tpacket_v3; sendmmsg, tx_ring)");
}

std::string fmt(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

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
  }
  o << " --size " << s.payload_bytes << " --duration " << s.duration_s;
  if (s.count) o << " --count " << s.count;
  if (s.flows != 1) o << " --flows " << s.flows;
  if (s.lab.gro) o << " --gro";
  if (w.allow_host_interface) o << " --allow-host-interface";
  o << " --json";
  return o.str();
}

json base_params(const std::string& role, const TrialSpec& s, const json& wire) {
  json j = {{"role", role},
          {"payload_bytes", s.payload_bytes},
          {"frame_bytes", s.payload_bytes + kEthernetOverhead},
          {"duration_s", s.duration_s},
          {"count", s.count},
          {"flows", s.flows},
          {"repetition", s.repetition},
          {"kernel", kernel_release()},
          {"lab_mode", "wire"},
          {"gro", s.lab.gro},
          {"iface", s.iface},
          {"wire", wire}};
  if (wire["mtu"].is_number()) j["mtu"] = wire["mtu"];  // unknown: absent, never guessed
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
  if (!s.size_mix.empty())  // the mix reaches lab trials only (harness/size_mix.h); never send its largest size silently
    throw UsageError("--size " + s.size_mix + ": frame-size mixes run in lab trials (zcbench run) only so far; "
                     "give one payload size, e.g. --size 272");
  int cpus = online_cpu_count();
  for (int cpu : {s.lab.gen_cpu, s.lab.sink_cpu})
    if (cpu < 0 || cpu >= cpus)
      throw UsageError("CPU " + std::to_string(cpu) + " does not exist; this machine has CPUs 0.." +
                       std::to_string(cpus - 1));
}

// Busy and softirq ns per CPU between two interval samples.
struct CpuSample {
  uint64_t t_ns = 0;
  uint64_t received = 0;
  std::vector<CpuTimes> cpu;
};

}  // namespace

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

WireOutcome run_wire_send(const TrialSpec& spec, const WireOptions& w, const std::atomic<bool>* stop) {
  validate_common(spec);
  int ifindex = check_named_interface(spec.iface, w.allow_host_interface);
  in_addr dst_ip{};
  if (spec.dst.empty() || inet_pton(AF_INET, spec.dst.c_str(), &dst_ip) != 1)
    throw UsageError("--dst '" + spec.dst + "' is not an IPv4 address; give the receiver's address, e.g. --dst 198.18.0.2");
  if (!in_benchmark_range(dst_ip) && !spec.allow_any_destination)
    throw UsageError("--dst " + spec.dst + " is outside the benchmarking range 198.18.0.0/15; pass --allow-any-destination to override");
  // Frames we build ourselves (packet transports) need the receiver's MAC:
  // --dst-mac, else the kernel's neighbour entry, else a usage error naming
  // the fix. Socket transports let the kernel resolve it; a known entry is
  // still recorded.
  const bool builds_frames = spec.tx.name == "tx_ring";
  MacAddr dst_mac = builds_frames || !spec.dst_mac.empty()
                        ? destination_mac(spec.iface, dst_ip, spec.dst_mac)
                        : neighbour_mac(spec.iface, dst_ip).value_or(MacAddr{});
  auto src = iface_ipv4(spec.iface);
  if (!src) throw UsageError("interface '" + spec.iface + "' has no IPv4 address; give it one in 198.18.0.0/15");
  if (spec.rate_pps < 0 || !std::isfinite(spec.rate_pps)) throw UsageError("--rate must be > 0 or 'max'");
  const DriverInfo& info = find_driver(spec.tx.name, Direction::tx);
  DriverOptions opts = validate_driver_options(info, spec.tx.options);
  refuse_xdp_transport(spec.tx.name, "send --tx");

  json wire = ethtool::describe(spec.iface);
  auto speed = ethtool::link_speed_mbps(spec.iface);
  json params = base_params("send", spec, wire);
  params["tx"] = spec.tx.name;
  params["tx_opts"] = opts.to_json();
  params["generator"] = kFloodGenerator;
  params["rate_mode"] = spec.rate_pps > 0 ? "fixed" : "max";
  params["offered_pps"] = spec.rate_pps > 0 ? json(spec.rate_pps) : json(nullptr);
  params["warmup_s"] = spec.warmup_s;
  params["burst"] = spec.burst;
  params["dst"] = spec.dst;
  // The MACs the frames carry (resolved: --dst-mac or the neighbour entry; null
  // when a socket transport leaves it to the kernel).
  params["dst_mac"] = dst_mac == MacAddr{} ? json(nullptr) : json(mac_to_string(dst_mac));
  params["src_mac"] = mac_to_string(interface_mac(spec.iface));
  params["gen_cpu"] = spec.lab.gen_cpu;
  params["rx"] = "remote";  // the receiver is not ours (schema: a string)
  std::ostringstream name;
  name << spec.tx.name << "->" << spec.iface << " " << spec.payload_bytes << "B "
       << (spec.rate_pps > 0 ? std::to_string(uint64_t(spec.rate_pps)) + "pps" : "max") << " #" << spec.repetition;
  json record = {{"kind", "trial"}, {"suite", spec.suite}, {"name", name.str()}, {"command", wire_command_line("send", spec, w)},
                 {"params", params}, {"status", "pass"}, {"reason", ""}, {"lab", json::object()},
                 {"raw", json::object()}, {"derived", json::object()}};
  Usability u = info.probe ? info.probe() : Usability{};
  if (!u.usable) {
    record["status"] = "skip";
    record["reason"] = "unsupported: " + info.name + ": " + u.reason;
    return {record, false};
  }
  InterfaceGuard guard(spec.iface, spec.lab.gro, false);
  record["params"]["wire"]["changes"] = guard.changes();
  netlink::Socket nl;

  TxContext ctx;
  ctx.ifname = spec.iface;
  ctx.ifindex = ifindex;
  ctx.src_ip = *src;
  ctx.dst_ip = dst_ip;
  ctx.src_mac = interface_mac(spec.iface);
  ctx.dst_mac = dst_mac;
  ctx.src_port = kFloodSrcPortBase;
  ctx.dst_port = kFloodUdpPort;
  ctx.payload_bytes = spec.payload_bytes;
  ctx.mtu = wire["mtu"].is_number() ? wire["mtu"].get<int>() : 1500;
  ctx.flows = spec.flows;
  ctx.options = opts;
  ctx.ports.push_back({ctx.ifname, ctx.ifindex, ctx.src_ip, ctx.dst_ip, ctx.src_mac, ctx.dst_mac});
  ctx.cpu = spec.lab.gen_cpu;
  std::unique_ptr<TxDriver> tx = info.make_tx();

  std::atomic<bool> stop_gen{false};
  std::promise<void> opened;
  std::promise<uint64_t> go;
  std::shared_future<uint64_t> go_f = go.get_future().share();
  std::exception_ptr err;
  std::unique_ptr<FloodGenerator> gen;
  std::atomic<bool> done{false};
  json tx_stats;
  FloodSpec fs{spec.payload_bytes, spec.rate_pps, spec.burst, spec.flows, spec.count, 0};
  std::thread t([&] {
    bool ready = false;
    try {
      pin_this_thread(spec.lab.gen_cpu);
      tx->open(ctx);
      opened.set_value();
      ready = true;
      uint64_t start = go_f.get();
      if (start) gen->run(start, stop_gen);
      tx->flush();
      tx_stats = tx->kernel_stats();
    } catch (...) {
      err = std::current_exception();
      if (!ready) opened.set_exception(err);
    }
    done.store(true);
  });
  try {
    opened.get_future().get();
  } catch (const EnvError& e) {
    go.set_value(0);
    t.join();
    record["status"] = "skip";
    record["reason"] = std::string("unsupported: ") + e.what();
    return {record, false};
  } catch (...) {
    go.set_value(0);
    t.join();
    throw;
  }
  WireSnapshot s0 = wire_snapshot(nl, spec.iface);
  const uint64_t t0 = monotonic_ns() + 2000000;
  const uint64_t a_time = t0 + uint64_t(spec.warmup_s * 1e9), b_time = a_time + uint64_t(spec.duration_s * 1e9);
  fs.end_ns = b_time;
  gen = std::make_unique<FloodGenerator>(*tx, fs);
  go.set_value(t0);
  bool interrupted = false;
  WireSnapshot sa, sb;
  uint64_t sent_a = 0, sent_b = 0;
  bool have_a = false;
  while (true) {
    wait_until(std::min(monotonic_ns() + 10000000, have_a ? b_time : a_time));
    if (stop && stop->load()) {
      interrupted = true;
      stop_gen.store(true);
      break;
    }
    uint64_t now = monotonic_ns();
    bool fin = done.load();
    if (!have_a && (now >= a_time || fin)) {
      sa = wire_snapshot(nl, spec.iface);
      sent_a = gen->sent();
      have_a = true;
    }
    if (have_a && (now >= b_time || fin)) {
      sb = wire_snapshot(nl, spec.iface);
      sent_b = gen->sent();
      break;
    }
  }
  t.join();
  if (err) std::rethrow_exception(err);
  if (interrupted) return {record, true};
  WireSnapshot sc = wire_snapshot(nl, spec.iface);

  json raw;
  raw["window_ns"] = sub(sb.t_ns, sa.t_ns);
  raw["sent_total"] = gen->sent();
  raw["sent_in_window"] = sub(sent_b, sent_a);
  json gstats = gen->stats();
  raw["tx_errors"] = gstats["refusals"];
  raw["cpu_delta"] = cpu_json(sa.cpu, sb.cpu);
  raw["softnet_delta"] = softnet_delta(s0.softnet, sc.softnet);
  raw["link_delta"] = {{"gen", link_delta(s0.link, sc.link)}};
  raw["iface_stats_delta"] = map_delta(s0.sysfs, sc.sysfs);
  raw["driver_counters_delta"] = ethtool::stats_delta(s0.driver, sc.driver);
  raw["icmp_delta"] = map_delta(s0.icmp, sc.icmp);
  raw["driver_stats"] = {{"tx", tx_stats.is_null() ? json::object() : tx_stats}, {"flood", gstats}};
  record["raw"] = raw;

  json d;
  double win_s = double(get_u64(raw, "window_ns")) / 1e9;
  double sent_pps = win_s > 0 ? double(get_u64(raw, "sent_in_window")) / win_s : 0;
  d["offered_pps"] = params["offered_pps"];
  d["sent_pps"] = win_s > 0 ? json(sent_pps) : json(nullptr);
  d["achieved_ratio"] = spec.rate_pps > 0 && win_s > 0 ? json(sent_pps / spec.rate_pps) : json(nullptr);
  d["generator_short"] = spec.rate_pps > 0 && win_s > 0 && sent_pps < 0.98 * spec.rate_pps;
  // The packets the interface itself put on the wire (a refused or dropped
  // send never reaches it), beside what the generator counted.
  d["iface_tx_packets"] = get_u64(raw["link_delta"]["gen"], "tx_packets");
  d["iface_tx_dropped"] = get_u64(raw["link_delta"]["gen"], "tx_dropped");
  d["icmp_errors"] = get_u64(raw["icmp_delta"], "Icmp.InDestUnreachs");
  uint64_t busy = 0;
  for (const auto& c : raw["cpu_delta"])
    busy += get_u64(c, "user_ns") + get_u64(c, "nice_ns") + get_u64(c, "system_ns") + get_u64(c, "irq_ns") + get_u64(c, "softirq_ns");
  uint64_t tx_win = get_u64(raw, "sent_in_window");
  d["cpu_ns_per_pkt_total"] = tx_win ? json(double(busy) / double(tx_win)) : json(nullptr);
  d["bits"] = bit_rates(sent_pps, double(spec.payload_bytes + kEthernetOverhead), speed);
  // The receiver is not ours: loss is measured by the sink's record.
  d["loss_ratio"] = nullptr;
  record["derived"] = d;
  if (gen->sent() == 0) {
    record["status"] = "fail";
    record["reason"] = "the generator sent nothing";
  }
  return {record, false};
}

WireOutcome run_wire_sink(const TrialSpec& spec, const WireOptions& w, const std::atomic<bool>* stop) {
  validate_common(spec);
  int ifindex = check_named_interface(spec.iface, w.allow_host_interface);
  const bool external = spec.source == "external";
  const DriverInfo& info = find_driver(spec.rx.name, Direction::rx);
  DriverOptions opts = validate_driver_options(info, spec.rx.options);
  refuse_xdp_transport(spec.rx.name, "sink --rx");
  std::optional<SeqFormat> seqf;
  if (!spec.seq.empty()) {
    seqf = parse_seq_format(spec.seq);
    validate_seq_format(*seqf, spec.payload_bytes, !external);
  }
  // Our own flood carries its header; an external source's counter is found
  // by --seq, else the sink can only count.
  std::string accounting = seqf ? "seq" : external ? "count" : opts.text("accounting");
  auto local = iface_ipv4(spec.iface);
  if (!local && info.traffic != "tap")
    throw UsageError("interface '" + spec.iface + "' has no IPv4 address, which the socket sink " + info.name +
                     " binds to; give it one in 198.18.0.0/15 or use a packet-capture sink (tpacket_v3)");
  const double silence_s = spec.silence_s > 0 ? spec.silence_s : 0;

  json wire = ethtool::describe(spec.iface);
  auto speed = ethtool::link_speed_mbps(spec.iface);
  json params = base_params("sink", spec, wire);
  params["rx"] = spec.rx.name;
  params["rx_opts"] = opts.to_json();
  params["generator"] = external ? "external" : "zcbench-send";
  params["source"] = spec.source;
  params["accounting"] = accounting;
  params["seq"] = seqf ? seqf->to_json() : json(nullptr);
  params["silence_s"] = silence_s;
  params["sink_cpu"] = spec.lab.sink_cpu;
  params["promisc"] = w.promisc;
  params["declared_pps"] = w.rate_given && spec.rate_pps > 0 ? json(spec.rate_pps) : json(nullptr);
  params["declared_count"] = w.count_given ? json(spec.count) : json(nullptr);
  params["offered_pps"] = params["declared_pps"];
  // No generator of ours: `tx` names the source (schema: a string).
  params["tx"] = external ? "external" : "zcbench-send";
  std::ostringstream name;
  name << spec.source << "->" << spec.rx.to_string() << "@" << spec.iface << " " << spec.payload_bytes << "B #" << spec.repetition;
  json record = {{"kind", "trial"}, {"suite", spec.suite}, {"name", name.str()}, {"command", wire_command_line("sink", spec, w)},
                 {"params", params}, {"status", "pass"}, {"reason", ""}, {"lab", json::object()},
                 {"raw", json::object()}, {"derived", json::object()}};
  Usability u = info.probe ? info.probe() : Usability{};
  if (!u.usable) {
    record["status"] = "skip";
    record["reason"] = "unsupported: " + info.name + ": " + u.reason;
    return {record, false};
  }
  InterfaceGuard guard(spec.iface, spec.lab.gro, w.promisc);
  record["params"]["wire"]["changes"] = guard.changes();
  netlink::Socket nl;

  Accounting acct(parse_accounting_mode(accounting), spec.flows);
  if (seqf) acct.set_seq_format(*seqf);
  RxContext ctx;
  ctx.ifname = spec.iface;
  ctx.ifindex = ifindex;
  ctx.local_ip = local ? *local : in_addr{htonl(INADDR_ANY)};
  ctx.udp_port = kFloodUdpPort;
  ctx.payload_bytes = spec.payload_bytes;
  ctx.mtu = wire["mtu"].is_number() ? wire["mtu"].get<int>() : 1500;
  ctx.flows = spec.flows;
  ctx.options = opts;
  ctx.ports.push_back({ctx.ifname, ctx.ifindex, ctx.local_ip});
  ctx.max_packets = spec.count;
  ctx.rate_pps = spec.rate_pps;
  ctx.seconds = spec.duration_s;
  ctx.cpu = spec.lab.sink_cpu;
  std::unique_ptr<RxDriver> rx = info.make_rx();

  std::promise<void> opened;
  std::exception_ptr err;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> t0_atomic{0};
  WireSnapshot s0, s1;  // written by the sink thread (before `opened`, before `done`)
  uint64_t first_ns = 0, last_ns = 0, first_batch = 0;
  std::string end_reason = "duration";
  json rx_stats;
  uint64_t ring_drops = 0;
  std::thread t([&] {
    bool ready = false;
    try {
      pin_this_thread(spec.lab.sink_cpu);
      rx->open(ctx);
      // The interface's counters are read on this thread right before the
      // first receive and right after the last: with a source that never
      // pauses, every packet between the two reads and the receive loop's
      // edges would be loss nobody attributes (measured: 714 of 40 000 at
      // 20 kpps when the main thread read them).
      s0 = wire_snapshot(nl, spec.iface);
      const uint64_t t0 = s0.t_ns;
      t0_atomic.store(t0);
      opened.set_value();
      ready = true;
      const uint64_t end = t0 + uint64_t(spec.duration_s * 1e9), silence_ns = uint64_t(silence_s * 1e9);
      acct.set_latency_window(t0, end);
      while (true) {
        if (stop && stop->load()) {
          end_reason = "interrupted";
          break;
        }
        size_t n = rx->receive(acct, 10);
        uint64_t now = monotonic_ns();
        if (n) {
          if (!first_ns) first_ns = now, first_batch = n;
          last_ns = now;
        }
        if (spec.count && acct.packets() >= spec.count) {
          end_reason = "count";
          break;
        }
        if (now >= end) break;
        if (silence_ns && first_ns && now - last_ns >= silence_ns) {
          end_reason = "silence";
          break;
        }
        if (silence_ns && !first_ns && now - t0 >= silence_ns) {
          end_reason = "nothing_arrived";
          break;
        }
      }
      s1 = wire_snapshot(nl, spec.iface, /*link_first=*/true);
      // What the interface had counted by then may still sit in the socket
      // or ring (this thread can be preempted between its last receive and
      // that read): take it, a few non-blocking rounds, no more (a source
      // that never pauses would keep the queue non-empty).
      if (end_reason == "duration")
        for (int round = 0; round < 4 && rx->receive(acct, 0) > 0; ++round) {
        }
      rx_stats = rx->kernel_stats();
      ring_drops = rx->kernel_drops();
    } catch (...) {
      err = std::current_exception();
      if (!ready) opened.set_exception(err);
    }
    done.store(true);
  });
  try {
    opened.get_future().get();
  } catch (const EnvError& e) {
    t.join();
    record["status"] = "skip";
    record["reason"] = std::string("unsupported: ") + e.what();
    return {record, false};
  } catch (...) {
    t.join();
    throw;
  }
  // run.py --remote starts the generator on this line (zcrun/remote.py READY_LINE).
  std::fprintf(stderr, "zcbench sink: ready on %s\n", spec.iface.c_str());
  const uint64_t t0 = t0_atomic.load();
  std::vector<CpuSample> samples{{t0, 0, s0.cpu}};
  const uint64_t interval_ns = uint64_t(std::max(spec.interval_s, 0.01) * 1e9);
  while (!done.load()) {
    wait_until(std::min(samples.back().t_ns + interval_ns, monotonic_ns() + 10000000));
    if (monotonic_ns() >= samples.back().t_ns + interval_ns)
      samples.push_back({monotonic_ns(), acct.packets(), read_proc_stat()});
  }
  t.join();
  if (err) std::rethrow_exception(err);
  samples.push_back({s1.t_ns, acct.packets(), s1.cpu});
  if (end_reason == "interrupted") return {record, true};

  // The active period, first to last packet, to the nearest CPU sample
  // outside it (an external source's traffic rarely fills the window).
  const CpuSample* ca = &samples.front();
  const CpuSample* cb = &samples.back();
  if (first_ns) {
    for (const auto& s : samples)
      if (s.t_ns <= first_ns) ca = &s;
    for (auto it = samples.rbegin(); it != samples.rend(); ++it)
      if (it->t_ns >= last_ns) cb = &*it;
  }

  json raw;
  raw["window_ns"] = sub(s1.t_ns, t0);
  raw["end_reason"] = end_reason;
  raw["received_total"] = acct.packets();
  raw["received_in_window"] = acct.packets();
  raw["received_bytes_total"] = acct.bytes();
  raw["first_packet_ns"] = first_ns ? json(first_ns - t0) : json(nullptr);
  raw["last_packet_ns"] = last_ns ? json(last_ns - t0) : json(nullptr);
  raw["active_ns"] = sub(last_ns, first_ns);
  raw["received_in_first_batch"] = first_batch;
  raw["cpu_delta"] = cpu_json(s0.cpu, s1.cpu);
  raw["cpu_delta_active"] = cpu_json(ca->cpu, cb->cpu);
  raw["cpu_active_span_ns"] = sub(cb->t_ns, ca->t_ns);
  raw["sequence"] = acct.sequence_json();
  raw["latency_ns"] = acct.latency_json();
  raw["softnet_delta"] = softnet_delta(s0.softnet, s1.softnet);
  const uint64_t softnet_dropped = zc::softnet_dropped(raw["softnet_delta"]);
  raw["snmp_sink_delta"] = snmp_delta(s0.snmp, s1.snmp);
  raw["link_delta"] = {{"sink", link_delta(s0.link, s1.link)}};
  raw["iface_stats_delta"] = map_delta(s0.sysfs, s1.sysfs);
  raw["driver_counters_delta"] = ethtool::stats_delta(s0.driver, s1.driver);
  raw["driver_stats"] = {{"rx", rx_stats.is_null() ? json::object() : rx_stats}};
  raw["timestamps"] = sink_timestamps(raw["driver_stats"]["rx"]);  // harness/timestamps.h
  json intervals = json::array();
  for (size_t i = 1; i < samples.size(); ++i) {
    json busy = json::array(), softirq = json::array();
    for (const auto& c : cpu_delta(samples[i - 1].cpu, samples[i].cpu)) {
      busy.push_back(c.busy_ns());
      softirq.push_back(c.softirq_ns);
    }
    intervals.push_back({{"t_ns", samples[i].t_ns - t0}, {"received", samples[i].received},
                         {"cpu_busy_ns", busy}, {"cpu_softirq_ns", softirq}});
  }
  raw["intervals"] = intervals;

  // What was sent toward us, by the best evidence there is: the source's own
  // counter (flood header or --seq), else what the user declared, else what
  // the interface itself received.
  const json& sq = raw["sequence"];
  std::string basis;
  uint64_t sent = 0;
  if (seqf) {
    basis = "seq_counter", sent = get_u64(sq, "seq_expected") + get_u64(sq, "seq_unreadable");
  } else if (accounting == "full") {
    basis = "flood_seq", sent = get_u64(sq, "unique") + get_u64(sq, "gaps");
  } else if (w.count_given && spec.count) {
    basis = "declared_count", sent = spec.count;
  } else {
    basis = "interface_rx_packets", sent = get_u64(raw["link_delta"]["sink"], "rx_packets");
  }
  raw["sent_basis"] = basis;
  raw["sent_total"] = sent;
  raw["sent_in_window"] = sent;
  const json& snmp = raw["snmp_sink_delta"];
  uint64_t rcvbuf = get_u64(snmp, "Udp.RcvbufErrors"), in_err = get_u64(snmp, "Udp.InErrors");
  uint64_t link_drops = get_u64(raw["link_delta"]["sink"], "rx_dropped") + get_u64(raw["iface_stats_delta"], "rx_missed_errors") +
                        get_u64(raw["iface_stats_delta"], "rx_fifo_errors");
  raw["drop_counters"] = {{"sent", sent},
                          {"received_unique", acct.unique()},
                          {"softnet_dropped", softnet_dropped},
                          {"sink_rx_dropped", link_drops},
                          {"gen_tx_dropped", 0},
                          {"udp_rcvbuf_errors", rcvbuf},
                          {"udp_other_errors", sub(in_err, rcvbuf) + get_u64(snmp, "Udp.NoPorts")},
                          {"ring_drops", ring_drops}};
  record["raw"] = raw;
  json d = derive_trial(params, raw);
  uint64_t received = acct.packets();
  double window_s = double(get_u64(raw, "window_ns")) / 1e9;
  double active_s = double(get_u64(raw, "active_ns")) / 1e9;
  // Packets after the first batch over first-to-last: the first batch's own
  // arrival spread is unknown (stamped when receive() returned).
  d["received_pps_window"] = d["received_pps"];
  d["received_pps_active"] =
      active_s > 0 && received > first_batch ? json(double(received - first_batch) / active_s) : json(nullptr);
  if (d["received_pps_active"].is_number()) d["received_pps"] = d["received_pps_active"];
  double mean_payload = received ? double(acct.bytes()) / double(received) : double(spec.payload_bytes);
  d["mean_payload_bytes"] = received ? json(mean_payload) : json(nullptr);
  d["bits"] = bit_rates(d["received_pps"].is_number() ? d["received_pps"].get<double>() : 0, mean_payload + kEthernetOverhead, speed);
  uint64_t busy = 0, busy_sink = 0, softirq = 0;
  json per_cpu = json::array();
  for (const auto& c : raw["cpu_delta_active"]) {
    uint64_t b = get_u64(c, "user_ns") + get_u64(c, "nice_ns") + get_u64(c, "system_ns") + get_u64(c, "irq_ns") + get_u64(c, "softirq_ns");
    busy += b, softirq += get_u64(c, "softirq_ns");
    if (c.value("cpu", -1) == spec.lab.sink_cpu) busy_sink = b;
    double span = double(get_u64(raw, "cpu_active_span_ns"));
    per_cpu.push_back({{"cpu", c.value("cpu", -1)},
                       {"busy_percent", span > 0 ? json(100.0 * double(b) / span) : json(nullptr)},
                       {"softirq_percent", span > 0 ? json(100.0 * double(get_u64(c, "softirq_ns")) / span) : json(nullptr)}});
  }
  d["cpu_active"] = per_cpu;
  d["cpu_ns_per_pkt_total"] = received ? json(double(busy) / double(received)) : json(nullptr);
  d["cpu_ns_per_pkt_sink"] = received ? json(double(busy_sink) / double(received)) : json(nullptr);
  d["end_reason"] = end_reason;
  d["sent_basis"] = basis;
  d["declared_vs_received"] = w.count_given && spec.count ? json(double(received) / double(spec.count)) : json(nullptr);
  (void)window_s;
  record["derived"] = d;

  std::vector<std::string> problems;
  if (received == 0)
    problems.push_back(end_reason == "nothing_arrived"
                           ? "no packets arrived on " + spec.iface + " within the silence period of " + fmt(silence_s) +
                                 " s: is the source sending to this interface (UDP port " + std::to_string(kFloodUdpPort) + ")?"
                           : "no packets arrived on " + spec.iface + " in " + fmt(spec.duration_s) +
                                 " s: is the source sending to this interface (UDP port " + std::to_string(kFloodUdpPort) + ")?");
  if (acct.corrupt()) problems.push_back(std::to_string(acct.corrupt()) + " corrupt packets");
  if (!external && acct.duplicates()) problems.push_back(std::to_string(acct.duplicates()) + " duplicated packets");
  if (received && !d["reconciliation_ok"].get<bool>()) {
    const json& dr = d["drops"];
    problems.push_back("loss does not reconcile (sent by " + basis + "): lost " + dr["lost"].dump() + ", unattributed " +
                       dr["unattributed"].dump() + ", over-attributed " + dr["over_attributed"].dump());
  }
  if (!problems.empty()) {
    record["status"] = "fail";
    std::string r;
    for (const auto& p : problems) r += (r.empty() ? "" : "; ") + p;
    record["reason"] = r;
  }
  return {record, false};
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
