#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cartridge_agent {

// Transparent comparator so lookups by string_view do not allocate.
using PayloadMap = std::map<std::string, std::string, std::less<>>;

struct ParsedPayload {
    PayloadMap values;
    std::vector<std::string> warnings;
};

// Parses a Stratos launch payload. Accepts the original single line of comma-separated
// KEY=VALUE fields as well as the normalised one-pair-per-line form written by
// cartridge-init. Values whose text is empty or the literal `null` are treated as absent
// and do not appear in the map. Malformed fields are skipped and described in
// `warnings`; the function never fails.
ParsedPayload parse_payload(std::string_view text);

// ^[A-Za-z_][A-Za-z0-9_.-]*$
bool is_valid_payload_key(std::string_view key);

std::optional<std::string> payload_value(const PayloadMap& payload, std::string_view key);

// Upper bound on individual warnings kept, so a garbage multi-megabyte payload cannot
// turn into a multi-megabyte log line; the rest are summarised in one final warning.
inline constexpr std::size_t k_max_payload_warnings = 50;

} // namespace cartridge_agent
