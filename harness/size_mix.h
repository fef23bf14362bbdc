// Frame-size mixes (IMIX, `--size 64:7,576:4,1518:1`): one definition of
// which size each flood packet has, read by the generator, the TX drivers'
// buffers and every sink's accounting.
//
// Packet `seq` of every flow has the payload size at position seq % period
// of one SizeCycle period. So the size is a function of the flood header
// alone: a sink knows the length each packet must have (a truncated or
// mis-sized one is corrupt), a refused packet resent with the same sequence
// number keeps its size, and the generator's sent count per size is exact.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zc {

// A deterministic weighted cycle: smooth weighted round-robin, so over every
// period of sum(weights) packets each size appears exactly `weight` times,
// spread out (64:7,576:4,1518:1 never sends seven 64-byte frames back to
// back). Sizes are UDP payload bytes here (frame - kEthernetOverhead).
class SizeCycle {
 public:
  struct Entry {
    size_t payload_bytes;
    unsigned weight;
  };
  explicit SizeCycle(std::vector<Entry> entries);
  size_t next() { return entries_[next_index()].payload_bytes; }
  size_t next_index();  // which entry next() returns
  size_t period() const { return period_; }
  size_t largest() const;

 private:
  std::vector<Entry> entries_;
  std::vector<long> current_;
  long period_ = 0;
};

// Per mix entry, what one sink saw.
struct SizeCounts {
  uint64_t received = 0;  // valid flood packets of exactly this size
  uint64_t corrupt = 0;   // packets whose sequence number says this size, but wrong length or checksum
};

class SizeMix {
 public:
  // A period holds at most this many packets (the table costs a byte each):
  // larger weight sums are a usage error naming the fix.
  static constexpr size_t kMaxPeriod = size_t(1) << 20;
  // The mix as TrialSpec::size_mix spells it (frame bytes : weight); null
  // when `text` is empty (one size per trial). Throws UsageError.
  static std::shared_ptr<const SizeMix> parse(const std::string& text);

  size_t entries() const { return frames_.size(); }
  size_t frame_bytes(size_t i) const { return frames_[i]; }
  size_t payload_bytes(size_t i) const;
  size_t period() const { return order_.size(); }
  size_t index_at(uint64_t seq) const { return order_[size_t(seq % order_.size())]; }
  size_t payload_at(uint64_t seq) const { return payload_bytes(index_at(seq)); }
  // How many of the sequence numbers 0..n-1 have entry `entry`: a flow whose
  // highest number is n-1 was sent that many packets of that size.
  uint64_t count_below(uint64_t n, size_t entry) const;
  // The entry whose payload is `len` bytes (the first, when a size is named
  // twice); entries() when no entry has that length.
  size_t entry_of_length(size_t len) const;
  size_t largest_payload() const;
  size_t smallest_payload() const;
  // Mean Ethernet frame over one period: what bit rates are computed with.
  double mean_frame_bytes() const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<size_t> frames_;
  std::vector<unsigned> weights_;
  std::vector<uint8_t> order_;  // entry index of each position of a period (<= 255 entries)
};

// raw.sizes: {"<frame bytes>": {"sent", "received", "corrupt"}} for the
// mix's entries; `sent` per entry from the generator side (empty: unknown,
// null, e.g. a sink fed by a generator not ours); `seen` empty: received and
// corrupt null (the sinks checked no headers).
nlohmann::json size_table_json(const SizeMix& mix, const std::vector<uint64_t>& sent,
                               const std::vector<SizeCounts>& seen);

}  // namespace zc

namespace zc {

struct TrialRun;  // harness/trial_run.h
// The trial's raw.sizes (null without a mix): sent per size from the flood
// workers' own counts (exact), received and corrupt from the sinks'
// accounting (null when the sinks check no headers, e.g. accounting=count).
nlohmann::json trial_size_table(const TrialRun& run);

}  // namespace zc
