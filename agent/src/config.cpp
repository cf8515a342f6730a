#include "config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "text.hpp"

namespace cartridge_agent {
namespace {

// Built by append: GCC 12 at -O2 reports a false -Wrestrict on "'" + std::string(text) + "'".
std::string quoted(std::string_view text) {
    std::string result;
    result.reserve(text.size() + 2);
    result.append(1, '\'').append(text).append(1, '\'');
    return result;
}

std::string join(std::string_view a, std::string_view b) {
    std::string result;
    result.reserve(a.size() + b.size() + 2);
    result.append(a).append(": ").append(b);
    return result;
}

template <class Integer> bool parse_integer(std::string_view text, Integer& out) {
    if (text.empty()) {
        return false;
    }
    const auto* const end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc{} && ptr == end;
}

Result<std::chrono::seconds> parse_seconds(std::string_view text, std::string_view where, long minimum) {
    long value = 0;
    if (!parse_integer(text, value) || value < minimum) {
        return Error{
            join(where, "expected a whole number of seconds >= " + std::to_string(minimum) + ", got " + quoted(text))};
    }
    return std::chrono::seconds{value};
}

Result<BrokerAddress> parse_broker(std::string_view text, std::string_view where) {
    const auto invalid = [&] {
        return Error{join(where, "invalid broker address " + quoted(text) + " (expected host:port)")};
    };
    std::string_view host;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return invalid();
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return invalid();
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        // An unbracketed IPv6 literal is ambiguous about where the port starts.
        if (host.find(':') != std::string_view::npos) {
            return invalid();
        }
    }
    if (host.empty() || host.find_first_of(k_whitespace) != std::string_view::npos) {
        return invalid();
    }
    auto parsed_port = parse_port(port, where);
    if (!parsed_port) {
        return parsed_port.error();
    }
    return BrokerAddress{std::string(host), parsed_port.value()};
}

Result<bool> parse_bool(std::string_view text, std::string_view where) {
    if (text == "true" || text == "yes" || text == "on" || text == "1") {
        return true;
    }
    if (text == "false" || text == "no" || text == "off" || text == "0") {
        return false;
    }
    return Error{join(where, "expected true or false, got " + quoted(text))};
}

template <class Setter>
Result<void> with_seconds(std::string_view v, std::string_view where, long minimum, Setter set) {
    auto seconds = parse_seconds(v, where, minimum);
    if (!seconds) {
        return seconds.error();
    }
    set(seconds.value());
    return {};
}

template <class Setter> Result<void> with_bool(std::string_view v, std::string_view where, Setter set) {
    auto flag = parse_bool(v, where);
    if (!flag) {
        return flag.error();
    }
    set(flag.value());
    return {};
}

using KeyHandler = Result<void> (*)(AgentConfig&, std::string_view value, std::string_view where);

struct KeySpec {
    std::string_view key;
    KeyHandler handler;
};

constexpr KeySpec k_keys[] = {
    {"mb.urls",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         auto brokers = parse_broker_list(v, where);
         if (!brokers) {
             return brokers.error();
         }
         c.brokers = std::move(brokers).value();
         return {};
     }},
    {"service.name",
     [](AgentConfig& c, std::string_view v, std::string_view) -> Result<void> {
         c.service_name = std::string(v);
         return {};
     }},
    {"ports",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         auto ports = parse_port_list(v, where);
         if (!ports) {
             return ports.error();
         }
         c.ports = std::move(ports).value();
         return {};
     }},
    {"listen.address",
     [](AgentConfig& c, std::string_view v, std::string_view) -> Result<void> {
         c.listen_address = std::string(v);
         return {};
     }},
    {"port.check.timeout",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         auto seconds = parse_seconds(v, where, 0);
         if (!seconds) {
             return seconds.error();
         }
         c.port_check_timeout = seconds.value();
         return {};
     }},
    {"stats.interval",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         auto seconds = parse_seconds(v, where, 1);
         if (!seconds) {
             return seconds.error();
         }
         c.stats_interval = seconds.value();
         return {};
     }},
    {"payload.file",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         if (!v.starts_with('/')) {
             return Error{join(where, "expected an absolute path, got " + quoted(v))};
         }
         c.payload_file = std::filesystem::path(v);
         return {};
     }},
    {"stratos.handshake",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         return with_bool(v, where, [&](bool flag) { c.handshake = flag; });
     }},
    {"enable.initial.artifact.backup",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         return with_bool(v, where, [&](bool flag) { c.initial_artifact_backup = flag; });
     }},
    {"extensions.dir",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         if (!v.starts_with('/')) {
             return Error{join(where, "expected an absolute path, got " + quoted(v))};
         }
         c.extensions_dir = std::filesystem::path(v);
         return {};
     }},
    {"extension.timeout",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         return with_seconds(v, where, 1, [&](std::chrono::seconds s) { c.extension_timeout = s; });
     }},
    {"application.path",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         if (!v.starts_with('/')) {
             return Error{join(where, "expected an absolute path, got " + quoted(v))};
         }
         c.application_path = std::filesystem::path(v);
         return {};
     }},
    {"application.root",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         if (!v.starts_with('/')) {
             return Error{join(where, "expected an absolute path, got " + quoted(v))};
         }
         c.application_root = std::filesystem::path(v).lexically_normal();
         return {};
     }},
    {"super.tenant.repository.path",
     [](AgentConfig& c, std::string_view v, std::string_view) -> Result<void> {
         c.super_tenant_repository_path = std::string(v);
         return {};
     }},
    {"tenant.repository.path",
     [](AgentConfig& c, std::string_view v, std::string_view) -> Result<void> {
         c.tenant_repository_path = std::string(v);
         return {};
     }},
    {"artifact.update.interval",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         return with_seconds(v, where, 0, [&](std::chrono::seconds s) { c.artifact_update_interval = s; });
     }},
    {"artifact.clone.retries",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         unsigned value = 0;
         if (!parse_integer(v, value) || value > 100) {
             return Error{join(where, "expected a whole number 0-100, got " + quoted(v))};
         }
         c.artifact_clone_retries = value;
         return {};
     }},
    {"artifact.clone.interval",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         return with_seconds(v, where, 0, [&](std::chrono::seconds s) { c.artifact_clone_interval = s; });
     }},
    {"git.timeout",
     [](AgentConfig& c, std::string_view v, std::string_view where) -> Result<void> {
         return with_seconds(v, where, 1, [&](std::chrono::seconds s) { c.git_timeout = s; });
     }},
};

const KeySpec* find_key(std::string_view key) {
    for (const auto& spec : k_keys) {
        if (spec.key == key) {
            return &spec;
        }
    }
    return nullptr;
}

} // namespace

std::string BrokerAddress::to_string() const {
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + std::to_string(port);
    }
    return host + ":" + std::to_string(port);
}

Result<std::uint16_t> parse_port(std::string_view text, std::string_view where) {
    unsigned value = 0;
    if (!parse_integer(text, value) || value == 0 || value > 65535) {
        return Error{join(where, "invalid port " + quoted(text) + " (expected 1-65535)")};
    }
    return static_cast<std::uint16_t>(value);
}

Result<std::vector<BrokerAddress>> parse_broker_list(std::string_view text, std::string_view where) {
    std::vector<BrokerAddress> brokers;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        const auto item =
            trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
        if (!item.empty()) {
            auto broker = parse_broker(item, where);
            if (!broker) {
                return broker.error();
            }
            if (std::find(brokers.begin(), brokers.end(), broker.value()) == brokers.end()) {
                brokers.push_back(std::move(broker).value());
            }
        }
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    if (brokers.empty()) {
        return Error{join(where, "no broker address in " + quoted(text))};
    }
    return brokers;
}

Result<std::vector<std::uint16_t>> parse_port_list(std::string_view text, std::string_view where) {
    std::vector<std::uint16_t> ports;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto bar = text.find('|', start);
        const auto item =
            trim(text.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start));
        if (!item.empty()) {
            auto port = parse_port(item, where);
            if (!port) {
                return port.error();
            }
            if (std::find(ports.begin(), ports.end(), port.value()) == ports.end()) {
                ports.push_back(port.value());
            }
        }
        if (bar == std::string_view::npos) {
            break;
        }
        start = bar + 1;
    }
    return ports;
}

Result<AgentConfig> parse_config(std::string_view text, std::string_view source) {
    AgentConfig config;
    std::set<std::string, std::less<>> seen;
    std::size_t line_number = 0;
    std::size_t line_start = 0;
    while (line_start < text.size()) {
        ++line_number;
        const auto line_end = text.find('\n', line_start);
        const auto line = trim(text.substr(line_start, line_end == std::string_view::npos ? std::string_view::npos
                                                                                          : line_end - line_start));
        line_start = line_end == std::string_view::npos ? text.size() : line_end + 1;

        // Only whole-line comments: a '#' inside a value is kept, as in Stratos' agent.conf.
        if (line.empty() || line.starts_with('#')) {
            continue;
        }
        const auto location = std::string(source) + ":" + std::to_string(line_number);
        const auto equals = line.find('=');
        if (equals == std::string_view::npos) {
            return Error{location + ": expected 'key = value', got " + quoted(line)};
        }
        const auto key = trim(line.substr(0, equals));
        const auto value = trim(line.substr(equals + 1));
        if (key.empty()) {
            return Error{location + ": empty key"};
        }
        const auto* spec = find_key(key);
        if (spec == nullptr) {
            // A newer builder may render keys this agent does not know; refusing to start
            // would leave the instance unmonitored for no benefit.
            config.warnings.push_back(location + ": unknown key " + quoted(key) + " ignored");
            continue;
        }
        if (!seen.emplace(key).second) {
            config.warnings.push_back(location + ": duplicate key " + quoted(key) + "; the later value wins");
        }
        if (value.empty()) {
            return Error{location + ": empty value for " + quoted(key)};
        }
        if (auto applied = spec->handler(config, value, location + ": " + std::string(key)); !applied) {
            return applied.error();
        }
    }
    return config;
}

Result<std::string> read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const auto reason = std::error_code(errno, std::generic_category()).message();
        return Error{path.string() + ": cannot read: " + reason};
    }
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) {
        return Error{path.string() + ": read error"};
    }
    return std::move(content).str();
}

Result<AgentConfig> load_config(const std::filesystem::path& path) {
    auto text = read_text_file(path);
    if (!text) {
        return text.error();
    }
    return parse_config(text.value(), path.string());
}

Result<void> apply_payload_overrides(AgentConfig& config, const PayloadMap& payload, std::string_view source) {
    const auto mb_ip = payload_value(payload, "MB_IP");
    const auto mb_port = payload_value(payload, "MB_PORT");
    if (mb_ip && mb_port) {
        auto port = parse_port(*mb_port, std::string(source) + ": MB_PORT");
        if (!port) {
            return port.error();
        }
        config.brokers = {BrokerAddress{*mb_ip, port.value()}};
    } else if (mb_ip || mb_port) {
        config.warnings.push_back(std::string(source) + ": " + (mb_ip ? "MB_IP" : "MB_PORT") + " given without " +
                                  (mb_ip ? "MB_PORT" : "MB_IP") + "; both are needed to override mb.urls, ignored");
    }
    if (const auto ports = payload_value(payload, "PORTS")) {
        auto parsed = parse_port_list(*ports, std::string(source) + ": PORTS");
        if (!parsed) {
            return parsed.error();
        }
        config.ports = std::move(parsed).value();
    }
    if (const auto service_name = payload_value(payload, "SERVICE_NAME")) {
        config.service_name = *service_name;
    }
    if (config.application_path.empty()) {
        if (const auto path = payload_value(payload, "APPLICATION_PATH")) {
            if (path->starts_with('/')) {
                config.application_path = *path;
            } else {
                config.warnings.push_back(std::string(source) + ": APPLICATION_PATH '" + *path + "'" +
                                          " is not absolute; ignored");
            }
        }
    }
    if (config.application_path.empty()) {
        config.application_path = std::filesystem::path(k_default_application_path);
    }
    return {};
}

Result<void> check_complete(const AgentConfig& config, std::string_view config_source) {
    if (config.brokers.empty()) {
        return Error{"no message broker configured: set mb.urls in " + std::string(config_source) +
                     " or MB_IP and MB_PORT in the payload"};
    }
    return {};
}

std::filesystem::path resolve_payload_path(const AgentConfig& config, const char* credentials_directory) {
    if (credentials_directory != nullptr && *credentials_directory != '\0') {
        return std::filesystem::path(credentials_directory) / k_payload_credential;
    }
    return config.payload_file;
}

} // namespace cartridge_agent
