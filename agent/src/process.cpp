#include "process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace cartridge_agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds k_slice{50};
// A runaway line must not become one huge log record.
constexpr std::size_t k_max_line = 4096;

class FileDescriptor {
public:
    explicit FileDescriptor(int fd = -1) : m_fd(fd) {}
    ~FileDescriptor() { reset(); }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return m_fd; }
    void reset() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = -1;
    }

private:
    int m_fd;
};

class SpawnActions {
public:
    SpawnActions() { posix_spawn_file_actions_init(&m_actions); }
    ~SpawnActions() { posix_spawn_file_actions_destroy(&m_actions); }
    SpawnActions(const SpawnActions&) = delete;
    SpawnActions& operator=(const SpawnActions&) = delete;
    posix_spawn_file_actions_t* get() { return &m_actions; }

private:
    posix_spawn_file_actions_t m_actions;
};

class SpawnAttributes {
public:
    SpawnAttributes() { posix_spawnattr_init(&m_attributes); }
    ~SpawnAttributes() { posix_spawnattr_destroy(&m_attributes); }
    SpawnAttributes(const SpawnAttributes&) = delete;
    SpawnAttributes& operator=(const SpawnAttributes&) = delete;
    posix_spawnattr_t* get() { return &m_attributes; }

private:
    posix_spawnattr_t m_attributes;
};

class LineSplitter {
public:
    explicit LineSplitter(const std::function<void(std::string_view)>& sink) : m_sink(sink) {}
    void feed(std::string_view bytes) {
        for (const char c : bytes) {
            if (c == '\n') {
                flush();
            } else if (m_line.size() < k_max_line) {
                m_line.push_back(c);
            }
        }
    }
    void flush() {
        if (!m_line.empty() && m_sink) {
            m_sink(m_line);
        }
        m_line.clear();
    }

private:
    const std::function<void(std::string_view)>& m_sink;
    std::string m_line;
};

void drain(int fd, LineSplitter& lines) {
    char buffer[4096];
    for (;;) {
        const auto n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) {
            return;
        }
        lines.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    }
}

std::string milliseconds_text(std::chrono::milliseconds duration) {
    if (duration.count() % 1000 == 0) {
        return std::to_string(duration.count() / 1000) + " s";
    }
    return std::to_string(duration.count()) + " ms";
}

} // namespace

std::string ProcessResult::describe() const {
    switch (outcome) {
    case Outcome::exited:
        return "exit status " + std::to_string(exit_code);
    case Outcome::signalled:
        return "killed by signal " + std::to_string(exit_code);
    case Outcome::timed_out:
        return "timed out (" + error + ")";
    case Outcome::stopped:
        return "stopped by the agent's shutdown";
    case Outcome::not_started:
        break;
    }
    return "not started: " + error;
}

std::map<std::string, std::string> current_environment() {
    std::map<std::string, std::string> environment;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const auto equals = text.find('=');
        if (equals != std::string_view::npos && equals > 0) {
            environment.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
        }
    }
    return environment;
}

std::vector<std::string> environment_list(const std::map<std::string, std::string>& environment) {
    std::vector<std::string> list;
    list.reserve(environment.size());
    for (const auto& [name, value] : environment) {
        list.push_back(name + "=" + value);
    }
    return list;
}

ProcessResult run_process(const ProcessSpec& spec, const IdleFunction& idle,
                          const std::function<void(std::string_view)>& on_line) {
    ProcessResult result;
    if (spec.argv.empty()) {
        result.error = "empty command";
        return result;
    }
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        result.error = "pipe: " + std::error_code(errno, std::generic_category()).message();
        return result;
    }
    FileDescriptor read_end(pipe_fds[0]);
    FileDescriptor write_end(pipe_fds[1]);

    SpawnActions actions;
    posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(actions.get(), write_end.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(actions.get(), write_end.get(), STDERR_FILENO);
    if (spec.working_directory) {
        posix_spawn_file_actions_addchdir_np(actions.get(), spec.working_directory->c_str());
    }
    SpawnAttributes attributes;
    // Its own process group, so a timeout can end everything the program started; default
    // signal dispositions, since the agent ignores SIGPIPE.
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigset_t no_mask;
    sigemptyset(&no_mask);
    posix_spawnattr_setsigdefault(attributes.get(), &defaults);
    posix_spawnattr_setsigmask(attributes.get(), &no_mask);
    posix_spawnattr_setpgroup(attributes.get(), 0);
    posix_spawnattr_setflags(attributes.get(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> argv;
    for (const auto& arg : spec.argv) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& entry : spec.environment) {
        envp.push_back(const_cast<char*>(entry.c_str()));
    }
    envp.push_back(nullptr);

    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0], actions.get(), attributes.get(), argv.data(), envp.data());
    write_end.reset();
    if (rc != 0) {
        result.error = spec.argv.front() + ": " + std::error_code(rc, std::generic_category()).message();
        return result;
    }
    ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);
    LineSplitter lines(on_line);

    const auto deadline = Clock::now() + spec.timeout;
    int status = 0;
    bool reaped = false;
    const auto try_reap = [&] {
        pid_t waited = 0;
        do {
            waited = ::waitpid(pid, &status, WNOHANG);
        } while (waited < 0 && errno == EINTR);
        reaped = waited == pid;
        return reaped;
    };
    while (!try_reap()) {
        drain(read_end.get(), lines);
        if (Clock::now() >= deadline) {
            result.outcome = ProcessResult::Outcome::timed_out;
            result.error = "no exit within " + milliseconds_text(spec.timeout);
            break;
        }
        if (idle ? !idle(k_slice) : !sleep_idle(k_slice)) {
            result.outcome = ProcessResult::Outcome::stopped;
            break;
        }
    }
    if (!reaped) {
        ::kill(-pid, SIGTERM);
        const auto grace_end = Clock::now() + spec.kill_grace;
        while (!try_reap() && Clock::now() < grace_end) {
            drain(read_end.get(), lines);
            sleep_idle(k_slice);
        }
        ::kill(-pid, SIGKILL);
        if (!reaped) {
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        drain(read_end.get(), lines);
        lines.flush();
        return result;
    }
    drain(read_end.get(), lines);
    lines.flush();
    if (WIFEXITED(status)) {
        result.outcome = ProcessResult::Outcome::exited;
        result.exit_code = WEXITSTATUS(status);
    } else {
        result.outcome = ProcessResult::Outcome::signalled;
        result.exit_code = WIFSIGNALED(status) ? WTERMSIG(status) : -1;
    }
    return result;
}

} // namespace cartridge_agent
