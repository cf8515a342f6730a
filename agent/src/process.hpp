#pragma once

#include "common.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cartridge_agent {

// The agent's one way to run another program (git, extension scripts): an argv vector,
// never a shell string; an explicit environment; a time limit enforced on the whole
// process group, so a script's children cannot outlive it.
struct ProcessSpec {
    std::vector<std::string> argv;
    // Complete environment, NAME=value; nothing is inherited implicitly.
    std::vector<std::string> environment;
    std::optional<std::filesystem::path> working_directory;
    std::chrono::milliseconds timeout{std::chrono::seconds{60}};
    // Between SIGTERM and SIGKILL once the time is up.
    std::chrono::milliseconds kill_grace{std::chrono::seconds{5}};
};

struct ProcessResult {
    enum class Outcome { exited, signalled, timed_out, stopped, not_started };
    Outcome outcome = Outcome::not_started;
    int exit_code = -1; // exited: the status; signalled: the signal
    std::string error;  // not_started: why

    bool success() const { return outcome == Outcome::exited && exit_code == 0; }
    // "exit status 3", "killed by signal 9", "timed out after 2 s", ...
    std::string describe() const;
};

// Runs the program; each line it writes (stdout and stderr merged) goes to `on_line`.
// While waiting, `idle` is called with short durations (so the caller can keep its MQTT
// session alive); when it returns false the program is stopped. Returns once the program
// exited: a daemon it left holding the output pipe does not block the caller.
ProcessResult run_process(const ProcessSpec& spec, const IdleFunction& idle,
                          const std::function<void(std::string_view)>& on_line);

// This process's environment as NAME -> value.
std::map<std::string, std::string> current_environment();

std::vector<std::string> environment_list(const std::map<std::string, std::string>& environment);

} // namespace cartridge_agent
