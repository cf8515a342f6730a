#include "test_support.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace agent_test {
namespace {

std::vector<std::filesystem::path>& live_directories() {
  static std::vector<std::filesystem::path> directories;
  return directories;
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

} // namespace

std::filesystem::path make_test_directory(std::string_view name) {
  auto pattern =
      (std::filesystem::temp_directory_path() / ("cartridge-agent-test-" + std::string(name) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw_errno("mkdtemp " + pattern);
  }
  live_directories().emplace_back(pattern);
  return pattern;
}

void finish_test_directories(bool passed) {
  for (const auto& directory : live_directories()) {
    if (passed) {
      std::error_code ignored;
      std::filesystem::remove_all(directory, ignored);
    } else {
      std::cerr << "test failed; keeping " << directory.string() << '\n';
    }
  }
  live_directories().clear();
}

void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return true;
}

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno("socket");
  }
  auto address = loopback(0);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    throw_errno("bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

TcpListener::TcpListener(std::uint16_t port) {
  m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (m_fd < 0) {
    throw_errno("socket");
  }
  const int yes = 1;
  ::setsockopt(m_fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  const auto address = loopback(port);
  if (::bind(m_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || ::listen(m_fd, 64) != 0) {
    const int saved = errno;
    ::close(m_fd);
    errno = saved;
    throw_errno("listen on 127.0.0.1:" + std::to_string(port));
  }
}

TcpListener::~TcpListener() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
                           const std::map<std::string, std::string>& extra_environment) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto name = text.substr(0, text.find('='));
    if (extra_environment.find(std::string(name)) == extra_environment.end()) {
      environment.emplace_back(text);
    }
  }
  for (const auto& [name, value] : extra_environment) {
    environment.push_back(name + "=" + value);
  }
  std::vector<char*> argv_pointers;
  for (const auto& arg : argv) {
    argv_pointers.push_back(const_cast<char*>(arg.c_str()));
  }
  argv_pointers.push_back(nullptr);
  std::vector<char*> environment_pointers;
  for (auto& entry : environment) {
    environment_pointers.push_back(entry.data());
  }
  environment_pointers.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const int rc =
      ::posix_spawn(&m_pid, argv_pointers[0], &actions, nullptr, argv_pointers.data(), environment_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv.front());
  }
}

ChildProcess::~ChildProcess() {
  if (!m_reaped && m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, &m_status, 0);
  }
}

void ChildProcess::send_signal(int signal) {
  if (!m_reaped) {
    ::kill(m_pid, signal);
  }
}

bool ChildProcess::running() {
  if (m_reaped) {
    return false;
  }
  const pid_t rc = ::waitpid(m_pid, &m_status, WNOHANG);
  if (rc == m_pid) {
    m_reaped = true;
    return false;
  }
  return true;
}

int ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  if (!wait_until([this] { return !running(); }, timeout)) {
    return -1;
  }
  return WIFEXITED(m_status) ? WEXITSTATUS(m_status) : -2;
}

} // namespace agent_test
