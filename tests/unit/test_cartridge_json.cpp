// The Stratos cartridge definition from a manifest, and recording registrations.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "image/catalog.hpp"
#include "register/cartridge.hpp"
#include "register/ec2.hpp"
#include "register/openstack.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"

using namespace bi;
using namespace bi::net;
using namespace bi::registration;
using nlohmann::json;

namespace {

// The manifest as JSON (tests edit it), typed as the code reads it.
Manifest typed(const json& j) {
  auto m = Manifest::from_json(j, "test manifest");
  REQUIRE(m);
  return *m;
}

json manifest() {
  return json::parse(R"({
    "name": "php-full-0123456789ab", "cartridge": "php", "mode": "full", "format": "qcow2",
    "file": "php-full-0123456789ab.qcow2", "inputs_key": "0123456789abcdef", "sha256": "aa", "sha512": "bb",
    "virtual_size": 4294967296, "file_size": 100,
    "plan": {
      "cartridge": "php",
      "ports": [{"name": "http-80", "protocol": "http", "port": 80, "proxy_port": 8280},
                {"name": "https-443", "protocol": "https", "port": 443, "proxy_port": 0}],
      "stratos": {"display_name": "PHP", "description": "PHP on Apache", "version": "8.2",
                  "category": "framework", "provider": "apache", "host": "php.example.org",
                  "multi_tenant": false,
                  "iaas": [{"type": "openstack", "region": "RegionOne",
                            "properties": {"instanceType": "RegionOne/2", "keyPair": "stratos"}},
                           {"type": "ec2", "region": "ap-southeast-1", "properties": {}}]}
    }
  })");
}

} // namespace

TEST_CASE("cartridge_definition: Stratos fields, portMapping, region/id image IDs, properties") {
  json m = manifest();
  m["registrations"]["openstack"]["RegionOne"]["image_id"] = "b4ca55e3-58ab-4937-82ce-817ebd10240e";
  m["registrations"]["ec2"]["ap-southeast-1"]["image_id"] = "ami-0123456789abcdef0";
  std::vector<std::string> warnings;
  auto d = cartridge_definition(typed(m), &warnings);
  REQUIRE(d);
  CHECK(warnings.empty());
  const json expected = json::parse(R"({
    "type": "php", "provider": "apache", "category": "framework", "host": "php.example.org",
    "displayName": "PHP", "description": "PHP on Apache", "version": "8.2", "multiTenant": false,
    "portMapping": [{"name": "http-80", "protocol": "http", "port": 80, "proxyPort": 8280},
                    {"name": "https-443", "protocol": "https", "port": 443, "proxyPort": 0}],
    "iaasProvider": [
      {"type": "openstack", "imageId": "RegionOne/b4ca55e3-58ab-4937-82ce-817ebd10240e",
       "property": [{"name": "instanceType", "value": "RegionOne/2"}, {"name": "keyPair", "value": "stratos"}]},
      {"type": "ec2", "imageId": "ap-southeast-1/ami-0123456789abcdef0", "property": []}]
  })");
  CHECK(*d == expected);
}

TEST_CASE("cartridge_definition: unregistered targets are warned about; none registered is an error") {
  json m = manifest();
  std::vector<std::string> warnings;
  auto none = cartridge_definition(typed(m), &warnings);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ExitCode::bad_input);
  CHECK(none.error().to_string().find("not registered") != std::string::npos);
  m["registrations"]["ec2"]["ap-southeast-1"]["image_id"] = "ami-1";
  m["registrations"]["ec2"]["us-east-1"]["image_id"] = "ami-2"; // registered, not in the YAML: listed too
  warnings.clear();
  auto d = cartridge_definition(typed(m), &warnings);
  REQUIRE(d);
  REQUIRE((*d)["iaasProvider"].size() == 2);
  CHECK((*d)["iaasProvider"][0]["imageId"] == "ap-southeast-1/ami-1");
  CHECK((*d)["iaasProvider"][1]["imageId"] == "us-east-1/ami-2");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("openstack RegionOne: not registered") == 0);
}

TEST_CASE("cartridge_definition: displayName defaults to the type") {
  json m = manifest();
  m["plan"]["stratos"]["display_name"] = "";
  m["registrations"]["ec2"]["ap-southeast-1"]["image_id"] = "ami-1";
  auto d = cartridge_definition(typed(m), nullptr);
  REQUIRE(d);
  CHECK((*d)["displayName"] == "php");
}

TEST_CASE("record_registration rewrites the manifest and the catalog entry") {
  test::Scratch s;
  const auto mp = s.write("php-full-0123456789ab.json", manifest().dump());
  REQUIRE(catalog_upsert(s.path(), {{"name", "php-full-0123456789ab"}, {"manifest", "php-full-0123456789ab.json"}}));
  REQUIRE(catalog_upsert(s.path(), {{"name", "other"}, {"manifest", "other.json"}}));
  RegisterResult r;
  r.cloud = "openstack";
  r.region = "RegionOne";
  r.image_id = "uuid-1";
  r.endpoint = "http://127.0.0.1:9292";
  REQUIRE(record_registration(mp, r));
  r.cloud = "ec2";
  r.region = "ap-southeast-1";
  r.image_id = "ami-1";
  r.snapshot_id = "snap-1";
  REQUIRE(record_registration(mp, r));
  const auto m = json::parse(*read_file(mp));
  CHECK(m["registrations"]["openstack"]["RegionOne"]["image_id"] == "uuid-1");
  CHECK(m["registrations"]["ec2"]["ap-southeast-1"]["snapshot_id"] == "snap-1");
  CHECK(m["plan"]["stratos"]["host"] == "php.example.org"); // the rest is kept
  const auto c = *catalog_read(s.path());
  CHECK(c["images"][0]["registrations"]["ec2"]["ap-southeast-1"]["image_id"] == "ami-1");
  CHECK_FALSE(c["images"][1].contains("registrations"));
  CHECK(cartridge_json_path(mp) == s.path() / "php-full-0123456789ab.cartridge.json");
}

TEST_CASE("Glance image body and Keystone auth body") {
  BuiltImage info;
  info.manifest.name = "php-full-x";
  info.manifest.format = "qcow2";
  info.manifest.cartridge = "php";
  info.manifest.mode = "full";
  info.manifest.inputs_key = "key";
  info.manifest.sha256 = "sha";
  info.manifest.virtual_size = (4ull << 30) + 1;
  info.manifest.packages = {{"qemu-guest-agent", "1"}};
  const auto b = glance_image_body(info, GlanceOptions{});
  CHECK(b["min_disk"] == 5);
  CHECK(b["disk_format"] == "qcow2");
  CHECK(b["container_format"] == "bare");
  CHECK(b["os_distro"] == "debian");
  CHECK(b["os_version"] == "12");
  // The release the image was built from (the plan's base.os), from the one table.
  info.manifest.plan["layers"]["base"]["os"] = "debian-13";
  CHECK(glance_image_body(info, GlanceOptions{})["os_version"] == "13");
  info.manifest.plan["layers"]["base"]["os"] = "image";
  CHECK(glance_image_body(info, GlanceOptions{})["os_version"] == "12");
  info.manifest.plan = nlohmann::json::object();
  CHECK_FALSE(b.contains("hw_disk_bus")); // no bus is required (docs/register.md)
  CHECK_FALSE(b.contains("hw_scsi_model"));
  CHECK(b["hw_vif_model"] == "virtio");
  CHECK(b["hw_qemu_guest_agent"] == "yes");
  CHECK(b["build_image_inputs_key"] == "key");
  CHECK(b["cartridge_type"] == "php");
  CHECK(b["cartridge_mode"] == "full");
  for (const char* key : {"hw_firmware_type", "os_secure_boot", "hw_machine_type"}) {
    CHECK_FALSE(b.contains(key)); // BIOS (a manifest from before base.firmware)
  }
  info.manifest.plan["layers"]["base"] = {{"firmware", "hybrid"}, {"secure_boot", false}};
  CHECK_FALSE(glance_image_body(info, GlanceOptions{}).contains("hw_firmware_type")); // Nova's default: BIOS
  info.manifest.plan["layers"]["base"]["firmware"] = "uefi";
  const auto u = glance_image_body(info, GlanceOptions{});
  CHECK(u["hw_firmware_type"] == "uefi");
  CHECK_FALSE(u.contains("os_secure_boot"));
  info.manifest.plan["layers"]["base"]["secure_boot"] = true;
  const auto sb = glance_image_body(info, GlanceOptions{});
  CHECK(sb["hw_firmware_type"] == "uefi");
  CHECK(sb["os_secure_boot"] == "required");
  CHECK(sb["hw_machine_type"] == "q35");

  OpenStackAuth a;
  a.auth_type = "v3applicationcredential";
  a.application_credential_id = "id1";
  a.application_credential_secret = "s";
  const auto ac = keystone_auth_body(a);
  CHECK(ac["auth"]["identity"]["methods"][0] == "application_credential");
  CHECK(ac["auth"]["identity"]["application_credential"]["id"] == "id1");
  CHECK_FALSE(ac["auth"].contains("scope"));
  OpenStackAuth p;
  p.username = "admin";
  p.password = "pw";
  p.user_domain_id = "default";
  p.project_name = "admin";
  p.project_domain_name = "Default";
  const auto pb = keystone_auth_body(p);
  CHECK(pb["auth"]["identity"]["password"]["user"]["domain"]["id"] == "default");
  CHECK(pb["auth"]["scope"]["project"]["domain"]["name"] == "Default");
}

TEST_CASE("catalog_endpoint picks the region and interface") {
  const json catalog = json::parse(R"([
    {"type": "identity", "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": "http://k"}]},
    {"type": "image", "endpoints": [
      {"interface": "public", "region_id": "RegionOne", "url": "http://g1/"},
      {"interface": "internal", "region_id": "RegionOne", "url": "http://g1-int"},
      {"interface": "public", "region": "RegionTwo", "url": "http://g2"}]}])");
  CHECK(*catalog_endpoint(catalog, "image", "RegionOne", "public") == "http://g1/");
  CHECK(*catalog_endpoint(catalog, "image", "RegionOne", "internal") == "http://g1-int");
  CHECK(*catalog_endpoint(catalog, "image", "RegionTwo", "public") == "http://g2");
  auto missing = catalog_endpoint(catalog, "image", "RegionThree", "public");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().to_string().find("catalog has: public@RegionOne") != std::string::npos);
}

TEST_CASE("EBS LINEAR checksum, RegisterImage form and XML values") {
  // LINEAR: SHA-256 over the raw per-block digests in index order (not insertion order).
  std::map<std::uint64_t, std::string> d = {{7, sha256_raw("b")}, {2, sha256_raw("a")}};
  CHECK(linear_checksum(d) == base64(sha256_raw(sha256_raw("a") + sha256_raw("b"))));
  BuiltImage info;
  info.manifest.name = "php-full-x";
  info.manifest.inputs_key = "k";
  info.manifest.sha256 = "0123456789abcdef0123";
  const std::string f = register_image_form(info, "snap-1", 4, Ec2Options{}, "tok");
  for (const char* part :
       {"Name=php-full-x", "RootDeviceName=%2Fdev%2Fxvda", "BlockDeviceMapping.1.Ebs.SnapshotId=snap-1",
        "VirtualizationType=hvm", "EnaSupport=true", "BootMode=legacy-bios", "ImdsSupport=v2.0",
        "SriovNetSupport=simple", "ClientToken=tok", "BlockDeviceMapping.1.Ebs.VolumeSize=4"}) {
    CHECK(f.find(part) != std::string::npos);
  }
  CHECK(f.find("TpmSupport") == std::string::npos); // a manifest without base.firmware: BIOS
  CHECK(ec2_boot_mode("hybrid", false) == "uefi-preferred");
  CHECK(ec2_boot_mode("uefi", false) == "uefi");
  CHECK(ec2_boot_mode("hybrid", true) == "uefi");
  CHECK(ec2_boot_mode("bios", false) == "legacy-bios");
  info.manifest.plan["layers"]["base"] = {{"firmware", "uefi"}, {"secure_boot", false}};
  const std::string u = register_image_form(info, "snap-1", 4, Ec2Options{}, "tok");
  CHECK(u.find("BootMode=uefi&") != std::string::npos);
  CHECK(u.find("TpmSupport=v2.0") != std::string::npos);
  info.manifest.plan["layers"]["base"]["firmware"] = "hybrid";
  const std::string h = register_image_form(info, "snap-1", 4, Ec2Options{}, "tok");
  CHECK(h.find("BootMode=uefi-preferred") != std::string::npos);
  CHECK(h.find("TpmSupport") == std::string::npos);
  CHECK(xml_values("<a><imageId>ami-1</imageId><x/><imageId>ami-2</imageId></a>", "imageId") ==
        std::vector<std::string>{"ami-1", "ami-2"});
}

TEST_CASE("server responses are parsed without throwing; IDs must be safe for paths") {
  // Glance
  auto image = parse_glance_image("GET g", R"({"id": "1bea47ed-f6a9-463b-b423-14b9cca9ad27", "status": "active",
                                              "os_hash_algo": "sha512", "os_hash_value": "ab"})");
  REQUIRE(image);
  CHECK(image->id == "1bea47ed-f6a9-463b-b423-14b9cca9ad27");
  CHECK(image->os_hash_value == "ab");
  CHECK(parse_glance_image("GET g", R"({"id": "x", "os_hash_value": null, "status": 3})")->os_hash_value.empty());
  CHECK(parse_glance_image("GET g", R"({"id": "../../v2/images"})").error().to_string() ==
        "GET g: Glance returned an invalid image id '../../v2/images'");
  CHECK(parse_glance_image("GET g", "[1]").error().to_string() ==
        "GET g: the image in Glance's response is not a JSON object");
  CHECK(parse_glance_image("GET g", "{").error().to_string() == "GET g: invalid JSON in the response");
  CHECK(parse_glance_images("GET g", R"({"images": [{"id": "a", "status": "queued"}, {"id": "b"}]})")->size() == 2);
  CHECK(parse_glance_images("GET g", R"({"images": {}})").error().to_string() ==
        "GET g: no 'images' list in Glance's response");
  // Keystone
  auto token = parse_keystone_token("POST k", "tok", R"({"token": {"catalog": [], "project": {"id": "p1"}}})");
  REQUIRE(token);
  CHECK(token->project_id == "p1");
  CHECK(parse_keystone_token("POST k", "", "{}").error().detail == "no X-Subject-Token in Keystone's response");
  CHECK(parse_keystone_token("POST k", "t", R"({"token": "x"})").error().detail ==
        "no 'token' object in Keystone's response");
  CHECK(parse_keystone_token("POST k", "t", R"({"token": {"catalog": {}}})").error().detail ==
        "the token's 'catalog' is not a list");
  CHECK(
      catalog_endpoint(json::parse(R"([1, {"type": "image", "endpoints": [null, {"interface": "public", "url": 5}]}])"),
                       "image", "", "public")
          .error()
          .to_string() == "service catalog: no public 'image' endpoint in region '' (catalog has: @, public@)");
  // EC2 XML: a state belongs to its own item; unsafe IDs are refused.
  auto images =
      parse_describe_images("<imagesSet><item><imageId>ami-1</imageId></item>"
                            "<item><imageId>ami-2</imageId><imageState>available</imageState></item></imagesSet>");
  REQUIRE(images);
  REQUIRE(images->size() == 2);
  CHECK(images->at(0).state.empty());
  CHECK(images->at(1).state == "available");
  CHECK(parse_register_image("<imageId>ami-1/../x</imageId>").error().to_string() ==
        "ec2 RegisterImage: invalid imageId 'ami-1/../x' in the response");
  CHECK(parse_register_image("<x/>").error().to_string() == "ec2 RegisterImage: no imageId in the response");
  CHECK(parse_snapshot_ids("<snapshotId>snap-1</snapshotId><snapshotId>..</snapshotId>").error().to_string() ==
        "ec2 DescribeSnapshots: invalid snapshotId '..' in the response");
  CHECK(parse_ec2_error("<Code>Throttling</Code><Message>Rate exceeded</Message>") == "Throttling: Rate exceeded");
  // EBS JSON
  auto started = parse_start_snapshot(R"({"SnapshotId": "snap-0123", "BlockSize": 524288})");
  REQUIRE(started);
  CHECK(started->id == "snap-0123");
  CHECK(parse_start_snapshot(R"({"SnapshotId": "snap-1", "BlockSize": "524288"})").error().to_string() ==
        "ebs StartSnapshot: unexpected BlockSize \"524288\"");
  CHECK(parse_start_snapshot(R"({"SnapshotId": 5})").error().to_string() ==
        "ebs StartSnapshot: no SnapshotId in the response");
  CHECK(parse_start_snapshot("[]").error().to_string() == "ebs StartSnapshot: the response is not a JSON object");
  // Retry-After: delta-seconds, capped; no overflow on absurd values.
  CHECK(parse_retry_after("5") == std::chrono::seconds(5));
  CHECK(parse_retry_after(" 99999999999999999999999 ") == std::chrono::seconds(60));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(parse_retry_after("-1"));
  CHECK_FALSE(parse_retry_after(""));
  // Registered secrets never come back through a server's error text.
  register_secret("unit-secret/+token");
  CHECK(redact_secrets("a unit-secret/+token b unit-secret%2F%2Btoken c") == "a *** b *** c");
  HttpResponse echo;
  echo.status = 403;
  echo.body = "<Code>SignatureDoesNotMatch</Code><Message>x-amz-security-token:unit-secret/+token</Message>";
  CHECK(http_error("POST", "http://127.0.0.1/", echo).detail ==
        "HTTP 403: <Code>SignatureDoesNotMatch</Code><Message>x-amz-security-token:***</Message>");
  CHECK(parse_ec2_error(echo.body) == "SignatureDoesNotMatch: x-amz-security-token:***");
  CHECK(valid_resource_id("snap-0123456789abcdef0"));
  CHECK_FALSE(valid_resource_id(".."));
  CHECK_FALSE(valid_resource_id("a/b"));
  CHECK_FALSE(valid_resource_id(std::string(129, 'a')));
}

TEST_CASE("the HTTP layer's retry classification and URL redaction") {
  HttpResponse r;
  r.status = 503;
  CHECK(is_retryable(r));
  r.status = 429;
  CHECK(is_retryable(r));
  r.status = 400;
  r.body = "<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>";
  CHECK(is_retryable(r));
  r.body = "<Code>InvalidParameterValue</Code>";
  CHECK_FALSE(is_retryable(r));
  r.status = 404;
  CHECK_FALSE(is_retryable(r));
  CHECK(redact_url("http://user:pw@host:1/p?a=1&X-Amz-Signature=abc&token=t") ==
        "http://host:1/p?a=1&X-Amz-Signature=***&token=***");
}

TEST_CASE("send_with_retry gives up after the bounded attempts with a clear error") {
  int attempts = 0;
  RetryPolicy p;
  p.max_attempts = 3;
  p.first_delay = std::chrono::milliseconds(1);
  auto r = send_with_retry(
      [&]() -> Expected<HttpRequest> {
        ++attempts;
        HttpRequest req;
        req.url = "http://127.0.0.1:1/nothing"; // connection refused
        req.connect_timeout = std::chrono::seconds(2);
        return req;
      },
      p);
  REQUIRE_FALSE(r);
  CHECK(attempts == 3);
  CHECK(r.error().to_string().find("GET http://127.0.0.1:1/nothing: failed after 3 attempts") == 0);
}
