#include "cli/cmd_register.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include <spdlog/fmt/fmt.h>

#include "image/catalog.hpp"
#include "net/credentials.hpp"
#include "register/cartridge.hpp"
#include "register/image_info.hpp"
#include "register/provider.hpp"
#include "util/fs.hpp"

namespace bi {

namespace {

using nlohmann::json;

Error usage(const std::string& detail) { return make_error("", detail, ExitCode::bad_input); }

struct Target {
  std::string cloud;
  std::string region;
};

// --to/--region, else the cartridge's iaas entries.
Expected<std::vector<Target>> targets_for(const BuiltImage& image, const std::string& to, const std::string& region) {
  BI_TRY_ASSIGN(json fields, registration::cartridge_fields(image.manifest));
  std::vector<Target> out;
  for (const auto& t : fields.value("iaas", json::array())) {
    const std::string type = t.value("type", "");
    if (to.empty() || type == to) {
      out.push_back({type, region.empty() ? t.value("region", "") : region});
    }
  }
  if (!to.empty() && out.empty()) {
    out.push_back({to, region}); // not in the YAML: region from --region or the credentials
  }
  if (out.empty()) {
    return fail(image.manifest.name,
                "the cartridge has no iaas targets: give --to " + registration::provider_names("|"),
                ExitCode::bad_input);
  }
  // Several entries of one cloud in the YAML with an explicit --region collapse to one.
  std::vector<Target> unique;
  for (const auto& t : out) {
    bool dup = false;
    for (const auto& u : unique) {
      dup = dup || (u.cloud == t.cloud && u.region == t.region);
    }
    if (!dup) {
      unique.push_back(t);
    }
  }
  return unique;
}

void print_id(const std::string& cloud_name, const std::string& region, const std::string& what,
              const std::string& id) {
  // stderr, at once: the IDs must be visible even when a later step fails.
  std::cerr << fmt::format("build-image: {} {}: {} {}\n", cloud_name, region, what, id) << std::flush;
}

Expected<registration::RegisterResult> register_one(const BuiltImage& image, const Target& target, bool json_output) {
  const net::Env env = net::process_env();
  std::unique_ptr<registration::TransferProgress> bar;
  if (!json_output && ::isatty(STDERR_FILENO)) {
    bar = std::make_unique<registration::TransferProgress>(
        STDERR_FILENO, fmt::format("{} -> {}{}{}", image.manifest.name, target.cloud, target.region.empty() ? "" : " ",
                                   target.region));
  }
  registration::RegisterEvents events;
  std::string region = target.region;
  events.on_id = [&](const std::string& what, const std::string& id) {
    if (bar) {
      bar->finish();
    }
    print_id(target.cloud, region, what, id);
  };
  events.on_progress = [&](std::uint64_t done, std::uint64_t total) {
    if (bar) {
      bar->update(done, total);
    }
  };
  struct BarEnd {
    registration::TransferProgress* bar;
    ~BarEnd() {
      if (bar) {
        bar->finish();
      }
    }
  } bar_end{bar.get()};

  const registration::Provider* provider = registration::find_provider(target.cloud);
  if (provider == nullptr) {
    return fail(target.cloud, fmt::format("unknown cloud (expected {})", registration::provider_names(" or ")),
                ExitCode::bad_input);
  }
  return registration::register_image(*provider, image, region, env, events);
}

json result_json(const registration::RegisterResult& r) {
  json j = {{"cloud", r.cloud},
            {"region", r.region},
            {"image_id", r.image_id},
            {"reused", r.reused},
            {"bytes_sent", r.bytes_sent},
            {"seconds", r.seconds},
            {"upload_seconds", r.upload_seconds},
            {"endpoint", r.endpoint}};
  if (const auto* provider = registration::find_provider(r.cloud)) {
    provider->result_fields(r, j);
  }
  return j;
}

std::string result_line(const BuiltImage& image, const registration::RegisterResult& r) {
  std::string how;
  if (r.reused) {
    how = "already registered, nothing uploaded";
  } else {
    const double rate = r.upload_seconds > 0 ? static_cast<double>(r.bytes_sent) / r.upload_seconds : 0;
    how = fmt::format("sent {} in {:.1f} s, {}", human_bytes(r.bytes_sent), r.upload_seconds,
                      registration::format_rate(rate));
    if (const auto* provider = registration::find_provider(r.cloud)) {
      how += provider->result_detail(r);
    }
  }
  return fmt::format("{}  {} {}  {}{}  ({})", image.manifest.name, r.cloud, r.region, r.region + "/", r.image_id, how);
}

// Registers one image with its targets; records and writes the cartridge JSON after each.
Expected<json> register_image(const fs::path& manifest, const std::string& to, const std::string& region,
                              bool json_output) {
  BI_TRY_ASSIGN(BuiltImage image, load_built_image(manifest));
  BI_TRY_ASSIGN(std::vector<Target> targets, targets_for(image, to, region));
  json out = json::array();
  for (const auto& t : targets) {
    BI_TRY_ASSIGN(registration::RegisterResult r, register_one(image, t, json_output));
    BI_TRY(registration::record_registration(manifest, r));
    out.push_back(result_json(r));
    if (!json_output) {
      std::cout << result_line(image, r) << "\n" << std::flush;
    }
  }
  // The cartridge definition beside the manifest, with every registration so far.
  BI_TRY_ASSIGN(Manifest recorded, read_manifest(manifest));
  std::vector<std::string> warnings;
  auto def = registration::cartridge_definition(recorded, &warnings);
  if (def) {
    BI_TRY(write_file_atomic(registration::cartridge_json_path(manifest), def->dump(2) + "\n"));
  }
  return out;
}

} // namespace

Expected<int> cmd_register(const RegisterArgs& args) {
  if (args.images.empty()) {
    return Unexpected{usage("register needs an image (a path or a name from the catalog)")};
  }
  if (!args.to.empty() && registration::find_provider(args.to) == nullptr) {
    return Unexpected{
        usage(fmt::format("invalid --to '{}': expected {}", args.to, registration::provider_names(" or ")))};
  }
  json all = json::array();
  for (const auto& image : args.images) {
    BI_TRY_ASSIGN(fs::path manifest, find_manifest(args.output_dir, image));
    BI_TRY_ASSIGN(json regs, register_image(manifest, args.to, args.region, args.json));
    all.push_back({{"manifest", manifest.string()},
                   {"cartridge_json", registration::cartridge_json_path(manifest).string()},
                   {"registrations", regs}});
  }
  if (args.json) {
    std::cout << json{{"ok", true}, {"images", all}}.dump(2) << "\n";
  }
  return 0;
}

Expected<int> cmd_cartridge_json(const RegisterArgs& args) {
  if (args.images.size() != 1) {
    return Unexpected{usage("cartridge-json takes one image (a path or a name from the catalog)")};
  }
  BI_TRY_ASSIGN(fs::path manifest, find_manifest(args.output_dir, args.images[0]));
  BI_TRY_ASSIGN(Manifest m, read_manifest(manifest));
  std::vector<std::string> warnings;
  BI_TRY_ASSIGN(json def, registration::cartridge_definition(m, &warnings));
  for (const auto& w : warnings) {
    std::cerr << "build-image: warning: " << w << "\n";
  }
  std::cout << def.dump(2) << "\n";
  return 0;
}

Expected<json> register_built_image(const fs::path& manifest, bool json_output) {
  return register_image(manifest, "", "", json_output);
}

} // namespace bi
