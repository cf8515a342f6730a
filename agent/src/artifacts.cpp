#include "artifacts.hpp"

#include "crypto.hpp"

#include <spdlog/spdlog.h>

#include <vector>

namespace cartridge_agent {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

} // namespace

RepositoryUrl split_url_credentials(std::string_view url) {
    RepositoryUrl result{std::string(url), std::nullopt, std::nullopt};
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        return result;
    }
    const auto authority_start = scheme_end + 3;
    const auto authority_end = url.find_first_of("/?#", authority_start);
    const auto authority =
        url.substr(authority_start,
                   authority_end == std::string_view::npos ? std::string_view::npos : authority_end - authority_start);
    const auto at = authority.rfind('@');
    if (at == std::string_view::npos) {
        return result;
    }
    const auto userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    result.user = percent_decode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) {
        result.password = percent_decode(userinfo.substr(colon + 1));
    }
    result.url = std::string(url.substr(0, authority_start)) + std::string(url.substr(authority_start + at + 1));
    return result;
}

std::filesystem::path repository_path(const RepositoryLayout& layout, std::string_view tenant_id) {
    if (!layout.multitenant) {
        return layout.application_path;
    }
    // Plain concatenation, as the Python agent does: the configured parts carry slashes.
    const auto base = layout.application_path.string();
    if (tenant_id == "-1234") {
        return std::filesystem::path(base + layout.super_tenant_path).lexically_normal();
    }
    return std::filesystem::path(base + layout.tenant_path + std::string(tenant_id)).lexically_normal();
}

std::map<std::string, std::string> git_environment(const std::map<std::string, std::string>& base,
                                                   const std::optional<RepositoryCredentials>& credentials) {
    auto environment = base;
    for (auto it = environment.begin(); it != environment.end();) {
        // Inherited git settings could redirect config or credentials; start clean.
        if (it->first.starts_with("GIT_")) {
            it = environment.erase(it);
        } else {
            ++it;
        }
    }
    environment["GIT_TERMINAL_PROMPT"] = "0";
    environment["GIT_ASKPASS"] = "/bin/false";
    environment["GIT_CONFIG_NOSYSTEM"] = "1";
    environment["LC_ALL"] = "C";
    int count = 0;
    const auto add = [&](const std::string& key, const std::string& value) {
        environment["GIT_CONFIG_KEY_" + std::to_string(count)] = key;
        environment["GIT_CONFIG_VALUE_" + std::to_string(count)] = value;
        ++count;
    };
    // The web root usually belongs to another user than the agent.
    add("safe.directory", "*");
    add("credential.helper", "");
    if (credentials) {
        add("http.extraHeader",
            "Authorization: Basic " + base64_encode(credentials->user + ":" + credentials->password));
    }
    environment["GIT_CONFIG_COUNT"] = std::to_string(count);
    return environment;
}

Result<std::string> deploy_repository(const GitDeployment& deployment, const IdleFunction& idle) {
    const auto environment = environment_list(git_environment(deployment.base_environment, deployment.credentials));
    std::string last_line;
    std::string head;
    const auto git = [&](std::vector<std::string> args, bool capture = false) -> Result<void> {
        ProcessSpec spec;
        spec.argv = {deployment.git.string(), "-C", deployment.target.string()};
        spec.argv.insert(spec.argv.end(), args.begin(), args.end());
        spec.environment = environment;
        spec.timeout = deployment.timeout;
        const auto result = run_process(spec, idle, [&](std::string_view line) {
            if (capture) {
                head = std::string(line);
            } else {
                spdlog::info("git: {}", line);
            }
            last_line = std::string(line);
        });
        if (!result.success()) {
            return Error{"git " + args.front() + ": " + result.describe() +
                         (last_line.empty() ? std::string() : " (" + last_line + ")")};
        }
        return {};
    };
    std::error_code ec;
    std::filesystem::create_directories(deployment.target, ec);
    if (ec) {
        return Error{deployment.target.string() + ": cannot create: " + ec.message()};
    }
    if (!std::filesystem::exists(deployment.target / ".git", ec)) {
        if (auto done = git({"init", "-q", "-b", "master"}); !done) {
            return done.error();
        }
    }
    // Only the URL without credentials is ever stored.
    if (auto done = git({"config", "remote.origin.url", deployment.url}); !done) {
        return done.error();
    }
    if (auto done = git({"config", "remote.origin.fetch", "+refs/heads/master:refs/remotes/origin/master"}); !done) {
        return done.error();
    }
    if (auto done = git({"fetch", "-q", "--no-tags", "origin"}); !done) {
        return done.error();
    }
    if (auto done = git({"reset", "-q", "--hard", "origin/master"}); !done) {
        return done.error();
    }
    if (auto done = git({"rev-parse", "HEAD"}, true); !done) {
        return done.error();
    }
    return head;
}

namespace {

Result<void> copy_content(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::error_code ec;
    std::filesystem::directory_iterator it(from, ec);
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        // Links are copied as links: a link in the web root must not pull in what it points at.
        std::filesystem::copy(it->path(), to / it->path().filename(),
                              std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks,
                              ec);
        if (ec) {
            return Error{"cannot copy " + it->path().string() + " to " + to.string() + ": " + ec.message()};
        }
    }
    if (ec) {
        return Error{from.string() + ": " + ec.message()};
    }
    return {};
}

} // namespace

std::filesystem::path initial_backup_path(const std::filesystem::path& target) {
    auto normal = target.lexically_normal();
    if (!normal.has_filename()) {
        normal = normal.parent_path();
    }
    return normal.parent_path() / (normal.filename().string() + "_backup");
}

Result<bool> back_up_initial_content(const std::filesystem::path& target) {
    std::error_code ec;
    if (std::filesystem::exists(target / ".git", ec)) {
        return false;
    }
    const auto backup = initial_backup_path(target);
    if (!std::filesystem::is_directory(backup, ec)) {
        return Error{backup.string() + ": no such folder (cartridge-agent --prepare-application-path creates it)"};
    }
    if (!std::filesystem::is_empty(backup, ec) || ec) {
        return false;
    }
    if (!std::filesystem::exists(target, ec)) {
        return false;
    }
    if (auto copied = copy_content(target, backup); !copied) {
        return copied.error();
    }
    return true;
}

Result<void> remove_deployment(const std::filesystem::path& target, bool restore) {
    std::error_code ec;
    std::vector<std::filesystem::path> entries;
    for (std::filesystem::directory_iterator it(target, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        entries.push_back(it->path());
    }
    if (ec) {
        return Error{target.string() + ": " + ec.message()};
    }
    for (const auto& entry : entries) {
        std::filesystem::remove_all(entry, ec);
        if (ec) {
            return Error{"cannot remove " + entry.string() + ": " + ec.message()};
        }
    }
    const auto backup = initial_backup_path(target);
    if (restore && std::filesystem::is_directory(backup, ec)) {
        return copy_content(backup, target);
    }
    return {};
}

} // namespace cartridge_agent
