// What the AF_XDP RX and TX transports share: options, UMEM + socket set-up
// through libxdp's xsk API, the copy/zero-copy decision with the kernel's
// answer, busy-poll socket options, and XDP_STATISTICS.
//
// Sockets are created with XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD: libxdp 1.3.1
// wants a bpffs at /sys/fs/bpf for its dispatcher, which this host lacks; the
// xdp lab mode attaches its own program and XSKMAP (harness/lab_xdp.h), and a
// receiving socket registers itself in that map.
//
// UMEM per worker (umem=separate, the default) or one UMEM per side
// (umem=shared): worker 0 registers it, the other workers bind with
// XDP_SHARED_UMEM to worker 0's socket (Documentation/networking/af_xdp.rst,
// "XDP_SHARED_UMEM bind flag"). Each worker owns its own queue, so since
// Linux 5.10 each socket brings its own fill and completion ring, and the
// chunks are partitioned between the workers (frame_share()): no frame is
// ever handed between threads, so no allocator lock is needed.
#pragma once
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/driver.h"

namespace zc {

// Ethernet 14 + IPv4 20 + UDP 8: where the UDP payload starts in a frame.
inline constexpr size_t kXskFrameHeaders = 42;

struct XskConfig {
  std::string mode = "auto";  // copy | zerocopy | auto
  bool need_wakeup = true;
  uint32_t batch = 64;
  uint32_t ring_size = 2048;  // RX or TX ring
  uint32_t fill_comp_size = 4096;
  uint32_t frame_size = 2048;
  uint32_t frames = 4096;
  bool busy_poll = false;
  int busy_poll_usecs = 20;
  uint32_t queue = 0;
  bool shared_umem = false;  // umem=shared
  int worker = 0;            // this socket's place among the side's workers
  int workers = 1;
};

// The UMEM chunks a worker owns: all of them with its own UMEM, its slice
// [first, first + count) of the shared one (frames / workers each).
struct FrameShare {
  uint32_t first = 0;
  uint32_t count = 0;
};
FrameShare frame_share(const XskConfig& cfg);
// "shared" only when there is something to share (several workers).
bool umem_is_shared(const XskConfig& cfg);

std::vector<OptionSpec> xsk_option_specs(Direction dir);
XskConfig xsk_config(const DriverOptions& o, Direction dir);

// Probe shared by both directions: can this kernel create an AF_XDP socket?
Usability probe_af_xdp();

// The kernel's raw XDP_STATISTICS; throws EnvError unless optlen comes back as
// sizeof(xdp_statistics) (all six fields).
xdp_statistics read_xdp_statistics(int fd);
nlohmann::json xdp_statistics_json(const xdp_statistics& s);

struct XskUmem;
struct XskUmemGroup;

class XskSocket {
 public:
  XskSocket() = default;
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;
  ~XskSocket();

  // UMEM of cfg.frames x cfg.frame_size, socket bound to ifname/queue with
  // the RX and/or TX ring. mode auto: zero-copy first, and on refusal copy,
  // keeping the kernel's reason. Throws EnvError with the kernel's reason.
  // Shared UMEM: worker 0 does the above and publishes its UMEM; worker k
  // waits for it and binds with XDP_SHARED_UMEM (the copy/zero-copy mode is
  // then worker 0's: the kernel takes it from the UMEM's first socket).
  void open(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx);

  int fd() const;
  uint8_t* umem_area() const;
  bool zerocopy() const { return zerocopy_; }
  // Everything decided at open, for kernel_stats(): bind mode, the zero-copy
  // refusal, busy-poll options accepted or refused.
  nlohmann::json open_report() const;

  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};

 private:
  void open_own(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx);
  void open_shared(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx);
  int try_bind(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx, uint16_t bind_flags);
  void close_socket();
  void set_busy_poll(const XskConfig& cfg);

  std::shared_ptr<XskUmem> umem_;       // the area and libxdp's UMEM, maybe shared
  std::shared_ptr<XskUmemGroup> group_;  // umem=shared: the side's rendezvous
  xsk_socket* xsk_ = nullptr;
  nlohmann::json umem_report_ = nlohmann::json::object();
  bool zerocopy_ = false;
  std::string zerocopy_refused_;
  nlohmann::json busy_poll_ = nlohmann::json::object();
  nlohmann::json notes_ = nlohmann::json::array();
  std::string bind_mode_;
};

}  // namespace zc
