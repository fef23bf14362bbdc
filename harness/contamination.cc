// Contamination of a trial's lab CPUs by other work (harness/contamination.h).
#include "harness/contamination.h"

#include <cstdint>
#include <set>
#include <string>

namespace zc {
namespace {

using nlohmann::json;

uint64_t u64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<uint64_t>() : 0;
}

// The lab's CPUs: the worker lists when the trial has them (sink_cpus /
// gen_cpus, "0,2-3" strings or arrays), else the single sink_cpu / gen_cpu.
void add_cpus(std::set<int>& out, const json& v) {
  if (v.is_number_integer()) {
    if (v.get<int>() >= 0) out.insert(v.get<int>());
  } else if (v.is_array()) {
    for (const auto& e : v) add_cpus(out, e);
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    size_t start = 0;
    while (start < s.size()) {
      size_t comma = s.find(',', start);
      std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      size_t dash = item.find('-');
      try {
        int lo = std::stoi(item.substr(0, dash));
        int hi = dash == std::string::npos ? lo : std::stoi(item.substr(dash + 1));
        for (int c = lo; c <= hi && c - lo < 4096; ++c) out.insert(c);
      } catch (const std::exception&) {
        // not a CPU list: the params helper validates these; nothing to add here
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
}

std::set<int> lab_cpus(const json& params) {
  std::set<int> cpus;
  for (const char* list : {"sink_cpus", "gen_cpus"})
    if (params.contains(list)) add_cpus(cpus, params[list]);
  if (cpus.empty())
    for (const char* one : {"sink_cpu", "gen_cpu"})
      if (params.contains(one)) add_cpus(cpus, params[one]);
  return cpus;
}

// A thread's task-clock over the window, or -1 when it was not counted.
double task_clock(const json& raw, const char* who) {
  if (!raw.contains("perf") || !raw["perf"].contains(who) || !raw["perf"][who].is_array()) return -1;
  for (const auto& e : raw["perf"][who])
    if (e.value("name", "") == "task-clock" && e.contains("value") && e["value"].is_number())
      return e["value"].get<double>();
  return -1;
}

}  // namespace

json contamination_json(const json& params, const json& raw) {
  json c = {{"steal_ns", nullptr},    {"foreign_ns", nullptr},
            {"lab_cpus", json::array()}, {"ratio", nullptr},
            {"max_ratio", kContaminationMaxRatio}, {"contaminated", false},
            {"reason", ""}};
  const uint64_t window_ns = u64(raw, "window_ns");
  const std::set<int> cpus = lab_cpus(params);
  for (int cpu : cpus) c["lab_cpus"].push_back(cpu);
  if (!window_ns || cpus.empty() || !raw.contains("cpu_delta") || !raw["cpu_delta"].is_array()) {
    c["reason"] = "no measurement window or lab CPUs in the record";
    return c;
  }
  uint64_t steal = 0, task = 0;
  for (const auto& d : raw["cpu_delta"]) {
    if (!cpus.count(d.value("cpu", -1))) continue;
    steal += u64(d, "steal_ns");
    task += u64(d, "user_ns") + u64(d, "nice_ns") + u64(d, "system_ns");
  }
  c["steal_ns"] = steal;
  const double sink = task_clock(raw, "sink"), gen = task_clock(raw, "gen");
  double lost = double(steal);
  if (sink >= 0 && gen >= 0) {
    const double foreign = double(task) > sink + gen ? double(task) - sink - gen : 0.0;
    c["foreign_ns"] = uint64_t(foreign);
    lost += foreign;
  } else {
    c["reason"] = "the lab threads' task-clock is missing (perf software events): steal only";
  }
  const double ratio = lost / (double(window_ns) * double(cpus.size()));
  c["ratio"] = ratio;
  c["contaminated"] = ratio > kContaminationMaxRatio;
  return c;
}

}  // namespace zc
