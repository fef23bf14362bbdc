// Anonymous network namespaces held by file descriptor.
//
// Why anonymous: a namespace created by unshare() in a helper thread and held
// only by an fd dies with the process — SIGKILL included — so a crashed run
// leaves no namespace, veth or route behind (docs/design.md "The lab").
#pragma once
#include <functional>
#include <string>

namespace zc {

class Netns {
 public:
  // Creates a fresh network namespace holding only loopback, brought up (UDP
  // to 127.0.0.1 inside a lab works as on a host). Throws EnvError
  // (e.g. EPERM without CAP_SYS_ADMIN) with the kernel's reason.
  static Netns create_anonymous();
  Netns() = default;
  Netns(Netns&&) noexcept;
  Netns& operator=(Netns&&) noexcept;
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  ~Netns();

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Moves the *calling thread* into this namespace (setns). Threads created
  // afterwards from this thread inherit it.
  void enter_this_thread() const;

  // Runs fn on a short-lived thread that has entered this namespace and
  // returns its result; exceptions propagate to the caller. Use for setup
  // work (netlink, sysctl writes under /proc/sys/net, which are per-netns).
  void run(const std::function<void()>& fn) const;

 private:
  explicit Netns(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Runs fn on a short-lived thread inside `ns` with a private mount namespace
// and a freshly mounted sysfs on /sys, so /sys/class/net shows the devices of
// `ns` (a plain setns() keeps showing the host's sysfs). Used for rps_cpus,
// threaded NAPI and other per-device sysfs knobs.
void run_with_netns_sysfs(const Netns& ns, const std::function<void()>& fn);

// Writes `value` to a file (sysctl under /proc/sys/net, sysfs knob); throws
// EnvError naming the path and errno.
void write_file(const std::string& path, const std::string& value);
// Reads a whole small file; throws EnvError naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace zc
