// The harness's per-packet accounting, called by every sink for every packet.
//
// Drivers only move packets; this class answers "how many, and which": it
// decodes the flood header, tracks per-flow sequences (loss, reordering,
// duplicates), verifies integrity and records one-way latency. With
// AccountingMode::count it only counts, so the harness's own cost can be
// measured against it in the same run (DESIGN.md "Overhead"). With
// AccountingMode::pktgen it reads kernel pktgen's own header instead (no flood
// header in those packets): magic 0xbe9be955 and a 32-bit seq_num, big endian,
// at the start of the UDP payload.
//
// Threading: one sink thread writes; the meter thread reads the atomic
// counters at any time (relaxed loads), everything else after the sink stops.
#pragma once
#include <algorithm>
#include <atomic>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/flood_header.h"

namespace zc {

struct SeqFormat;
class SeqStreams;  // harness/seq_format.h

// seq: a foreign generator's own counter, located by a SeqFormat
// (harness/seq_format.h; set_seq_format before the first packet).
enum class AccountingMode { full, count, pktgen, seq };
AccountingMode parse_accounting_mode(const std::string& s);
const char* accounting_mode_name(AccountingMode m);

// Log-linear histogram (16 sub-buckets per power of two: <= 6.25 % error).
class LatencyHistogram {
 public:
  LatencyHistogram() : buckets_(64 * 16, 0) {}
  void add(uint64_t ns) {
    ++buckets_[index(ns)];
    ++count_;
    if (ns > max_) max_ = ns;
  }
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // Upper bound of the bucket holding quantile q (0..1); 0 when empty.
  uint64_t quantile(double q) const;
  static size_t index(uint64_t ns);
  static uint64_t bucket_upper(size_t idx);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

// Per-flow sequence tracking with a sliding window for duplicate detection.
class SequenceTracker {
 public:
  static constexpr uint64_t kWindow = 4096;
  SequenceTracker() : seen_(kWindow / 64, 0) {}
  void on_seq(uint64_t seq);

  uint64_t unique = 0;      // distinct sequence numbers seen (best effort beyond the window)
  uint64_t duplicates = 0;
  uint64_t reordered = 0;   // arrived after a higher sequence number
  uint64_t too_old = 0;     // older than the window: counted unique, not checked for duplicates
  bool started = false;
  uint64_t highest = 0;

  // Sequence numbers below `highest` never seen (0-based flows): highest+1-unique.
  uint64_t gaps() const { return started ? highest + 1 - std::min(unique, highest + 1) : 0; }

 private:
  bool test_and_set(uint64_t seq);
  void advance_to(uint64_t seq);
  std::vector<uint64_t> seen_;
};

class Accounting {
 public:
  Accounting(AccountingMode mode, int flows);

  AccountingMode mode() const { return mode_; }

  // Once per batch: the receive time used for latency of the batch's packets.
  void begin_batch();
  void on_packet(const uint8_t* payload, size_t len) {
    packets_.store(packets_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    bytes_ += len;
    if (mode_ == AccountingMode::full) inspect(payload, len);
    else if (mode_ == AccountingMode::pktgen) inspect_pktgen(payload, len);
    else if (mode_ == AccountingMode::seq) inspect_seq(payload, len);
  }
  // AccountingMode::seq: where the counter is (defined in harness/seq_format.cc).
  void set_seq_format(const SeqFormat& f);

  // For sinks that only learn counts, never payloads (xdp_drop's BPF
  // counter): `n` packets of `bytes` UDP payload in all. They count as
  // received and unique but unchecked (sequence.counted_only).
  void on_counted(uint64_t n, uint64_t bytes) {
    packets_.store(packets_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    bytes_ += bytes;
    counted_only_ += n;
  }

  // Latency is recorded only for packets received inside [start, end) — the
  // measurement window, set by the meter thread.
  void set_latency_window(uint64_t start_ns, uint64_t end_ns) {
    window_start_.store(start_ns, std::memory_order_relaxed);
    window_end_.store(end_ns, std::memory_order_relaxed);
  }

  uint64_t packets() const { return packets_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_; }

  // After the sink stopped.
  uint64_t unique() const;  // full: distinct flood packets; count, pktgen: all packets
  nlohmann::json sequence_json() const;
  nlohmann::json latency_json() const;
  const LatencyHistogram& latency() const { return latency_; }
  uint64_t corrupt() const { return corrupt_; }
  uint64_t duplicates() const;
  uint64_t foreign() const { return foreign_; }

 private:
  void inspect(const uint8_t* payload, size_t len);
  void inspect_pktgen(const uint8_t* payload, size_t len);
  void inspect_seq(const uint8_t* payload, size_t len);  // harness/seq_format.cc
  std::shared_ptr<SeqStreams> seq_;  // AccountingMode::seq only

  AccountingMode mode_;
  std::atomic<uint64_t> packets_{0};
  uint64_t bytes_ = 0;
  uint64_t batch_ns_ = 0;
  std::atomic<uint64_t> window_start_{UINT64_MAX};
  std::atomic<uint64_t> window_end_{UINT64_MAX};
  std::vector<SequenceTracker> flows_;
  LatencyHistogram latency_;
  uint64_t corrupt_ = 0;   // bad magic or checksum
  uint64_t foreign_ = 0;   // too short, or a flow id we did not send
  uint64_t counted_only_ = 0;  // via on_counted: no header seen
  // pktgen mode: one stream (seq_num is per device, not per flow). A repeated
  // seq_num is by design with clone_skb or burst > 1, so it counts as a
  // repeat, never as a duplicate; gaps are exact either way.
  SequenceTracker pktgen_seq_;
  uint64_t pktgen_headers_ = 0;
};

}  // namespace zc
