#include "harness/flood_header.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace zc {
namespace {

// Textbook RFC 1071: big-endian 16-bit words, an odd tail byte padded with a
// zero low byte, end-around carry. Independent of the optimised code under test.
uint16_t reference_checksum(const std::vector<uint8_t>& p) {
  uint32_t sum = 0;
  for (size_t i = 0; i < p.size(); i += 2) {
    uint32_t hi = p[i];
    uint32_t lo = i + 1 < p.size() ? p[i + 1] : 0;
    sum += (hi << 8) | lo;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum & 0xffff);
}

std::vector<uint8_t> written(size_t len, const FloodHeader& h) {
  std::vector<uint8_t> p(len, 0xAA);
  flood_write_payload(p.data(), len, h);
  return p;
}

// Sizes around every boundary the code has: the basic/extended header split,
// the 8-byte and 64-byte loops, odd lengths, and jumbo frames.
std::vector<size_t> interesting_sizes() {
  std::vector<size_t> s;
  for (size_t n = 18; n <= 160; ++n) s.push_back(n);
  for (size_t n : {255, 256, 257, 271, 272, 273, 1471, 1472, 1473, 8999, 9000}) s.push_back(n);
  return s;
}

TEST(flood_header, Rfc1071Example) {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(ones_complement_add(0, data, sizeof data), 0xddf2u);
  EXPECT_EQ(ones_complement_fold(0xddf2), 0x220d);
  // Odd length: the tail byte is the high byte of a zero-padded word.
  const uint8_t odd[] = {0x12, 0x34, 0x56};
  EXPECT_EQ(ones_complement_add(0, odd, sizeof odd), 0x1234u + 0x5600u);
  // A running sum is added, with the carry wrapped around.
  EXPECT_EQ(ones_complement_fold(ones_complement_add(0xffff, data, 2)), static_cast<uint16_t>(~0x0001 & 0xffff));
}

TEST(flood_header, LayoutIsNetworkByteOrder) {
  FloodHeader h{0x0102030405060708ull, 0x1112131415161718ull, 0x2122};
  auto p = written(272, h);
  const uint8_t expect[] = {1,    2,    3,    4,    5,    6,    7,    8,    0x11, 0x12, 0x13, 0x14,
                            0x15, 0x16, 0x17, 0x18, 0x21, 0x22, 0x5A, 0x43, 0x42, 0x4E};
  EXPECT_EQ(std::memcmp(p.data(), expect, sizeof expect), 0);
  for (size_t i = 24; i < p.size(); ++i) ASSERT_EQ(p[i], static_cast<uint8_t>(i * 7 + 1)) << "body byte " << i;
}

TEST(flood_header, ShortPayloadHasOnlyBasicFields) {
  FloodHeader h{7, 8, 9};
  for (size_t len = 18; len < 24; ++len) {
    auto p = written(len, h);
    for (size_t i = 18; i < len; ++i) EXPECT_EQ(p[i], 0) << "len " << len << " byte " << i;
    FloodHeader r;
    ASSERT_EQ(flood_read(p.data(), len, &r, true), FloodCheck::ok) << len;
    EXPECT_EQ(r.seq, 7u);
    EXPECT_EQ(r.tx_ns, 8u);
    EXPECT_EQ(r.flow, 9);
  }
}

TEST(flood_header, ChecksumMatchesReferenceAndRoundTrips) {
  FloodHeader h{123456789012345ull, 987654321098765ull, 513};
  for (size_t len : interesting_sizes()) {
    if (len < kFloodExtendedMin) continue;
    auto p = written(len, h);
    uint16_t stored = static_cast<uint16_t>(p[22] << 8 | p[23]);
    auto zeroed = p;
    zeroed[22] = zeroed[23] = 0;
    uint16_t ref = reference_checksum(zeroed);
    EXPECT_EQ(stored, ref == 0 ? 0xffff : ref) << "len " << len;
    EXPECT_EQ(reference_checksum(p), 0) << "len " << len;
    FloodHeader r;
    ASSERT_EQ(flood_read(p.data(), len, &r, true), FloodCheck::ok) << "len " << len;
    EXPECT_EQ(r.seq, h.seq);
    EXPECT_EQ(r.tx_ns, h.tx_ns);
    EXPECT_EQ(r.flow, h.flow);
  }
}

TEST(flood_header, StampEqualsFullWrite) {
  for (size_t len : interesting_sizes()) {
    auto p = written(len, FloodHeader{0, 0, 0});
    uint32_t body = flood_body_sum(len);
    for (uint64_t seq : {1ull, 255ull, 65535ull, 0xffffffffffffffffull, 0x8000000000000001ull}) {
      FloodHeader h{seq, seq * 3 + 1, static_cast<uint16_t>(seq & 0xffff)};
      flood_stamp(p.data(), len, h, body);
      ASSERT_EQ(p, written(len, h)) << "len " << len << " seq " << seq;
    }
  }
}

TEST(flood_header, ComputedZeroChecksumIsStoredAsFfff) {
  // Search the tx_ns space for a header whose checksum computes to 0: it must
  // be stored as 0xffff and still verify.
  const size_t len = 64;
  auto p = written(len, FloodHeader{});
  uint32_t body = flood_body_sum(len);
  bool found = false;
  for (uint64_t t = 0; t < 70000 && !found; ++t) {
    flood_stamp(p.data(), len, FloodHeader{0, t, 0}, body);
    auto zeroed = p;
    zeroed[22] = zeroed[23] = 0;
    if (reference_checksum(zeroed) != 0) continue;
    found = true;
    EXPECT_EQ(p[22], 0xff);
    EXPECT_EQ(p[23], 0xff);
    FloodHeader r;
    EXPECT_EQ(flood_read(p.data(), len, &r, true), FloodCheck::ok);
  }
  EXPECT_TRUE(found) << "no tx_ns below 70000 gives a zero checksum";
}

TEST(flood_header, AnySingleCorruptedByteIsDetected) {
  FloodHeader h{42, 1234567, 3};
  for (size_t len : {24, 25, 63, 64, 65, 272, 1473}) {
    auto good = written(len, h);
    for (size_t i = 0; i < len; ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        auto p = good;
        p[i] ^= mask;
        FloodHeader r;
        FloodCheck c = flood_read(p.data(), len, &r, true);
        FloodCheck want = i >= 18 && i < 22 ? FloodCheck::bad_magic : FloodCheck::bad_checksum;
        ASSERT_EQ(c, want) << "len " << len << " byte " << i << " xor " << int(mask);
      }
    }
  }
}

TEST(flood_header, VerifyOffSkipsChecks) {
  auto p = written(272, FloodHeader{5, 6, 0});
  p[100] ^= 0xff;
  p[18] = 0;
  FloodHeader r;
  EXPECT_EQ(flood_read(p.data(), p.size(), &r, false), FloodCheck::ok);
  EXPECT_EQ(r.seq, 5u);
  EXPECT_EQ(flood_read(p.data(), p.size(), &r, true), FloodCheck::bad_magic);
}

TEST(flood_header, TooShort) {
  std::vector<uint8_t> p(17, 0);
  FloodHeader r;
  for (size_t len = 0; len < kFloodMinPayload; ++len) {
    EXPECT_EQ(flood_read(p.data(), len, &r, true), FloodCheck::too_short) << len;
    EXPECT_EQ(flood_read(p.data(), len, &r, false), FloodCheck::too_short) << len;
  }
}

}  // namespace
}  // namespace zc
