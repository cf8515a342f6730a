// cartridge-agent: announces this cartridge instance to the Stratos message broker.
// Everything but argument parsing, logging set-up and signals lives in cartridge_agent_lib.

#include "agent.hpp"

#include <spdlog/cfg/env.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#ifndef CARTRIDGE_AGENT_VERSION
#error "CARTRIDGE_AGENT_VERSION must be defined by the build"
#endif

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void request_stop(int) { g_stop.store(true); }

constexpr std::string_view k_usage =
    "Usage: cartridge-agent [--config PATH] [--once]\n"
    "       cartridge-agent [--config PATH] --prepare-application-path [--owner USER]\n"
    "       cartridge-agent --version | --help\n"
    "\n"
    "Speaks the Stratos 4.1 cartridge agent protocol over MQTT: waits until the\n"
    "topology shows this member, publishes InstanceStartedEvent, deploys the\n"
    "application from git on ArtifactUpdatedEvent, publishes InstanceActivatedEvent\n"
    "once every PORTS entry accepts connections, runs extension scripts, answers\n"
    "instance cleanup (InstanceMaintenanceModeEvent, clean.sh,\n"
    "InstanceReadyToShutdownEvent) and publishes InstanceReadyToShutdownEvent on\n"
    "SIGTERM; periodic health statistics in between.\n"
    "\n"
    "  --config PATH  agent configuration (default /etc/cartridge-agent/agent.conf)\n"
    "  --once         exit after InstanceActivatedEvent (exit 1 if the ports time out)\n"
    "  --prepare-application-path\n"
    "                 as root, before the agent starts: when the payload has a REPO_URL,\n"
    "                 create the deployment directory (APPLICATION_PATH, MULTITENANT\n"
    "                 tenant path) and give it recursively to USER; refused outside\n"
    "                 application.root (default /var/www)\n"
    "  --owner USER   the agent's user for --prepare-application-path\n"
    "                 (default cartridge-agent)\n"
    "  --version      print the version and exit\n"
    "  --help         print this help and exit\n"
    "\n"
    "The payload is read from $CREDENTIALS_DIRECTORY/launch-params when systemd provides\n"
    "it, else from payload.file. SPDLOG_LEVEL=debug enables debug logging.\n"
    "Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration.\n";

// journald reads a "<N>" syslog priority prefix on each stderr line and adds its own
// timestamps; a terminal gets timestamps and level names instead.
class SyslogPriorityFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& message, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr std::string_view k_prefixes[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
        const auto level = static_cast<std::size_t>(message.level);
        const auto prefix = k_prefixes[level < std::size(k_prefixes) ? level : 6];
        dest.append(prefix.data(), prefix.data() + prefix.size());
    }
    std::unique_ptr<spdlog::custom_flag_formatter> clone() const override {
        return std::make_unique<SyslogPriorityFlag>();
    }
};

void set_up_logging() {
    auto logger =
        std::make_shared<spdlog::logger>("cartridge-agent", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    if (std::getenv("JOURNAL_STREAM") != nullptr) {
        formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("%*%v");
    } else {
        formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %l: %v");
    }
    logger->set_formatter(std::move(formatter));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
    spdlog::cfg::load_env_levels();
}

bool install_signal_handlers() {
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: an interrupted poll() returns early and the stop is seen sooner.
    action.sa_flags = 0;
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    // A broker closing the socket mid-write must surface as an error, not kill us.
    return sigaction(SIGTERM, &action, nullptr) == 0 && sigaction(SIGINT, &action, nullptr) == 0 &&
           sigaction(SIGPIPE, &ignore, nullptr) == 0;
}

int usage_error(std::string_view message) {
    std::fprintf(stderr, "cartridge-agent: %.*s\n%.*s", static_cast<int>(message.size()), message.data(),
                 static_cast<int>(k_usage.size()), k_usage.data());
    return cartridge_agent::k_exit_usage_or_config;
}

} // namespace

int main(int argc, char** argv) {
    cartridge_agent::AgentOptions options;
    bool prepare_application_path = false;
    std::optional<std::string> owner;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fwrite(k_usage.data(), 1, k_usage.size(), stdout);
            return cartridge_agent::k_exit_ok;
        }
        if (arg == "--version") {
            std::printf("cartridge-agent %s\n", CARTRIDGE_AGENT_VERSION);
            return cartridge_agent::k_exit_ok;
        }
        if (arg == "--once") {
            options.once = true;
        } else if (arg == "--prepare-application-path") {
            prepare_application_path = true;
        } else if (arg == "--owner") {
            if (i + 1 >= argc || std::string_view(argv[i + 1]).empty()) {
                return usage_error("--owner needs a user name");
            }
            owner = argv[++i];
        } else if (arg == "--config") {
            if (i + 1 >= argc || std::string_view(argv[i + 1]).empty()) {
                return usage_error("--config needs a path");
            }
            options.config_path = argv[++i];
        } else if (arg.starts_with("--config=")) {
            const auto path = arg.substr(std::string_view("--config=").size());
            if (path.empty()) {
                return usage_error("--config needs a path");
            }
            options.config_path = std::string(path);
        } else {
            return usage_error("unknown argument '" + std::string(arg) + "'");
        }
    }

    if (owner && !prepare_application_path) {
        return usage_error("--owner only applies to --prepare-application-path");
    }
    if (prepare_application_path && options.once) {
        return usage_error("--once and --prepare-application-path exclude each other");
    }

    set_up_logging();
    if (!install_signal_handlers()) {
        spdlog::error("cannot install signal handlers");
        return cartridge_agent::k_exit_runtime_failure;
    }
    if (const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
        credentials != nullptr && *credentials != '\0') {
        options.credentials_directory = credentials;
    }
    if (prepare_application_path) {
        return cartridge_agent::run_prepare_application_path(options, owner.value_or("cartridge-agent"));
    }
    spdlog::info("cartridge-agent {} starting", CARTRIDGE_AGENT_VERSION);
    return cartridge_agent::run_agent(options, g_stop);
}
