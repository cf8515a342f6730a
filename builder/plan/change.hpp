#pragma once
// Which changed repository files affect which image (`plan --since REV`: a CI job matrix).

#include <filesystem>
#include <string>

#include "plan/plan.hpp"

namespace bi {

// Why a change to `path` (relative to the repository `repo`) affects the image of `plan`,
// or "" when it does not.
std::string change_reason(const std::string& path, const Plan& plan, const std::filesystem::path& repo);

} // namespace bi
