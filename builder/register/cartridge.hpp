#pragma once
// The Stratos cartridge definition (what is POSTed to /api/cartridges) from an image's
// manifest, with imageId in jclouds' region/id form; and recording registered IDs in the
// manifest and catalog.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "register/image_info.hpp"
#include "util/expected.hpp"

namespace bi::registration {

// The cartridge fields of the manifest's plan ("stratos" + "ports"); older manifests
// without them are completed from the cartridge YAML named in the plan.
Expected<nlohmann::json> cartridge_fields(const Manifest& manifest);

// The definition. iaasProvider has one entry per YAML `iaas` target that is registered
// (plus registered targets the YAML does not list); each unregistered target adds a line
// to `warnings`. Fails (exit 2) when no target is registered.
Expected<nlohmann::json> cartridge_definition(const Manifest& manifest, std::vector<std::string>* warnings);

// Records `result` under manifest["registrations"][cloud][region] and in the catalog entry
// of the same name: both rewritten atomically under the catalog lock.
Expected<void> record_registration(const std::filesystem::path& manifest_path, const RegisterResult& result);

// <dir>/<name>.cartridge.json beside the manifest.
std::filesystem::path cartridge_json_path(const std::filesystem::path& manifest_path);

} // namespace bi::registration
