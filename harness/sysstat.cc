#include "harness/sysstat.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <sstream>

#include "harness/errors.h"

namespace zc {
namespace {

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string tok;
  while (in >> tok) out.push_back(tok);
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

uint64_t parse_u64(const std::string& tok, int base, const char* file, const std::string& line) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v, base);
  if (ec != std::errc() || end != tok.data() + tok.size())
    throw EnvError(std::string(file) + ": '" + tok + "' in line '" + line + "' is not a " +
                   (base == 16 ? "hex" : "decimal") + " counter");
  return v;
}

// Reads a /proc file whole; /proc files report size 0, so read until EOF.
std::string read_text_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw EnvError(errno_text("open " + path, e), e);
  }
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw EnvError(errno_text("read " + path, e), e);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

uint64_t user_hz() {
  static const long hz = sysconf(_SC_CLK_TCK);
  return hz > 0 ? static_cast<uint64_t>(hz) : 100;  // 100 is USER_HZ on every Linux ABI
}

// Split so that ticks * 1e9 cannot overflow even after years of uptime.
uint64_t ticks_to_ns(uint64_t ticks, uint64_t hz) {
  return ticks / hz * 1'000'000'000ull + ticks % hz * 1'000'000'000ull / hz;
}

uint64_t sub_clamped(uint64_t a, uint64_t b) { return b >= a ? b - a : 0; }

template <class T>
T& at_index(std::vector<T>& v, size_t i) {
  if (v.size() <= i) v.resize(i + 1);
  return v[i];
}

}  // namespace

nlohmann::json CpuTimes::to_json() const {
  return {{"cpu", cpu},           {"user_ns", user_ns},       {"nice_ns", nice_ns},
          {"system_ns", system_ns}, {"idle_ns", idle_ns},     {"iowait_ns", iowait_ns},
          {"irq_ns", irq_ns},     {"softirq_ns", softirq_ns}, {"steal_ns", steal_ns}};
}

// Offline CPUs have no line; their slot keeps cpu = index and zero times so
// the vector stays indexed by CPU number.
std::vector<CpuTimes> parse_proc_stat(const std::string& text) {
  const uint64_t hz = user_hz();
  std::vector<CpuTimes> out;
  for (const auto& line : split_lines(text)) {
    if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || line[3] < '0' || line[3] > '9')
      continue;
    auto tok = split_ws(line);
    int cpu = static_cast<int>(parse_u64(tok[0].substr(3), 10, "/proc/stat", line));
    // Columns were added over the years (iowait 2.5, steal 2.6.11, guest...):
    // an older or trimmed line simply lacks the trailing ones.
    uint64_t v[8] = {};
    for (size_t i = 1; i < tok.size() && i <= 8; ++i)
      v[i - 1] = ticks_to_ns(parse_u64(tok[i], 10, "/proc/stat", line), hz);
    size_t old_size = out.size();
    CpuTimes& c = at_index(out, static_cast<size_t>(cpu));
    for (size_t i = old_size; i < out.size(); ++i) out[i].cpu = static_cast<int>(i);
    c = CpuTimes{cpu, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
  }
  return out;
}

std::vector<CpuTimes> read_proc_stat() { return parse_proc_stat(read_text_file("/proc/stat")); }

// Indexed like `b` (the later snapshot); a CPU absent from `a` has no start
// value, so its delta is 0 rather than its whole uptime.
std::vector<CpuTimes> cpu_delta(const std::vector<CpuTimes>& a, const std::vector<CpuTimes>& b) {
  std::vector<CpuTimes> out(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    out[i].cpu = b[i].cpu;
    if (i >= a.size()) continue;
    const CpuTimes &x = a[i], &y = b[i];
    out[i].user_ns = sub_clamped(x.user_ns, y.user_ns);
    out[i].nice_ns = sub_clamped(x.nice_ns, y.nice_ns);
    out[i].system_ns = sub_clamped(x.system_ns, y.system_ns);
    out[i].idle_ns = sub_clamped(x.idle_ns, y.idle_ns);
    out[i].iowait_ns = sub_clamped(x.iowait_ns, y.iowait_ns);
    out[i].irq_ns = sub_clamped(x.irq_ns, y.irq_ns);
    out[i].softirq_ns = sub_clamped(x.softirq_ns, y.softirq_ns);
    out[i].steal_ns = sub_clamped(x.steal_ns, y.steal_ns);
  }
  return out;
}

// The header names the columns ("CPU0 CPU1 ..."); map by name, not position.
std::vector<uint64_t> parse_softirqs(const std::string& text, const std::string& row) {
  auto lines = split_lines(text);
  if (lines.empty()) throw EnvError("/proc/softirqs is empty; expected a 'CPU0 CPU1 ...' header");
  std::vector<size_t> cpus;
  for (const auto& name : split_ws(lines[0])) {
    if (name.compare(0, 3, "CPU") != 0)
      throw EnvError("/proc/softirqs header column '" + name + "' is not CPU<n>");
    cpus.push_back(parse_u64(name.substr(3), 10, "/proc/softirqs", lines[0]));
  }
  const std::string key = row.ends_with(':') ? row : row + ":";
  std::string rows_seen;
  for (size_t i = 1; i < lines.size(); ++i) {
    auto tok = split_ws(lines[i]);
    if (tok.empty()) continue;
    if (tok[0] != key) {
      rows_seen += (rows_seen.empty() ? "" : ", ") + tok[0].substr(0, tok[0].size() - 1);
      continue;
    }
    std::vector<uint64_t> out;
    for (size_t c = 0; c + 1 < tok.size() && c < cpus.size(); ++c)
      at_index(out, cpus[c]) = parse_u64(tok[c + 1], 10, "/proc/softirqs", lines[i]);
    return out;
  }
  throw EnvError("/proc/softirqs has no row '" + row + "'; rows: " + rows_seen);
}

std::vector<uint64_t> read_softirqs(const std::string& row) {
  return parse_softirqs(read_text_file("/proc/softirqs"), row);
}

// Rows exist for online CPUs only, so row n is not CPU n once a CPU is
// offline; newer kernels print the CPU id as column 12 (net/core/net-procfs.c
// softnet_seq_show). Without it (11-column format) row index = CPU is the best guess.
std::vector<SoftnetCpu> parse_softnet_stat(const std::string& text) {
  std::vector<SoftnetCpu> out;
  size_t row = 0;
  for (const auto& line : split_lines(text)) {
    auto tok = split_ws(line);
    if (tok.empty()) continue;
    if (tok.size() < 3)
      throw EnvError("/proc/net/softnet_stat line '" + line +
                     "' has fewer than 3 columns (processed dropped time_squeeze)");
    size_t cpu = tok.size() >= 13 ? parse_u64(tok[12], 16, "/proc/net/softnet_stat", line) : row;
    at_index(out, cpu) = SoftnetCpu{parse_u64(tok[0], 16, "/proc/net/softnet_stat", line),
                                    parse_u64(tok[1], 16, "/proc/net/softnet_stat", line),
                                    parse_u64(tok[2], 16, "/proc/net/softnet_stat", line)};
    ++row;
  }
  return out;
}

std::vector<SoftnetCpu> read_softnet_stat() {
  return parse_softnet_stat(read_text_file("/proc/net/softnet_stat"));
}

// Each protocol is a header line of names followed by a line of values, both
// starting "Proto:". Only Ip and Udp are kept; "UdpLite:" is a different token.
std::map<std::string, uint64_t> parse_snmp(const std::string& text) {
  std::map<std::string, uint64_t> out;
  auto lines = split_lines(text);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    auto names = split_ws(lines[i]);
    if (names.empty() || (names[0] != "Ip:" && names[0] != "Udp:")) continue;
    auto values = split_ws(lines[i + 1]);
    if (values.empty() || values[0] != names[0]) continue;
    if (values.size() != names.size())
      throw EnvError("/proc/net/snmp " + names[0] + " has " + std::to_string(names.size() - 1) +
                     " names but " + std::to_string(values.size() - 1) + " values");
    const std::string prefix = names[0].substr(0, names[0].size() - 1) + ".";
    for (size_t k = 1; k < names.size(); ++k) {
      // Signed fields exist (Tcp MaxConn -1); none in Ip/Udp, but don't choke.
      if (!values[k].empty() && values[k][0] == '-') continue;
      out[prefix + names[k]] = parse_u64(values[k], 10, "/proc/net/snmp", lines[i + 1]);
    }
    ++i;  // skip the value line
  }
  return out;
}

std::map<std::string, uint64_t> read_snmp_this_thread() {
  return parse_snmp(read_text_file("/proc/thread-self/net/snmp"));
}

ThreadCpu read_thread_rusage() {
  struct rusage ru {};
  check_sys(::getrusage(RUSAGE_THREAD, &ru), "getrusage(RUSAGE_THREAD)");
  auto ns = [](const timeval& tv) {
    return static_cast<uint64_t>(tv.tv_sec) * 1'000'000'000ull +
           static_cast<uint64_t>(tv.tv_usec) * 1000ull;
  };
  return ThreadCpu{ns(ru.ru_utime), ns(ru.ru_stime), static_cast<uint64_t>(ru.ru_nvcsw),
                   static_cast<uint64_t>(ru.ru_nivcsw)};
}

}  // namespace zc
