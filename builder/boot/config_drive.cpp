#include "boot/config_drive.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi {

std::string render_meta_data(const ConfigDriveContent& c) {
  nlohmann::json j = {
      {"uuid", c.uuid},    {"name", c.hostname},          {"hostname", c.hostname},
      {"launch_index", 0}, {"availability_zone", "nova"},
  };
  if (!c.public_keys.empty()) {
    j["public_keys"] = nlohmann::json::object();
    for (const auto& [name, key] : c.public_keys) {
      j["public_keys"][name] = key + "\n"; // Nova's values end in a newline
    }
  }
  return j.dump(2) + "\n";
}

Expected<void> make_config_drive(const fs::path& iso, const ConfigDriveContent& content, const fs::path& work_dir) {
  BI_TRY_ASSIGN(TempDir staging, TempDir::create(work_dir, ".config-drive-"));
  const fs::path latest = staging.path() / "openstack" / "latest";
  std::error_code ec;
  fs::create_directories(latest, ec);
  if (ec) {
    return fail(latest.string(), "cannot create: " + ec.message());
  }
  BI_TRY(write_file_atomic(latest / "user_data", content.user_data, 0600));
  BI_TRY(write_file_atomic(latest / "meta_data.json", render_meta_data(content), 0644));
  fs::remove(iso, ec);
  RunOptions ro;
  ro.timeout = std::chrono::seconds(60);
  // Rock Ridge for the names cartridge-init reads, Joliet for Windows-style readers; the
  // volume label is what makes it a config drive.
  auto r = run_checked({"xorriso", "-as", "mkisofs", "-quiet", "-V", "config-2", "-r", "-J", "-o", iso.string(),
                        staging.path().string()},
                       ro);
  if (!r) {
    return Unexpected{r.error()};
  }
  if (::chmod(iso.c_str(), 0600) != 0) {
    return fail(iso.string(), "cannot chmod the config drive");
  }
  return Ok{};
}

} // namespace bi
