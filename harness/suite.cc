#include "harness/suite.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>

#include "harness/errors.h"
#include "harness/params.h"

namespace zc {
namespace {

using nlohmann::json;

std::string definitions_dir() { return std::string(ZC_SOURCE_DIR) + "/suites/definitions"; }

// A sweep point's fields, transports and generators first (params.h).
void apply_fields(TrialSpec& s, const std::vector<std::pair<std::string, const json*>>& fields,
                  const std::string& where) {
  for (bool first : {true, false})
    for (const auto& [key, value] : fields)
      if (suite_key_applies_first(key) == first) apply_suite_field(s, key, *value, where);
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
    std::vector<std::pair<std::string, const json*>> point;
    for (size_t a = 0; a < axes.size(); ++a) point.push_back({axes[a].first, &axes[a].second[idx[a]]});
    apply_fields(s, point, where);
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
  if (doc.contains("defaults")) {
    if (!doc["defaults"].is_object()) throw UsageError(where + ": defaults must be an object of field: value");
    std::vector<std::pair<std::string, const json*>> fields;
    for (auto it = doc["defaults"].begin(); it != doc["defaults"].end(); ++it) fields.push_back({it.key(), &*it});
    apply_fields(base, fields, where);
  }
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
