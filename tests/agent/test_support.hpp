#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace agent_test {

// A fresh directory that is deleted when the test case passes and kept (and its path
// printed) when it fails, so broker and agent logs can be inspected.
std::filesystem::path make_test_directory(std::string_view name);

// Called by the Catch listener in test_main.cpp.
void finish_test_directories(bool passed);

void write_file(const std::filesystem::path& path, std::string_view content);
std::string read_file(const std::filesystem::path& path);

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A port nothing listens on right now (bound to 127.0.0.1:0, then released).
std::uint16_t free_port();

// A listening TCP socket on 127.0.0.1; connections complete in the backlog.
class TcpListener {
public:
  explicit TcpListener(std::uint16_t port);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

private:
  int m_fd = -1;
};

// A child started with posix_spawn (no shell), stdout and stderr to `log_file`. Killed
// and reaped on destruction if still running.
class ChildProcess {
public:
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
               const std::map<std::string, std::string>& extra_environment = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return m_pid; }
  void send_signal(int signal);
  // The exit status, or -1 if still running after `timeout`; -2 when killed by a signal.
  int wait_for_exit(std::chrono::milliseconds timeout);
  bool running();

private:
  pid_t m_pid = -1;
  bool m_reaped = false;
  int m_status = 0;
};

} // namespace agent_test
