// End to end: a real mosquitto on 127.0.0.1, the cartridge-agent binary, and a
// libmosquitto subscriber standing in for Stratos.
#include "ports.hpp"
#include "test_broker.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <mosquitto.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_started = "instance/status/InstanceStartedEvent";
constexpr std::string_view k_activated = "instance/status/InstanceActivatedEvent";
constexpr std::string_view k_shutdown = "instance/status/InstanceReadyToShutdownEvent";
const std::string k_member_id = "app.php.domain54e2ebf4-ded5-4892-ada3-61a14a6c59ab";
const std::string k_cluster_id = "app.php.domain";
const std::string k_health_topic = "cartridge/health/" + k_member_id;

using agent_test::MosquittoBroker;

struct Message {
  std::string topic;
  std::string payload;
  Clock::time_point received;
};

// Subscribes to everything the agent publishes; libmosquitto's own thread reconnects and
// on_connect re-subscribes, so it survives a broker restart.
class Subscriber {
public:
  explicit Subscriber(std::uint16_t port) {
    mosquitto_lib_init();
    m_handle = mosquitto_new(nullptr, true, this);
    REQUIRE(m_handle != nullptr);
    mosquitto_connect_callback_set(m_handle, [](mosquitto* handle, void*, int rc) {
      if (rc == 0) {
        mosquitto_subscribe(handle, nullptr, "instance/status/#", 1);
        mosquitto_subscribe(handle, nullptr, "cartridge/health/#", 1);
      }
    });
    mosquitto_subscribe_callback_set(m_handle, [](mosquitto*, void* self, int, int, const int*) {
      auto* subscriber = static_cast<Subscriber*>(self);
      const std::lock_guard lock(subscriber->m_mutex);
      ++subscriber->m_subscriptions;
    });
    mosquitto_message_callback_set(m_handle, [](mosquitto*, void* self, const mosquitto_message* message) {
      auto* subscriber = static_cast<Subscriber*>(self);
      const std::lock_guard lock(subscriber->m_mutex);
      subscriber->m_messages.push_back(
          {message->topic,
           std::string(static_cast<const char*>(message->payload), static_cast<std::size_t>(message->payloadlen)),
           Clock::now()});
    });
    mosquitto_reconnect_delay_set(m_handle, 1, 1, false);
    REQUIRE(mosquitto_connect(m_handle, "127.0.0.1", port, 10) == MOSQ_ERR_SUCCESS);
    REQUIRE(mosquitto_loop_start(m_handle) == MOSQ_ERR_SUCCESS);
    REQUIRE(wait_for_subscriptions(2));
  }

  ~Subscriber() {
    mosquitto_disconnect(m_handle);
    mosquitto_loop_stop(m_handle, true);
    mosquitto_destroy(m_handle);
    mosquitto_lib_cleanup();
  }

  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  bool wait_for_subscriptions(int count) {
    return agent_test::wait_until(
        [&] {
          const std::lock_guard lock(m_mutex);
          return m_subscriptions >= count;
        },
        10s);
  }

  std::vector<Message> messages() const {
    const std::lock_guard lock(m_mutex);
    return m_messages;
  }

  std::vector<Message> on_topic(std::string_view topic) const {
    std::vector<Message> matching;
    for (auto& message : messages()) {
      if (message.topic == topic) {
        matching.push_back(std::move(message));
      }
    }
    return matching;
  }

  std::vector<std::string> status_topics() const {
    std::vector<std::string> topics;
    for (const auto& message : messages()) {
      if (message.topic.starts_with("instance/status/")) {
        topics.push_back(message.topic);
      }
    }
    return topics;
  }

  // The first message on `topic` received after `after`.
  std::optional<Message> wait_for(std::string_view topic, std::chrono::milliseconds timeout,
                                  Clock::time_point after = Clock::time_point::min()) const {
    std::optional<Message> found;
    agent_test::wait_until(
        [&] {
          for (auto& message : on_topic(topic)) {
            if (message.received > after) {
              found = std::move(message);
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }

private:
  mosquitto* m_handle = nullptr;
  mutable std::mutex m_mutex;
  int m_subscriptions = 0;
  std::vector<Message> m_messages;
};

// A port that is open and counts the connections made to it.
class CountingListener {
public:
  CountingListener() {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(::bind(m_fd, reinterpret_cast<const sockaddr*>(&address), length) == 0);
    REQUIRE(::listen(m_fd, 16) == 0);
    REQUIRE(::getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    m_port = ntohs(address.sin_port);
    m_thread = std::thread([this] {
      while (!m_stop) {
        pollfd entry{m_fd, POLLIN, 0};
        if (::poll(&entry, 1, 100) > 0) {
          const int connection = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (connection >= 0) {
            ::close(connection);
            ++m_connections;
          }
        }
      }
    });
  }
  ~CountingListener() {
    m_stop = true;
    m_thread.join();
    ::close(m_fd);
  }
  CountingListener(const CountingListener&) = delete;
  CountingListener& operator=(const CountingListener&) = delete;

  std::uint16_t port() const { return m_port; }
  int connections() const { return m_connections; }

private:
  int m_fd = -1;
  std::uint16_t m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_connections{0};
  std::thread m_thread;
};

struct AgentSetup {
  std::string mb_urls;
  std::string payload_extra;
  std::uint16_t service_port = 0;
  int port_check_timeout = 30;
  int stats_interval = 15;
  bool use_credentials_directory = false;
  // Appended to PORTS ("|<port>").
  std::optional<std::uint16_t> second_port;
};

// Writes agent.conf and the payload into `dir` and starts the binary.
std::unique_ptr<agent_test::ChildProcess> start_agent(const fs::path& dir, const AgentSetup& setup,
                                                      std::vector<std::string> args) {
  std::string ports = std::to_string(setup.service_port);
  if (setup.second_port) {
    // Appended: GCC 12 at -O2 reports a false -Wrestrict on "|" + std::to_string(...).
    ports.append(1, '|').append(std::to_string(*setup.second_port));
  }
  const std::string payload =
      "APPLICATION_ID=app,GROUP_NAME=null,SERVICE_NAME=php,HOST_NAME=app.php.stratos.org,MULTITENANT=false,"
      "TENANT_ID=-1234,CLUSTER_ID=" +
      k_cluster_id + ",DEPLOYMENT=default,PORTS=" + ports + ",PUPPET_DNS_AVAILABLE=null,,,DEPENDENCY_CLUSTER_IDS=," +
      "MEMBER_ID=" + k_member_id +
      ",INSTANCE_ID=null,CLUSTER_INSTANCE_ID=app-1,LB_CLUSTER_ID=null,"
      "NETWORK_PARTITION_ID=network-partition-1,PARTITION_ID=partition-1,INTERNAL=false" +
      setup.payload_extra;
  std::map<std::string, std::string> environment{{"CREDENTIALS_DIRECTORY", ""}};
  fs::path payload_file = dir / "launch-params";
  if (setup.use_credentials_directory) {
    fs::create_directories(dir / "credentials");
    agent_test::write_file(dir / "credentials" / "launch-params", payload);
    environment["CREDENTIALS_DIRECTORY"] = (dir / "credentials").string();
    // Proves the credential is read: the configured file does not exist.
    payload_file = dir / "no-such-payload";
  } else {
    agent_test::write_file(payload_file, payload);
  }
  agent_test::write_file(
      dir / "agent.conf",
      "mb.urls = " + setup.mb_urls + "\nstratos.handshake = false\nlisten.address = 127.0.0.1\nport.check.timeout = " +
          std::to_string(setup.port_check_timeout) + "\nstats.interval = " + std::to_string(setup.stats_interval) +
          "\npayload.file = " + payload_file.string() + "\n");
  std::vector<std::string> argv{CARTRIDGE_AGENT_EXECUTABLE, "--config", (dir / "agent.conf").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<agent_test::ChildProcess>(argv, dir / "agent.log", environment);
}

std::string local(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

void check_identity(const json& event) {
  CHECK(event.at("memberId") == k_member_id);
  CHECK(event.at("clusterId") == k_cluster_id);
  CHECK(event.at("clusterInstanceId") == "app-1");
  CHECK(event.at("networkPartitionId") == "network-partition-1");
  CHECK(event.at("partitionId") == "partition-1");
}

} // namespace

TEST_CASE("started, then activated, through broker failover and the systemd credential", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-once");
  MosquittoBroker broker(dir, agent_test::free_port());
  Subscriber subscriber(broker.port());
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);

  AgentSetup setup;
  // The first broker refuses: the agent must fail over to the second.
  setup.mb_urls = local(agent_test::free_port()) + "," + local(broker.port());
  setup.service_port = service_port;
  setup.use_credentials_directory = true;
  auto agent = start_agent(dir, setup, {"--once"});

  REQUIRE(agent->wait_for_exit(20s) == 0);
  REQUIRE(subscriber.wait_for(k_activated, 5s));
  CHECK(subscriber.status_topics() == std::vector<std::string>{std::string(k_started), std::string(k_activated)});

  const auto started = json::parse(subscriber.on_topic(k_started).at(0).payload);
  check_identity(started);
  CHECK(started.at("applicationId") == "app");
  CHECK(started.at("serviceName") == "php");
  CHECK(started.at("instanceId").is_null());

  const auto activated = json::parse(subscriber.on_topic(k_activated).at(0).payload);
  check_identity(activated);
  CHECK(activated.at("serviceName") == "php");
  CHECK_FALSE(activated.contains("applicationId"));
  CHECK(activated.size() == 7);
}

TEST_CASE("activation waits for the service port; MB_IP and MB_PORT override mb.urls", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-port-wait");
  MosquittoBroker broker(dir, agent_test::free_port());
  Subscriber subscriber(broker.port());
  const auto service_port = agent_test::free_port();
  CountingListener counter;

  AgentSetup setup;
  setup.mb_urls = local(agent_test::free_port());
  setup.payload_extra = ",MB_IP=127.0.0.1,MB_PORT=" + std::to_string(broker.port());
  setup.service_port = service_port;
  setup.second_port = counter.port();
  auto agent = start_agent(dir, setup, {"--once"});

  REQUIRE(subscriber.wait_for(k_started, 15s));
  // Each round of the port wait checks every port: a second check of the open port
  // proves a round found the service port closed and did not activate.
  REQUIRE(agent_test::wait_until([&] { return counter.connections() >= 2; }, 15s));
  CHECK(subscriber.on_topic(k_activated).empty());
  CHECK(agent->running());

  const auto opened_at = Clock::now();
  agent_test::TcpListener service(service_port);
  const auto activated = subscriber.wait_for(k_activated, 10s);
  REQUIRE(activated);
  CHECK(activated->received > opened_at);
  CHECK(agent->wait_for_exit(10s) == 0);
}

TEST_CASE("health every interval, and SIGTERM publishes InstanceReadyToShutdownEvent", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-sigterm");
  MosquittoBroker broker(dir, agent_test::free_port());
  Subscriber subscriber(broker.port());
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);

  AgentSetup setup;
  setup.mb_urls = local(broker.port());
  setup.service_port = service_port;
  setup.stats_interval = 1;
  auto agent = start_agent(dir, setup, {});

  REQUIRE(subscriber.wait_for(k_activated, 15s));
  REQUIRE(agent_test::wait_until([&] { return subscriber.on_topic(k_health_topic).size() >= 2; }, 10s));
  const auto health = json::parse(subscriber.on_topic(k_health_topic).at(0).payload);
  CHECK(health.at("clusterId") == k_cluster_id);
  CHECK(health.at("clusterInstanceId") == "app-1");
  CHECK(health.at("networkPartitionId") == "network-partition-1");
  CHECK(health.at("memberId") == k_member_id);
  CHECK(health.at("partitionId") == "partition-1");
  CHECK(health.at("health").at("memory_consumption").get<double>() > 0.0);
  CHECK(health.at("health").at("memory_consumption").get<double>() <= 100.0);
  CHECK(health.at("health").at("load_average").get<double>() >= 0.0);
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  CHECK(std::abs(health.at("timestamp").get<std::int64_t>() - now_ms) < 60'000);

  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(10s) == 0);
  const auto shutdown = subscriber.wait_for(k_shutdown, 5s);
  REQUIRE(shutdown);
  const auto event = json::parse(shutdown->payload);
  check_identity(event);
  CHECK_FALSE(event.contains("applicationId"));
  CHECK(subscriber.status_topics() ==
        std::vector<std::string>{std::string(k_started), std::string(k_activated), std::string(k_shutdown)});
}

TEST_CASE("a port timeout skips activation but health continues", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-port-timeout");
  MosquittoBroker broker(dir, agent_test::free_port());
  Subscriber subscriber(broker.port());

  AgentSetup setup;
  setup.mb_urls = local(broker.port());
  setup.service_port = agent_test::free_port();
  setup.port_check_timeout = 1;
  setup.stats_interval = 1;
  auto agent = start_agent(dir, setup, {});

  REQUIRE(subscriber.wait_for(k_started, 15s));
  REQUIRE(subscriber.wait_for(k_health_topic, 10s));
  CHECK(subscriber.on_topic(k_activated).empty());
  CHECK_THAT(agent_test::read_file(dir / "agent.log"),
             Catch::Contains("port activation timed out: port(s) " + std::to_string(setup.service_port)));

  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(10s) == 0);
  CHECK(subscriber.wait_for(k_shutdown, 5s));
  CHECK(subscriber.on_topic(k_activated).empty());
}

TEST_CASE("--once exits 1 when the ports time out", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-once-timeout");
  MosquittoBroker broker(dir, agent_test::free_port());
  Subscriber subscriber(broker.port());

  AgentSetup setup;
  setup.mb_urls = local(broker.port());
  setup.service_port = agent_test::free_port();
  setup.port_check_timeout = 1;
  auto agent = start_agent(dir, setup, {"--once"});

  CHECK(agent->wait_for_exit(15s) == 1);
  CHECK(subscriber.wait_for(k_started, 2s));
  CHECK(subscriber.status_topics() == std::vector<std::string>{std::string(k_started)});
}

TEST_CASE("SIGTERM during the port wait is prompt", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-stop-waiting");
  MosquittoBroker broker(dir, agent_test::free_port());
  Subscriber subscriber(broker.port());

  AgentSetup setup;
  setup.mb_urls = local(broker.port());
  setup.service_port = agent_test::free_port();
  // Far beyond the exit bound below: an agent that ignored the signal until the port
  // wait ended could not pass.
  setup.port_check_timeout = 600;
  auto agent = start_agent(dir, setup, {});

  REQUIRE(subscriber.wait_for(k_started, 15s));
  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(20s) == 0);
  CHECK(subscriber.wait_for(k_shutdown, 5s));
  CHECK(subscriber.status_topics() == std::vector<std::string>{std::string(k_started), std::string(k_shutdown)});
}

TEST_CASE("the agent reconnects after the broker restarts", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-reconnect");
  MosquittoBroker broker(dir, agent_test::free_port());
  Subscriber subscriber(broker.port());
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);

  AgentSetup setup;
  setup.mb_urls = local(broker.port());
  setup.service_port = service_port;
  setup.stats_interval = 1;
  auto agent = start_agent(dir, setup, {});

  REQUIRE(subscriber.wait_for(k_activated, 15s));
  REQUIRE(subscriber.wait_for(k_health_topic, 10s));

  broker.stop();
  // Restarted only once the agent has seen the broker go.
  REQUIRE(agent_test::wait_until(
      [&] { return agent_test::read_file(dir / "agent.log").find("lost the message broker") != std::string::npos; },
      30s));
  broker.start();
  // The subscriber re-subscribes on its own; messages after that prove the agent is back.
  REQUIRE(subscriber.wait_for_subscriptions(4));
  const auto resubscribed_at = Clock::now();
  CHECK(subscriber.wait_for(k_health_topic, 30s, resubscribed_at));
  CHECK(agent->running());
  CHECK_THAT(agent_test::read_file(dir / "agent.log"), Catch::Contains("lost the message broker"));

  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(10s) == 0);
  CHECK(subscriber.wait_for(k_shutdown, 5s));
}

TEST_CASE("an unreachable broker is reported on every attempt, with its address", "[integration]") {
  const auto dir = agent_test::make_test_directory("mqtt-unreachable");
  AgentSetup setup;
  const auto port = agent_test::free_port();
  setup.mb_urls = local(port);
  setup.service_port = agent_test::free_port();
  auto agent = start_agent(dir, setup, {});
  const auto expected = "error: cannot reach any message broker: connect to 127.0.0.1:" + std::to_string(port) +
                        ": Connection refused; retrying in ";
  // Two rounds: the first attempt is reported at once, and so is each retry.
  CHECK(agent_test::wait_until(
      [&] {
        const auto log = agent_test::read_file(dir / "agent.log");
        const auto first = log.find(expected + "1 s");
        return first != std::string::npos && log.find(expected + "2 s", first) != std::string::npos;
      },
      30s));
  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(10s) == 1);
}
