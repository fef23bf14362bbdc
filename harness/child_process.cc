#include "harness/child_process.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "harness/errors.h"

namespace zc {
namespace {

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Above every fd number a child is given, so the dup2s below never
// overwrite a source that is still to be moved.
constexpr int kStagingFd = 100;

[[noreturn]] void child_after_fork(const ChildSpec& spec, char* const* args, pid_t parent, int report_fd) {
  // Only async-signal-safe calls until exec (the parent has threads).
  // The kernel kills us when the forking thread exits, whatever happens to it;
  // if it already did before prctl, nobody will ever stop us: leave now.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (spec.own_pid_namespace) {
    // Our parent is outside the namespace (getppid() is 0): a dead parent
    // process shows as the report pipe's read end being closed.
    pollfd p{report_fd, POLLOUT, 0};
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) _exit(127);
  } else if (getppid() != parent) {
    _exit(127);
  }
  // Out of the way of the fd numbers given to the program (close-on-exec).
  report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, kStagingFd);
  setpgid(0, 0);  // our own group: kill(-pid) reaches the program's own forks
  // A signal mask or ignored dispositions of the harness must not reach the
  // program (SIGINT is how peers are asked to flush and print statistics).
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s : {SIGINT, SIGTERM, SIGALRM, SIGPIPE, SIGHUP}) signal(s, SIG_DFL);
  int src[3 + 8];
  int tgt[3 + 8];
  int n = 0;
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  src[n] = devnull, tgt[n++] = 0;
  src[n] = spec.stdout_fd >= 0 ? spec.stdout_fd : devnull, tgt[n++] = 1;
  src[n] = spec.stderr_fd >= 0 ? spec.stderr_fd : devnull, tgt[n++] = 2;
  for (const auto& [from, to] : spec.fds)
    if (n < 11) src[n] = from, tgt[n++] = to;
  for (int i = 0; i < n; ++i) src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, kStagingFd);
  int err = 0;
  for (int i = 0; i < n && !err; ++i)
    if (src[i] < 0 || dup2(src[i], tgt[i]) < 0) err = errno ? errno : EBADF;  // dup2 clears FD_CLOEXEC
  if (!err) {
    if (spec.time_limit_s) alarm(spec.time_limit_s);  // survives execve
    execvp(args[0], args);  // every other fd of ours is O_CLOEXEC, report_fd too
    err = errno;
  }
  if (write(report_fd, &err, sizeof err) < 0) {
  }
  _exit(127);
}

}  // namespace

ChildProcess ChildProcess::spawn(const ChildSpec& spec) {
  if (spec.argv.empty()) throw InternalError("spawn: empty argv");
  if (spec.fds.size() > 8) throw InternalError("spawn: more than 8 extra descriptors");
  std::vector<char*> args;
  for (const auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child reports a failure before exec through this pipe; a successful
  // exec closes it. Waiting for that means that when spawn returns, the
  // parent-death signal is armed: a forking thread that exits right after
  // spawn (before the child reached prctl) would otherwise leave the child
  // unbound, and getppid() cannot see a thread's exit.
  int report[2];
  check_sys(pipe2(report, O_CLOEXEC), "pipe2 for spawning " + spec.argv[0]);
  const pid_t parent = getpid();
  // clone with CLONE_NEWPID is fork into a new PID namespace (no stack
  // given: the child runs on a copy of ours, as with fork).
  const pid_t pid = spec.own_pid_namespace
                        ? pid_t(syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, nullptr))
                        : fork();
  if (pid < 0) {
    int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    throw EnvError(errno_text("fork " + spec.argv[0], e), e);
  }
  if (pid == 0) child_after_fork(spec, args.data(), parent, report[1]);
  ::close(report[1]);
  // Also from here: whichever of parent and child runs first, the group
  // exists before anyone signals it.
  setpgid(pid, pid);
  ChildProcess c;
  c.pid_ = pid;
  int err = 0;
  ssize_t got;
  while ((got = read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (got > 0) {
    c.stop(SIGKILL, 0);
    throw EnvError(errno_text("cannot run " + spec.argv[0], err), err);
  }
  return c;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) stop(SIGKILL, 0);
    pid_ = o.pid_;
    status_ = o.status_;
    o.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) stop(SIGKILL, 0);
}

std::optional<int> ChildProcess::try_reap() {
  if (pid_ <= 0) return status_ >= 0 ? std::optional<int>(status_) : std::nullopt;
  // Exited? Look without reaping: while the zombie holds the pid, its
  // group id cannot name anybody else, so the program's own forks (same
  // group) are killed by that id before it is released.
  siginfo_t info{};
  if (waitid(P_PID, id_t(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno != ECHILD) return std::nullopt;
    pid_ = -1;  // reaped behind our back: the status is lost
    return status_;
  }
  if (info.si_pid != pid_) return std::nullopt;
  kill(-pid_, SIGKILL);
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = st;
  pid_ = -1;
  return status_;
}

std::optional<int> ChildProcess::wait_for(int timeout_ms) {
  const uint64_t end = timeout_ms < 0 ? UINT64_MAX : now_ms() + uint64_t(timeout_ms);
  for (;;) {
    if (auto st = try_reap()) return st;
    if (now_ms() >= end) return std::nullopt;
    usleep(2000);
  }
}

void ChildProcess::signal(int sig) const {
  if (pid_ > 0) kill(-pid_, sig);
}

int ChildProcess::stop(int sig, int grace_ms) {
  if (pid_ <= 0) return status_;
  signal(sig);
  if (sig != SIGKILL && wait_for(grace_ms)) return status_;
  signal(SIGKILL);
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = st;
  pid_ = -1;
  return status_;
}

int ChildProcess::exit_code() const {
  if (status_ < 0) return -1;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

std::string program_first_line(const std::string& prog, const std::string& arg) {
  return program_first_line(std::vector<std::string>{prog, arg});
}

std::string program_first_line(const std::vector<std::string>& argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return "";
  std::string out;
  try {
    ChildSpec spec;
    spec.argv = argv;
    spec.stdout_fd = p[1];
    spec.stderr_fd = p[1];
    spec.time_limit_s = 5;
    ChildProcess c = ChildProcess::spawn(spec);
    ::close(p[1]);
    p[1] = -1;
    const uint64_t end = now_ms() + 5000;
    char b[512];
    while (out.size() < 4096 && now_ms() < end) {
      pollfd pf{p[0], POLLIN, 0};
      if (poll(&pf, 1, 100) <= 0) continue;
      ssize_t n = read(p[0], b, sizeof b);
      if (n <= 0) break;
      out.append(b, size_t(n));
    }
    if (!c.wait_for(1000)) c.stop(SIGKILL, 0);
  } catch (const Error&) {
    out.clear();
  }
  if (p[1] >= 0) ::close(p[1]);
  ::close(p[0]);
  size_t e = out.find_first_of("\r\n");
  return e == std::string::npos ? out : out.substr(0, e);
}

std::string read_child_messages(int fd, size_t limit) {
  std::string out;
  char b[4096];
  off_t off = 0;
  ssize_t n;
  while (out.size() < limit && (n = pread(fd, b, sizeof b, off)) > 0) {
    out.append(b, size_t(n));
    off += n;
  }
  return out;
}

}  // namespace zc
