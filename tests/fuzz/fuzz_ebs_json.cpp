// The EBS direct API's StartSnapshot JSON answer. Untrusted server input: never a crash or an
// escaping exception; a snapshot ID we accept is safe to put into the block upload paths.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "net/http.hpp"
#include "register/ec2.hpp"

using namespace bi::net;
using namespace bi::registration;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto started = parse_start_snapshot(body);
  if (started) {
    FUZZ_CHECK(valid_resource_id(started->id));
    FUZZ_CHECK(started->block_size > 0 || body.find("BlockSize") != std::string_view::npos);
  } else {
    FUZZ_CHECK(started.error().object == "ebs StartSnapshot");
  }
  return 0;
}
