// The run's context block: host, kernel, tool version, PMU, transports.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zc {

nlohmann::json host_context();
nlohmann::json tool_context();
nlohmann::json transports_context();
nlohmann::json generators_context();  // every driver with usable/reason
std::string utc_now_iso8601();
// A whole run.json document around `records` (used by `zcbench run --json`).
nlohmann::json run_document(const std::string& run_id, const std::string& status, const std::string& started_at,
                            const std::vector<std::string>& argv, nlohmann::json records);

}  // namespace zc
