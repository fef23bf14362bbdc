// Every transport's info function, one per file in drivers/. registry.cc lists
// them; a new transport adds one line here and one there.
#pragma once
#include "harness/driver.h"

namespace zc {

// RX (sinks)
DriverInfo recv_driver_info();      // drivers/recv.cc
DriverInfo recvmmsg_driver_info();  // drivers/recvmmsg.cc
DriverInfo tcpdump_driver_info();      // drivers/tcpdump.cc (peer)
DriverInfo netsniff_ng_driver_info();  // drivers/netsniff_ng.cc (peer)

// TX
DriverInfo sendto_driver_info();    // drivers/sendto.cc
DriverInfo sendmmsg_driver_info();  // drivers/sendmmsg.cc
DriverInfo tx_ring_driver_info();   // drivers/tx_ring.cc

}  // namespace zc
