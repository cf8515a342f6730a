#pragma once
// OpenStack: Keystone v3 token + service catalog, Glance v2 image create and streamed
// upload with SHA-512 verification against Glance's os_hash_value; idempotent by the
// build_image_inputs_key property.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/credentials.hpp"
#include "register/image_info.hpp"
#include "util/expected.hpp"

namespace bi::registration {

struct KeystoneToken {
  std::string token; // secret: sent as X-Auth-Token, never logged
  nlohmann::json catalog;
  std::string project_id;
};

Expected<KeystoneToken> keystone_authenticate(const net::OpenStackAuth& auth);

// The auth request body (exposed for tests; contains the secret).
nlohmann::json keystone_auth_body(const net::OpenStackAuth& auth);

// Keystone's answer to POST /v3/auth/tokens: the X-Subject-Token header and the JSON body
// (token.catalog, token.project.id). Server responses are untrusted input: this and the
// other parse_* functions never throw (fuzzed: tests/fuzz/), a wrong shape is an error
// naming `what`.
Expected<KeystoneToken> parse_keystone_token(const std::string& what, const std::string& subject_token,
                                             std::string_view body);

// The URL of `service_type` for `region` and `interface` in a Keystone v3 catalog
// (entries of the wrong shape are skipped; a catalog that is not a list is an error).
Expected<std::string> catalog_endpoint(const nlohmann::json& catalog, const std::string& service_type,
                                       const std::string& region, const std::string& interface);

struct GlanceOptions {
  std::string region;    // catalog region (e.g. RegionOne)
  std::string image_url; // overrides the catalog (OS_IMAGE_URL)
  std::uint64_t min_ram_mib = 512;
  std::string visibility = "private";
};

// The fields of a Glance v2 image we act on.
struct GlanceImage {
  std::string id; // checked with net::valid_resource_id (it goes into request paths)
  std::string status;
  std::string os_hash_algo;
  std::string os_hash_value;
};

// One image (POST /v2/images, GET /v2/images/ID) or the list of GET /v2/images?...
Expected<GlanceImage> parse_glance_image(const std::string& what, std::string_view body);
Expected<std::vector<GlanceImage>> parse_glance_images(const std::string& what, std::string_view body);

// The Glance create-image body for an image (exposed for tests).
nlohmann::json glance_image_body(const BuiltImage& image, const GlanceOptions& options);

class CloudSession;
// Authenticates with Keystone and finds Glance (the catalog, or GlanceOptions::image_url).
Expected<std::unique_ptr<CloudSession>> open_glance_session(const net::OpenStackAuth& auth,
                                                            const GlanceOptions& options);

} // namespace bi::registration
