#pragma once

#include "common.hpp"
#include "config.hpp"
#include "payload.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>

namespace cartridge_agent {

// What `cartridge-agent --prepare-application-path` hands to the service user.
struct ApplicationPathPlan {
    // APPLICATION_PATH itself: given to the user recursively, so a MULTITENANT agent can
    // also create the directories of tenants other than the payload's.
    std::filesystem::path base;
    // Where this instance's tenant is deployed (the base unless MULTITENANT=true).
    std::filesystem::path target;
    // enable.initial.artifact.backup: `<target>_backup`, created and handed over too (it
    // is outside `base` when the target is the base itself).
    std::optional<std::filesystem::path> backup;
};

// Resolves the deployment directory with the agent's rules (application.path, else the
// payload's APPLICATION_PATH, else the default; MULTITENANT tenant paths for the
// payload's TENANT_ID) and refuses, by their text, paths not below application.root.
// Nothing to prepare (no REPO_URL in the payload) is an empty optional.
Result<std::optional<ApplicationPathPlan>> plan_application_path(const AgentConfig& config, const PayloadMap& payload);

// Creates plan.target and gives plan.base and everything below it to uid:gid without
// following symbolic links. Checked again on disk: a base or parent that is a symbolic
// link leading out of application.root is refused before anything changes.
Result<void> prepare_application_path(const ApplicationPathPlan& plan, const std::filesystem::path& root, uid_t uid,
                                      gid_t gid);

} // namespace cartridge_agent
