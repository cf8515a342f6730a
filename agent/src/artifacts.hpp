#pragma once

#include "common.hpp"
#include "process.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace cartridge_agent {

// A repository URL with any user:password@ taken out: what is logged, written to
// .git/config and put on git's command line.
struct RepositoryUrl {
    std::string url;
    std::optional<std::string> user;
    std::optional<std::string> password;
};
RepositoryUrl split_url_credentials(std::string_view url);

struct RepositoryCredentials {
    std::string user;
    std::string password;
};

// Where a tenant's artifacts go (the Python agent's get_repo_path_for_tenant).
struct RepositoryLayout {
    std::filesystem::path application_path;
    bool multitenant = false;
    std::string super_tenant_path = "/repository/deployment/server/";
    std::string tenant_path = "/repository/tenants/";
};
std::filesystem::path repository_path(const RepositoryLayout& layout, std::string_view tenant_id);

// git's environment: credentials only as an environment-only config entry
// (GIT_CONFIG_COUNT/KEY/VALUE, http.extraHeader with HTTP Basic), so they never reach
// argv (visible in ps), .git/config or a file; no terminal prompt; any owner of the
// target directory accepted.
std::map<std::string, std::string> git_environment(const std::map<std::string, std::string>& base,
                                                   const std::optional<RepositoryCredentials>& credentials);

struct GitDeployment {
    std::filesystem::path git = "/usr/bin/git";
    std::filesystem::path target;
    // Without credentials.
    std::string url;
    std::optional<RepositoryCredentials> credentials;
    std::map<std::string, std::string> base_environment;
    std::chrono::milliseconds timeout{std::chrono::minutes{5}};
};

// One attempt: makes `target` a checkout of the remote's master. The first time it is
// initialised in place (files already there stay unless the repository has them, like
// the Python agent's copy over the web root, but without a temporary clone); later
// times fetch and hard-reset, so local edits cannot block an update. Returns the
// deployed commit.
Result<std::string> deploy_repository(const GitDeployment& deployment, const IdleFunction& idle);

// `<target>_backup`: where the image's own content of a deployment folder is kept
// (enable.initial.artifact.backup), as the Python agent names it.
std::filesystem::path initial_backup_path(const std::filesystem::path& target);

// Before the first deployment into `target` (no .git yet): copies its content into the
// backup folder, which must exist (--prepare-application-path creates it) and be empty,
// so a restarted agent never overwrites the image's content with an application's.
// Returns whether anything was copied.
Result<bool> back_up_initial_content(const std::filesystem::path& target);

// What an ApplicationSignUpRemovedEvent undoes: everything in `target` goes (the
// checkout, .git included); with `restore`, the backup's content comes back. The folder
// itself stays, so the web server's document root keeps existing.
Result<void> remove_deployment(const std::filesystem::path& target, bool restore);

} // namespace cartridge_agent
