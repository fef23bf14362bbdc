// Where the trial's worker threads run: one CPU per worker, resolved and
// checked before any lab is built, so an impossible layout is a usage error
// that names the fix, never a half-built trial.
#include <algorithm>
#include <set>
#include <string>

#include "harness/errors.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

std::string join(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// One side's CPUs. A given list is taken as written: one entry per worker,
// a CPU repeated only because the user wrote it twice (saying so). Without a
// list, worker 0 runs on `first` (--sink-cpu / --gen-cpu) and the next
// workers on the next CPUs, wrapping, each on a CPU of its own.
std::vector<int> side_cpus(const char* side, int threads, const std::vector<int>& given, int first, int online) {
  const std::string s = side;
  if (threads < 1 || threads > 1024)
    throw UsageError(s + "-threads " + std::to_string(threads) + " is not accepted; accepted: 1..1024");
  std::vector<int> cpus;
  if (!given.empty()) {
    if (int(given.size()) < threads)
      throw UsageError("--" + s + "-threads " + std::to_string(threads) + " needs " + std::to_string(threads) +
                       " CPUs, --" + s + "-cpus gives " + std::to_string(given.size()) + " (" + join(given) +
                       "); give one CPU per worker (repeat a CPU to share it)");
    if (int(given.size()) > threads)
      throw UsageError("--" + s + "-cpus gives " + std::to_string(given.size()) + " CPUs for " +
                       std::to_string(threads) + " " + s + " worker(s); give --" + s + "-threads " +
                       std::to_string(given.size()) + " or fewer CPUs");
    cpus = given;
  } else {
    if (threads > online)
      throw UsageError("--" + s + "-threads " + std::to_string(threads) + " needs " + std::to_string(threads) +
                       " CPUs and this machine has " + std::to_string(online) + "; give --" + s +
                       "-cpus with a CPU repeated to run two workers on one CPU");
    for (int i = 0; i < threads; ++i) cpus.push_back((first + i) % online);
  }
  for (int c : cpus)
    if (c < 0 || c >= online)
      throw UsageError("--" + s + "-cpus: CPU " + std::to_string(c) + " does not exist; this machine has CPUs 0.." +
                       std::to_string(online - 1));
  return cpus;
}

}  // namespace

std::vector<int> WorkerLayout::lab_cpus() const {
  std::set<int> all(sink_cpus.begin(), sink_cpus.end());
  all.insert(gen_cpus.begin(), gen_cpus.end());
  return {all.begin(), all.end()};
}

WorkerLayout resolve_worker_layout(const TrialSpec& spec, const GeneratorInfo& gen, const DriverInfo* tx,
                                   const DriverInfo& rx, int online_cpus) {
  WorkerLayout l;
  l.sink_cpus = side_cpus("sink", spec.sink_threads, spec.sink_cpus, spec.lab.sink_cpu, online_cpus);
  l.gen_cpus = side_cpus("gen", spec.gen_threads, spec.gen_cpus, spec.lab.gen_cpu, online_cpus);
  if (spec.lab.queues < 1 || spec.lab.queues > 256)
    throw UsageError("queues " + std::to_string(spec.lab.queues) + " is not accepted; accepted: 1..256");
  if (spec.gen_threads > gen.max_workers)
    throw UsageError("generator " + gen.name + " runs " + std::to_string(gen.max_workers) +
                     " instance(s) per trial; give --gen-threads " + std::to_string(gen.max_workers) +
                     " (its own options choose its threads)");
  // Each generator worker sends the flows f % workers == worker: with fewer
  // flows than workers some would send nothing.
  if (spec.gen_threads > spec.flows)
    throw UsageError("--gen-threads " + std::to_string(spec.gen_threads) + " needs at least as many flows; give --flows " +
                     std::to_string(spec.gen_threads) + " or more");
  if (spec.count && spec.count < uint64_t(spec.gen_threads))
    throw UsageError("--count " + std::to_string(spec.count) + " is fewer than one packet per generator worker; give --count " +
                     std::to_string(spec.gen_threads) + " or more");
  // One XSK per queue (XSKMAP index = queue id): an af_xdp worker without a
  // queue of its own would see (or send) nothing. (The only per-queue
  // transport; a DriverInfo declaration would replace the name once there
  // are more.)
  if (rx.name == "af_xdp" && spec.sink_threads > spec.lab.queues)
    throw UsageError("--sink-threads " + std::to_string(spec.sink_threads) +
                     " af_xdp workers need as many queues (one XSK per queue); give --queues " +
                     std::to_string(spec.sink_threads));
  if (tx && tx->name == "af_xdp" && spec.gen_threads > spec.lab.queues)
    throw UsageError("--gen-threads " + std::to_string(spec.gen_threads) +
                     " af_xdp workers need as many queues (one XSK per queue); give --queues " +
                     std::to_string(spec.gen_threads));
  return l;
}

}  // namespace zc
