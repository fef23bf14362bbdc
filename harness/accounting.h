// The harness's per-packet accounting, called by every sink for every packet.
//
// Drivers only move packets; this class answers "how many, and which": it
// decodes the flood header, tracks per-flow sequences (loss, reordering,
// duplicates), verifies integrity and records one-way latency. With
// AccountingMode::count it only counts, so the harness's own cost can be
// measured against it in the same run (docs/design.md "Overhead"). With
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
#include <memory>
#include <string>
#include <vector>

#include "harness/flood_header.h"
#include "harness/size_mix.h"
#include "harness/hw_stamps.h"
#include "harness/timestamps.h"

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
  void merge(const LatencyHistogram& o);
  // Upper bound of the bucket holding quantile q (0..1); 0 when empty.
  uint64_t quantile(double q) const;
  static size_t index(uint64_t ns);
  static uint64_t bucket_upper(size_t idx);
  const std::vector<uint64_t>& buckets() const { return buckets_; }

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

// Gaps between consecutive hardware RX stamps one sink worker sees. One
// clock, the NIC's PHC, so valid without any clock sync (harness/hw_stamps.h).
// A stamp earlier than the one before (another queue's packets interleaved,
// a PHC step) is counted in backwards(), not histogrammed; the next gap is
// measured from it.
class NicInterarrival {
 public:
  void add(uint64_t hw_ns) {
    if (last_ns_ && hw_ns < last_ns_) ++backwards_;
    else if (last_ns_) gaps_.add(hw_ns - last_ns_);
    last_ns_ = hw_ns;
  }
  // Workers' histograms add; their streams stay their own.
  void merge(const NicInterarrival& o) { gaps_.merge(o.gaps_), backwards_ += o.backwards_; }
  const LatencyHistogram& gaps() const { return gaps_; }
  uint64_t backwards() const { return backwards_; }

 private:
  LatencyHistogram gaps_;
  uint64_t last_ns_ = 0;
  uint64_t backwards_ = 0;
};

// The hardware half of the latency split (--hw-timestamps on a named
// interface; docs/results-format.md "Hardware stamps").
struct HwSplit {
  LatencyHistogram nic_kernel, kernel_user;  // split_hw_latency (harness/hw_stamps.h)
  NicInterarrival interarrival;
  uint64_t order_violations = 0;  // converted stamps out of order: not split
  void merge(const HwSplit& o);
};
// raw.latency_ns.nic_interarrival, and nic_kernel / kernel_user when a PHC
// offset was measured, with raw.latency_ns.nic_split saying which clock each
// part uses or why the split is unavailable. `phc` null: none was set up.
void add_hw_split_json(nlohmann::json& latency, const HwSplit& hw, const StampCounts& counts, const PhcClock* phc);

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

// Every sequence number of one flow seen by one sink worker, exactly: a
// bitmap in chunks of 64 Ki numbers, a chunk's bits freed once all are set
// (so a lossless flow costs a few bytes per 64 Ki packets, a lossy one at
// most 1 bit per number). Used when several workers share a flow: their sets'
// union is what arrived (trial-level loss, duplicates and gaps are exact
// however the kernel spread the flow; docs/accounting-workers.md).
class SeqSet {
 public:
  static constexpr uint64_t kChunkBits = 65536;
  // Sequence numbers at or above this are not tracked (a flow of 2^36
  // packets is beyond any trial's bound; pktgen's are 32-bit): counted apart.
  static constexpr uint64_t kMaxTracked = 1ull << 36;
  // True when seq was not in the set yet.
  bool insert(uint64_t seq);
  bool contains(uint64_t seq) const;
  uint64_t size() const { return size_; }
  uint64_t untracked() const { return untracked_; }
  // Highest number inserted (valid when size() > 0).
  uint64_t highest() const { return highest_; }
  // Union: this |= o.
  void merge(const SeqSet& o);

 private:
  struct Chunk {
    std::unique_ptr<uint64_t[]> bits;  // null: empty, or full when count == kChunkBits
    uint32_t count = 0;
  };
  std::vector<Chunk> chunks_;
  uint64_t size_ = 0;
  uint64_t untracked_ = 0;
  uint64_t highest_ = 0;
};

class AccountingSet;

class Accounting {
 public:
  Accounting(AccountingMode mode, int flows);

  AccountingMode mode() const { return mode_; }

  // Once per batch: the receive time used for latency of the batch's packets.
  void begin_batch();
  void on_packet(const uint8_t* payload, size_t len) {
    packets_.store(packets_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    bytes_ += len;
    if (len_mix_) bin_length(len);
    if (mode_ == AccountingMode::full) inspect(payload, len);
    else if (mode_ == AccountingMode::pktgen) inspect_pktgen(payload, len);
    else if (mode_ == AccountingMode::seq) inspect_seq(payload, len);
  }
  // A packet with the kernel's RX stamps (harness/timestamps.h): its latency
  // also splits into stack and wake-up parts (full mode, in the window).
  void on_packet(const uint8_t* payload, size_t len, const KernelStamp& k) {
    stamp_ = &k;
    count_stamp(k);
    if (k.hardware_ns) split_hardware(k);
    on_packet(payload, len);
    stamp_ = nullptr;
  }
  // A datagram the sink's buffer cut short (MSG_TRUNC): received, and corrupt
  // whatever its header says, since its tail never reached user space; never
  // a good packet (no sequence, no latency). `len` is what the buffer holds.
  void on_truncated(const uint8_t* payload, size_t len);
  // --hw-timestamps: the NIC's PHC (harness/hw_stamps.h), whose offset
  // converts hardware stamps for the nic->kernel split; not owned, set
  // before the first packet, used from the sink thread only.
  void set_phc(PhcClock* phc) { phc_ = phc; }
  // AccountingMode::seq: where the counter is (defined in harness/seq_format.cc).
  void set_seq_format(const SeqFormat& f);
  // A frame-size mix (harness/size_mix.h), full mode: a flood packet must
  // have the length its sequence number gives, else it is corrupt; counts
  // per mix entry (by_size()). Before the first packet.
  void set_size_mix(std::shared_ptr<const SizeMix> mix);
  const std::vector<SizeCounts>& by_size() const { return by_size_; }
  // A declared mix where no flood header says each packet's size (an
  // external source: accounting count or seq): packets are binned by their
  // payload length into by_size()'s `received`; a length the mix does not
  // name counts in length_unmatched(). Before the first packet.
  void set_length_bins(std::shared_ptr<const SizeMix> mix);
  uint64_t length_unmatched() const { return length_unmatched_; }
  // Full mode, after the sink stopped: per flow, highest sequence number + 1
  // (0 for a flow never seen): what the flood sent that flow, as far as its
  // headers show (harness/size_mix.h count_below gives it per size).
  std::vector<uint64_t> flow_expected() const;

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
  const LatencyHistogram& latency_stack() const { return stack_; }
  const LatencyHistogram& latency_wakeup() const { return wakeup_; }
  const StampCounts& stamps() const { return stamps_; }
  const HwSplit& hw_split() const { return hw_; }
  // A sink that asked for stamps and got a message without (or with MSG_CTRUNC).
  void on_stamp_truncated() { ++stamps_.control_truncated; }
  uint64_t corrupt() const { return corrupt_; }
  uint64_t duplicates() const;
  uint64_t foreign() const { return foreign_; }

 private:
  friend class AccountingSet;
  void inspect(const uint8_t* payload, size_t len);
  void inspect_pktgen(const uint8_t* payload, size_t len);
  // AccountingSet with several workers: keep the exact sets too.
  void track_exact() { exact_ = true, sets_.resize(flows_.size()); }
  void inspect_seq(const uint8_t* payload, size_t len);  // harness/seq_format.cc
  std::shared_ptr<SeqStreams> seq_;  // AccountingMode::seq only
  void count_stamp(const KernelStamp& k) {
    if (k.software_ns) ++stamps_.software;
    if (k.hardware_ns) ++stamps_.hardware;
    if (!k.software_ns && !k.hardware_ns) ++stamps_.unstamped;
  }
  void split(uint64_t tx_ns);  // latency of the stamped packet inspect() is on
  void split_hardware(const KernelStamp& k);  // any packet with a hardware stamp, any mode
  HwSplit hw_;
  PhcClock* phc_ = nullptr;
  const KernelStamp* stamp_ = nullptr;  // of the packet being accounted
  int64_t batch_offset_ns_ = 0;         // CLOCK_REALTIME - CLOCK_MONOTONIC, read once per batch
  RealtimeOffset realtime_offset_;      // ... and held at its narrowest read (harness/timestamps.h)
  bool batch_offset_valid_ = false;
  LatencyHistogram stack_, wakeup_;
  StampCounts stamps_;

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
  bool exact_ = false;
  std::vector<SeqSet> sets_;  // per flow, when exact_
  std::shared_ptr<const SizeMix> mix_;
  std::vector<SizeCounts> by_size_;  // per mix entry, when mix_ or len_mix_
  std::shared_ptr<const SizeMix> len_mix_;  // set_length_bins
  uint64_t length_unmatched_ = 0;
  void bin_length(size_t len) {
    const size_t e = len_mix_->entry_of_length(len);
    if (e < by_size_.size()) ++by_size_[e].received;
    else ++length_unmatched_;
  }
  SeqSet pktgen_set_;         // pktgen mode, when exact_
};

// The trial's accounting over its sink workers: one Accounting per worker
// (each written by its own sink thread only), merged when asked. With one
// worker every figure is that worker's, exactly as before workers existed.
// With several, per-flow sequence state is merged, never the workers' own
// gap counts: unique = size of the union of the workers' sets, duplicates =
// packets with a valid header − unique, gaps = highest + 1 − unique (per
// flow). "reordered" stays per worker: a packet that reached its worker after
// a higher number of the same flow had reached that same worker; the order
// between concurrently running workers is not observed, so spreading a flow
// over workers does not by itself count as reordering.
class AccountingSet {
 public:
  AccountingSet(AccountingMode mode, int flows, int workers);
  int workers() const { return int(workers_.size()); }
  Accounting& worker(int i) { return *workers_.at(size_t(i)); }
  const Accounting& worker(int i) const { return *workers_.at(size_t(i)); }
  AccountingMode mode() const { return mode_; }

  void set_latency_window(uint64_t start_ns, uint64_t end_ns);
  void set_size_mix(const std::shared_ptr<const SizeMix>& mix);
  uint64_t packets() const;  // any time (relaxed sums)
  // After every sink stopped: per mix entry, summed over workers (empty
  // without a mix or when the mode checks no headers).
  std::vector<SizeCounts> by_size() const;

  // After every sink stopped.
  uint64_t bytes() const;
  uint64_t unique() const;
  uint64_t duplicates() const;
  uint64_t corrupt() const;
  nlohmann::json sequence_json() const;
  nlohmann::json latency_json() const;

 private:
  struct Merged {
    uint64_t unique = 0, duplicates = 0, gaps = 0, reordered = 0, too_old = 0;
    uint64_t pktgen_repeats = 0;
  };
  Merged merge() const;

  AccountingMode mode_;
  std::vector<std::unique_ptr<Accounting>> workers_;
};

// The record's latency block of one histogram.
nlohmann::json latency_histogram_json(const LatencyHistogram& h);

}  // namespace zc
