// What a wire trial changes on the named interface: recorded before the
// change and restored on every exit path (README "Named interfaces"). Every
// change a wire trial makes goes through one InterfaceGuard.
#pragma once
#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zc {

// Flags of an interface (SIOCGIFFLAGS) and one flag set or cleared
// (SIOCSIFFLAGS); both throw EnvError with the kernel's reason.
short iface_flags(const std::string& ifname);
void set_iface_flag(const std::string& ifname, short flag, bool on);

// One setting of an interface as text: read() the current value (throws
// EnvError when the interface has no such setting), write() one.
struct IfaceSetting {
  std::string name;
  std::function<std::string()> read;
  std::function<void(const std::string&)> write;
};
IfaceSetting gro_setting(const std::string& ifname);            // "on" | "off" (ETHTOOL_GGRO/SGRO)
IfaceSetting promisc_setting(const std::string& ifname);        // "on" | "off" (IFF_PROMISC)
IfaceSetting threaded_napi_setting(const std::string& ifname);  // /sys/class/net/IF/threaded: "0" | "1"
// /sys/class/net/IF/queues/QUEUE/FILE, e.g. ("rx-0", "rps_cpus"): a hex mask.
IfaceSetting queue_cpus_setting(const std::string& ifname, const std::string& queue, const std::string& file);
IfaceSetting ring_setting(const std::string& ifname, bool rx);  // pending ring entries (ETHTOOL_[GS]RINGPARAM)
// Hardware timestamping (SIOCGHWTSTAMP/SIOCSHWTSTAMP): "TX_TYPE,RX_FILTER"
// as hwtstamp_config numbers them, e.g. "0,1" (TX off, HWTSTAMP_FILTER_ALL).
IfaceSetting hwtstamp_setting(const std::string& ifname);

// The queues of an interface named `prefix`-N (rx, tx) in /sys/class/net/IF/queues.
std::vector<std::string> iface_queues(const std::string& ifname, const std::string& prefix);
// The hex CPU mask rps_cpus / xps_cpus take.
std::string cpu_mask_hex(const std::vector<int>& cpus);

struct IfaceChange {
  IfaceSetting setting;
  std::string value;
};

// Reads every planned setting first (one unreadable: EnvError, nothing
// changed), then changes those that differ. Restores them, last first, in the
// destructor (normal return, error, exception; SIGINT/SIGTERM end the trial
// through its stop flag and so return normally). For SIGKILL a restorer
// process, forked before any change and before any thread, blocks reading a
// pipe whose only writer is this process: the kernel closes it when we die
// however we die, and the restorer then puts the recorded values back and
// exits. It ignores SIGINT, SIGTERM and SIGHUP, runs in a session of its own
// (a kill of our process group does not take it) and holds no fd of ours but
// the pipe (an XDP link fd it inherited would keep the program attached).
class InterfaceGuard {
 public:
  InterfaceGuard(const std::string& ifname, std::vector<IfaceChange> plan);
  ~InterfaceGuard();
  InterfaceGuard(const InterfaceGuard&) = delete;
  InterfaceGuard& operator=(const InterfaceGuard&) = delete;

  // params.wire.changed: [{setting, before, during}] of what was changed.
  nlohmann::json changed() const;
  // params.wire.not_restored_on_sigkill: the settings the restorer cannot put
  // back after a SIGKILL of zcbench. None today: every setting above is
  // restored by the restorer; README "Named interfaces" says what is lost
  // when the restorer is killed too.
  nlohmann::json not_restored_on_sigkill() const;

 private:
  struct Change {
    IfaceSetting setting;
    std::string before, during;
  };
  void restore_noexcept() noexcept;
  void end_restorer() noexcept;
  std::vector<Change> changes_;
  int pipe_w_ = -1;
  pid_t restorer_ = -1;
};

}  // namespace zc
