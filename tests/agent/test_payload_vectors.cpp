// The shared payload test vectors (tests/data/payload/) against the agent's parser.
#include "payload.hpp"
#include "payload_vectors.hpp"

#include <catch2/catch.hpp>

TEST_CASE("the agent's payload parser gives every shared vector's result", "[payload][vectors]") {
  const auto vectors = payload_vectors::load(PAYLOAD_VECTORS_DIR, "agent");
  REQUIRE(vectors.size() >= 8);
  for (const auto& v : vectors) {
    INFO("vector " << v.name << " (" << v.expected_file << ")");
    const auto parsed = cartridge_agent::parse_payload(v.input);
    CHECK(payload_vectors::render(parsed.values) == v.expected);
  }
}
