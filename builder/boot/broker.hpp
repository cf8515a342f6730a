#pragma once
// The message broker side of a boot test: a real mosquitto on 127.0.0.1 started for the
// run (the guest reaches it through a qemu guestfwd), and a libmosquitto subscriber that
// records every message with its arrival time.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "util/expected.hpp"
#include "util/process.hpp"

struct mosquitto;
struct mosquitto_message;

namespace bi {

namespace fs = std::filesystem;

struct BrokerMessage {
  std::string topic;
  std::string payload;
  std::chrono::steady_clock::time_point received;
};

// "host:port" with a port in 1..65535.
struct BrokerAddress {
  std::string host;
  int port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};
Expected<BrokerAddress> parse_broker_address(const std::string& text);

// libmosquitto's process-wide initialisation, once.
void init_mosquitto_lib();

// Connects `mosq` (callbacks set) to `broker`, retrying until `deadline` (a broker just
// started may not listen yet), then starts libmosquitto's network thread. Errors name
// `object`.
Expected<void> mqtt_connect_and_start(struct mosquitto* mosq, const BrokerAddress& broker,
                                      std::chrono::steady_clock::time_point deadline, const std::string& object);

// A loopback TCP port nobody listens on right now.
Expected<int> free_loopback_port();

// The mosquitto.conf of a private broker: loopback only, anonymous, nothing on disk.
std::string render_mosquitto_conf(int port);

// A mosquitto process listening on 127.0.0.1:<port>, stopped when the object goes away.
class MosquittoBroker {
public:
  // Config and log go to `work_dir`. Fails with host_missing when mosquitto is not installed.
  static Expected<MosquittoBroker> start(const fs::path& work_dir);

  int port() const { return m_port; }
  BrokerAddress address() const { return {"127.0.0.1", m_port}; }
  bool running() { return m_process.running(); }
  const fs::path& log_file() const { return m_log; }

private:
  MosquittoBroker(Subprocess process, int port, fs::path log)
      : m_process(std::move(process)), m_port(port), m_log(std::move(log)) {}
  Subprocess m_process;
  int m_port = 0;
  fs::path m_log;
};

// A subscriber on one topic filter. libmosquitto's network thread calls back into the
// object, so it is handed out behind a pointer and never moves.
class EventRecorder {
public:
  // Connects, subscribes and waits (up to `timeout`) until the broker acknowledged the
  // subscription, so nothing published after this returns can be missed.
  static Expected<std::unique_ptr<EventRecorder>> connect(const BrokerAddress& broker, const std::string& topic_filter,
                                                          std::chrono::seconds timeout);
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;
  ~EventRecorder();

  // Every message received so far, in arrival order.
  std::vector<BrokerMessage> messages() const;
  bool connected() const { return m_connected.load(); }
  const std::string& client_id() const { return m_client_id; }

private:
  EventRecorder(BrokerAddress broker, std::string topic_filter);
  static void on_connect(struct mosquitto* m, void* self, int rc);
  static void on_disconnect(struct mosquitto* m, void* self, int rc);
  static void on_subscribe(struct mosquitto* m, void* self, int mid, int qos_count, const int* granted);
  static void on_message(struct mosquitto* m, void* self, const struct mosquitto_message* msg);

  BrokerAddress m_broker;
  std::string m_topic_filter;
  std::string m_client_id;
  struct mosquitto* m_mosq = nullptr;
  bool m_loop_started = false;
  std::atomic<bool> m_connected{false};
  std::atomic<bool> m_subscribed{false};
  std::atomic<int> m_connack{-1};
  mutable std::mutex m_mutex;
  std::vector<BrokerMessage> m_messages;
};

} // namespace bi
