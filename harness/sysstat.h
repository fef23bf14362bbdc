// System counters read at trial window edges: /proc/stat per CPU,
// /proc/softirqs NET_RX/NET_TX per CPU, /proc/net/softnet_stat, the UDP/IP
// lines of a namespace's /proc/net/snmp, per-thread rusage.
//
// Parsers take the file text so they are unit-tested on stored samples; the
// read_* functions read the live files.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zc {

// One CPU line of /proc/stat, converted from USER_HZ ticks to nanoseconds.
struct CpuTimes {
  int cpu = -1;  // -1 for the aggregate "cpu" line
  uint64_t user_ns = 0, nice_ns = 0, system_ns = 0, idle_ns = 0, iowait_ns = 0;
  uint64_t irq_ns = 0, softirq_ns = 0, steal_ns = 0;
  // Work done on this CPU (user+nice+system+irq+softirq); steal is not ours.
  uint64_t busy_ns() const { return user_ns + nice_ns + system_ns + irq_ns + softirq_ns; }
  nlohmann::json to_json() const;
};
std::vector<CpuTimes> parse_proc_stat(const std::string& text);  // per-CPU lines only, index = cpu
std::vector<CpuTimes> read_proc_stat();
// Element-wise b - a (same CPU set); counters never go backwards, a negative
// delta (CPU hot-unplug) clamps to 0.
std::vector<CpuTimes> cpu_delta(const std::vector<CpuTimes>& a, const std::vector<CpuTimes>& b);

// Per-CPU counts of one row of /proc/softirqs (e.g. "NET_RX").
std::vector<uint64_t> parse_softirqs(const std::string& text, const std::string& row);
std::vector<uint64_t> read_softirqs(const std::string& row);

// /proc/net/softnet_stat: per-CPU processed, dropped (backlog full), time_squeeze.
struct SoftnetCpu {
  uint64_t processed = 0, dropped = 0, time_squeeze = 0;
};
std::vector<SoftnetCpu> parse_softnet_stat(const std::string& text);
std::vector<SoftnetCpu> read_softnet_stat();

// "Udp:" (and "Ip:") header/value line pairs of /proc/net/snmp as name -> value,
// keys prefixed "Udp." / "Ip." (e.g. "Udp.RcvbufErrors").
std::map<std::string, uint64_t> parse_snmp(const std::string& text);
// Reads /proc/thread-self/net/snmp, i.e. the calling thread's namespace (plain
// /proc/net shows the main thread's namespace; docs/design.md "The lab"). Call it from
// inside the sink namespace (Netns::run).
std::map<std::string, uint64_t> read_snmp_this_thread();

// getrusage(RUSAGE_THREAD) of the calling thread, in ns.
struct ThreadCpu {
  uint64_t user_ns = 0, system_ns = 0;
  uint64_t voluntary_switches = 0, involuntary_switches = 0;
};
ThreadCpu read_thread_rusage();

}  // namespace zc
