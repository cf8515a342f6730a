#pragma once
// The image an end-to-end test boots (the one this run's `images` fixture built), and what
// the tests read from boot-test's report.

#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "image/catalog.hpp"

namespace test {

// The newest php full image of base.os `os` in the catalog in `dir`. A folder reused
// across runs (build/test-images) also lists older images, and the catalog keeps entries in
// the order they were last written, so the newest is the latest `created`, the later entry
// on a tie. Entries without "os" predate the choice: debian-12.
inline std::filesystem::path newest_php_full(const std::filesystem::path& dir, const std::string& os = "debian-12") {
  auto catalog = bi::catalog_read(dir);
  REQUIRE(catalog);
  const nlohmann::json* best = nullptr;
  for (const auto& e : (*catalog)["images"]) {
    if (e["cartridge"] == "php" && e["mode"] == "full" && e.value("os", "debian-12") == os &&
        (best == nullptr || e.value("created", "") >= best->value("created", ""))) {
      best = &e;
    }
  }
  if (best == nullptr) {
    FAIL("no php full " << os << " image in " << dir << "/catalog.json");
  }
  return dir / (*best)["file"].get<std::string>();
}

// The newest php full image of the fixture's folder ($BI_TEST_IMAGES).
inline std::filesystem::path php_full_image() {
  const char* dir = std::getenv("BI_TEST_IMAGES");
  REQUIRE(dir != nullptr);
  return newest_php_full(dir);
}

// The boot-test report's status event `name` of the booted member, or nullptr.
inline const nlohmann::json* find_member_event(const nlohmann::json& events, const std::string& name) {
  for (const auto& e : events) {
    if (e["event"] == name && e["for_member"] == true) {
      return &e;
    }
  }
  return nullptr;
}

} // namespace test
