// External programs run by drivers (trafgen, tcpdump, netsniff-ng, and any
// later peer): the one place that forks them, so every child dies with us
// and is bounded by itself (docs/children.md).
//
//  - fork copies the *calling thread's* network namespace and CPU affinity,
//    so a driver spawns from its generator or sink thread;
//  - PR_SET_PDEATHSIG SIGKILL fires when that *thread* exits (not the
//    process), so the spawning thread must be the one that reaps the child:
//    a worker that exits early kills its child with it, which is why drivers
//    stop and reap on the same thread on every path;
//  - SIGKILL of zcbench ends every thread at once, so every child gets
//    SIGKILL from the kernel; nothing of ours needs to run;
//  - time_limit_s arms alarm(2) in the child before exec (alarms survive
//    execve): a child of a zcbench that hangs still ends by itself;
//  - each child leads its own process group, so a program that forks its
//    own workers (trafgen) is stopped as a whole with kill(-pid).
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace zc {

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  int stdout_fd = -1;             // -1: /dev/null
  int stderr_fd = -1;             // -1: /dev/null
  // Further descriptors for the child: {our fd, its number in the child}.
  std::vector<std::pair<int, int>> fds;
  // alarm(2) before exec: SIGALRM (default action: terminate) after this
  // many seconds even when nobody stops the child (0: none).
  unsigned time_limit_s = 0;
  // The program as PID 1 of a new PID namespace: when it dies (its
  // parent-death signal), the kernel SIGKILLs every process it forked, which
  // a program's own workers otherwise survive (trafgen's do). As PID 1 it
  // ignores signals it has no handler for, so time_limit_s has no effect
  // then; SIGINT still works for a program that handles it.
  bool own_pid_namespace = false;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  // Forks (in the calling thread's namespaces, with its affinity) and execs;
  // returns once the program runs (exec done, parent-death signal armed).
  // Throws EnvError when fork or exec fails (e.g. the program is absent).
  static ChildProcess spawn(const ChildSpec& spec);

  ChildProcess(ChildProcess&& o) noexcept { *this = std::move(o); }
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // SIGKILL to its process group and reap, if still there

  pid_t pid() const { return pid_; }
  // Hands the unreaped child over to the caller (waitpid / kill by PID).
  pid_t release() {
    pid_t p = pid_;
    pid_ = -1;
    return p;
  }
  bool running() const { return pid_ > 0; }
  // Reaps the child if it has exited; the wait(2) status once reaped.
  std::optional<int> try_reap();
  // Waits up to timeout_ms for the child to exit (-1: forever).
  std::optional<int> wait_for(int timeout_ms);
  // A signal to the child's process group (the child and its own forks).
  void signal(int sig) const;
  // `sig`, up to grace_ms for it to exit, then SIGKILL; reaps. The status.
  int stop(int sig, int grace_ms);
  // The last status reaped (-1 before), and as an exit code: status for a
  // normal exit, 128 + signal number when a signal ended it.
  int status() const { return status_; }
  int exit_code() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// First line of `prog arg` output (stdout and stderr), or empty when it
// cannot run; bounded to 5 s (probe helper).
std::string program_first_line(const std::string& prog, const std::string& arg);
// The same for a whole argv (`xdp-bench drop --version`: one word each).
std::string program_first_line(const std::vector<std::string>& argv);

// What a child wrote into `fd` (a memfd handed to it as stdout/stderr), read
// from the start with pread so the fd's offset stays the child's; at most
// `limit` bytes, so a chatty tool cannot bloat a record.
std::string read_child_messages(int fd, size_t limit);

}  // namespace zc
