// The shared payload test vectors (tests/data/payload/) against boot-test's parser.
#include <catch2/catch.hpp>

#include "boot/boot_test.hpp"
#include "payload_vectors.hpp"

TEST_CASE("boot-test's payload parser gives every shared vector's result", "[payload][vectors]") {
  const auto vectors = payload_vectors::load(PAYLOAD_VECTORS_DIR, "boot-test");
  REQUIRE(vectors.size() >= 8);
  for (const auto& v : vectors) {
    INFO("vector " << v.name << " (" << v.expected_file << ")");
    CHECK(payload_vectors::render(bi::parse_payload(v.input)) == v.expected);
  }
}
