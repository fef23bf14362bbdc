// Sequence-format descriptors: where a foreign generator (an FPGA, pktgen,
// trafgen) keeps its packet counter, so the sink's sequence tracking gives
// loss, duplicates and reordering for frames that carry no flood header
// (README "Point your FPGA at zcbench").
//
//   --seq offset=N,width=4|8,endian=big|little[,flow=OFFSET:WIDTH][,base=payload|frame]
//   --seq pktgen        kernel pktgen's header: magic, then seq_num (32 bit BE) at payload 4
//   --seq flood         zcbench's own flood header: seq (64 bit BE) at 0, flow (16 bit) at 16
//
// Offsets count from the UDP payload (base=payload, the default) or from the
// first byte of the Ethernet frame (base=frame; IPv4 without options, no VLAN
// tag, so payload offset = frame offset - 42).
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace zc {

inline constexpr size_t kFrameToPayload = 42;  // Ethernet 14 + IPv4 20 + UDP 8

struct SeqFormat {
  std::string preset;        // "pktgen", "flood" or "" (custom)
  size_t offset = 0;         // in the UDP payload (already converted from base=frame)
  size_t width = 4;          // 4 or 8 bytes
  bool big_endian = true;
  bool has_flow = false;
  size_t flow_offset = 0;    // payload offset of the flow field
  size_t flow_width = 0;     // 1, 2, 4 or 8
  bool frame_base = false;   // given relative to the frame (for the record)
  nlohmann::json to_json() const;

  // Bytes of UDP payload a packet needs for both fields.
  size_t end() const;
  // Reads the counter and flow id of one UDP payload; false when too short.
  bool extract(const uint8_t* payload, size_t len, uint64_t* seq, uint64_t* flow) const {
    if (len < end()) return false;
    *seq = read(payload + offset, width);
    *flow = has_flow ? read(payload + flow_offset, flow_width) : 0;
    return true;
  }

 private:
  uint64_t read(const uint8_t* p, size_t w) const {
    uint64_t v = 0;
    if (big_endian)
      for (size_t i = 0; i < w; ++i) v = v << 8 | p[i];
    else
      for (size_t i = w; i-- > 0;) v = v << 8 | p[i];
    return v;
  }
};

// Parses a descriptor or a preset; throws UsageError naming the bad part.
SeqFormat parse_seq_format(const std::string& text);

// Checks the fields against the traffic: every field inside a payload of
// `payload_bytes`, and, when the packets also carry zcbench's flood header
// (`flood_header_present`), outside it. Throws UsageError naming the fix.
void validate_seq_format(const SeqFormat& f, size_t payload_bytes, bool flood_header_present);

}  // namespace zc

#include "harness/accounting.h"

namespace zc {

// AccountingMode::seq state: one SequenceTracker per flow id the descriptor
// reads (first 1024 ids; more count as `foreign`). A foreign counter starts
// anywhere and may wrap at its width: each flow's first counter value is its
// base, and trackers see (counter - base) modulo 2^(8*width). A value "before"
// the base (a packet reordered ahead of the first one seen) counts as
// reordered, not as a gap.
class SeqStreams {
 public:
  static constexpr size_t kMaxFlows = 1024;
  explicit SeqStreams(const SeqFormat& f) : format(f) {}
  void on_packet(const uint8_t* payload, size_t len);
  uint64_t unique() const;
  uint64_t duplicates() const;
  // Adds this mode's figures to Accounting::sequence_json.
  void add_json(nlohmann::json& j, uint64_t* reordered, uint64_t* too_old, uint64_t* gaps) const;

  SeqFormat format;
  uint64_t unreadable = 0;  // too short for the descriptor's fields
  uint64_t foreign_flows = 0;
  uint64_t before_base = 0;

 private:
  struct Flow {
    uint64_t id = 0, base = 0;
    SequenceTracker t;
  };
  std::vector<Flow> flows_;
};

}  // namespace zc
