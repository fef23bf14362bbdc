#include "suites/conformance/records.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "harness/errors.h"
#include "harness/trial.h"

namespace zc {
namespace {

using nlohmann::ordered_json;

constexpr size_t kMaxReasonChars = 600;

// gtest messages span several lines ("Expected equality of these values:\n
// a\n Which is: 1 ..."); a record's reason is one line.
std::string one_line(const std::string& text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

std::string base_name(const char* path) {
  if (!path) return "";
  std::string p(path);
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Skip text for a skip, "file:line: message" of each failure for a failure.
std::string reason_of(const ::testing::TestResult& r) {
  std::string reason;
  for (int i = 0; i < r.total_part_count(); ++i) {
    const ::testing::TestPartResult& part = r.GetTestPartResult(i);
    std::string piece;
    if (r.Skipped() && part.skipped()) {
      piece = one_line(part.message());
      if (piece.empty()) piece = "skipped without a reason";
    } else if (part.failed()) {
      piece = one_line(part.summary());
      if (part.file_name()) piece = base_name(part.file_name()) + ":" + std::to_string(part.line_number()) + ": " + piece;
    } else {
      continue;
    }
    reason += (reason.empty() ? "" : "; ") + piece;
    if (reason.size() > kMaxReasonChars) {
      reason.resize(kMaxReasonChars - 3);
      reason += "...";
      break;
    }
  }
  return reason;
}

ordered_json conformance_item(const ::testing::TestResult& r) {
  for (int i = 0; i < r.test_property_count(); ++i) {
    const ::testing::TestProperty& p = r.GetTestProperty(i);
    if (std::string(p.key()) != kConformanceItemProperty) continue;
    char* end = nullptr;
    long v = std::strtol(p.value(), &end, 10);
    if (end && *end == '\0' && v > 0) return v;
  }
  return nullptr;
}

}  // namespace

ordered_json conformance_record(const ::testing::TestInfo& info, const std::string& kernel) {
  const ::testing::TestResult& r = *info.result();
  std::string status = r.Skipped() ? "skip" : r.Failed() ? "fail" : "pass";
  std::string suite = info.test_suite_name(), check = info.name();
  return {{"kind", "conformance"},
          {"suite", "conformance"},
          {"name", suite + "." + check},
          {"params",
           {{"transport", suite}, {"check", check}, {"conformance_item", conformance_item(r)}, {"kernel", kernel}}},
          {"status", status},
          {"reason", status == "pass" ? "" : reason_of(r)},
          {"raw", {{"duration_ms", r.elapsed_time()}}},
          {"derived", ordered_json::object()}};
}

void append_record_line(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw EnvError(errno_text("open records file " + path, errno), errno);
  std::string text = line + "\n";
  // One write(): with O_APPEND the kernel places it atomically at the end.
  ssize_t n = ::write(fd, text.data(), text.size());
  int write_errno = errno;
  int sync_rc = n == ssize_t(text.size()) ? ::fsync(fd) : 0;
  int sync_errno = errno;
  ::close(fd);
  if (n < 0) throw EnvError(errno_text("write records file " + path, write_errno), write_errno);
  if (n != ssize_t(text.size()))
    throw EnvError("write records file " + path + ": short write of " + std::to_string(n) + " of " +
                   std::to_string(text.size()) + " bytes");
  if (sync_rc < 0) throw EnvError(errno_text("fsync records file " + path, sync_errno), sync_errno);
}

RecordWriter::RecordWriter(std::string path) : path_(std::move(path)), kernel_(kernel_release()) {}

void RecordWriter::OnTestEnd(const ::testing::TestInfo& info) {
  try {
    append_record_line(path_, conformance_record(info, kernel_).dump());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zcbench-conformance: %s\n", e.what());
    ok_ = false;
  }
}

}  // namespace zc
