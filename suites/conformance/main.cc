// zcbench-conformance: the kernel's documented contract per transport
// (docs/conformance.md), one gtest per check. With ZCBENCH_RECORDS=<file>
// every finished test also appends its kind="conformance" record to <file>.
#include <gtest/gtest.h>

#include <cstdlib>

#include "harness/errors.h"
#include "suites/conformance/records.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  zc::RecordWriter* writer = nullptr;
  if (const char* path = std::getenv("ZCBENCH_RECORDS"); path && *path) {
    writer = new zc::RecordWriter(path);
    ::testing::UnitTest::GetInstance()->listeners().Append(writer);  // gtest owns it from here
  }
  int rc = RUN_ALL_TESTS();
  if (writer && !writer->ok() && rc == 0) rc = zc::kExitInternal;
  return rc;
}
