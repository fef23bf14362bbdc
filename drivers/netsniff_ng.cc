// `netsniff_ng` peer sink: netsniff-ng (TPACKET_V3 ring, zero-copy capture)
// in the sink namespace on the sink CPU, writing standard pcap (-T
// 0xa1b2c3d4) into our pipe as its output file (/dev/fd/3); its messages
// and exit statistics go to stdout, captured separately.
//
// netsniff-ng tries to raise the host-wide net.core.{r,w}mem_{max,default}
// at start (and restore them at exit); inside the lab's namespace the kernel
// refuses (EACCES), so the host is untouched — recorded as sysctl_refusals.
#include <regex>

#include "drivers/capture_peer.h"
#include "drivers/drivers.h"

namespace zc {
namespace {

uint64_t count_before(const std::string& text, const std::string& phrase) {
  std::smatch m;
  std::regex re("([0-9]+)\\s+" + phrase);
  return std::regex_search(text, m, re) ? std::stoull(m[1].str()) : 0;
}

class NetsniffSink : public CapturePeerSink {
 protected:
  std::vector<std::string> command(const RxContext& ctx) const override {
    std::vector<std::string> a = {"netsniff-ng", "--in", ctx.ifname, "--out", "/dev/fd/3", "--silent",
                                  "-T",          "0xa1b2c3d4"};
    int64_t ring = ctx.options.integer("ring_size");
    if (ring > 0) a.insert(a.end(), {"--ring-size", std::to_string(ring / 1024) + "KiB"});
    // Its own bound, never reached in a normal trial (capture_peer.h).
    if (uint64_t n = peer_packet_bound(ctx)) a.insert(a.end(), {"--num", std::to_string(n)});
    return a;
  }
  bool pcap_on_fd3() const override { return true; }
  bool ready(const std::string& m) const override { return m.find("Running!") != std::string::npos; }
  PeerStats parse_stats(const std::string& m) const override {
    PeerStats s;
    s.captured = count_before(m, "packets passed filter");
    s.dropped_by_kernel = count_before(m, "packets failed filter \\(out of space\\)");
    size_t refusals = 0;
    for (size_t p = 0; (p = m.find("Cannot set system socket memory", p)) != std::string::npos; ++p) ++refusals;
    s.raw = {{"incoming", count_before(m, "packets incoming")},
             {"sysctl_refusals", refusals},
             {"version", program_version_line("netsniff-ng", "-v")},
             {"messages", m.size() > 2000 ? m.substr(m.size() - 2000) : m}};
    return s;
  }
  std::string program() const override { return "netsniff-ng"; }
};

}  // namespace

DriverInfo netsniff_ng_driver_info() {
  DriverInfo d;
  d.name = "netsniff_ng";
  d.direction = Direction::rx;
  d.traffic = "tap";
  d.description = "peer: netsniff-ng in the sink namespace on the sink CPU, pcap to a pipe parsed by the harness "
                  "(reader shares the sink CPU)";
  d.options = {{"ring_size", OptionType::size, "0", "--ring-size (0: netsniff-ng's default)", 0, 1ll << 32, {}}};
  d.probe = [] { return peer_installed("netsniff-ng", "-v", "netsniff-ng", "netsniff-ng"); };
  d.make_rx = [] { return std::make_unique<NetsniffSink>(); };
  return d;
}

}  // namespace zc
