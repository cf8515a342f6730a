#pragma once
// The image manifest (`<name>.json` beside the image): what was built, from which inputs,
// with which layers, packages and phase times. One struct and one reader/writer; the
// builder, the catalog, `inspect`, registration and boot-test all go through it.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

struct PhaseRecord {
  std::string name;
  double seconds = 0;
  std::string note;
};

struct Manifest {
  // 1: the first versioned manifest. Manifests written before versioning carry no
  // schema_version; they are read when they have the keys every reader needs.
  static constexpr int k_schema_version = 1;

  int schema_version = k_schema_version;
  std::string name;
  std::string file; // the image file name, beside the manifest
  std::string format;
  std::string cartridge;
  std::string mode;
  std::string tool_version;
  std::string inputs_key;
  std::string sha256;
  std::string sha512;
  std::uint64_t virtual_size = 0;
  std::uint64_t file_size = 0;
  std::map<std::string, std::string> layers;   // layer kind -> cache key
  std::map<std::string, std::string> packages; // installed package -> version
  // For the build report: dpkg's Installed-Size (KiB) of each package, and the bytes of
  // regular files under each top-level folder of the root filesystem. Absent from
  // manifests written before them.
  std::map<std::string, std::uint64_t> package_sizes_kib;
  std::map<std::string, std::uint64_t> tree_sizes;
  double build_seconds = 0;
  std::vector<PhaseRecord> phases;
  int appliance_launches = 0;
  std::string created;
  nlohmann::json plan = nlohmann::json::object();          // Plan::to_json() of the build
  nlohmann::json registrations = nlohmann::json::object(); // cloud -> region -> {image_id, ...}

  // The cartridge's ports as the plan recorded them (empty for manifests that predate it).
  std::vector<int> ports() const;
  // base.firmware (bios | uefi | hybrid) and base.secure_boot from the embedded plan;
  // "bios" and false for manifests written before images had a choice (all were BIOS).
  std::string firmware() const;
  // base.os of the embedded plan (debian-12, debian-13; "image" for a base.image build);
  // "debian-12" for manifests written before there was a choice.
  std::string os() const;
  // The cartridge's login user (YAML `login.user`), "root" for manifests without it.
  std::string login_user() const;
  bool secure_boot() const;
  // The layer key of `kind`, or "" when the image has no such layer.
  std::string layer(const std::string& kind) const;

  nlohmann::json to_json() const;
  // `source` names the manifest in errors (a file path).
  static Expected<Manifest> from_json(const nlohmann::json& j, const std::string& source);
  // The catalog's entry for this image (`manifest_file`: the manifest's file name).
  nlohmann::json catalog_entry(const std::string& manifest_file) const;
};

Expected<Manifest> read_manifest(const fs::path& path);
Expected<void> write_manifest(const fs::path& path, const Manifest& manifest);

// A built image: its manifest and the disk file the manifest names, checked to be there
// with the recorded size (not re-hashed: uploads hash while streaming and compare).
struct BuiltImage {
  fs::path image;
  fs::path manifest_path;
  Manifest manifest;
};
Expected<BuiltImage> load_built_image(const fs::path& manifest_path);

} // namespace bi
