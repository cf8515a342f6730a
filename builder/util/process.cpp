#include "util/process.hpp"
#include "util/log.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <thread>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <spdlog/spdlog.h>

namespace bp = boost::process;

namespace bi {

namespace {

// The child leads its own process group, so a timeout or Ctrl-C kills everything it
// started (mmdebstrap and dpkg spawn many children).
// In the child, between fork and exec: own process group (a timeout or Ctrl-C kills all
// the program started), inherited descriptors above 2 closed (tools like mmdebstrap hand
// their own fd numbers to /bin/sh, which cannot address fds above 9), and the environment
// changes applied. Boost 1.74's environment class reads past the end of shorter entries
// (an ASan report), so the environment is edited here with setenv instead.
struct ChildSetup : bp::extend::handler {
  const std::map<std::string, std::string>* extra_env = nullptr;
  const std::vector<std::string>* unset_env = nullptr;
  template <typename Executor> void on_exec_setup(Executor& e) const {
    ::setpgid(0, 0);
    ::close_range(3, ~0U, 0);
    if (unset_env != nullptr) {
      for (const auto& name : *unset_env) {
        ::unsetenv(name.c_str());
      }
    }
    if (extra_env != nullptr) {
      for (const auto& [k, v] : *extra_env) {
        ::setenv(k.c_str(), v.c_str(), 1);
      }
    }
    e.env = ::environ;
  }
};

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./=:,+@%") == std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::atomic<int> g_active_groups[32];
std::atomic<bool> g_interrupted{false};

void register_group(int pgid) {
  for (auto& slot : g_active_groups) {
    int expected = 0;
    if (slot.compare_exchange_strong(expected, pgid)) {
      return;
    }
  }
}

void unregister_group(int pgid) {
  for (auto& slot : g_active_groups) {
    int expected = pgid;
    if (slot.compare_exchange_strong(expected, 0)) {
      return;
    }
  }
}

} // namespace

void interrupt_active_processes() {
  g_interrupted.store(true);
  for (auto& slot : g_active_groups) {
    const int pgid = slot.load();
    if (pgid > 0) {
      ::kill(-pgid, SIGTERM);
    }
  }
}

bool interrupted() { return g_interrupted.load(); }

std::string tail_lines(const std::string& text, size_t n) {
  size_t pos = text.size();
  size_t lines = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && pos != text.size() && ++lines == n) {
      break;
    }
    --pos;
  }
  return text.substr(pos);
}

std::string RunResult::tail(std::size_t n) const { return tail_lines(output, n); }

std::string format_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) {
      out += ' ';
    }
    out += shell_quote(a);
  }
  return out;
}

bool program_available(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    return ::access(program.c_str(), X_OK) == 0;
  }
  return !bp::search_path(program).empty();
}

Expected<RunResult> run_process(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) {
    return fail("run", "empty command");
  }
  boost::filesystem::path exe =
      argv[0].find('/') != std::string::npos ? boost::filesystem::path(argv[0]) : bp::search_path(argv[0]);
  if (exe.empty() || ::access(exe.c_str(), X_OK) != 0) {
    return fail(argv[0], "program not found in PATH (install it, see scripts/install-deps)", ExitCode::host_missing);
  }
  spdlog::debug("run: {}", format_argv(argv));

  ChildSetup setup;
  setup.extra_env = &options.extra_env;
  setup.unset_env = &options.unset_env;
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  bp::ipstream out;
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  const std::string start_dir = options.cwd.empty() ? "." : options.cwd;
  const boost::filesystem::path stdin_path(options.stdin_file.empty() ? "/dev/null" : options.stdin_file);
  bp::child child = options.stdout_file.empty()
                        ? bp::child(exe, bp::args(args), (bp::std_out & bp::std_err) > out, bp::std_in < stdin_path,
                                    bp::start_dir(start_dir), setup, ec)
                        : bp::child(exe, bp::args(args), bp::std_out > boost::filesystem::path(options.stdout_file),
                                    bp::std_err > out, bp::std_in < stdin_path, bp::start_dir(start_dir), setup, ec);
  if (ec) {
    return fail(argv[0], "cannot start: " + ec.message(), ExitCode::host_missing);
  }
  const int pgid = child.id();
  register_group(pgid);
  if (interrupted()) {
    ::kill(-pgid, SIGTERM);
  }

  RunResult result;
  std::deque<std::string> kept;
  std::size_t kept_bytes = 0;
  std::thread reader([&, build_log = current_build_log()] {
    set_current_build_log(build_log);
    std::string line;
    while (std::getline(out, line)) {
      if (options.on_line) {
        options.on_line(line);
      }
      kept_bytes += line.size() + 1;
      kept.push_back(std::move(line));
      while (kept_bytes > options.max_output_bytes && !kept.empty()) {
        kept_bytes -= kept.front().size() + 1;
        kept.pop_front();
      }
    }
  });

  // Boost.Process spawns; waiting is ours: Boost 1.74's wait_for can reap another
  // thread's child and then spin, so each call waits for exactly its own pid.
  child.detach();
  const pid_t pid = static_cast<pid_t>(pgid);
  auto try_reap = [&](int& status) {
    for (;;) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == -1 && errno == EINTR) {
        continue;
      }
      return r == pid || r == -1;
    }
  };
  int status = 0;
  bool finished = false;
  auto sleep_time = std::chrono::milliseconds(1);
  const auto deadline = options.timeout ? start + *options.timeout : std::chrono::steady_clock::time_point::max();
  while (!(finished = try_reap(status))) {
    if (std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(sleep_time);
    sleep_time = std::min(sleep_time * 2, std::chrono::milliseconds(50));
  }
  if (!finished) {
    result.timed_out = true;
    ::kill(-pgid, SIGTERM);
    const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!(finished = try_reap(status)) && std::chrono::steady_clock::now() < grace) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!finished) {
      ::kill(-pgid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
  // Grandchildren that kept the pipe open would block the reader forever.
  ::kill(-pgid, SIGKILL);
  unregister_group(pgid);
  reader.join();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.timed_out) {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  for (auto& l : kept) {
    result.output += l;
    result.output += '\n';
  }
  spdlog::debug("run: {} -> {} in {:.2f} s", argv[0],
                result.timed_out ? std::string("timeout") : std::to_string(result.exit_code), result.seconds);
  return result;
}

Expected<RunResult> run_checked(const std::vector<std::string>& argv, const RunOptions& options) {
  BI_TRY_ASSIGN(RunResult r, run_process(argv, options));
  if (r.timed_out) {
    return fail(argv[0], "timed out after " + std::to_string(options.timeout->count()) + " s: " + format_argv(argv) +
                             "\n" + r.tail());
  }
  if (r.exit_code != 0) {
    return fail(argv[0],
                "exited with status " + std::to_string(r.exit_code) + ": " + format_argv(argv) + "\n" + r.tail());
  }
  return r;
}

} // namespace bi

namespace bi {

Expected<Subprocess> Subprocess::start(const std::vector<std::string>& argv, const std::string& log_file,
                                       const std::map<std::string, std::string>& extra_env) {
  if (argv.empty()) {
    return fail("run", "empty command");
  }
  boost::filesystem::path exe =
      argv[0].find('/') != std::string::npos ? boost::filesystem::path(argv[0]) : bp::search_path(argv[0]);
  if (exe.empty()) {
    return fail(argv[0], "program not found in PATH (install it, see scripts/install-deps)", ExitCode::host_missing);
  }
  spdlog::debug("start: {} (output: {})", format_argv(argv), log_file);
  ChildSetup setup;
  setup.extra_env = &extra_env;
  std::error_code ec;
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  bp::child child(exe, bp::args(args), (bp::std_out & bp::std_err) > boost::filesystem::path(log_file),
                  bp::std_in < bp::null, setup, ec);
  if (ec) {
    return fail(argv[0], "cannot start: " + ec.message(), ExitCode::host_missing);
  }
  const int pid = child.id();
  child.detach();
  register_group(pid);
  return Subprocess(pid);
}

Subprocess::Subprocess(Subprocess&& other) noexcept : m_pid(other.m_pid), m_exit_code(other.m_exit_code) {
  other.m_pid = -1;
}

Subprocess::~Subprocess() { stop(std::chrono::milliseconds(2000)); }

bool Subprocess::running() {
  if (m_pid <= 0) {
    return false;
  }
  int status = 0;
  pid_t r = ::waitpid(m_pid, &status, WNOHANG);
  if (r == 0) {
    return true;
  }
  if (r == m_pid) {
    m_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ::kill(-m_pid, SIGKILL); // anything it left behind
  unregister_group(m_pid);
  m_pid = -1;
  return false;
}

void Subprocess::signal(int sig) {
  if (m_pid > 0) {
    ::kill(-m_pid, sig);
  }
}

void Subprocess::stop(std::chrono::milliseconds grace) {
  if (!running()) {
    return;
  }
  ::kill(-m_pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (m_pid > 0) {
    ::kill(-m_pid, SIGKILL);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    unregister_group(m_pid);
    m_pid = -1;
  }
}

} // namespace bi
