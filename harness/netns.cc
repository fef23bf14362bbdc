#include "harness/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <thread>
#include <utility>

#include "harness/errors.h"
#include "harness/netlink.h"

namespace zc {
namespace {

// Runs fn on a fresh thread and hands its exception, if any, to the caller.
// Namespace changes made by fn die with that thread, never reaching ours.
void run_on_helper_thread(const std::function<void()>& fn) {
  std::exception_ptr failure;
  std::thread t([&] {
    try {
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

Netns Netns::create_anonymous() {
  int fd = -1;
  run_on_helper_thread([&] {
    // unshare() on a helper thread: the process's own threads stay in the
    // host namespace, and the new namespace is held only by the fd below.
    check_sys(unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET) for a lab namespace");
    // /proc/self/ns/net would name the main thread's namespace.
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    check_sys(fd, "open /proc/thread-self/ns/net");
    try {
      netlink::Socket nl;
      netlink::LinkInfo lo;
      lo.name = "lo";
      lo.index = 1;  // LOOPBACK_IFINDEX: loopback is always 1 in a new namespace
      nl.set_link_up(lo);
    } catch (...) {
      close(fd);
      fd = -1;
      throw;
    }
  });
  return Netns(fd);
}

Netns::Netns(Netns&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

Netns& Netns::operator=(Netns&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

Netns::~Netns() {
  if (fd_ >= 0) close(fd_);
}

void Netns::enter_this_thread() const {
  if (fd_ < 0) throw InternalError("Netns::enter_this_thread on an empty Netns");
  check_sys(setns(fd_, CLONE_NEWNET), "setns(CLONE_NEWNET) into lab namespace fd " + std::to_string(fd_));
}

void Netns::run(const std::function<void()>& fn) const {
  run_on_helper_thread([&] {
    enter_this_thread();
    fn();
  });
}

void run_with_netns_sysfs(const Netns& ns, const std::function<void()>& fn) {
  run_on_helper_thread([&] {
    // CLONE_FS: a thread shares root/cwd with its process, and a new mount
    // namespace needs its own; both die when this thread exits.
    check_sys(unshare(CLONE_FS | CLONE_NEWNS), "unshare(CLONE_FS|CLONE_NEWNS) for a private sysfs");
    ns.enter_this_thread();
    // Private first, or the sysfs mount below would propagate to the host.
    check_sys(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "make / private (mount MS_REC|MS_PRIVATE)");
    // sysfs shows the network devices of the namespace of whoever mounts it.
    check_sys(mount("sysfs", "/sys", "sysfs", 0, nullptr), "mount sysfs on /sys in the lab's mount namespace");
    fn();
  });
}

void write_file(const std::string& path, const std::string& value) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  check_sys(fd, "open " + path + " for writing");
  const ssize_t n = write(fd, value.data(), value.size());
  const int e = errno;
  close(fd);
  if (n < 0) throw EnvError(errno_text("write '" + value + "' to " + path, e), e);
  if (static_cast<size_t>(n) != value.size())
    throw EnvError("write '" + value + "' to " + path + ": short write (" + std::to_string(n) + " of " +
                   std::to_string(value.size()) + " bytes)");
}

std::string read_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check_sys(fd, "open " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      const int e = errno;
      close(fd);
      throw EnvError(errno_text("read " + path, e), e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace zc
