#include "harness/trial.h"

#include <sys/utsname.h>

#include <cmath>
#include <exception>
#include <memory>
#include <sstream>

#include "harness/errors.h"
#include "harness/generator.h"
#include "harness/perf_counters.h"
#include "harness/registry.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

using nlohmann::json;

std::string fmt(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

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

void validate_trial(const TrialSpec& s) {
  const DriverInfo& tx = find_driver(s.tx.name, Direction::tx);
  const DriverInfo& rx = find_driver(s.rx.name, Direction::rx);
  validate_driver_options(tx, s.tx.options);
  validate_driver_options(rx, s.rx.options);
  if (s.generator.name != kFloodGenerator)
    validate_generator_options(find_generator(s.generator.name), s.generator.options);
  else if (!s.generator.options.empty())
    throw UsageError("the flood generator takes no --gen-opt; its transport's options go to --tx-opt");
  if (s.traffic != "auto" && s.traffic != "tap" && s.traffic != "host-addressed")
    throw UsageError("traffic '" + s.traffic + "' is not accepted; accepted: auto, tap, host-addressed");
  if (s.lab.port_pairs < 1 || s.lab.port_pairs > 16)
    throw UsageError("ports " + std::to_string(s.lab.port_pairs) + " is not accepted; accepted: 1..16");
  if (s.lab.mtu < 68 || s.lab.mtu > 65535)
    throw UsageError("MTU " + std::to_string(s.lab.mtu) + " is out of range; accepted: 68..65535");
  size_t max_payload = size_t(s.lab.mtu) - kUdpIpv4Overhead;
  if (s.payload_bytes < 18 || s.payload_bytes > max_payload) {
    std::string msg = "payload size " + std::to_string(s.payload_bytes) + " is out of range for MTU " +
                      std::to_string(s.lab.mtu) + "; accepted: 18.." + std::to_string(max_payload);
    if (s.payload_bytes > max_payload)
      msg += " (a " + std::to_string(s.payload_bytes) + "-byte payload needs --mtu " +
             std::to_string(s.payload_bytes + kUdpIpv4Overhead) + ")";
    throw UsageError(msg);
  }
  if (!std::isfinite(s.rate_pps) || s.rate_pps < 0)
    throw UsageError("rate " + fmt(s.rate_pps) + " is not accepted; give packets/s > 0 or 'max'");
  if (s.rate_pps > 1e8)
    throw UsageError("rate " + std::to_string(uint64_t(s.rate_pps)) +
                     " pps is impossible here (above 100 Mpps); give a lower rate or 'max'");
  if (!(s.duration_s > 0) || s.duration_s > 3600)
    throw UsageError("duration " + fmt(s.duration_s) + " s is not accepted; accepted: > 0 and <= 3600");
  if (!(s.warmup_s >= 0) || s.warmup_s > 600)
    throw UsageError("warm-up " + fmt(s.warmup_s) + " s is not accepted; accepted: 0..600");
  if (s.burst < 1 || s.burst > 65536)
    throw UsageError("burst " + std::to_string(s.burst) + " is not accepted; accepted: 1..65536");
  if (s.flows < 1 || s.flows > 1024)
    throw UsageError("flows " + std::to_string(s.flows) + " is not accepted; accepted: 1..1024");
  if (!(s.interval_s >= 0.01))
    throw UsageError("sample interval " + fmt(s.interval_s) + " s is not accepted; accepted: >= 0.01");
  int cpus = online_cpu_count();
  for (int cpu : {s.lab.gen_cpu, s.lab.sink_cpu})
    if (cpu < 0 || cpu >= cpus)
      throw UsageError("CPU " + std::to_string(cpu) + " does not exist; this machine has CPUs 0.." +
                       std::to_string(cpus - 1));
}

std::string trial_command(const TrialSpec& s) {
  std::ostringstream o;
  o << "build/zcbench run --tx " << s.tx.name;
  for (const auto& [k, v] : s.tx.options) o << " --tx-opt " << k << "=" << v;
  o << " --rx " << s.rx.name;
  for (const auto& [k, v] : s.rx.options) o << " --rx-opt " << k << "=" << v;
  o << " --size " << s.payload_bytes << " --rate " << (s.rate_pps > 0 ? std::to_string(uint64_t(s.rate_pps)) : "max")
    << " --duration " << s.duration_s << " --warmup " << s.warmup_s;
  if (s.count) o << " --count " << s.count;
  if (s.burst != 1) o << " --burst " << s.burst;
  if (s.flows != 1) o << " --flows " << s.flows;
  o << " --lab-mode " << lab_mode_name(s.lab.mode) << " --mtu " << s.lab.mtu << " --gen-cpu " << s.lab.gen_cpu
    << " --sink-cpu " << s.lab.sink_cpu;
  if (s.lab.gro) o << " --gro";
  if (s.lab.port_pairs != 1) o << " --ports " << s.lab.port_pairs;
  if (s.traffic != "auto") o << " --traffic " << s.traffic;
  if (s.generator.name != kFloodGenerator) {
    o << " --generator " << s.generator.name;
    for (const auto& [k, v] : s.generator.options) o << " --gen-opt " << k << "=" << v;
  }
  o << " --json";
  return o.str();
}

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
  run.gen_opts = validate_generator_options(*run.gen_info, spec.generator.options);
  run.layout = resolve_worker_layout(spec, *run.gen_info, run.tx_info, *run.rx_info, online_cpu_count());
  run.lab_opts = spec.lab;
  // Worker 0 of each side is where the lab steers its softirq (rps_cpus,
  // NAPI threads), as --sink-cpu / --gen-cpu did alone.
  run.lab_opts.sink_cpu = run.layout.sink_cpus.at(0);
  run.lab_opts.gen_cpu = run.layout.gen_cpus.at(0);
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
       << spec.payload_bytes << "B " << format_rate(spec.rate_pps) << " #" << spec.repetition;
  run.record = {{"kind", "trial"},     {"suite", spec.suite},   {"name", name.str()},
                {"command", trial_command(spec)},
                {"params", trial_params_block(run)},
                {"status", "pass"},    {"reason", ""},          {"lab", json::object()},
                {"raw", json::object()}, {"derived", json::object()}};
}

// ---- params ------------------------------------------------------------
// The spelled-out part moves to the params helper's table
// (trial_params_json(spec), harness/params.cc); what only the run knows
// (traffic, accounting, the worker layout) stays here.

json trial_params_block(const TrialRun& run) {
  const TrialSpec& spec = run.spec;
  const bool tx = run.gen_info->tx_transport;
  json params = {{"tx", tx ? json(spec.tx.name) : json(nullptr)},
                 {"tx_opts", tx ? run.tx_opts.to_json() : json::object()},
                 {"rx", spec.rx.name},
                 {"rx_opts", run.rx_opts.to_json()},
                 {"generator", spec.generator.name},
                 {"gen_opts", tx ? json::object() : run.gen_opts.to_json()},
                 {"ports", spec.lab.port_pairs},
                 {"payload_bytes", spec.payload_bytes},
                 {"frame_bytes", spec.payload_bytes + kEthernetOverhead},
                 {"rate_mode", spec.rate_pps > 0 ? "fixed" : "max"},
                 {"offered_pps", spec.rate_pps > 0 ? json(spec.rate_pps) : json(nullptr)},
                 {"duration_s", spec.duration_s},
                 {"warmup_s", spec.warmup_s},
                 {"count", spec.count},
                 {"burst", spec.burst},
                 {"flows", spec.flows},
                 {"repetition", spec.repetition},
                 {"lab_mode", lab_mode_name(spec.lab.mode)},
                 {"mtu", spec.lab.mtu},
                 {"gen_cpu", run.lab_opts.gen_cpu},
                 {"sink_cpu", run.lab_opts.sink_cpu},
                 {"gro", spec.lab.gro},
                 {"kernel", kernel_release()}};
  // Resolved by the run.
  params["traffic"] = run.lab_opts.tap_traffic ? "tap" : "host-addressed";
  params["accounting"] = run.accounting;
  params["queues"] = spec.lab.queues;
  params["sink_threads"] = run.layout.sink_cpus.size();
  params["gen_threads"] = run.layout.gen_cpus.size();
  params["sink_cpus"] = run.layout.sink_cpus;
  params["gen_cpus"] = run.layout.gen_cpus;
  if (!spec.size_mix.empty()) params["size_mix"] = spec.size_mix;
  for (auto it = spec.extra_params.begin(); it != spec.extra_params.end(); ++it) params[it.key()] = it.value();
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
