#include "harness/iface_guard.h"

#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "harness/errors.h"
#include "harness/ethtool.h"

namespace zc {

using nlohmann::json;

short iface_flags(const std::string& ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw EnvError(errno_text("socket(AF_INET)", errno), errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  int e = errno;
  close(fd);
  if (rc < 0) throw EnvError(errno_text("SIOCGIFFLAGS " + ifname, e), e);
  return ifr.ifr_flags;
}

void set_iface_flag(const std::string& ifname, short flag, bool on) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw EnvError(errno_text("socket(AF_INET)", errno), errno);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags = short(on ? (ifr.ifr_flags | flag) : (ifr.ifr_flags & ~flag));
    rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(fd);
  if (rc < 0) throw EnvError(errno_text("SIOCSIFFLAGS " + ifname, e), e);
}

InterfaceGuard::InterfaceGuard(const std::string& ifname, bool want_gro, bool want_promisc) : ifname_(ifname) {
  gro_before_ = ethtool::get_gro(ifname);
  promisc_before_ = iface_flags(ifname) & IFF_PROMISC;
  change_gro_ = want_gro && gro_before_ && !*gro_before_;
  change_promisc_ = want_promisc && !promisc_before_;
  if (want_gro && !gro_before_) throw EnvError("--gro: " + ifname + " has no GRO setting (ETHTOOL_GGRO unsupported)");
  if (!change_gro_ && !change_promisc_) return;  // nothing to change: no restorer
  int p[2];
  check_sys(pipe2(p, O_CLOEXEC), "pipe2");
  pid_t pid = fork();
  if (pid < 0) throw EnvError(errno_text("fork (interface restorer)", errno), errno);
  if (pid == 0) {
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    close(p[1]);
    char c;
    while (read(p[0], &c, 1) != 0 && errno == EINTR) {
    }
    restore_noexcept();
    _exit(0);
  }
  close(p[0]);
  pipe_w_ = p[1];
  restorer_ = pid;
  if (change_gro_) ethtool::set_gro(ifname, true);
  if (change_promisc_) set_iface_flag(ifname, IFF_PROMISC, true);
}

InterfaceGuard::~InterfaceGuard() {
  restore_noexcept();
  if (pipe_w_ >= 0) close(pipe_w_);
  if (restorer_ > 0) waitpid(restorer_, nullptr, 0);
}

json InterfaceGuard::changes() const {
  json j = json::array();
  if (change_gro_) j.push_back({{"setting", "gro"}, {"before", false}, {"during", true}, {"restored_after_sigkill", true}});
  if (change_promisc_)
    j.push_back({{"setting", "promisc"}, {"before", false}, {"during", true}, {"restored_after_sigkill", true}});
  return j;
}

void InterfaceGuard::restore_noexcept() noexcept {
  try {
    if (change_gro_) ethtool::set_gro(ifname_, *gro_before_);
  } catch (...) {
  }
  try {
    if (change_promisc_) set_iface_flag(ifname_, IFF_PROMISC, promisc_before_);
  } catch (...) {
  }
}

}  // namespace zc
