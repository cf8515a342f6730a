#include "boot/broker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <mosquitto.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "util/fs.hpp"

namespace bi {

void init_mosquitto_lib() {
  static const bool done = [] {
    mosquitto_lib_init();
    return true;
  }();
  (void)done;
}

Expected<void> mqtt_connect_and_start(struct mosquitto* mosq, const BrokerAddress& broker,
                                      std::chrono::steady_clock::time_point deadline, const std::string& object) {
  int rc = MOSQ_ERR_UNKNOWN;
  while (std::chrono::steady_clock::now() < deadline && !interrupted()) {
    rc = mosquitto_connect(mosq, broker.host.c_str(), broker.port, 30);
    if (rc == MOSQ_ERR_SUCCESS) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    return fail(object, std::string("cannot connect: ") +
                            (rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc)));
  }
  // The network thread sends CONNECT's follow-ups, reconnects and delivers messages.
  rc = mosquitto_loop_start(mosq);
  if (rc != MOSQ_ERR_SUCCESS) {
    return fail(object, std::string("cannot start the MQTT network thread: ") + mosquitto_strerror(rc));
  }
  return {};
}

namespace {

bool loopback_port_answers(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string mosquitto_program() {
  if (program_available("mosquitto")) {
    return "mosquitto";
  }
  return program_available("/usr/sbin/mosquitto") ? "/usr/sbin/mosquitto" : std::string();
}

} // namespace

Expected<BrokerAddress> parse_broker_address(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return fail(text, "expected HOST:PORT", ExitCode::bad_input);
  }
  BrokerAddress a;
  a.host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
    return fail(text, "port '" + port + "' is not a number", ExitCode::bad_input);
  }
  a.port = std::stoi(port);
  if (a.port < 1 || a.port > 65535) {
    return fail(text, "port " + port + " is out of range (1-65535)", ExitCode::bad_input);
  }
  // qemu's guestfwd relay and libmosquitto both take the host as written; reject what would
  // break qemu's comma-separated -netdev option string or the relay's quoted command.
  if (a.host.empty() || a.host.find_first_of(",= '\"\\$`;&|<>()\t\n") != std::string::npos) {
    return fail(text, "invalid host '" + a.host + "'", ExitCode::bad_input);
  }
  return a;
}

Expected<int> free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail("127.0.0.1", std::string("cannot create a socket: ") + std::strerror(errno));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    return fail("127.0.0.1", "cannot find a free port: " + err);
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

std::string render_mosquitto_conf(int port) {
  // Logging to stdout lands in the file the parent opened, so it works after mosquitto
  // drops root for its own user, who cannot write to our work directory.
  return fmt::format("listener {} 127.0.0.1\n"
                     "allow_anonymous true\n"
                     "persistence false\n"
                     "log_dest stdout\n"
                     "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                     "connection_messages true\n",
                     port);
}

Expected<MosquittoBroker> MosquittoBroker::start(const fs::path& work_dir) {
  const std::string program = mosquitto_program();
  if (program.empty()) {
    return fail("mosquitto", "not installed (apt-get install mosquitto)", ExitCode::host_missing);
  }
  const fs::path conf = work_dir / "mosquitto.conf";
  const fs::path log = work_dir / "mosquitto.log";
  // The port is free when probed but could be taken before mosquitto binds it.
  std::string last_problem;
  for (int attempt = 0; attempt < 3; ++attempt) {
    BI_TRY_ASSIGN(int port, free_loopback_port());
    BI_TRY(write_file_atomic(conf, render_mosquitto_conf(port), 0644));
    BI_TRY_ASSIGN(Subprocess process, Subprocess::start({program, "-c", conf.string()}, log.string()));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline && !interrupted()) {
      if (loopback_port_answers(port)) {
        spdlog::debug("mosquitto listens on 127.0.0.1:{}", port);
        return MosquittoBroker(std::move(process), port, log);
      }
      if (!process.running()) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (interrupted()) {
      return fail("mosquitto", "interrupted");
    }
    auto text = read_file(log);
    last_problem = text ? tail_lines(*text, 5) : "";
    if (last_problem.find("Address already in use") == std::string::npos) {
      break;
    }
  }
  return fail("mosquitto", "did not start listening on 127.0.0.1 within 10 s" +
                               (last_problem.empty() ? std::string() : ":\n" + last_problem));
}

EventRecorder::EventRecorder(BrokerAddress broker, std::string topic_filter)
    : m_broker(std::move(broker)), m_topic_filter(std::move(topic_filter)) {}

Expected<std::unique_ptr<EventRecorder>>
EventRecorder::connect(const BrokerAddress& broker, const std::string& topic_filter, std::chrono::seconds timeout) {
  init_mosquitto_lib();
  std::unique_ptr<EventRecorder> r(new EventRecorder(broker, topic_filter));
  const std::string object = "MQTT broker " + broker.to_string();
  // Unique per recorder: the broker drops a client whose id another one takes over.
  static std::atomic<int> count{0};
  const int n = count.fetch_add(1);
  r->m_client_id = n == 0 ? fmt::format("build-image-boot-test-{}", ::getpid())
                          : fmt::format("build-image-boot-test-{}-{}", ::getpid(), n);
  r->m_mosq = mosquitto_new(r->m_client_id.c_str(), true, r.get());
  if (r->m_mosq == nullptr) {
    return fail(object, std::string("cannot create an MQTT client: ") + std::strerror(errno));
  }
  mosquitto_connect_callback_set(r->m_mosq, &EventRecorder::on_connect);
  mosquitto_disconnect_callback_set(r->m_mosq, &EventRecorder::on_disconnect);
  mosquitto_subscribe_callback_set(r->m_mosq, &EventRecorder::on_subscribe);
  mosquitto_message_callback_set(r->m_mosq, &EventRecorder::on_message);
  mosquitto_reconnect_delay_set(r->m_mosq, 1, 5, false);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  BI_TRY(mqtt_connect_and_start(r->m_mosq, broker, deadline, object));
  r->m_loop_started = true;
  while (!r->m_subscribed.load() && std::chrono::steady_clock::now() < deadline && !interrupted()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!r->m_subscribed.load()) {
    const int connack = r->m_connack.load();
    return fail(object, connack > 0 ? std::string("refused the connection: ") + mosquitto_connack_string(connack)
                                    : "did not acknowledge the subscription to " + topic_filter);
  }
  return r;
}

EventRecorder::~EventRecorder() {
  if (m_mosq == nullptr) {
    return;
  }
  if (m_loop_started) {
    mosquitto_disconnect(m_mosq);
    mosquitto_loop_stop(m_mosq, true);
  }
  mosquitto_destroy(m_mosq);
}

std::vector<BrokerMessage> EventRecorder::messages() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_messages;
}

void EventRecorder::on_connect(struct mosquitto* m, void* self, int rc) {
  auto* r = static_cast<EventRecorder*>(self);
  r->m_connack.store(rc);
  if (rc != 0) {
    return;
  }
  r->m_connected.store(true);
  // A clean session forgets subscriptions, so every (re)connect subscribes again.
  // QoS 1: the agent's events must not be lost between broker and us.
  mosquitto_subscribe(m, nullptr, r->m_topic_filter.c_str(), 1);
}

void EventRecorder::on_disconnect(struct mosquitto*, void* self, int) {
  static_cast<EventRecorder*>(self)->m_connected.store(false);
}

void EventRecorder::on_subscribe(struct mosquitto*, void* self, int, int qos_count, const int* granted) {
  // 0x80 in the granted list is the broker refusing the filter.
  if (qos_count > 0 && granted != nullptr && granted[0] != 0x80) {
    static_cast<EventRecorder*>(self)->m_subscribed.store(true);
  }
}

void EventRecorder::on_message(struct mosquitto*, void* self, const struct mosquitto_message* msg) {
  auto* r = static_cast<EventRecorder*>(self);
  BrokerMessage m;
  m.received = std::chrono::steady_clock::now();
  m.topic = msg->topic != nullptr ? msg->topic : "";
  if (msg->payload != nullptr && msg->payloadlen > 0) {
    m.payload.assign(static_cast<const char*>(msg->payload), static_cast<size_t>(msg->payloadlen));
  }
  std::lock_guard<std::mutex> lock(r->m_mutex);
  r->m_messages.push_back(std::move(m));
}

} // namespace bi
