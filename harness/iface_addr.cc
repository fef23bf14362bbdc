#include "harness/iface_addr.h"

#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "harness/errors.h"
#include "harness/params.h"

namespace zc {

MacAddr interface_mac(const std::string& ifname) {
  if (ifname.size() >= IFNAMSIZ) throw UsageError("interface name '" + ifname + "' is too long");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  check_sys(fd, "socket(AF_INET) for SIOCGIFHWADDR");
  ifreq req{};
  std::memcpy(req.ifr_name, ifname.c_str(), ifname.size());
  int rc = ioctl(fd, SIOCGIFHWADDR, &req);
  int err = errno;
  close(fd);
  if (rc < 0) throw EnvError(errno_text("SIOCGIFHWADDR " + ifname, err), err);
  MacAddr m{};
  std::memcpy(m.data(), req.ifr_hwaddr.sa_data, m.size());
  return m;
}

std::optional<MacAddr> neighbour_mac_in(const std::string& arp_table, const std::string& ifname, in_addr ip) {
  std::istringstream in(arp_table);
  std::string line;
  std::getline(in, line);  // header
  const std::string want = ipv4_to_string(ip);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string addr, hw_type, flags, mac, mask, dev;
    if (!(f >> addr >> hw_type >> flags >> mac >> mask >> dev)) continue;
    if (addr != want || dev != ifname) continue;
    // Incomplete or failed entries lack ATF_COM (and show a zero MAC).
    if (!(std::stoul(flags, nullptr, 16) & ATF_COM)) continue;
    return parse_mac("neighbour entry", mac);
  }
  return std::nullopt;
}

std::optional<MacAddr> neighbour_mac(const std::string& ifname, in_addr ip) {
  std::ifstream f("/proc/net/arp");
  if (!f) throw EnvError("cannot read /proc/net/arp (the kernel's IPv4 neighbour table)");
  std::stringstream text;
  text << f.rdbuf();
  return neighbour_mac_in(text.str(), ifname, ip);
}

MacAddr destination_mac(const std::string& ifname, in_addr ip, const std::string& dst_mac) {
  if (!dst_mac.empty()) return parse_mac("--dst-mac", dst_mac);
  if (auto m = neighbour_mac(ifname, ip)) return *m;
  throw UsageError("no neighbour entry for " + ipv4_to_string(ip) + " on " + ifname + ": give --dst-mac");
}

}  // namespace zc
