#pragma once
// Text helpers shared by the agent's parsers (payload, agent.conf).

#include <string_view>

namespace cartridge_agent {

inline constexpr std::string_view k_whitespace = " \t\r\n\f\v";

inline std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(k_whitespace);
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(k_whitespace);
    return text.substr(first, last - first + 1);
}

} // namespace cartridge_agent
