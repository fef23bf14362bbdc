// StreamFramer: a TCP byte stream cut back into flood messages, whatever the
// read sizes, so stream-mode sinks account exactly like datagram sinks.
#include <gtest/gtest.h>

#include <vector>

#include "drivers/tcp_stream.h"
#include "harness/flood_header.h"

namespace zc {
namespace {

std::vector<uint8_t> stream_of(size_t messages, size_t len, uint16_t flow) {
  std::vector<uint8_t> s(messages * len);
  for (size_t i = 0; i < messages; ++i) flood_write_payload(s.data() + i * len, len, FloodHeader{i, 1, flow});
  return s;
}

TEST(StreamFramer, any_read_sizes_give_every_message_intact) {
  constexpr size_t kLen = 272, kMessages = 100;
  const std::vector<uint8_t> stream = stream_of(kMessages, kLen, 0);
  for (size_t read : {size_t(1), size_t(7), size_t(271), size_t(272), size_t(273), size_t(1000), stream.size()}) {
    Accounting acct(AccountingMode::full, 1);
    StreamFramer framer(kLen);
    size_t done = 0;
    for (size_t off = 0; off < stream.size(); off += read)
      done += framer.feed(stream.data() + off, std::min(read, stream.size() - off), acct);
    EXPECT_EQ(done, kMessages) << "reads of " << read;
    EXPECT_EQ(acct.packets(), kMessages);
    EXPECT_EQ(acct.unique(), kMessages);
    EXPECT_EQ(acct.corrupt(), 0u) << "reads of " << read;
    EXPECT_EQ(framer.pending(), 0u);
  }
}

TEST(StreamFramer, truncated_tail_stays_pending) {
  const std::vector<uint8_t> stream = stream_of(3, 100, 0);
  Accounting acct(AccountingMode::full, 1);
  StreamFramer framer(100);
  EXPECT_EQ(framer.feed(stream.data(), 250, acct), 2u);
  EXPECT_EQ(framer.pending(), 50u);
}

TEST(StreamFramer, misaligned_stream_is_detected) {
  // One byte lost from the stream: every later message is misframed, and the
  // accounting must see that (bad magic/checksum), never a clean count.
  std::vector<uint8_t> stream = stream_of(10, 272, 0);
  stream.erase(stream.begin() + 300);
  Accounting acct(AccountingMode::full, 1);
  StreamFramer framer(272);
  framer.feed(stream.data(), stream.size(), acct);
  EXPECT_GT(acct.corrupt() + acct.foreign(), 0u);
}

TEST(StreamFramer, count_mode_counts_from_byte_totals) {
  Accounting acct(AccountingMode::count, 1);
  StreamFramer framer(1000);
  EXPECT_EQ(framer.feed_count(2500, acct), 2u);
  EXPECT_EQ(framer.feed_count(499, acct), 0u);
  EXPECT_EQ(framer.feed_count(1, acct), 1u);
  EXPECT_EQ(acct.packets(), 3u);
  EXPECT_EQ(framer.pending(), 0u);
}

}  // namespace
}  // namespace zc
