// External generators: traffic sources other than the FPGA-style flood
// (kernel pktgen, netsniff-ng's trafgen). They own their packets end to end,
// so the harness reads "sent" from the generator-side veth's tx_packets and
// the sink counts packets (no flood header to check). The flood itself is not
// one of these: it runs through any TX transport (harness/flood.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/driver.h"
#include "harness/lab.h"
#include "harness/options.h"

namespace zc {

struct GenContext {
  const Lab* lab = nullptr;
  size_t payload_bytes = 0;
  double rate_pps = 0;      // <= 0: as fast as the generator goes
  uint64_t count = 0;       // 0: bounded by time only (end_ns given to run())
  uint32_t burst = 1;
  int flows = 1;
  bool tap_traffic = false; // frames carry kTapForeignMac (lab ports' traffic_dst_mac)
  DriverOptions options;
  std::string artifacts_dir;  // where a generator may leave replayable scripts; empty: none
};

class Generator {
 public:
  virtual ~Generator() = default;
  // On the generator thread, inside the generator namespace, pinned. Throws
  // EnvError with the reason when the generator cannot run here.
  virtual void open(const GenContext& ctx) = 0;
  // Sends until end_ns (CLOCK_MONOTONIC), the count, or `stop`; returns when
  // the generator has stopped for good (no kernel thread still sending).
  virtual void run(uint64_t start_ns, uint64_t end_ns, const std::atomic<bool>& stop) = 0;
  // Raw figures after run() (the generator's own counters, its result lines).
  virtual nlohmann::json stats() { return nlohmann::json::object(); }
};

struct GeneratorInfo {
  std::string name;
  std::string description;
  std::vector<OptionSpec> options;
  std::function<Usability()> probe;
  std::function<std::unique_ptr<Generator>()> make;
  nlohmann::json to_json(bool with_probe) const;
};

// The name of the built-in generator: the flood, through the TX transport.
inline constexpr const char* kFloodGenerator = "flood";

}  // namespace zc
