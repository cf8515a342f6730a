// Broker-less behaviour of the MQTT wrapper; test_agent_mqtt.cpp covers a real broker.
#include "mqtt.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace cartridge_agent;
using namespace std::chrono_literals;

TEST_CASE("reconnect back-off is 1, 2, 5, 10, 20, then 30 s", "[mqtt]") {
  CHECK(reconnect_delay(1) == 1s);
  CHECK(reconnect_delay(2) == 2s);
  CHECK(reconnect_delay(3) == 5s);
  CHECK(reconnect_delay(4) == 10s);
  CHECK(reconnect_delay(5) == 20s);
  CHECK(reconnect_delay(6) == 30s);
  CHECK(reconnect_delay(7) == 30s);
  CHECK(reconnect_delay(1000) == 30s);
  CHECK(reconnect_delay(0) == 1s);
}

TEST_CASE("connection errors name the operation and every broker", "[mqtt]") {
  const auto a = agent_test::free_port();
  const auto b = agent_test::free_port();
  MqttClient client({{"127.0.0.1", a}, {"127.0.0.1", b}}, MqttOptions{30s, 2000ms, 2000ms});
  const auto connected = client.connect_once();
  REQUIRE_FALSE(connected);
  CHECK(connected.error().message == "connect to 127.0.0.1:" + std::to_string(a) +
                                         ": Connection refused; connect to 127.0.0.1:" + std::to_string(b) +
                                         ": Connection refused");
  CHECK_FALSE(client.connected());
}

TEST_CASE("an unresolvable broker is an error, not a hang", "[mqtt]") {
  MqttClient client({{"no-such-host.invalid", 1883}}, MqttOptions{30s, 2000ms, 2000ms});
  const auto connected = client.connect_once();
  REQUIRE_FALSE(connected);
  CHECK_THAT(connected.error().message, Catch::StartsWith("connect to no-such-host.invalid:1883: "));
}

TEST_CASE("connect backs off between rounds and stops when told", "[mqtt]") {
  MqttClient client({{"127.0.0.1", agent_test::free_port()}}, MqttOptions{30s, 2000ms, 2000ms});
  std::vector<std::chrono::seconds> delays;
  std::vector<std::chrono::milliseconds> waits;
  const auto connected = client.connect(
      [&](std::chrono::milliseconds d) {
        if (d > 0ms) {
          waits.push_back(d);
        }
        return waits.size() < 4;
      },
      [&](const Error&, std::chrono::seconds retry_in) { delays.push_back(retry_in); });
  REQUIRE_FALSE(connected);
  CHECK_THAT(connected.error().message, Catch::StartsWith("connect: stopped before any broker accepted"));
  CHECK(delays == std::vector<std::chrono::seconds>{1s, 2s, 5s, 10s});
  CHECK(waits == std::vector<std::chrono::milliseconds>{1000ms, 2000ms, 5000ms, 10000ms});
}

TEST_CASE("publishing without a session fails cleanly", "[mqtt]") {
  MqttClient client({{"127.0.0.1", 1883}});
  const auto published = client.publish("instance/status/InstanceStartedEvent", "{}");
  REQUIRE_FALSE(published);
  CHECK(published.error().message == "publish instance/status/InstanceStartedEvent to no broker: not connected");
  CHECK_FALSE(client.service(10ms));
}

TEST_CASE("a client without brokers reports it", "[mqtt]") {
  MqttClient client({});
  const auto connected = client.connect_once();
  REQUIRE_FALSE(connected);
  CHECK(connected.error().message == "connect: no broker configured");
}
