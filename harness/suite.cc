#include "harness/suite.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>

#include "harness/errors.h"

namespace zc {
namespace {

using nlohmann::json;

std::string definitions_dir() { return std::string(ZC_SOURCE_DIR) + "/suites/definitions"; }

// Applies one scalar field of a sweep point to the spec.
void apply(TrialSpec& s, const std::string& key, const json& v, const std::string& where) {
  auto num = [&]() -> double {
    if (!v.is_number()) throw UsageError(where + ": " + key + " must be a number, got " + v.dump());
    return v.get<double>();
  };
  auto str = [&]() -> std::string {
    if (!v.is_string()) throw UsageError(where + ": " + key + " must be a string, got " + v.dump());
    return v.get<std::string>();
  };
  auto boolean = [&]() -> bool {
    if (!v.is_boolean()) throw UsageError(where + ": " + key + " must be true or false, got " + v.dump());
    return v.get<bool>();
  };
  if (key == "tx") s.tx = parse_driver_spec(str());
  else if (key == "rx") s.rx = parse_driver_spec(str());
  else if (key == "payload_bytes") s.payload_bytes = size_t(num());
  else if (key == "rate_pps") s.rate_pps = v.is_string() && v.get<std::string>() == "max" ? 0 : num();
  else if (key == "duration_s") s.duration_s = num();
  else if (key == "warmup_s") s.warmup_s = num();
  else if (key == "count") s.count = uint64_t(num());
  else if (key == "burst") s.burst = uint32_t(num());
  else if (key == "flows") s.flows = int(num());
  else if (key == "mtu") s.lab.mtu = int(num());
  else if (key == "gro") s.lab.gro = boolean();
  else if (key == "lab_mode") s.lab.mode = parse_lab_mode(str());
  else if (key == "ports") s.lab.port_pairs = int(num());
  else if (key == "traffic") s.traffic = str();
  else if (key == "generator") s.generator = parse_driver_spec(str());  // "pktgen:clone_skb=0"
  else if (key == "gen_opts") {
    if (!v.is_object()) throw UsageError(where + ": gen_opts must be an object of option: value, got " + v.dump());
    for (auto it = v.begin(); it != v.end(); ++it)
      s.generator.options[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  }
  else if (key == "claim" || key == "label" || key == "series") s.extra_params[key] = v;
  else throw UsageError(where + ": unknown field '" + key +
                        "'; accepted: tx, rx, payload_bytes, rate_pps, duration_s, warmup_s, count, burst, flows, "
                        "mtu, gro, lab_mode, ports, traffic, generator, gen_opts, claim, label, series");
}

void expand_entry(const json& entry, const TrialSpec& base, std::vector<TrialSpec>& out, const std::string& where) {
  std::vector<std::pair<std::string, std::vector<json>>> axes;
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    std::vector<json> values;
    if (it->is_array()) {
      for (const auto& v : *it) values.push_back(v);
      if (values.empty()) throw UsageError(where + ": field '" + it.key() + "' is an empty list");
    } else {
      values.push_back(*it);
    }
    axes.push_back({it.key(), values});
  }
  std::vector<size_t> idx(axes.size(), 0);
  while (true) {
    TrialSpec s = base;
    for (size_t a = 0; a < axes.size(); ++a) apply(s, axes[a].first, axes[a].second[idx[a]], where);
    out.push_back(s);
    size_t a = axes.size();
    while (a > 0) {
      --a;
      if (++idx[a] < axes[a].second.size()) break;
      idx[a] = 0;
      if (a == 0) return;
    }
    if (axes.empty()) return;
  }
}

}  // namespace

std::vector<std::string> available_suites() {
  std::vector<std::string> names;
  if (DIR* d = opendir(definitions_dir().c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 5 && n.substr(n.size() - 5) == ".json") names.push_back(n.substr(0, n.size() - 5));
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

json load_suite_file(const std::string& name_or_path) {
  std::string path = name_or_path.find('/') != std::string::npos ? name_or_path
                                                                   : definitions_dir() + "/" + name_or_path + ".json";
  std::ifstream in(path);
  if (!in) {
    std::string known;
    for (const auto& n : available_suites()) known += (known.empty() ? "" : ", ") + n;
    throw UsageError("suite '" + name_or_path + "' not found (" + path + "); available: " + known);
  }
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw UsageError("suite file " + path + " is not valid JSON: " + e.what());
  }
}

SuiteDefinition expand_suite(const json& doc, const std::string& lab_mode) {
  SuiteDefinition def;
  def.name = doc.value("name", "unnamed");
  def.description = doc.value("description", "");
  def.repetitions = doc.value("repetitions", 3);
  TrialSpec base;
  base.suite = def.name;
  std::string where = "suite " + def.name;
  if (doc.contains("defaults"))
    for (auto it = doc["defaults"].begin(); it != doc["defaults"].end(); ++it) apply(base, it.key(), *it, where);
  if (!lab_mode.empty()) base.lab.mode = parse_lab_mode(lab_mode);
  if (doc.contains("trials"))
    for (size_t i = 0; i < doc["trials"].size(); ++i)
      expand_entry(doc["trials"][i], base, def.trials, where + " trial " + std::to_string(i));
  // A lab mode given on the command line wins over the suite's entries too.
  if (!lab_mode.empty())
    for (auto& t : def.trials) t.lab.mode = parse_lab_mode(lab_mode);
  return def;
}

}  // namespace zc
