// What the kernel's ethtool ioctls (SIOCETHTOOL) tell about one named
// interface, and the few settings a wire trial may change on it (GRO, ring
// sizes).
// Everything here acts on the calling thread's network namespace.
//
// Each query answers what it can: a driver without an ethtool operation
// (EOPNOTSUPP) gives `null` plus the kernel's reason in the description, never
// an error, because veth, a virtio NIC and a 100G NIC support different sets.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace zc::ethtool {

// params.wire of a wire trial: driver, version, firmware and bus
// (ETHTOOL_GDRVINFO), link speed and duplex (ETHTOOL_GLINKSETTINGS), channels
// (ETHTOOL_GCHANNELS) and the queues in /sys/class/net/IF/queues, every
// feature flag by the kernel's name (ETHTOOL_GFEATURES + ETH_SS_FEATURES),
// MTU, operstate and carrier.
nlohmann::json describe(const std::string& ifname);

// Link speed in Mb/s (ETHTOOL_GLINKSETTINGS); nullopt when unknown (veth,
// link down: SPEED_UNKNOWN) or not supported.
std::optional<uint64_t> link_speed_mbps(const std::string& ifname);

// ETHTOOL_GSTATS with the ETH_SS_STATS names: the driver's own counters
// (per-queue on most NICs). Empty when the driver has none.
std::map<std::string, uint64_t> driver_stats(const std::string& ifname);

// Keys of b whose value differs from a (b - a, clamped at 0), nonzero only.
nlohmann::json stats_delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b);

// GRO (ETHTOOL_GGRO / ETHTOOL_SGRO). get_gro: nullopt when unsupported.
std::optional<bool> get_gro(const std::string& ifname);
void set_gro(const std::string& ifname, bool on);  // throws EnvError with the kernel's reason

// Ring sizes (ETHTOOL_GRINGPARAM / ETHTOOL_SRINGPARAM): the pending RX or TX
// ring entries; `rx` false means TX. get_ring: nullopt when unsupported (veth);
// set_ring leaves the other direction as it is and throws EnvError with the
// kernel's reason.
std::optional<uint32_t> get_ring(const std::string& ifname, bool rx);
void set_ring(const std::string& ifname, bool rx, uint32_t entries);

}  // namespace zc::ethtool
