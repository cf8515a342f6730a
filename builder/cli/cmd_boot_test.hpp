#pragma once
// `build-image boot-test IMAGE`: checks the command line, runs the boot test and prints
// its report. Kept out of cli.cpp, which only maps options to this structure.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace bi {

struct BootTestCommand {
  std::vector<std::string> args; // exactly one: the image
  bool json = false;
  std::optional<std::string> payload; // --payload FILE
  std::optional<std::string> timeout; // --timeout SECONDS
  std::optional<std::string> broker;  // --broker HOST:PORT
  std::vector<std::string> forwards;  // --forward GUEST_IP:PORT=HOST_PORT (repeatable)
  std::filesystem::path output_dir;   // where image names are looked up
  std::filesystem::path cache_dir;    // KVM probe verdict
  // Playing the Stratos servers (boot/stratos_servers.hpp).
  std::optional<std::string> app_repo;       // --app-repo DIR
  std::optional<std::string> expect_content; // --expect-content TEXT
  std::optional<std::string> until;          // --until login|activated|shutdown
  bool no_stratos = false;                   // --no-stratos
  std::optional<std::string> firmware;       // --firmware bios|uefi|uefi-secure

  // The instance's disk and login: --disk-bus, --disk-size, --ssh-key FILE.pub.
  std::optional<std::string> disk_bus, disk_size, ssh_key;
};

// 0 passed, 1 failed; errors carry their own exit code (2 usage, 3 host missing).
Expected<int> cmd_boot_test(const BootTestCommand& command);

} // namespace bi
