#pragma once
// OpenStack: Keystone v3 token + service catalog, Glance v2 image create and streamed
// upload with SHA-512 verification against Glance's os_hash_value; idempotent by the
// build_image_inputs_key property.

#include <string>

#include <nlohmann/json.hpp>

#include "cloud/credentials.hpp"
#include "cloud/image_info.hpp"
#include "util/expected.hpp"

namespace bi::cloud {

struct KeystoneToken {
  std::string token;  // secret: sent as X-Auth-Token, never logged
  nlohmann::json catalog;
  std::string project_id;
};

Expected<KeystoneToken> keystone_authenticate(const OpenStackAuth& auth);

// The auth request body (exposed for tests; contains the secret).
nlohmann::json keystone_auth_body(const OpenStackAuth& auth);

// The URL of `service_type` for `region` and `interface` in a Keystone v3 catalog.
Expected<std::string> catalog_endpoint(const nlohmann::json& catalog, const std::string& service_type,
                                       const std::string& region, const std::string& interface);

struct GlanceOptions {
  std::string region;           // catalog region (e.g. RegionOne)
  std::string image_url;        // overrides the catalog (OS_IMAGE_URL)
  std::uint64_t min_ram_mib = 512;
  std::string visibility = "private";
};

// The Glance create-image body for an image (exposed for tests).
nlohmann::json glance_image_body(const ImageInfo& image, const GlanceOptions& options);

Expected<RegisterResult> register_openstack(const ImageInfo& image, const OpenStackAuth& auth,
                                            const GlanceOptions& options, const RegisterEvents& events);

} // namespace bi::cloud
