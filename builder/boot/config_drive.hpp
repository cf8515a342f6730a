#pragma once
// An OpenStack-style config drive (an ISO 9660 volume labelled config-2) carrying the
// instance payload as openstack/latest/user_data, the way Nova hands it to a VM.
// cartridge-init finds it with `blkid -L config-2`.

#include <filesystem>
#include <map>
#include <string>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

struct ConfigDriveContent {
  std::string user_data; // the payload; may hold secrets, so it is written 0600 and never logged
  std::string uuid;      // meta_data.json "uuid": the instance id cartridge-init records
  std::string hostname;  // meta_data.json "hostname" / "name"
  // meta_data.json "public_keys": key pair name -> OpenSSH public key (Nova's layout).
  std::map<std::string, std::string> public_keys;
};

// The meta_data.json Nova would write for this instance.
std::string render_meta_data(const ConfigDriveContent& content);

// Writes `iso` (mode 0600) with xorriso. The staging tree is made under `work_dir` and
// removed again, so the payload exists only inside the image file.
Expected<void> make_config_drive(const fs::path& iso, const ConfigDriveContent& content, const fs::path& work_dir);

} // namespace bi
