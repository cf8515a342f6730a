#pragma once

#include "common.hpp"
#include "payload.hpp"
#include "process.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace cartridge_agent {

inline constexpr std::string_view k_default_extensions_dir = "/etc/cartridge-agent/extensions";

// Payload keys never handed to a script: the Python agent exports CARTRIDGE_KEY and
// TOKEN to every script, which puts the key to every repository password in reach of
// anything a script logs or starts.
bool is_secret_payload_key(std::string_view key);

// The script's environment: the agent's own (less CREDENTIALS_DIRECTORY and any STRATOS_* it inherited, so values
// of an earlier event never leak into a later one, as they do in the Python agent), plus
// STRATOS_<KEY> for every payload value but the secret ones, then `values` (EVENT,
// APPLICATION_PATH, ...). Values over `max_value` bytes are left out, since one
// environment string may not exceed 128 KiB on Linux.
std::map<std::string, std::string> extension_environment(const std::map<std::string, std::string>& base,
                                                         const PayloadMap& payload,
                                                         const std::map<std::string, std::string>& values,
                                                         std::size_t max_value = std::size_t{100} * 1024);

struct ExtensionRun {
    bool ran = false;
    ProcessResult result;
};

// Runs <dir>/<event>.sh if it exists and is executable, with a time limit, each output
// line logged as "extension <event>: <line>"; a failure is logged, never returned, since
// the event flow goes on regardless.
ExtensionRun run_extension(const std::filesystem::path& dir, std::string_view event,
                           const std::map<std::string, std::string>& environment, std::chrono::milliseconds timeout,
                           const IdleFunction& idle);

} // namespace cartridge_agent
