#include "drivers/frame_parse.h"

namespace zc {
namespace {

uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88a8;
constexpr uint8_t kIpProtoUdp = 17;

}  // namespace

std::span<const uint8_t> flood_udp_payload(const uint8_t* data, size_t len, FrameStart start, uint16_t udp_port) {
  size_t off = 0;
  if (start == FrameStart::ethernet) {
    if (len < 14) return {};
    uint16_t type = be16(data + 12);
    off = 14;
    for (int tags = 0; (type == kEtherTypeVlan || type == kEtherTypeQinQ) && tags < 2; ++tags) {
      if (len < off + 4) return {};
      type = be16(data + off + 2);
      off += 4;
    }
    if (type != kEtherTypeIpv4) return {};
  }
  const uint8_t* ip = data + off;
  if (len < off + 20 || (ip[0] >> 4) != 4) return {};
  size_t ihl = size_t(ip[0] & 0x0f) * 4;
  size_t total = be16(ip + 2);
  if (ihl < 20 || total < ihl + 8 || len < off + total) return {};
  if (ip[9] != kIpProtoUdp) return {};
  if (be16(ip + 6) & 0x3fff) return {};  // MF set or a non-zero offset: a fragment
  const uint8_t* udp = ip + ihl;
  if (be16(udp + 2) != udp_port) return {};
  size_t udp_len = be16(udp + 4);
  if (udp_len < 8 || udp_len > total - ihl) return {};
  return {udp + 8, udp_len - 8};
}

}  // namespace zc
