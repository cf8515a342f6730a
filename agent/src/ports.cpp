#include "ports.hpp"

#include <algorithm>
#include <cerrno>
#include <memory>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cartridge_agent {
namespace {

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) noexcept : m_fd(fd) {}
    ~FileDescriptor() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;

    int get() const noexcept { return m_fd; }
    bool valid() const noexcept { return m_fd >= 0; }

private:
    int m_fd;
};

struct AddrinfoDeleter {
    void operator()(addrinfo* info) const noexcept { ::freeaddrinfo(info); }
};
using AddrinfoList = std::unique_ptr<addrinfo, AddrinfoDeleter>;

bool connects(const addrinfo& address, std::chrono::milliseconds timeout) {
    // Non-blocking so a filtered port costs at most `timeout`, not the kernel's SYN
    // retry budget of about two minutes.
    FileDescriptor fd(
        ::socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, address.ai_protocol));
    if (!fd.valid()) {
        return false;
    }
    if (::connect(fd.get(), address.ai_addr, address.ai_addrlen) == 0) {
        return true;
    }
    if (errno != EINPROGRESS) {
        return false;
    }
    pollfd waiting{fd.get(), POLLOUT, 0};
    int ready = 0;
    do {
        ready = ::poll(&waiting, 1, static_cast<int>(timeout.count()));
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
        return false;
    }
    int error = 0;
    socklen_t length = sizeof error;
    return ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
}

} // namespace

bool port_accepts_connection(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* raw = nullptr;
    const auto service = std::to_string(port);
    if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &raw) != 0) {
        return false;
    }
    const AddrinfoList addresses(raw);
    // "localhost" resolves to ::1 and 127.0.0.1; services often bind only one of them.
    for (const addrinfo* address = addresses.get(); address != nullptr; address = address->ai_next) {
        if (connects(*address, timeout)) {
            return true;
        }
    }
    return false;
}

PortWaitResult wait_for_ports(const std::string& host, std::span<const std::uint16_t> ports,
                              std::chrono::seconds timeout, const IdleFunction& idle,
                              std::chrono::milliseconds poll_interval) {
    using Clock = std::chrono::steady_clock;
    constexpr std::chrono::milliseconds k_connect_timeout{500};
    const auto deadline = Clock::now() + timeout;
    PortWaitResult result;
    while (true) {
        result.closed_ports.clear();
        for (const auto port : ports) {
            if (!port_accepts_connection(host, port, k_connect_timeout)) {
                result.closed_ports.push_back(port);
            }
        }
        if (result.closed_ports.empty()) {
            result.outcome = PortWaitResult::Outcome::all_open;
            return result;
        }
        const auto now = Clock::now();
        if (now >= deadline) {
            result.outcome = PortWaitResult::Outcome::timed_out;
            return result;
        }
        const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
        if (!idle(std::min(poll_interval, remaining))) {
            result.outcome = PortWaitResult::Outcome::stopped;
            return result;
        }
    }
}

std::string format_ports(std::span<const std::uint16_t> ports) {
    std::string text;
    for (const auto port : ports) {
        if (!text.empty()) {
            text += '|';
        }
        text += std::to_string(port);
    }
    return text;
}

} // namespace cartridge_agent
