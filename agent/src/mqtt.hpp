#pragma once

#include "common.hpp"
#include "config.hpp"

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

struct mosquitto;
struct mosquitto_message;

namespace cartridge_agent {

// libmosquitto must be initialised before the first client exists and cleaned up after
// the last one is gone; its init/cleanup are reference counted, so one guard per client
// is safe.
class MosquittoLibrary {
public:
    MosquittoLibrary();
    ~MosquittoLibrary();
    MosquittoLibrary(const MosquittoLibrary&) = delete;
    MosquittoLibrary& operator=(const MosquittoLibrary&) = delete;
};

struct MqttOptions {
    std::chrono::seconds keepalive{30};
    // Per broker: TCP connect plus CONNACK.
    std::chrono::milliseconds connect_timeout{10'000};
    // From PUBLISH to PUBACK.
    std::chrono::milliseconds publish_timeout{30'000};
};

// Delay after the n-th consecutive round in which no broker accepted: 1, 2, 5, 10, 20,
// then 30 s for every later round.
std::chrono::seconds reconnect_delay(unsigned failed_rounds);

struct InboundMessage {
    std::string topic;
    std::string payload;
};

// An MQTT 3.1.1 client over libmosquitto's C API, driven from the calling thread (no
// libmosquitto thread), so callbacks need no locking. Received messages wait in an inbox
// until the owner takes them, so no handler ever runs inside a network call. Not
// movable: libmosquitto keeps a pointer to it for callbacks.
class MqttClient {
public:
    explicit MqttClient(std::vector<BrokerAddress> brokers, MqttOptions options = {});
    ~MqttClient();
    MqttClient(const MqttClient&) = delete;
    MqttClient& operator=(const MqttClient&) = delete;

    // One round: each broker in order until one accepts the session. `idle` is asked with
    // a zero duration whether to keep waiting for a broker's answer.
    Result<void> connect_once(const IdleFunction& idle = {});

    using RoundFailed = std::function<void(const Error&, std::chrono::seconds retry_in)>;
    // Rounds separated by reconnect_delay(), until a broker accepts or `idle` says stop.
    Result<void> connect(const IdleFunction& idle, const RoundFailed& on_round_failed = {});

    // QoS 1; returns once the broker acknowledged (PUBACK). On a transport failure or
    // timeout the session is dropped, so connected() turns false; errors the broker
    // could never accept (bad topic, oversized payload) leave the session up.
    Result<void> publish(std::string_view topic, std::string_view payload);

    // Subscribes (QoS 1) and waits for the SUBACK. The filter is remembered: every later
    // session subscribes to it again before connect() returns, since a clean session
    // keeps nothing and QoS 0 publishers keep nothing either.
    Result<void> subscribe(std::string_view filter);

    // Messages received so far, oldest first; empties the inbox.
    std::deque<InboundMessage> take_messages();

    // Runs the network loop for `duration` (keepalive pings); fails, dropping the session,
    // when the connection is lost.
    Result<void> service(std::chrono::milliseconds duration);

    void disconnect();
    bool connected() const noexcept { return m_connected; }
    // The broker of the current (or last attempted) session.
    std::optional<BrokerAddress> broker() const;

private:
    Result<void> await_acknowledgement(const std::string& operation, int code, int message_id);
    struct HandleDeleter {
        void operator()(mosquitto* handle) const noexcept;
    };

    Result<void> connect_to(const BrokerAddress& broker, const IdleFunction& idle);
    Result<void> send_subscribe(const std::string& filter);
    Result<void> new_handle();
    void drop_session();
    std::string broker_name() const;

    static void on_connect(mosquitto* handle, void* self, int connack_code);
    static void on_disconnect(mosquitto* handle, void* self, int reason);
    static void on_publish(mosquitto* handle, void* self, int message_id);
    static void on_subscribe(mosquitto* handle, void* self, int message_id, int count, const int* granted);
    static void on_message(mosquitto* handle, void* self, const mosquitto_message* message);

    MosquittoLibrary m_library;
    std::vector<BrokerAddress> m_brokers;
    MqttOptions m_options;
    std::unique_ptr<mosquitto, HandleDeleter> m_handle;
    std::optional<std::size_t> m_broker_index;
    bool m_connected = false;
    std::optional<int> m_connack_code;
    std::set<int> m_acknowledged;
    std::vector<std::string> m_subscriptions;
    std::deque<InboundMessage> m_inbox;
};

} // namespace cartridge_agent
