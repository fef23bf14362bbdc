#include "harness/registry.h"

#include "drivers/drivers.h"
#include "harness/errors.h"

namespace zc {

const char* direction_name(Direction d) { return d == Direction::rx ? "rx" : "tx"; }

const std::vector<DriverInfo>& all_drivers() {
  static const std::vector<DriverInfo> drivers = {
      // RX
      recv_driver_info(),
      recvmmsg_driver_info(),
      tpacket_v1_driver_info(),
      tpacket_v2_driver_info(),
      tpacket_v3_driver_info(),
      libpcap_driver_info(),
      splice_driver_info(),
      io_uring_recv_driver_info(),
      af_xdp_rx_driver_info(),
      xdp_drop_driver_info(),
      tcpdump_driver_info(),
      netsniff_ng_driver_info(),
      xdp_bench_driver_info(),
      // TX
      sendto_driver_info(),
      sendmmsg_driver_info(),
      tx_ring_driver_info(),
      vmsplice_driver_info(),
      sendfile_driver_info(),
      msg_zerocopy_driver_info(),
      io_uring_send_driver_info(),
      io_uring_send_zc_driver_info(),
      udp_gso_driver_info(),
      af_xdp_tx_driver_info(),
  };
  return drivers;
}

const std::vector<GeneratorInfo>& all_generators() {
  static const std::vector<GeneratorInfo> generators = {
      pktgen_generator_info(),
      trafgen_generator_info(),
      xdp_trafficgen_generator_info(),
  };
  return generators;
}

const GeneratorInfo& find_generator(const std::string& name) {
  std::string known = kFloodGenerator;
  for (const auto& g : all_generators()) {
    if (g.name == name) return g;
    known += ", " + g.name;
  }
  throw UsageError("generator '" + name + "' is unknown; accepted: " + known);
}

DriverOptions validate_generator_options(const GeneratorInfo& info, const std::map<std::string, std::string>& given) {
  return validate_options("generator " + info.name, info.options, given);
}

nlohmann::json GeneratorInfo::to_json(bool with_probe) const {
  nlohmann::json j{{"name", name}, {"direction", "generator"}, {"description", description}};
  nlohmann::json opts = nlohmann::json::array();
  for (const auto& o : options) opts.push_back(o.to_json());
  j["options"] = opts;
  if (with_probe) {
    Usability u = probe ? probe() : Usability{};
    j["usable"] = u.usable;
    j["reason"] = u.reason;
  }
  return j;
}

const DriverInfo& find_driver(const std::string& name, Direction dir) {
  std::string known;
  for (const auto& d : all_drivers()) {
    if (d.direction != dir) continue;
    if (d.name == name) return d;
    known += (known.empty() ? "" : ", ") + d.name;
  }
  throw UsageError(std::string(dir == Direction::rx ? "receive" : "transmit") + " transport '" + name +
                   "' is unknown; accepted: " + known);
}

const std::vector<OptionSpec>& common_rx_options() {
  static const std::vector<OptionSpec> opts = {
      {"accounting", OptionType::choice, "full",
       "full: check every flood header (sequence, integrity, latency); count: count packets only, "
       "to measure the harness's own cost",
       0, 0, {"full", "count"}},
  };
  return opts;
}

DriverOptions validate_driver_options(const DriverInfo& info, const std::map<std::string, std::string>& given) {
  std::vector<OptionSpec> specs = info.options;
  if (info.direction == Direction::rx)
    specs.insert(specs.begin(), common_rx_options().begin(), common_rx_options().end());
  return validate_options(std::string(direction_name(info.direction)) + " " + info.name, specs, given);
}

nlohmann::json DriverInfo::to_json(bool with_probe) const {
  nlohmann::json j{{"name", name}, {"direction", direction_name(direction)}, {"description", description},
                   {"traffic", traffic}};
  nlohmann::json opts = nlohmann::json::array();
  if (direction == Direction::rx)
    for (const auto& o : common_rx_options()) opts.push_back(o.to_json());
  for (const auto& o : options) opts.push_back(o.to_json());
  j["options"] = opts;
  if (with_probe) {
    Usability u = probe ? probe() : Usability{};
    j["usable"] = u.usable;
    j["reason"] = u.reason;
  }
  return j;
}

}  // namespace zc
