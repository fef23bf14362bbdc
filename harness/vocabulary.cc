#include "harness/vocabulary.h"

#include "harness/attribution.h"
#include "harness/errors.h"
#include "harness/lab.h"
#include "harness/trial.h"

namespace zc {

nlohmann::json vocabularies_json() {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : drop_layers()) layers.push_back({{"name", l.name}, {"counter", l.counter}});
  return {
      {"schema_version", kSchemaVersion},
      {"drop_layers", layers},
      {"drop_remainders", {kDropUnattributed, kDropOverAttributed}},
      {"reconciliation_tolerance", "max(10 packets, 0.1 % of sent)"},
      {"lab_modes", lab_mode_names()},
      {"frame_overhead",
       {{"l2_bytes", kEthernetOverhead},  // frame = payload + l2_bytes (Ethernet 14 + FCS 4 + IPv4 20 + UDP 8)
        {"ip_udp_bytes", kUdpIpv4Overhead},
        {"l1_bytes", kL1Overhead}}},
      {"generator_short_ratio", kGeneratorShortRatio},
      // Sinks that are not a choice a user makes: a ceiling delivers nothing to
      // anyone (it bounds what the lab carries), a peer is another project's
      // program run for comparison. Reports label them, never rank them "best".
      {"sink_roles", {{"ceiling", {"xdp_drop"}}, {"peer", {"tcpdump", "netsniff_ng", "xdp_bench"}}}},
      {"exit_codes",
       {{"ok", kExitOk},
        {"check_failed", kExitCheckFailed},
        {"usage", kExitUsage},
        {"environment", kExitEnvironment},
        {"internal", kExitInternal},
        {"skip", kExitSkip},
        {"interrupted", kExitInterrupted}}},
  };
}

}  // namespace zc
