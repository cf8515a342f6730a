#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace cartridge_agent {

// Failures cross module boundaries as values: the agent decides per call site whether
// a failure is fatal (exit code), retried, or merely logged.
struct Error {
    std::string message;
};

template <class T> class [[nodiscard]] Result {
public:
    Result(T value) : m_state(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : m_state(std::in_place_index<1>, std::move(error)) {}

    bool has_value() const noexcept { return m_state.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(m_state); }
    const T& value() const& { return std::get<0>(m_state); }
    T&& value() && { return std::get<0>(std::move(m_state)); }
    const Error& error() const { return std::get<1>(m_state); }

private:
    std::variant<T, Error> m_state;
};

template <> class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)) {}

    bool has_value() const noexcept { return !m_error.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    const Error& error() const { return *m_error; }

private:
    std::optional<Error> m_error;
};

// Long waits (ports, reconnect back-off, the stats interval) are delegated to the caller
// so it can keep the MQTT session alive and abort promptly on SIGTERM. The function
// waits up to the given duration and returns false when the wait should be abandoned.
using IdleFunction = std::function<bool(std::chrono::milliseconds)>;

// For callers that have nothing to service while waiting (tests, one-shot tools).
bool sleep_idle(std::chrono::milliseconds duration);

} // namespace cartridge_agent
