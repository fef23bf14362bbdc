// The `xdp` lab mode (docs/design.md "Lab modes"): what Lab::create adds on top of
// the veth pairs when the mode is xdp.
//
// - sink veth: native XDP program redirecting to an XSKMAP entry when an
//   AF_XDP socket is registered for the receive queue, XDP_PASS otherwise
//   (so socket sinks still work in this mode);
// - generator veth: an XDP_PASS program, which makes veth run NAPI on it —
//   needed by anything that XDP_TXes or redirects into it (CONFORMANCE 41);
// - threaded NAPI on the sink veth (/sys/class/net/<dev>/threaded; veth
//   accepts it only once an XDP program gave it a NAPI instance) and the
//   NAPI kthread moved to the sink CPU (it starts wherever the scheduler
//   put it, typically CPU 0, the generator's). With several queues veth has
//   one NAPI instance, and so one kthread, per RX queue: queue q's goes to
//   lab_sink_cpu_for_queue(opts, q).
// Everything done is returned as JSON for the lab description.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "harness/lab.h"

namespace zc {

nlohmann::json setup_xdp_lab(const Netns& gen_ns, const Netns& sink_ns, const std::vector<LabPort>& ports,
                             const LabOptions& opts);

// Entries of the lab's XSKMAP: one per receive queue index a socket may bind.
inline constexpr uint32_t kLabXskmapEntries = 64;

}  // namespace zc
