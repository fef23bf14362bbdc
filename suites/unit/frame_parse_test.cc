// flood_udp_payload: what a capture sink takes for a flood datagram, and what
// it ignores (other protocols, ports, fragments, truncated or lying lengths).
#include "drivers/frame_parse.h"

#include <gtest/gtest.h>

#include <vector>

#include "drivers/tpacket_ring.h"
#include "harness/errors.h"

namespace zc {
namespace {

constexpr uint16_t kPort = 9000;

// Ethernet (optionally VLAN-tagged) + IPv4 + UDP to `port` carrying `payload` bytes.
std::vector<uint8_t> frame(size_t payload, uint16_t port = kPort, int vlan_tags = 0) {
  std::vector<uint8_t> f(12, 0x02);
  for (int i = 0; i < vlan_tags; ++i) f.insert(f.end(), {uint8_t(i ? 0x81 : 0x88), uint8_t(i ? 0x00 : 0xa8), 0, 5});
  f.insert(f.end(), {0x08, 0x00});
  const size_t ip_len = 20 + 8 + payload;
  f.insert(f.end(), {0x45, 0, uint8_t(ip_len >> 8), uint8_t(ip_len), 0, 1, 0x40, 0, 64, 17, 0, 0,
                     198, 18, 0, 1, 198, 18, 0, 2});
  const size_t udp_len = 8 + payload;
  f.insert(f.end(), {0x27, 0x10, uint8_t(port >> 8), uint8_t(port), uint8_t(udp_len >> 8), uint8_t(udp_len), 0, 0});
  for (size_t i = 0; i < payload; ++i) f.push_back(uint8_t(i));
  return f;
}

size_t payload_len(const std::vector<uint8_t>& f, FrameStart s = FrameStart::ethernet) {
  auto p = flood_udp_payload(f.data(), f.size(), s, kPort);
  return p.data() ? p.size() : size_t(-1);
}

TEST(frame_parse, ethernet_ipv4_udp) {
  auto f = frame(272);
  auto p = flood_udp_payload(f.data(), f.size(), FrameStart::ethernet, kPort);
  ASSERT_EQ(p.size(), 272u);
  EXPECT_EQ(p.data(), f.data() + 42);
  EXPECT_EQ(payload_len(frame(0)), 0u);
}

TEST(frame_parse, network_header_start) {
  auto f = frame(18);
  std::vector<uint8_t> ip(f.begin() + 14, f.end());
  EXPECT_EQ(payload_len(ip, FrameStart::network), 18u);
  EXPECT_EQ(payload_len(f, FrameStart::network), size_t(-1)) << "an Ethernet header is not an IPv4 header";
}

TEST(frame_parse, vlan_tags) {
  EXPECT_EQ(payload_len(frame(100, kPort, 1)), 100u);
  EXPECT_EQ(payload_len(frame(100, kPort, 2)), 100u);
}

TEST(frame_parse, padding_after_the_datagram_is_ignored) {
  auto f = frame(1);
  f.resize(60, 0);  // minimum Ethernet frame
  EXPECT_EQ(payload_len(f), 1u);
}

TEST(frame_parse, not_a_flood_packet) {
  EXPECT_EQ(payload_len(frame(100, 53)), size_t(-1)) << "another UDP port";
  auto arp = frame(100);
  arp[12] = 0x08, arp[13] = 0x06;
  EXPECT_EQ(payload_len(arp), size_t(-1));
  auto tcp = frame(100);
  tcp[14 + 9] = 6;
  EXPECT_EQ(payload_len(tcp), size_t(-1));
  auto frag = frame(100);
  frag[14 + 6] = 0x20;  // more fragments
  EXPECT_EQ(payload_len(frag), size_t(-1));
  auto v6 = frame(100);
  v6[14] = 0x65;
  EXPECT_EQ(payload_len(v6), size_t(-1));
}

TEST(frame_parse, lengths_are_checked) {
  auto f = frame(100);
  for (size_t cut : {0ul, 13ul, 33ul, 41ul, f.size() - 1})
    EXPECT_EQ(flood_udp_payload(f.data(), cut, FrameStart::ethernet, kPort).data(), nullptr) << "cut at " << cut;
  auto big_udp = frame(100);
  big_udp[14 + 20 + 5] = 200;  // UDP length beyond the IP datagram
  EXPECT_EQ(payload_len(big_udp), size_t(-1));
  auto small_udp = frame(100);
  small_udp[14 + 20 + 4] = 0, small_udp[14 + 20 + 5] = 4;  // below the UDP header
  EXPECT_EQ(payload_len(small_udp), size_t(-1));
  auto ihl = frame(100);
  ihl[14] = 0x44;  // IHL 16 bytes
  EXPECT_EQ(payload_len(ihl), size_t(-1));
}

TEST(tpacket_options, geometry_refused_with_the_rule) {
  RingGeometry g{1 << 20, 64, 2048, 60, 0};
  EXPECT_NO_THROW(check_ring_geometry(g, TPACKET_V3));
  g.block_size = 3000;
  try {
    check_ring_geometry(g, TPACKET_V3);
    ADD_FAILURE() << "block size 3000 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("3000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("page size"), std::string::npos) << e.what();
  }
  RingGeometry f{4096, 8, 2056, 0, 0};
  EXPECT_THROW(check_ring_geometry(f, TPACKET_V2), UsageError) << "frame size not a multiple of 16";
  RingGeometry small{4096, 8, 32, 0, 0};
  EXPECT_THROW(check_ring_geometry(small, TPACKET_V2), UsageError) << "frame size below the header";
  RingGeometry priv{4096, 8, 2048, 10, 4096};
  EXPECT_THROW(check_ring_geometry(priv, TPACKET_V3), UsageError) << "private area fills the block";
  EXPECT_EQ(fanout_mode("lb"), PACKET_FANOUT_LB);
  // qm joined the accepted modes with sink workers (issue "Engine v2").
  EXPECT_EQ(fanout_mode("qm"), PACKET_FANOUT_QM);
  EXPECT_THROW(fanout_mode("queue"), UsageError);
}

}  // namespace
}  // namespace zc
