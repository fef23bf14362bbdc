// `tpacket_v1`: a PACKET_RX_RING with TPACKET_V1 frames — the original ring
// layout, the baseline of claim 1 (V3 against V1).
// The frame walk is shared with V2 (FrameRingSink in tpacket_ring.h).
#include "drivers/drivers.h"
#include "drivers/tpacket_ring.h"

namespace zc {

DriverInfo tpacket_v1_driver_info() {
  DriverInfo d;
  d.name = "tpacket_v1";
  d.rx_hw_stamps = true;  // RxContext::hw_timestamps (sink --hw-timestamps)
  d.direction = Direction::rx;
  d.description = "PACKET_RX_RING, TPACKET_V1 frames: one packet per fixed slot (the original layout)";
  d.traffic = "tap";
  d.options = tpacket_option_specs(TPACKET_V1);
  d.probe = [] { return probe_packet_ring(TPACKET_V1); };
  d.make_rx = [] { return std::make_unique<FrameRingSink<tpacket_hdr>>(TPACKET_V1); };
  return d;
}

}  // namespace zc
