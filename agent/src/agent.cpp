#include "agent.hpp"

#include "config.hpp"
#include "events.hpp"
#include "health.hpp"
#include "mqtt.hpp"
#include "payload.hpp"
#include "ports.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>
#include <thread>

namespace cartridge_agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Bounds how late a SIGTERM is noticed by any wait in the agent.
constexpr milliseconds k_stop_poll{200};

struct Settings {
    AgentConfig config;
    MemberIdentity identity;
};

Result<Settings> load_settings(const AgentOptions& options) {
    auto config = load_config(options.config_path);
    if (!config) {
        return config.error();
    }
    for (const auto& warning : config.value().warnings) {
        spdlog::warn("{}", warning);
    }
    config.value().warnings.clear();

    const auto payload_path = resolve_payload_path(
        config.value(), options.credentials_directory ? options.credentials_directory->c_str() : nullptr);
    auto payload_text = read_text_file(payload_path);
    if (!payload_text) {
        return Error{"payload: " + payload_text.error().message};
    }
    const auto payload = parse_payload(payload_text.value());
    for (const auto& warning : payload.warnings) {
        spdlog::warn("{}: {}", payload_path.string(), warning);
    }
    if (auto applied = apply_payload_overrides(config.value(), payload.values, payload_path.string()); !applied) {
        return applied.error();
    }
    for (const auto& warning : config.value().warnings) {
        spdlog::warn("{}", warning);
    }
    if (auto complete = check_complete(config.value(), options.config_path.string()); !complete) {
        return complete.error();
    }
    auto identity = make_member_identity(payload.values, config.value().service_name,
                                         read_instance_id_file(options.instance_id_file));
    return Settings{std::move(config).value(), std::move(identity)};
}

std::string broker_list(const std::vector<BrokerAddress>& brokers) {
    std::string text;
    for (const auto& broker : brokers) {
        if (!text.empty()) {
            text += ',';
        }
        text += broker.to_string();
    }
    return text;
}

std::string_view event_name(std::string_view topic) { return topic.substr(topic.rfind('/') + 1); }

std::int64_t unix_time_ms() {
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class Agent {
public:
    Agent(Settings settings, const AgentOptions& options, const std::atomic<bool>& stop)
        : m_config(std::move(settings.config)),
          m_identity(std::move(settings.identity)),
          m_options(options),
          m_stop(stop),
          m_client(m_config.brokers) {}

    int run() {
        log_start();
        if (!ensure_connected()) {
            return finish();
        }
        if (const auto exit_code = exit_unless_delivered(
                publish_event(k_topic_instance_started, instance_started_event(m_identity)))) {
            return *exit_code;
        }
        switch (wait_for_service_ports()) {
        case PortWaitResult::Outcome::stopped:
            return finish();
        case PortWaitResult::Outcome::timed_out:
            if (m_options.once) {
                m_client.disconnect();
                return k_exit_runtime_failure;
            }
            break;
        case PortWaitResult::Outcome::all_open:
            if (const auto exit_code = exit_unless_delivered(
                    publish_event(k_topic_instance_activated, instance_activated_event(m_identity)))) {
                return *exit_code;
            }
            if (m_options.once) {
                m_client.disconnect();
                return k_exit_ok;
            }
            break;
        }
        report_health_until_stopped();
        return finish();
    }

private:
    bool stop_requested() const { return m_stop.load(); }

    // Sleeps in short slices so a stop request is noticed quickly.
    bool sleep_unless_stopped(milliseconds duration) {
        const auto deadline = Clock::now() + duration;
        while (!stop_requested()) {
            const auto now = Clock::now();
            if (now >= deadline) {
                return true;
            }
            std::this_thread::sleep_for(std::min<Clock::duration>(k_stop_poll, deadline - now));
        }
        return false;
    }

    bool ensure_connected() {
        if (m_client.connected()) {
            return true;
        }
        auto connected = m_client.connect(
            [this](milliseconds duration) { return sleep_unless_stopped(duration); },
            [](const Error& error, seconds retry_in) {
                spdlog::warn("no message broker reachable ({}); retrying in {} s", error.message,
                             retry_in.count());
            });
        if (!connected) {
            spdlog::warn("{}", connected.error().message);
            return false;
        }
        spdlog::info("connected to message broker {}", m_client.broker()->to_string());
        return true;
    }

    // Waits while answering keepalives and reconnecting after broker loss. Returns false
    // on a stop request.
    bool idle_for(milliseconds duration) { return idle_until(Clock::now() + duration); }

    bool idle_until(Clock::time_point deadline) {
        while (!stop_requested()) {
            const auto now = Clock::now();
            if (now >= deadline) {
                return true;
            }
            const auto slice = std::chrono::duration_cast<milliseconds>(
                std::min<Clock::duration>(k_stop_poll, deadline - now));
            if (!m_client.connected()) {
                if (!ensure_connected()) {
                    return false;
                }
                continue;
            }
            if (auto serviced = m_client.service(std::max(slice, milliseconds{1})); !serviced) {
                spdlog::warn("lost the message broker: {}", serviced.error().message);
            }
        }
        return false;
    }

    enum class Delivery { delivered, stopped, failed };

    // Retries until delivered: Stratos waits for these events, so losing one stalls the
    // member. Gives up only on a stop request or an error no retry can fix.
    Delivery publish_event(std::string_view topic, const std::string& body) {
        for (unsigned failures = 1;; ++failures) {
            if (!ensure_connected()) {
                return Delivery::stopped;
            }
            auto published = m_client.publish(topic, body);
            if (published) {
                spdlog::info("published {} to {}", event_name(topic), m_client.broker()->to_string());
                return Delivery::delivered;
            }
            if (m_client.connected()) {
                spdlog::error("{}; giving up", published.error().message);
                return Delivery::failed;
            }
            // A broker that accepts sessions but drops them on publish must not turn this
            // into a busy loop.
            const auto delay = reconnect_delay(failures);
            spdlog::warn("{}; retrying in {} s", published.error().message, delay.count());
            if (!sleep_unless_stopped(delay)) {
                return Delivery::stopped;
            }
        }
    }

    // Empty when the lifecycle goes on, else the process exit code.
    std::optional<int> exit_unless_delivered(Delivery delivery) {
        switch (delivery) {
        case Delivery::delivered:
            return std::nullopt;
        case Delivery::stopped:
            return finish();
        case Delivery::failed:
            break;
        }
        return k_exit_runtime_failure;
    }

    PortWaitResult::Outcome wait_for_service_ports() {
        if (m_config.ports.empty()) {
            spdlog::info("no ports to wait for");
            return PortWaitResult::Outcome::all_open;
        }
        spdlog::info("waiting up to {} s for port(s) {} on {}", m_config.port_check_timeout.count(),
                     format_ports(m_config.ports), m_config.listen_address);
        const auto result =
            wait_for_ports(m_config.listen_address, m_config.ports, m_config.port_check_timeout,
                           [this](milliseconds duration) { return idle_for(duration); });
        switch (result.outcome) {
        case PortWaitResult::Outcome::all_open:
            spdlog::info("port(s) {} accept connections", format_ports(m_config.ports));
            break;
        case PortWaitResult::Outcome::timed_out:
            spdlog::error(
                "port activation timed out: port(s) {} on {} still closed after {} s; "
                "InstanceActivatedEvent is NOT published (health reporting continues)",
                format_ports(result.closed_ports), m_config.listen_address,
                m_config.port_check_timeout.count());
            break;
        case PortWaitResult::Outcome::stopped:
            break;
        }
        return result.outcome;
    }

    void report_health_until_stopped() {
        const auto topic = health_topic(m_identity);
        if (!topic) {
            spdlog::warn("the payload has no usable MEMBER_ID; health statistics are not published");
        } else {
            spdlog::info("publishing health statistics to {} every {} s", *topic,
                         m_config.stats_interval.count());
        }
        auto next = Clock::now() + m_config.stats_interval;
        while (idle_until(next)) {
            // Skip, rather than burst, the samples missed during a long reconnect.
            next = std::max(next + m_config.stats_interval, Clock::now());
            if (!topic) {
                continue;
            }
            const auto sample = read_health(m_options.proc_root);
            if (!sample) {
                spdlog::warn("health statistics unavailable: {}", sample.error().message);
                continue;
            }
            if (!m_client.connected()) {
                continue;
            }
            if (auto published = m_client.publish(*topic, health_message(m_identity, sample.value(), unix_time_ms()));
                !published) {
                spdlog::warn("health statistics not delivered: {}", published.error().message);
            } else {
                spdlog::debug("health: memory {}%, load {}%", sample.value().memory_consumption,
                              sample.value().load_average);
            }
        }
    }

    // The stop request is already set here, so no wait may depend on it: two bounded
    // attempts, reconnecting once if needed.
    int finish() {
        spdlog::info("stopping: publishing InstanceReadyToShutdownEvent");
        const auto body = instance_ready_to_shutdown_event(m_identity);
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!m_client.connected()) {
                if (auto connected = m_client.connect_once(); !connected) {
                    spdlog::error("{}", connected.error().message);
                    continue;
                }
            }
            if (auto published = m_client.publish(k_topic_ready_to_shutdown, body); published) {
                spdlog::info("published InstanceReadyToShutdownEvent to {}", m_client.broker()->to_string());
                m_client.disconnect();
                return k_exit_ok;
            } else {
                spdlog::error("{}", published.error().message);
            }
        }
        spdlog::error("InstanceReadyToShutdownEvent could not be delivered");
        return k_exit_runtime_failure;
    }

    void log_start() const {
        const auto text = [](const std::optional<std::string>& value) {
            return value ? *value : std::string("(none)");
        };
        spdlog::info("member {} of cluster {} (service {}), broker(s) {}", text(m_identity.member_id),
                     text(m_identity.cluster_id), text(m_identity.service_name), broker_list(m_config.brokers));
        if (!m_identity.member_id) {
            spdlog::warn("the payload has no MEMBER_ID; events carry memberId null");
        }
    }

    AgentConfig m_config;
    MemberIdentity m_identity;
    const AgentOptions& m_options;
    const std::atomic<bool>& m_stop;
    MqttClient m_client;
};

}  // namespace

int run_agent(const AgentOptions& options, const std::atomic<bool>& stop) {
    auto settings = load_settings(options);
    if (!settings) {
        spdlog::error("{}", settings.error().message);
        return k_exit_usage_or_config;
    }
    Agent agent(std::move(settings).value(), options, stop);
    return agent.run();
}

}  // namespace cartridge_agent
