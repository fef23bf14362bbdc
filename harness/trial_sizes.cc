// raw.sizes of a lab trial with a frame-size mix (harness/size_mix.h).
#include "harness/size_mix.h"
#include "harness/trial_run.h"

namespace zc {

nlohmann::json trial_size_table(const TrialRun& run) {
  const auto mix = SizeMix::parse(run.spec.size_mix);
  if (!mix) return nullptr;
  std::vector<uint64_t> sent(mix->entries(), 0);
  for (const auto& w : run.gens) {
    const nlohmann::json& flood = w->driver_stats.value("flood", nlohmann::json::object());
    const nlohmann::json& by = flood.value("sent_by_size", nlohmann::json::array());
    for (size_t i = 0; i < by.size() && i < sent.size(); ++i) sent[i] += by[i].get<uint64_t>();
  }
  return size_table_json(*mix, sent, run.acct->by_size());
}

}  // namespace zc
