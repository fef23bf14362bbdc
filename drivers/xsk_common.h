// What the AF_XDP RX and TX transports share: options, UMEM + socket set-up
// through libxdp's xsk API, the copy/zero-copy decision with the kernel's
// answer, busy-poll socket options, and XDP_STATISTICS.
//
// Sockets are created with XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD: libxdp 1.3.1
// wants a bpffs at /sys/fs/bpf for its dispatcher, which this host lacks; the
// xdp lab mode attaches its own program and XSKMAP (harness/lab_xdp.h), and a
// receiving socket registers itself in that map.
#pragma once
#include <linux/if_xdp.h>
#include <xdp/xsk.h>

#include <cstdint>
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
};

std::vector<OptionSpec> xsk_option_specs(Direction dir);
XskConfig xsk_config(const DriverOptions& o, Direction dir);

// Probe shared by both directions: can this kernel create an AF_XDP socket?
Usability probe_af_xdp();

// The kernel's raw XDP_STATISTICS; throws EnvError unless optlen comes back as
// sizeof(xdp_statistics) (all six fields).
xdp_statistics read_xdp_statistics(int fd);
nlohmann::json xdp_statistics_json(const xdp_statistics& s);

class XskSocket {
 public:
  XskSocket() = default;
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;
  ~XskSocket();

  // UMEM of cfg.frames x cfg.frame_size, socket bound to ifname/queue with
  // the RX and/or TX ring. mode auto: zero-copy first, and on refusal copy,
  // keeping the kernel's reason. Throws EnvError with the kernel's reason.
  void open(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx);

  int fd() const;
  uint8_t* umem_area() const { return area_; }
  bool zerocopy() const { return zerocopy_; }
  // Everything decided at open, for kernel_stats(): bind mode, the zero-copy
  // refusal, busy-poll options accepted or refused.
  nlohmann::json open_report() const;

  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};

 private:
  int try_bind(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx, uint16_t bind_flags);
  void close_socket();
  void set_busy_poll(const XskConfig& cfg);

  uint8_t* area_ = nullptr;
  size_t area_bytes_ = 0;
  xsk_umem* umem_ = nullptr;
  xsk_socket* xsk_ = nullptr;
  bool zerocopy_ = false;
  std::string zerocopy_refused_;
  nlohmann::json busy_poll_ = nlohmann::json::object();
  nlohmann::json notes_ = nlohmann::json::array();
  std::string bind_mode_;
};

}  // namespace zc
