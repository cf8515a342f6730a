// The image catalog: upsert by name, lookups, damaged catalogs reported.
#include <catch2/catch.hpp>

#include "image/catalog.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"

using namespace bi;

TEST_CASE("catalog_upsert adds and replaces by name") {
  test::Scratch s;
  REQUIRE(catalog_upsert(s.path(), {{"name", "php-full-aaa"}, {"manifest", "php-full-aaa.json"}, {"v", 1}}));
  REQUIRE(catalog_upsert(s.path(), {{"name", "php-generic-bbb"}, {"manifest", "php-generic-bbb.json"}}));
  REQUIRE(catalog_upsert(s.path(), {{"name", "php-full-aaa"}, {"manifest", "php-full-aaa.json"}, {"v", 2}}));
  auto c = catalog_read(s.path());
  REQUIRE(c);
  REQUIRE((*c)["images"].size() == 2);
  CHECK((*c)["images"][1]["v"] == 2);
}

TEST_CASE("find_manifest resolves names, prefixes and paths") {
  test::Scratch s;
  REQUIRE(catalog_upsert(s.path(), {{"name", "php-full-aaa"}, {"manifest", "php-full-aaa.json"}}));
  REQUIRE(catalog_upsert(s.path(), {{"name", "php-full-abb"}, {"manifest", "php-full-abb.json"}}));
  CHECK(*find_manifest(s.path(), "php-full-aaa") == s.path() / "php-full-aaa.json");
  auto ambiguous = find_manifest(s.path(), "php-full-a");
  REQUIRE_FALSE(ambiguous);
  CHECK(ambiguous.error().to_string() == "php-full-a: ambiguous: matches 2 images");
  auto missing = find_manifest(s.path(), "ruby");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ExitCode::bad_input);
  const auto image = s.write("x.qcow2", "img");
  s.write("x.json", "{}");
  CHECK(*find_manifest(s.path(), image.string()) == s.path() / "x.json");
}

TEST_CASE("a damaged catalog is reported, not overwritten") {
  test::Scratch s;
  s.write("catalog.json", "{not json");
  auto r = catalog_upsert(s.path(), {{"name", "x"}});
  REQUIRE_FALSE(r);
  CHECK(r.error().detail.rfind("invalid JSON: ", 0) == 0);
  CHECK(*read_file(s.path() / "catalog.json") == "{not json");
}
