// `tcpdump` peer sink: Debian's tcpdump (libpcap, TPACKET_V3 ring) capturing
// on the sink veth and writing pcap to our pipe (`-w -`), as `tcpdump -w
// file` would write a file: stdio-buffered, so the pipe gets 4 KiB chunks
// and the last chunk comes when tcpdump exits (it is accounted then).
#include <regex>

#include "drivers/capture_peer.h"
#include "drivers/drivers.h"

namespace zc {
namespace {

uint64_t count_before(const std::string& text, const std::string& phrase) {
  std::smatch m;
  std::regex re("([0-9]+) " + phrase);
  return std::regex_search(text, m, re) ? std::stoull(m[1].str()) : 0;
}

class TcpdumpSink : public CapturePeerSink {
 protected:
  std::vector<std::string> command(const RxContext& ctx) const override {
    std::vector<std::string> a = {"tcpdump", "-i", ctx.ifname, "-n", "-w", "-"};
    int64_t kib = ctx.options.integer("buffer") / 1024;
    if (kib > 0) a.insert(a.end(), {"-B", std::to_string(kib)});
    // Its own bound, never reached in a normal trial (capture_peer.h).
    if (uint64_t n = peer_packet_bound(ctx)) a.insert(a.end(), {"-c", std::to_string(n)});
    return a;
  }
  bool pcap_on_fd3() const override { return false; }
  bool ready(const std::string& m) const override { return m.find("listening on") != std::string::npos; }
  PeerStats parse_stats(const std::string& m) const override {
    PeerStats s;
    s.captured = count_before(m, "packets captured");
    s.dropped_by_kernel = count_before(m, "packets dropped by kernel");
    s.raw = {{"received_by_filter", count_before(m, "packets received by filter")},
             {"dropped_by_interface", count_before(m, "packets dropped by interface")},
             {"version", program_version_line("tcpdump", "--version")},
             {"messages", m.size() > 2000 ? m.substr(m.size() - 2000) : m}};
    return s;
  }
  std::string program() const override { return "tcpdump"; }
};

}  // namespace

DriverInfo tcpdump_driver_info() {
  DriverInfo d;
  d.name = "tcpdump";
  d.direction = Direction::rx;
  d.traffic = "tap";
  d.description = "peer: Debian's tcpdump in the sink namespace on the sink CPU, pcap to a pipe parsed by the "
                  "harness (reader shares the sink CPU)";
  d.options = {{"buffer", OptionType::size, "0", "libpcap buffer (-B, KiB granularity; 0: libpcap's 2 MiB default)",
                0, 1ll << 30, {}}};
  d.probe = [] { return peer_installed("tcpdump", "--version", "tcpdump version", "tcpdump"); };
  d.make_rx = [] { return std::make_unique<TcpdumpSink>(); };
  return d;
}

}  // namespace zc
