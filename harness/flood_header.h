// The flood header: what every FPGA-style datagram carries at the start of its
// UDP payload, in network byte order (README "Flood header" has the table an
// FPGA engineer implements).
//
//   offset size field
//   0      8    seq        per-flow sequence number, starts at 0
//   8      8    tx_ns      generator CLOCK_MONOTONIC nanoseconds (0 = none)
//   16     2    flow       flow id (0 .. flows-1)
//   --- 18 bytes: fits the payload of a 64-byte Ethernet frame ---
//   18     4    magic      0x5A43424E ("ZCBN"), present when payload >= 24
//   22     2    csum       RFC 1071 checksum of the whole payload with this
//                          field taken as 0; 0xffff stands for a computed 0
//   24..   body byte i (payload offset i) = (i * 7 + 1) & 0xff
//
// Payloads of 18..23 bytes carry only the first three fields (the rest zero).
#pragma once
#include <cstddef>
#include <cstdint>

namespace zc {

inline constexpr size_t kFloodMinPayload = 18;
inline constexpr size_t kFloodExtendedMin = 24;
inline constexpr uint32_t kFloodMagic = 0x5A43424E;

struct FloodHeader {
  uint64_t seq = 0;
  uint64_t tx_ns = 0;
  uint16_t flow = 0;
};

enum class FloodCheck { ok, too_short, bad_magic, bad_checksum };

// Fills a whole payload (header + body) for `h`. len >= kFloodMinPayload.
void flood_write_payload(uint8_t* payload, size_t len, const FloodHeader& h);

// Updates only the header fields and checksum of a payload previously written
// by flood_write_payload with the same length: the body is not touched, so a
// transmit path can prebuild frames once and stamp them in place.
// `body_sum` is flood_body_sum(len) (cache it).
void flood_stamp(uint8_t* payload, size_t len, const FloodHeader& h, uint32_t body_sum);
uint32_t flood_body_sum(size_t len);

// Decodes the header; with verify = true also checks magic and checksum.
FloodCheck flood_read(const uint8_t* payload, size_t len, FloodHeader* out, bool verify);

// RFC 1071 16-bit ones' complement sum helpers (exposed for tests).
uint32_t ones_complement_add(uint32_t sum, const uint8_t* data, size_t len);
uint16_t ones_complement_fold(uint32_t sum);

}  // namespace zc
