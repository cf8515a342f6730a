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

}  // namespace cartridge_agent
