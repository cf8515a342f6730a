#include "payload.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace cartridge_agent {
namespace {

constexpr std::string_view k_whitespace = " \t\r\n\f\v";
constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";
constexpr std::size_t k_max_excerpt = 64;

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(k_whitespace);
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(k_whitespace);
    return text.substr(first, last - first + 1);
}

bool is_absent_value(std::string_view value) { return value.empty() || value == "null"; }

// Keys reach the journal, so keep excerpts short and printable.
std::string excerpt(std::string_view text) {
    std::string out;
    const auto length = std::min(text.size(), k_max_excerpt);
    out.reserve(length + 3);
    for (std::size_t i = 0; i < length; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    }
    if (text.size() > k_max_excerpt) {
        out += "...";
    }
    return out;
}

bool is_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9'); }

class Parser {
public:
    ParsedPayload take() && {
        if (m_suppressed_warnings > 0) {
            m_result.warnings.push_back(std::to_string(m_suppressed_warnings) + " more malformed fields skipped");
        }
        return std::move(m_result);
    }

    void field(std::string_view raw, std::size_t line, std::size_t field_number) {
        const auto text = trim(raw);
        // Stratos writes the separator of every unset optional field, so `,,` runs are
        // normal and not worth a warning.
        if (text.empty()) {
            return;
        }
        const auto where = "line " + std::to_string(line) + ", field " + std::to_string(field_number);
        const auto equals = text.find('=');
        if (equals == std::string_view::npos) {
            // The field could be a fragment of a secret (TOKEN, CARTRIDGE_KEY), so only
            // its size is reported.
            warn(where + ": no '=' in a " + std::to_string(text.size()) + "-character field; skipped");
            return;
        }
        const auto key = trim(text.substr(0, equals));
        const auto value = trim(text.substr(equals + 1));
        if (key.empty()) {
            warn(where + ": empty key; skipped");
            return;
        }
        if (!is_valid_payload_key(key)) {
            warn(where + ": invalid key '" + excerpt(key) + "'; skipped");
            return;
        }
        if (!m_seen_keys.emplace(key).second) {
            warn(where + ": duplicate key '" + std::string(key) + "'; the later value wins");
        }
        if (is_absent_value(value)) {
            // A later `null` must hide an earlier value, or "the later value wins" lies.
            if (const auto existing = m_result.values.find(key); existing != m_result.values.end()) {
                m_result.values.erase(existing);
            }
            return;
        }
        m_result.values.insert_or_assign(std::string(key), std::string(value));
    }

private:
    void warn(std::string message) {
        if (m_result.warnings.size() < k_max_payload_warnings) {
            m_result.warnings.push_back(std::move(message));
        } else {
            ++m_suppressed_warnings;
        }
    }

    ParsedPayload m_result;
    // Includes keys whose value was absent, which the result map does not hold.
    std::set<std::string, std::less<>> m_seen_keys;
    std::size_t m_suppressed_warnings = 0;
};

} // namespace

bool is_valid_payload_key(std::string_view key) {
    if (key.empty() || !is_key_start(key.front())) {
        return false;
    }
    for (const char c : key.substr(1)) {
        if (!is_key_char(c)) {
            return false;
        }
    }
    return true;
}

ParsedPayload parse_payload(std::string_view text) {
    if (text.starts_with(k_utf8_bom)) {
        text.remove_prefix(k_utf8_bom.size());
    }
    std::vector<std::string_view> lines;
    for (std::size_t start = 0; start <= text.size();) {
        const auto end = text.find('\n', start);
        lines.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    // Stratos writes one line of comma-separated fields; a payload written by hand or a
    // tool may put one field per line, and then a value may contain commas.
    const auto non_blank =
        std::count_if(lines.begin(), lines.end(), [](std::string_view l) { return !trim(l).empty(); });
    Parser parser;
    for (std::size_t n = 0; n < lines.size(); ++n) {
        const auto line = lines[n];
        if (non_blank > 1) {
            parser.field(line, n + 1, 1);
            continue;
        }
        std::size_t field_number = 1;
        std::size_t field_start = 0;
        while (true) {
            const auto comma = line.find(',', field_start);
            parser.field(line.substr(field_start,
                                     comma == std::string_view::npos ? std::string_view::npos : comma - field_start),
                         n + 1, field_number);
            if (comma == std::string_view::npos) {
                break;
            }
            field_start = comma + 1;
            ++field_number;
        }
    }
    return std::move(parser).take();
}

std::optional<std::string> payload_value(const PayloadMap& payload, std::string_view key) {
    const auto it = payload.find(key);
    if (it == payload.end()) {
        return std::nullopt;
    }
    return it->second;
}

} // namespace cartridge_agent
