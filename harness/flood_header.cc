#include "harness/flood_header.h"

#include <endian.h>

#include <algorithm>
#include <cstring>

namespace zc {
namespace {

void put_be64(uint8_t* p, uint64_t v) {
  v = htobe64(v);
  std::memcpy(p, &v, 8);
}
void put_be32(uint8_t* p, uint32_t v) {
  v = htobe32(v);
  std::memcpy(p, &v, 4);
}
void put_be16(uint8_t* p, uint16_t v) {
  v = htobe16(v);
  std::memcpy(p, &v, 2);
}
uint64_t get_be64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return be64toh(v);
}
uint32_t get_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return be32toh(v);
}
uint16_t get_be16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return be16toh(v);
}

uint8_t body_byte(size_t i) { return static_cast<uint8_t>(i * 7 + 1); }

// Sum of the header words (big-endian 16-bit words, offsets 0..21) without csum.
uint32_t header_sum(const uint8_t* payload) { return ones_complement_add(0, payload, 22); }

}  // namespace

uint32_t ones_complement_add(uint32_t sum, const uint8_t* data, size_t len) {
  // RFC 1071 section 2(B): the ones' complement sum is byte-order independent,
  // so add host-order 32-bit halves of 64-bit loads and swap once at the end.
  // Data must start at an even payload offset (callers guarantee this).
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    acc += (w & 0xffffffffu) + (w >> 32);
  }
  for (; i + 2 <= len; i += 2) {
    uint16_t w;
    std::memcpy(&w, data + i, 2);
    acc += w;
  }
  if (i < len) {
    uint16_t w = 0;
    std::memcpy(&w, data + i, 1);  // odd tail byte is the high byte of a zero-padded word
    acc += w;
  }
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  uint64_t total = uint64_t(sum) + be16toh(static_cast<uint16_t>(acc));
  while (total >> 32) total = (total & 0xffffffffu) + (total >> 32);
  return static_cast<uint32_t>(total);
}

uint16_t ones_complement_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

uint32_t flood_body_sum(size_t len) {
  if (len <= kFloodExtendedMin) return 0;
  uint8_t buf[64];
  uint64_t acc = 0;
  for (size_t off = kFloodExtendedMin; off < len; off += sizeof buf) {
    size_t n = std::min(sizeof buf, len - off);
    for (size_t i = 0; i < n; ++i) buf[i] = body_byte(off + i);
    acc = ones_complement_add(static_cast<uint32_t>(acc), buf, n);
  }
  return static_cast<uint32_t>(acc);
}

void flood_stamp(uint8_t* payload, size_t len, const FloodHeader& h, uint32_t body_sum) {
  put_be64(payload, h.seq);
  put_be64(payload + 8, h.tx_ns);
  put_be16(payload + 16, h.flow);
  if (len < kFloodExtendedMin) return;
  put_be32(payload + 18, kFloodMagic);
  uint64_t acc = uint64_t(header_sum(payload)) + body_sum;
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  uint16_t c = ones_complement_fold(static_cast<uint32_t>(acc));
  put_be16(payload + 22, c == 0 ? 0xffff : c);
}

void flood_write_payload(uint8_t* payload, size_t len, const FloodHeader& h) {
  std::memset(payload, 0, std::min(len, kFloodExtendedMin));
  for (size_t i = kFloodExtendedMin; i < len; ++i) payload[i] = body_byte(i);
  flood_stamp(payload, len, h, flood_body_sum(len));
}

FloodCheck flood_read(const uint8_t* payload, size_t len, FloodHeader* out, bool verify) {
  if (len < kFloodMinPayload) return FloodCheck::too_short;
  out->seq = get_be64(payload);
  out->tx_ns = get_be64(payload + 8);
  out->flow = get_be16(payload + 16);
  if (!verify || len < kFloodExtendedMin) return FloodCheck::ok;
  if (get_be32(payload + 18) != kFloodMagic) return FloodCheck::bad_magic;
  // Summing everything including the stored checksum gives 0xffff when intact;
  // the stored 0xffff stand-in for 0 sums the same.
  uint32_t s = ones_complement_add(0, payload, len);
  return ones_complement_fold(s) == 0 ? FloodCheck::ok : FloodCheck::bad_checksum;
}

}  // namespace zc
