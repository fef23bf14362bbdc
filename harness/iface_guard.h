// What a wire trial changes on the named interface, recorded before the
// change and restored on every exit path (README "Named interfaces").
#pragma once
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace zc {

// Flags of an interface (SIOCGIFFLAGS) and one flag set or cleared
// (SIOCSIFFLAGS); both throw EnvError with the kernel's reason.
short iface_flags(const std::string& ifname);
void set_iface_flag(const std::string& ifname, short flag, bool on);

// A normal return or an exception restores in the destructor; for SIGKILL a
// restorer process, forked before any change and before any thread, blocks
// reading a pipe whose only writer is this process: the kernel closes it
// when we die however we die, and the restorer then puts the recorded
// settings back and exits. It ignores SIGINT and SIGTERM (a Ctrl-C to the
// process group must not kill it first).
class InterfaceGuard {
 public:
  InterfaceGuard(const std::string& ifname, bool want_gro, bool want_promisc);
  ~InterfaceGuard();
  InterfaceGuard(const InterfaceGuard&) = delete;
  InterfaceGuard& operator=(const InterfaceGuard&) = delete;

  // params.wire.changes: what was changed, from what to what.
  nlohmann::json changes() const;

 private:
  void restore_noexcept() noexcept;
  std::string ifname_;
  std::optional<bool> gro_before_;
  bool promisc_before_ = false, change_gro_ = false, change_promisc_ = false;
  int pipe_w_ = -1;
  pid_t restorer_ = -1;
};

}  // namespace zc
