#include "common.hpp"

#include <thread>

namespace cartridge_agent {

bool sleep_idle(std::chrono::milliseconds duration) {
    std::this_thread::sleep_for(duration);
    return true;
}

} // namespace cartridge_agent
