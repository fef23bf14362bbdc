// `pktgen`: the kernel's packet generator driven through /proc/net/pktgen, as
// the kernel's samples/pktgen scripts do (pktgen_sample01_simple.sh,
// pktgen_sample03_burst_single_flow.sh, functions.sh; Documentation/
// networking/pktgen.rst): reset, add_device to the kpktgend thread of the
// generator CPU, per-device count/pkt_size/delay/burst/clone_skb/flows/ports/
// addresses/MACs/xmit_mode/flags, then `start` on pgctrl.
//
// pktgen is per network namespace: the generator thread is inside the lab's
// generator namespace, and /proc/net follows the *process's* first thread, so
// every file is reached through /proc/thread-self/net/pktgen (docs/design.md, "The
// lab"). pktgen packets carry pktgen's own header (magic 0xbe9be955, seq_num),
// not the flood header: sinks account them with accounting mode `pktgen`.
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "drivers/drivers.h"
#include "harness/errors.h"
#include "harness/generator.h"
#include "harness/netns.h"
#include "harness/pacer.h"
#include "harness/trial.h"

namespace zc {
namespace {

using nlohmann::json;

constexpr const char* kPktgenDir = "/proc/thread-self/net/pktgen";
constexpr size_t kEthIpUdpHeaders = 42;  // pkt_size excludes the FCS: payload + 14 + 20 + 8

bool path_exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

// The kernel configuration line for `option`, from /proc/config.gz (gzip, read
// through zlib loaded at run time: the harness does not link it) or
// /boot/config-<release>. Empty with `where` saying why when neither answers.
std::string kernel_config_line(const std::string& option, std::string* where) {
  const std::string boot = "/boot/config-" + kernel_release();
  std::vector<std::string> lines;
  if (path_exists("/proc/config.gz")) {
    if (void* z = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL)) {
      using Open = void* (*)(const char*, const char*);
      using Gets = char* (*)(void*, char*, int);
      using Close = int (*)(void*);
      auto gzopen = reinterpret_cast<Open>(dlsym(z, "gzopen"));
      auto gzgets = reinterpret_cast<Gets>(dlsym(z, "gzgets"));
      auto gzclose = reinterpret_cast<Close>(dlsym(z, "gzclose"));
      if (gzopen && gzgets && gzclose)
        if (void* f = gzopen("/proc/config.gz", "rb")) {
          char buf[512];
          while (gzgets(f, buf, sizeof buf)) lines.emplace_back(buf);
          gzclose(f);
          *where = "/proc/config.gz";
        }
      dlclose(z);
    }
  }
  if (where->empty() && path_exists(boot)) {
    std::ifstream in(boot);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    *where = boot;
  }
  if (where->empty()) {
    *where = "neither /proc/config.gz nor " + boot + " is readable";
    return "";
  }
  for (auto& l : lines) {
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (l == "# " + option + " is not set" || l.rfind(option + "=", 0) == 0) return l;
  }
  return "";
}

// Empty when /proc/net/pktgen/pgctrl exists in the calling thread's namespace.
std::string pgctrl_missing_reason() {
  if (path_exists(std::string(kPktgenDir) + "/pgctrl")) return "";
  std::string where;
  std::string line = kernel_config_line("CONFIG_NET_PKTGEN", &where);
  std::string modules_where;
  std::string modules = kernel_config_line("CONFIG_MODULES", &modules_where);
  std::string base = "/proc/net/pktgen/pgctrl missing";
  if (line.empty()) return base + " (" + where + (where.find(' ') == std::string::npos ? " does not mention CONFIG_NET_PKTGEN)" : ")");
  if (line.rfind("# ", 0) == 0)
    return "CONFIG_NET_PKTGEN not set: " + base + "; " + where + " says '" + line + "'";
  if (line == "CONFIG_NET_PKTGEN=m")
    return "pktgen is a module not loaded here: " + base + "; " + where + " says '" + line + "'" +
           (modules.rfind("# ", 0) == 0 ? "" : " (modprobe pktgen)");
  return base + " although " + where + " says '" + line + "'";
}

Usability probe_pktgen() {
  // In a fresh namespace, as a trial will use it (pktgen registers per-netns
  // state when it loads); without the privilege for one, in our own.
  std::string why;
  try {
    Netns ns = Netns::create_anonymous();
    ns.run([&] { why = pgctrl_missing_reason(); });
  } catch (const EnvError&) {
    why = pgctrl_missing_reason();
  }
  return why.empty() ? Usability{} : Usability{false, why};
}

struct PgCommand {
  std::string file;  // pgctrl, kpktgend_N or a device name
  std::string cmd;
};

// Writes one command the way functions.sh's proc_cmd does, then checks the
// file's "Result:" line (pgctrl has none). Throws EnvError with pktgen's answer.
void pg_write(const PgCommand& c) {
  const std::string path = std::string(kPktgenDir) + "/" + c.file;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw EnvError(errno_text("open " + path, errno), errno);
  // With the newline, as `echo` writes it: pgctrl_write() drops the last
  // byte unseen, so "reset" alone would arrive as "rese" (EINVAL).
  const std::string line = c.cmd + "\n";
  ssize_t n = ::write(fd, line.data(), line.size());
  int e = errno;
  ::close(fd);
  std::string result;
  if (c.file != "pgctrl") {
    std::istringstream text(read_file(path));
    for (std::string l; std::getline(text, l);)
      if (l.find("Result:") != std::string::npos) result = l;
  }
  if (n < 0) throw EnvError(errno_text("pktgen '" + c.cmd + "' > " + c.file, e) + (result.empty() ? "" : ": " + result), e);
  if (!result.empty() && result.find("Result: OK") == std::string::npos)
    throw EnvError("pktgen '" + c.cmd + "' > " + c.file + ": " + result);
}

uint64_t field_u64(const std::string& text, const std::string& re) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex(re))) return std::stoull(m[1]);
  return 0;
}

// The device file after a run: "Result: OK: 15430(c15405+d25) usec, 100000
// (60byte,0frags)\n  6480562pps 3110Mb/sec (3110669760bps) errors: 0" and the
// "Current:" counters.
json parse_device_file(const std::string& text) {
  json j;
  std::smatch m;
  if (std::regex_search(text, m, std::regex(R"(Result: ([^\n]*))"))) j["result"] = std::string(m[1]);
  if (std::regex_search(text, m, std::regex(R"(Result: OK: (\d+)\(c(\d+)\+d(\d+)\) usec, (\d+) \((\d+)byte)"))) {
    j["elapsed_us"] = std::stoull(m[1]);
    j["result_packets"] = std::stoull(m[4]);
    j["pkt_size"] = std::stoull(m[5]);
  }
  if (std::regex_search(text, m, std::regex(R"((\d+)pps (\d+)Mb/sec \((\d+)bps\) errors: (\d+))"))) {
    j["pps"] = std::stoull(m[1]);
    j["mbps"] = std::stoull(m[2]);
    j["bps"] = std::stoull(m[3]);
    j["result_errors"] = std::stoull(m[4]);
  }
  j["pkts_sofar"] = field_u64(text, R"(pkts-sofar: (\d+))");
  j["errors"] = field_u64(text, R"(pkts-sofar: \d+\s+errors: (\d+))");
  j["seq_num"] = field_u64(text, R"(seq_num: (\d+))");
  j["idle_us"] = field_u64(text, R"(idle: (\d+)us)");
  return j;
}

class PktgenGenerator : public Generator {
 public:
  ~PktgenGenerator() override {
    // Every exit path, exceptions and Ctrl-C included: no kernel thread keeps
    // flooding after us (count bounds it too, and the namespace dies with us).
    stop_pktgen();
    if (starter_.joinable()) starter_.join();
  }

  void open(const GenContext& ctx) override {
    if (std::string why = pgctrl_missing_reason(); !why.empty()) throw EnvError(why);
    ctx_ = ctx;
    const LabOptions& lab = ctx.lab->options();
    thread_ = ctx.options.integer("thread") >= 0 ? int(ctx.options.integer("thread")) : lab.gen_cpu;
    if (!path_exists(std::string(kPktgenDir) + "/kpktgend_" + std::to_string(thread_)))
      throw UsageError("pktgen thread kpktgend_" + std::to_string(thread_) + " does not exist in " + kPktgenDir +
                       " (one per online CPU)");
    if (ctx.payload_bytes < 16)
      throw UsageError("pktgen payload " + std::to_string(ctx.payload_bytes) +
                       " bytes is below pktgen's own 16-byte header; accepted: >= 16");
  }

  void run(uint64_t start_ns, uint64_t end_ns, const std::atomic<bool>& stop) override {
    commands_ = configure(end_ns - std::min(end_ns, start_ns));
    write_script();
    for (const auto& c : commands_) pg_write(c);
    wait_until(start_ns);
    if (stop.load()) return;
    // `start` blocks in the writer until every device finished its count or a
    // `stop` arrives, so it runs on a helper (which inherits our namespace).
    started_ = true;
    std::atomic<bool> done{false};
    std::exception_ptr err;
    starter_ = std::thread([&] {
      try {
        pg_write({"pgctrl", "start"});
      } catch (...) {
        err = std::current_exception();
      }
      done.store(true);
    });
    while (!done.load()) {
      if (stop.load() || monotonic_ns() >= end_ns) {
        stop_pktgen();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    starter_.join();
    stop_pktgen();
    collect();
    if (err) std::rethrow_exception(err);
  }

  json stats() override { return stats_; }

 private:
  // The sample scripts' sequence, with the trial's values.
  std::vector<PgCommand> configure(uint64_t window_ns) {
    const auto& o = ctx_.options;
    const auto& ports = ctx_.lab->ports();
    std::vector<PgCommand> c;
    const std::string thread = "kpktgend_" + std::to_string(thread_);
    c.push_back({"pgctrl", "reset"});
    c.push_back({thread, "rem_device_all"});
    // A count always bounds the flood: the trial's, or what the rate (or a
    // generous 20 Mpps at max) fills the window with.
    double rate = ctx_.rate_pps;
    uint64_t total = ctx_.count ? ctx_.count
                                : uint64_t(std::ceil((rate > 0 ? rate : 20e6) * double(window_ns) / 1e9)) + 1;
    uint32_t burst = std::max<uint32_t>(1, ctx_.burst);
    for (size_t p = 0; p < ports.size(); ++p) {
      const LabPort& port = ports[p];
      const std::string& dev = port.gen_ifname;
      uint64_t count = total / ports.size() + (p < total % ports.size() ? 1 : 0);
      int flows = std::max(1, (ctx_.flows + int(ports.size()) - 1 - int(p)) / int(ports.size()));
      c.push_back({thread, "add_device " + dev});
      c.push_back({dev, "count " + std::to_string(count)});
      c.push_back({dev, "clone_skb " + std::to_string(o.integer("clone_skb"))});
      c.push_back({dev, "pkt_size " + std::to_string(ctx_.payload_bytes + kEthIpUdpHeaders)});
      c.push_back({dev, "burst " + std::to_string(burst)});
      // delay is per xmit call, and one call sends `burst` packets.
      double per_port = rate > 0 ? rate / double(ports.size()) : 0;
      uint64_t delay = per_port > 0 ? uint64_t(std::llround(1e9 * burst / per_port)) : 0;
      c.push_back({dev, "delay " + std::to_string(delay)});
      c.push_back({dev, "xmit_mode " + o.text("xmit_mode")});
      if (!o.boolean("timestamp")) c.push_back({dev, "flag NO_TIMESTAMP"});
      if (o.boolean("udp_csum")) c.push_back({dev, "flag UDPCSUM"});
      if (o.boolean("queue_map_cpu")) c.push_back({dev, "flag QUEUE_MAP_CPU"});
      if (o.integer("pktgen_flows") > 0) {
        c.push_back({dev, "flows " + std::to_string(o.integer("pktgen_flows"))});
        c.push_back({dev, "flowlen " + std::to_string(o.integer("flowlen"))});
      }
      c.push_back({dev, "dst_min " + ipv4_to_string(port.sink_ip)});
      c.push_back({dev, "dst_max " + ipv4_to_string(port.sink_ip)});
      c.push_back({dev, "src_min " + ipv4_to_string(port.gen_ip)});
      c.push_back({dev, "src_max " + ipv4_to_string(port.gen_ip)});
      c.push_back({dev, "dst_mac " + mac_to_string(ctx_.tap_traffic ? kTapForeignMac : port.sink_mac)});
      c.push_back({dev, "src_mac " + mac_to_string(port.gen_mac)});
      // pktgen cycles udp_src through [min, max): max is exclusive when min < max.
      c.push_back({dev, "udp_src_min " + std::to_string(kFloodSrcPortBase)});
      c.push_back({dev, "udp_src_max " + std::to_string(kFloodSrcPortBase + (flows > 1 ? flows : 0))});
      c.push_back({dev, "udp_dst_min " + std::to_string(kFloodUdpPort)});
      c.push_back({dev, "udp_dst_max " + std::to_string(kFloodUdpPort)});
    }
    return c;
  }

  // The same commands as a script a user can replay by hand on a lab machine.
  void write_script() const {
    if (ctx_.artifacts_dir.empty()) return;
    std::string path = ctx_.artifacts_dir + "/pktgen.sh";
    std::ofstream out(path);
    if (!out) throw EnvError(errno_text("write " + path, errno), errno);
    out << "#!/bin/bash\n"
           "# The pktgen configuration of one zcbench trial, in the style of the kernel's\n"
           "# samples/pktgen scripts. Run as root inside the namespace that holds the device\n"
           "# (zcbench used a private lab namespace; its device names, addresses and MACs are\n"
           "# below: adjust them for your interfaces). Ctrl-C stops the flood.\n"
           "set -e\n"
           "PGDIR=/proc/net/pktgen\n"
           "[ -e $PGDIR/pgctrl ] || modprobe pktgen\n"
           "pgset() {  # file command\n"
           "  echo \"$2\" > \"$PGDIR/$1\"\n"
           "  if [ \"$1\" != pgctrl ] && ! grep -q 'Result: OK' \"$PGDIR/$1\"; then\n"
           "    grep 'Result:' \"$PGDIR/$1\" >&2; exit 1\n"
           "  fi\n"
           "}\n";
    std::string devs;
    for (const auto& c : commands_) {
      out << "pgset " << c.file << " '" << c.cmd << "'\n";
      if (c.cmd.rfind("add_device ", 0) == 0) devs += " " + c.cmd.substr(11);
    }
    out << "trap 'echo stop > $PGDIR/pgctrl' INT TERM\n"
           "echo start > $PGDIR/pgctrl || true\n"
           "for dev in"
        << devs
        << "; do echo \"Device: $dev\"; grep -A2 'Result:' \"$PGDIR/$dev\"; done\n";
  }

  void stop_pktgen() {
    if (!started_ || stopped_.exchange(true)) return;
    try {
      pg_write({"pgctrl", "stop"});
    } catch (const std::exception& e) {
      stop_error_ = e.what();
    }
  }

  void collect() {
    json devices = json::object();
    uint64_t sent = 0, errors = 0;
    double pps = 0, mbps = 0;
    for (const auto& port : ctx_.lab->ports()) {
      json d = parse_device_file(read_file(std::string(kPktgenDir) + "/" + port.gen_ifname));
      sent += d.value("pkts_sofar", uint64_t(0));
      errors += d.value("errors", uint64_t(0));
      pps += d.value("pps", 0.0);
      mbps += d.value("mbps", 0.0);
      devices[port.gen_ifname] = d;
    }
    stats_ = {{"devices", devices},
              {"pkts_sofar", sent},
              {"errors", errors},
              {"pps", pps},
              {"mbps", mbps},
              {"thread", "kpktgend_" + std::to_string(thread_)},
              {"commands", json::array()}};
    for (const auto& c : commands_) stats_["commands"].push_back(c.file + ": " + c.cmd);
    if (!stop_error_.empty()) stats_["stop_error"] = stop_error_;
  }

  GenContext ctx_;
  int thread_ = 0;
  std::vector<PgCommand> commands_;
  std::thread starter_;
  bool started_ = false;
  std::atomic<bool> stopped_{false};
  std::string stop_error_;
  json stats_ = json::object();
};

}  // namespace

GeneratorInfo pktgen_generator_info() {
  GeneratorInfo g;
  g.name = "pktgen";
  g.description = "kernel pktgen through /proc/net/pktgen in the generator namespace (samples/pktgen style)";
  g.options = {
      {"xmit_mode", OptionType::choice, "start_xmit",
       "start_xmit: straight to the device's ndo_start_xmit; queue_xmit: through the qdisc (dev_queue_xmit). "
       "(netif_receive injects into the generator's own stack, which no sink sees: not offered)",
       0, 0, {"start_xmit", "queue_xmit"}},
      {"clone_skb", OptionType::integer, "0",
       "times one skb is sent before a new one is built (seq_num repeats, so gaps stay exact, duplicates do not)",
       0, 1000000, {}},
      {"timestamp", OptionType::boolean, "false", "pktgen header timestamps (off: flag NO_TIMESTAMP, as the samples)", 0, 0, {}},
      {"udp_csum", OptionType::boolean, "false", "compute UDP checksums (flag UDPCSUM)", 0, 0, {}},
      {"queue_map_cpu", OptionType::boolean, "false", "TX queue = sending CPU (flag QUEUE_MAP_CPU)", 0, 0, {}},
      {"pktgen_flows", OptionType::integer, "0", "pktgen's own concurrent flows (flows); 0: off", 0, 65535, {}},
      {"flowlen", OptionType::integer, "0", "packets per pktgen flow before it changes (flowlen)", 0, 1000000000, {}},
      {"thread", OptionType::integer, "-1", "kpktgend_N thread to use; -1: the generator CPU's", -1, 4095, {}},
  };
  g.probe = probe_pktgen;
  g.make = [] { return std::make_unique<PktgenGenerator>(); };
  // Its packets carry its own header; sent is read off the generator veth,
  // where each transmit the peer refused raised tx_dropped and `errors` and
  // was sent again (measured: tx_dropped == errors, no gap): not a loss.
  g.packets = PacketFormat::pktgen;
  g.sent = SentFrom::gen_link_tx;
  g.resent_stat = "errors";
  return g;
}

}  // namespace zc
