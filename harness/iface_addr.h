// Addresses of a named interface (`zcbench send --iface`): its own MAC and the
// kernel's neighbour entry for a destination, so flood frames built by packet
// transports (tx_ring, af_xdp) carry real MACs rather than zeros.
#pragma once
#include <netinet/in.h>

#include <optional>
#include <string>

#include "harness/lab.h"

namespace zc {

// The interface's hardware address (SIOCGIFHWADDR); throws EnvError with errno.
MacAddr interface_mac(const std::string& ifname);

// The complete (ATF_COM) IPv4 neighbour entry for `ip` on `ifname` in this
// namespace's table (/proc/net/arp, the kernel's own view); nullopt if none.
std::optional<MacAddr> neighbour_mac(const std::string& ifname, in_addr ip);
// The same, parsed from a /proc/net/arp text (exposed for tests).
std::optional<MacAddr> neighbour_mac_in(const std::string& arp_table, const std::string& ifname, in_addr ip);

// --dst-mac when given, else the neighbour entry; throws UsageError
// "no neighbour entry for IP on IF: give --dst-mac" when there is none.
MacAddr destination_mac(const std::string& ifname, in_addr ip, const std::string& dst_mac);

}  // namespace zc
