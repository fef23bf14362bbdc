#include "harness/ethtool.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <memory>
#include <vector>

#include "harness/errors.h"

namespace zc::ethtool {
namespace {

using nlohmann::json;

// One datagram socket per query: SIOCETHTOOL needs any socket of the
// namespace the device lives in.
class Ioctl {
 public:
  explicit Ioctl(const std::string& ifname) : ifname_(ifname) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw EnvError(errno_text("socket(AF_INET, SOCK_DGRAM) for SIOCETHTOOL", errno), errno);
    if (ifname.size() >= IFNAMSIZ) throw UsageError("interface name '" + ifname + "' is longer than IFNAMSIZ-1");
  }
  ~Ioctl() { close(fd_); }
  // Returns 0 or the errno.
  int call(void* cmd) {
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname_.c_str(), IFNAMSIZ - 1);
    ifr.ifr_data = static_cast<char*>(cmd);
    return ioctl(fd_, SIOCETHTOOL, &ifr) < 0 ? errno : 0;
  }
  int flags(short* out) {
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname_.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_, SIOCGIFFLAGS, &ifr) < 0) return errno;
    *out = ifr.ifr_flags;
    return 0;
  }

 private:
  std::string ifname_;
  int fd_ = -1;
};

std::string cstr(const char* s, size_t n) { return std::string(s, strnlen(s, n)); }

// Names of one string set (ETH_SS_FEATURES, ETH_SS_STATS), or empty.
std::vector<std::string> string_set(Ioctl& io, uint32_t set) {
  // ethtool_sset_info ends in a flexible array: one u32 per set asked for.
  alignas(ethtool_sset_info) uint8_t ibuf[sizeof(ethtool_sset_info) + sizeof(uint32_t)] = {};
  auto* info = reinterpret_cast<ethtool_sset_info*>(ibuf);
  info->cmd = ETHTOOL_GSSET_INFO;
  info->sset_mask = 1ull << set;
  if (io.call(info) != 0 || !(info->sset_mask & (1ull << set)) || info->data[0] == 0) return {};
  uint32_t n = info->data[0];
  std::vector<uint8_t> buf(sizeof(ethtool_gstrings) + size_t(n) * ETH_GSTRING_LEN);
  auto* gs = reinterpret_cast<ethtool_gstrings*>(buf.data());
  gs->cmd = ETHTOOL_GSTRINGS;
  gs->string_set = set;
  gs->len = n;
  if (io.call(gs) != 0) return {};
  std::vector<std::string> out;
  for (uint32_t i = 0; i < gs->len; ++i)
    out.push_back(cstr(reinterpret_cast<const char*>(gs->data) + size_t(i) * ETH_GSTRING_LEN, ETH_GSTRING_LEN));
  return out;
}

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

json unsupported(int err, const char* what) { return {{"unavailable", errno_text(what, err)}}; }

json drvinfo(Ioctl& io) {
  ethtool_drvinfo d{};
  d.cmd = ETHTOOL_GDRVINFO;
  if (int e = io.call(&d)) return unsupported(e, "ETHTOOL_GDRVINFO");
  return {{"driver", cstr(d.driver, sizeof d.driver)},
          {"version", cstr(d.version, sizeof d.version)},
          {"firmware", cstr(d.fw_version, sizeof d.fw_version)},
          {"bus", cstr(d.bus_info, sizeof d.bus_info)}};
}

// The GLINKSETTINGS handshake (linux/ethtool.h): the first call with
// link_mode_masks_nwords = 0 returns the kernel's word count, negated.
json link_settings(Ioctl& io) {
  // Flexible array of link-mode masks after the struct: 3 x nwords u32.
  alignas(ethtool_link_settings) uint8_t buf[sizeof(ethtool_link_settings) + 3 * 127 * sizeof(uint32_t)] = {};
  auto* ls = reinterpret_cast<ethtool_link_settings*>(buf);
  ls->cmd = ETHTOOL_GLINKSETTINGS;
  if (int e = io.call(ls)) return unsupported(e, "ETHTOOL_GLINKSETTINGS");
  if (ls->link_mode_masks_nwords >= 0 || -ls->link_mode_masks_nwords > 127)
    return {{"unavailable", "ETHTOOL_GLINKSETTINGS: unexpected handshake answer"}};
  int8_t nwords = int8_t(-ls->link_mode_masks_nwords);
  std::memset(buf, 0, sizeof buf);
  ls->cmd = ETHTOOL_GLINKSETTINGS;
  ls->link_mode_masks_nwords = nwords;
  if (int e = io.call(ls)) return unsupported(e, "ETHTOOL_GLINKSETTINGS");
  json j;
  j["speed_mbps"] = ls->speed == uint32_t(SPEED_UNKNOWN) || ls->speed == 0 ? json(nullptr) : json(ls->speed);
  j["duplex"] = ls->duplex == DUPLEX_FULL ? "full" : ls->duplex == DUPLEX_HALF ? "half" : "unknown";
  j["autoneg"] = ls->autoneg == AUTONEG_ENABLE;
  j["port"] = ls->port;
  return j;
}

json channels(Ioctl& io) {
  ethtool_channels c{};
  c.cmd = ETHTOOL_GCHANNELS;
  if (int e = io.call(&c)) return unsupported(e, "ETHTOOL_GCHANNELS");
  return {{"rx", c.rx_count}, {"tx", c.tx_count}, {"combined", c.combined_count}, {"other", c.other_count},
          {"max_rx", c.max_rx}, {"max_tx", c.max_tx}, {"max_combined", c.max_combined}};
}

json ring_sizes(Ioctl& io) {
  ethtool_ringparam r{};
  r.cmd = ETHTOOL_GRINGPARAM;
  if (int e = io.call(&r)) return unsupported(e, "ETHTOOL_GRINGPARAM");
  return {{"rx", r.rx_pending}, {"tx", r.tx_pending}, {"rx_max", r.rx_max_pending}, {"tx_max", r.tx_max_pending}};
}

json sysfs_queues(const std::string& ifname) {
  json q = {{"rx", 0}, {"tx", 0}};
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(("/sys/class/net/" + ifname + "/queues").c_str()), closedir);
  if (!d) return nullptr;
  while (dirent* e = readdir(d.get())) {
    std::string n = e->d_name;
    if (n.rfind("rx-", 0) == 0) q["rx"] = q["rx"].get<int>() + 1;
    if (n.rfind("tx-", 0) == 0) q["tx"] = q["tx"].get<int>() + 1;
  }
  return q;
}

json features(Ioctl& io) {
  std::vector<std::string> names = string_set(io, ETH_SS_FEATURES);
  if (names.empty()) return {{"unavailable", "ETHTOOL_GSSET_INFO(ETH_SS_FEATURES) gave no names"}};
  uint32_t blocks = uint32_t((names.size() + 31) / 32);
  std::vector<uint8_t> buf(sizeof(ethtool_gfeatures) + blocks * sizeof(ethtool_get_features_block));
  auto* g = reinterpret_cast<ethtool_gfeatures*>(buf.data());
  g->cmd = ETHTOOL_GFEATURES;
  g->size = blocks;
  if (int e = io.call(g)) return unsupported(e, "ETHTOOL_GFEATURES");
  json on = json::object();
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& b = g->features[i / 32];
    uint32_t bit = 1u << (i % 32);
    if (names[i].empty() || !(b.available & bit || b.active & bit)) continue;
    on[names[i]] = bool(b.active & bit);
  }
  return on;
}

}  // namespace

json describe(const std::string& ifname) {
  Ioctl io(ifname);
  json j;
  j["iface"] = ifname;
  j["driver"] = drvinfo(io);
  j["link"] = link_settings(io);
  j["channels"] = channels(io);
  j["queues"] = sysfs_queues(ifname);
  j["rings"] = ring_sizes(io);
  j["features"] = features(io);
  std::string mtu = read_line("/sys/class/net/" + ifname + "/mtu");
  j["mtu"] = mtu.empty() ? json(nullptr) : json(std::stoi(mtu));
  j["operstate"] = read_line("/sys/class/net/" + ifname + "/operstate");
  short fl = 0;
  if (io.flags(&fl) == 0) {
    j["up"] = bool(fl & IFF_UP);
    j["carrier"] = bool(fl & IFF_RUNNING);
    j["promisc"] = bool(fl & IFF_PROMISC);
  }
  auto gro = get_gro(ifname);
  j["gro"] = gro ? json(*gro) : json(nullptr);
  return j;
}

std::optional<uint64_t> link_speed_mbps(const std::string& ifname) {
  Ioctl io(ifname);
  json l = link_settings(io);
  if (l.contains("speed_mbps") && l["speed_mbps"].is_number()) return l["speed_mbps"].get<uint64_t>();
  return std::nullopt;
}

std::map<std::string, uint64_t> driver_stats(const std::string& ifname) {
  Ioctl io(ifname);
  std::vector<std::string> names = string_set(io, ETH_SS_STATS);
  std::map<std::string, uint64_t> out;
  if (names.empty()) return out;
  std::vector<uint8_t> buf(sizeof(ethtool_stats) + names.size() * sizeof(uint64_t));
  auto* st = reinterpret_cast<ethtool_stats*>(buf.data());
  st->cmd = ETHTOOL_GSTATS;
  st->n_stats = uint32_t(names.size());
  if (io.call(st) != 0) return out;
  for (size_t i = 0; i < names.size() && i < st->n_stats; ++i) out[names[i]] = st->data[i];
  return out;
}

json stats_delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b) {
  json j = json::object();
  for (const auto& [k, v] : b) {
    auto it = a.find(k);
    uint64_t before = it == a.end() ? 0 : it->second;
    if (v > before) j[k] = v - before;
  }
  return j;
}

std::optional<bool> get_gro(const std::string& ifname) {
  Ioctl io(ifname);
  ethtool_value v{};
  v.cmd = ETHTOOL_GGRO;
  if (io.call(&v) != 0) return std::nullopt;
  return v.data != 0;
}

void set_gro(const std::string& ifname, bool on) {
  Ioctl io(ifname);
  ethtool_value v{};
  v.cmd = ETHTOOL_SGRO;
  v.data = on ? 1 : 0;
  if (int e = io.call(&v)) throw EnvError(errno_text("ETHTOOL_SGRO " + ifname, e), e);
}

std::optional<uint32_t> get_ring(const std::string& ifname, bool rx) {
  Ioctl io(ifname);
  ethtool_ringparam r{};
  r.cmd = ETHTOOL_GRINGPARAM;
  if (io.call(&r) != 0) return std::nullopt;
  return rx ? r.rx_pending : r.tx_pending;
}

void set_ring(const std::string& ifname, bool rx, uint32_t entries) {
  Ioctl io(ifname);
  ethtool_ringparam r{};
  r.cmd = ETHTOOL_GRINGPARAM;
  if (int e = io.call(&r)) throw EnvError(errno_text("ETHTOOL_GRINGPARAM " + ifname, e), e);
  (rx ? r.rx_pending : r.tx_pending) = entries;
  r.cmd = ETHTOOL_SRINGPARAM;
  if (int e = io.call(&r)) throw EnvError(errno_text("ETHTOOL_SRINGPARAM " + ifname, e), e);
}

}  // namespace zc::ethtool
