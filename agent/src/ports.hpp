#pragma once

#include "common.hpp"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace cartridge_agent {

// True when some address `host` resolves to accepts a TCP connection on `port` within
// `timeout`.
bool port_accepts_connection(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);

struct PortWaitResult {
    enum class Outcome { all_open, timed_out, stopped };
    Outcome outcome = Outcome::all_open;
    // Ports that refused in the last round (empty when all were open).
    std::vector<std::uint16_t> closed_ports;
};

// Checks every port each round, so all must accept at the same time, then waits
// `poll_interval` through `idle`. A zero timeout checks once.
PortWaitResult wait_for_ports(const std::string& host, std::span<const std::uint16_t> ports,
                              std::chrono::seconds timeout, const IdleFunction& idle,
                              std::chrono::milliseconds poll_interval = std::chrono::seconds{1});

// "80|443", for log messages.
std::string format_ports(std::span<const std::uint16_t> ports);

} // namespace cartridge_agent
