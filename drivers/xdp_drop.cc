// `xdp_drop`: the cheapest receiver there is, and so the lab's ceiling. An
// XDP program on the sink veth counts the flood's IPv4/UDP frames in a
// per-CPU array map and drops them in the driver's NAPI poll, before any skb
// exists. The sink thread only reads the map (sum over CPUs) and reports the
// increase to Accounting as counted, unchecked packets: no payload ever
// reaches user space, so sequence checks are impossible by design.
//
// The program replaces the xdp lab's own (atomically, XDP_FLAGS_REPLACE) for
// the rest of that lab's life: a lab serves one trial. On a named interface
// (`sink --iface`) it replaces the program of the BPF link the wire sink holds
// there (harness/xdp_link.h), so it too vanishes with the process.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "drivers/drivers.h"
#include "harness/errors.h"
#include "harness/xdp_link.h"
#include "harness/xdp_prog.h"

namespace zc {
namespace {

using nlohmann::json;

class XdpDropSink : public RxDriver {
 public:
  void open(const RxContext& ctx) override {
    // The count already runs on every CPU that polls the sink veth (one NAPI
    // per queue: spread it with --queues); a second user-space reader would
    // only replace the program under the first.
    if (ctx.workers > 1)
      throw UsageError("rx xdp_drop counts in XDP on every CPU the sink's NAPI runs on; " +
                       std::to_string(ctx.workers) +
                       " sink workers add nothing; accepted: 1 sink worker (spread the work with --queues)");
    AttachedXdp lab_prog = find_attached_xdp(ctx.ifindex, ctx.ifname);
    if (!lab_prog.xskmap.valid())
      throw UsageError("rx xdp_drop needs --lab-mode xdp: " + ctx.ifname + " has " +
                       (lab_prog.prog_id ? "a foreign XDP program ('" + lab_prog.prog_name + "')"
                                         : std::string("no XDP program")) +
                       "; the xdp lab mode gives its veth NAPI threaded and pinned to the sink CPU");
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) throw EnvError(errno_text("libbpf_num_possible_cpus", -ncpu), -ncpu);
    values_.resize(size_t(ncpu) * 2);
    map_ = create_map(BPF_MAP_TYPE_PERCPU_ARRAY, "zc_drop_count", 4, 16, 1);
    prog_ = load_count_and_drop_program(map_.get(), ctx.udp_port);
    replace_xdp(ctx.ifindex, ctx.ifname, prog_.get(), lab_prog.prog.get());  // a named interface: its BPF link
    replaced_ = lab_prog.prog_name;
  }

  size_t receive(Accounting& acct, int timeout_ms) override {
    // The counter moves without us; 1 ms between reads keeps the meter's
    // window edges within ~1 ms of traffic.
    usleep(useconds_t(std::clamp(timeout_ms, 0, 1) * 1000));
    auto [pkts, bytes] = read_counter();
    const uint64_t n = pkts - last_pkts_, b = bytes - last_bytes_;
    last_pkts_ = pkts;
    last_bytes_ = bytes;
    if (n) {
      acct.begin_batch();
      acct.on_counted(n, b);
    }
    ++reads_;
    return size_t(n);
  }

  json kernel_stats() override {
    auto [pkts, bytes] = read_counter();
    return {{"xdp_program", "zc_count_drop"},
            {"replaced_program", replaced_},
            {"map_packets", pkts},
            {"map_payload_bytes", bytes},
            {"map_reads", reads_},
            {"per_cpu", per_cpu()},
            {"notes", json::array({"counted and dropped in XDP (driver NAPI) before any skb; payloads never "
                                   "reach user space, so sequences are unchecked"})}};
  }

 private:
  // The map's per-CPU slots as last read (kernel_stats reads first): where the
  // NAPI polls ran, CPUs that counted nothing left out.
  json per_cpu() const {
    json out = json::array();
    for (size_t i = 0; i + 1 < values_.size(); i += 2)
      if (values_[i] || values_[i + 1])
        out.push_back({{"cpu", i / 2}, {"packets", values_[i]}, {"payload_bytes", values_[i + 1]}});
    return out;
  }

  std::pair<uint64_t, uint64_t> read_counter() {
    const uint32_t key = 0;
    if (bpf_map_lookup_elem(map_.get(), &key, values_.data()) < 0)
      throw EnvError(errno_text("bpf(BPF_MAP_LOOKUP_ELEM) of the xdp_drop counter", errno), errno);
    uint64_t p = 0, b = 0;
    for (size_t i = 0; i + 1 < values_.size(); i += 2) {
      p += values_[i];
      b += values_[i + 1];
    }
    return {p, b};
  }

  BpfFd map_, prog_;
  std::vector<uint64_t> values_;  // per possible CPU: packets, payload bytes
  uint64_t last_pkts_ = 0, last_bytes_ = 0, reads_ = 0;
  std::string replaced_;
};

}  // namespace

DriverInfo xdp_drop_driver_info() {
  DriverInfo d;
  d.name = "xdp_drop";
  d.direction = Direction::rx;
  d.description =
      "XDP program counting (per-CPU map) and dropping the flood in the driver: the lab's ceiling; needs "
      "--lab-mode xdp";
  d.probe = [] {
    try {
      BpfFd p = load_xdp_pass_program();
      return Usability{};
    } catch (const EnvError& e) {
      return Usability{false, e.what()};
    }
  };
  d.make_rx = [] { return std::make_unique<XdpDropSink>(); };
  return d;
}

}  // namespace zc
