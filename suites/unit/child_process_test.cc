// harness/child_process.h: the one way drivers start external programs
// (docs/children.md). Real processes (/bin/sh, sleep), no stubs.
#include "harness/child_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <thread>

#include "harness/errors.h"

namespace zc {
namespace {

// Gone: no such process, or a zombie its new parent has yet to reap.
bool gone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  size_t e = line.rfind(')');
  return e != std::string::npos && e + 2 < line.size() && line[e + 2] == 'Z';
}

std::string read_pipe(int fd) {
  std::string out;
  char b[256];
  ssize_t n;
  while ((n = read(fd, b, sizeof b)) > 0) out.append(b, size_t(n));
  return out;
}

TEST(ChildProcess, HandsOverStdoutAndExtraFdAndReportsTheExitCode) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  int mem = memfd_create("child-test", MFD_CLOEXEC);
  ASSERT_GE(mem, 0);
  ASSERT_EQ(write(mem, "config\n", 7), 7);
  ChildSpec spec;
  // fd 3 is the memfd, reopened by path as trafgen does with its config.
  spec.argv = {"/bin/sh", "-c", "cat /dev/fd/3; exit 5"};
  spec.stdout_fd = p[1];
  spec.fds = {{mem, 3}};
  ChildProcess c = ChildProcess::spawn(spec);
  close(p[1]);
  EXPECT_EQ(read_pipe(p[0]), "config\n");
  ASSERT_TRUE(c.wait_for(5000));
  EXPECT_EQ(c.exit_code(), 5);
  EXPECT_FALSE(c.running());
  close(p[0]);
  close(mem);
}

TEST(ChildProcess, MissingProgramIsAnEnvironmentError) {
  ChildSpec spec;
  spec.argv = {"zc-no-such-program-anywhere"};
  try {
    ChildProcess::spawn(spec);
    FAIL() << "spawn of a missing program returned";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run zc-no-such-program-anywhere"), std::string::npos) << e.what();
  }
}

TEST(ChildProcess, TimeLimitEndsTheProgramByItself) {
  ChildSpec spec;
  spec.argv = {"sleep", "30"};
  spec.time_limit_s = 1;  // alarm(2) survives execve
  ChildProcess c = ChildProcess::spawn(spec);
  ASSERT_TRUE(c.wait_for(5000)) << "sleep 30 outlived its 1 s limit";
  EXPECT_EQ(c.exit_code(), 128 + SIGALRM);
}

TEST(ChildProcess, DiesWithTheThreadThatForkedIt) {
  // PR_SET_PDEATHSIG follows the forking thread: a worker that exits takes
  // its child with it, which is why drivers reap on the forking thread. The
  // thread exits at once after spawn: spawn returning means the signal is
  // armed (a bug before: the thread could exit before the child's prctl).
  pid_t pid = -1;
  std::thread t([&] {
    ChildSpec spec;
    spec.argv = {"sleep", "30"};
    pid = ChildProcess::spawn(spec).release();
  });
  t.join();
  ASSERT_GT(pid, 0);
  int st = 0;
  pid_t r = -1;
  for (int i = 0; i < 500 && r != pid; ++i) {
    r = waitpid(pid, &st, WNOHANG);
    if (r == 0) usleep(10000);
  }
  ASSERT_EQ(r, pid) << "child outlived the thread that forked it";
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(WTERMSIG(st), SIGKILL);
}

TEST(ChildProcess, StopReachesTheProgramsOwnForks) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ChildSpec spec;
  // A program with a worker of its own (trafgen forks one): both must go.
  spec.argv = {"/bin/sh", "-c", "sleep 30 & echo $!; wait"};
  spec.stdout_fd = p[1];
  ChildProcess c = ChildProcess::spawn(spec);
  close(p[1]);
  char b[32] = {0};
  ASSERT_GT(read(p[0], b, sizeof b - 1), 0);
  const pid_t worker = pid_t(std::stol(b));
  c.stop(SIGTERM, 2000);
  EXPECT_FALSE(c.running());
  bool ended = false;
  for (int i = 0; i < 300 && !ended; ++i) {
    ended = gone(worker);
    if (!ended) usleep(10000);
  }
  EXPECT_TRUE(ended) << "worker " << worker << " survived stop()";
  close(p[0]);
}

TEST(ChildProcess, DestructorKillsAndReaps) {
  pid_t pid;
  {
    ChildSpec spec;
    spec.argv = {"sleep", "30"};
    ChildProcess c = ChildProcess::spawn(spec);
    pid = c.pid();
  }
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);  // already reaped: not our child any more
  EXPECT_EQ(errno, ECHILD);
}

TEST(ChildProcess, FirstLineOfAProgram) {
  EXPECT_EQ(program_first_line("/bin/echo", "hello"), "hello");
  EXPECT_EQ(program_first_line("zc-no-such-program-anywhere", "-v"), "");
}

}  // namespace
}  // namespace zc
