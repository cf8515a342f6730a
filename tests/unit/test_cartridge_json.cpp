// The Stratos cartridge definition from a manifest, and recording registrations.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cloud/cartridge.hpp"
#include "cloud/ec2.hpp"
#include "cloud/openstack.hpp"
#include "image/catalog.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"

using namespace bi;
using namespace bi::cloud;
using nlohmann::json;

namespace {

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
  auto d = cartridge_definition(m, &warnings);
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
  auto none = cartridge_definition(m, &warnings);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ExitCode::bad_input);
  CHECK(none.error().to_string().find("not registered") != std::string::npos);
  m["registrations"]["ec2"]["ap-southeast-1"]["image_id"] = "ami-1";
  m["registrations"]["ec2"]["us-east-1"]["image_id"] = "ami-2";  // registered, not in the YAML: listed too
  warnings.clear();
  auto d = cartridge_definition(m, &warnings);
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
  auto d = cartridge_definition(m, nullptr);
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
  CHECK(m["plan"]["stratos"]["host"] == "php.example.org");  // the rest is kept
  const auto c = *catalog_read(s.path());
  CHECK(c["images"][0]["registrations"]["ec2"]["ap-southeast-1"]["image_id"] == "ami-1");
  CHECK_FALSE(c["images"][1].contains("registrations"));
  CHECK(cartridge_json_path(mp) == s.path() / "php-full-0123456789ab.cartridge.json");
}

TEST_CASE("Glance image body and Keystone auth body") {
  ImageInfo info;
  info.name = "php-full-x";
  info.format = "qcow2";
  info.cartridge = "php";
  info.mode = "full";
  info.inputs_key = "key";
  info.sha256 = "sha";
  info.virtual_size = (4ull << 30) + 1;
  info.manifest = {{"packages", {{{"name", "qemu-guest-agent"}, {"version", "1"}}}}};
  const auto b = glance_image_body(info, GlanceOptions{});
  CHECK(b["min_disk"] == 5);
  CHECK(b["disk_format"] == "qcow2");
  CHECK(b["container_format"] == "bare");
  CHECK(b["os_distro"] == "debian");
  CHECK(b["os_version"] == "12");
  CHECK(b["hw_disk_bus"] == "virtio");
  CHECK(b["hw_vif_model"] == "virtio");
  CHECK(b["hw_qemu_guest_agent"] == "yes");
  CHECK(b["build_image_inputs_key"] == "key");
  CHECK(b["cartridge_type"] == "php");
  CHECK(b["cartridge_mode"] == "full");

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
  ImageInfo info;
  info.name = "php-full-x";
  info.inputs_key = "k";
  info.sha256 = "0123456789abcdef0123";
  const std::string f = register_image_form(info, "snap-1", 4, Ec2Options{}, "tok");
  for (const char* part : {"Name=php-full-x", "RootDeviceName=%2Fdev%2Fxvda", "BlockDeviceMapping.1.Ebs.SnapshotId=snap-1",
                           "VirtualizationType=hvm", "EnaSupport=true", "BootMode=legacy-bios", "ImdsSupport=v2.0",
                           "ClientToken=tok", "BlockDeviceMapping.1.Ebs.VolumeSize=4"}) {
    CHECK(f.find(part) != std::string::npos);
  }
  CHECK(xml_values("<a><imageId>ami-1</imageId><x/><imageId>ami-2</imageId></a>", "imageId") ==
        std::vector<std::string>{"ami-1", "ami-2"});
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
        req.url = "http://127.0.0.1:1/nothing";  // connection refused
        req.connect_timeout = std::chrono::seconds(2);
        return req;
      },
      p);
  REQUIRE_FALSE(r);
  CHECK(attempts == 3);
  CHECK(r.error().to_string().find("GET http://127.0.0.1:1/nothing: failed after 3 attempts") == 0);
}
