// The pure parts of the wire trial's InterfaceGuard (harness/iface_guard.h);
// the guard itself on a real interface is tests/wire_trial.sh settings_restored.
#include "harness/iface_guard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness/errors.h"

namespace zc {
namespace {

TEST(IfaceGuard, CpuMaskIsWhatRpsCpusTakes) {
  // bitmap_parse: hex 32-bit words, most significant first, comma-separated.
  EXPECT_EQ(cpu_mask_hex({1}), "2");
  EXPECT_EQ(cpu_mask_hex({0, 1, 3}), "b");
  EXPECT_EQ(cpu_mask_hex({0, 33}), "2,00000001");
  EXPECT_EQ(cpu_mask_hex({}), "0");
}

TEST(IfaceGuard, NoPlanChangesNothingAndNeedsNoRestorer) {
  InterfaceGuard g("lo", {});
  EXPECT_TRUE(g.changed().empty());
  EXPECT_TRUE(g.not_restored_on_sigkill().empty());
}

TEST(IfaceGuard, ChangesOnlyWhatDiffersAndRestoresLastFirst) {
  std::string a = "off", b = "0";
  std::vector<std::string> order;
  IfaceSetting sa{"a", [&] { return a; }, [&](const std::string& v) {
    a = v;
    order.push_back("a=" + v);
  }};
  IfaceSetting sb{"b", [&] { return b; }, [&](const std::string& v) {
    b = v;
    order.push_back("b=" + v);
  }};
  IfaceSetting same{"same", [] { return std::string("x"); }, [&](const std::string&) { order.push_back("same"); }};
  {
    InterfaceGuard g("lo", {{sa, "on"}, {same, "x"}, {sb, "1"}});
    EXPECT_EQ(a, "on");
    EXPECT_EQ(b, "1");
    ASSERT_EQ(g.changed().size(), 2u);
    EXPECT_EQ(g.changed()[0]["setting"], "a");
    EXPECT_EQ(g.changed()[0]["before"], "off");
    EXPECT_EQ(g.changed()[0]["during"], "on");
  }
  EXPECT_EQ(a, "off");
  EXPECT_EQ(b, "0");
  EXPECT_EQ(order, (std::vector<std::string>{"a=on", "b=1", "b=0", "a=off"}));
}

TEST(IfaceGuard, UnreadableSettingRefusesBeforeAnyChange) {
  // A setting whose read fails (the driver lacks it) is an EnvError from the
  // constructor, before the other planned setting was written.
  bool written = false;
  IfaceSetting ok{"ok", [] { return std::string("a"); }, [&](const std::string&) { written = true; }};
  IfaceSetting bad{"bad", []() -> std::string { throw EnvError("no such setting"); }, [](const std::string&) {}};
  EXPECT_THROW(InterfaceGuard("lo", {{ok, "b"}, {bad, "x"}}), EnvError);
  EXPECT_FALSE(written);
}

}  // namespace
}  // namespace zc
