#pragma once
// The one way this project runs external programs: an argv vector, never a shell string.
// Exit code, output and timeout are reported distinctly so callers can tell
// "the program said no" from "the program hung".

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace bi {

struct RunOptions {
  std::optional<std::chrono::seconds> timeout;
  std::map<std::string, std::string> extra_env; // added to (or replacing in) our environment
  std::vector<std::string> unset_env;
  std::string cwd;
  // Called for every line of combined stdout/stderr as it arrives (progress display, logs).
  std::function<void(const std::string&)> on_line;
  // Lines are kept for error messages; older ones are dropped beyond this size.
  std::size_t max_output_bytes = std::size_t{4} * 1024 * 1024;
  // For CGI programs (git http-backend): stdin read from this file and stdout written,
  // byte for byte, to `stdout_file`; `output` then holds stderr only.
  std::string stdin_file;
  std::string stdout_file;
};

struct RunResult {
  int exit_code = -1; // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string output; // combined stdout and stderr
  double seconds = 0;

  bool ok() const { return !timed_out && exit_code == 0; }
  // The last `n` lines of output, for error messages.
  std::string tail(std::size_t n = 15) const;
};

// Runs argv[0] (searched in PATH) with the remaining arguments. Fails only when the
// program cannot be started (not found: ExitCode::host_missing); a non-zero exit is a result.
Expected<RunResult> run_process(const std::vector<std::string>& argv, const RunOptions& options = {});

// Like run_process, but a non-zero exit or a timeout becomes an error naming argv[0].
Expected<RunResult> run_checked(const std::vector<std::string>& argv, const RunOptions& options = {});

// The last `n` lines of `text` (for error messages and console excerpts).
std::string tail_lines(const std::string& text, size_t n);

// argv quoted for logs and error messages (shell-style, so a user can paste it).
std::string format_argv(const std::vector<std::string>& argv);

// Whether `program` is found in PATH (or is an executable path).
bool program_available(const std::string& program);

// For SIGINT/SIGTERM handlers (async-signal-safe): kills the process groups of every
// program run_process is waiting for, and marks the run as interrupted.
void interrupt_active_processes();
bool interrupted();

} // namespace bi

namespace bi {

// A long-running program (qemu, mosquitto, a test server) whose output goes to a file.
// The whole process group is killed when the object goes away, also on errors.
class Subprocess {
public:
  static Expected<Subprocess> start(const std::vector<std::string>& argv, const std::string& log_file,
                                    const std::map<std::string, std::string>& extra_env = {});
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;
  ~Subprocess();

  int pid() const { return m_pid; }
  // Whether it still runs; reaps it (and records the exit code) if it ended.
  bool running();
  int exit_code() const { return m_exit_code; }
  // Sends `sig` to the whole process group (tests use SIGKILL to simulate a crash).
  void signal(int sig);
  // SIGTERM, then SIGKILL after `grace`.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

private:
  explicit Subprocess(int pid) : m_pid(pid) {}
  int m_pid = -1;
  int m_exit_code = -1;
};

} // namespace bi
