#include "harness/context.h"

#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "harness/perf_counters.h"
#include "harness/registry.h"
#include "harness/trial.h"
#include "harness/vocabulary.h"

namespace zc {
namespace {

std::string first_match(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    auto pos = line.find_first_of(":=", key.size());
    if (pos == std::string::npos) continue;
    std::string v = line.substr(pos + 1);
    v.erase(0, v.find_first_not_of(" \t\""));
    while (!v.empty() && (v.back() == '"' || v.back() == ' ')) v.pop_back();
    return v;
  }
  return "";
}

// First line of a file, trailing newline dropped; "" when unreadable.
std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The settings that shape the receive and transmit paths a trial measures:
// two runs that differ here are not comparable (reports/compare.py). Read in
// zcbench's own network namespace; the lab's namespaces start from the
// kernel's defaults for the per-namespace ones.
constexpr const char* kPathSysctls[] = {
    "net/core/rmem_max",         "net/core/rmem_default",     "net/core/wmem_max",
    "net/core/wmem_default",     "net/core/netdev_max_backlog", "net/core/netdev_budget",
    "net/core/netdev_budget_usecs", "net/core/dev_weight",    "net/core/busy_poll",
    "net/core/busy_read",        "net/core/bpf_jit_enable",   "net/core/optmem_max",
    "net/ipv4/udp_mem",          "net/ipv4/udp_rmem_min",     "net/ipv4/udp_wmem_min",
    "net/ipv4/udp_early_demux",  "net/core/rps_sock_flow_entries",
};

nlohmann::json path_sysctls() {
  nlohmann::json j = nlohmann::json::object();
  for (const char* k : kPathSysctls) {
    std::string v = read_line(std::string("/proc/sys/") + k);
    for (auto& c : v)
      if (c == '\t') c = ' ';
    std::string key = k;
    for (auto& c : key)
      if (c == '/') c = '.';
    j[key] = v.empty() ? nlohmann::json(nullptr) : nlohmann::json(v);
  }
  return j;
}

// Version of each library as loaded into this process: the real file behind
// the soname (liburing.so.2 -> liburing.so.2.3 gives "2.3"). A library linked
// statically or not loaded says so instead of guessing.
nlohmann::json library_versions() {
  static const char* kLibs[] = {"liburing", "libbpf", "libxdp", "libpfm"};
  nlohmann::json j = nlohmann::json::object();
  for (const char* l : kLibs) j[l] = "not loaded";
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto& out = *static_cast<nlohmann::json*>(data);
        if (!info->dlpi_name || !*info->dlpi_name) return 0;
        char real[PATH_MAX];
        if (!realpath(info->dlpi_name, real)) return 0;
        const char* base = strrchr(real, '/');
        base = base ? base + 1 : real;
        for (const char* l : kLibs) {
          std::string prefix = std::string(l) + ".so.";
          if (strncmp(base, prefix.c_str(), prefix.size()) == 0) out[l] = base + prefix.size();
        }
        return 0;
      },
      &j);
  return j;
}

}  // namespace

std::string utc_now_iso8601() {
  time_t t = time(nullptr);
  tm g{};
  gmtime_r(&t, &g);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  return buf;
}

nlohmann::json host_context() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string mem = first_match("/proc/meminfo", "MemTotal");
  uint64_t mem_kb = mem.empty() ? 0 : std::stoull(mem);
  std::string flags = first_match("/proc/cpuinfo", "flags");
  return {{"hostname", host},
          {"cpu_model", first_match("/proc/cpuinfo", "model name")},
          {"cpu_count", sysconf(_SC_NPROCESSORS_ONLN)},
          {"kernel", kernel_release()},
          {"distro", first_match("/etc/os-release", "PRETTY_NAME")},
          {"memory_bytes", mem_kb * 1024},
          {"virtualized", flags.find("hypervisor") != std::string::npos},
          // What makes two runs comparable beyond the CPU model and kernel.
          {"cpu_governor", read_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")},
          {"smt", read_line("/sys/devices/system/cpu/smt/active") == "1"   ? nlohmann::json(true)
                  : read_line("/sys/devices/system/cpu/smt/active") == "0" ? nlohmann::json(false)
                                                                           : nlohmann::json(nullptr)},
          {"kernel_cmdline", read_line("/proc/cmdline")},
          {"sysctls", path_sysctls()},
          {"libraries", library_versions()}};
}

nlohmann::json tool_context() { return {{"name", "zcbench"}, {"version", ZC_VERSION}, {"git_sha", ZC_GIT_SHA}}; }

nlohmann::json transports_context() {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& d : all_drivers()) arr.push_back(d.to_json(true));
  return arr;
}

nlohmann::json generators_context() {
  nlohmann::json arr = nlohmann::json::array(
      {{{"name", kFloodGenerator}, {"direction", "generator"}, {"usable", true}, {"reason", ""},
        {"options", nlohmann::json::array()},
        {"description", "FPGA-style constant-rate UDP flood through any TX transport (--tx)"}}});
  for (const auto& g : all_generators()) arr.push_back(g.to_json(true));
  return arr;
}

nlohmann::json run_document(const std::string& run_id, const std::string& status, const std::string& started_at,
                            const std::vector<std::string>& argv, nlohmann::json records) {
  return {{"schema_version", kSchemaVersion},
          {"run_id", run_id},
          {"status", status},
          {"started_at", started_at},
          {"finished_at", utc_now_iso8601()},
          {"context",
           {{"host", host_context()},
            {"tool", tool_context()},
            {"pmu", probe_pmu()},
            {"transports", transports_context()},
            {"generators", generators_context()},
            {"vocabularies", vocabularies_json()},
            {"options", {{"argv", argv}}}}},
          {"records", std::move(records)}};
}

}  // namespace zc
