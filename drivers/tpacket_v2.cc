// `tpacket_v2`: a PACKET_RX_RING with TPACKET_V2 frames — V1 with fixed-width
// fields, ns timestamps and the VLAN tag: what capture tools used before V3.
// The frame walk is shared with V1 (FrameRingSink in tpacket_ring.h).
#include "drivers/drivers.h"
#include "drivers/tpacket_ring.h"

namespace zc {

DriverInfo tpacket_v2_driver_info() {
  DriverInfo d;
  d.name = "tpacket_v2";
  d.rx_hw_stamps = true;  // RxContext::hw_timestamps (sink --hw-timestamps)
  d.direction = Direction::rx;
  d.description = "PACKET_RX_RING, TPACKET_V2 frames: one packet per fixed slot, ns timestamps, VLAN fields";
  d.traffic = "tap";
  d.options = tpacket_option_specs(TPACKET_V2);
  d.probe = [] { return probe_packet_ring(TPACKET_V2); };
  d.make_rx = [] { return std::make_unique<FrameRingSink<tpacket2_hdr>>(TPACKET_V2); };
  return d;
}

}  // namespace zc
