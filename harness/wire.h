// Trials on named interfaces (issue "Leave the lab"): `zcbench send --iface`
// (our generator out of an interface the user named, toward a DUT or a second
// host) and `zcbench sink --iface` (a sink on such an interface, fed by our
// `send` elsewhere or by an external source such as an FPGA). Both produce the
// same record shape as `run` (kind "trial", docs/results-format.md "Wire
// trials") with params.wire from harness/ethtool.h.
//
// Safety (README "Named interfaces"): only the interface named on the command
// line; one carrying the default route or the SSH session is refused unless
// --allow-host-interface; a down or carrier-less interface is refused; what a
// trial changes on the interface goes through one InterfaceGuard
// (harness/iface_guard.h: recorded first, restored on every exit path,
// SIGKILL included, through a restorer process); the XDP sinks attach through
// a BPF link (harness/xdp_link.h), so their program vanishes with the process.
#pragma once
#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/trial.h"

namespace zc {

// How a wire trial was asked for, beyond the TrialSpec (filled by main.cc
// from the parameter table's parse).
struct WireOptions {
  bool allow_host_interface = false;
  bool promisc = false;          // sink: IFF_PROMISC for the trial (restored)
  bool hw_timestamps = false;    // sink: NIC RX hardware stamps (hwtstamp_config for the trial, restored)
  bool rate_given = false;       // --rate was on the command line
  bool count_given = false;      // --count was on the command line
  bool json_out = false;
};

// Refuses (UsageError, one line naming the fix) an interface that does not
// exist, is down, has no carrier, or carries the default route or the current
// SSH session (SSH_CONNECTION) unless allow_host. Returns its ifindex.
int check_named_interface(const std::string& ifname, bool allow_host);

// Interfaces carrying a default route (IPv4 /proc/net/route, IPv6
// /proc/net/ipv6_route) and the one holding SSH_CONNECTION's local address;
// exposed for tests. `ssh_connection` is the variable's value ("" = unset).
std::vector<std::string> default_route_interfaces(const std::string& route_text, const std::string& ipv6_route_text);

// Runs the trial and returns the record; `stop` aborts (Ctrl-C): then
// `interrupted` is set and the record is incomplete.
struct WireOutcome {
  nlohmann::json record;
  bool interrupted = false;
};
WireOutcome run_wire_send(const TrialSpec& spec, const WireOptions& w, const std::atomic<bool>* stop);
WireOutcome run_wire_sink(const TrialSpec& spec, const WireOptions& w, const std::atomic<bool>* stop);

// The whole `zcbench send|sink` command after parsing: runs, prints (run.json
// document with --json, a summary otherwise), returns the exit code.
int wire_command(const std::string& role, const TrialSpec& spec, const WireOptions& w,
                 const std::vector<std::string>& argv, const std::atomic<bool>* stop);

// L1/L2 bit rates and share of the link: L2 = frame × 8 × pps, L1 = (frame +
// 20 B preamble and inter-frame gap) × 8 × pps (DESIGN.md "Beyond the lab").
nlohmann::json bit_rates(double pps, double frame_bytes, std::optional<uint64_t> link_mbps);

}  // namespace zc
