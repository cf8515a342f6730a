#include "register/provider.hpp"

#include <algorithm>
#include <cstdlib>

#include <spdlog/fmt/fmt.h>

#include "register/ec2.hpp"
#include "register/openstack.hpp"

namespace bi::cloud {

namespace {

// --region or the cartridge's iaas entry, else the credentials' region: a cloud needs one.
Expected<void> choose_region(std::string& region, const std::string& from_credentials, const std::string& cloud,
                             const char* variable) {
  if (region.empty()) {
    region = from_credentials;
  }
  if (region.empty()) {
    return fail(cloud, fmt::format("no region: give --region, an iaas entry in the cartridge, or {}", variable),
                ExitCode::bad_input);
  }
  return Ok{};
}

Expected<RegisterResult> register_with_openstack(const BuiltImage& image, std::string& region, const Env& env,
                                                 const RegisterEvents& events) {
  BI_TRY_ASSIGN(OpenStackAuth auth, load_openstack_auth(env));
  BI_TRY(choose_region(region, auth.region, "openstack", "OS_REGION_NAME"));
  GlanceOptions go;
  go.region = region;
  if (auto it = env.find("OS_IMAGE_URL"); it != env.end()) {
    go.image_url = it->second;
  }
  return register_openstack(image, auth, go, events);
}

Expected<RegisterResult> register_with_ec2(const BuiltImage& image, std::string& region, const Env& env,
                                           const RegisterEvents& events) {
  BI_TRY_ASSIGN(AwsConfig aws, load_aws_config(env));
  BI_TRY(choose_region(region, aws.region, "ec2", "AWS_REGION"));
  Ec2Options eo;
  eo.region = region;
  if (auto it = env.find("BUILD_IMAGE_EBS_WORKERS"); it != env.end()) {
    eo.workers = std::clamp(std::atoi(it->second.c_str()), 1, 64);
  }
  BI_TRY_ASSIGN(eo.consistency, ConsistencyPolicy::from_env(env));
  return register_ec2(image, aws, eo, events);
}

} // namespace

const std::vector<Provider>& providers() {
  static const std::vector<Provider> table = {
      {"openstack", register_with_openstack, [](const RegisterResult&, nlohmann::json&) {},
       [](const RegisterResult&) { return std::string(); }},
      {"ec2", register_with_ec2,
       [](const RegisterResult& r, nlohmann::json& j) {
         j["snapshot_id"] = r.snapshot_id;
         j["blocks_sent"] = r.blocks_sent;
         j["blocks_skipped"] = r.blocks_skipped;
       },
       [](const RegisterResult& r) {
         return fmt::format("; {} blocks sent, {} zero blocks skipped", r.blocks_sent, r.blocks_skipped);
       }},
  };
  return table;
}

const Provider* find_provider(const std::string& name) {
  for (const auto& p : providers()) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

std::string provider_names(const std::string& separator) {
  std::string out;
  for (const auto& p : providers()) {
    out += (out.empty() ? "" : separator) + p.name;
  }
  return out;
}

} // namespace bi::cloud
