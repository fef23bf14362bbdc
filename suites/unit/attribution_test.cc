#include "harness/attribution.h"

#include <gtest/gtest.h>

namespace zc {
namespace {

DropCounters sent_received(uint64_t sent, uint64_t received) {
  DropCounters c;
  c.sent = sent;
  c.received_unique = received;
  return c;
}

TEST(attribution, NoLoss) {
  auto a = attribute_drops(sent_received(1000, 1000));
  EXPECT_EQ(a.lost, 0u);
  EXPECT_EQ(a.unattributed, 0u);
  EXPECT_EQ(a.over_attributed, 0u);
  EXPECT_TRUE(a.reconciled);
}

TEST(attribution, BacklogDropCountedOnce) {
  // One veth backlog drop raises softnet dropped, the sink's rx_dropped and
  // the generator's tx_dropped at once.
  auto c = sent_received(100000, 99000);
  c.softnet_dropped = 1000;
  c.sink_rx_dropped = 1000;
  c.gen_tx_dropped = 1000;
  auto a = attribute_drops(c);
  EXPECT_EQ(a.lost, 1000u);
  EXPECT_EQ(a.backlog, 1000u);
  EXPECT_EQ(a.link, 0u);
  EXPECT_EQ(a.unattributed, 0u);
  EXPECT_EQ(a.over_attributed, 0u);
  EXPECT_TRUE(a.reconciled);
}

TEST(attribution, LinkOnlyDrops) {
  auto c = sent_received(100000, 99300);
  c.sink_rx_dropped = 700;
  auto a = attribute_drops(c);
  EXPECT_EQ(a.backlog, 0u);
  EXPECT_EQ(a.link, 700u);
  EXPECT_EQ(a.unattributed, 0u);
  EXPECT_TRUE(a.reconciled);

  // Link drops beyond the backlog share: only the excess is "link".
  c = sent_received(100000, 99000);
  c.softnet_dropped = 600;
  c.sink_rx_dropped = 600;
  c.gen_tx_dropped = 1000;
  a = attribute_drops(c);
  EXPECT_EQ(a.backlog, 600u);
  EXPECT_EQ(a.link, 400u);
  EXPECT_EQ(a.unattributed, 0u);
  EXPECT_EQ(a.over_attributed, 0u);
}

TEST(attribution, SocketAndRingLayers) {
  auto c = sent_received(100000, 98000);
  c.udp_rcvbuf_errors = 1200;
  c.udp_other_errors = 300;
  c.ring_drops = 500;
  auto a = attribute_drops(c);
  EXPECT_EQ(a.lost, 2000u);
  EXPECT_EQ(a.socket_rcvbuf, 1200u);
  EXPECT_EQ(a.socket_other, 300u);
  EXPECT_EQ(a.ring, 500u);
  EXPECT_EQ(a.backlog, 0u);
  EXPECT_EQ(a.link, 0u);
  EXPECT_EQ(a.unattributed, 0u);
  EXPECT_TRUE(a.reconciled);
}

TEST(attribution, Unattributed) {
  auto c = sent_received(100000, 99000);
  c.udp_rcvbuf_errors = 400;
  auto a = attribute_drops(c);
  EXPECT_EQ(a.lost, 1000u);
  EXPECT_EQ(a.unattributed, 600u);
  EXPECT_EQ(a.over_attributed, 0u);
  EXPECT_FALSE(a.reconciled);
}

TEST(attribution, OverAttributed) {
  auto c = sent_received(1000, 1000);  // tolerance 10
  c.udp_rcvbuf_errors = 50;
  auto a = attribute_drops(c);
  EXPECT_EQ(a.lost, 0u);
  EXPECT_EQ(a.over_attributed, 50u);
  EXPECT_EQ(a.unattributed, 0u);
  EXPECT_FALSE(a.reconciled);
  // Counters for more than was lost, e.g. a drop in two layers' counters.
  c = sent_received(1000, 900);
  c.softnet_dropped = 100;
  c.udp_rcvbuf_errors = 100;
  a = attribute_drops(c);
  EXPECT_EQ(a.over_attributed, 100u);
  EXPECT_FALSE(a.reconciled);
}

TEST(attribution, MoreReceivedThanSentIsNoLoss) {
  auto a = attribute_drops(sent_received(100, 150));
  EXPECT_EQ(a.lost, 0u);
  EXPECT_TRUE(a.reconciled);
}

TEST(attribution, Tolerance) {
  EXPECT_EQ(reconciliation_tolerance(0), 10u);
  EXPECT_EQ(reconciliation_tolerance(10000), 10u);
  EXPECT_EQ(reconciliation_tolerance(1'000'000), 1000u);
  EXPECT_TRUE(attribute_drops(sent_received(1'000'000, 999'000)).reconciled);   // 1000 unexplained
  EXPECT_FALSE(attribute_drops(sent_received(1'000'000, 998'999)).reconciled);  // 1001
  EXPECT_TRUE(attribute_drops(sent_received(100, 90)).reconciled);              // 10 of a small trial
  EXPECT_FALSE(attribute_drops(sent_received(100, 89)).reconciled);
  auto c = sent_received(1'000'000, 1'000'000);
  c.ring_drops = 1000;
  EXPECT_TRUE(attribute_drops(c).reconciled);
  c.ring_drops = 1001;
  EXPECT_FALSE(attribute_drops(c).reconciled);
}

TEST(attribution, Json) {
  auto c = sent_received(1000, 900);
  c.softnet_dropped = 40;
  c.sink_rx_dropped = 60;
  c.udp_rcvbuf_errors = 30;
  c.udp_other_errors = 5;
  c.ring_drops = 2;
  auto j = attribute_drops(c).to_json();
  EXPECT_EQ(j["lost"], 100);
  EXPECT_EQ(j["backlog"], 40);
  EXPECT_EQ(j["link"], 20);
  EXPECT_EQ(j["socket_rcvbuf"], 30);
  EXPECT_EQ(j["socket_other"], 5);
  EXPECT_EQ(j["ring"], 2);
  EXPECT_EQ(j["unattributed"], 3);
  EXPECT_EQ(j["over_attributed"], 0);
  EXPECT_EQ(j.size(), 8u);
}

}  // namespace
}  // namespace zc
