#include "drivers/xsk_common.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "harness/errors.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace zc {

using nlohmann::json;

std::vector<OptionSpec> xsk_option_specs(Direction dir) {
  const bool rx = dir == Direction::rx;
  return {
      {"mode", OptionType::choice, "auto",
       "copy: XDP_COPY; zerocopy: XDP_ZEROCOPY (fails where the driver cannot); auto: zero-copy first, then "
       "copy, recording the kernel's refusal",
       0, 0, {"copy", "zerocopy", "auto"}},
      {"need_wakeup", OptionType::boolean, "on",
       "bind with XDP_USE_NEED_WAKEUP: syscalls only when the kernel's ring flag asks", 0, 0, {}},
      {"batch", OptionType::integer, "64", rx ? "RX descriptors taken per peek" : "TX descriptors per commit", 1,
       1024, {}},
      {"ring_size", OptionType::integer, "2048", rx ? "RX ring entries (power of two)" : "TX ring entries (power of two)",
       64, 65536, {}},
      {"fill_comp_size", OptionType::integer, "4096", "fill and completion ring entries (power of two)", 64, 65536,
       {}},
      {"frame_size", OptionType::integer, "2048", "UMEM chunk size: 2048 or 4096", 2048, 4096, {}},
      {"frames", OptionType::integer, "4096", "UMEM chunks", 64, 262144, {}},
      {"busy_poll", OptionType::boolean, "off",
       "SO_PREFER_BUSY_POLL + SO_BUSY_POLL + SO_BUSY_POLL_BUDGET (=batch); the loop then drives NAPI with "
       "non-blocking syscalls",
       0, 0, {}},
      {"busy_poll_usecs", OptionType::integer, "20", "SO_BUSY_POLL value in microseconds", 1, 1000, {}},
  };
}

namespace {
bool power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

void require_power_of_two(const char* name, uint32_t v, Direction dir) {
  if (!power_of_two(v))
    throw UsageError(std::string(direction_name(dir)) + " af_xdp option " + name + "=" + std::to_string(v) +
                     " is not a power of two (the kernel refuses other ring sizes with EINVAL)");
}
}  // namespace

XskConfig xsk_config(const DriverOptions& o, Direction dir) {
  XskConfig c;
  c.mode = o.text("mode");
  c.need_wakeup = o.boolean("need_wakeup");
  c.batch = uint32_t(o.integer("batch"));
  c.ring_size = uint32_t(o.integer("ring_size"));
  c.fill_comp_size = uint32_t(o.integer("fill_comp_size"));
  c.frame_size = uint32_t(o.integer("frame_size"));
  c.frames = uint32_t(o.integer("frames"));
  c.busy_poll = o.boolean("busy_poll");
  c.busy_poll_usecs = int(o.integer("busy_poll_usecs"));
  require_power_of_two("ring_size", c.ring_size, dir);
  require_power_of_two("fill_comp_size", c.fill_comp_size, dir);
  if (c.frame_size != 2048 && c.frame_size != 4096)
    throw UsageError(std::string(direction_name(dir)) + " af_xdp option frame_size=" + std::to_string(c.frame_size) +
                     " is not accepted; accepted: 2048, 4096 (aligned UMEM chunks, at most the page size)");
  return c;
}

Usability probe_af_xdp() {
  int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) return {false, errno_text("socket(AF_XDP)", errno)};
  close(fd);
  return {true, "copy mode; zero-copy needs a driver with XSK pool support (veth refuses it with EOPNOTSUPP)"};
}

xdp_statistics read_xdp_statistics(int fd) {
  xdp_statistics s{};
  socklen_t len = sizeof s;
  check_sys(getsockopt(fd, SOL_XDP, XDP_STATISTICS, &s, &len), "getsockopt(XDP_STATISTICS)");
  if (len != sizeof s)
    throw EnvError("getsockopt(XDP_STATISTICS) returned " + std::to_string(len) + " bytes, expected " +
                   std::to_string(sizeof s) + " (all six fields)");
  return s;
}

json xdp_statistics_json(const xdp_statistics& s) {
  return {{"rx_dropped", s.rx_dropped},
          {"rx_invalid_descs", s.rx_invalid_descs},
          {"tx_invalid_descs", s.tx_invalid_descs},
          {"rx_ring_full", s.rx_ring_full},
          {"rx_fill_ring_empty_descs", s.rx_fill_ring_empty_descs},
          {"tx_ring_empty_descs", s.tx_ring_empty_descs}};
}

XskSocket::~XskSocket() {
  close_socket();
  if (area_) munmap(area_, area_bytes_);
}

void XskSocket::close_socket() {
  if (xsk_) xsk_socket__delete(xsk_);
  xsk_ = nullptr;
  if (umem_) xsk_umem__delete(umem_);
  umem_ = nullptr;
}

int XskSocket::fd() const { return xsk_ ? xsk_socket__fd(xsk_) : -1; }

int XskSocket::try_bind(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx,
                        uint16_t bind_flags) {
  xsk_umem_config uc{};
  uc.fill_size = cfg.fill_comp_size;
  uc.comp_size = cfg.fill_comp_size;
  uc.frame_size = cfg.frame_size;
  uc.frame_headroom = 0;
  uc.flags = 0;
  int rc = xsk_umem__create(&umem_, area_, area_bytes_, &fill, &comp, &uc);
  if (rc) {
    umem_ = nullptr;
    return rc;
  }
  xsk_socket_config sc{};
  sc.rx_size = with_rx ? cfg.ring_size : 0;
  sc.tx_size = with_tx ? cfg.ring_size : 0;
  sc.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  sc.bind_flags = bind_flags | (cfg.need_wakeup ? XDP_USE_NEED_WAKEUP : 0);
  rc = xsk_socket__create(&xsk_, ifname.c_str(), cfg.queue, umem_, with_rx ? &rx : nullptr, with_tx ? &tx : nullptr,
                          &sc);
  if (rc) {
    xsk_ = nullptr;
    close_socket();
  }
  return rc;
}

void XskSocket::open(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx) {
  area_bytes_ = size_t(cfg.frames) * cfg.frame_size;
  void* p = mmap(nullptr, area_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw EnvError(errno_text("mmap UMEM of " + std::to_string(area_bytes_) + " bytes", errno), errno);
  area_ = static_cast<uint8_t*>(p);
  const std::string where = "AF_XDP socket on " + ifname + " queue " + std::to_string(cfg.queue);

  if (cfg.mode == "zerocopy" || cfg.mode == "auto") {
    int rc = try_bind(ifname, cfg, with_rx, with_tx, XDP_ZEROCOPY);
    if (rc == 0) {
      zerocopy_ = true;
      bind_mode_ = "zerocopy";
    } else {
      zerocopy_refused_ = errno_text("bind " + where + " with XDP_ZEROCOPY", -rc);
      if (cfg.mode == "zerocopy") throw EnvError(zerocopy_refused_, -rc);
      notes_.push_back("zero-copy refused by the kernel: " + zerocopy_refused_ +
                       "; fell back to copy mode (every frame is copied into the UMEM)");
    }
  }
  if (!xsk_) {
    int rc = try_bind(ifname, cfg, with_rx, with_tx, XDP_COPY);
    if (rc) throw EnvError(errno_text("bind " + where + " with XDP_COPY", -rc), -rc);
    bind_mode_ = "copy";
    if (cfg.mode == "copy") notes_.push_back("copy mode as asked (zero-copy not tried)");
  }
  if (cfg.busy_poll) set_busy_poll(cfg);
}

void XskSocket::set_busy_poll(const XskConfig& cfg) {
  auto set = [&](const char* name, int opt, int value) {
    if (setsockopt(fd(), SOL_SOCKET, opt, &value, sizeof value) == 0) {
      busy_poll_[name] = value;
    } else {
      busy_poll_[name] = "refused: " + errno_text(std::string("setsockopt(") + name + ")", errno);
      notes_.push_back(busy_poll_[name].get<std::string>());
    }
  };
  set("SO_PREFER_BUSY_POLL", SO_PREFER_BUSY_POLL, 1);
  set("SO_BUSY_POLL", SO_BUSY_POLL, cfg.busy_poll_usecs);
  set("SO_BUSY_POLL_BUDGET", SO_BUSY_POLL_BUDGET, int(cfg.batch));
}

json XskSocket::open_report() const {
  json j{{"bind_mode", bind_mode_}, {"notes", notes_}};
  if (!zerocopy_refused_.empty()) j["zerocopy_refused"] = zerocopy_refused_;
  if (!busy_poll_.empty()) j["busy_poll"] = busy_poll_;
  return j;
}

}  // namespace zc
