#include "image/manifest.hpp"

#include <spdlog/fmt/fmt.h>

#include "util/fs.hpp"

namespace bi {

namespace {

using nlohmann::json;

// The keys every reader of a manifest relies on: without them it is not one of ours.
constexpr const char* k_required[] = {"name", "file", "format", "inputs_key", "sha256"};

} // namespace

std::vector<int> Manifest::ports() const {
  std::vector<int> out;
  if (auto p = plan.find("ports"); p != plan.end() && p->is_array()) {
    for (const auto& e : *p) {
      if (e.is_number_integer()) {
        out.push_back(e.get<int>());
      } else if (e.is_object() && e.contains("port")) {
        out.push_back(e["port"].get<int>());
      }
    }
  }
  return out;
}

namespace {
// plan.layers.base.<key>, or null.
const json& base_layer_field(const json& plan, const char* key) {
  static const json none;
  const auto layers = plan.find("layers");
  if (layers == plan.end() || !layers->is_object()) {
    return none;
  }
  const auto base = layers->find("base");
  if (base == layers->end() || !base->is_object()) {
    return none;
  }
  const auto v = base->find(key);
  return v == base->end() ? none : *v;
}
} // namespace

std::string Manifest::firmware() const {
  const json& v = base_layer_field(plan, "firmware");
  return v.is_string() ? v.get<std::string>() : "bios";
}

std::string Manifest::os() const {
  const json& v = base_layer_field(plan, "os");
  return v.is_string() && !v.get<std::string>().empty() ? v.get<std::string>() : "debian-12";
}

std::string Manifest::login_user() const {
  const auto login = plan.find("login");
  if (login != plan.end() && login->is_object()) {
    const auto user = login->find("user");
    if (user != login->end() && user->is_string() && !user->get<std::string>().empty()) {
      return user->get<std::string>();
    }
  }
  return "root";
}

bool Manifest::secure_boot() const {
  const json& v = base_layer_field(plan, "secure_boot");
  return v.is_boolean() && v.get<bool>();
}

std::string Manifest::layer(const std::string& kind) const {
  const auto it = layers.find(kind);
  return it == layers.end() ? "" : it->second;
}

json Manifest::to_json() const {
  json package_list = json::array();
  for (const auto& [pkg, version] : packages) {
    json entry = {{"name", pkg}, {"version", version}};
    if (const auto size = package_sizes_kib.find(pkg); size != package_sizes_kib.end()) {
      entry["installed_size_kib"] = size->second;
    }
    package_list.push_back(std::move(entry));
  }
  json phase_list = json::array();
  for (const auto& p : phases) {
    phase_list.push_back({{"name", p.name}, {"seconds", p.seconds}, {"note", p.note}});
  }
  json j = {
      {"schema_version", schema_version},
      {"name", name},
      {"file", file},
      {"format", format},
      {"cartridge", cartridge},
      {"mode", mode},
      {"tool_version", tool_version},
      {"inputs_key", inputs_key},
      {"sha256", sha256},
      {"sha512", sha512},
      {"virtual_size", virtual_size},
      {"file_size", file_size},
      {"layers", layers},
      {"packages", package_list},
      {"build_seconds", build_seconds},
      {"phases", phase_list},
      {"appliance_launches", appliance_launches},
      {"created", created},
      {"plan", plan},
  };
  if (!tree_sizes.empty()) {
    j["tree_sizes"] = tree_sizes;
  }
  if (!registrations.empty()) {
    j["registrations"] = registrations;
  }
  return j;
}

Expected<Manifest> Manifest::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) {
    return fail(source, "not a build-image manifest (not a JSON object)", ExitCode::bad_input);
  }
  Manifest m;
  m.schema_version = j.value("schema_version", 0);
  if (m.schema_version > k_schema_version) {
    return fail(source,
                fmt::format("manifest schema_version {} is newer than this build-image reads ({}): update build-image",
                            m.schema_version, k_schema_version),
                ExitCode::bad_input);
  }
  for (const char* key : k_required) {
    if (!j.contains(key) || !j[key].is_string()) {
      return fail(
          source,
          fmt::format("not a build-image manifest: no \"{}\"{}", key,
                      m.schema_version == 0 ? " (written before manifests were versioned: rebuild the image)" : ""),
          ExitCode::bad_input);
    }
  }
  try {
    m.name = j.at("name").get<std::string>();
    m.file = j.at("file").get<std::string>();
    m.format = j.at("format").get<std::string>();
    m.inputs_key = j.at("inputs_key").get<std::string>();
    m.sha256 = j.at("sha256").get<std::string>();
    m.cartridge = j.value("cartridge", "");
    m.mode = j.value("mode", "");
    m.tool_version = j.value("tool_version", "");
    m.sha512 = j.value("sha512", "");
    m.virtual_size = j.value("virtual_size", std::uint64_t{0});
    m.file_size = j.value("file_size", std::uint64_t{0});
    m.layers = j.value("layers", std::map<std::string, std::string>{});
    for (const auto& p : j.value("packages", json::array())) {
      const auto package = p.at("name").get<std::string>();
      m.packages[package] = p.value("version", "");
      if (p.contains("installed_size_kib")) {
        m.package_sizes_kib[package] = p.at("installed_size_kib").get<std::uint64_t>();
      }
    }
    m.tree_sizes = j.value("tree_sizes", std::map<std::string, std::uint64_t>{});
    m.build_seconds = j.value("build_seconds", 0.0);
    for (const auto& p : j.value("phases", json::array())) {
      m.phases.push_back({p.at("name").get<std::string>(), p.value("seconds", 0.0), p.value("note", "")});
    }
    m.appliance_launches = j.value("appliance_launches", 0);
    m.created = j.value("created", "");
    m.plan = j.value("plan", json::object());
    m.registrations = j.value("registrations", json::object());
  } catch (const std::exception& e) {
    return fail(source, std::string("not a build-image manifest: ") + e.what(), ExitCode::bad_input);
  }
  // Read as the current version: the next write records it.
  m.schema_version = k_schema_version;
  return m;
}

json Manifest::catalog_entry(const std::string& manifest_file) const {
  json entry = {{"name", name},       {"file", file},     {"manifest", manifest_file}, {"cartridge", cartridge},
                {"mode", mode},       {"format", format}, {"sha256", sha256},          {"file_size", file_size},
                {"created", created}, {"os", os()}};
  if (!registrations.empty()) {
    entry["registrations"] = registrations;
  }
  return entry;
}

Expected<Manifest> read_manifest(const fs::path& path) {
  BI_TRY_ASSIGN(std::string text, read_file(path));
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return fail(path.string(), std::string("invalid manifest: ") + e.what(), ExitCode::bad_input);
  }
  return Manifest::from_json(j, path.string());
}

Expected<void> write_manifest(const fs::path& path, const Manifest& manifest) {
  return write_file_atomic(path, manifest.to_json().dump(2) + "\n");
}

Expected<BuiltImage> load_built_image(const fs::path& manifest_path) {
  BuiltImage b;
  b.manifest_path = manifest_path;
  BI_TRY_ASSIGN(b.manifest, read_manifest(manifest_path));
  b.image = manifest_path.parent_path() / b.manifest.file;
  std::error_code ec;
  const auto size = fs::file_size(b.image, ec);
  if (ec) {
    return fail(b.image.string(), "the image named by the manifest is missing: " + ec.message(), ExitCode::bad_input);
  }
  if (b.manifest.file_size != 0 && size != b.manifest.file_size) {
    return fail(b.image.string(),
                fmt::format("size {} differs from the manifest's {}: the file changed after the build", size,
                            b.manifest.file_size),
                ExitCode::bad_input);
  }
  b.manifest.file_size = size;
  return b;
}

} // namespace bi
