// Deltas of kernel counters between two reads, as records carry them
// (docs/results-format.md): one definition for the lab trial's record
// (harness/trial_record.cc) and the named-interface trials (harness/wire.cc).
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/lab.h"
#include "harness/sysstat.h"

namespace zc {

// IFLA_STATS64 of one device, b − a per counter (0 where a counter went back).
nlohmann::json link_delta(const LinkCounters& a, const LinkCounters& b);
// The Udp.* counters and Ip.InDiscards / Ip.InReceives of /proc/net/snmp.
nlohmann::json snmp_delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b);
// /proc/net/softnet_stat per CPU: processed, dropped, time_squeeze.
nlohmann::json softnet_delta(const std::vector<SoftnetCpu>& a, const std::vector<SoftnetCpu>& b);
// The backlog drops of a softnet_delta, summed over CPUs.
uint64_t softnet_dropped(const nlohmann::json& softnet);

}  // namespace zc
