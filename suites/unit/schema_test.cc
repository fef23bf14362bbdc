// A real, short trial end to end: its record, wrapped as a run.json document,
// must satisfy schema/run.schema.json as checked by `python3 -m reports.validate`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "harness/context.h"
#include "harness/errors.h"
#include "harness/lab.h"
#include "harness/trial.h"

namespace zc {
namespace {

using nlohmann::json;

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Runs `cmd` through the shell; returns its exit status and combined output.
int run_command(const std::string& cmd, std::string* output) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) output->append(buf, n);
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(schema, RealTrialValidates) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create the lab's network namespaces";
  const std::string src = ZC_SOURCE_DIR;
  if (!exists(src + "/reports/validate.py")) GTEST_SKIP() << "reports/validate.py does not exist yet";
  if (!exists(src + "/schema/run.schema.json")) GTEST_SKIP() << "schema/run.schema.json does not exist yet";
  if (!exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 (with python3-jsonschema) is not installed";

  TrialSpec spec;
  spec.tx = parse_driver_spec("sendmmsg");
  spec.rx = parse_driver_spec("recvmmsg");
  spec.payload_bytes = 272;
  spec.rate_pps = 20000;
  spec.duration_s = 0.3;
  spec.warmup_s = 0.1;
  spec.suite = "unit";
  if (online_cpu_count() < 2) spec.lab.gen_cpu = spec.lab.sink_cpu = 0;

  const std::string started = utc_now_iso8601();
  TrialOutcome out;
  try {
    out = run_trial(spec, nullptr);
  } catch (const EnvError& e) {
    GTEST_SKIP() << "this environment cannot build a lab: " << e.what();
  }
  ASSERT_FALSE(out.interrupted);
  const json& rec = out.record;
  if (rec["status"] == "skip") GTEST_SKIP() << rec["reason"].get<std::string>();

  EXPECT_EQ(rec["status"], "pass") << rec["reason"];
  EXPECT_EQ(rec["derived"]["lost_packets"], 0) << rec["derived"]["drops"].dump();
  EXPECT_GT(rec["raw"]["sent_total"].get<uint64_t>(), 0u);
  EXPECT_EQ(rec["raw"]["sequence"]["unique"], rec["raw"]["sent_total"]);
  EXPECT_EQ(rec["raw"]["sequence"]["corrupt"], 0);
  EXPECT_EQ(rec["raw"]["sequence"]["duplicates"], 0);

  json doc = run_document("unit-schema-test", "complete", started, {"zcbench-unit"}, json::array({rec}));
  char path[] = "/tmp/zcbench-schema-XXXXXX.json";
  int fd = mkstemps(path, 5);
  ASSERT_GE(fd, 0) << "mkstemps failed";
  close(fd);
  {
    std::ofstream f(path);
    f << doc.dump(2) << "\n";
    ASSERT_TRUE(f.good()) << "cannot write " << path;
  }
  std::string output;
  int rc = run_command("cd '" + src + "' && /usr/bin/python3 -m reports.validate '" + std::string(path) + "'", &output);
  EXPECT_EQ(rc, 0) << output;
  if (rc == 0) unlink(path);  // kept for inspection when invalid
  else ADD_FAILURE() << "document kept at " << path;
}

}  // namespace
}  // namespace zc
