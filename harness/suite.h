// Suites are data: suites/definitions/<name>.json declares a sweep; this
// expands it into trial specs (cartesian product of list-valued fields).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/trial.h"

namespace zc {

struct SuiteDefinition {
  std::string name;
  std::string description;
  int repetitions = 3;
  std::vector<TrialSpec> trials;  // one repetition's worth, in declared order
};

// Expands a suite document; `lab_mode` overrides the suite's default unless
// empty. Throws UsageError naming the bad field and value.
SuiteDefinition expand_suite(const nlohmann::json& doc, const std::string& lab_mode);
// Reads suites/definitions/<name>.json (source tree) or an explicit path.
nlohmann::json load_suite_file(const std::string& name_or_path);
std::vector<std::string> available_suites();

}  // namespace zc
