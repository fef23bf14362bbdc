// The trial's worker threads: one per sink worker (its own RxDriver instance
// and Accounting), one per generator worker (its own Generator instance). Each
// is pinned to its layout CPU inside its namespace; the main thread only
// signals (go, stop) and joins.
#include <sys/syscall.h>
#include <unistd.h>

#include "harness/errors.h"
#include "harness/pacer.h"
#include "harness/flood.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

pid_t this_tid() { return pid_t(syscall(SYS_gettid)); }

nlohmann::json thread_cpu_json(const ThreadCpu& t) {
  return {{"user_ns", t.user_ns},
          {"system_ns", t.system_ns},
          {"voluntary_switches", t.voluntary_switches},
          {"involuntary_switches", t.involuntary_switches}};
}

// The queue worker w owns when the lab has a queue per worker; -1 (all
// queues) otherwise, which is what a single worker always had.
int worker_queue(int worker, int workers, int queues) { return workers > 1 && worker < queues ? worker : -1; }

RxContext sink_context(const TrialRun& run, const SinkWorker& w) {
  const TrialSpec& spec = run.spec;
  const LabPort& port = run.lab->ports().at(0);
  RxContext ctx;
  ctx.ifname = port.sink_ifname;
  ctx.ifindex = port.sink_ifindex;
  // Several ports: socket sinks bind the wildcard so every port's flows land.
  ctx.local_ip = run.lab->ports().size() > 1 ? in_addr{htonl(INADDR_ANY)} : port.sink_ip;
  ctx.udp_port = kFloodUdpPort;
  ctx.payload_bytes = spec.payload_bytes;
  ctx.mtu = spec.lab.mtu;
  ctx.flows = spec.flows;
  ctx.options = run.rx_opts;
  for (const auto& p : run.lab->ports()) ctx.ports.push_back({p.sink_ifname, p.sink_ifindex, p.sink_ip});
  ctx.max_packets = spec.count;
  ctx.rate_pps = spec.rate_pps;
  ctx.seconds = spec.warmup_s + spec.duration_s;
  ctx.worker = w.index;
  ctx.workers = int(run.sinks.size());
  ctx.queue = worker_queue(w.index, ctx.workers, spec.lab.queues);
  ctx.cpu = w.cpu;
  return ctx;
}

// Receives until stopped; once every generator finished, until the drain
// policy (kDrainSilenceNs of silence, at most kDrainMaxNs) says the last
// packets in flight are in.
void sink_loop(TrialRun& run, SinkWorker& w, Accounting& acct) {
  uint64_t last_rx = 0, deadline = 0;
  while (!run.stop_sink.load(std::memory_order_relaxed)) {
    size_t n = w.rx->receive(acct, kReceiveTimeoutMs);
    if (!run.gens_done.load(std::memory_order_relaxed)) continue;
    uint64_t now = monotonic_ns();
    if (!deadline) deadline = now + kDrainMaxNs, last_rx = now;
    if (n) last_rx = now;
    if (now - last_rx > kDrainSilenceNs || now > deadline) break;
  }
}

void sink_thread(TrialRun& run, SinkWorker& w) {
  bool ready_sent = false;
  try {
    run.lab->sink_ns().enter_this_thread();
    pin_this_thread(w.cpu);
    w.rx->open(sink_context(run, w));
    w.ready.set_value(this_tid());
    ready_sent = true;
    sink_loop(run, w, run.acct->worker(w.index));
    if (nlohmann::json k = w.rx->kernel_stats(); !k.is_null()) w.kernel_stats = k;
    w.kernel_drops = w.rx->kernel_drops();
    w.thread_cpu = thread_cpu_json(read_thread_rusage());
  } catch (...) {
    w.error = std::current_exception();
    if (!ready_sent) w.ready.set_exception(w.error);
  }
}

GenContext gen_context(const TrialRun& run, const GenWorker& w) {
  const TrialSpec& spec = run.spec;
  const int workers = int(run.gens.size());
  FloodShare share = flood_worker_share(spec.rate_pps, spec.count, w.index, workers);
  GenContext g;
  g.lab = run.lab.get();
  g.payload_bytes = spec.payload_bytes;
  g.rate_pps = share.rate_pps;
  g.count = share.max_packets;
  g.burst = spec.burst;
  g.flows = spec.flows;
  g.tap_traffic = run.lab_opts.tap_traffic;
  g.options = run.gen_opts;
  g.artifacts_dir = spec.artifacts_dir;
  g.tx = run.tx_info;
  g.tx_options = run.tx_opts;
  g.mtu = spec.lab.mtu;
  g.size_mix = spec.size_mix;
  g.worker = w.index;
  g.workers = workers;
  g.queue = worker_queue(w.index, workers, spec.lab.queues);
  g.cpu = w.cpu;
  return g;
}

void gen_thread(TrialRun& run, GenWorker& w) {
  bool ready_sent = false;
  try {
    run.lab->gen_ns().enter_this_thread();
    pin_this_thread(w.cpu);
    w.gen->open(gen_context(run, w));
    w.ready.set_value(this_tid());
    ready_sent = true;
    const uint64_t start = run.go_future.get();
    if (start) w.gen->run(start, run.b_time, run.stop_gen);
    if (nlohmann::json d = w.gen->driver_stats(); d.is_object()) w.driver_stats = d;
    w.thread_cpu = thread_cpu_json(read_thread_rusage());
  } catch (...) {
    w.error = std::current_exception();
    if (!ready_sent) w.ready.set_exception(w.error);
  }
  if (run.gens_running.fetch_sub(1) == 1) run.gens_done.store(true);
}

// Waits for every worker's ready signal; the first EnvError's text (a driver
// the kernel refused), or rethrows anything else.
template <class W>
std::optional<std::string> await_ready(std::vector<std::unique_ptr<W>>& workers) {
  std::optional<std::string> env;
  std::exception_ptr other;
  for (auto& w : workers) {
    try {
      w->tid = w->ready.get_future().get();
    } catch (const EnvError& e) {
      if (!env) env = e.what();
    } catch (...) {
      if (!other) other = std::current_exception();
    }
  }
  if (other) std::rethrow_exception(other);
  return env;
}

}  // namespace

std::optional<std::string> start_sink_workers(TrialRun& run) {
  const int n = int(run.layout.sink_cpus.size());
  run.acct = std::make_unique<AccountingSet>(parse_accounting_mode(run.accounting), run.spec.flows, n);
  run.acct->set_size_mix(SizeMix::parse(run.spec.size_mix));  // per-size checks (harness/size_mix.h)
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<SinkWorker>();
    w->index = i;
    w->cpu = run.layout.sink_cpus[size_t(i)];
    w->rx = run.rx_info->make_rx();
    run.sinks.push_back(std::move(w));
  }
  // Threads start only once the vector is complete: each reads its size.
  for (auto& w : run.sinks) w->thread = std::thread(sink_thread, std::ref(run), std::ref(*w));
  return await_ready(run.sinks);
}

// Generators open only once every sink is open, so a stream transport's
// connect() finds the sink's listener.
std::optional<std::string> start_generator_workers(TrialRun& run) {
  const int n = int(run.layout.gen_cpus.size());
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<GenWorker>();
    w->index = i;
    w->cpu = run.layout.gen_cpus[size_t(i)];
    w->gen = run.gen_info->make();
    run.gens.push_back(std::move(w));
  }
  run.gens_running.store(n);
  for (auto& w : run.gens) w->thread = std::thread(gen_thread, std::ref(run), std::ref(*w));
  return await_ready(run.gens);
}

void drain(TrialRun& run) {
  for (auto& w : run.gens)
    if (w->thread.joinable()) w->thread.join();
  run.gens_done.store(true);  // also when no generator ran at all
  // Sinks drain by themselves once gens_done (sink_loop).
  for (auto& w : run.sinks)
    if (w->thread.joinable()) w->thread.join();
}

void stop_workers(TrialRun& run) noexcept {
  run.stop_gen.store(true);
  if (!run.go_sent) {
    run.go_sent = true;
    run.go.set_value(0);
  }
  for (auto& w : run.gens)
    if (w->thread.joinable()) w->thread.join();
  run.gens_done.store(true);
  run.stop_sink.store(true);
  for (auto& w : run.sinks)
    if (w->thread.joinable()) w->thread.join();
}

void check_worker_errors(const TrialRun& run) {
  for (const auto& w : run.gens)
    if (w->error) std::rethrow_exception(w->error);
  for (const auto& w : run.sinks)
    if (w->error) std::rethrow_exception(w->error);
}

}  // namespace zc
