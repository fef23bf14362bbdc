#include "drivers/frame_build.h"

#include <arpa/inet.h>

#include <cstring>

#include "harness/errors.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

}  // namespace

uint16_t ipv4_header_checksum(const uint8_t* ip) {
  uint32_t sum = 0;
  for (size_t i = 0; i < kIpv4HeaderBytes; i += 2)
    if (i != 10) sum += uint32_t(ip[i]) << 8 | ip[i + 1];
  return ones_complement_fold(sum);  // already complemented
}

void build_udp_frame_headers(uint8_t* frame, const FrameAddresses& a, size_t payload_bytes) {
  if (payload_bytes > 65535 - kIpv4HeaderBytes - kUdpHeaderBytes)
    throw UsageError("UDP payload " + std::to_string(payload_bytes) + " bytes does not fit one IPv4 datagram");
  std::memcpy(frame, a.dst_mac.data(), 6);
  std::memcpy(frame + 6, a.src_mac.data(), 6);
  put16(frame + 12, 0x0800);
  uint8_t* ip = frame + kEthHeaderBytes;
  ip[0] = 0x45;  // version 4, 5 words
  ip[1] = 0;
  put16(ip + 2, uint16_t(kIpv4HeaderBytes + kUdpHeaderBytes + payload_bytes));
  put16(ip + 4, 0);
  put16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  put16(ip + 10, 0);
  std::memcpy(ip + 12, &a.src_ip, 4);  // in_addr is already network order
  std::memcpy(ip + 16, &a.dst_ip, 4);
  put16(ip + 10, ipv4_header_checksum(ip));
  uint8_t* udp = ip + kIpv4HeaderBytes;
  put16(udp, a.src_port);
  put16(udp + 2, a.dst_port);
  put16(udp + 4, uint16_t(kUdpHeaderBytes + payload_bytes));
  put16(udp + 6, 0);
}

void set_frame_payload_length(uint8_t* frame, size_t payload_bytes) {
  uint8_t* ip = frame + kEthHeaderBytes;
  put16(ip + 2, uint16_t(kIpv4HeaderBytes + kUdpHeaderBytes + payload_bytes));
  put16(ip + 10, ipv4_header_checksum(ip));
  put16(ip + kIpv4HeaderBytes + 4, uint16_t(kUdpHeaderBytes + payload_bytes));
}

void set_frame_src_port(uint8_t* frame, uint16_t port) { put16(frame + kEthHeaderBytes + kIpv4HeaderBytes, port); }

}  // namespace zc
