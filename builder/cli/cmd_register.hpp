#pragma once
// `build-image register IMAGE... [--to openstack|ec2] [--region R] [--json]`,
// `build-image cartridge-json IMAGE`, and `--register` after a build.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/expected.hpp"

namespace bi {

struct RegisterArgs {
  std::vector<std::string> images; // paths, file names or catalog names
  std::filesystem::path output_dir = "images";
  std::string to;     // openstack | ec2 | "" (every iaas target of the cartridge)
  std::string region; // "" = the cartridge's, else the credentials'
  bool json = false;
};

Expected<int> cmd_register(const RegisterArgs& args);
Expected<int> cmd_cartridge_json(const RegisterArgs& args);

// After a build with --register: registers `manifest` with every iaas target of its
// cartridge; returns the registrations as JSON (for the build's --json result).
Expected<nlohmann::json> register_built_image(const std::filesystem::path& manifest, bool json_output);

} // namespace bi
