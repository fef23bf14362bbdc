// `trafgen` generator: netsniff-ng's trafgen sending the flood's frame
// (our Ethernet/IPv4/UDP addressing, payload with a one-byte counter where the
// flood header's sequence number ends) out of the lab's generator veth, in
// the generator namespace (forked from the generator thread, which also
// reaps it: harness/child_process.h). Its config goes in a memfd handed over
// as /dev/fd/3, not a file in /tmp: a memfd is no file anywhere, so nothing
// is left even when zcbench is SIGKILLed between writing and removing it.
// Bounded by itself: --num from the trial's bound. Without a rate
// it uses its TX_RING fast path; with one (-b Npps) it falls back to its
// per-packet send path, as its manual says — recorded as `mode`.
//
// Known failure, reported not hidden: trafgen 0.6.8 dies at once with
// "Flushing TX_RING failed: Resource temporarily unavailable" in the rps and
// xdp lab modes (its blocking flush gets EAGAIN from a socket whose frames sit
// in another CPU's backlog; it works in sender-softirq). run() throws an
// EnvError carrying trafgen's own line, so the record says exactly that.
// Compiled once the harness's external-generator interface is present
// (harness/generator.h, registered through all_generators()).

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "drivers/capture_peer.h"
#include "drivers/drivers.h"
#include "harness/child_process.h"
#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/generator.h"
#include "harness/lab.h"
#include "harness/pacer.h"
#include "harness/trial.h"

namespace zc {
namespace {


uint64_t number_before(const std::string& text, const std::string& phrase) {
  std::smatch m;
  std::regex re("([0-9]+)\\s+" + phrase);
  return std::regex_search(text, m, re) ? std::stoull(m[1].str()) : 0;
}

std::string line_with(const std::string& text, const std::string& needle) {
  size_t p = text.find(needle);
  if (p == std::string::npos) return "";
  size_t b = text.find_last_of("\r\n", p);
  size_t e = text.find_first_of("\r\n", p);
  b = b == std::string::npos ? 0 : b + 1;
  return text.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

class TrafgenGenerator : public Generator {
 public:
  void open(const GenContext& ctx) override {
    const LabPort& port = ctx.lab->ports().at(0);
    const MacAddr dst = ctx.tap_traffic ? kTapForeignMac : port.sink_mac;
    if (ctx.payload_bytes < kFloodMinPayload)
      throw UsageError("trafgen payload " + std::to_string(ctx.payload_bytes) + " bytes; accepted: >= 18");
    std::ostringstream c;
    // One frame: trafgen computes the lengths and the IPv4 checksum.
    c << "{\n  eth(da=" << mac_to_string(dst) << ", sa=" << mac_to_string(port.gen_mac) << ", type=0x0800),\n"
      << "  ipv4(sa=" << ipv4_to_string(port.gen_ip) << ", da=" << ipv4_to_string(port.sink_ip) << ", ttl=64),\n"
      // csum=0: no UDP checksum (allowed for IPv4). trafgen computes a given
      // checksum once, so with the dinc() counter below 255 of 256 datagrams
      // would fail a socket sink's check (Udp.InCsumErrors); capture sinks never
      // looked. Measured: trafgen -> recvmmsg lost ~99.6 % as socket_other.
      << "  udp(sp=" << kFloodSrcPortBase << ", dp=" << kFloodUdpPort << ", csum=0),\n"
      << "  fill(0x00, 7), dinc(0, 255, 1),\n"  // low byte of the big-endian sequence number counts
      << "  fill(0x00, " << ctx.payload_bytes - 8 << ")\n}\n";
    config_ = c.str();
    config_fd_ = memfd_create("trafgen-config", MFD_CLOEXEC);
    check_sys(config_fd_, "memfd_create for the trafgen config");
    if (write(config_fd_, config_.data(), config_.size()) != ssize_t(config_.size()))
      throw EnvError(errno_text("write trafgen config to its memfd", errno), errno);
    // A replayable copy only where the user asked for artifacts (kept there).
    if (!ctx.artifacts_dir.empty()) {
      std::string path = ctx.artifacts_dir + "/trafgen.cfg";
      std::ofstream(path) << config_;
      artifact_path_ = path;
    }
    count_ = ctx.count;
    rate_pps_ = ctx.rate_pps;
    argv_ = {"trafgen", "--dev", port.gen_ifname, "--conf", "/dev/fd/3", "--cpus", "1",
             "--no-sock-mem", "--notouch-irq"};
    if (!ctx.options.boolean("qdisc_bypass")) argv_.push_back("--qdisc-path");
    if (ctx.rate_pps > 0) {
      argv_.insert(argv_.end(), {"--rate", std::to_string(uint64_t(std::llround(ctx.rate_pps))) + "pps"});
      mode_ = "slow path (--rate: one send per packet, no TX_RING)";
    } else {
      mode_ = "TX_RING";
    }
    int64_t ring = ctx.options.integer("ring_size");
    if (ring > 0) argv_.insert(argv_.end(), {"--ring-size", std::to_string(ring / 1024) + "KiB"});
    version_ = program_version_line("trafgen", "-v");
    msg_fd_ = memfd_create("trafgen-messages", MFD_CLOEXEC);
    check_sys(msg_fd_, "memfd_create");
  }

  void run(uint64_t start_ns, uint64_t end_ns, const std::atomic<bool>& stop) override {
    wait_until(start_ns);
    const double seconds = double(end_ns - std::min(end_ns, monotonic_ns())) / 1e9;
    argv_.insert(argv_.end(), {"--num", std::to_string(packet_bound(count_, rate_pps_, seconds))});
    ChildSpec spec;
    spec.argv = argv_;
    spec.stdout_fd = msg_fd_;
    spec.stderr_fd = msg_fd_;
    spec.fds = {{config_fd_, 3}};
    // trafgen forks its sender, which has no parent-death signal of its own:
    // as PID 1 of its own PID namespace, trafgen takes it along when it dies
    // (found by tests/child_cleanup.sh). No time limit then (PID 1 ignores
    // SIGALRM); the bounds are --num and the parent-death signal.
    spec.own_pid_namespace = true;
    child_ = ChildProcess::spawn(spec);
    bool reaped = false;
    while (!reaped && monotonic_ns() < end_ns && !stop.load(std::memory_order_relaxed)) {
      if (child_.try_reap()) reaped = true;
      else usleep(2000);
    }
    if (!reaped) {
      stopped_by_us_ = true;
      child_.stop(SIGINT, 2000);  // trafgen prints its statistics on SIGINT
    }
    exit_status_ = child_.exit_code();
    messages_ = read_child_messages(msg_fd_, 1 << 20);
    std::string flush = line_with(messages_, "Flushing TX_RING failed");
    if (!flush.empty())
      throw EnvError(version_ + ": \"" + flush +
                     "\" (known: trafgen 0.6.8 TX_RING in the rps and xdp lab modes; works in sender-softirq)");
    if (exit_status_ != 0 && !stopped_by_us_)
      throw EnvError("trafgen exited with status " + std::to_string(exit_status_) + ": " + tail());
  }

  nlohmann::json stats() override {
    return {{"program", "trafgen"},
            {"version", version_},
            {"command", join_argv()},
            {"config", config_},
            {"config_file", artifact_path_.empty() ? nlohmann::json(nullptr) : nlohmann::json(artifact_path_)},
            {"mode", mode_},
            {"exit_status", exit_status_},
            {"stopped_by_harness", stopped_by_us_},
            {"packets_outgoing", number_before(messages_, "packets outgoing")},
            {"bytes_outgoing", number_before(messages_, "bytes outgoing")},
            {"messages", tail()}};
  }

  ~TrafgenGenerator() override {
    child_.stop(SIGKILL, 0);  // normally reaped in run(), on the generator thread
    if (msg_fd_ >= 0) ::close(msg_fd_);
    if (config_fd_ >= 0) ::close(config_fd_);
  }

 private:
  std::string tail() const { return messages_.size() > 2000 ? messages_.substr(messages_.size() - 2000) : messages_; }
  std::string join_argv() const {
    std::string s;
    for (const auto& a : argv_) s += (s.empty() ? "" : " ") + a;
    return s;
  }

  // --num: the trial's count when it has one; otherwise 1.5 x what the rate
  // sends in the time left, or 100 Mpps (above any veth) for that long when
  // unpaced. Never 0, which is trafgen's "forever".
  static uint64_t packet_bound(uint64_t count, double rate_pps, double seconds) {
    if (count) return count;
    const double pps = rate_pps > 0 ? 1.5 * rate_pps : 100e6;
    return uint64_t(pps * (seconds + 1)) + 1000;
  }

  std::vector<std::string> argv_;
  std::string config_, artifact_path_, mode_, version_, messages_;
  bool stopped_by_us_ = false;
  int msg_fd_ = -1, config_fd_ = -1, exit_status_ = -1;
  uint64_t count_ = 0;
  double rate_pps_ = 0;
  ChildProcess child_;
};

}  // namespace

GeneratorInfo trafgen_generator_info() {
  GeneratorInfo g;
  g.name = "trafgen";
  g.description = "peer: netsniff-ng's trafgen in the generator namespace (TX_RING at max rate, its send path "
                  "with --rate), one process, frame built from the lab's addresses";
  g.options = {{"qdisc_bypass", OptionType::boolean, "on", "trafgen's default PACKET_QDISC_BYPASS (off: --qdisc-path)",
                0, 0, {}},
               {"ring_size", OptionType::size, "0", "--ring-size (0: trafgen's default)", 0, 1ll << 32, {}}};
  g.probe = [] { return peer_installed("trafgen", "-v", "trafgen", "netsniff-ng"); };
  g.make = [] { return std::make_unique<TrafgenGenerator>(); };
  // Its frames carry no header the sink could check; sent is the veth's.
  g.packets = PacketFormat::count;
  g.sent = SentFrom::gen_link_tx;
  return g;
}

}  // namespace zc


