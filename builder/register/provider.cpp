#include "register/provider.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <spdlog/fmt/fmt.h>

#include "register/ec2.hpp"
#include "register/openstack.hpp"

namespace bi::registration {

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

// The session's registration is deleted unless released: every failure after the upload
// leaves nothing half-made (or, where the cloud keeps uploads reusable, says so).
class UploadGuard {
public:
  UploadGuard(CloudSession& session, std::string id) : m_session(session), m_id(std::move(id)) {}
  ~UploadGuard() {
    if (!m_id.empty()) {
      m_session.remove_upload(m_id);
    }
  }
  void release() { m_id.clear(); }
  UploadGuard(const UploadGuard&) = delete;
  UploadGuard& operator=(const UploadGuard&) = delete;

private:
  CloudSession& m_session;
  std::string m_id;
};

Expected<std::unique_ptr<CloudSession>> connect_openstack(std::string& region, const net::Env& env) {
  BI_TRY_ASSIGN(net::OpenStackAuth auth, net::load_openstack_auth(env));
  BI_TRY(choose_region(region, auth.region, "openstack", "OS_REGION_NAME"));
  GlanceOptions go;
  go.region = region;
  if (auto it = env.find("OS_IMAGE_URL"); it != env.end()) {
    go.image_url = it->second;
  }
  return open_glance_session(auth, go);
}

Expected<std::unique_ptr<CloudSession>> connect_ec2(std::string& region, const net::Env& env) {
  BI_TRY_ASSIGN(net::AwsConfig aws, net::load_aws_config(env));
  BI_TRY(choose_region(region, aws.region, "ec2", "AWS_REGION"));
  Ec2Options eo;
  eo.region = region;
  if (auto it = env.find("BUILD_IMAGE_EBS_WORKERS"); it != env.end()) {
    eo.workers = std::clamp(std::atoi(it->second.c_str()), 1, 64);
  }
  BI_TRY_ASSIGN(eo.consistency, ConsistencyPolicy::from_env(env));
  return open_ec2_session(std::move(aws), eo);
}

} // namespace

const std::vector<Provider>& providers() {
  static const std::vector<Provider> table = {
      {"openstack", "glance image", connect_openstack, [](const RegisterResult&, nlohmann::json&) {},
       [](const RegisterResult&) { return std::string(); }},
      {"ec2", "ami", connect_ec2,
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

Expected<RegisterResult> register_image(const Provider& provider, const BuiltImage& image, std::string& region,
                                        const net::Env& env, const RegisterEvents& events) {
  const auto start = std::chrono::steady_clock::now();
  RegisterResult result;
  result.cloud = provider.name;
  BI_TRY(check_self_contained(image));
  BI_TRY_ASSIGN(std::unique_ptr<CloudSession> session, provider.connect(region, env));
  result.region = region;
  result.endpoint = session->endpoint();
  const auto finish = [&](const std::string& what, const std::string& id) {
    result.image_id = id;
    events.id(what, id);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  };

  BI_TRY_ASSIGN(std::string existing, session->find_registered(image, events));
  if (!existing.empty()) {
    result.reused = true;
    return finish(provider.image_noun + " (already registered)", existing);
  }
  BI_TRY_ASSIGN(std::string upload_id, session->upload(image, events, result));
  UploadGuard guard(*session, upload_id);
  BI_TRY_ASSIGN(std::string id, session->register_upload(image, upload_id, result));
  guard.release();
  return finish(provider.image_noun, id);
}

std::string provider_names(const std::string& separator) {
  std::string out;
  for (const auto& p : providers()) {
    out += (out.empty() ? "" : separator) + p.name;
  }
  return out;
}

} // namespace bi::registration
