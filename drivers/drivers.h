// Every transport's info function, one per file in drivers/. registry.cc lists
// them; a new transport adds one line here and one there.
#pragma once
#include "harness/driver.h"

namespace zc {

// RX (sinks)
DriverInfo recv_driver_info();      // drivers/recv.cc
DriverInfo recvmmsg_driver_info();  // drivers/recvmmsg.cc
DriverInfo tpacket_v1_driver_info();  // drivers/tpacket_v1.cc
DriverInfo tpacket_v2_driver_info();  // drivers/tpacket_v2.cc
DriverInfo tpacket_v3_driver_info();  // drivers/tpacket_v3.cc

// TX
DriverInfo sendto_driver_info();    // drivers/sendto.cc
DriverInfo sendmmsg_driver_info();  // drivers/sendmmsg.cc

}  // namespace zc
