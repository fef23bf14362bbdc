// The peers' probe (drivers/capture_peer.h): an absent program is a skip whose
// reason names the Debian package to install, in the one wording every peer uses.
#include <unistd.h>

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

// "drop --version" is two arguments: passed as one, xdp-bench answered
// "Command 'drop --version' is unknown" and every xdp-tools peer was skipped
// as not installed although it was.
TEST(peer_probe, ArgumentWordsAreSeparateArguments) {
  EXPECT_EQ(program_version_line("printf", "%s| x y"), "x|y|");
}

TEST(peer_probe, InstalledXdpBenchIsFound) {
  if (access("/usr/sbin/xdp-bench", X_OK) != 0 && access("/usr/bin/xdp-bench", X_OK) != 0)
    GTEST_SKIP() << "xdp-tools not installed here (apt-get install xdp-tools)";
  Usability u = peer_installed("xdp-bench", "drop --version", "xdp-bench version", "xdp-tools");
  EXPECT_TRUE(u.usable) << u.reason;
}

// A program that runs but answers otherwise is quoted, not called absent.
TEST(peer_probe, AnAnswerThatIsNotThePeersIsQuoted) {
  const std::string why = peer_probe_reason("xdp-bench", "drop --version", "xdp-bench version", "xdp-tools",
                                            "Command 'drop --version' is unknown, try 'xdp-bench help'.");
  EXPECT_EQ(why,
            "peer xdp-bench did not answer as xdp-tools does: `xdp-bench drop --version` printed \"Command 'drop "
            "--version' is unknown, try 'xdp-bench help'.\", expected a line starting \"xdp-bench version\"");
}

// xdp-bench drop on a kernel whose BTF lacks a tracepoint of its xdp_sample
// object (captured on 6.18): the reason quotes libbpf's line naming it, and
// the program's last words.
TEST(peer_probe, FailureQuotesTheTellingLineAndTheLast) {
  const std::string captured =
      " libxdp: No bpffs found at /sys/fs/bpf\n"
      " libxdp: Can't use dispatcher without a working bpffs\n"
      "  libbpf: prog 'tp_xdp_redirect_map_err': failed to find kernel BTF type ID of 'xdp_redirect_map_err': -3\n"
      "  libbpf: prog 'tp_xdp_redirect_map_err': failed to prepare load attributes: -3\n"
      "  libbpf: prog 'tp_xdp_redirect_map_err': failed to load: -3\n"
      "  libbpf: failed to load object 'xdp_basic'\n"
      "Failed to attach XDP program: No such process\n";
  // "Can't use dispatcher" reports a failure too, but it is libxdp falling
  // back, not the cause: the BTF line must be the one quoted.
  EXPECT_EQ(quote_peer_messages(captured),
            "\"libbpf: prog 'tp_xdp_redirect_map_err': failed to find kernel BTF type ID of "
            "'xdp_redirect_map_err': -3\" ... \"Failed to attach XDP program: No such process\"");
  EXPECT_EQ(quote_peer_messages(""), "no output");
  EXPECT_EQ(quote_peer_messages("only line\n"), "\"only line\"");
}

}  // namespace
}  // namespace zc
