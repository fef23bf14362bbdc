// `trafgen` generator: netsniff-ng's trafgen sending the flood's frame
// (our Ethernet/IPv4/UDP addressing, payload with a one-byte counter where the
// flood header's sequence number ends) out of the lab's generator veth, in
// the generator namespace (forked from the generator thread). Without a rate
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

#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "drivers/capture_peer.h"
#include "drivers/drivers.h"
#include "harness/errors.h"
#include "harness/flood_header.h"
#include "harness/generator.h"
#include "harness/lab.h"
#include "harness/pacer.h"
#include "harness/trial.h"

namespace zc {
namespace {

std::string read_all(int fd) {
  std::string out;
  char b[4096];
  off_t off = 0;
  ssize_t n;
  while ((n = pread(fd, b, sizeof b, off)) > 0 && out.size() < (1 << 20)) {
    out.append(b, size_t(n));
    off += n;
  }
  return out;
}

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
    // One frame: trafgen computes the IPv4 and UDP lengths and checksums.
    c << "{\n  eth(da=" << mac_to_string(dst) << ", sa=" << mac_to_string(port.gen_mac) << ", type=0x0800),\n"
      << "  ipv4(sa=" << ipv4_to_string(port.gen_ip) << ", da=" << ipv4_to_string(port.sink_ip) << ", ttl=64),\n"
      << "  udp(sp=" << kFloodSrcPortBase << ", dp=" << kFloodUdpPort << "),\n"
      << "  fill(0x00, 7), dinc(0, 255, 1),\n"  // low byte of the big-endian sequence number counts
      << "  fill(0x00, " << ctx.payload_bytes - 8 << ")\n}\n";
    config_ = c.str();
    std::string dir = ctx.artifacts_dir.empty() ? "/tmp" : ctx.artifacts_dir;
    char path[4096];
    std::snprintf(path, sizeof path, "%s/trafgen-XXXXXX.cfg", dir.c_str());
    int fd = mkstemps(path, 4);
    if (fd < 0) throw EnvError(errno_text("mkstemps " + std::string(path), errno), errno);
    if (write(fd, config_.data(), config_.size()) != ssize_t(config_.size())) {
      ::close(fd);
      throw EnvError(errno_text("write trafgen config " + std::string(path), errno), errno);
    }
    ::close(fd);
    config_path_ = path;
    keep_config_ = !ctx.artifacts_dir.empty();
    argv_ = {"trafgen", "--dev", port.gen_ifname, "--conf", config_path_, "--cpus", "1",
             "--num", std::to_string(ctx.count), "--no-sock-mem", "--notouch-irq"};
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
    pid_ = spawn_program(argv_, msg_fd_, msg_fd_, -1);
    int st = 0;
    bool reaped = false;
    while (!reaped && monotonic_ns() < end_ns && !stop.load(std::memory_order_relaxed)) {
      if (waitpid(pid_, &st, WNOHANG) == pid_) reaped = true;
      else usleep(2000);
    }
    if (!reaped) {
      stopped_by_us_ = true;
      kill(pid_, SIGINT);  // trafgen prints its statistics on SIGINT
      const uint64_t deadline = monotonic_ns() + 2000000000ull;
      while (!reaped && monotonic_ns() < deadline) {
        if (waitpid(pid_, &st, WNOHANG) == pid_) reaped = true;
        else usleep(5000);
      }
      if (!reaped) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
      }
    }
    pid_ = -1;
    exit_status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    messages_ = read_all(msg_fd_);
    if (!keep_config_) unlink(config_path_.c_str());
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
            {"mode", mode_},
            {"exit_status", exit_status_},
            {"stopped_by_harness", stopped_by_us_},
            {"packets_outgoing", number_before(messages_, "packets outgoing")},
            {"bytes_outgoing", number_before(messages_, "bytes outgoing")},
            {"messages", tail()}};
  }

  ~TrafgenGenerator() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (msg_fd_ >= 0) ::close(msg_fd_);
  }

 private:
  std::string tail() const { return messages_.size() > 2000 ? messages_.substr(messages_.size() - 2000) : messages_; }
  std::string join_argv() const {
    std::string s;
    for (const auto& a : argv_) s += (s.empty() ? "" : " ") + a;
    return s;
  }

  std::vector<std::string> argv_;
  std::string config_, config_path_, mode_, version_, messages_;
  bool keep_config_ = false, stopped_by_us_ = false;
  int msg_fd_ = -1, exit_status_ = -1;
  pid_t pid_ = -1;
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
  return g;
}

}  // namespace zc


