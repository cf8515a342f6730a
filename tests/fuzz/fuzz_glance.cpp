// Glance v2's image JSON (POST /v2/images, GET /v2/images/ID) and image list
// (GET /v2/images?...). Untrusted server input: never a crash or an escaping exception,
// and an image ID we accept is safe to put into the next request's path.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "net/http.hpp"
#include "register/openstack.hpp"

using namespace bi::net;
using namespace bi::registration;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (const auto image = parse_glance_image("GET http://127.0.0.1:9292/v2/images/x", body)) {
    FUZZ_CHECK(valid_resource_id(image->id));
    FUZZ_CHECK(image->id.find('/') == std::string::npos && image->id != "..");
  }
  if (const auto images = parse_glance_images("GET http://127.0.0.1:9292/v2/images", body)) {
    for (const auto& image : *images) {
      FUZZ_CHECK(valid_resource_id(image.id));
    }
  }
  return 0;
}
