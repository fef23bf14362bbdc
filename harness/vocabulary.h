// The record's vocabularies, owned here and exported once: the drop layers,
// lab modes, frame overheads, exit codes, the schema version and the rules
// derived figures are judged by. `zcbench list --json` and every run.json
// context carry vocabularies_json(); reports/ and run.py read it instead of
// keeping their own copies (docs/results-format.md "Vocabularies").
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>

namespace zc {

// run.json's schema_version (schema/run.schema.json).
inline constexpr int kSchemaVersion = 1;
// Per-frame bytes on the wire beyond the Ethernet frame: preamble + SFD 8,
// inter-frame gap 12 (IEEE 802.3). L1 bits = (frame + 20) * 8.
inline constexpr size_t kL1Overhead = 20;
// A generator that sent less than this share of the offered rate over the
// window did not offer that rate: the trial is flagged generator_short (the
// NDR search's acceptance rule, RFC 2544 style).
inline constexpr double kGeneratorShortRatio = 0.98;

nlohmann::json vocabularies_json();

}  // namespace zc
