// Capture peers: a real capture program (tcpdump, netsniff-ng) run as a child
// of the sink thread, so it inherits the sink namespace and the sink CPU
// (fork copies the calling thread's namespaces and affinity). The sink thread
// also stops and reaps it on every path (PDEATHSIG follows the forking
// thread: harness/child_process.h). It writes pcap
// into a pipe that the driver reads and parses. Every captured packet thus
// still goes through the harness's Accounting, and the per-window rates are
// live counts. Cost: our pipe reader shares the sink CPU with the program, so
// the sink CPU figures are program + reader (the reader is a read(2) of 8 KiB
// chunks plus the header checks every sink pays).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "harness/child_process.h"
#include "harness/driver.h"

namespace zc {

struct PeerStats {
  uint64_t captured = 0;           // the program's own count
  uint64_t dropped_by_kernel = 0;  // the program's "dropped by kernel" figure (PACKET_STATISTICS tp_drops)
  nlohmann::json raw = nlohmann::json::object();
};

class CapturePeerSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override;
  size_t receive(Accounting& acct, int timeout_ms) override;
  nlohmann::json kernel_stats() override;
  uint64_t kernel_drops() override { return stats_.dropped_by_kernel; }
  ~CapturePeerSink() override;

 protected:
  // argv of the program; pcap goes to fd 3 when pcap_on_fd3, else to stdout
  // (then the program's messages go to stderr only).
  virtual std::vector<std::string> command(const RxContext& ctx) const = 0;
  virtual bool pcap_on_fd3() const = 0;
  // True once the program is known to capture (from its messages so far).
  virtual bool ready(const std::string& messages) const = 0;
  // The program's exit statistics from its messages.
  virtual PeerStats parse_stats(const std::string& messages) const = 0;
  virtual std::string program() const = 0;
  // How long to keep reading before SIGINT, so packets in a ring block the
  // program has not yet seen (block retire timeout) are not cut off.
  virtual int linger_ms() const { return 1100; }

 private:
  void stop();
  size_t consume(Accounting* acct);
  std::string messages() const;

  void abandon();

  ChildProcess child_;
  int pcap_fd_ = -1;
  int msg_fd_ = -1;  // memfd holding the program's stdout/stderr
  uint16_t udp_port_ = 0;
  std::vector<uint8_t> buf_;
  size_t have_ = 0;
  bool header_seen_ = false;
  bool nsec_ = false;
  bool eof_ = false;
  Accounting* acct_ = nullptr;  // the trial's accounting: the tail flushed at exit is checked too
  uint64_t frames_ = 0, non_flood_ = 0, tail_frames_ = 0, pcap_bytes_ = 0;
  int exit_status_ = -1;
  std::vector<std::string> argv_;
  PeerStats stats_;
  bool stopped_ = false;
};

// A packet bound for a capture program (tcpdump -c, netsniff-ng -n) that a
// normal trial never reaches (twice what the trial can send, plus room for
// the lab's own frames); 0 when the trial is bounded by time only, unpaced.
uint64_t peer_packet_bound(const RxContext& ctx);
// The time limit a capture program gets (harness/child_process.h): the
// trial's traffic time plus the start, drain and stop allowances; 0: none.
unsigned peer_time_limit_s(const RxContext& ctx);

// Kept for peers written against it: new code uses ChildProcess::spawn.
// Forks and execs argv with stdin /dev/null, the given stdout and stderr, and
// fd3 as fd 3 when >= 0, through ChildProcess (PDEATHSIG SIGKILL from the
// calling thread, its own process group). The caller reaps it with waitpid
// on the same thread (or kills it by PID). Throws EnvError when fork or exec
// fails.
pid_t spawn_program(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd, int fd3);

// First line of `prog arg` output, or empty when it cannot run (probe helper).
// `arg` is split at spaces into words: "drop --version" is two arguments
// (passed as one, xdp-bench answered "Command 'drop --version' is unknown"
// and every xdp-tools peer read as not installed).
std::string program_version_line(const std::string& prog, const std::string& arg);

// A peer program's probe: usable when the first line of `prog arg` starts with
// `expect`. Otherwise the reason, which becomes the trial's and the test's skip
// reason: when the program printed nothing (it could not run), the Debian
// package to install, in one wording for every peer:
// "peer tcpdump not installed (`tcpdump --version` failed): apt-get install tcpdump";
// when it ran and answered something else, its own words.
Usability peer_installed(const std::string& prog, const std::string& arg, const std::string& expect,
                         const std::string& package);
// What a peer that failed said, for a skip reason: its telling line (the
// first one that reports a failure, e.g. libbpf's "failed to find kernel BTF
// type ID of 'xdp_redirect_map_err'") and its last line, each quoted, trimmed;
// "no output" when it printed nothing.
std::string quote_peer_messages(const std::string& messages);

// The reason peer_installed() gives for a first line `answer` (pure, tested).
std::string peer_probe_reason(const std::string& prog, const std::string& arg, const std::string& expect,
                              const std::string& package, const std::string& answer);

}  // namespace zc
