#include "health.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace cartridge_agent;

namespace {

// Trimmed from a real 4.x kernel.
constexpr std::string_view k_meminfo = "MemTotal:        8000000 kB\n"
                                       "MemFree:          500000 kB\n"
                                       "MemAvailable:    6000000 kB\n"
                                       "Buffers:          100000 kB\n"
                                       "Cached:          3000000 kB\n"
                                       "SwapCached:            0 kB\n";

} // namespace

TEST_CASE("memory consumption is the used share of MemTotal", "[health]") {
  const auto used = parse_memory_consumption(k_meminfo);
  REQUIRE(used);
  CHECK(used.value() == Approx(25.0));
}

TEST_CASE("memory consumption rounds to two decimals", "[health]") {
  const auto used = parse_memory_consumption("MemTotal: 3 kB\nMemAvailable: 2 kB\n");
  REQUIRE(used);
  CHECK(used.value() == Approx(33.33).margin(1e-9));
}

TEST_CASE("old kernels without MemAvailable use MemFree + Buffers + Cached", "[health]") {
  const auto used = parse_memory_consumption("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n");
  REQUIRE(used);
  CHECK(used.value() == Approx(60.0));
}

TEST_CASE("a field name must match exactly", "[health]") {
  // "MemTotalX" must not be taken for MemTotal.
  const auto used = parse_memory_consumption("MemTotalX: 5 kB\nMemTotal: 200 kB\nMemAvailable: 50 kB\n");
  REQUIRE(used);
  CHECK(used.value() == Approx(75.0));
}

TEST_CASE("unusable meminfo is an error", "[health]") {
  CHECK(parse_memory_consumption("").error().message == "meminfo: no usable MemTotal");
  CHECK(parse_memory_consumption("MemTotal: 0 kB\nMemAvailable: 0 kB\n").error().message ==
        "meminfo: no usable MemTotal");
  CHECK(parse_memory_consumption("MemTotal: x kB\n").error().message == "meminfo: no usable MemTotal");
  CHECK(parse_memory_consumption("MemTotal: 100 kB\nMemFree: 1 kB\n").error().message ==
        "meminfo: neither MemAvailable nor MemFree, Buffers and Cached");
}

TEST_CASE("MemAvailable above MemTotal clamps to 0%", "[health]") {
  const auto used = parse_memory_consumption("MemTotal: 100 kB\nMemAvailable: 150 kB\n");
  REQUIRE(used);
  CHECK(used.value() == 0.0);
}

TEST_CASE("load average is the 1-minute load per CPU in percent", "[health]") {
  constexpr std::string_view k_loadavg = "1.50 0.80 0.40 2/345 6789\n";
  CHECK(parse_load_average(k_loadavg, 1).value() == Approx(150.0));
  CHECK(parse_load_average(k_loadavg, 2).value() == Approx(75.0));
  CHECK(parse_load_average(k_loadavg, 4).value() == Approx(37.5));
  CHECK(parse_load_average("0.00 0.00 0.00 1/1 1\n", 8).value() == 0.0);
  CHECK(parse_load_average("0.10 0 0 1/1 1", 3).value() == Approx(3.33).margin(1e-9));
}

TEST_CASE("unusable loadavg is an error", "[health]") {
  CHECK(parse_load_average("", 2).error().message == "loadavg: empty");
  CHECK(parse_load_average("abc 1 2", 2).error().message == "loadavg: cannot parse 'abc' as a load average");
  CHECK(parse_load_average("1.0x 1 2", 2).error().message == "loadavg: cannot parse '1.0x' as a load average");
  CHECK(parse_load_average("-1 1 2", 2).error().message == "loadavg: cannot parse '-1' as a load average");
  CHECK(parse_load_average("1 1 1", 0).error().message == "loadavg: CPU count is 0");
}

TEST_CASE("read_health reads a proc directory", "[health]") {
  const auto dir = agent_test::make_test_directory("health");
  agent_test::write_file(dir / "meminfo", k_meminfo);
  agent_test::write_file(dir / "loadavg", "0.00 0.01 0.05 1/100 42\n");
  const auto sample = read_health(dir);
  REQUIRE(sample);
  CHECK(sample.value().memory_consumption == Approx(25.0));
  CHECK(sample.value().load_average == 0.0);

  std::filesystem::remove(dir / "loadavg");
  const auto missing = read_health(dir);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message == (dir / "loadavg").string() + ": cannot read: No such file or directory");
}

TEST_CASE("the real /proc gives plausible values", "[health]") {
  const auto sample = read_health();
  REQUIRE(sample);
  CHECK(sample.value().memory_consumption > 0.0);
  CHECK(sample.value().memory_consumption <= 100.0);
  CHECK(sample.value().load_average >= 0.0);
  CHECK(online_cpu_count() >= 1);
}
