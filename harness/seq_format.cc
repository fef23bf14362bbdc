#include "harness/seq_format.h"

#include <algorithm>

#include "harness/errors.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

size_t parse_size(const std::string& what, const std::string& v) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 6)
    throw UsageError("--seq " + what + "='" + v + "' is not a byte offset/width (a decimal number)");
  return size_t(std::stoul(v));
}

}  // namespace

size_t SeqFormat::end() const { return std::max(offset + width, has_flow ? flow_offset + flow_width : 0); }

nlohmann::json SeqFormat::to_json() const {
  nlohmann::json j = {{"preset", preset.empty() ? nlohmann::json(nullptr) : nlohmann::json(preset)},
                      {"base", frame_base ? "frame" : "payload"},
                      {"payload_offset", offset},
                      {"width", width},
                      {"endian", big_endian ? "big" : "little"}};
  j["flow"] = has_flow ? nlohmann::json{{"payload_offset", flow_offset}, {"width", flow_width}} : nlohmann::json(nullptr);
  return j;
}

SeqFormat parse_seq_format(const std::string& text) {
  SeqFormat f;
  if (text == "pktgen") {  // struct pktgen_hdr (net/core/pktgen.c): pgh_magic, seq_num, tv_sec, tv_usec
    f.preset = "pktgen", f.offset = 4, f.width = 4, f.big_endian = true;
    return f;
  }
  if (text == "flood") {  // harness/flood_header.h
    f.preset = "flood", f.offset = 0, f.width = 8, f.big_endian = true;
    f.has_flow = true, f.flow_offset = 16, f.flow_width = 2;
    return f;
  }
  bool have_offset = false;
  long flow_frame_off = -1, seq_frame_off = -1;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos)
      throw UsageError("--seq part '" + item + "' is not KEY=VALUE; accepted keys: offset, width, endian, flow, base (or a preset: pktgen, flood)");
    std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "offset") {
      seq_frame_off = long(parse_size(k, v));
      have_offset = true;
    } else if (k == "width") {
      f.width = parse_size(k, v);
      if (f.width != 4 && f.width != 8) throw UsageError("--seq width=" + v + " is not accepted; accepted: 4, 8");
    } else if (k == "endian") {
      if (v != "big" && v != "little") throw UsageError("--seq endian=" + v + " is not accepted; accepted: big, little");
      f.big_endian = v == "big";
    } else if (k == "flow") {
      size_t colon = v.find(':');
      if (colon == std::string::npos) throw UsageError("--seq flow=" + v + " is not OFFSET:WIDTH (e.g. flow=16:2)");
      flow_frame_off = long(parse_size("flow offset", v.substr(0, colon)));
      f.flow_width = parse_size("flow width", v.substr(colon + 1));
      if (f.flow_width != 1 && f.flow_width != 2 && f.flow_width != 4 && f.flow_width != 8)
        throw UsageError("--seq flow width " + std::to_string(f.flow_width) + " is not accepted; accepted: 1, 2, 4, 8");
      f.has_flow = true;
    } else if (k == "base") {
      if (v != "payload" && v != "frame") throw UsageError("--seq base=" + v + " is not accepted; accepted: payload, frame");
      f.frame_base = v == "frame";
    } else {
      throw UsageError("--seq key '" + k + "' is unknown; accepted: offset, width, endian, flow, base");
    }
  }
  if (!have_offset) throw UsageError("--seq '" + text + "' has no offset=N; e.g. --seq offset=4,width=8,endian=big");
  auto to_payload = [&](long off, const char* what) -> size_t {
    if (!f.frame_base) return size_t(off);
    if (off < long(kFrameToPayload))
      throw UsageError(std::string("--seq ") + what + " at frame offset " + std::to_string(off) +
                       " lies in the Ethernet/IPv4/UDP headers (frame bytes 0..41); the UDP payload starts at 42");
    return size_t(off) - kFrameToPayload;
  };
  f.offset = to_payload(seq_frame_off, "counter");
  if (f.has_flow) f.flow_offset = to_payload(flow_frame_off, "flow field");
  if (f.has_flow && f.flow_offset < f.offset + f.width && f.offset < f.flow_offset + f.flow_width)
    throw UsageError("--seq flow field overlaps the counter; give them separate bytes");
  return f;
}

void validate_seq_format(const SeqFormat& f, size_t payload_bytes, bool flood_header_present) {
  size_t base = f.frame_base ? kFrameToPayload : 0;
  auto check = [&](size_t off, size_t w, const char* what) {
    if (off + w > payload_bytes)
      throw UsageError(std::string("--seq ") + what + " at " + (f.frame_base ? "frame" : "payload") + " bytes " +
                       std::to_string(base + off) + ".." + std::to_string(base + off + w - 1) + " lies outside the " +
                       std::to_string(payload_bytes) + "-byte UDP payload; move it or raise --size to " +
                       std::to_string(off + w));
    size_t hdr = payload_bytes >= kFloodExtendedMin ? kFloodExtendedMin : kFloodMinPayload;
    if (flood_header_present && f.preset != "flood" && off < hdr)
      throw UsageError(std::string("--seq ") + what + " at payload bytes " + std::to_string(off) + ".." +
                       std::to_string(off + w - 1) + " overlaps the flood header (payload bytes 0.." +
                       std::to_string(hdr - 1) + ") our generator writes; use --source external for frames without it, "
                       "or a field at payload offset >= " + std::to_string(hdr));
  };
  check(f.offset, f.width, "counter");
  if (f.has_flow) check(f.flow_offset, f.flow_width, "flow field");
}

}  // namespace zc

namespace zc {

void Accounting::set_seq_format(const SeqFormat& f) { seq_ = std::make_shared<SeqStreams>(f); }

void Accounting::inspect_seq(const uint8_t* payload, size_t len) {
  if (seq_) seq_->on_packet(payload, len);
}

void SeqStreams::on_packet(const uint8_t* payload, size_t len) {
  uint64_t seq = 0, flow = 0;
  if (!format.extract(payload, len, &seq, &flow)) {
    ++unreadable;
    return;
  }
  Flow* f = nullptr;
  for (auto& x : flows_)  // flows are few; a linear scan beats hashing here
    if (x.id == flow) {
      f = &x;
      break;
    }
  if (!f) {
    if (flows_.size() >= kMaxFlows) {
      ++foreign_flows;
      return;
    }
    flows_.push_back(Flow{flow, seq, {}});
    f = &flows_.back();
  }
  const uint64_t mask = format.width == 8 ? ~0ull : (1ull << (8 * format.width)) - 1;
  uint64_t rel = (seq - f->base) & mask;
  if (rel > mask / 2) {  // behind the first value seen
    ++before_base;
    ++f->t.reordered;
    ++f->t.unique;
    return;
  }
  f->t.on_seq(rel);
}

uint64_t SeqStreams::unique() const {
  uint64_t u = 0;
  for (const auto& f : flows_) u += f.t.unique;
  return u;
}

uint64_t SeqStreams::duplicates() const {
  uint64_t d = 0;
  for (const auto& f : flows_) d += f.t.duplicates;
  return d;
}

void SeqStreams::add_json(nlohmann::json& j, uint64_t* reordered, uint64_t* too_old, uint64_t* gaps) const {
  uint64_t expected = 0;
  for (const auto& f : flows_) {
    *reordered += f.t.reordered;
    *too_old += f.t.too_old;
    *gaps += f.t.gaps();
    expected += f.t.started ? f.t.highest + 1 : 0;
  }
  j["checked"] = true;  // the descriptor itself is params.seq (sequence holds counts only)
  j["seq_flows"] = flows_.size();
  j["seq_expected"] = expected;  // first to highest counter value seen, per flow
  j["seq_unreadable"] = unreadable;
  j["seq_foreign_flows"] = foreign_flows;
  j["seq_before_base"] = before_base;
}

}  // namespace zc
