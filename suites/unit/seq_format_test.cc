// Sequence-format descriptors (harness/seq_format.h) and AccountingMode::seq:
// parse and validate errors, and a foreign counter's gaps, duplicates,
// reordering, wrap and start anywhere.
#include "harness/seq_format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "harness/errors.h"
#include "harness/wire.h"

namespace zc {
namespace {

std::vector<uint8_t> payload_be64_at4(uint64_t counter, size_t len = 64) {
  std::vector<uint8_t> p(len, 0xaa);
  for (int i = 0; i < 8; ++i) p[size_t(4 + i)] = uint8_t(counter >> (56 - 8 * i));
  return p;
}

TEST(SeqFormat, ParsesCustomAndPresets) {
  SeqFormat f = parse_seq_format("offset=4,width=8,endian=big");
  EXPECT_EQ(f.offset, 4u);
  EXPECT_EQ(f.width, 8u);
  EXPECT_TRUE(f.big_endian);
  EXPECT_FALSE(f.has_flow);
  SeqFormat g = parse_seq_format("offset=46,width=4,endian=little,flow=50:2,base=frame");
  EXPECT_EQ(g.offset, 4u);  // frame 46 = payload 4
  EXPECT_EQ(g.flow_offset, 8u);
  EXPECT_FALSE(g.big_endian);
  SeqFormat p = parse_seq_format("pktgen");
  EXPECT_EQ(p.offset, 4u);
  EXPECT_EQ(p.width, 4u);
  EXPECT_EQ(parse_seq_format("flood").flow_width, 2u);
}

TEST(SeqFormat, BadDescriptorsAreUsageErrors) {
  for (const char* bad : {"width=4", "offset=x", "offset=4,width=3", "offset=4,endian=middle", "offset=4,flow=8",
                          "offset=4,color=red", "offset=4,base=ip", "offset=4,width=8,flow=6:2",
                          "offset=20,width=4,base=frame"})
    EXPECT_THROW(parse_seq_format(bad), UsageError) << bad;
}

TEST(SeqFormat, FieldOutsideTheFrameOrOnTheFloodHeaderIsRefused) {
  SeqFormat f = parse_seq_format("offset=268,width=8");
  EXPECT_THROW(validate_seq_format(f, 272, false), UsageError);
  EXPECT_NO_THROW(validate_seq_format(parse_seq_format("offset=264,width=8"), 272, false));
  EXPECT_THROW(validate_seq_format(parse_seq_format("offset=4,width=8"), 272, true), UsageError);
  EXPECT_NO_THROW(validate_seq_format(parse_seq_format("offset=24,width=8"), 272, true));
  EXPECT_NO_THROW(validate_seq_format(parse_seq_format("flood"), 272, true));
  try {
    validate_seq_format(f, 272, false);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the 272-byte UDP payload"), std::string::npos) << e.what();
  }
}

TEST(SeqAccounting, FindsGapsDuplicatesAndReordersOfAForeignCounter) {
  Accounting acct(AccountingMode::seq, 1);
  acct.set_seq_format(parse_seq_format("offset=4,width=8,endian=big"));
  std::vector<uint64_t> order;
  for (uint64_t c = 5000; c < 5100; ++c)
    if (c != 5010 && c != 5011) order.push_back(c);  // 2 gaps
  order.insert(order.begin() + 30, order[29]);          // 1 duplicate
  std::swap(order[60], order[61]);                      // 1 reorder
  for (uint64_t c : order) {
    auto p = payload_be64_at4(c);
    acct.on_packet(p.data(), p.size());
  }
  auto j = acct.sequence_json();
  EXPECT_EQ(j["unique"], 98);
  EXPECT_EQ(j["gaps"], 2);
  EXPECT_EQ(j["duplicates"], 1);
  EXPECT_EQ(j["reordered"], 1);
  EXPECT_EQ(j["seq_expected"], 100);
  EXPECT_EQ(acct.unique(), 98u);
}

TEST(SeqAccounting, A32BitCounterWrapsWithoutAGap) {
  Accounting acct(AccountingMode::seq, 1);
  acct.set_seq_format(parse_seq_format("offset=0,width=4,endian=little"));
  for (uint64_t c = 0xfffffff0ull; c < 0x100000010ull; ++c) {
    uint32_t v = uint32_t(c);
    uint8_t p[32] = {};
    std::memcpy(p, &v, 4);  // little endian host (x86)
    acct.on_packet(p, sizeof p);
  }
  auto j = acct.sequence_json();
  EXPECT_EQ(j["unique"], 32);
  EXPECT_EQ(j["gaps"], 0);
  EXPECT_EQ(j["reordered"], 0);
}

TEST(SeqAccounting, FlowsAreTrackedApartAndShortFramesCounted) {
  Accounting acct(AccountingMode::seq, 1);
  acct.set_seq_format(parse_seq_format("offset=0,width=4,flow=4:2"));
  for (uint32_t c = 0; c < 10; ++c)
    for (uint16_t flow : {7, 9}) {
      if (flow == 9 && c == 5) continue;  // one gap in flow 9 only
      uint8_t p[16] = {uint8_t(c >> 24), uint8_t(c >> 16), uint8_t(c >> 8), uint8_t(c), uint8_t(flow >> 8), uint8_t(flow)};
      acct.on_packet(p, sizeof p);
    }
  uint8_t tiny[3] = {};
  acct.on_packet(tiny, sizeof tiny);
  auto j = acct.sequence_json();
  EXPECT_EQ(j["seq_flows"], 2);
  EXPECT_EQ(j["gaps"], 1);
  EXPECT_EQ(j["seq_unreadable"], 1);
}

TEST(WireSafety, DefaultRouteInterfacesFromProcNetRoute) {
  const char* route =
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
      "eth1\t0012C6C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
  const char* route6 =
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 "
      "00000400 00000001 00000000 00000003     eth2\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 "
      "ffffffff 00000001 00000000 00200200       lo\n";
  auto v = default_route_interfaces(route, route6);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], "eth0");
  EXPECT_EQ(v[1], "eth2");
}

TEST(WireRates, L1AndL2BitRatesAndLinkShare) {
  // 272-byte payload: 318-byte frame; 2.35 Mpps -> L2 5.98 Gb/s, L1 6.35 Gb/s, 63.5 % of 10G.
  auto j = bit_rates(2.35e6, 318, 10000);
  EXPECT_DOUBLE_EQ(j["l2_bps"].get<double>(), 318 * 8 * 2.35e6);
  EXPECT_DOUBLE_EQ(j["l1_bps"].get<double>(), 338 * 8 * 2.35e6);
  EXPECT_NEAR(j["link_percent_l1"].get<double>(), 63.544, 0.01);
  EXPECT_TRUE(bit_rates(1, 64, std::nullopt)["link_percent_l1"].is_null());
}

}  // namespace
}  // namespace zc
