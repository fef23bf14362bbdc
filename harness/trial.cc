#include "harness/trial.h"

#include <sys/utsname.h>

#include <cmath>
#include <exception>
#include <memory>
#include <sstream>

#include "harness/errors.h"
#include "harness/flood.h"
#include "harness/generator.h"
#include "harness/params.h"
#include "harness/perf_counters.h"
#include "harness/registry.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

using nlohmann::json;

std::string format_rate(double pps) {
  if (pps <= 0) return "max";
  std::ostringstream o;
  o << uint64_t(std::llround(pps)) << "pps";
  return o.str();
}

}  // namespace

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

// validate_trial and trial_command: harness/params.cc, from the parameter table.

// ---- validate ----------------------------------------------------------

void validate_step(TrialRun& run) {
  const TrialSpec& spec = run.spec;
  validate_trial(spec);
  run.gen_info = &trial_generator_info(spec.generator.name);
  run.rx_info = &find_driver(spec.rx.name, Direction::rx);
  run.rx_opts = validate_driver_options(*run.rx_info, spec.rx.options);
  if (run.gen_info->tx_transport) {
    run.tx_info = &find_driver(spec.tx.name, Direction::tx);
    run.tx_opts = validate_driver_options(*run.tx_info, spec.tx.options);
  }
  validate_size_mix(spec.size_mix, run.tx_info);  // harness/flood.h
  run.gen_opts = validate_generator_options(*run.gen_info, spec.generator.options);
  run.layout = resolve_worker_layout(spec, *run.gen_info, run.tx_info, *run.rx_info, online_cpu_count());
  run.lab_opts = spec.lab;
  // Worker 0 of each side is where the lab steers its softirq (rps_cpus,
  // NAPI threads), as --sink-cpu / --gen-cpu did alone.
  run.lab_opts.sink_cpu = run.layout.sink_cpus.at(0);
  run.lab_opts.gen_cpu = run.layout.gen_cpus.at(0);
  // Queue q belongs to worker q % workers's CPU on each side (RPS/XPS, NAPI threads).
  run.lab_opts.sink_cpus = run.layout.sink_cpus;
  run.lab_opts.gen_cpus = run.layout.gen_cpus;
  run.lab_opts.tap_traffic = spec.traffic == "tap" || (spec.traffic == "auto" && run.rx_info->traffic == "tap");
  // How the sinks account, from the generator's declaration: flood headers
  // as the sink's `accounting` option says; pktgen's own header; or counts.
  switch (run.gen_info->packets) {
    case PacketFormat::flood: run.accounting = run.rx_opts.text("accounting"); break;
    case PacketFormat::pktgen: run.accounting = accounting_mode_name(AccountingMode::pktgen); break;
    case PacketFormat::count: run.accounting = accounting_mode_name(AccountingMode::count); break;
  }
  run.perf_events = spec.perf_events;
  if (run.perf_events.empty()) {
    run.perf_events = default_software_events();
    for (const auto& e : default_hardware_events()) run.perf_events.push_back(e);
  }
  // Resolve every perf event name now (a misspelt one is a usage error
  // before any lab), by opening them once on this thread.
  PerfCounterGroup resolve_names(PerfTarget::thread(0), run.perf_events);

  std::ostringstream name;
  name << (run.gen_info->tx_transport ? spec.tx.name : spec.generator.to_string()) << "->" << spec.rx.to_string() << " "
       << (spec.size_mix.empty() ? std::to_string(spec.payload_bytes) + "B" : "IMIX " + spec.size_mix) << " "
       << format_rate(spec.rate_pps) << " #" << spec.repetition;
  run.record = {{"kind", "trial"},     {"suite", spec.suite},   {"name", name.str()},
                {"command", trial_command(spec)},
                {"params", trial_params_block(run)},
                {"status", "pass"},    {"reason", ""},          {"lab", json::object()},
                {"raw", json::object()}, {"derived", json::object()}};
}

// ---- params ------------------------------------------------------------
// The record's params come from the parameter table (harness/params.cc);
// what only the run resolves (traffic, accounting, the worker layout's CPUs)
// is written over the table's values here.

json trial_params_block(const TrialRun& run) {
  const TrialSpec& spec = run.spec;
  RecordContext ctx{kRun,        !run.gen_info->tx_transport, run.tx_opts, run.rx_opts, run.gen_opts,
                    run.lab_opts.tap_traffic, run.accounting, kernel_release()};
  json params = trial_params_json(spec, ctx);
  params["gen_cpu"] = run.lab_opts.gen_cpu;
  params["sink_cpu"] = run.lab_opts.sink_cpu;
  params["sink_threads"] = run.layout.sink_cpus.size();
  params["gen_threads"] = run.layout.gen_cpus.size();
  params["sink_cpus"] = run.layout.sink_cpus;
  params["gen_cpus"] = run.layout.gen_cpus;
  return params;
}

// ---- probe, lab --------------------------------------------------------

std::optional<std::string> probe_step(const TrialRun& run) {
  for (const DriverInfo* info : {run.tx_info, run.rx_info}) {
    if (!info) continue;
    Usability u = info->probe ? info->probe() : Usability{};
    if (!u.usable) return info->name + ": " + u.reason;
  }
  if (!run.gen_info->tx_transport) {
    Usability u = run.gen_info->probe ? run.gen_info->probe() : Usability{};
    if (!u.usable) return "generator " + run.gen_info->name + ": " + u.reason;
  }
  return std::nullopt;
}

// No lab, no trial: an EnvError here is the environment's (privileges),
// not the transport's, so it propagates to the caller.
void build_lab(TrialRun& run) {
  run.lab = std::make_unique<Lab>(Lab::create(run.lab_opts));
  run.record["lab"] = run.lab->describe();
}

// ---- the trial ---------------------------------------------------------

namespace {

TrialOutcome skip_outcome(TrialRun& run, const std::string& why) {
  run.record["status"] = "skip";
  run.record["reason"] = "unsupported: " + why;
  return TrialOutcome{run.record, false};
}

// An exception once workers ran: the trial ends as an `error` record with
// the exception's exit code (harness/errors.h), never std::terminate.
TrialOutcome error_outcome(TrialRun& run, std::exception_ptr e) {
  int code = kExitInternal;
  std::string why;
  try {
    std::rethrow_exception(e);
  } catch (const Error& x) {
    code = x.exit_code(), why = x.what();
  } catch (const std::exception& x) {
    why = std::string("internal error: ") + x.what();
  } catch (...) {
    why = "internal error: an exception of unknown type";
  }
  run.record["status"] = "error";
  run.record["reason"] = why.empty() ? "error" : why;
  run.record["exit_code"] = code;
  TrialOutcome out{run.record, false};
  out.exit_code = code;
  return out;
}

// From the first worker on: every step, and the workers' own errors.
std::optional<TrialOutcome> run_workers(TrialRun& run) {
  if (auto why = start_sink_workers(run)) return skip_outcome(run, *why);
  if (auto why = start_generator_workers(run)) return skip_outcome(run, *why);
  open_perf_counters(run);
  meter_window(run);
  drain(run);
  check_worker_errors(run);
  if (run.interrupted) return TrialOutcome{run.record, true};
  collect(run);
  build_record(run);
  return std::nullopt;
}

}  // namespace

TrialOutcome run_prepared_trial(TrialRun& run) {
  if (auto why = probe_step(run)) return skip_outcome(run, *why);
  build_lab(run);
  std::optional<TrialOutcome> early;
  std::exception_ptr error, usage;
  try {
    early = run_workers(run);
  } catch (const UsageError&) {
    // A driver's open() found the configuration impossible (e.g. a snaplen
    // that cuts the frames): still the caller's usage error, exit 2, as
    // before any worker ran, once every worker is stopped.
    usage = std::current_exception();
  } catch (...) {
    error = std::current_exception();
  }
  stop_workers(run);  // every path: no thread outlives the trial
  if (usage) std::rethrow_exception(usage);
  if (error) return error_outcome(run, error);
  return early ? *early : TrialOutcome{run.record, false};
}

TrialOutcome run_trial(const TrialSpec& spec, const std::atomic<bool>* external_stop) {
  TrialRun run(spec, external_stop);
  validate_step(run);
  return run_prepared_trial(run);
}

}  // namespace zc
