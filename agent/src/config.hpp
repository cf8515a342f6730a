#pragma once

#include "common.hpp"
#include "payload.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cartridge_agent {

inline constexpr std::string_view k_default_config_path = "/etc/cartridge-agent/agent.conf";
inline constexpr std::string_view k_default_payload_path = "/var/lib/cartridge/launch-params";
// Name given to the payload by the unit's LoadCredential=launch-params:...
inline constexpr std::string_view k_payload_credential = "launch-params";
// APPLICATION_PATH when neither agent.conf nor the payload gives one (the php web root).
inline constexpr std::string_view k_default_application_path = "/var/www/html";

struct BrokerAddress {
    std::string host;
    std::uint16_t port = 0;

    // host:port, with IPv6 literals bracketed.
    std::string to_string() const;
    bool operator==(const BrokerAddress&) const = default;
};

struct AgentConfig {
    std::vector<BrokerAddress> brokers;
    std::string service_name;
    std::vector<std::uint16_t> ports;
    std::string listen_address = "localhost";
    std::chrono::seconds port_check_timeout{600};
    std::chrono::seconds stats_interval{15};
    std::filesystem::path payload_file{k_default_payload_path};
    // Wait for the Cloud Controller's topology before InstanceStartedEvent. Off only for
    // a broker without Stratos servers.
    bool handshake = true;
    std::filesystem::path extensions_dir{"/etc/cartridge-agent/extensions"};
    std::chrono::seconds extension_timeout{120};
    // Wins over the payload's APPLICATION_PATH, as in the Python agent; after
    // apply_payload_overrides never empty (k_default_application_path).
    std::filesystem::path application_path;
    // --prepare-application-path hands directories to the agent only below this (the
    // unit's ReadWritePaths).
    std::filesystem::path application_root{"/var/www"};
    std::string super_tenant_repository_path = "/repository/deployment/server/";
    std::string tenant_repository_path = "/repository/tenants/";
    // Before the first deployment into a tenant's folder, copy what the image had there to
    // `<folder>_backup`; a removed application sign-up restores it.
    bool initial_artifact_backup = false;
    // 0: no periodic update.
    std::chrono::seconds artifact_update_interval{0};
    unsigned artifact_clone_retries = 5;
    std::chrono::seconds artifact_clone_interval{10};
    std::chrono::seconds git_timeout{300};
    // Non-fatal findings (unknown or duplicate keys, half-given overrides) for the log.
    std::vector<std::string> warnings;
};

// `source` names the text in messages ("<source>:<line>: ...").
Result<AgentConfig> parse_config(std::string_view text, std::string_view source);
Result<AgentConfig> load_config(const std::filesystem::path& path);

// MB_IP+MB_PORT replace mb.urls, PORTS replaces ports, SERVICE_NAME replaces service.name,
// APPLICATION_PATH fills application.path when agent.conf has none (else the default).
// `source` names the payload in messages.
Result<void> apply_payload_overrides(AgentConfig& config, const PayloadMap& payload, std::string_view source);

// Checks what only the merged result can tell, e.g. that some broker is known.
Result<void> check_complete(const AgentConfig& config, std::string_view config_source);

// `where` prefixes error messages, e.g. "agent.conf:3: mb.urls".
Result<std::vector<BrokerAddress>> parse_broker_list(std::string_view text, std::string_view where);
Result<std::vector<std::uint16_t>> parse_port_list(std::string_view text, std::string_view where);
Result<std::uint16_t> parse_port(std::string_view text, std::string_view where);

// systemd hands the root-only payload to the unprivileged agent as a credential; outside
// systemd the configured file is read directly.
std::filesystem::path resolve_payload_path(const AgentConfig& config, const char* credentials_directory);

// Reads a whole file; the error names the path and the OS reason.
Result<std::string> read_text_file(const std::filesystem::path& path);

} // namespace cartridge_agent
