// Generators: what sends a trial's traffic. The FPGA-style flood through any
// TX transport is one (harness/flood.h, flood_generator_info()); kernel pktgen
// and netsniff-ng's trafgen are others. The trial core treats them alike: each
// GeneratorInfo declares how its packets are accounted at the sink and how its
// sent count is read, so the core never asks which generator it runs.
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
  double rate_pps = 0;      // <= 0: as fast as the generator goes (this worker's share)
  uint64_t count = 0;       // 0: bounded by time only (end_ns given to run()); this worker's share
  uint32_t burst = 1;
  int flows = 1;            // the trial's flows (a worker sends f % workers == worker)
  bool tap_traffic = false; // frames carry kTapForeignMac (lab ports' traffic_dst_mac)
  DriverOptions options;
  std::string artifacts_dir;  // where a generator may leave replayable scripts; empty: none
  // Generators that send through a TX transport (GeneratorInfo::tx_transport):
  // which one, with its validated options.
  const DriverInfo* tx = nullptr;
  DriverOptions tx_options;
  int mtu = 1500;
  std::string size_mix;     // frame-size mix (TrialSpec::size_mix); empty: every packet payload_bytes
  // This instance's place among the generator workers (GeneratorInfo::workers).
  int worker = 0;
  int workers = 1;
  int queue = -1;
  int cpu = -1;
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
  // Packets sent so far, for generators whose GeneratorInfo::sent is
  // SentFrom::own_count; read by the meter thread at any time.
  virtual uint64_t sent() const { return 0; }
  // Transmits the generator's path refused (retried, not lost); the record's
  // raw.tx_errors.
  virtual uint64_t refusals() const { return 0; }
  // The record's raw.driver_stats entries besides "rx", after run(): by
  // default {"generator": stats()}; the flood gives {"tx": ..., "flood": ...}.
  virtual nlohmann::json driver_stats() { return {{"generator", stats()}}; }
  // Raw figures after run() (the generator's own counters, its result lines).
  virtual nlohmann::json stats() { return nlohmann::json::object(); }
};

// What the sink finds in the generator's packets.
enum class PacketFormat {
  flood,   // the flood header (harness/flood_header.h): the sink's `accounting` option decides full/count
  pktgen,  // kernel pktgen's own header (magic + seq_num): gaps checked, repeats by design
  count,   // nothing the sink can check: it counts
};

// Where the trial reads how many packets the generator sent.
enum class SentFrom {
  own_count,    // Generator::sent()
  gen_link_tx,  // the generator-side veths' tx_packets over the trial
};

struct GeneratorInfo {
  std::string name;
  std::string description;
  std::vector<OptionSpec> options;
  std::function<Usability()> probe;
  std::function<std::unique_ptr<Generator>()> make;
  PacketFormat packets = PacketFormat::count;
  SentFrom sent = SentFrom::gen_link_tx;
  // A stats() key counting transmits the veth refused and the generator sent
  // again: each also raised the generator veth's tx_dropped, so it is
  // subtracted there (not a loss). Empty: none.
  std::string resent_stat;
  // Sends through the trial's TX transport (--tx, --tx-opt): params.tx names it.
  bool tx_transport = false;
  // How many instances a trial may run (one per generator worker thread);
  // generators with threads of their own (pktgen, trafgen --cpus) run one.
  int max_workers = 1;
  nlohmann::json to_json(bool with_probe) const;
};

// The name of the built-in generator: the flood, through the TX transport.
inline constexpr const char* kFloodGenerator = "flood";

// The flood's GeneratorInfo (harness/flood.cc); not in all_generators(),
// which lists the external ones.
const GeneratorInfo& flood_generator_info();
// The trial's generator by name: the flood or an external one (throws
// UsageError listing the names).
const GeneratorInfo& trial_generator_info(const std::string& name);

}  // namespace zc
