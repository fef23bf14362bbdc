#include "harness/accounting.h"

#include <algorithm>
#include <cmath>

#include "harness/errors.h"
#include "harness/pacer.h"
#include "harness/seq_format.h"

namespace zc {

AccountingMode parse_accounting_mode(const std::string& s) {
  if (s == "full") return AccountingMode::full;
  if (s == "count") return AccountingMode::count;
  if (s == "pktgen") return AccountingMode::pktgen;
  if (s == "seq") return AccountingMode::seq;
  throw UsageError("accounting '" + s + "' is unknown; accepted: full, count, pktgen, seq");
}

const char* accounting_mode_name(AccountingMode m) {
  return m == AccountingMode::full ? "full" : m == AccountingMode::count ? "count" : m == AccountingMode::pktgen ? "pktgen" : "seq";
}

size_t LatencyHistogram::index(uint64_t ns) {
  if (ns < 16) return size_t(ns);
  int msb = 63 - __builtin_clzll(ns);           // >= 4
  size_t sub = size_t((ns >> (msb - 4)) & 15);  // next 4 bits below the msb
  return size_t(msb - 3) * 16 + sub;
}

uint64_t LatencyHistogram::bucket_upper(size_t idx) {
  if (idx < 16) return idx;
  size_t msb = idx / 16 + 3;
  uint64_t sub = idx % 16;
  return ((16 + sub + 1) << (msb - 4)) - 1;
}

uint64_t LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = uint64_t(std::ceil(q * double(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(bucket_upper(i), max_);
  }
  return max_;
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  max_ = std::max(max_, o.max_);
}

bool SeqSet::insert(uint64_t seq) {
  if (seq >= kMaxTracked) {
    ++untracked_;
    return false;
  }
  const size_t ci = size_t(seq / kChunkBits);
  if (ci >= chunks_.size()) chunks_.resize(ci + 1);
  Chunk& c = chunks_[ci];
  if (c.count == kChunkBits) return false;
  if (!c.bits) c.bits.reset(new uint64_t[kChunkBits / 64]());
  const uint64_t bit = seq % kChunkBits;
  uint64_t& word = c.bits[bit / 64];
  const uint64_t mask = 1ull << (bit % 64);
  if (word & mask) return false;
  word |= mask;
  if (++c.count == kChunkBits) c.bits.reset();  // full: the count says it all
  if (size_ == 0 || seq > highest_) highest_ = seq;
  ++size_;
  return true;
}

bool SeqSet::contains(uint64_t seq) const {
  const size_t ci = size_t(seq / kChunkBits);
  if (seq >= kMaxTracked || ci >= chunks_.size()) return false;
  const Chunk& c = chunks_[ci];
  if (c.count == kChunkBits) return true;
  if (!c.bits) return false;
  const uint64_t bit = seq % kChunkBits;
  return c.bits[bit / 64] & (1ull << (bit % 64));
}

void SeqSet::merge(const SeqSet& o) {
  untracked_ += o.untracked_;
  for (size_t ci = 0; ci < o.chunks_.size(); ++ci) {
    const Chunk& oc = o.chunks_[ci];
    if (oc.count == 0) continue;
    const uint64_t base = uint64_t(ci) * kChunkBits;
    if (oc.count == kChunkBits) {
      for (uint64_t b = 0; b < kChunkBits; ++b) insert(base + b);
      continue;
    }
    for (uint64_t w = 0; w < kChunkBits / 64; ++w)
      for (uint64_t word = oc.bits[w]; word; word &= word - 1)
        insert(base + w * 64 + uint64_t(__builtin_ctzll(word)));
  }
}

bool SequenceTracker::test_and_set(uint64_t seq) {
  uint64_t bit = seq % kWindow;
  uint64_t mask = 1ull << (bit % 64);
  uint64_t& word = seen_[bit / 64];
  bool was = word & mask;
  word |= mask;
  return was;
}

void SequenceTracker::advance_to(uint64_t seq) {
  // Clear the window slots of the sequence numbers we skip over, so they read
  // as unseen when they arrive late.
  if (seq - highest >= kWindow) {
    std::fill(seen_.begin(), seen_.end(), 0);
  } else {
    for (uint64_t s = highest + 1; s <= seq; ++s) seen_[(s % kWindow) / 64] &= ~(1ull << ((s % kWindow) % 64));
  }
  highest = seq;
}

void SequenceTracker::on_seq(uint64_t seq) {
  if (!started) {
    started = true;
    highest = seq;
    test_and_set(seq);
    ++unique;
    return;
  }
  if (seq > highest) {
    advance_to(seq);
    test_and_set(seq);
    ++unique;
    return;
  }
  if (highest - seq >= kWindow) {
    ++too_old;
    ++reordered;
    ++unique;
    return;
  }
  if (test_and_set(seq)) {
    ++duplicates;
  } else {
    ++reordered;
    ++unique;
  }
}

Accounting::Accounting(AccountingMode mode, int flows) : mode_(mode), flows_(size_t(std::max(flows, 1))) {}

void Accounting::begin_batch() {
  // The hardware split needs the receive time in every mode (an external
  // source's packets carry no flood header, their stamps still split).
  if (mode_ == AccountingMode::full || phc_) batch_ns_ = monotonic_ns();
  batch_offset_valid_ = false;
}

void Accounting::on_truncated(const uint8_t* payload, size_t len) {
  packets_.store(packets_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  bytes_ += len;
  if (mode_ == AccountingMode::count) return;  // count mode checks nothing
  ++corrupt_;
  FloodHeader h;
  // Charged to the size its header says, as a failed checksum is (inspect).
  if (mix_ && mode_ == AccountingMode::full && flood_read(payload, len, &h, /*verify=*/false) != FloodCheck::too_short)
    ++by_size_[mix_->index_at(h.seq)].corrupt;
}

void Accounting::split_hardware(const KernelStamp& k) {
  hw_.interarrival.add(k.hardware_ns);
  if (!phc_ || !k.software_ns) return;
  if (batch_ns_ < window_start_.load(std::memory_order_relaxed) ||
      batch_ns_ >= window_end_.load(std::memory_order_relaxed))
    return;
  const PhcOffset& o = phc_->offset(batch_ns_);
  if (!o.valid) return;
  if (!batch_offset_valid_) batch_offset_ns_ = realtime_offset_.update(), batch_offset_valid_ = true;
  uint64_t nic_kernel = 0, kernel_user = 0;
  if (!split_hw_latency(k.hardware_ns, o.realtime_minus_phc_ns, k.software_ns, batch_ns_, batch_offset_ns_,
                        &nic_kernel, &kernel_user)) {
    ++hw_.order_violations;
    return;
  }
  hw_.nic_kernel.add(nic_kernel);
  hw_.kernel_user.add(kernel_user);
}

void HwSplit::merge(const HwSplit& o) {
  nic_kernel.merge(o.nic_kernel);
  kernel_user.merge(o.kernel_user);
  interarrival.merge(o.interarrival);
  order_violations += o.order_violations;
}

void add_hw_split_json(nlohmann::json& latency, const HwSplit& hw, const StampCounts& counts, const PhcClock* phc) {
  if (!phc && !counts.hardware) return;  // not asked for, none came: the record keeps its shape
  nlohmann::json ia = latency_histogram_json(hw.interarrival.gaps());
  ia["backwards"] = hw.interarrival.backwards();
  ia["clock"] = "NIC PHC (raw hardware stamps), consecutive packets of one sink worker";
  latency["nic_interarrival"] = ia;
  nlohmann::json s{{"order_violations", hw.order_violations}};
  std::string reason;
  if (!counts.hardware)
    reason = "no packet carried a hardware stamp";
  else if (!phc)
    reason = "no PHC-to-system offset measured (--hw-timestamps on a named interface measures one)";
  else if (!phc->ok())
    reason = "no PHC-to-system offset measured: " + phc->reason();
  else if (!hw.nic_kernel.count() && !hw.order_violations)
    reason = "no packet carried both a hardware and a software stamp (a TPACKET frame carries one: with "
             "PACKET_TIMESTAMP SOF_TIMESTAMPING_RAW_HARDWARE, the NIC's)";
  s["available"] = reason.empty();
  if (reason.empty()) {
    latency["nic_kernel"] = latency_histogram_json(hw.nic_kernel);
    latency["kernel_user"] = latency_histogram_json(hw.kernel_user);
    s["clocks"] = {{"nic_kernel", "kernel CLOCK_REALTIME stamp - NIC PHC stamp converted to CLOCK_REALTIME by the "
                                  "measured PHC offset (raw.timestamps.phc)"},
                   {"kernel_user", "user receive CLOCK_MONOTONIC - kernel CLOCK_REALTIME stamp converted per batch"}};
  } else {
    s["reason"] = reason;
  }
  latency["nic_split"] = s;
}

void Accounting::split(uint64_t tx_ns) {
  if (!stamp_->software_ns) return;
  if (!batch_offset_valid_) batch_offset_ns_ = realtime_offset_.update(), batch_offset_valid_ = true;
  uint64_t stack = 0, wakeup = 0;
  if (!split_latency(tx_ns, batch_ns_, stamp_->software_ns, batch_offset_ns_, &stack, &wakeup)) {
    ++stamps_.order_violations;
    return;
  }
  stack_.add(stack);
  wakeup_.add(wakeup);
}

void Accounting::inspect(const uint8_t* payload, size_t len) {
  FloodHeader h;
  FloodCheck c = flood_read(payload, len, &h, /*verify=*/true);
  if (c == FloodCheck::too_short) {
    ++foreign_;
    return;
  }
  if (c != FloodCheck::ok) {
    ++corrupt_;
    if (mix_) ++by_size_[mix_->index_at(h.seq)].corrupt;  // charged to the size its header says
    return;
  }
  if (h.flow >= flows_.size()) {
    ++foreign_;
    return;
  }
  if (mix_) {
    // A truncated or padded packet can still pass the checksum (18..23-byte
    // payloads carry none): its length must be the one its seq gives.
    SizeCounts& sc = by_size_[mix_->index_at(h.seq)];
    if (len != mix_->payload_at(h.seq)) {
      ++corrupt_, ++sc.corrupt;
      return;
    }
    ++sc.received;
  }
  flows_[h.flow].on_seq(h.seq);
  if (exact_) sets_[h.flow].insert(h.seq);
  if (h.tx_ns != 0 && batch_ns_ >= window_start_.load(std::memory_order_relaxed) &&
      batch_ns_ < window_end_.load(std::memory_order_relaxed) && batch_ns_ >= h.tx_ns) {
    latency_.add(batch_ns_ - h.tx_ns);
    if (stamp_) split(h.tx_ns);
  }
}

// struct pktgen_hdr in net/core/pktgen.c: pgh_magic, seq_num, tv_sec, tv_usec.
void Accounting::inspect_pktgen(const uint8_t* payload, size_t len) {
  constexpr uint32_t kPktgenMagic = 0xbe9be955;
  auto be32 = [&](size_t off) {
    return uint32_t(payload[off]) << 24 | uint32_t(payload[off + 1]) << 16 | uint32_t(payload[off + 2]) << 8 |
           uint32_t(payload[off + 3]);
  };
  if (len < 8 || be32(0) != kPktgenMagic) {
    ++foreign_;
    return;
  }
  ++pktgen_headers_;
  // pktgen numbers from 1; the tracker's gap count assumes a stream from 0.
  uint32_t seq = be32(4);
  pktgen_seq_.on_seq(seq ? seq - 1 : 0);
  if (exact_) pktgen_set_.insert(seq ? seq - 1 : 0);
}

void Accounting::set_size_mix(std::shared_ptr<const SizeMix> mix) {
  mix_ = mode_ == AccountingMode::full ? std::move(mix) : nullptr;
  by_size_.assign(mix_ ? mix_->entries() : 0, SizeCounts{});
}

void Accounting::set_length_bins(std::shared_ptr<const SizeMix> mix) {
  len_mix_ = std::move(mix);
  by_size_.assign(len_mix_ ? len_mix_->entries() : 0, SizeCounts{});
}

std::vector<uint64_t> Accounting::flow_expected() const {
  std::vector<uint64_t> out;
  for (const auto& f : flows_) out.push_back(f.started ? f.highest + 1 : 0);
  return out;
}

void AccountingSet::set_size_mix(const std::shared_ptr<const SizeMix>& mix) {
  for (auto& w : workers_) w->set_size_mix(mix);
}

std::vector<SizeCounts> AccountingSet::by_size() const {
  std::vector<SizeCounts> sum(workers_.at(0)->by_size().size());
  for (const auto& w : workers_)
    for (size_t i = 0; i < sum.size(); ++i) {
      sum[i].received += w->by_size()[i].received;
      sum[i].corrupt += w->by_size()[i].corrupt;
    }
  return sum;
}

uint64_t Accounting::unique() const {
  if (mode_ == AccountingMode::seq && seq_) return seq_->unique() + seq_->unreadable;
  if (mode_ != AccountingMode::full) return packets();
  uint64_t u = 0;
  for (const auto& f : flows_) u += f.unique;
  return u + counted_only_;
}

uint64_t Accounting::duplicates() const {
  if (mode_ == AccountingMode::seq && seq_) return seq_->duplicates();
  uint64_t d = 0;
  for (const auto& f : flows_) d += f.duplicates;
  return d;
}

nlohmann::json Accounting::sequence_json() const {
  nlohmann::json j;
  j["checked"] = mode_ == AccountingMode::full && counted_only_ == 0;
  uint64_t reordered = 0, too_old = 0, gaps = 0;
  for (const auto& f : flows_) {
    reordered += f.reordered;
    too_old += f.too_old;
    gaps += f.gaps();
  }
  if (mode_ == AccountingMode::pktgen) {
    reordered = pktgen_seq_.reordered;
    too_old = pktgen_seq_.too_old;
    gaps = pktgen_seq_.gaps();
    j["pktgen_headers"] = pktgen_headers_;
    j["pktgen_repeats"] = pktgen_seq_.duplicates;
  }
  if (mode_ == AccountingMode::seq && seq_) seq_->add_json(j, &reordered, &too_old, &gaps);
  j["unique"] = unique();
  j["duplicates"] = duplicates();
  j["reordered"] = reordered;
  j["too_old"] = too_old;
  j["gaps"] = gaps;
  j["corrupt"] = corrupt_;
  j["foreign"] = foreign_;
  j["counted_only"] = counted_only_;
  return j;
}

nlohmann::json Accounting::latency_json() const {
  nlohmann::json j = latency_histogram_json(latency_);
  add_latency_split_json(j, stack_, wakeup_, stamps_);
  add_hw_split_json(j, hw_, stamps_, phc_);
  return j;
}

nlohmann::json latency_histogram_json(const LatencyHistogram& latency_) {
  nlohmann::json j;
  j["count"] = latency_.count();
  if (latency_.count() == 0) {
    j["p50"] = nullptr;
    j["p99"] = nullptr;
    j["p999"] = nullptr;
    j["max"] = nullptr;
  } else {
    j["p50"] = latency_.quantile(0.5);
    j["p99"] = latency_.quantile(0.99);
    j["p999"] = latency_.quantile(0.999);
    j["max"] = latency_.max();
  }
  // Non-empty buckets as [upper bound ns, count]: repetitions merge by adding
  // counts, where averaging their percentiles would be wrong.
  j["buckets"] = nlohmann::json::array();
  for (size_t i = 0; i < latency_.buckets().size(); ++i)
    if (latency_.buckets()[i]) j["buckets"].push_back({LatencyHistogram::bucket_upper(i), latency_.buckets()[i]});
  return j;
}

AccountingSet::AccountingSet(AccountingMode mode, int flows, int workers) : mode_(mode) {
  for (int i = 0; i < std::max(1, workers); ++i) {
    workers_.push_back(std::make_unique<Accounting>(mode, flows));
    if (workers > 1) workers_.back()->track_exact();
  }
}

void AccountingSet::set_latency_window(uint64_t start_ns, uint64_t end_ns) {
  for (auto& w : workers_) w->set_latency_window(start_ns, end_ns);
}

uint64_t AccountingSet::packets() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->packets();
  return n;
}

uint64_t AccountingSet::bytes() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->bytes();
  return n;
}

uint64_t AccountingSet::corrupt() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->corrupt();
  return n;
}

AccountingSet::Merged AccountingSet::merge() const {
  Merged m;
  const Accounting& first = *workers_.front();
  for (size_t f = 0; f < first.flows_.size(); ++f) {
    SeqSet all;
    uint64_t headers = 0, highest = 0;
    bool started = false;
    for (const auto& w : workers_) {
      const SequenceTracker& t = w->flows_[f];
      all.merge(w->sets_[f]);
      headers += t.unique + t.duplicates;
      m.reordered += t.reordered;
      m.too_old += t.too_old;
      if (t.started) highest = started ? std::max(highest, t.highest) : t.highest, started = true;
    }
    // Numbers beyond SeqSet::kMaxTracked count as unique, unchecked.
    const uint64_t unique = all.size() + all.untracked();
    m.unique += unique;
    m.duplicates += headers - std::min(headers, unique);
    if (started) m.gaps += highest + 1 - std::min(unique, highest + 1);
  }
  if (mode_ == AccountingMode::pktgen) {
    SeqSet all;
    uint64_t headers = 0, highest = 0;
    bool started = false;
    m.reordered = m.too_old = 0;
    for (const auto& w : workers_) {
      const SequenceTracker& t = w->pktgen_seq_;
      all.merge(w->pktgen_set_);
      headers += t.unique + t.duplicates;
      m.reordered += t.reordered;
      m.too_old += t.too_old;
      if (t.started) highest = started ? std::max(highest, t.highest) : t.highest, started = true;
    }
    const uint64_t unique = all.size() + all.untracked();
    m.pktgen_repeats = headers - std::min(headers, unique);
    m.gaps = started ? highest + 1 - std::min(unique, highest + 1) : 0;
  }
  return m;
}

uint64_t AccountingSet::unique() const {
  if (workers_.size() == 1) return workers_[0]->unique();
  if (mode_ != AccountingMode::full) return packets();
  uint64_t counted_only = 0;
  for (const auto& w : workers_) counted_only += w->counted_only_;
  return merge().unique + counted_only;
}

uint64_t AccountingSet::duplicates() const {
  if (workers_.size() == 1) return workers_[0]->duplicates();
  return mode_ == AccountingMode::full ? merge().duplicates : 0;
}

nlohmann::json AccountingSet::sequence_json() const {
  if (workers_.size() == 1) return workers_[0]->sequence_json();
  const Merged m = merge();
  uint64_t counted_only = 0, foreign = 0, headers = 0;
  for (const auto& w : workers_) counted_only += w->counted_only_, foreign += w->foreign_, headers += w->pktgen_headers_;
  nlohmann::json j;
  j["checked"] = mode_ == AccountingMode::full && counted_only == 0;
  if (mode_ == AccountingMode::pktgen) {
    j["pktgen_headers"] = headers;
    j["pktgen_repeats"] = m.pktgen_repeats;
  }
  j["unique"] = unique();
  j["duplicates"] = duplicates();
  j["reordered"] = m.reordered;
  j["too_old"] = m.too_old;
  j["gaps"] = m.gaps;
  j["corrupt"] = corrupt();
  j["foreign"] = foreign;
  j["counted_only"] = counted_only;
  j["merged_workers"] = workers_.size();
  return j;
}

nlohmann::json AccountingSet::latency_json() const {
  if (workers_.size() == 1) return workers_[0]->latency_json();
  LatencyHistogram all, stack, wakeup;
  StampCounts stamps;
  HwSplit hw;
  const PhcClock* phc = nullptr;
  for (const auto& w : workers_) {
    all.merge(w->latency());
    stack.merge(w->latency_stack());
    wakeup.merge(w->latency_wakeup());
    stamps.merge(w->stamps());
    hw.merge(w->hw_split());
    if (w->phc_) phc = w->phc_;
  }
  nlohmann::json j = latency_histogram_json(all);
  add_latency_split_json(j, stack, wakeup, stamps);
  add_hw_split_json(j, hw, stamps, phc);
  return j;
}

}  // namespace zc
