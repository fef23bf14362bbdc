// Accounting of kernel pktgen packets (AccountingMode::pktgen): pktgen's own
// header, not the flood header, gives the sequence.
#include <gtest/gtest.h>

#include <vector>

#include "harness/accounting.h"

namespace zc {
namespace {

// struct pktgen_hdr as net/core/pktgen.c writes it: pgh_magic, seq_num
// (big endian), tv_sec, tv_usec; then padding up to pkt_size.
std::vector<uint8_t> pktgen_payload(uint32_t seq, size_t len = 230) {
  std::vector<uint8_t> p(len, 0);
  const uint32_t magic = 0xbe9be955;
  for (int i = 0; i < 4; ++i) {
    p[size_t(i)] = uint8_t(magic >> (24 - 8 * i));
    p[size_t(4 + i)] = uint8_t(seq >> (24 - 8 * i));
  }
  return p;
}

TEST(accounting, PktgenModeParses) {
  EXPECT_EQ(parse_accounting_mode("pktgen"), AccountingMode::pktgen);
  EXPECT_STREQ(accounting_mode_name(AccountingMode::pktgen), "pktgen");
}

TEST(accounting, PktgenSequenceGapsFromOne) {
  Accounting a(AccountingMode::pktgen, 1);
  for (uint32_t s : {1u, 2u, 3u, 5u, 6u, 9u}) {
    auto p = pktgen_payload(s);
    a.on_packet(p.data(), p.size());
  }
  nlohmann::json j = a.sequence_json();
  EXPECT_EQ(a.packets(), 6u);
  EXPECT_EQ(a.unique(), 6u);
  EXPECT_EQ(j["gaps"], 3u) << j.dump();  // 4, 7, 8
  EXPECT_EQ(j["pktgen_headers"], 6u);
  EXPECT_EQ(j["foreign"], 0u);
  EXPECT_EQ(j["checked"], false) << "the flood header was not checked";
}

TEST(accounting, PktgenLeadingLossIsAGap) {
  Accounting a(AccountingMode::pktgen, 1);
  auto p = pktgen_payload(4);
  a.on_packet(p.data(), p.size());
  EXPECT_EQ(a.sequence_json()["gaps"], 3u);
}

// clone_skb and burst send one skb (one seq_num) several times: a repeat, not
// a duplicate failure; every packet still counts as received.
TEST(accounting, PktgenRepeatsAreNotDuplicates) {
  Accounting a(AccountingMode::pktgen, 1);
  for (uint32_t s : {1u, 1u, 1u, 2u, 2u, 2u}) {
    auto p = pktgen_payload(s);
    a.on_packet(p.data(), p.size());
  }
  nlohmann::json j = a.sequence_json();
  EXPECT_EQ(a.duplicates(), 0u);
  EXPECT_EQ(a.unique(), 6u);
  EXPECT_EQ(j["pktgen_repeats"], 4u);
  EXPECT_EQ(j["gaps"], 0u);
}

TEST(accounting, PktgenForeignWithoutMagic) {
  Accounting a(AccountingMode::pktgen, 1);
  auto p = pktgen_payload(1);
  p[0] ^= 0xff;
  a.on_packet(p.data(), p.size());
  std::vector<uint8_t> tiny(6, 0);
  a.on_packet(tiny.data(), tiny.size());
  nlohmann::json j = a.sequence_json();
  EXPECT_EQ(j["foreign"], 2u);
  EXPECT_EQ(j["pktgen_headers"], 0u);
  EXPECT_EQ(a.packets(), 2u);
}

}  // namespace
}  // namespace zc
