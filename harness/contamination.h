// Per-trial contamination: how much of the lab CPUs' time in the measurement
// window went to someone else. On a shared 2-vCPU machine another tenant's
// work on the sink or generator CPU moves a trial's rate and CPU per packet
// more than any change under test; a trial that knows it was disturbed can be
// retried instead of widening every verdict's noise.
//
// Two sources, both from the raw record (harness/trial.cc):
//  - steal: raw.cpu_delta[].steal_ns on the lab CPUs (the hypervisor ran
//    someone else while our vCPU wanted to run);
//  - foreign: task time (user + nice + system) on the lab CPUs that the lab's
//    own threads did not spend: raw.cpu_delta minus the sink's and the
//    generator's task-clock over the same window (raw.perf.sink / .gen).
//    Softirq and irq time is left out: the lab's receive path runs there
//    (the lab modes) and /proc/stat cannot tell whose softirq it was, so a
//    tenant's softirq work on our CPUs is missed (an undercount, never a
//    false alarm).
// ratio = (steal + foreign) / (window × lab CPUs); contaminated when it is above
// kContaminationMaxRatio. run.py reads `contaminated`, never re-derives it.
#pragma once
#include <nlohmann/json.hpp>

namespace zc {

// Above this share of the lab CPUs' window lost to others, a trial is
// contaminated. The harness's own main thread (window snapshots, interval
// samples) runs unpinned and counts as foreign: well under 1 % here.
constexpr double kContaminationMaxRatio = 0.05;

// derived.contamination: {steal_ns, foreign_ns, lab_cpus, ratio, max_ratio,
// contaminated, reason}. foreign_ns is null (and only steal decides) when the
// threads' task-clock is missing (perf software events unavailable);
// everything is null and contaminated false, with a reason, without a window.
nlohmann::json contamination_json(const nlohmann::json& params, const nlohmann::json& raw);

}  // namespace zc
