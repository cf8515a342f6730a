// End to end: boot-test plays the Stratos servers for the php full image the `images`
// fixture built. The agent must do the topology handshake, clone the application from
// boot-test's git server (credentials sent encrypted with CARTRIDGE_KEY) into the web root,
// activate, serve it, and answer the cleanup request. Needs an agent that speaks the
// handshake (issue 12's agent side).
// Environment: BI_TEST_IMAGES = the fixture's output folder with catalog.json.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "fixture_images.hpp"
#include "image/catalog.hpp"
#include "test_support.hpp"
#include "util/process.hpp"

using namespace bi;

using test::php_full_image;

TEST_CASE("boot-test plays Stratos: artifact from git served by php, cleanup acknowledged", "[stratos]") {
  const auto image = php_full_image();
  test::Scratch s;
  const std::filesystem::path repo = s.path() / "app";
  const auto marker = test::make_marker_application(repo);

  // The payload in the shape a real Stratos Cloud Controller writes (stratos.md section 2;
  // tests/data/payload/stratos-sample.payload, for php): `null` for unset values, `,,` runs,
  // the swapped Puppet pair, a TOKEN, the subscriber's REPO_URL, and no MB_IP (the broker is
  // in agent.conf): boot-test must add its broker, and the guest must read the rest.
  const std::filesystem::path payload = s.path() / "launch-params";
  std::ofstream(payload)
      << "APPLICATION_ID=single-cartridge-app,GROUP_NAME=null,SERVICE_NAME=php,HOST_NAME=php1.php.stratos.org,"
         "MULTITENANT=false,TENANT_ID=-1234,TENANT_RANGE=*,CARTRIDGE_ALIAS=php1,CLUSTER_ID=php1.php.domain,"
         "CARTRIDGE_KEY=U4OYk2Pnu09TK34x,DEPLOYMENT=default,"
         "REPO_URL=https://github.com/imesh/stratos-php-applications.git,PORTS=80,PROVIDER=apache,"
         "PUPPET_IP=192.168.30.90,PUPPET_HOSTNAME=puppet.stratostest.org,PUPPET_DNS_AVAILABLE=null,"
         "PUPPET_ENV=false,,,DEPENDENCY_CLUSTER_IDS=,EXPORT_METADATA_KEYS=,IMPORT_METADATA_KEYS=,"
         "TOKEN=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl,"
         "MEMBER_ID=php1.php.domain54e2ebf4-ded5-4892-ada3-61a14a6c59ab,INSTANCE_ID=null,"
         "CLUSTER_INSTANCE_ID=single-cartridge-app-1,LB_CLUSTER_ID=null,NETWORK_PARTITION_ID=network-partition-1,"
         "PARTITION_ID=partition-1,INTERNAL=false,PRIMARY=false,MIN_COUNT=1\n";

  RunOptions ro;
  ro.timeout = std::chrono::seconds(1500);
  auto r = run_process({BI_BINARY, "boot-test", "--json", "--timeout", "900", "--payload", payload.string(),
                        "--app-repo", repo.string(), "--expect-content", marker, image.string()},
                       ro);
  REQUIRE(r);
  INFO(r->output);
  if (r->exit_code == 3) {
    WARN("boot-test could not run on this host");
  }
  REQUIRE(r->output.find('{') != std::string::npos);
  const auto j = nlohmann::json::parse(r->output.substr(r->output.find('{')));
  CHECK(r->exit_code == 0);
  CHECK(j["passed"] == true);
  CHECK(j["reason"].get<std::string>().empty());
  CHECK(j["http_status"] == 200);
  CHECK(j["firmware"] == "bios"); // the hybrid image's default: the suite's BIOS activation
  CHECK(j["member_id"] == "php1.php.domain54e2ebf4-ded5-4892-ada3-61a14a6c59ab");
  // Stratos' payload names no broker: boot-test added its own, and said so.
  bool broker_added = false;
  for (const auto& n : j["notes"]) {
    broker_added =
        broker_added || n.get<std::string>().rfind("the payload has no MB_IP: boot-test added MB_IP=", 0) == 0;
  }
  CHECK(broker_added);

  test::check_stratos_lifecycle(j);

  const double activated_s = j["boot_to_activated_seconds"];
  std::printf("boot-test stratos php full (%s): power-on to activated with an artifact %.1f s, "
              "to ready-to-shutdown %.1f s\n",
              j["accelerator"].get<std::string>().c_str(), activated_s,
              j["boot_to_shutdown_ready_seconds"].get<double>());
}
