// xdp-tools peers (Debian's xdp-tools 1.3.1), run as children in the lab:
//
//  - `xdp_bench` sink: `xdp-bench drop <sink veth>` in the sink namespace,
//    beside our xdp_drop (the lab's ceiling). Its packet count is its exit
//    summary ("Packets received"), handed to Accounting as counted,
//    unchecked packets when the trial ends (XDP drops them before any skb,
//    as with xdp_drop, so there is no payload to check).
//  - `xdp_trafficgen` generator: `xdp-trafficgen udp -n <count>` from the
//    generator veth, beside the af_xdp generator; the harness reads "sent"
//    from the veth's tx_packets like every external generator.
//
// Both programs embed the xdp_sample BPF object whose tp_btf programs
// attach to the xdp:* tracepoints. Where the kernel lacks one of them
// (found on 6.18: no xdp_redirect_map / xdp_redirect_map_err), libbpf cannot
// load the object and the program exits at once ("Failed to attach XDP
// program: No such process"). That is a finding, not a harness failure: the
// trial is `unsupported` with the program's own words plus the probe of
// /sys/kernel/btf/vmlinux that shows which tracepoints are missing.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <regex>

#include "drivers/capture_peer.h"
#include "drivers/drivers.h"
#include "harness/errors.h"
#include "harness/generator.h"
#include "harness/lab.h"
#include "harness/pacer.h"
#include "harness/trial.h"
#include "harness/xdp_prog.h"

namespace zc {
namespace {

using nlohmann::json;

// The tracepoints xdp-tools 1.3.1's xdp_sample object attaches to (its
// .reltp_btf/* sections).
const char* const kSampleTracepoints[] = {"xdp_redirect",      "xdp_redirect_err", "xdp_redirect_map",
                                          "xdp_redirect_map_err", "xdp_exception", "xdp_cpumap_enqueue",
                                          "xdp_cpumap_kthread", "xdp_devmap_xmit"};

// Which of those the running kernel's BTF has no btf_trace_<name> for; the
// names are NUL-terminated strings of the BTF string section.
std::string btf_probe() {
  std::ifstream f("/sys/kernel/btf/vmlinux", std::ios::binary);
  if (!f) return "probe: /sys/kernel/btf/vmlinux is missing (no kernel BTF, CONFIG_DEBUG_INFO_BTF)";
  const std::string btf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::string missing;
  for (const char* tp : kSampleTracepoints)
    if (btf.find(std::string("btf_trace_") + tp + '\0') == std::string::npos)
      missing += (missing.empty() ? "" : ", ") + std::string(tp);
  utsname u{};
  uname(&u);
  if (missing.empty()) return "probe: kernel " + std::string(u.release) + " BTF has every xdp_sample tracepoint";
  return "probe: kernel " + std::string(u.release) + " /sys/kernel/btf/vmlinux has no btf_trace_ type for " +
         "tracepoint xdp:" + missing + ", which the xdp_sample object in xdp-tools 1.3.1 attaches to";
}


std::string tail(const std::string& s) { return s.size() > 1500 ? s.substr(s.size() - 1500) : s; }

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// "Packets received    : 1,234,567" -> 1234567 (printf's %' may group digits).
uint64_t summary_number(const std::string& text, const std::string& label, bool* found) {
  std::smatch m;
  std::regex re(label + "\\s*:\\s*([0-9][0-9,.' ]*)");
  *found = std::regex_search(text, m, re);
  if (!*found) return 0;
  std::string digits;
  for (char c : m[1].str())
    if (c >= '0' && c <= '9') digits += c;
  return digits.empty() ? 0 : std::stoull(digits);
}

// One xdp-tools child: its messages in a memfd, stopped with SIGINT (both
// tools print their summary on it), SIGKILL if it does not go.
class ToolProcess {
 public:
  ~ToolProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (msg_fd_ >= 0) ::close(msg_fd_);
  }
  void start(const std::vector<std::string>& argv) {
    argv_ = argv;
    msg_fd_ = memfd_create((argv[0] + "-messages").c_str(), MFD_CLOEXEC);
    check_sys(msg_fd_, "memfd_create");
    pid_ = spawn_program(argv_, msg_fd_, msg_fd_, -1);
  }
  // True once the child has exited (status kept).
  bool exited() {
    if (pid_ < 0) return true;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) != pid_) return false;
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
  }
  void stop() {
    if (exited()) return;
    stopped_by_us_ = true;
    kill(pid_, SIGINT);
    const uint64_t deadline = monotonic_ns() + 3000000000ull;
    while (!exited() && monotonic_ns() < deadline) usleep(5000);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
      pid_ = -1;
      status_ = 128 + SIGKILL;
    }
  }
  std::string messages() const { return msg_fd_ >= 0 ? read_child_messages(msg_fd_, 1 << 20) : ""; }
  int status() const { return status_; }
  bool stopped_by_us() const { return stopped_by_us_; }
  const std::vector<std::string>& argv() const { return argv_; }
  // The EnvError of a child that ended on its own, in its own words.
  EnvError failure(const std::string& when) const {
    return EnvError(join(argv_) + " " + when + " (status " + std::to_string(status_) +
                    "): " + quote_peer_messages(messages()) + "; " + btf_probe());
  }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int msg_fd_ = -1, status_ = -1;
  bool stopped_by_us_ = false;
};

// The harness bounds a trial to 3600 s; coreutils timeout bounds the child
// to that plus a margin even if neither we nor PR_SET_PDEATHSIG stop it.
std::vector<std::string> bounded(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"timeout", "-s", "INT", "-k", "5", "3660"});
  return argv;
}

Usability tool_installed(const std::string& tool, const std::string& sub) {
  return peer_installed(tool, sub + " --version", tool + " version", "xdp-tools");
}

// ---------------------------------------------------------------------------

class XdpBenchSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    AttachedXdp attached = find_attached_xdp(ctx.ifindex, ctx.ifname);
    if (attached.prog_id)
      throw UsageError("rx xdp_bench attaches its own XDP program, but " + ctx.ifname + " already has '" +
                       attached.prog_name + "'; run it in the default lab mode (not --lab-mode xdp)");
    version_ = program_version_line("xdp-bench", "drop --version");
    tool_.start(bounded({"xdp-bench", "drop", "-i", "1", "-p", ctx.options.text("program_mode"), "-m",
                         ctx.options.text("xdp_mode"), ctx.ifname}));
    // Loaded and attached once it prints its first interval (after -i 1 s)
    // or says so; an early exit is the failure, in its words.
    const uint64_t deadline = monotonic_ns() + 5000000000ull;
    for (;;) {
      if (tool_.exited()) throw tool_.failure("exited before dropping");
      const std::string m = tool_.messages();
      if (m.find("Dropping packets on") != std::string::npos || m.find("rx/s") != std::string::npos) break;
      if (monotonic_ns() > deadline) break;  // alive 5 s: attached, only quiet
      usleep(20000);
    }
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    acct_ = &acct;
    if (tool_.exited() && !tool_.stopped_by_us()) throw tool_.failure("stopped dropping");
    usleep(useconds_t(std::clamp(timeout_ms, 0, 10) * 1000));
    return 0;  // its count arrives with its exit summary
  }

  json kernel_stats() override {
    tool_.stop();
    const std::string m = tool_.messages();
    bool found = false;
    received_ = summary_number(m, "Packets received", &found);
    if (!found) throw EnvError(join(tool_.argv()) + " printed no 'Packets received' summary: \"" + tail(m) + "\"");
    if (acct_ && received_) {
      acct_->begin_batch();
      acct_->on_counted(received_, 0);
    }
    return {{"program", "xdp-bench"},
            {"version", version_},
            {"command", join(tool_.argv())},
            {"exit_status", tool_.status()},
            {"packets_received", received_},
            {"btf", btf_probe()},
            {"messages", tail(m)},
            {"notes", json::array({"counted by xdp-bench's own summary at exit, dropped in XDP before any skb; "
                                   "sequences unchecked, per-window rates empty"})}};
  }

 private:
  ToolProcess tool_;
  Accounting* acct_ = nullptr;
  uint64_t received_ = 0;
  std::string version_;
};

// ---------------------------------------------------------------------------

class XdpTrafficgenGenerator : public Generator {
 public:
  void open(const GenContext& ctx) override {
    // xdp-trafficgen 1.3.1 udp has no rate or size option: it sends its own
    // fixed-size packet as fast as it can.
    if (ctx.rate_pps > 0)
      throw UsageError("generator xdp_trafficgen has no rate control (xdp-trafficgen udp sends at full speed); "
                       "accepted: --rate max");
    const LabPort& port = ctx.lab->ports().at(0);
    argv_ = {"xdp-trafficgen", "udp",
             "-m", mac_to_string(ctx.tap_traffic ? kTapForeignMac : port.sink_mac),
             "-M", mac_to_string(port.gen_mac),
             "-a", ipv4_to_string(port.sink_ip),
             "-A", ipv4_to_string(port.gen_ip),
             "-p", std::to_string(kFloodUdpPort),
             "-P", std::to_string(kFloodSrcPortBase),
             "-t", "1"};
    if (ctx.count) argv_.insert(argv_.end(), {"-n", std::to_string(ctx.count)});
    argv_.push_back(port.gen_ifname);
    version_ = program_version_line("xdp-trafficgen", "udp --version");
    // xdp-trafficgen's own feature probe (its `probe` command, which its test
    // scripts skip on) loads the BPF object as `udp` would: a kernel it cannot
    // run on is then `unsupported` here, before any traffic, not an `error`
    // once the trial has started. Its first line is libbpf's telling one.
    std::string probe = program_version_line("xdp-trafficgen", "probe");
    probe.erase(0, probe.find_first_not_of(" \t"));
    std::string lower = probe;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (lower.find("fail") != std::string::npos || lower.find("error") != std::string::npos)
      throw EnvError("xdp-trafficgen probe (its kernel support check) failed: \"" + probe + "\"; " + btf_probe());
  }

  void run(uint64_t start_ns, uint64_t end_ns, const std::atomic<bool>& stop) override {
    wait_until(start_ns);
    tool_.start(bounded(argv_));
    while (!tool_.exited() && monotonic_ns() < end_ns && !stop.load(std::memory_order_relaxed)) usleep(2000);
    tool_.stop();
    if (!tool_.stopped_by_us() && tool_.status() != 0) throw tool_.failure("failed");
  }

  json stats() override {
    return {{"program", "xdp-trafficgen"},
            {"version", version_},
            {"command", join(tool_.argv())},
            {"exit_status", tool_.status()},
            {"stopped_by_harness", tool_.stopped_by_us()},
            {"btf", btf_probe()},
            {"messages", tail(tool_.messages())}};
  }

 private:
  std::vector<std::string> argv_;
  std::string version_;
  ToolProcess tool_;
};

}  // namespace

std::string xdp_tools_btf_probe() { return btf_probe(); }

DriverInfo xdp_bench_driver_info() {
  DriverInfo d;
  d.name = "xdp_bench";
  d.direction = Direction::rx;
  d.description = "peer: xdp-tools' `xdp-bench drop` on the sink veth (its own XDP program), beside xdp_drop; "
                  "count from its exit summary; default lab mode";
  d.options = {{"program_mode", OptionType::choice, "no-touch", "xdp-bench drop -p", 0, 0,
                {"no-touch", "read-data", "swap-macs"}},
               {"xdp_mode", OptionType::choice, "native", "xdp-bench drop -m", 0, 0, {"native", "skb"}}};
  d.probe = [] { return tool_installed("xdp-bench", "drop"); };
  d.make_rx = [] { return std::make_unique<XdpBenchSink>(); };
  return d;
}

GeneratorInfo xdp_trafficgen_generator_info() {
  GeneratorInfo g;
  g.name = "xdp_trafficgen";
  g.description = "peer: xdp-tools' `xdp-trafficgen udp -n <count>` from the generator veth (BPF_PROG_RUN live "
                  "frames), its own fixed packet at full speed, beside the af_xdp generator";
  g.probe = [] { return tool_installed("xdp-trafficgen", "udp"); };
  g.make = [] { return std::make_unique<XdpTrafficgenGenerator>(); };
  return g;
}

}  // namespace zc
