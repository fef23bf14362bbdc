#include "harness/context.h"

#include <unistd.h>

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
          {"virtualized", flags.find("hypervisor") != std::string::npos}};
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
