#include "mqtt.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <system_error>
#include <utility>

#include <mosquitto.h>

namespace cartridge_agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds k_loop_slice{100};

// MOSQ_ERR_ERRNO means "look at errno", which only the caller can capture in time.
Error mqtt_error(const std::string& operation, int code, int saved_errno) {
    std::string reason;
    if (code == MOSQ_ERR_ERRNO && saved_errno != 0) {
        reason = std::error_code(saved_errno, std::generic_category()).message();
    } else {
        reason = mosquitto_strerror(code);
    }
    return Error{operation + ": " + reason};
}

std::string seconds_text(std::chrono::milliseconds duration) {
    const auto tenths = duration.count() / 100;
    // Appended piece by piece: GCC 12 at -O2 reports a false -Wrestrict on "." + std::to_string(...).
    std::string text = std::to_string(tenths / 10);
    if (tenths % 10 != 0) {
        text.append(1, '.').append(std::to_string(tenths % 10));
    }
    text.append(" s");
    return text;
}

// Keeps the loop responsive to both the deadline and the caller's stop request.
int loop_once(mosquitto* handle, Clock::time_point deadline) {
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const auto slice = std::clamp(remaining, std::chrono::milliseconds{1}, k_loop_slice);
    errno = 0;
    return mosquitto_loop(handle, static_cast<int>(slice.count()), 1);
}

} // namespace

MosquittoLibrary::MosquittoLibrary() { mosquitto_lib_init(); }
MosquittoLibrary::~MosquittoLibrary() { mosquitto_lib_cleanup(); }

void MqttClient::HandleDeleter::operator()(mosquitto* handle) const noexcept { mosquitto_destroy(handle); }

std::chrono::seconds reconnect_delay(unsigned failed_rounds) {
    constexpr std::array<int, 6> k_delays{1, 2, 5, 10, 20, 30};
    const auto index = std::min<std::size_t>(failed_rounds == 0 ? 0 : failed_rounds - 1, k_delays.size() - 1);
    return std::chrono::seconds{k_delays[index]};
}

MqttClient::MqttClient(std::vector<BrokerAddress> brokers, MqttOptions options)
    : m_brokers(std::move(brokers)), m_options(options) {}

MqttClient::~MqttClient() { disconnect(); }

std::optional<BrokerAddress> MqttClient::broker() const {
    if (!m_broker_index) {
        return std::nullopt;
    }
    return m_brokers[*m_broker_index];
}

std::string MqttClient::broker_name() const {
    const auto current = broker();
    return current ? current->to_string() : std::string("no broker");
}

Result<void> MqttClient::new_handle() {
    // A fresh handle per session: libmosquitto would otherwise replay the in-flight
    // messages of the lost session after reconnecting, on top of the agent's own retry.
    m_handle.reset();
    m_acknowledged.clear();
    m_connected = false;
    // No client id and a clean session: the broker assigns a unique id, so two agents
    // can never evict each other.
    mosquitto* raw = mosquitto_new(nullptr, true, this);
    if (raw == nullptr) {
        return Error{"create MQTT client: " + std::error_code(errno, std::generic_category()).message()};
    }
    m_handle.reset(raw);
    mosquitto_int_option(raw, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(raw, &MqttClient::on_connect);
    mosquitto_disconnect_callback_set(raw, &MqttClient::on_disconnect);
    mosquitto_publish_callback_set(raw, &MqttClient::on_publish);
    mosquitto_subscribe_callback_set(raw, &MqttClient::on_subscribe);
    mosquitto_message_callback_set(raw, &MqttClient::on_message);
    return {};
}

void MqttClient::on_connect(mosquitto*, void* self, int connack_code) {
    static_cast<MqttClient*>(self)->m_connack_code = connack_code;
}

void MqttClient::on_disconnect(mosquitto*, void* self, int) { static_cast<MqttClient*>(self)->m_connected = false; }

void MqttClient::on_publish(mosquitto*, void* self, int message_id) {
    static_cast<MqttClient*>(self)->m_acknowledged.insert(message_id);
}

void MqttClient::on_subscribe(mosquitto*, void* self, int message_id, int, const int*) {
    static_cast<MqttClient*>(self)->m_acknowledged.insert(message_id);
}

void MqttClient::on_message(mosquitto*, void* self, const mosquitto_message* message) {
    if (message == nullptr || message->topic == nullptr) {
        return;
    }
    auto* client = static_cast<MqttClient*>(self);
    client->m_inbox.push_back({message->topic, message->payloadlen > 0
                                                   ? std::string(static_cast<const char*>(message->payload),
                                                                 static_cast<std::size_t>(message->payloadlen))
                                                   : std::string()});
}

std::deque<InboundMessage> MqttClient::take_messages() { return std::exchange(m_inbox, {}); }

// A SUBSCRIBE or PUBLISH (QoS 1) the library was asked to send: its send result `code`, then
// the broker's acknowledgement of `message_id`, within publish_timeout.
Result<void> MqttClient::await_acknowledgement(const std::string& operation, int code, int message_id) {
    if (code != MOSQ_ERR_SUCCESS) {
        const auto saved = errno;
        if (code == MOSQ_ERR_NO_CONN || code == MOSQ_ERR_CONN_LOST || code == MOSQ_ERR_ERRNO) {
            drop_session();
        }
        return mqtt_error(operation, code, saved);
    }
    const auto deadline = Clock::now() + m_options.publish_timeout;
    while (m_acknowledged.erase(message_id) == 0) {
        if (!m_connected) {
            drop_session();
            return Error{operation + ": connection lost before the broker acknowledged"};
        }
        if (Clock::now() >= deadline) {
            drop_session();
            return Error{operation + ": no acknowledgement within " + seconds_text(m_options.publish_timeout)};
        }
        code = loop_once(m_handle.get(), deadline);
        if (code != MOSQ_ERR_SUCCESS) {
            const auto saved = errno;
            drop_session();
            return mqtt_error(operation, code, saved);
        }
    }
    return {};
}

Result<void> MqttClient::send_subscribe(const std::string& filter) {
    const auto operation = "subscribe to " + filter + " on " + broker_name();
    if (!m_connected || !m_handle) {
        return Error{operation + ": not connected"};
    }
    int message_id = 0;
    errno = 0;
    int code = mosquitto_subscribe(m_handle.get(), &message_id, filter.c_str(), 1);
    return await_acknowledgement(operation, code, message_id);
}

Result<void> MqttClient::subscribe(std::string_view filter) {
    std::string text(filter);
    if (std::find(m_subscriptions.begin(), m_subscriptions.end(), text) == m_subscriptions.end()) {
        m_subscriptions.push_back(text);
    }
    return send_subscribe(text);
}

Result<void> MqttClient::connect_to(const BrokerAddress& broker, const IdleFunction& idle) {
    const auto operation = "connect to " + broker.to_string();
    if (auto created = new_handle(); !created) {
        return created.error();
    }
    m_connack_code.reset();
    // The asynchronous form lets the CONNACK wait below bound the TCP handshake too; a
    // blocking connect to a blackholed address would hang for minutes.
    errno = 0;
    int code = mosquitto_connect_async(m_handle.get(), broker.host.c_str(), broker.port,
                                       static_cast<int>(m_options.keepalive.count()));
    if (code != MOSQ_ERR_SUCCESS) {
        const auto saved = errno;
        m_handle.reset();
        return mqtt_error(operation, code, saved);
    }
    const auto deadline = Clock::now() + m_options.connect_timeout;
    while (!m_connack_code) {
        if (idle && !idle(std::chrono::milliseconds{0})) {
            m_handle.reset();
            return Error{operation + ": abandoned"};
        }
        if (Clock::now() >= deadline) {
            m_handle.reset();
            return Error{operation + ": no answer within " + seconds_text(m_options.connect_timeout)};
        }
        code = loop_once(m_handle.get(), deadline);
        if (code != MOSQ_ERR_SUCCESS) {
            const auto saved = errno;
            m_handle.reset();
            return mqtt_error(operation, code, saved);
        }
    }
    if (*m_connack_code != 0) {
        m_handle.reset();
        return Error{operation + ": refused by the broker: " + mosquitto_connack_string(*m_connack_code)};
    }
    m_connected = true;
    for (const auto& filter : m_subscriptions) {
        if (auto subscribed = send_subscribe(filter); !subscribed) {
            m_handle.reset();
            m_connected = false;
            return subscribed.error();
        }
    }
    return {};
}

Result<void> MqttClient::connect_once(const IdleFunction& idle) {
    if (m_brokers.empty()) {
        return Error{"connect: no broker configured"};
    }
    disconnect();
    std::string failures;
    for (std::size_t i = 0; i < m_brokers.size(); ++i) {
        m_broker_index = i;
        auto connected = connect_to(m_brokers[i], idle);
        if (connected) {
            return {};
        }
        if (!failures.empty()) {
            failures += "; ";
        }
        failures += connected.error().message;
        if (idle && !idle(std::chrono::milliseconds{0})) {
            break;
        }
    }
    return Error{failures};
}

Result<void> MqttClient::connect(const IdleFunction& idle, const RoundFailed& on_round_failed) {
    for (unsigned failed_rounds = 1;; ++failed_rounds) {
        auto connected = connect_once(idle);
        if (connected) {
            return {};
        }
        const auto delay = reconnect_delay(failed_rounds);
        if (on_round_failed) {
            on_round_failed(connected.error(), delay);
        }
        if (!idle(delay)) {
            return Error{"connect: stopped before any broker accepted (" + connected.error().message + ")"};
        }
    }
}

Result<void> MqttClient::publish(std::string_view topic, std::string_view payload) {
    const std::string topic_text(topic);
    const auto operation = "publish " + topic_text + " to " + broker_name();
    if (!m_connected || !m_handle) {
        return Error{operation + ": not connected"};
    }
    if (payload.size() > static_cast<std::size_t>(INT_MAX)) {
        return mqtt_error(operation, MOSQ_ERR_PAYLOAD_SIZE, 0);
    }
    int message_id = 0;
    errno = 0;
    int code = mosquitto_publish(m_handle.get(), &message_id, topic_text.c_str(), static_cast<int>(payload.size()),
                                 payload.data(), 1, false);
    return await_acknowledgement(operation, code, message_id);
}

Result<void> MqttClient::service(std::chrono::milliseconds duration) {
    const auto operation = "keep the session with " + broker_name();
    if (!m_connected || !m_handle) {
        return Error{operation + ": not connected"};
    }
    const auto deadline = Clock::now() + duration;
    do {
        const int code = loop_once(m_handle.get(), deadline);
        if (code != MOSQ_ERR_SUCCESS) {
            const auto saved = errno;
            drop_session();
            return mqtt_error(operation, code, saved);
        }
        if (!m_connected) {
            drop_session();
            return Error{operation + ": the broker closed the connection"};
        }
    } while (Clock::now() < deadline);
    return {};
}

void MqttClient::drop_session() {
    m_connected = false;
    m_handle.reset();
}

void MqttClient::disconnect() {
    if (m_handle && m_connected) {
        // Queued in the calling thread, so it is written before the handle is destroyed.
        mosquitto_disconnect(m_handle.get());
    }
    drop_session();
}

} // namespace cartridge_agent
