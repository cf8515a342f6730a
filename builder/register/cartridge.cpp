#include "register/cartridge.hpp"

#include <spdlog/fmt/fmt.h>

#include "cartridge/loader.hpp"
#include "image/catalog.hpp"
#include "register/provider.hpp"
#include "util/fs.hpp"
#include "util/time.hpp"

namespace bi::registration {

Expected<nlohmann::json> cartridge_fields(const Manifest& manifest) {
  using nlohmann::json;
  const json& plan = manifest.plan;
  if (plan.contains("stratos") && plan.contains("ports")) {
    json f = plan["stratos"];
    f["type"] = manifest.cartridge.empty() ? plan.value("cartridge", "") : manifest.cartridge;
    f["ports"] = plan["ports"];
    return f;
  }
  // A manifest from before the plan carried these fields: read the YAML it was built from.
  const std::string file = plan.value("file", "");
  if (file.empty()) {
    return fail(manifest.name, "no cartridge fields in the manifest and no cartridge file named", ExitCode::bad_input);
  }
  auto loaded = load_cartridge(file, LoadOptions{});
  if (!loaded.cartridge) {
    return fail(file, "the manifest predates cartridge fields and its cartridge file does not load (rebuild the image)",
                ExitCode::bad_input);
  }
  const Cartridge& c = *loaded.cartridge;
  json ports = json::array();
  for (const auto& p : c.ports) {
    ports.push_back({{"name", p.name}, {"protocol", p.protocol}, {"port", p.port}, {"proxy_port", p.proxy_port}});
  }
  json iaas = json::array();
  for (const auto& t : c.iaas) {
    iaas.push_back({{"type", t.type}, {"region", t.region}, {"properties", t.properties}});
  }
  return json{{"type", c.type},       {"display_name", c.display_name}, {"description", c.description},
              {"version", c.version}, {"category", c.category},         {"provider", c.provider},
              {"host", c.host},       {"multi_tenant", c.multi_tenant}, {"iaas", iaas},
              {"ports", ports}};
}

Expected<nlohmann::json> cartridge_definition(const Manifest& manifest, std::vector<std::string>* warnings) {
  using nlohmann::json;
  BI_TRY_ASSIGN(json f, cartridge_fields(manifest));
  const json& regs = manifest.registrations;
  json def;
  def["type"] = f.value("type", "");
  def["provider"] = f.value("provider", "");
  def["category"] = f.value("category", "framework");
  def["host"] = f.value("host", "");
  def["displayName"] = f.value("display_name", "").empty() ? def["type"] : f["display_name"];
  def["description"] = f.value("description", "");
  def["version"] = f.value("version", "");
  def["multiTenant"] = f.value("multi_tenant", false);
  json ports = json::array();
  for (const auto& p : f.value("ports", json::array())) {
    ports.push_back({{"name", p.value("name", "")},
                     {"protocol", p.value("protocol", "http")},
                     {"port", p.value("port", 0)},
                     {"proxyPort", p.value("proxy_port", 0)}});
  }
  def["portMapping"] = ports;

  json providers = json::array();
  std::vector<std::pair<std::string, std::string>> listed;
  auto add = [&](const std::string& type, const std::string& region, const json& properties) {
    listed.emplace_back(type, region);
    const json reg = regs.value(type, json::object()).value(region, json::object());
    const std::string id = reg.value("image_id", "");
    if (id.empty()) {
      if (warnings != nullptr) {
        warnings->push_back(fmt::format("{} {}: not registered (build-image register {} --to {} --region {})", type,
                                        region, manifest.name, type, region));
      }
      return;
    }
    json props = json::array();
    for (const auto& [k, v] : properties.items()) {
      props.push_back({{"name", k}, {"value", v}});
    }
    providers.push_back({{"type", type}, {"imageId", region + "/" + id}, {"property", props}});
  };
  for (const auto& t : f.value("iaas", json::array())) {
    add(t.value("type", ""), t.value("region", ""), t.value("properties", json::object()));
  }
  for (const auto& [type, by_region] : regs.items()) {
    for (const auto& [region, reg] : by_region.items()) {
      if (std::find(listed.begin(), listed.end(), std::make_pair(type, region)) == listed.end()) {
        add(type, region, json::object());
      }
    }
  }
  if (providers.empty()) {
    return fail(manifest.name,
                "not registered with any IaaS yet (run: build-image register IMAGE --to " + provider_names("|") + ")",
                ExitCode::bad_input);
  }
  def["iaasProvider"] = providers;
  return def;
}

std::filesystem::path cartridge_json_path(const std::filesystem::path& manifest_path) {
  auto p = manifest_path;
  p.replace_extension(".cartridge.json");
  return p;
}

Expected<void> record_registration(const std::filesystem::path& manifest_path, const RegisterResult& result) {
  const fs::path dir = manifest_path.parent_path().empty() ? fs::path(".") : manifest_path.parent_path();
  BI_TRY_ASSIGN(FileLock lock, FileLock::acquire(dir / ".catalog.lock"));
  BI_TRY_ASSIGN(Manifest manifest, read_manifest(manifest_path));
  nlohmann::json reg = {{"image_id", result.image_id}, {"endpoint", result.endpoint}, {"registered", utc_timestamp()}};
  if (!result.snapshot_id.empty()) {
    reg["snapshot_id"] = result.snapshot_id;
  }
  manifest.registrations[result.cloud][result.region] = reg;
  BI_TRY(write_manifest(manifest_path, manifest));

  BI_TRY_ASSIGN(nlohmann::json catalog, catalog_read(dir));
  bool found = false;
  for (auto& e : catalog["images"]) {
    if (e.value("name", "") == manifest.name) {
      e["registrations"] = manifest.registrations;
      found = true;
    }
  }
  if (found) {
    BI_TRY(write_file_atomic(dir / "catalog.json", catalog.dump(2) + "\n"));
  }
  return Ok{};
}

} // namespace bi::registration
