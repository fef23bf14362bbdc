// The peers' probe (drivers/capture_peer.h): an absent program is a skip whose
// reason names the Debian package to install, in the one wording every peer uses.
#include <gtest/gtest.h>

#include "drivers/capture_peer.h"

namespace zc {
namespace {

TEST(peer_probe, AbsentProgramNamesThePackage) {
  Usability u = peer_installed("zcbench-no-such-program", "--version", "zcbench", "some-package");
  EXPECT_FALSE(u.usable);
  EXPECT_EQ(u.reason,
            "peer zcbench-no-such-program not installed (`zcbench-no-such-program --version` failed): "
            "apt-get install some-package");
}

TEST(peer_probe, ProgramThatAnswersIsUsable) {
  Usability u = peer_installed("echo", "tcpdump version 4.99", "tcpdump version", "tcpdump");
  EXPECT_TRUE(u.usable) << u.reason;
  EXPECT_EQ(u.reason, "");
}

// A program that runs but is not the peer (another tool of that name) is not usable either.
TEST(peer_probe, WrongProgramIsNotUsable) {
  EXPECT_FALSE(peer_installed("echo", "something else", "tcpdump version", "tcpdump").usable);
}

}  // namespace
}  // namespace zc
