#pragma once

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>

namespace cartridge_agent {

enum ExitCode : int {
    k_exit_ok = 0,
    k_exit_runtime_failure = 1,
    k_exit_usage_or_config = 2,
};

struct AgentOptions {
    std::filesystem::path config_path{"/etc/cartridge-agent/agent.conf"};
    // Exit after InstanceActivatedEvent instead of reporting health until stopped.
    bool once = false;
    // $CREDENTIALS_DIRECTORY, when systemd provides it.
    std::optional<std::filesystem::path> credentials_directory;
    std::filesystem::path instance_id_file{"/var/lib/cartridge/instance-id"};
    std::filesystem::path proc_root{"/proc"};
};

// The whole lifecycle: configuration, InstanceStartedEvent, port wait,
// InstanceActivatedEvent, periodic health, and InstanceReadyToShutdownEvent once `stop`
// turns true. Returns the process exit code. `stop` is set from a signal handler, hence
// an atomic rather than anything that could lock.
int run_agent(const AgentOptions& options, const std::atomic<bool>& stop);

// --prepare-application-path, run as root before the agent: reads agent.conf and the
// payload as run_agent does and, when the payload has a REPO_URL, creates the deployment
// directory and gives it to `owner` (see application_path.hpp). Exit 2 for a path
// outside application.root or an unknown owner.
int run_prepare_application_path(const AgentOptions& options, const std::string& owner);

} // namespace cartridge_agent
