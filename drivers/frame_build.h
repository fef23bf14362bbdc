// Ethernet + IPv4 + UDP headers for one flood datagram, built in user space
// for the transports that hand the kernel whole frames (PACKET_TX_RING) and
// for the trafgen configuration. One frame per flow differs only in the UDP
// source port, so a TX ring builds every frame once and restamps that port.
#pragma once
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>

#include "harness/lab.h"

namespace zc {

inline constexpr size_t kEthHeaderBytes = 14;
inline constexpr size_t kIpv4HeaderBytes = 20;
inline constexpr size_t kUdpHeaderBytes = 8;
inline constexpr size_t kFrameHeaderBytes = kEthHeaderBytes + kIpv4HeaderBytes + kUdpHeaderBytes;  // 42

struct FrameAddresses {
  MacAddr src_mac{}, dst_mac{};
  in_addr src_ip{}, dst_ip{};
  uint16_t src_port = 0, dst_port = 0;  // host byte order
};

// Writes the 42 header bytes for a UDP payload of `payload_bytes` at `frame`.
// The IPv4 header checksum is computed; the UDP checksum is 0 ("none", allowed
// for UDP over IPv4, RFC 768): the flood header carries its own payload
// checksum, and a zero keeps restamping the source port O(1).
// IPv4 id 0 with DF set (no fragmentation expected or wanted), TTL 64.
void build_udp_frame_headers(uint8_t* frame, const FrameAddresses& a, size_t payload_bytes);

// Rewrites the UDP source port of a frame built above (UDP checksum stays 0).
void set_frame_src_port(uint8_t* frame, uint16_t port);

// Rewrites the IPv4 total length (and header checksum) and the UDP length of
// a frame built above for a payload of `payload_bytes` (a frame-size mix
// reuses one slot at several lengths).
void set_frame_payload_length(uint8_t* frame, size_t payload_bytes);

// RFC 1071 checksum of an IPv4 header (exposed for tests).
uint16_t ipv4_header_checksum(const uint8_t* ip_header);

}  // namespace zc
