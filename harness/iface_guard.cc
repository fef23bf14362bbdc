#include "harness/iface_guard.h"

#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "harness/errors.h"
#include "harness/ethtool.h"
#include "harness/netns.h"
#include "harness/timestamps.h"

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

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string sysfs(const std::string& ifname, const std::string& rel) { return "/sys/class/net/" + ifname + "/" + rel; }

}  // namespace

IfaceSetting gro_setting(const std::string& ifname) {
  return {"gro",
          [ifname] {
            auto v = ethtool::get_gro(ifname);
            if (!v) throw EnvError("--gro: " + ifname + " has no GRO setting (ETHTOOL_GGRO unsupported)");
            return std::string(*v ? "on" : "off");
          },
          [ifname](const std::string& v) { ethtool::set_gro(ifname, v == "on"); }};
}

IfaceSetting promisc_setting(const std::string& ifname) {
  return {"promisc", [ifname] { return std::string(iface_flags(ifname) & IFF_PROMISC ? "on" : "off"); },
          [ifname](const std::string& v) { set_iface_flag(ifname, IFF_PROMISC, v == "on"); }};
}

IfaceSetting threaded_napi_setting(const std::string& ifname) {
  const std::string path = sysfs(ifname, "threaded");
  return {"threaded_napi", [path] { return trim(read_file(path)); },
          [path](const std::string& v) { write_file(path, v); }};
}

IfaceSetting queue_cpus_setting(const std::string& ifname, const std::string& queue, const std::string& file) {
  const std::string path = sysfs(ifname, "queues/" + queue + "/" + file);
  return {file + "/" + queue, [path] { return trim(read_file(path)); },
          [path](const std::string& v) { write_file(path, v); }};
}

IfaceSetting ring_setting(const std::string& ifname, bool rx) {
  return {rx ? "rx_ring" : "tx_ring",
          [ifname, rx] {
            auto v = ethtool::get_ring(ifname, rx);
            if (!v) throw EnvError(ifname + " reports no ring sizes (ETHTOOL_GRINGPARAM unsupported by its driver)");
            return std::to_string(*v);
          },
          [ifname, rx](const std::string& v) { ethtool::set_ring(ifname, rx, uint32_t(std::stoul(v))); }};
}

IfaceSetting hwtstamp_setting(const std::string& ifname) {
  return {"hwtstamp",
          [ifname] {
            const HwTstampConfig c = read_hwtstamp(ifname);
            return std::to_string(c.tx_type) + "," + std::to_string(c.rx_filter);
          },
          [ifname](const std::string& v) {
            const size_t comma = v.find(',');
            if (comma == std::string::npos) throw InternalError("hwtstamp setting '" + v + "' is not TX_TYPE,RX_FILTER");
            write_hwtstamp(ifname, {std::stoi(v.substr(0, comma)), std::stoi(v.substr(comma + 1))});
          }};
}

std::vector<std::string> iface_queues(const std::string& ifname, const std::string& prefix) {
  std::vector<std::string> out;
  for (int q = 0; access(sysfs(ifname, "queues/" + prefix + "-" + std::to_string(q)).c_str(), F_OK) == 0; ++q)
    out.push_back(prefix + "-" + std::to_string(q));
  return out;
}

std::string cpu_mask_hex(const std::vector<int>& cpus) {
  // Comma-separated 32-bit words, most significant first (bitmap_parse).
  int top = 0;
  for (int c : cpus) top = std::max(top, c);
  std::vector<uint32_t> words(size_t(top / 32 + 1), 0);
  for (int c : cpus) words[size_t(c / 32)] |= 1u << (c % 32);
  std::string out;
  char buf[16];
  for (size_t i = words.size(); i-- > 0;) {
    std::snprintf(buf, sizeof buf, i + 1 == words.size() ? "%x" : "%08x", words[i]);
    out += (out.empty() ? "" : ",") + std::string(buf);
  }
  return out;
}

InterfaceGuard::InterfaceGuard(const std::string& ifname, std::vector<IfaceChange> plan) {
  (void)ifname;
  for (auto& c : plan) {
    std::string before = c.setting.read();
    if (before != c.value) changes_.push_back({std::move(c.setting), before, c.value});
  }
  if (changes_.empty()) return;  // nothing to change: no restorer
  int p[2];
  check_sys(pipe2(p, O_CLOEXEC), "pipe2");
  pid_t pid = fork();
  if (pid < 0) throw EnvError(errno_text("fork (interface restorer)", errno), errno);
  if (pid == 0) {
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    setsid();
    close(p[1]);
    syscall(SYS_close_range, 3u, unsigned(p[0] - 1), 0u);
    syscall(SYS_close_range, unsigned(p[0] + 1), ~0u, 0u);
    char c;
    while (read(p[0], &c, 1) != 0 && errno == EINTR) {
    }
    restore_noexcept();
    _exit(0);
  }
  close(p[0]);
  pipe_w_ = p[1];
  restorer_ = pid;
  try {
    for (auto& c : changes_) {
      c.setting.write(c.during);
      c.during = c.setting.read();  // as the kernel shows it (a mask, padded)
    }
  } catch (...) {
    restore_noexcept();
    end_restorer();
    throw;
  }
}

InterfaceGuard::~InterfaceGuard() {
  restore_noexcept();
  end_restorer();
}

void InterfaceGuard::end_restorer() noexcept {
  if (pipe_w_ >= 0) close(pipe_w_);
  pipe_w_ = -1;
  if (restorer_ > 0) waitpid(restorer_, nullptr, 0);
  restorer_ = -1;
}

json InterfaceGuard::changed() const {
  json j = json::array();
  for (const auto& c : changes_) j.push_back({{"setting", c.setting.name}, {"before", c.before}, {"during", c.during}});
  return j;
}

json InterfaceGuard::not_restored_on_sigkill() const { return json::array(); }

void InterfaceGuard::restore_noexcept() noexcept {
  for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) try {
      it->setting.write(it->before);
    } catch (...) {
    }
}

}  // namespace zc
