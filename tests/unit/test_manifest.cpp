// The typed manifest: one reader/writer, every key kept, old manifests read or rejected.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "image/manifest.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"

using namespace bi;
using nlohmann::json;

namespace {

Manifest sample() {
  Manifest m;
  m.name = "php-full-0123456789ab";
  m.file = "php-full-0123456789ab.qcow2";
  m.format = "qcow2";
  m.cartridge = "php";
  m.mode = "full";
  m.tool_version = "0.1.0";
  m.inputs_key = "0123456789abcdef";
  m.sha256 = "aa";
  m.sha512 = "bb";
  m.virtual_size = 4ull << 30;
  m.file_size = 100;
  m.layers = {{"base", "k1"}, {"bootloader", "k2"}, {"system", "k3"}};
  m.packages = {{"curl", "7.88"}, {"php8.2", "8.2.7"}};
  m.build_seconds = 12.5;
  m.phases = {{"base-os", 1.5, "cached k1"}, {"assemble", 3, "2 packages"}};
  m.appliance_launches = 1;
  m.created = "2026-01-01T00:00:00Z";
  m.plan = {{"ports", json::array({{{"port", 80}}, {{"port", 443}}})}};
  return m;
}

} // namespace

TEST_CASE("manifest: the JSON keeps every key readers use, and reads back equal") {
  const json j = sample().to_json();
  for (const char* key : {"schema_version", "name", "file", "format", "cartridge", "mode", "tool_version", "inputs_key",
                          "sha256", "sha512", "virtual_size", "file_size", "layers", "packages", "build_seconds",
                          "phases", "appliance_launches", "created", "plan"}) {
    CHECK(j.contains(key));
  }
  CHECK(j["schema_version"] == Manifest::k_schema_version);
  CHECK(j["layers"]["system"] == "k3");
  CHECK(j["packages"][1] == json{{"name", "php8.2"}, {"version", "8.2.7"}});
  CHECK(j["phases"][0] == json{{"name", "base-os"}, {"seconds", 1.5}, {"note", "cached k1"}});
  CHECK_FALSE(j.contains("registrations")); // only once registered
  auto back = Manifest::from_json(j, "m.json");
  REQUIRE(back);
  CHECK(back->to_json() == j);
  CHECK(back->ports() == std::vector<int>{80, 443});
  CHECK(back->layer("bootloader") == "k2");
  CHECK(back->layer("firmware").empty());
}

TEST_CASE("manifest: an unversioned manifest with the needed keys is read; one without is rejected by name") {
  test::Scratch s;
  json old = sample().to_json();
  old.erase("schema_version");
  old.erase("phases");
  old.erase("layers");
  const auto ok = s.write("old.json", old.dump());
  auto m = read_manifest(ok);
  REQUIRE(m);
  CHECK(m->sha256 == "aa");
  CHECK(m->layers.empty());
  CHECK(m->schema_version == Manifest::k_schema_version); // written back as the current version

  old.erase("sha256");
  const auto bad = s.write("older.json", old.dump());
  auto r = read_manifest(bad);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ExitCode::bad_input);
  CHECK(r.error().to_string() == bad.string() +
                                     ": not a build-image manifest: no \"sha256\" (written before manifests were "
                                     "versioned: rebuild the image)");
}

TEST_CASE("manifest: newer schema, wrong types and broken JSON are clear errors") {
  test::Scratch s;
  json newer = sample().to_json();
  newer["schema_version"] = Manifest::k_schema_version + 1;
  auto r = read_manifest(s.write("newer.json", newer.dump()));
  REQUIRE_FALSE(r);
  CHECK(r.error().to_string() == (s.path() / "newer.json").string() +
                                     ": manifest schema_version 2 is newer than this build-image reads (1): update "
                                     "build-image");
  json typed = sample().to_json();
  typed["file_size"] = "big";
  auto t = read_manifest(s.write("typed.json", typed.dump()));
  REQUIRE_FALSE(t);
  CHECK(t.error().to_string().rfind((s.path() / "typed.json").string() + ": not a build-image manifest: ", 0) == 0);
  auto broken = read_manifest(s.write("broken.json", "{\"name\": "));
  REQUIRE_FALSE(broken);
  CHECK(broken.error().code == ExitCode::bad_input);
  CHECK(broken.error().to_string().rfind((s.path() / "broken.json").string() + ": invalid manifest: ", 0) == 0);
}

TEST_CASE("manifest: registrations are kept and go into the catalog entry") {
  Manifest m = sample();
  m.registrations["ec2"]["us-east-1"] = {{"image_id", "ami-1"}};
  auto back = Manifest::from_json(m.to_json(), "m.json");
  REQUIRE(back);
  CHECK(back->registrations["ec2"]["us-east-1"]["image_id"] == "ami-1");
  const json e = back->catalog_entry("m.json");
  CHECK(e["manifest"] == "m.json");
  CHECK(e["os"] == "debian-12"); // a plan without base.os predates the choice
  CHECK(e["sha256"] == "aa");
  CHECK(e["registrations"]["ec2"]["us-east-1"]["image_id"] == "ami-1");
}

TEST_CASE("manifest: the release of the base comes from the plan into the catalog entry") {
  Manifest m = sample();
  m.plan["layers"]["base"]["os"] = "debian-13";
  auto back = Manifest::from_json(m.to_json(), "m.json");
  REQUIRE(back);
  CHECK(back->os() == "debian-13");
  CHECK(back->catalog_entry("m.json")["os"] == "debian-13");
}

TEST_CASE("load_built_image: the image must be there with the recorded size") {
  test::Scratch s;
  Manifest m = sample();
  m.file_size = 5;
  REQUIRE(write_manifest(s.path() / "m.json", m));
  auto missing = load_built_image(s.path() / "m.json");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().object == (s.path() / m.file).string());
  s.write(m.file, "12345");
  auto ok = load_built_image(s.path() / "m.json");
  REQUIRE(ok);
  CHECK(ok->image == s.path() / m.file);
  s.write(m.file, "123456");
  auto changed = load_built_image(s.path() / "m.json");
  REQUIRE_FALSE(changed);
  CHECK(changed.error().detail == "size 6 differs from the manifest's 5: the file changed after the build");
}
