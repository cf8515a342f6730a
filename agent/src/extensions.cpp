#include "extensions.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace cartridge_agent {

bool is_secret_payload_key(std::string_view key) { return key == "CARTRIDGE_KEY" || key == "TOKEN"; }

std::map<std::string, std::string> extension_environment(const std::map<std::string, std::string>& base,
                                                         const PayloadMap& payload,
                                                         const std::map<std::string, std::string>& values,
                                                         std::size_t max_value) {
    std::map<std::string, std::string> environment;
    for (const auto& [name, value] : base) {
        // CREDENTIALS_DIRECTORY points at the payload copy, which holds CARTRIDGE_KEY.
        if (!name.starts_with("STRATOS_") && name != "CREDENTIALS_DIRECTORY") {
            environment.emplace(name, value);
        }
    }
    const auto add = [&](const std::string& key, const std::string& value) {
        if (value.size() > max_value) {
            spdlog::warn("extension environment: STRATOS_{} left out ({} bytes, limit {})", key, value.size(),
                         max_value);
            return;
        }
        environment["STRATOS_" + key] = value;
    };
    for (const auto& [key, value] : payload) {
        if (!is_secret_payload_key(key)) {
            add(key, value);
        }
    }
    for (const auto& [key, value] : values) {
        add(key, value);
    }
    return environment;
}

ExtensionRun run_extension(const std::filesystem::path& dir, std::string_view event,
                           const std::map<std::string, std::string>& environment, std::chrono::milliseconds timeout,
                           const IdleFunction& idle) {
    ExtensionRun run;
    const auto script = dir / (std::string(event) + ".sh");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(script, ec)) {
        return run;
    }
    if (::access(script.c_str(), X_OK) != 0) {
        spdlog::warn("extension {}: {} is not executable; skipped", event, script.string());
        return run;
    }
    spdlog::info("extension {}: running {}", event, script.string());
    ProcessSpec spec;
    spec.argv = {script.string()};
    spec.environment = environment_list(environment);
    spec.working_directory = dir;
    spec.timeout = timeout;
    run.ran = true;
    run.result =
        run_process(spec, idle, [event](std::string_view line) { spdlog::info("extension {}: {}", event, line); });
    if (run.result.success()) {
        spdlog::info("extension {}: done", event);
    } else {
        spdlog::error("extension {} failed: {}; continuing", event, run.result.describe());
    }
    return run;
}

} // namespace cartridge_agent
