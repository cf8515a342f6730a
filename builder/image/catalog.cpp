#include "image/catalog.hpp"

#include "util/fs.hpp"

namespace bi {

Expected<nlohmann::json> catalog_read(const fs::path& output_dir) {
  const fs::path file = output_dir / "catalog.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return nlohmann::json{{"images", nlohmann::json::array()}};
  }
  BI_TRY_ASSIGN(std::string text, read_file(file));
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.contains("images") || !j["images"].is_array()) {
      return fail(file.string(), "not a build-image catalog (no \"images\" list)");
    }
    return j;
  } catch (const std::exception& e) {
    return fail(file.string(), std::string("invalid JSON: ") + e.what());
  }
}

Expected<void> catalog_upsert(const fs::path& output_dir, const nlohmann::json& entry) {
  BI_TRY_ASSIGN(FileLock lock, FileLock::acquire(output_dir / ".catalog.lock"));
  BI_TRY_ASSIGN(nlohmann::json catalog, catalog_read(output_dir));
  auto& images = catalog["images"];
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& e : images) {
    if (e.value("name", "") != entry.value("name", "")) {
      kept.push_back(e);
    }
  }
  kept.push_back(entry);
  catalog["images"] = kept;
  return write_file_atomic(output_dir / "catalog.json", catalog.dump(2) + "\n");
}

Expected<fs::path> find_manifest(const fs::path& output_dir, const std::string& image) {
  std::error_code ec;
  fs::path p(image);
  if (fs::is_regular_file(p, ec)) {
    if (p.extension() == ".json") {
      return p;
    }
    fs::path m = p;
    m.replace_extension(".json");
    if (fs::is_regular_file(m, ec)) {
      return m;
    }
    return fail(image, "no manifest beside the image (expected " + m.string() + ")", ExitCode::bad_input);
  }
  BI_TRY_ASSIGN(nlohmann::json catalog, catalog_read(output_dir));
  std::vector<std::string> matches;
  for (const auto& e : catalog["images"]) {
    const std::string name = e.value("name", "");
    if (name == image) {
      matches = {e.value("manifest", "")};
      break;
    }
    if (name.rfind(image, 0) == 0) {
      matches.push_back(e.value("manifest", ""));
    }
  }
  if (matches.empty()) {
    return fail(image, "no such image (not a file, and not in " + (output_dir / "catalog.json").string() + ")",
                ExitCode::bad_input);
  }
  if (matches.size() > 1) {
    return fail(image, "ambiguous: matches " + std::to_string(matches.size()) + " images", ExitCode::bad_input);
  }
  fs::path m(matches[0]);
  return m.is_absolute() ? m : output_dir / m;
}

} // namespace bi
