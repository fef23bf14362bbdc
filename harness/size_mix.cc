#include "harness/size_mix.h"

#include <algorithm>

#include "harness/errors.h"
#include "harness/params.h"
#include "harness/trial.h"

namespace zc {

SizeCycle::SizeCycle(std::vector<Entry> entries) : entries_(std::move(entries)), current_(entries_.size(), 0) {
  for (const auto& e : entries_) period_ += long(e.weight);
  if (entries_.empty() || period_ <= 0) throw InternalError("a size mix needs at least one entry of weight > 0");
}

// nginx's smooth weighted round-robin: every step each entry gains its
// weight, the largest current value is chosen and loses the total.
size_t SizeCycle::next_index() {
  size_t best = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    current_[i] += long(entries_[i].weight);
    if (current_[i] > current_[best]) best = i;
  }
  current_[best] -= period_;
  return best;
}

size_t SizeCycle::largest() const {
  size_t m = 0;
  for (const auto& e : entries_) m = std::max(m, e.payload_bytes);
  return m;
}

std::shared_ptr<const SizeMix> SizeMix::parse(const std::string& text) {
  if (text.empty()) return nullptr;
  auto m = std::make_shared<SizeMix>();
  m->text_ = text;
  std::vector<SizeCycle::Entry> cycle;
  uint64_t period = 0;
  for (const auto& e : parse_size_mix("--size", text)) {
    m->frames_.push_back(e.frame_bytes);
    m->weights_.push_back(e.weight);
    cycle.push_back({e.frame_bytes - kEthernetOverhead, e.weight});
    period += e.weight;
  }
  if (m->frames_.size() > 255)
    throw UsageError("--size " + text.substr(0, 40) + "...: a mix of " + std::to_string(m->frames_.size()) +
                     " sizes; accepted: at most 255 (merge equal frame sizes)");
  if (period > kMaxPeriod)
    throw UsageError("--size " + text + ": the weights sum to " + std::to_string(period) + "; accepted: at most " +
                     std::to_string(kMaxPeriod) + " (divide the weights by a common factor)");
  SizeCycle c(cycle);
  m->order_.resize(size_t(period));
  for (auto& o : m->order_) o = uint8_t(c.next_index());
  return m;
}

uint64_t SizeMix::count_below(uint64_t n, size_t entry) const {
  const uint64_t period = order_.size();
  uint64_t c = n / period * weights_[entry];
  for (uint64_t i = 0; i < n % period; ++i) c += order_[size_t(i)] == entry;
  return c;
}

size_t SizeMix::entry_of_length(size_t len) const {
  for (size_t i = 0; i < frames_.size(); ++i)
    if (payload_bytes(i) == len) return i;
  return frames_.size();
}

size_t SizeMix::payload_bytes(size_t i) const { return frames_[i] - kEthernetOverhead; }

size_t SizeMix::largest_payload() const {
  return *std::max_element(frames_.begin(), frames_.end()) - kEthernetOverhead;
}

size_t SizeMix::smallest_payload() const {
  return *std::min_element(frames_.begin(), frames_.end()) - kEthernetOverhead;
}

double SizeMix::mean_frame_bytes() const {
  double bytes = 0, n = 0;
  for (size_t i = 0; i < frames_.size(); ++i) bytes += double(frames_[i]) * weights_[i], n += weights_[i];
  return bytes / n;
}

nlohmann::json size_table_json(const SizeMix& mix, const std::vector<uint64_t>& sent,
                               const std::vector<SizeCounts>& seen) {
  nlohmann::json t = nlohmann::json::object();
  for (size_t i = 0; i < mix.entries(); ++i) {
    nlohmann::json& e = t[std::to_string(mix.frame_bytes(i))];
    // A mix may name one frame size twice (64:3,64:1): one row, summed.
    if (e.is_null()) e = {{"sent", sent.empty() ? nlohmann::json(nullptr) : nlohmann::json(0)}, {"received", 0}, {"corrupt", 0}};
    if (!sent.empty()) e["sent"] = e["sent"].get<uint64_t>() + (i < sent.size() ? sent[i] : 0);
    if (seen.empty()) {  // the sinks checked no headers: per size unknown
      e["received"] = nullptr, e["corrupt"] = nullptr;
      continue;
    }
    e["received"] = e["received"].get<uint64_t>() + seen[i].received;
    e["corrupt"] = e["corrupt"].get<uint64_t>() + seen[i].corrupt;
  }
  return t;
}

}  // namespace zc
