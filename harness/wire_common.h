// What `zcbench send --iface` and `sink --iface` (harness/wire_send.cc,
// harness/wire_sink.cc) share: small readers of the named interface's
// counters, the counter snapshot taken at a window's edges, the record's
// common params and the command line that reproduces a trial. Internal to
// the wire trials (namespace wire_detail); harness/wire.h is the interface.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/counter_delta.h"
#include "harness/driver.h"
#include "harness/iface_guard.h"
#include "harness/netlink.h"
#include "harness/sysstat.h"
#include "harness/trial.h"
#include "harness/wire.h"

namespace zc::wire_detail {

uint64_t sub(uint64_t b, uint64_t a);
uint64_t get_u64(const nlohmann::json& j, const char* key);
std::string slurp(const std::string& path);
std::string fmt(double v);

bool in_benchmark_range(in_addr a);  // 198.18.0.0/15
std::optional<in_addr> iface_ipv4(const std::string& ifname);
// The interface holding local address `ip` (SSH_CONNECTION's server side).
std::string iface_of_address(const std::string& ip);

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
WireSnapshot wire_snapshot(netlink::Socket& nl, const std::string& ifname, bool link_first = false);

nlohmann::json cpu_json(const std::vector<CpuTimes>& a, const std::vector<CpuTimes>& b);
nlohmann::json map_delta(const std::map<std::string, uint64_t>& a, const std::map<std::string, uint64_t>& b);

// The `zcbench send|sink` command line that reproduces this trial.
std::string wire_command_line(const std::string& role, const TrialSpec& s, const WireOptions& w);
nlohmann::json base_params(const std::string& role, const TrialSpec& s, const nlohmann::json& wire);
void validate_common(const TrialSpec& s);

// The derived fields of a wire record through the same derive_trial as a
// `run` record (harness/derive.cc), so both carry the same fields. A send's
// receiver is not ours: its figures are null (its sink's record has them)
// and CPU is per packet sent.
nlohmann::json derive_wire(const std::string& role, const nlohmann::json& params, const nlohmann::json& raw);

// What the trial changes on its interface, from the command line, in the
// order applied (restored last first): --gro, --promisc, --hw-timestamps
// (hwtstamp_config rx_filter HWTSTAMP_FILTER_ALL), --threaded-napi,
// --rps-cpus (every RX queue) / --xps-cpus (every TX queue), --rx-ring /
// --tx-ring.
std::vector<IfaceChange> iface_plan(const std::string& role, const TrialSpec& s, const WireOptions& w);
// params.wire.changed and params.wire.not_restored_on_sigkill from the guard.
void record_changes(nlohmann::json& record, const InterfaceGuard& guard);

// A wire trial's record before it ran: status pass until something says
// otherwise.
nlohmann::json new_record(const TrialSpec& s, const std::string& name, const std::string& command,
                          const nlohmann::json& params);
// Marks the record a skip ("unsupported: ...") when the transport's probe
// says it cannot run here; returns true then.
bool skip_unusable(const DriverInfo& info, nlohmann::json& record);

// Waits for the trial thread's open(). An EnvError there (the kernel refused
// the transport) makes the record a skip and returns false; any other error
// is rethrown. `release` lets the thread finish before it is joined.
bool wait_opened(std::promise<void>& opened, std::thread& t, nlohmann::json& record,
                 const std::function<void()>& release = {});

}  // namespace zc::wire_detail
