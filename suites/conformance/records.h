// Conformance records: one JSON line per finished test, the kind="conformance"
// record of docs/results-format.md, so run.py can fold ctest runs into run.json.
//
// A test states which docs/conformance.md item it checks with
// RecordProperty("conformance_item", N) as its first statement (before any
// skip, so skipped checks still name their item).
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace zc {

inline constexpr const char* kConformanceItemProperty = "conformance_item";

// The record of one finished test, keys in the documented order. `kernel` is
// the uname release.
nlohmann::ordered_json conformance_record(const ::testing::TestInfo& info, const std::string& kernel);

// Appends `line` plus a newline to `path` in one write (O_APPEND, so parallel
// ctest processes do not interleave) and fsyncs it; throws EnvError naming the path.
void append_record_line(const std::string& path, const std::string& line);

// Writes conformance_record() of every finished test to a file.
class RecordWriter : public ::testing::EmptyTestEventListener {
 public:
  explicit RecordWriter(std::string path);
  void OnTestEnd(const ::testing::TestInfo& info) override;
  // False once a record could not be written (the error went to stderr).
  bool ok() const { return ok_; }

 private:
  std::string path_;
  std::string kernel_;
  bool ok_ = true;
};

}  // namespace zc
