// Finding the flood's UDP payload in what a packet socket hands over: a whole
// Ethernet frame (SOCK_RAW) or the packet from its network header on
// (SOCK_DGRAM). Capture sinks see every packet on the port — ARP, ICMP, other
// UDP ports — so each frame is parsed and checked before accounting sees it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace zc {

enum class FrameStart { ethernet, network };

// The UDP payload of an IPv4/UDP datagram to `udp_port`, or an empty span
// (data() == nullptr) when the frame is anything else or its lengths do not
// add up. Ethernet frames may carry up to two VLAN tags (802.1Q / 802.1ad).
// Fragments are not flood packets. The payload length is the UDP header's,
// bounded by the bytes captured: a truncated capture yields nothing.
std::span<const uint8_t> flood_udp_payload(const uint8_t* data, size_t len, FrameStart start, uint16_t udp_port);

}  // namespace zc
