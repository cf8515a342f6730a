#pragma once
// A real mosquitto on 127.0.0.1 for the agent's integration tests. MOSQUITTO_EXECUTABLE
// is defined by the test target.
#include "ports.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <optional>

#include <unistd.h>

namespace agent_test {

inline bool port_open(std::uint16_t port) {
  return cartridge_agent::port_accepts_connection("127.0.0.1", port, std::chrono::milliseconds{200});
}

class MosquittoBroker {
public:
  MosquittoBroker(std::filesystem::path dir, std::uint16_t port) : m_dir(std::move(dir)), m_port(port) { start(); }

  void start() {
    std::string conf = "listener " + std::to_string(m_port) + " 127.0.0.1\n" +
                       "allow_anonymous true\npersistence false\n" + "log_dest file " +
                       (m_dir / "mosquitto.log").string() + "\nlog_type all\n";
    // As root mosquitto would switch to the mosquitto user, which cannot write the log.
    if (::geteuid() == 0) {
      conf += "user root\n";
    }
    write_file(m_dir / "mosquitto.conf", conf);
    m_process.emplace(std::vector<std::string>{MOSQUITTO_EXECUTABLE, "-c", (m_dir / "mosquitto.conf").string()},
                      m_dir / "mosquitto.out");
    const auto port = m_port;
    REQUIRE(wait_until([port] { return port_open(port); }, std::chrono::seconds{10}));
  }

  void stop() {
    m_process->send_signal(SIGTERM);
    CHECK(m_process->wait_for_exit(std::chrono::seconds{10}) == 0);
    m_process.reset();
  }

  std::uint16_t port() const { return m_port; }

private:
  std::filesystem::path m_dir;
  std::uint16_t m_port;
  std::optional<ChildProcess> m_process;
};

} // namespace agent_test
