#include "ports.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace cartridge_agent;
using namespace std::chrono_literals;
using Outcome = PortWaitResult::Outcome;

TEST_CASE("an open port accepts, a closed one does not", "[ports]") {
  const auto port = agent_test::free_port();
  CHECK_FALSE(port_accepts_connection("127.0.0.1", port, 500ms));
  agent_test::TcpListener listener(port);
  CHECK(port_accepts_connection("127.0.0.1", port, 500ms));
  // localhost resolves to ::1 first on many systems; the IPv4 listener must still count.
  CHECK(port_accepts_connection("localhost", port, 500ms));
  CHECK_FALSE(port_accepts_connection("no-such-host.invalid", port, 500ms));
}

TEST_CASE("all ports open returns at once", "[ports]") {
  const auto a = agent_test::free_port();
  const auto b = agent_test::free_port();
  agent_test::TcpListener listener_a(a);
  agent_test::TcpListener listener_b(b);
  int idle_calls = 0;
  const std::vector<std::uint16_t> ports{a, b};
  const auto result = wait_for_ports("127.0.0.1", ports, 5s, [&](std::chrono::milliseconds) {
    ++idle_calls;
    return true;
  });
  CHECK(result.outcome == Outcome::all_open);
  CHECK(result.closed_ports.empty());
  CHECK(idle_calls == 0);
}

TEST_CASE("a port that stays closed times out and is named", "[ports]") {
  const auto open = agent_test::free_port();
  const auto closed = agent_test::free_port();
  agent_test::TcpListener listener(open);
  std::vector<std::chrono::milliseconds> waits;
  const std::vector<std::uint16_t> ports{open, closed};
  const auto started = std::chrono::steady_clock::now();
  const auto result = wait_for_ports("127.0.0.1", ports, 2s, [&](std::chrono::milliseconds d) {
    waits.push_back(d);
    std::this_thread::sleep_for(d);
    return true;
  });
  const auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(result.outcome == Outcome::timed_out);
  CHECK(result.closed_ports == std::vector<std::uint16_t>{closed});
  CHECK(elapsed >= 2s);
  CHECK(elapsed < 4s);
  // Polled every second.
  REQUIRE(waits.size() >= 2);
  CHECK(waits.front() == 1000ms);
}

TEST_CASE("a zero timeout checks once", "[ports]") {
  const auto port = agent_test::free_port();
  int idle_calls = 0;
  const std::vector<std::uint16_t> ports{port};
  const auto result = wait_for_ports("127.0.0.1", ports, 0s, [&](std::chrono::milliseconds) {
    ++idle_calls;
    return true;
  });
  CHECK(result.outcome == Outcome::timed_out);
  CHECK(idle_calls == 0);
}

TEST_CASE("a port that opens later is seen on the next poll", "[ports]") {
  const auto port = agent_test::free_port();
  std::optional<agent_test::TcpListener> listener;
  int idle_calls = 0;
  const std::vector<std::uint16_t> ports{port};
  const auto result = wait_for_ports("127.0.0.1", ports, 10s, [&](std::chrono::milliseconds) {
    // Instead of sleeping, open the port on the second wait.
    if (++idle_calls == 2) {
      listener.emplace(port);
    }
    return true;
  });
  CHECK(result.outcome == Outcome::all_open);
  CHECK(idle_calls == 2);
}

TEST_CASE("the idle function can abandon the wait", "[ports]") {
  const auto port = agent_test::free_port();
  const std::vector<std::uint16_t> ports{port};
  const auto result = wait_for_ports("127.0.0.1", ports, 60s, [](std::chrono::milliseconds) { return false; });
  CHECK(result.outcome == Outcome::stopped);
  CHECK(result.closed_ports == std::vector<std::uint16_t>{port});
}

TEST_CASE("format_ports", "[ports]") {
  const std::vector<std::uint16_t> ports{80, 443};
  CHECK(format_ports(ports) == "80|443");
  CHECK(format_ports({}).empty());
}
