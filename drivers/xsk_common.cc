#include "drivers/xsk_common.h"

#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

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
      {"umem", OptionType::choice, "separate",
       "separate: a UMEM per worker; shared: the workers of this side bind with XDP_SHARED_UMEM to worker 0's "
       "UMEM, each with its own fill/completion ring and frames/workers of its chunks",
       0, 0, {"separate", "shared"}},
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
  c.shared_umem = o.text("umem") == "shared";
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

// The UMEM area and libxdp's handle on it. With umem=shared every worker's
// XskSocket holds it, and libxdp's xsk_umem (its socket list, refcount) is
// not thread-safe: every create and delete of a socket on it holds `mu`.
struct XskUmem {
  uint8_t* area = nullptr;
  size_t bytes = 0;
  xsk_umem* umem = nullptr;
  std::mutex mu;
  XskUmem(const XskUmem&) = delete;
  XskUmem& operator=(const XskUmem&) = delete;
  explicit XskUmem(size_t n) : bytes(n) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw EnvError(errno_text("mmap UMEM of " + std::to_string(bytes) + " bytes", errno), errno);
    area = static_cast<uint8_t*>(p);
  }
  // Last owner: every socket on it is deleted by then (xsk_umem__delete
  // refuses with EBUSY while one is left).
  ~XskUmem() {
    if (umem) xsk_umem__delete(umem);
    munmap(area, bytes);
  }
};

// Where the workers of one side meet: worker 0 publishes its UMEM (or its
// failure), the others wait for it. Found by (network namespace, interface,
// direction), which no other live trial shares; the registry holds it weakly,
// so it ends with the trial's sockets.
struct XskUmemGroup {
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<XskUmem> umem;  // set by worker 0 once its socket is bound
  int owner_fd = -1;
  std::string bind_mode;
  std::string failed;  // worker 0's error, when it could not open
};

namespace {

// Worker k gives up waiting for worker 0 after this long: worker 0 either
// publishes or fails within its own open(), well under a second here; the
// bound only turns a bug into an error instead of a hang.
constexpr auto kShareWait = std::chrono::seconds(10);

std::shared_ptr<XskUmemGroup> join_umem_group(const std::string& ifname, bool rx) {
  struct stat ns{};
  if (stat("/proc/thread-self/ns/net", &ns) != 0)
    throw EnvError(errno_text("stat /proc/thread-self/ns/net (the shared UMEM's namespace)", errno), errno);
  const unsigned ifindex = if_nametoindex(ifname.c_str());
  const std::string key = std::to_string(ns.st_dev) + ":" + std::to_string(ns.st_ino) + ":" +
                          std::to_string(ifindex) + (rx ? ":rx" : ":tx");
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<XskUmemGroup>> registry;
  std::lock_guard<std::mutex> lock(registry_mu);
  for (auto it = registry.begin(); it != registry.end();) it = it->second.expired() ? registry.erase(it) : ++it;
  std::shared_ptr<XskUmemGroup> g = registry[key].lock();
  if (!g) registry[key] = g = std::make_shared<XskUmemGroup>();
  return g;
}

}  // namespace

bool umem_is_shared(const XskConfig& cfg) { return cfg.shared_umem && cfg.workers > 1; }

FrameShare frame_share(const XskConfig& cfg) {
  if (!umem_is_shared(cfg)) return {0, cfg.frames};
  const uint32_t each = cfg.frames / uint32_t(cfg.workers);
  return {each * uint32_t(cfg.worker), each};
}

XskSocket::~XskSocket() { close_socket(); }

void XskSocket::close_socket() {
  if (xsk_) {
    std::lock_guard<std::mutex> lock(umem_->mu);
    xsk_socket__delete(xsk_);
  }
  xsk_ = nullptr;
  umem_.reset();
}

int XskSocket::fd() const { return xsk_ ? xsk_socket__fd(xsk_) : -1; }

uint8_t* XskSocket::umem_area() const { return umem_ ? umem_->area : nullptr; }

int XskSocket::try_bind(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx,
                        uint16_t bind_flags) {
  xsk_umem_config uc{};
  uc.fill_size = cfg.fill_comp_size;
  uc.comp_size = cfg.fill_comp_size;
  uc.frame_size = cfg.frame_size;
  uc.frame_headroom = 0;
  uc.flags = 0;
  int rc = xsk_umem__create(&umem_->umem, umem_->area, umem_->bytes, &fill, &comp, &uc);
  if (rc) {
    umem_->umem = nullptr;
    return rc;
  }
  xsk_socket_config sc{};
  sc.rx_size = with_rx ? cfg.ring_size : 0;
  sc.tx_size = with_tx ? cfg.ring_size : 0;
  sc.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  sc.bind_flags = bind_flags | (cfg.need_wakeup ? XDP_USE_NEED_WAKEUP : 0);
  rc = xsk_socket__create(&xsk_, ifname.c_str(), cfg.queue, umem_->umem, with_rx ? &rx : nullptr,
                          with_tx ? &tx : nullptr, &sc);
  if (rc) {
    xsk_ = nullptr;
    xsk_umem__delete(umem_->umem);
    umem_->umem = nullptr;
  }
  return rc;
}

void XskSocket::open(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx) {
  const FrameShare share = frame_share(cfg);
  umem_report_ = {{"umem", umem_is_shared(cfg) ? "shared" : "separate"},
                  {"umem_frames", cfg.frames},
                  {"frames_owned_first", share.first},
                  {"frames_owned", share.count}};
  if (!umem_is_shared(cfg)) {
    if (cfg.shared_umem) umem_report_["umem_note"] = "umem=shared with one worker: nothing to share";
    open_own(ifname, cfg, with_rx, with_tx);
  } else {
    group_ = join_umem_group(ifname, with_rx);
    if (cfg.worker == 0) {
      try {
        open_own(ifname, cfg, with_rx, with_tx);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(group_->mu);
        group_->failed = e.what();
        group_->cv.notify_all();
        throw;
      }
      std::lock_guard<std::mutex> lock(group_->mu);
      group_->umem = umem_;
      group_->owner_fd = fd();
      group_->bind_mode = bind_mode_;
      group_->cv.notify_all();
      umem_report_["umem_owner"] = "this worker (worker 0)";
    } else {
      open_shared(ifname, cfg, with_rx, with_tx);
    }
  }
  if (cfg.busy_poll) set_busy_poll(cfg);
}

void XskSocket::open_own(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx) {
  umem_ = std::make_shared<XskUmem>(size_t(cfg.frames) * cfg.frame_size);
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
}

void XskSocket::open_shared(const std::string& ifname, const XskConfig& cfg, bool with_rx, bool with_tx) {
  const std::string where = "AF_XDP socket of worker " + std::to_string(cfg.worker) + " on " + ifname + " queue " +
                            std::to_string(cfg.queue);
  std::shared_ptr<XskUmem> shared;
  {
    std::unique_lock<std::mutex> lock(group_->mu);
    if (!group_->cv.wait_for(lock, kShareWait, [&] { return group_->umem || !group_->failed.empty(); }))
      throw InternalError(where + ": worker 0 published no UMEM to share within 10 s");
    if (!group_->failed.empty())
      throw EnvError(where + ": no UMEM to share, worker 0 could not open its own: " + group_->failed);
    shared = group_->umem;
    bind_mode_ = group_->bind_mode;
    zerocopy_ = bind_mode_ == "zerocopy";
    umem_report_["umem_owner"] = "worker 0 (socket fd " + std::to_string(group_->owner_fd) + ")";
  }
  xsk_socket_config sc{};
  sc.rx_size = with_rx ? cfg.ring_size : 0;
  sc.tx_size = with_tx ? cfg.ring_size : 0;
  sc.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  // The kernel refuses bind flags beside XDP_SHARED_UMEM (EINVAL): the mode
  // and need_wakeup come from the UMEM's first socket; libxdp sets the flag
  // and sxdp_shared_umem_fd itself, and gives this socket its own fill and
  // completion ring because its queue has none yet.
  sc.bind_flags = 0;
  int rc;
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    rc = xsk_socket__create_shared(&xsk_, ifname.c_str(), cfg.queue, shared->umem, with_rx ? &rx : nullptr,
                                   with_tx ? &tx : nullptr, &fill, &comp, &sc);
  }
  if (rc) {
    xsk_ = nullptr;
    throw EnvError(errno_text("bind " + where + " with XDP_SHARED_UMEM (worker 0's UMEM)", -rc), -rc);
  }
  umem_ = std::move(shared);
  notes_.push_back("shares worker 0's UMEM (XDP_SHARED_UMEM), " + bind_mode_ + " mode as worker 0's socket");
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
  j.update(umem_report_);
  if (!zerocopy_refused_.empty()) j["zerocopy_refused"] = zerocopy_refused_;
  if (!busy_poll_.empty()) j["busy_poll"] = busy_poll_;
  return j;
}

}  // namespace zc
