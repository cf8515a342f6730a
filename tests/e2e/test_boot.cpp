// End to end: `build-image boot-test` on the php full image the `images` fixture built.
// The real binary boots it under libvirt with a config-drive payload and a private
// mosquitto, and must see the cartridge agent activate this member.
// Environment: BI_TEST_IMAGES = the fixture's output folder with catalog.json.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fixture_images.hpp"
#include "image/catalog.hpp"
#include "image/manifest.hpp"
#include "util/process.hpp"

using namespace bi;

namespace {

using test::newest_php_full;
using test::php_full_image;

} // namespace

TEST_CASE("the boot test picks the newest php full image, not a stale one in the same catalog", "[select]") {
  // A stale image (older inputs, an earlier run) listed before and after the new one.
  const auto dir = std::filesystem::temp_directory_path() / ("bi-select-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto entry = [](const std::string& file, const std::string& created) {
    return nlohmann::json{
        {"name", file}, {"file", file + ".qcow2"}, {"cartridge", "php"}, {"mode", "full"}, {"created", created}};
  };
  const auto stale = entry("php-full-stale", "2026-11-01T08:00:00Z");
  const auto fresh = entry("php-full-fresh", "2026-12-06T09:30:00Z");
  const auto other = nlohmann::json{{"name", "tiny"},
                                    {"file", "tiny.qcow2"},
                                    {"cartridge", "tiny"},
                                    {"mode", "generic"},
                                    {"created", "2026-12-06T10:00:00Z"}};
  // A newer php full image of another release is not the Debian 12 one, and the reverse.
  auto trixie = entry("php-full-trixie", "2026-12-06T11:00:00Z");
  trixie["os"] = "debian-13";
  for (const auto& images : {nlohmann::json{stale, fresh, other, trixie}, nlohmann::json{trixie, fresh, stale}}) {
    std::ofstream(dir / "catalog.json") << nlohmann::json{{"images", images}}.dump(2);
    CHECK(newest_php_full(dir) == dir / "php-full-fresh.qcow2");
    CHECK(newest_php_full(dir, "debian-13") == dir / "php-full-trixie.qcow2");
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("boot-test: the php full image activates under libvirt with a Stratos payload", "[boot]") {
  // Under UEFI (OVMF without Secure Boot): the hybrid image's EFI path to activation. BIOS
  // is boot_test_stratos', Secure Boot image_boot's.
  const auto image = php_full_image();
  std::printf("boot-test of %s\n", image.filename().c_str());
  RunOptions ro;
  ro.timeout = std::chrono::seconds(900);
  auto r =
      run_process({BI_BINARY, "boot-test", "--json", "--firmware", "uefi", "--timeout", "600", image.string()}, ro);
  REQUIRE(r);
  INFO(r->output);
  // Exit 3 means this host lacks libvirt, qemu or mosquitto: not a product failure.
  if (r->exit_code == 3) {
    WARN("boot-test could not run on this host");
  }
  REQUIRE(r->exit_code == 0);
  const auto j = nlohmann::json::parse(r->output.substr(r->output.find('{')));

  CHECK(j["passed"] == true);
  CHECK(j["reason"].get<std::string>().empty());
  CHECK(j["firmware"] == "uefi");
  CHECK(j["guest_secure_boot"] == false); // the guest kernel's "secureboot: Secure boot disabled"
  const std::string member = j["member_id"];
  const std::string cluster = j["cluster_id"];
  CHECK(cluster == "boot-test.php.domain");
  CHECK(member.rfind(cluster, 0) == 0);

  const auto* activated = test::find_member_event(j["events"], "InstanceActivatedEvent");
  REQUIRE(activated != nullptr);
  CHECK((*activated)["body"]["memberId"] == member);
  CHECK((*activated)["body"]["clusterId"] == cluster);
  CHECK((*activated)["body"]["serviceName"] == "php");
  const auto* started = test::find_member_event(j["events"], "InstanceStartedEvent");
  REQUIRE(started != nullptr);
  CHECK((*started)["seconds"].get<double>() <= (*activated)["seconds"].get<double>());
  CHECK((*started)["body"]["applicationId"] == "boot-test");

  const std::string hostname = j["hostname"];
  CHECK(std::regex_match(hostname, std::regex(R"(^[0-9]+\.default\.php\.puppet\.test$)")));
  CHECK(j["hostname_matches"] == true);
  CHECK(std::filesystem::exists(j["console_log"].get<std::string>()));

  const double activated_s = j["boot_to_activated_seconds"];
  char login[32] = "not seen";
  if (!j["boot_to_login_seconds"].is_null()) {
    (void)std::snprintf(login, sizeof(login), "%.1f s", j["boot_to_login_seconds"].get<double>());
  }
  std::printf("boot-test php full (%s, uefi): boot to activated %.1f s, boot to login %s, hostname %s\n",
              j["accelerator"].get<std::string>().c_str(), activated_s, login, hostname.c_str());
}

// Debian 13 (issue 14): templates/php.yaml with base.os debian-13 built in full mode (its own
// base and system layers in the fixture's cache: Puppet 8, PHP 8.4) into a folder of its
// own, so no test that picks "the php full image" of build/test-images meets it; then one
// boot-test to InstanceActivatedEvent. Hidden tag: `boot_test_full` runs the others.
TEST_CASE("debian-13: php full builds, reports its release and activates under boot-test", "[.trixie]") {
  const char* images = std::getenv("BI_TEST_IMAGES");
  REQUIRE(images != nullptr);
  const std::filesystem::path out = std::filesystem::path(images).parent_path() / "test-images-debian-13";
  const std::filesystem::path work = out / "cartridge";
  std::filesystem::create_directories(work);
  // The template itself, with only base.os changed (its `files` are read next to it).
  std::ifstream in(std::filesystem::path(BI_SOURCE_DIR) / "templates/php.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = yaml.find("os: debian-12");
  REQUIRE(at != std::string::npos);
  yaml.replace(at, 13, "os: debian-13");
  std::ofstream(work / "php.yaml") << yaml;
  std::filesystem::copy(std::filesystem::path(BI_SOURCE_DIR) / "templates/files", work / "files",
                        std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);

  RunOptions bo;
  bo.timeout = std::chrono::seconds(1500);
  auto built = run_process({BI_BINARY, "--output", out.string(), "--json", (work / "php.yaml").string()}, bo);
  REQUIRE(built);
  INFO(built->output);
  REQUIRE(built->exit_code == 0);
  const auto image = newest_php_full(out, "debian-13");
  auto manifest = read_manifest(image.parent_path() / (image.stem().string() + ".json"));
  REQUIRE(manifest);
  CHECK(manifest->os() == "debian-13");
  CHECK(manifest->plan["layers"]["base"]["suite"] == "trixie");

  RunOptions ro;
  ro.timeout = std::chrono::seconds(900);
  auto r = run_process({BI_BINARY, "boot-test", "--json", "--timeout", "600", image.string()}, ro);
  REQUIRE(r);
  INFO(r->output);
  REQUIRE(r->exit_code == 0);
  const auto j = nlohmann::json::parse(r->output.substr(r->output.find('{')));
  CHECK(j["passed"] == true);
  const auto* activated = test::find_member_event(j["events"], "InstanceActivatedEvent");
  REQUIRE(activated != nullptr);
  CHECK((*activated)["body"]["serviceName"] == "php");
  std::printf("debian-13 php full: build %.1f s, boot to activated %.1f s\n", manifest->build_seconds,
              j["boot_to_activated_seconds"].get<double>());
}
