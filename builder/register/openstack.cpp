#include "register/openstack.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "cartridge/os_release.hpp"
#include "net/http.hpp"
#include "register/provider.hpp"
#include "util/hash.hpp"
#include "util/undo.hpp"

namespace bi::registration {

namespace {

using Clock = std::chrono::steady_clock;

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  return s;
}

std::string v3_url(const std::string& auth_url) {
  std::string u = strip_slash(auth_url);
  if (u.size() < 3 || u.substr(u.size() - 3) != "/v3") {
    u += "/v3";
  }
  return u;
}

// Glance endpoints are published with or without the version; we add /v2 ourselves.
std::string glance_base(const std::string& endpoint) {
  std::string u = strip_slash(endpoint);
  if (u.size() >= 3 && u.substr(u.size() - 3) == "/v2") {
    u.resize(u.size() - 3);
  }
  return u;
}

Expected<nlohmann::json> parse_json(const std::string& what, std::string_view body) {
  // Without exceptions: a discarded value is the parse error; depth is bounded by the
  // 64 MiB response cap of the HTTP layer.
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    return fail(what, "invalid JSON in the response");
  }
  return j;
}

// A string member of an object, or "" when the value is not an object, the member is
// missing or it is not a string (a server's odd answer is not a crash).
std::string string_member(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) {
    return "";
  }
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

Expected<GlanceImage> glance_image_from(const std::string& what, const nlohmann::json& j) {
  if (!j.is_object()) {
    return fail(what, "the image in Glance's response is not a JSON object");
  }
  GlanceImage image{string_member(j, "id"), string_member(j, "status"), string_member(j, "os_hash_algo"),
                    string_member(j, "os_hash_value")};
  if (!net::valid_resource_id(image.id)) {
    return fail(what, image.id.empty()
                          ? "Glance returned no image id"
                          : fmt::format("Glance returned an invalid image id '{}'", image.id.substr(0, 64)));
  }
  return image;
}

class Glance {
public:
  Glance(std::string base, std::string token) : m_base(std::move(base)), m_token(std::move(token)) {}

  net::HttpRequest request(const std::string& method, const std::string& path, std::string body = "") const {
    net::HttpRequest r;
    r.method = method;
    r.url = m_base + path;
    r.headers = {{"X-Auth-Token", m_token}, {"Accept", "application/json"}};
    if (!body.empty()) {
      r.headers.emplace_back("Content-Type", "application/json");
    }
    r.body = std::move(body);
    r.timeout = std::chrono::seconds(60);
    return r;
  }

  // The response body of a request answered with one of the `ok` statuses.
  Expected<std::string> call(const std::string& method, const std::string& path, std::string body,
                             std::initializer_list<long> ok, bool cleanup = false) const {
    net::HttpRequest req = request(method, path, std::move(body));
    req.cleanup = cleanup;
    BI_TRY_ASSIGN(net::HttpResponse resp, net::send_with_retry([&]() -> Expected<net::HttpRequest> { return req; }));
    if (std::find(ok.begin(), ok.end(), resp.status) == ok.end()) {
      return Unexpected{net::http_error(req, resp)};
    }
    return std::move(resp.body);
  }

  std::string what(const std::string& method, const std::string& path) const {
    return net::describe_request(method, m_base + path);
  }

  // Best effort: used on the error path, so it logs instead of failing.
  void remove(const std::string& id) const {
    auto r = call("DELETE", "/v2/images/" + id, "", {204, 404}, true);
    if (!r) {
      spdlog::warn("could not delete the unfinished Glance image {}: {}", id, r.error().to_string());
    } else {
      spdlog::info("deleted the unfinished Glance image {}", id);
    }
  }

  const std::string& base() const { return m_base; }
  const std::string& token() const { return m_token; }

private:
  std::string m_base;
  std::string m_token;
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

} // namespace

nlohmann::json keystone_auth_body(const net::OpenStackAuth& a) {
  using nlohmann::json;
  json identity;
  if (a.auth_type == "v3applicationcredential") {
    json cred = {{"secret", a.application_credential_secret}};
    if (!a.application_credential_id.empty()) {
      cred["id"] = a.application_credential_id;
    } else {
      cred["name"] = a.application_credential_name;
      json user = a.user_id.empty() ? json{{"name", a.username}} : json{{"id", a.user_id}};
      if (a.user_id.empty()) {
        user["domain"] = a.user_domain_id.empty() ? json{{"name", a.user_domain_name}} : json{{"id", a.user_domain_id}};
      }
      cred["user"] = user;
    }
    identity = {{"methods", {"application_credential"}}, {"application_credential", cred}};
    return {{"auth", {{"identity", identity}}}}; // an application credential carries its own scope
  }
  json user = a.user_id.empty() ? json{{"name", a.username}} : json{{"id", a.user_id}};
  if (a.user_id.empty()) {
    user["domain"] = a.user_domain_id.empty() ? json{{"name", a.user_domain_name}} : json{{"id", a.user_domain_id}};
  }
  user["password"] = a.password;
  identity = {{"methods", {"password"}}, {"password", {{"user", user}}}};
  json body = {{"auth", {{"identity", identity}}}};
  if (!a.project_id.empty()) {
    body["auth"]["scope"] = {{"project", {{"id", a.project_id}}}};
  } else if (!a.project_name.empty()) {
    json domain =
        a.project_domain_id.empty() ? json{{"name", a.project_domain_name}} : json{{"id", a.project_domain_id}};
    body["auth"]["scope"] = {{"project", {{"name", a.project_name}, {"domain", domain}}}};
  }
  return body;
}

Expected<KeystoneToken> keystone_authenticate(const net::OpenStackAuth& auth) {
  net::HttpRequest req;
  req.method = "POST";
  req.url = v3_url(auth.auth_url) + "/auth/tokens";
  req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  req.body = keystone_auth_body(auth).dump();
  req.timeout = std::chrono::seconds(60);
  BI_TRY_ASSIGN(net::HttpResponse resp, net::send_with_retry([&]() -> Expected<net::HttpRequest> { return req; }));
  if (resp.status == 401) {
    return fail(net::describe_request(req.method, req.url),
                fmt::format("HTTP 401: Keystone refused the credentials ({})", auth.describe()), ExitCode::bad_input);
  }
  if (resp.status != 201 && resp.status != 200) {
    return Unexpected{net::http_error(req, resp)};
  }
  return parse_keystone_token(net::describe_request(req.method, req.url), resp.header("X-Subject-Token"), resp.body);
}

Expected<KeystoneToken> parse_keystone_token(const std::string& what, const std::string& subject_token,
                                             std::string_view body) {
  KeystoneToken t;
  t.token = subject_token;
  if (t.token.empty()) {
    return fail(what, "no X-Subject-Token in Keystone's response");
  }
  BI_TRY_ASSIGN(nlohmann::json j, parse_json(what, body));
  const auto token = j.is_object() ? j.find("token") : j.end();
  if (!j.is_object() || token == j.end() || !token->is_object()) {
    return fail(what, "no 'token' object in Keystone's response");
  }
  t.catalog = nlohmann::json::array();
  if (const auto catalog = token->find("catalog"); catalog != token->end()) {
    if (!catalog->is_array()) {
      return fail(what, "the token's 'catalog' is not a list");
    }
    t.catalog = *catalog;
  }
  if (const auto project = token->find("project"); project != token->end()) {
    t.project_id = string_member(*project, "id");
  }
  return t;
}

Expected<std::string> catalog_endpoint(const nlohmann::json& catalog, const std::string& service_type,
                                       const std::string& region, const std::string& interface) {
  if (!catalog.is_array()) {
    return fail("service catalog", "not a list", ExitCode::bad_input);
  }
  std::vector<std::string> seen;
  for (const auto& service : catalog) {
    if (string_member(service, "type") != service_type) {
      continue;
    }
    const auto endpoints = service.find("endpoints");
    if (endpoints == service.end() || !endpoints->is_array()) {
      continue;
    }
    for (const auto& ep : *endpoints) {
      std::string ep_region = string_member(ep, "region_id");
      if (ep_region.empty()) {
        ep_region = string_member(ep, "region");
      }
      const std::string ep_iface = string_member(ep, "interface");
      const std::string url = string_member(ep, "url");
      seen.push_back(std::string(ep_iface).append("@").append(ep_region));
      if (ep_iface == interface && (region.empty() || ep_region == region) && !url.empty()) {
        return url;
      }
    }
  }
  return fail("service catalog",
              seen.empty() ? fmt::format("no '{}' service", service_type)
                           : fmt::format("no {} '{}' endpoint in region '{}' (catalog has: {})", interface,
                                         service_type, region, fmt::join(seen, ", ")),
              ExitCode::bad_input);
}

Expected<GlanceImage> parse_glance_image(const std::string& what, std::string_view body) {
  BI_TRY_ASSIGN(nlohmann::json j, parse_json(what, body));
  return glance_image_from(what, j);
}

Expected<std::vector<GlanceImage>> parse_glance_images(const std::string& what, std::string_view body) {
  BI_TRY_ASSIGN(nlohmann::json j, parse_json(what, body));
  const auto images = j.is_object() ? j.find("images") : j.end();
  if (!j.is_object() || images == j.end() || !images->is_array()) {
    return fail(what, "no 'images' list in Glance's response");
  }
  std::vector<GlanceImage> out;
  for (const auto& item : *images) {
    BI_TRY_ASSIGN(GlanceImage image, glance_image_from(what, item));
    out.push_back(std::move(image));
  }
  return out;
}

namespace {
// The release's version from the one table; a base.image build's OS is not known to the
// tool, and it was registered as 12 before releases were a choice: kept.
std::string glance_os_version(const Manifest& manifest) {
  const OsRelease* release = find_os_release(manifest.os());
  return release != nullptr ? std::string(release->version) : "12";
}
} // namespace

nlohmann::json glance_image_body(const BuiltImage& image, const GlanceOptions& options) {
  const std::uint64_t gib = 1ull << 30;
  nlohmann::json body = {
      {"name", image.manifest.name},
      {"disk_format", image.manifest.format},
      {"container_format", "bare"},
      {"visibility", options.visibility},
      {"min_disk", static_cast<std::uint64_t>((image.manifest.virtual_size + gib - 1) / gib)},
      {"min_ram", options.min_ram_mib},
      {"os_distro", "debian"},
      {"os_version", glance_os_version(image.manifest)},
      {"architecture", "x86_64"},
      {"hw_vif_model", "virtio"},
      {"cartridge_type", image.manifest.cartridge},
      {"cartridge_mode", image.manifest.mode},
      {"build_image_inputs_key", image.manifest.inputs_key},
      {"build_image_sha256", image.manifest.sha256},
  };
  // Hybrid images keep Nova's default (BIOS): it works on every hypervisor and flavour,
  // while UEFI needs OVMF on the compute hosts. Secure Boot needs UEFI and q35 (Nova refuses
  // os_secure_boot on i440fx).
  if (image.manifest.firmware() == "uefi" || image.manifest.secure_boot()) {
    body["hw_firmware_type"] = "uefi";
  }
  if (image.manifest.secure_boot()) {
    body["os_secure_boot"] = "required";
    body["hw_machine_type"] = "q35";
  }
  // Only where the guest really has the agent.
  if (image.manifest.packages.count("qemu-guest-agent") != 0) {
    body["hw_qemu_guest_agent"] = "yes";
  }
  return body;
}

namespace {

class GlanceSession final : public CloudSession {
public:
  GlanceSession(Glance glance, GlanceOptions options) : m_glance(std::move(glance)), m_options(std::move(options)) {}

  std::string endpoint() const override { return m_glance.base(); }

  // An active image with our inputs key and the same bytes is the answer.
  Expected<std::string> find_registered(const BuiltImage& image, const RegisterEvents&) override {
    const std::string list_path = "/v2/images?build_image_inputs_key=" + net::url_encode(image.manifest.inputs_key);
    BI_TRY_ASSIGN(std::string found_body, m_glance.call("GET", list_path, "", {200}));
    BI_TRY_ASSIGN(std::vector<GlanceImage> found, parse_glance_images(m_glance.what("GET", list_path), found_body));
    for (const auto& img : found) {
      if (img.status == "active" && img.os_hash_algo == "sha512" && !image.manifest.sha512.empty() &&
          img.os_hash_value == image.manifest.sha512) {
        return img.id;
      }
      // Left over by an interrupted run (queued: created, never uploaded; killed: failed).
      if (img.status == "queued" || img.status == "killed") {
        spdlog::info("openstack: removing the unfinished image {} ({}) of an earlier run", img.id, img.status);
        m_glance.remove(img.id);
      }
    }
    return std::string();
  }

  // Creates the image and streams the file into it, hashing what is sent.
  Expected<std::string> upload(const BuiltImage& image, const RegisterEvents& events, RegisterResult& result) override {
    BI_TRY_ASSIGN(std::string created_body,
                  m_glance.call("POST", "/v2/images", glance_image_body(image, m_options).dump(), {201}));
    BI_TRY_ASSIGN(GlanceImage created, parse_glance_image(m_glance.what("POST", "/v2/images"), created_body));
    const std::string id = created.id;
    // Every error after the create leaves nothing behind.
    UndoUnlessCommitted remove_image([&] { m_glance.remove(id); });
    events.id("glance image (uploading)", id);

    Fd file{::open(image.image.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) {
      return fail(image.image.string(), std::string("cannot open: ") + std::strerror(errno));
    }
    ::posix_fadvise(file.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    Hasher sha512(HashAlgorithm::sha512);
    std::uint64_t sent = 0;
    net::HttpRequest put = m_glance.request("PUT", "/v2/images/" + id + "/file");
    put.headers.emplace_back("Content-Type", "application/octet-stream");
    put.body_size = image.manifest.file_size;
    put.timeout = std::chrono::seconds(0);
    put.stall_timeout = std::chrono::seconds(120);
    put.body_reader = [&](char* buf, std::size_t len) -> Expected<std::size_t> {
      const ssize_t n = ::read(file.fd, buf, len);
      if (n < 0) {
        return fail(image.image.string(), std::string("read error: ") + std::strerror(errno));
      }
      sha512.update(std::string_view(buf, static_cast<std::size_t>(n)));
      sent += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    };
    put.on_upload_progress = [&](std::uint64_t done) { events.progress(done, image.manifest.file_size); };
    const auto upload_start = Clock::now();
    // Not retried: a failed PUT leaves the image in a state only a new image fixes (the
    // guard deletes it; run register again).
    BI_TRY_ASSIGN(net::HttpResponse resp, net::http_send(put));
    result.upload_seconds = std::chrono::duration<double>(Clock::now() - upload_start).count();
    events.progress(sent, image.manifest.file_size);
    if (resp.status != 204 && resp.status != 200 && resp.status != 201) {
      return Unexpected{net::http_error(put, resp)};
    }
    result.bytes_sent = sent;
    if (sent != image.manifest.file_size) {
      return fail(image.image.string(),
                  fmt::format("sent {} bytes but the file has {}", sent, image.manifest.file_size));
    }
    m_streamed_sha512 = sha512.finish();
    remove_image.commit();
    return id;
  }

  // Glance registers as it stores: what is left is to check that it stored what was sent.
  Expected<std::string> register_upload(const BuiltImage& image, const std::string& id, RegisterResult&) override {
    BI_TRY_ASSIGN(std::string after_body, m_glance.call("GET", "/v2/images/" + id, "", {200}));
    BI_TRY_ASSIGN(GlanceImage after, parse_glance_image(m_glance.what("GET", "/v2/images/" + id), after_body));
    if (after.status != "active") {
      return fail("glance image " + id,
                  fmt::format("status is '{}' after the upload, expected 'active'", after.status));
    }
    if (after.os_hash_algo != "sha512") {
      return fail("glance image " + id, fmt::format("Glance hashes with '{}', not sha512: cannot verify the upload",
                                                    after.os_hash_algo.empty() ? "none" : after.os_hash_algo));
    }
    if (after.os_hash_value != m_streamed_sha512) {
      return fail("glance image " + id,
                  fmt::format("hash mismatch: Glance stored sha512 {}... but we sent {}...; the image was deleted",
                              after.os_hash_value.substr(0, 16), m_streamed_sha512.substr(0, 16)));
    }
    if (!image.manifest.sha512.empty() && m_streamed_sha512 != image.manifest.sha512) {
      return fail(image.image.string(),
                  fmt::format("the file's sha512 {}... differs from the manifest's {}...: it changed after the "
                              "build; the uploaded image was deleted",
                              m_streamed_sha512.substr(0, 16), image.manifest.sha512.substr(0, 16)));
    }
    return id;
  }

  void remove_upload(const std::string& id) override { m_glance.remove(id); }

private:
  Glance m_glance;
  GlanceOptions m_options;
  std::string m_streamed_sha512;
};

} // namespace

Expected<std::unique_ptr<CloudSession>> open_glance_session(const net::OpenStackAuth& auth,
                                                            const GlanceOptions& options) {
  net::register_secret(auth.password);
  net::register_secret(auth.application_credential_secret);
  spdlog::info("openstack: authenticating as {}", auth.describe());
  BI_TRY_ASSIGN(KeystoneToken token, keystone_authenticate(auth));
  net::register_secret(token.token);
  std::string endpoint = options.image_url;
  if (endpoint.empty()) {
    BI_TRY_ASSIGN(endpoint, catalog_endpoint(token.catalog, "image", options.region, auth.interface));
  }
  return std::unique_ptr<CloudSession>(
      std::make_unique<GlanceSession>(Glance(glance_base(endpoint), token.token), options));
}

} // namespace bi::registration
