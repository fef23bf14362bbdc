// Every transport's info function, one per file in drivers/. registry.cc lists
// them; a new transport adds one line here and one there.
#pragma once
#include "harness/driver.h"
#include "harness/generator.h"

namespace zc {

// RX (sinks)
DriverInfo recv_driver_info();      // drivers/recv.cc
DriverInfo recvmmsg_driver_info();  // drivers/recvmmsg.cc
DriverInfo io_uring_recv_driver_info();  // drivers/io_uring_recv.cc
DriverInfo splice_driver_info();    // drivers/splice.cc
DriverInfo af_xdp_rx_driver_info();  // drivers/af_xdp.cc
DriverInfo xdp_drop_driver_info();  // drivers/xdp_drop.cc
DriverInfo tcpdump_driver_info();      // drivers/tcpdump.cc (peer)
DriverInfo netsniff_ng_driver_info();  // drivers/netsniff_ng.cc (peer)
DriverInfo xdp_bench_driver_info();    // drivers/xdp_tools.cc (peer)
DriverInfo tpacket_v1_driver_info();  // drivers/tpacket_v1.cc
DriverInfo tpacket_v2_driver_info();  // drivers/tpacket_v2.cc
DriverInfo tpacket_v3_driver_info();  // drivers/tpacket_v3.cc
DriverInfo libpcap_driver_info();     // drivers/libpcap.cc

// TX
DriverInfo sendto_driver_info();    // drivers/sendto.cc
DriverInfo sendmmsg_driver_info();  // drivers/sendmmsg.cc
DriverInfo msg_zerocopy_driver_info();      // drivers/msg_zerocopy.cc
DriverInfo io_uring_send_driver_info();     // drivers/io_uring_send.cc
DriverInfo io_uring_send_zc_driver_info();  // drivers/io_uring_send_zc.cc
DriverInfo udp_gso_driver_info();           // drivers/udp_gso.cc
DriverInfo vmsplice_driver_info();  // drivers/vmsplice.cc
DriverInfo sendfile_driver_info();  // drivers/sendfile.cc
DriverInfo af_xdp_tx_driver_info();  // drivers/af_xdp.cc
DriverInfo tx_ring_driver_info();   // drivers/tx_ring.cc

// Generators
GeneratorInfo pktgen_generator_info();   // drivers/pktgen.cc
GeneratorInfo trafgen_generator_info();  // drivers/trafgen.cc
GeneratorInfo xdp_trafficgen_generator_info();  // drivers/xdp_tools.cc

// Which xdp:* tracepoints xdp-tools' BPF objects need the running kernel's
// BTF lacks, as one sentence (drivers/xdp_tools.cc).
std::string xdp_tools_btf_probe();

}  // namespace zc
