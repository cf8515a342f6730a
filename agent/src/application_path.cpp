#include "application_path.hpp"

#include "artifacts.hpp"

#include <cerrno>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace cartridge_agent {
namespace {

// Component-wise, so /var/www2 is not "inside" /var/www.
bool is_within(const std::filesystem::path& path, const std::filesystem::path& root) {
    auto p = path.begin();
    for (auto r = root.begin(); r != root.end(); ++r, ++p) {
        if (r->empty()) {
            continue; // a trailing slash in root
        }
        if (p == path.end() || *p != *r) {
            return false;
        }
    }
    return true;
}

Result<void> check_within(const std::filesystem::path& path, const std::filesystem::path& root, std::string_view what) {
    if (!path.is_absolute() || !is_within(path.lexically_normal(), root.lexically_normal())) {
        return Error{std::string(what) + " '" + path.string() + "' is outside application.root '" + root.string() +
                     "'; refusing to hand it to the agent"};
    }
    return {};
}

Result<void> change_owner(const std::filesystem::path& path, uid_t uid, gid_t gid) {
    if (::lchown(path.c_str(), uid, gid) != 0) {
        return Error{path.string() +
                     ": cannot change owner: " + std::error_code(errno, std::generic_category()).message()};
    }
    return {};
}

// The iterator does not descend into symbolic links to directories, and lchown changes a
// link, never what it points at.
Result<void> change_owner_recursively(const std::filesystem::path& top, uid_t uid, gid_t gid) {
    if (auto owned = change_owner(top, uid, gid); !owned) {
        return owned;
    }
    std::error_code error;
    std::filesystem::recursive_directory_iterator it(top, error);
    for (; !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
        if (auto owned = change_owner(it->path(), uid, gid); !owned) {
            return owned;
        }
    }
    if (error) {
        return Error{top.string() + ": " + error.message()};
    }
    return {};
}

} // namespace

Result<std::optional<ApplicationPathPlan>> plan_application_path(const AgentConfig& config, const PayloadMap& payload) {
    if (!payload_value(payload, "REPO_URL")) {
        return std::optional<ApplicationPathPlan>{};
    }
    ApplicationPathPlan plan;
    plan.base = config.application_path.lexically_normal();
    const RepositoryLayout layout{plan.base, payload_value(payload, "MULTITENANT") == "true",
                                  config.super_tenant_repository_path, config.tenant_repository_path};
    plan.target = repository_path(layout, payload_value(payload, "TENANT_ID").value_or("-1234")).lexically_normal();
    if (auto inside = check_within(plan.base, config.application_root, "APPLICATION_PATH"); !inside) {
        return inside.error();
    }
    if (auto inside = check_within(plan.target, config.application_root, "tenant repository path"); !inside) {
        return inside.error();
    }
    if (config.initial_artifact_backup) {
        plan.backup = initial_backup_path(plan.target);
        if (auto inside = check_within(*plan.backup, config.application_root, "initial artifact backup path");
            !inside) {
            return inside.error();
        }
    }
    return std::optional<ApplicationPathPlan>{std::move(plan)};
}

Result<void> prepare_application_path(const ApplicationPathPlan& plan, const std::filesystem::path& root, uid_t uid,
                                      gid_t gid) {
    std::error_code error;
    const auto real_root = std::filesystem::weakly_canonical(root, error);
    if (error) {
        return Error{root.string() + ": " + error.message()};
    }
    // Before creating anything: a symbolic link among the existing parents must not lead
    // the creation (and the hand-over) out of the root.
    std::vector<std::filesystem::path> checked = {plan.base, plan.target};
    if (plan.backup) {
        checked.push_back(*plan.backup);
    }
    for (const auto& path : checked) {
        const auto real = std::filesystem::weakly_canonical(path, error);
        if (error) {
            return Error{path.string() + ": " + error.message()};
        }
        if (auto inside = check_within(real, real_root, "APPLICATION_PATH (resolved)"); !inside) {
            return inside.error();
        }
    }
    if (std::filesystem::is_symlink(std::filesystem::symlink_status(plan.base, error))) {
        return Error{"APPLICATION_PATH '" + plan.base.string() +
                     "' is a symbolic link; refusing to hand it to the agent"};
    }
    std::filesystem::create_directories(plan.target, error);
    if (error) {
        return Error{plan.target.string() + ": cannot create: " + error.message()};
    }
    if (plan.backup) {
        if (std::filesystem::is_symlink(std::filesystem::symlink_status(*plan.backup, error))) {
            return Error{"initial artifact backup path '" + plan.backup->string() +
                         "' is a symbolic link; refusing to hand it to the agent"};
        }
        std::filesystem::create_directories(*plan.backup, error);
        if (error) {
            return Error{plan.backup->string() + ": cannot create: " + error.message()};
        }
        if (auto owned = change_owner_recursively(*plan.backup, uid, gid); !owned) {
            return owned;
        }
    }
    return change_owner_recursively(plan.base, uid, gid);
}

} // namespace cartridge_agent
