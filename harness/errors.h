// Error kinds and the process exit codes they map to (docs/design.md "Exit codes").
#pragma once
#include <stdexcept>
#include <string>

namespace zc {

enum ExitCode : int {
  kExitOk = 0,
  kExitCheckFailed = 1,
  kExitUsage = 2,
  kExitEnvironment = 3,
  kExitInternal = 4,
  kExitSkip = 77,  // CTest SKIP_RETURN_CODE
  kExitInterrupted = 130,
};

// Base: every zcbench error knows its exit code. what() is one line that names
// the thing, the value and what is accepted.
class Error : public std::runtime_error {
 public:
  Error(int exit_code, const std::string& msg) : std::runtime_error(msg), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Bad command line or option value.
struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(kExitUsage, m) {}
};

// The environment cannot run this: missing privilege, kernel feature, package.
// `errno_value` is the kernel's answer when there was one (0 otherwise).
struct EnvError : Error {
  EnvError(const std::string& m, int errno_value = 0) : Error(kExitEnvironment, m), err(errno_value) {}
  int err;
};

// Something that should not happen.
struct InternalError : Error {
  explicit InternalError(const std::string& m) : Error(kExitInternal, m) {}
};

// "what: strerror(e) (ENAME)" — the kernel's own reason, greppable.
std::string errno_text(const std::string& what, int e);
// Symbolic name of an errno value, e.g. "EOPNOTSUPP".
const char* errno_name(int e);

// Throws EnvError carrying errno when rc < 0.
void check_sys(long rc, const std::string& what);

}  // namespace zc
