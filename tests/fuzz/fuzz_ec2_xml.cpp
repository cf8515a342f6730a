// The EC2 Query API's XML answers: DescribeImages, DescribeSnapshots, RegisterImage and error
// bodies, and the HTTP layer's retry classification of them. Untrusted server input: never a
// crash, and IDs we accept are safe to put into the next request (paths, forms).

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "net/http.hpp"
#include "register/ec2.hpp"

using namespace bi::net;
using namespace bi::registration;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string xml(reinterpret_cast<const char*>(data), size);
  if (const auto images = parse_describe_images(xml)) {
    for (const auto& image : *images) {
      FUZZ_CHECK(valid_resource_id(image.id));
    }
  }
  if (const auto snapshots = parse_snapshot_ids(xml)) {
    for (const auto& id : *snapshots) {
      FUZZ_CHECK(valid_resource_id(id));
    }
  }
  (void)parse_snapshot_status(xml);
  if (const auto id = parse_register_image(xml)) {
    FUZZ_CHECK(valid_resource_id(*id));
  } else {
    FUZZ_CHECK(id.error().object == "ec2 RegisterImage");
  }
  FUZZ_CHECK(parse_ec2_error(xml).size() <= 200 + 2 + 500);
  for (const auto& v : xml_values(xml, "item")) {
    FUZZ_CHECK(v.size() < xml.size());
  }
  HttpResponse response;
  response.status = 400;
  response.body = xml;
  (void)is_retryable(response);
  return 0;
}
