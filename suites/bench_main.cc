// zcbench-bench: runs a benchmark suite (suites/definitions/<name>.json) as
// Google Benchmark cases: one name per configuration, its repetitions as
// Google Benchmark repetitions, interleaved at random across configurations
// (--benchmark_enable_random_interleaving, on unless given) so drift hits
// every transport alike. Each repetition is one multi-second trial
// (Iterations(1)) whose manual iteration time is the wall time per received
// packet, so Google Benchmark's aggregates and its tools/compare.py compare
// packet cost (lower is better). The record appended to --records is the
// contract (docs/results-format.md "records.jsonl"); Google Benchmark's JSON
// is an input only.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "harness/errors.h"
#include "harness/suite.h"
#include "harness/trial.h"

using nlohmann::json;
using namespace zc;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

struct RunState {
  int records_fd = -1;
  size_t done = 0, total = 0;
  int failed = 0, errors = 0;
  bool env_failure = false;
};
RunState g_state;

void append_record(const json& rec) {
  if (g_state.records_fd < 0) return;
  std::string line = rec.dump() + "\n";
  // One write per record on an O_APPEND fd, then fsync: a crash or Ctrl-C
  // keeps every completed record whole.
  if (write(g_state.records_fd, line.data(), line.size()) != ssize_t(line.size()))
    throw EnvError(errno_text("write records", errno), errno);
  fsync(g_state.records_fd);
}

double num(const json& d, const char* k) { return d.contains(k) && d[k].is_number() ? d[k].get<double>() : 0.0; }

void run_one(benchmark::State& state, TrialSpec spec) {
  for (auto _ : state) {
    if (g_stop || g_state.env_failure) {
      state.SkipWithError(g_stop ? "interrupted" : "environment failure");
      break;
    }
    ++g_state.done;
    TrialOutcome out;
    try {
      out = run_trial(spec, &g_stop);
    } catch (const EnvError& e) {
      std::fprintf(stderr, "zcbench-bench: cannot run trials here: %s\n", e.what());
      g_state.env_failure = true;
      state.SkipWithError(e.what());
      break;
    }
    if (out.interrupted) {
      state.SkipWithError("interrupted");
      break;
    }
    const json& rec = out.record;
    append_record(rec);
    const json& d = rec["derived"];
    std::string status = rec["status"];
    if (status == "fail") ++g_state.failed;
    if (status == "error") ++g_state.errors;
    std::fprintf(stderr, "[%zu/%zu] %s: %s", g_state.done, g_state.total, rec["name"].get<std::string>().c_str(),
                 status.c_str());
    if (status == "pass" || status == "fail")
      std::fprintf(stderr, " — received %.0f pps (sent %.0f), loss %.3f %%, CPU %.0f ns/pkt (sink thread %.0f)",
                   num(d, "received_pps"), num(d, "sent_pps"), 100 * num(d, "loss_ratio"),
                   num(d, "cpu_ns_per_pkt_total"), num(d, "cpu_ns_per_pkt_sink_thread"));
    if (!rec["reason"].get<std::string>().empty()) std::fprintf(stderr, " (%s)", rec["reason"].get<std::string>().c_str());
    std::fprintf(stderr, "\n");
    double window_s = num(rec["raw"], "window_ns") / 1e9;
    double received = num(rec["raw"], "received_in_window");
    // Wall time per received packet over the window; a trial that received
    // nothing gets the whole window, so it reads as the slowest.
    state.SetIterationTime(window_s > 0 ? (received > 0 ? window_s / received : window_s) : 1e-9);
    state.counters["received_pps"] = num(d, "received_pps");
    state.counters["sent_pps"] = num(d, "sent_pps");
    state.counters["loss_ratio"] = num(d, "loss_ratio");
    state.counters["cpu_ns_per_pkt_total"] = num(d, "cpu_ns_per_pkt_total");
    state.counters["cpu_ns_per_pkt_sink"] = num(d, "cpu_ns_per_pkt_sink");
    // The gated CPU figure (docs/results-format.md): the /proc/stat ones above
    // move in whole scheduler ticks, so a mostly idle sink CPU often reads 0.
    state.counters["cpu_ns_per_pkt_sink_thread"] = num(d, "cpu_ns_per_pkt_sink_thread");
    if (status == "skip") state.SkipWithError(rec["reason"].get<std::string>().c_str());
  }
}

const char* kUsage = R"(usage: zcbench-bench --suite NAME|PATH [--records FILE] [--truncate-records]
                     [--lab-mode MODE] [--repetitions N] [--list-trials] [benchmark flags]
Runs a benchmark suite from suites/definitions/ and appends one JSON record per
trial to FILE. Google Benchmark flags (--benchmark_out=...) pass through.
)";

}  // namespace

int main(int argc, char** argv) {
  std::string suite_name, records_path, lab_mode;
  int repetitions = 0;
  bool truncate = false, list_only = false;
  std::vector<char*> rest{argv[0]};
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError(a + " needs a value");
        return argv[++i];
      };
      if (a == "--suite") suite_name = value();
      else if (a == "--records") records_path = value();
      else if (a == "--lab-mode") lab_mode = value();
      else if (a == "--repetitions") repetitions = int(parse_integer(a, value()));
      else if (a == "--truncate-records") truncate = true;
      else if (a == "--list-trials") list_only = true;
      else if (a == "--run-id" || a == "--baseline") value();  // recorded by run.py
      else if (a == "-h" || a == "--help") {
        std::cout << kUsage;
        return kExitOk;
      } else rest.push_back(argv[i]);
    }
    if (suite_name.empty()) throw UsageError("--suite is required");
    SuiteDefinition def = expand_suite(load_suite_file(suite_name), lab_mode);
    if (repetitions > 0) def.repetitions = repetitions;
    if (repetitions < 0) throw UsageError("--repetitions must be >= 1");
    for (const auto& t : def.trials) validate_trial(t);  // bad input before any traffic
    if (list_only) {
      for (const auto& t : def.trials) std::cout << trial_command(t) << "\n";
      return kExitOk;
    }
    if (!records_path.empty()) {
      g_state.records_fd = open(records_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
      if (g_state.records_fd < 0) throw EnvError(errno_text("open " + records_path, errno), errno);
    }
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    g_state.total = def.trials.size() * size_t(def.repetitions);
    std::fprintf(stderr, "zcbench-bench: suite %s: %zu trials x %d repetitions\n", def.name.c_str(), def.trials.size(),
                 def.repetitions);
    for (const auto& t : def.trials) {
      std::string name = def.name + "/" + t.tx.to_string() + "->" + t.rx.to_string() + "/payload:" +
                         std::to_string(t.payload_bytes) + "/rate:" +
                         (t.rate_pps > 0 ? std::to_string(uint64_t(t.rate_pps)) : std::string("max"));
      // Repetitions run in whatever order the interleaving picks; each gets
      // the next repetition index of its configuration.
      auto next_rep = std::make_shared<int>(0);
      benchmark::RegisterBenchmark(name.c_str(),
                                   [t, next_rep](benchmark::State& st) {
                                     TrialSpec spec = t;
                                     spec.repetition = (*next_rep)++;
                                     run_one(st, spec);
                                   })
          ->Iterations(1)
          ->Repetitions(def.repetitions)
          ->UseManualTime()
          ->Unit(benchmark::kNanosecond);
    }
    static char kInterleave[] = "--benchmark_enable_random_interleaving=true";
    bool interleave_given = false;
    for (const char* a : rest)
      if (std::string(a).rfind("--benchmark_enable_random_interleaving", 0) == 0) interleave_given = true;
    if (!interleave_given) rest.push_back(kInterleave);
    int bargc = int(rest.size());
    benchmark::Initialize(&bargc, rest.data());
    if (benchmark::ReportUnrecognizedArguments(bargc, rest.data())) return kExitUsage;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const Error& e) {
    std::cerr << "zcbench-bench: " << e.what() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "zcbench-bench: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  if (g_stop) return kExitInterrupted;
  if (g_state.env_failure) return kExitEnvironment;
  return g_state.failed || g_state.errors ? kExitCheckFailed : kExitOk;
}
