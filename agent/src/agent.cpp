#include "agent.hpp"

#include "application_path.hpp"
#include "artifacts.hpp"
#include "config.hpp"
#include "crypto.hpp"
#include "events.hpp"
#include "extensions.hpp"
#include "health.hpp"
#include "mqtt.hpp"
#include "payload.hpp"
#include "ports.hpp"
#include "process.hpp"
#include "topology.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string_view>
#include <thread>

#include <pwd.h>

namespace cartridge_agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Bounds how late a SIGTERM is noticed by any wait in the agent.
constexpr milliseconds k_stop_poll{200};
// How often the topology wait says what it waits for (and asks again).
constexpr seconds k_wait_log_interval{30};

struct Settings {
    AgentConfig config;
    MemberIdentity identity;
    PayloadMap payload;
};

struct ConfigAndPayload {
    AgentConfig config;
    PayloadMap payload;
};

// The one reading of agent.conf and the payload, for the agent and for
// --prepare-application-path alike.
Result<ConfigAndPayload> load_config_and_payload(const AgentOptions& options) {
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
    config.value().warnings.clear();
    return ConfigAndPayload{std::move(config).value(), payload.values};
}

Result<Settings> load_settings(const AgentOptions& options) {
    auto loaded = load_config_and_payload(options);
    if (!loaded) {
        return loaded.error();
    }
    auto& [config, payload] = loaded.value();
    if (auto complete = check_complete(config, options.config_path.string()); !complete) {
        return complete.error();
    }
    auto identity = make_member_identity(payload, config.service_name, read_instance_id_file(options.instance_id_file));
    return Settings{std::move(config), std::move(identity), std::move(payload)};
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
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Agent {
public:
    Agent(Settings settings, const AgentOptions& options, const std::atomic<bool>& stop)
        : m_config(std::move(settings.config)), m_identity(std::move(settings.identity)),
          m_payload(std::move(settings.payload)), m_options(options), m_stop(stop), m_client(m_config.brokers),
          m_base_environment(current_environment()) {}

    int run() {
        log_start();
        if (!ensure_connected()) {
            return finish();
        }
        if (m_config.handshake) {
            if (!subscribe_to("topology/#") || publish_event(k_topic_topology_request, "{}") != Delivery::delivered) {
                return finish();
            }
            if (!wait_for_topology()) {
                return finish();
            }
        } else {
            spdlog::info("stratos.handshake is off: not waiting for the topology");
        }
        // Before InstanceStartedEvent: its replies (ArtifactUpdatedEvent) are QoS 0 and
        // not kept, so a later subscription would miss them.
        for (const auto* filter : {"instance/#", "tenant/#", "application/signup/#"}) {
            if (!subscribe_to(filter)) {
                return finish();
            }
        }
        if (m_config.handshake && publish_event(k_topic_tenant_request, "{}") != Delivery::delivered) {
            return finish();
        }
        run_extension_for("InstanceStartedEvent", {});
        if (const auto exit_code =
                exit_unless_delivered(publish_event(k_topic_instance_started, instance_started_event(m_identity)))) {
            return *exit_code;
        }
        m_started = true;
        if (m_member_state == "Initialized") {
            run_extension_for("StartServers", {});
        }
        if (m_waits_for_artifacts) {
            spdlog::info("REPO_URL is set: InstanceActivatedEvent waits for the first deployment from an "
                         "ArtifactUpdatedEvent for cluster {}",
                         m_identity.cluster_id.value_or("(none)"));
        } else if (const auto exit_code = activate()) {
            return *exit_code;
        }
        return report_health_until_stopped();
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
        auto connected = m_client.connect([this](milliseconds duration) { return sleep_unless_stopped(duration); },
                                          [](const Error& error, seconds retry_in) {
                                              spdlog::error("cannot reach any message broker: {}; retrying in {} s",
                                                            error.message, retry_in.count());
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
            if (m_activation_result) {
                return false;
            }
            const auto now = Clock::now();
            if (now >= deadline) {
                return true;
            }
            const auto slice =
                std::chrono::duration_cast<milliseconds>(std::min<Clock::duration>(k_stop_poll, deadline - now));
            if (!m_client.connected()) {
                if (!ensure_connected()) {
                    return false;
                }
                continue;
            }
            if (auto serviced = m_client.service(std::max(slice, milliseconds{1})); !serviced) {
                spdlog::warn("lost the message broker: {}", serviced.error().message);
            }
            if (!m_busy) {
                dispatch_messages();
                update_artifacts_when_due();
            }
        }
        return false;
    }

    // Handlers wait (git, scripts, ports) through idle_for, which keeps the session alive;
    // messages arriving meanwhile stay queued, so handlers never nest and never two git
    // runs overlap.
    class BusyGuard {
    public:
        explicit BusyGuard(bool& busy) : m_busy(busy), m_previous(busy) { m_busy = true; }
        ~BusyGuard() { m_busy = m_previous; }
        BusyGuard(const BusyGuard&) = delete;
        BusyGuard& operator=(const BusyGuard&) = delete;

    private:
        bool& m_busy;
        bool m_previous;
    };

    bool subscribe_to(std::string_view filter) {
        for (unsigned failures = 1;; ++failures) {
            if (!ensure_connected()) {
                return false;
            }
            if (auto subscribed = m_client.subscribe(filter); subscribed) {
                spdlog::info("subscribed to {}", filter);
                return true;
            } else {
                spdlog::warn("{}", subscribed.error().message);
            }
            if (!sleep_unless_stopped(reconnect_delay(failures))) {
                return false;
            }
        }
    }

    std::string identity_text() const {
        return "member " + m_identity.member_id.value_or("(none)") + " of cluster " +
               m_identity.cluster_id.value_or("(none)") + " (service " + m_identity.service_name.value_or("(none)") +
               ")";
    }

    bool wait_for_topology() {
        const auto started = Clock::now();
        auto next_log = started;
        while (!m_topology_ready) {
            if (Clock::now() >= next_log) {
                if (next_log != started) {
                    // The Cloud Controller repeats the topology every minute anyway; asking
                    // again covers a request lost before its subscription existed.
                    (void)m_client.publish(k_topic_topology_request, "{}");
                }
                spdlog::info("waiting {} s so far for a CompleteTopologyEvent or MemberInitializedEvent showing {} "
                             "as Initialized, Starting or Active; so far: {}",
                             std::chrono::duration_cast<seconds>(Clock::now() - started).count(), identity_text(),
                             m_topology_seen);
                next_log += k_wait_log_interval;
            }
            if (!idle_for(k_stop_poll)) {
                return false;
            }
        }
        spdlog::info("topology shows {} as {}", identity_text(), m_member_state);
        return true;
    }

    void dispatch_messages() {
        const BusyGuard busy(m_busy);
        for (auto& message : m_client.take_messages()) {
            handle_message(message);
        }
    }

    void handle_message(const InboundMessage& message) {
        auto routed = route_event(message, m_identity);
        using Kind = RoutedEvent::Kind;
        switch (routed.kind) {
        case Kind::ignore:
            spdlog::debug("{}: ignored ({})", message.topic, routed.reason);
            return;
        case Kind::complete_topology: {
            const auto& member = *routed.member;
            m_topology_seen = "last CompleteTopologyEvent: " + member.describe(m_identity);
            m_topology_received = true;
            m_member_in_topology = m_member_in_topology || member.lookup == MemberInTopology::Lookup::found;
            if (!m_topology_ready && member.lookup == MemberInTopology::Lookup::found &&
                state_allows_start(member.state)) {
                m_topology_ready = true;
                m_member_state = member.state;
            }
            run_extension_for(routed.event_name,
                              {{"TOPOLOGY_JSON", routed.body}, {"MEMBER_LIST_JSON", member.member_list_json}});
            return;
        }
        case Kind::member_initialized:
            // As in Stratos: the event only counts for a member the topology already holds;
            // one that overtakes the topology is dropped, and the next CompleteTopologyEvent
            // (repeated every minute) decides.
            if (!m_member_in_topology) {
                spdlog::info("MemberInitializedEvent for this member before any CompleteTopologyEvent showing it: "
                             "dropped");
                return;
            }
            spdlog::info("MemberInitializedEvent for this member");
            if (!m_topology_ready) {
                m_topology_ready = true;
                m_member_state = "Initialized";
            }
            run_extension_for(routed.event_name, {});
            return;
        case Kind::topology_other:
            if (m_topology_received) {
                run_extension_for(routed.event_name, {});
            }
            return;
        case Kind::complete_tenant:
            if (!m_tenants_seen) {
                m_tenants_seen = true;
                run_extension_for(routed.event_name, {{"TENANT_LIST_JSON", routed.body}});
            }
            return;
        case Kind::signup_removed:
            handle_signup_removed(routed.tenant_id);
            run_extension_for(routed.event_name, {});
            return;
        case Kind::artifact_updated:
            handle_artifact_update(*routed.artifact);
            return;
        case Kind::cleanup:
            handle_cleanup(routed.event_name);
            return;
        }
    }

    std::map<std::string, std::string> extension_values(std::string_view event,
                                                        std::map<std::string, std::string> extra) const {
        extra["EVENT"] = std::string(event);
        if (!m_config.application_path.empty()) {
            extra["APPLICATION_PATH"] = m_config.application_path.string();
        }
        return extra;
    }

    void run_extension_for(std::string_view event, std::map<std::string, std::string> extra) {
        if (stop_requested()) {
            return;
        }
        const BusyGuard busy(m_busy);
        const auto environment =
            extension_environment(m_base_environment, m_payload, extension_values(event, std::move(extra)));
        (void)run_extension(m_config.extensions_dir, event, environment,
                            std::chrono::duration_cast<milliseconds>(m_config.extension_timeout),
                            [this](milliseconds duration) { return idle_for(duration); });
    }

    // The credentials of an event, decrypted; an error when they cannot be used.
    Result<std::optional<RepositoryCredentials>> credentials_for(const ArtifactUpdate& update,
                                                                 const RepositoryUrl& url) const {
        auto user = update.repo_user ? update.repo_user : url.user;
        std::optional<std::string> password = url.password;
        if (update.repo_password_encrypted && !update.repo_password_encrypted->empty()) {
            const auto key = payload_value(m_payload, "CARTRIDGE_KEY");
            if (!key) {
                return Error{"repoPassword given but the payload has no CARTRIDGE_KEY"};
            }
            auto decrypted = decrypt_repo_password(*update.repo_password_encrypted, *key);
            if (!decrypted) {
                return decrypted.error();
            }
            password = std::move(decrypted).value();
        }
        if (!user && !password) {
            return std::optional<RepositoryCredentials>{};
        }
        return std::optional<RepositoryCredentials>{RepositoryCredentials{user.value_or(""), password.value_or("")}};
    }

    void handle_artifact_update(const ArtifactUpdate& update) {
        const BusyGuard busy(m_busy);
        const auto url = split_url_credentials(update.repo_url);
        spdlog::info("ArtifactUpdatedEvent: repository {} (tenant {})", url.url, update.tenant_id);
        bool deployed = false;
        std::string failure;
        if (auto credentials = credentials_for(update, url); !credentials) {
            failure = credentials.error().message;
        } else {
            GitDeployment deployment;
            deployment.target = tenant_repository(update.tenant_id);
            back_up_before_first_deployment(deployment.target);
            deployment.url = url.url;
            deployment.credentials = std::move(credentials).value();
            deployment.base_environment = m_base_environment;
            deployment.timeout = std::chrono::duration_cast<milliseconds>(m_config.git_timeout);
            deployed = deploy_with_retries(deployment, failure);
            if (deployed) {
                m_deployment = std::move(deployment);
                m_next_update = Clock::now() + m_config.artifact_update_interval;
            }
        }
        if (!deployed) {
            spdlog::error("artifact deployment from {} failed: {}{}", url.url, failure,
                          m_activated ? ""
                                      : "; InstanceActivatedEvent is NOT published (a later "
                                        "ArtifactUpdatedEvent retries)");
        }
        run_extension_for("ArtifactUpdatedEvent",
                          {{"ARTIFACT_UPDATED_CLUSTER_ID", update.cluster_id},
                           {"ARTIFACT_UPDATED_TENANT_ID", update.tenant_id},
                           {"ARTIFACT_UPDATED_REPO_URL", url.url},
                           {"ARTIFACT_UPDATED_REPO_USERNAME", update.repo_user.value_or("")},
                           {"ARTIFACT_UPDATED_REPO_PASSWORD", update.repo_password_encrypted.value_or("")},
                           {"ARTIFACT_UPDATED_STATUS", update.status.value_or("")},
                           {"ARTIFACT_UPDATED_RESULT", deployed ? "deployed" : "failed"}});
        if (deployed && !m_activated && !m_cleanup_done && m_started) {
            m_activation_result = activate();
        }
    }

    std::filesystem::path tenant_repository(std::string_view tenant_id) const {
        return repository_path(RepositoryLayout{m_config.application_path,
                                                payload_value(m_payload, "MULTITENANT") == "true",
                                                m_config.super_tenant_repository_path, m_config.tenant_repository_path},
                               tenant_id);
    }

    void back_up_before_first_deployment(const std::filesystem::path& target) const {
        if (!m_config.initial_artifact_backup) {
            return;
        }
        if (auto copied = back_up_initial_content(target); !copied) {
            spdlog::warn("initial artifact backup of {}: {}", target.string(), copied.error().message);
        } else if (copied.value()) {
            spdlog::info("initial content of {} kept in {}", target.string(), initial_backup_path(target).string());
        }
    }

    // Stratos' meaning: the subscriber left, so its application goes and the image's own
    // content (if backed up) comes back; periodic updates of that repository stop.
    void handle_signup_removed(std::string_view tenant_id) {
        const BusyGuard busy(m_busy);
        const auto target = tenant_repository(tenant_id);
        if (m_deployment && m_deployment->target == target) {
            m_deployment.reset();
        }
        if (!std::filesystem::exists(target / ".git")) {
            spdlog::info("ApplicationSignUpRemovedEvent: nothing deployed in {} (tenant {})", target.string(),
                         tenant_id);
            return;
        }
        if (auto removed = remove_deployment(target, m_config.initial_artifact_backup); !removed) {
            spdlog::error("ApplicationSignUpRemovedEvent: {}", removed.error().message);
            return;
        }
        spdlog::info("ApplicationSignUpRemovedEvent: application removed from {} (tenant {}){}", target.string(),
                     tenant_id, m_config.initial_artifact_backup ? ", initial content restored" : "");
    }

    bool deploy_with_retries(const GitDeployment& deployment, std::string& failure) {
        const unsigned attempts = m_config.artifact_clone_retries + 1;
        for (unsigned attempt = 1; attempt <= attempts; ++attempt) {
            auto deployed = deploy_repository(deployment, [this](milliseconds duration) { return idle_for(duration); });
            if (deployed) {
                spdlog::info("deployed {} commit {} into {}", deployment.url, deployed.value(),
                             deployment.target.string());
                return true;
            }
            failure = deployed.error().message;
            if (stop_requested()) {
                return false;
            }
            spdlog::warn("artifact deployment attempt {}/{} from {} into {} failed: {}{}", attempt, attempts,
                         deployment.url, deployment.target.string(), failure,
                         attempt < attempts
                             ? "; retrying in " + std::to_string(m_config.artifact_clone_interval.count()) + " s"
                             : std::string());
            if (attempt < attempts && !idle_for(m_config.artifact_clone_interval)) {
                return false;
            }
        }
        failure = std::to_string(attempts) + " attempt(s) failed, last: " + failure;
        return false;
    }

    void update_artifacts_when_due() {
        if (!m_deployment || m_config.artifact_update_interval.count() == 0 || m_cleanup_done ||
            Clock::now() < m_next_update) {
            return;
        }
        const BusyGuard busy(m_busy);
        m_next_update = Clock::now() + m_config.artifact_update_interval;
        auto updated = deploy_repository(*m_deployment, [this](milliseconds duration) { return idle_for(duration); });
        if (!updated) {
            spdlog::warn("periodic artifact update from {} failed: {}", m_deployment->url, updated.error().message);
        } else {
            spdlog::debug("periodic artifact update: {} at {}", m_deployment->target.string(), updated.value());
        }
    }

    // Maintenance, clean.sh, ready-to-shutdown: once, in this order, on this one session.
    void handle_cleanup(std::string_view event) {
        if (m_cleanup_done) {
            spdlog::info("{}: cleanup already done", event);
            return;
        }
        const BusyGuard busy(m_busy);
        m_cleanup_done = true;
        spdlog::info("{}: cleaning up", event);
        if (publish_event(k_topic_maintenance_mode, instance_maintenance_mode_event(m_identity)) !=
            Delivery::delivered) {
            return;
        }
        run_extension_for("clean", {});
        if (publish_event(k_topic_ready_to_shutdown, instance_ready_to_shutdown_event(m_identity)) ==
            Delivery::delivered) {
            m_ready_to_shutdown_sent = true;
        }
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

    // Empty when the lifecycle goes on, else the process exit code.
    std::optional<int> activate() {
        const BusyGuard busy(m_busy);
        switch (wait_for_service_ports()) {
        case PortWaitResult::Outcome::stopped:
            return finish();
        case PortWaitResult::Outcome::timed_out:
            m_activation_failed = true;
            if (m_options.once) {
                m_client.disconnect();
                return k_exit_runtime_failure;
            }
            return std::nullopt;
        case PortWaitResult::Outcome::all_open:
            break;
        }
        if (m_cleanup_done) {
            return std::nullopt;
        }
        if (const auto exit_code = exit_unless_delivered(
                publish_event(k_topic_instance_activated, instance_activated_event(m_identity)))) {
            return *exit_code;
        }
        m_activated = true;
        run_extension_for("InstanceActivatedEvent", {});
        if (m_options.once) {
            m_client.disconnect();
            return k_exit_ok;
        }
        return std::nullopt;
    }

    PortWaitResult::Outcome wait_for_service_ports() {
        if (m_config.ports.empty()) {
            spdlog::info("no ports to wait for");
            return PortWaitResult::Outcome::all_open;
        }
        spdlog::info("waiting up to {} s for port(s) {} on {}", m_config.port_check_timeout.count(),
                     format_ports(m_config.ports), m_config.listen_address);
        const auto result = wait_for_ports(m_config.listen_address, m_config.ports, m_config.port_check_timeout,
                                           [this](milliseconds duration) { return idle_for(duration); });
        switch (result.outcome) {
        case PortWaitResult::Outcome::all_open:
            spdlog::info("port(s) {} accept connections", format_ports(m_config.ports));
            break;
        case PortWaitResult::Outcome::timed_out:
            spdlog::error("port activation timed out: port(s) {} on {} still closed after {} s; "
                          "InstanceActivatedEvent is NOT published (health reporting continues)",
                          format_ports(result.closed_ports), m_config.listen_address,
                          m_config.port_check_timeout.count());
            break;
        case PortWaitResult::Outcome::stopped:
            break;
        }
        return result.outcome;
    }

    int report_health_until_stopped() {
        const auto topic = health_topic(m_identity);
        if (!topic) {
            spdlog::warn("the payload has no usable MEMBER_ID; health statistics are not published");
        } else {
            spdlog::info("publishing health statistics to {} every {} s", *topic, m_config.stats_interval.count());
        }
        auto next = Clock::now() + m_config.stats_interval;
        while (idle_until(next)) {
            if (m_activation_result) {
                return *m_activation_result;
            }
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
        return m_activation_result ? *m_activation_result : finish();
    }

    // The stop request is already set here, so no wait may depend on it: two bounded
    // attempts, reconnecting once if needed.
    int finish() {
        if (m_ready_to_shutdown_sent) {
            spdlog::info("stopping; InstanceReadyToShutdownEvent was already published by the cleanup");
            m_client.disconnect();
            return k_exit_ok;
        }
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
                m_ready_to_shutdown_sent = true;
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
    PayloadMap m_payload;
    const AgentOptions& m_options;
    const std::atomic<bool>& m_stop;
    MqttClient m_client;
    std::map<std::string, std::string> m_base_environment;
    bool m_waits_for_artifacts = payload_value(m_payload, "REPO_URL").has_value();

    bool m_busy = false;
    bool m_topology_ready = false;
    // Some CompleteTopologyEvent arrived / one of them held this member (in any state).
    bool m_topology_received = false;
    bool m_member_in_topology = false;
    std::string m_topology_seen = "no topology received";
    std::string m_member_state;
    bool m_tenants_seen = false;
    bool m_started = false;
    bool m_activated = false;
    bool m_activation_failed = false;
    // Set when an activation run from an event handler ends the process (--once, stop).
    std::optional<int> m_activation_result;
    bool m_cleanup_done = false;
    bool m_ready_to_shutdown_sent = false;
    std::optional<GitDeployment> m_deployment;
    Clock::time_point m_next_update{};
};

} // namespace

int run_agent(const AgentOptions& options, const std::atomic<bool>& stop) {
    auto settings = load_settings(options);
    if (!settings) {
        spdlog::error("{}", settings.error().message);
        return k_exit_usage_or_config;
    }
    Agent agent(std::move(settings).value(), options, stop);
    return agent.run();
}

int run_prepare_application_path(const AgentOptions& options, const std::string& owner) {
    auto loaded = load_config_and_payload(options);
    if (!loaded) {
        spdlog::error("{}", loaded.error().message);
        return k_exit_usage_or_config;
    }
    const auto& [config, payload] = loaded.value();
    auto plan = plan_application_path(config, payload);
    if (!plan) {
        spdlog::error("{}", plan.error().message);
        return k_exit_usage_or_config;
    }
    if (!plan.value()) {
        spdlog::info("no REPO_URL in the payload: no application path to prepare");
        return k_exit_ok;
    }
    const passwd* user = ::getpwnam(owner.c_str());
    if (user == nullptr) {
        spdlog::error("user '{}' does not exist (the cartridge-agent package creates it)", owner);
        return k_exit_usage_or_config;
    }
    const auto& paths = *plan.value();
    if (auto prepared = prepare_application_path(paths, config.application_root, user->pw_uid, user->pw_gid);
        !prepared) {
        spdlog::error("{}", prepared.error().message);
        return k_exit_runtime_failure;
    }
    spdlog::info("application path {} prepared for {} (deployment into {})", paths.base.string(), owner,
                 paths.target.string());
    return k_exit_ok;
}

} // namespace cartridge_agent
