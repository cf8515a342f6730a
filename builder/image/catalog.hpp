#pragma once
// The image catalog (`<output>/catalog.json`): one entry per built image, updated under a
// lock and replaced atomically, so concurrent builds and killed builds never break it.

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

// Adds or replaces the entry with the same "name".
Expected<void> catalog_upsert(const fs::path& output_dir, const nlohmann::json& entry);
Expected<nlohmann::json> catalog_read(const fs::path& output_dir);

// Finds an image by path, file name, or name prefix in the catalog; returns its manifest path.
Expected<fs::path> find_manifest(const fs::path& output_dir, const std::string& image);

} // namespace bi
