// Every transport's info function, one per file in drivers/. registry.cc lists
// them; a new transport adds one line here and one there.
#pragma once
#include "harness/driver.h"
#include "harness/generator.h"

namespace zc {

// RX (sinks)
DriverInfo recv_driver_info();      // drivers/recv.cc
DriverInfo recvmmsg_driver_info();  // drivers/recvmmsg.cc

// TX
DriverInfo sendto_driver_info();    // drivers/sendto.cc
DriverInfo sendmmsg_driver_info();  // drivers/sendmmsg.cc

// Generators
GeneratorInfo pktgen_generator_info();  // drivers/pktgen.cc

}  // namespace zc
