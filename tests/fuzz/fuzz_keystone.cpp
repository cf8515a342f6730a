// Keystone's token response (POST /v3/auth/tokens): the JSON body with the service catalog,
// then the catalog lookup of the image endpoint. Untrusted server input: an error, never a
// crash or an escaping exception.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "register/openstack.hpp"

using namespace bi::net;
using namespace bi::registration;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const auto token = parse_keystone_token("POST http://127.0.0.1:5000/v3/auth/tokens", "gAAAAAfuzz", body);
  if (!token) {
    FUZZ_CHECK(!token.error().detail.empty());
    return 0;
  }
  FUZZ_CHECK(token->token == "gAAAAAfuzz");
  FUZZ_CHECK(token->catalog.is_array());
  for (const char* iface : {"public", "internal", "admin"}) {
    for (const char* region : {"RegionOne", ""}) {
      const auto url = catalog_endpoint(token->catalog, "image", region, iface);
      if (url) {
        FUZZ_CHECK(!url->empty());
      } else {
        FUZZ_CHECK(url.error().object == "service catalog");
      }
    }
  }
  return 0;
}
