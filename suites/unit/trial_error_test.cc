// An exception after the workers started ends the trial as an `error` record
// with the documented exit code (harness/errors.h), every worker joined, never
// std::terminate. The generator here is a real one (the flood) whose run()
// fails after its driver opened: the path a failing kernel call takes.
// Needs namespaces (root); skipped with the reason without them.
#include <gtest/gtest.h>

#include "harness/errors.h"
#include "harness/flood.h"
#include "harness/netns.h"
#include "harness/trial_run.h"

namespace zc {
namespace {

std::string netns_unavailable_reason() {
  try {
    Netns probe = Netns::create_anonymous();
    return "";
  } catch (const EnvError& e) {
    return std::string("cannot create network namespaces here (needs root/CAP_SYS_ADMIN): ") + e.what();
  }
}

// The flood, failing with `E` once it is told to run.
template <class E>
class FailingFlood : public Generator {
 public:
  void open(const GenContext& ctx) override { inner_->open(ctx); }
  void run(uint64_t, uint64_t, const std::atomic<bool>&) override { throw E("the generator failed mid-trial"); }

 private:
  std::unique_ptr<Generator> inner_ = flood_generator_info().make();
};

template <class E>
TrialOutcome run_failing() {
  TrialSpec spec;
  spec.tx = {"sendto", {}};
  spec.rx = {"recv", {}};
  spec.duration_s = 0.2;
  spec.warmup_s = 0;
  spec.perf_events = {"task-clock"};
  TrialRun run(spec, nullptr);
  validate_step(run);
  GeneratorInfo failing = *run.gen_info;
  failing.make = [] { return std::make_unique<FailingFlood<E>>(); };
  run.gen_info = &failing;
  return run_prepared_trial(run);
}

TEST(trial_error, InternalErrorAfterWorkersStartIsAnErrorRecord) {
  if (auto why = netns_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  TrialOutcome out = run_failing<InternalError>();
  if (out.record["status"] == "skip") GTEST_SKIP() << out.record["reason"].get<std::string>();
  EXPECT_EQ(out.record["status"], "error");
  EXPECT_EQ(out.record["reason"], "the generator failed mid-trial");
  EXPECT_EQ(out.exit_code, kExitInternal);
  EXPECT_EQ(out.record["exit_code"], kExitInternal);
  EXPECT_FALSE(out.interrupted);
}

TEST(trial_error, EnvErrorAfterWorkersStartKeepsItsExitCode) {
  if (auto why = netns_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  TrialOutcome out = run_failing<EnvError>();
  if (out.record["status"] == "skip") GTEST_SKIP() << out.record["reason"].get<std::string>();
  EXPECT_EQ(out.record["status"], "error");
  EXPECT_EQ(out.exit_code, kExitEnvironment);
}

}  // namespace
}  // namespace zc

namespace zc {
namespace {

// A usage error from a worker (a driver's open() finding the configuration
// impossible, or later) stays a usage error (exit 2), every
// worker stopped first.
TEST(trial_error, UsageErrorFromAWorkerStaysAUsageError) {
  if (auto why = netns_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  EXPECT_THROW(run_failing<UsageError>(), UsageError);
}

}  // namespace
}  // namespace zc
