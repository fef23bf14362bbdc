#include "harness/options.h"

#include <gtest/gtest.h>

#include <string>

#include "harness/errors.h"

namespace zc {
namespace {

// The UsageError message of f(), or "" (and a test failure) when none is thrown.
template <typename F>
std::string usage_error(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UsageError thrown";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (haystack) << "' lacks '" << (needle) << "'"

TEST(options, Sizes) {
  EXPECT_EQ(parse_size("s", "0"), 0);
  EXPECT_EQ(parse_size("s", "4096"), 4096);
  EXPECT_EQ(parse_size("s", "4096B"), 4096);
  EXPECT_EQ(parse_size("s", "64K"), 65536);
  EXPECT_EQ(parse_size("s", "64k"), 65536);
  EXPECT_EQ(parse_size("s", "64KiB"), 65536);
  EXPECT_EQ(parse_size("s", "1M"), 1048576);
  EXPECT_EQ(parse_size("s", "2MiB"), 2097152);
  EXPECT_EQ(parse_size("s", "1G"), 1073741824);
  EXPECT_EQ(parse_size("s", "3GiB"), 3221225472);
  EXPECT_EQ(parse_size("s", "8589934591G"), int64_t(8589934591) << 30);
}

TEST(options, BadSizes) {
  for (const char* bad : {"", "K", "-1", "-1K", "abc"}) {
    std::string m = usage_error([&] { parse_size("rx recvmmsg option rcvbuf", bad); });
    EXPECT_CONTAINS(m, "rx recvmmsg option rcvbuf");
    EXPECT_CONTAINS(m, std::string("'") + bad + "'");
    EXPECT_CONTAINS(m, "not a size");
  }
  for (const char* bad : {"1T", "1.5M", "1 M", "4KB"}) {
    std::string m = usage_error([&] { parse_size("rcvbuf", bad); });
    EXPECT_CONTAINS(m, std::string("'") + bad + "'");
    EXPECT_CONTAINS(m, "accepted: K, M, G");
  }
  EXPECT_CONTAINS(usage_error([] { parse_size("rcvbuf", "8589934592G"); }), "too large");
  EXPECT_CONTAINS(usage_error([] { parse_size("rcvbuf", "99999999999999999999"); }), "not a size");
}

TEST(options, Integers) {
  EXPECT_EQ(parse_integer("i", "0"), 0);
  EXPECT_EQ(parse_integer("i", "-5"), -5);
  EXPECT_EQ(parse_integer("i", "9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "12x", "1K", "0.5", "x", "9223372036854775808"}) {
    std::string m = usage_error([&] { parse_integer("batch", bad); });
    EXPECT_CONTAINS(m, std::string("batch '") + bad + "' is not an integer");
  }
}

TEST(options, BoolSpellings) {
  for (const char* t : {"1", "on", "true", "yes"}) EXPECT_TRUE(parse_bool("b", t)) << t;
  for (const char* f : {"0", "off", "false", "no"}) EXPECT_FALSE(parse_bool("b", f)) << f;
  for (const char* bad : {"", "2", "ON", "y", "enable"}) {
    std::string m = usage_error([&] { parse_bool("busy_poll", bad); });
    EXPECT_CONTAINS(m, std::string("busy_poll '") + bad + "' is not a boolean");
    EXPECT_CONTAINS(m, "accepted: on, off");
  }
}

std::vector<OptionSpec> specs() {
  return {
      {"batch", OptionType::integer, "64", "messages per call", 1, 1024, {}},
      {"rcvbuf", OptionType::size, "4M", "SO_RCVBUF", 0, INT64_MAX, {}},
      {"busy_poll", OptionType::boolean, "off", "SO_BUSY_POLL", 0, INT64_MAX, {}},
      {"mode", OptionType::choice, "copy", "bind mode", 0, 0, {"copy", "zerocopy"}},
      {"tag", OptionType::text, "", "free text", 0, 0, {}},
  };
}

TEST(options, DefaultsFilled) {
  DriverOptions o = validate_options("rx test", specs(), {});
  EXPECT_EQ(o.integer("batch"), 64);
  EXPECT_EQ(o.integer("rcvbuf"), 4 << 20);
  EXPECT_FALSE(o.boolean("busy_poll"));
  EXPECT_EQ(o.text("mode"), "copy");
  EXPECT_EQ(o.text("tag"), "");
  EXPECT_EQ(o.values().size(), 5u);
  EXPECT_EQ(o.to_json()["rcvbuf"], "4194304");
  EXPECT_EQ(o.to_json()["busy_poll"], "off");
}

TEST(options, GivenValuesNormalised) {
  DriverOptions o = validate_options(
      "rx test", specs(), {{"batch", "1024"}, {"rcvbuf", "64K"}, {"busy_poll", "yes"}, {"mode", "zerocopy"}, {"tag", "a=b"}});
  EXPECT_EQ(o.integer("batch"), 1024);
  EXPECT_EQ(o.integer("rcvbuf"), 65536);
  EXPECT_TRUE(o.boolean("busy_poll"));
  EXPECT_EQ(o.values().at("busy_poll"), "on");
  EXPECT_EQ(o.text("mode"), "zerocopy");
  EXPECT_EQ(o.text("tag"), "a=b");
}

TEST(options, UnknownOptionListsAcceptedNames) {
  std::string m = usage_error([] { validate_options("rx recvmmsg", specs(), {{"batchsize", "8"}}); });
  EXPECT_EQ(m, "rx recvmmsg has no option 'batchsize'; accepted: batch, rcvbuf, busy_poll, mode, tag");
  m = usage_error([] { validate_options("tx sendto", {}, {{"x", "1"}}); });
  EXPECT_EQ(m, "tx sendto has no option 'x'; accepted: none");
}

TEST(options, Ranges) {
  EXPECT_EQ(validate_options("rx t", specs(), {{"batch", "1"}}).integer("batch"), 1);
  for (const char* bad : {"0", "1025", "-3"}) {
    std::string m = usage_error([&] { validate_options("rx t", specs(), {{"batch", bad}}); });
    EXPECT_EQ(m, std::string("rx t option batch=") + bad + " is out of range; accepted: 1..1024");
  }
  std::vector<OptionSpec> s = {{"ring", OptionType::size, "1M", "", 4096, INT64_MAX, {}}};
  EXPECT_EQ(usage_error([&] { validate_options("rx t", s, {{"ring", "1K"}}); }),
            "rx t option ring=1K is out of range; accepted: 4096..unlimited");
  EXPECT_CONTAINS(usage_error([] { validate_options("rx t", specs(), {{"batch", "many"}}); }),
                  "rx t option batch 'many' is not an integer");
}

TEST(options, Choices) {
  std::string m = usage_error([] { validate_options("rx t", specs(), {{"mode", "fast"}}); });
  EXPECT_EQ(m, "rx t option mode='fast' is not accepted; accepted: copy, zerocopy");
  EXPECT_CONTAINS(usage_error([] { validate_options("rx t", specs(), {{"busy_poll", "maybe"}}); }),
                  "rx t option busy_poll 'maybe' is not a boolean");
}

TEST(options, UndeclaredAccessIsInternalError) {
  DriverOptions o = validate_options("rx t", specs(), {});
  EXPECT_THROW(o.integer("nope"), InternalError);
  EXPECT_THROW(o.text("nope"), InternalError);
}

TEST(options, SpecJson) {
  auto s = specs();
  auto j = s[0].to_json();
  EXPECT_EQ(j["name"], "batch");
  EXPECT_EQ(j["type"], "int");
  EXPECT_EQ(j["default"], "64");
  EXPECT_EQ(j["min"], 1);
  EXPECT_EQ(j["max"], 1024);
  EXPECT_FALSE(s[1].to_json().contains("max"));  // unlimited
  EXPECT_EQ(s[3].to_json()["choices"], nlohmann::json({"copy", "zerocopy"}));
  EXPECT_FALSE(s[2].to_json().contains("min"));
}

TEST(options, DriverSpec) {
  DriverSpec d = parse_driver_spec("recvmmsg:batch=64,accounting=count");
  EXPECT_EQ(d.name, "recvmmsg");
  ASSERT_EQ(d.options.size(), 2u);
  EXPECT_EQ(d.options.at("batch"), "64");
  EXPECT_EQ(d.options.at("accounting"), "count");
  EXPECT_EQ(d.to_string(), "recvmmsg:accounting=count,batch=64");
  EXPECT_EQ(parse_driver_spec(d.to_string()).options, d.options);

  DriverSpec plain = parse_driver_spec("recv");
  EXPECT_EQ(plain.name, "recv");
  EXPECT_TRUE(plain.options.empty());
  EXPECT_EQ(plain.to_string(), "recv");
  EXPECT_TRUE(parse_driver_spec("recv:").options.empty());
  EXPECT_EQ(parse_driver_spec("recv:batch=8,").options.size(), 1u);
  EXPECT_EQ(parse_driver_spec("x:k=a=b").options.at("k"), "a=b");

  EXPECT_EQ(usage_error([] { parse_driver_spec(":batch=1"); }), "transport ':batch=1' has no name");
  EXPECT_EQ(usage_error([] { parse_driver_spec("recvmmsg:batch"); }),
            "option of recvmmsg 'batch' must be key=value");
  EXPECT_CONTAINS(usage_error([] { parse_driver_spec("recvmmsg:=5"); }), "must be key=value");
}

TEST(options, KeyValue) {
  auto kv = parse_key_value("--rx-opt", "batch=64");
  EXPECT_EQ(kv.first, "batch");
  EXPECT_EQ(kv.second, "64");
  EXPECT_EQ(parse_key_value("--rx-opt", "tag=").second, "");
  EXPECT_EQ(usage_error([] { parse_key_value("--rx-opt", "batch"); }), "--rx-opt 'batch' must be key=value");
}

}  // namespace
}  // namespace zc
