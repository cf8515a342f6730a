// The cartridge loader and validator: every bad-input case with its exact message.
#include <catch2/catch.hpp>

#include "cartridge/loader.hpp"
#include "cartridge/os_release.hpp"
#include "test_support.hpp"
#include "util/did_you_mean.hpp"

using namespace bi;

namespace {

std::string errors_for(const std::string& yaml, const test::Scratch& s, const LoadOptions& opts = {}) {
  const auto file = s.write("c.yaml", yaml);
  auto r = load_cartridge(file, opts);
  return format_diagnostics("c.yaml", r.diagnostics);
}

} // namespace

TEST_CASE("a cartridge with only type and mode loads with defaults") {
  test::Scratch s;
  const auto file = s.write("c.yaml", "type: tiny\nmode: generic\n");
  auto r = load_cartridge(file);
  REQUIRE(r.diagnostics.empty());
  REQUIRE(r.cartridge);
  CHECK(r.cartridge->type == "tiny");
  CHECK(r.cartridge->mode == Mode::generic);
  CHECK(r.cartridge->base.os == "debian-12");
  CHECK(r.cartridge->base.size_bytes == (4ull << 30));
  CHECK(r.cartridge->puppet_server == "puppet");
  CHECK(r.cartridge->ports.empty());
  CHECK(r.cartridge->login.user == "root");
  CHECK(r.cartridge->login.ssh);
  CHECK(r.cartridge->ntp_servers.empty());
}

TEST_CASE("base.os takes every release of the table") {
  test::Scratch s;
  for (const auto& release : os_releases()) {
    const auto file = s.write("c.yaml", "type: php\nbase: {os: " + std::string(release.name) + "}\n");
    auto r = load_cartridge(file);
    REQUIRE(r.diagnostics.empty());
    REQUIRE(r.cartridge);
    CHECK(r.cartridge->base.os == release.name);
  }
  CHECK(os_releases().size() == 2);
  CHECK(find_os_release("debian-13")->suite == "trixie");
  CHECK(find_os_release("trixie") == nullptr);
}

TEST_CASE("the full contract loads every field") {
  test::Scratch s;
  s.write("files/motd", "hello\n");
  const auto file = s.write("php.yaml", R"(type: php
display_name: PHP
description: PHP on Apache
version: "8.2"
category: framework
provider: apache
host: php.example.org
multi_tenant: false
mode: full
base:
  os: debian-12
  size: 6G
packages: [curl, vim-tiny]
dependent_apps: []
server_apps: [php]
puppet:
  server: puppet.example.org
  environment: production
agent:
  mb_urls: ["127.0.0.1:1883", "mb2:1883"]
ports:
  - {name: http-80, protocol: http, port: 80, proxy_port: 8280}
files:
  - {source: files/motd, dest: /etc/motd, mode: "0600"}
iaas:
  - {type: openstack, region: RegionOne}
  - {type: ec2, region: ap-southeast-1, properties: {instanceType: m1.medium}}
login: {user: admin, ssh: false}
time:
  ntp_servers: [ntp.example.org, 192.0.2.1, "2001:db8::123"]
)");
  auto r = load_cartridge(file);
  INFO(format_diagnostics("php.yaml", r.diagnostics));
  REQUIRE(r.cartridge);
  const auto& c = *r.cartridge;
  CHECK(c.mode == Mode::full);
  CHECK(c.base.size_bytes == (6ull << 30));
  CHECK(c.packages == std::vector<std::string>{"curl", "vim-tiny"});
  CHECK(c.server_apps == std::vector<std::string>{"php"});
  CHECK(c.mb_urls.size() == 2);
  REQUIRE(c.ports.size() == 1);
  CHECK(c.ports[0].port == 80);
  CHECK(c.ports[0].proxy_port == 8280);
  REQUIRE(c.files.size() == 1);
  CHECK(c.files[0].mode == 0600);
  CHECK(c.files[0].source == std::filesystem::weakly_canonical(s.path() / "files/motd"));
  REQUIRE(c.iaas.size() == 2);
  CHECK(c.iaas[1].properties.at("instanceType") == "m1.medium");
  CHECK(c.login.user == "admin");
  CHECK_FALSE(c.login.ssh);
  CHECK(c.ntp_servers == std::vector<std::string>{"ntp.example.org", "192.0.2.1", "2001:db8::123"});
}

TEST_CASE("unknown keys get a did-you-mean hint, all errors are reported") {
  test::Scratch s;
  CHECK(errors_for("tpye: php\nmode: generic\nserver_app: [php]\n", s) ==
        "c.yaml:1:1: unknown key 'tpye' (did you mean 'type'?)\n"
        "c.yaml:3:1: unknown key 'server_app' (did you mean 'server_apps'?)\n"
        "c.yaml:1:1: missing required key 'type'\n");
  CHECK(errors_for("type: php\nbase: {os: debian-12, sise: 4G}\n", s) ==
        "c.yaml:2:23: unknown key 'base.sise' (did you mean 'base.size'?)\n");
  CHECK(errors_for("type: php\nzzzzzz: 1\n", s) == "c.yaml:2:1: unknown key 'zzzzzz'\n");
}

TEST_CASE("wrong types are named with their position") {
  test::Scratch s;
  CHECK(errors_for("type: [php]\n", s) == "c.yaml:1:7: 'type' must be a string\n");
  CHECK(errors_for("type: php\nmulti_tenant: maybe\n", s) == "c.yaml:2:15: 'multi_tenant' must be true or false\n");
  CHECK(errors_for("type: php\npackages: curl\n", s) == "c.yaml:2:11: 'packages' must be a list of strings\n");
  CHECK(errors_for("type: php\nports:\n  - {port: eighty}\n", s) ==
        "c.yaml:3:12: 'ports[0].port' must be an integer\n");
  CHECK(errors_for("type: php\nmode: fast\n", s) == "c.yaml:2:7: invalid mode 'fast': expected generic or full\n");
  CHECK(errors_for("type: PHP\n", s) == "c.yaml:1:7: invalid type 'PHP': must match ^[a-z][a-z0-9-]{0,31}$\n");
  CHECK(errors_for("type: php\ncategory: web\n", s) ==
        "c.yaml:2:11: invalid category 'web': expected framework, data, application or load-balancer\n");
  CHECK(errors_for("- type\n", s) == "c.yaml:1:1: the cartridge definition must be a YAML mapping (key: value)\n");
}

TEST_CASE("base needs exactly one of os and image") {
  test::Scratch s;
  s.write("img.qcow2", "x");
  CHECK(errors_for("type: php\nbase: {os: debian-12, image: img.qcow2}\n", s) ==
        "c.yaml:2:23: base: set exactly one of 'os' and 'image', not both\n");
  CHECK(errors_for("type: php\nbase: {size: 4G}\n", s) == "c.yaml:2:7: base: set exactly one of 'os' and 'image'\n");
  CHECK(errors_for("type: php\nbase: {os: centos-7}\n", s) ==
        "c.yaml:2:12: unsupported base.os 'centos-7': supported: debian-12, debian-13\n");
  CHECK(errors_for("type: php\nbase: {os: debian13}\n", s) ==
        "c.yaml:2:12: unsupported base.os 'debian13': supported: debian-12, debian-13 (did you mean 'debian-13'?)\n");
  CHECK(errors_for("type: php\nbase:\n  os: trixie\n", s) ==
        "c.yaml:3:7: unsupported base.os 'trixie': supported: debian-12, debian-13 (did you mean 'debian-13'?)\n");
  CHECK(errors_for("type: php\nbase: {os: debian-11}\n", s) ==
        "c.yaml:2:12: unsupported base.os 'debian-11': supported: debian-12, debian-13 (did you mean 'debian-12'?)\n");
  CHECK(errors_for("type: php\nbase: {os: debian-12, size: 4X}\n", s) ==
        "c.yaml:2:29: invalid base.size '4X': expected a size like 4G or 512M\n");
  CHECK(errors_for("type: php\nbase: {os: debian-12, size: 512M}\n", s) ==
        "c.yaml:2:29: base.size '512M' is too small: at least 1G\n");
  CHECK(errors_for("type: php\nbase: {image: missing.qcow2}\n", s) ==
        "c.yaml:2:15: base.image 'missing.qcow2' does not exist\n");
}

TEST_CASE("base.firmware and base.secure_boot: hybrid without Secure Boot by default, checked by position") {
  test::Scratch s;
  CHECK(errors_for("type: php\nbase: {os: debian-12, firmware: efi}\n", s) ==
        "c.yaml:2:33: invalid base.firmware 'efi': expected bios, uefi or hybrid (did you mean 'uefi'?)\n");
  CHECK(errors_for("type: php\nbase: {os: debian-12, firmware: hybird}\n", s) ==
        "c.yaml:2:33: invalid base.firmware 'hybird': expected bios, uefi or hybrid (did you mean 'hybrid'?)\n");
  CHECK(errors_for("type: php\nbase: {os: debian-12, firmware: bios, secure_boot: true}\n", s) ==
        "c.yaml:2:39: base.secure_boot needs UEFI: set base.firmware to uefi or hybrid, not bios\n");
  CHECK(errors_for("type: php\nbase: {os: debian-12, secure_boot: yes please}\n", s) ==
        "c.yaml:2:36: 'base.secure_boot' must be true or false\n");
  CHECK(errors_for("type: php\nbase: {os: debian-12, firmwear: uefi}\n", s) ==
        "c.yaml:2:23: unknown key 'base.firmwear' (did you mean 'base.firmware'?)\n");
  s.write("d.yaml", "type: php\n");
  auto plain = load_cartridge(s.path() / "d.yaml").cartridge;
  REQUIRE(plain);
  CHECK(plain->base.firmware == "hybrid");
  CHECK_FALSE(plain->base.secure_boot);
  s.write("e.yaml", "type: php\nbase: {os: debian-12, firmware: uefi, secure_boot: true}\n");
  auto sb = load_cartridge(s.path() / "e.yaml").cartridge;
  REQUIRE(sb);
  CHECK(sb->base.firmware == "uefi");
  CHECK(sb->base.secure_boot);
}

TEST_CASE("files must stay inside the cartridge folder and have absolute destinations") {
  test::Scratch s;
  s.write("files/motd", "hi");
  s.write("../outside-secret", "x");
  CHECK(errors_for("type: php\nfiles:\n  - {source: ../outside-secret, dest: /etc/x}\n", s) ==
        "c.yaml:3:14: files[0].source '../outside-secret' is outside the cartridge folder " + s.path().string() + "\n");
  CHECK(errors_for("type: php\nfiles:\n  - {source: files/motd, dest: etc/motd}\n", s) ==
        "c.yaml:3:32: files[0].dest 'etc/motd' must be an absolute path\n");
  CHECK(errors_for("type: php\nfiles:\n  - {source: files/nope, dest: /etc/motd}\n", s) ==
        "c.yaml:3:14: files[0].source 'files/nope' does not exist\n");
  CHECK(errors_for("type: php\nfiles:\n  - {source: files/motd, dest: /etc/motd, mode: rwx}\n", s) ==
        "c.yaml:3:49: files[0].mode must be an octal mode like \"0644\"\n");
  CHECK(errors_for("type: php\nfiles:\n  - {source: files/motd, dest: /etc/../shadow}\n", s) ==
        "c.yaml:3:32: files[0].dest '/etc/../shadow' must name a file without '..'\n");
}

TEST_CASE("a files source that is a symlink out of the folder is refused") {
  test::Scratch s;
  s.write("../secret-target", "x");
  std::filesystem::create_symlink(s.path() / "../secret-target", s.path() / "link");
  CHECK(errors_for("type: php\nfiles:\n  - {source: link, dest: /etc/x}\n", s) ==
        "c.yaml:3:14: files[0].source 'link' is outside the cartridge folder " + s.path().string() + "\n");
}

TEST_CASE("ports: duplicates and ranges") {
  test::Scratch s;
  CHECK(errors_for("type: php\nports:\n  - {port: 80}\n  - {port: 80}\n", s) ==
        "c.yaml:4:12: ports[1].port 80 is a duplicate of ports[0]\n");
  CHECK(errors_for("type: php\nports:\n  - {port: 70000}\n", s) ==
        "c.yaml:3:12: ports[0].port 70000 is out of range 1-65535\n");
  CHECK(errors_for("type: php\nports:\n  - {port: 0}\n", s) ==
        "c.yaml:3:12: ports[0].port 0 is out of range 1-65535\n");
  CHECK(errors_for("type: php\nports:\n  - {name: x}\n", s) == "c.yaml:3:5: ports[0]: missing required key 'port'\n");
}

TEST_CASE("YAML aliases, syntax errors, duplicate keys") {
  test::Scratch s;
  CHECK(errors_for("a: &a [x, x]\nb: &b [*a, *a]\ntype: php\n", s) ==
        "c.yaml:2:8: YAML aliases are not allowed\nc.yaml:2:12: YAML aliases are not allowed\n");
  CHECK(errors_for("type: php\nports: [\n", s).rfind("c.yaml:3:1: YAML syntax error: ", 0) == 0);
  CHECK(errors_for("type: php\ntype: ruby\n", s) == "c.yaml:2:1: duplicate key 'type' (first at line 1)\n");
  CHECK(errors_for("", s) == "c.yaml:1:1: the file is empty: at least 'type' is required\n");
}

TEST_CASE("a billion-laughs document is refused quickly, not expanded") {
  test::Scratch s;
  std::string yaml = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on
  // `"literal" + std::to_string(i)` (Release builds with -Werror).
  for (int i = 1; i < 10; ++i) {
    std::string name = "a";
    name += std::to_string(i);
    yaml.append(name).append(": &").append(name).append(" [");
    for (int j = 0; j < 9; ++j) {
      yaml.append(j ? ", " : "").append("*a").append(std::to_string(i - 1));
    }
    yaml += "]\n";
  }
  const auto text = errors_for(yaml, s);
  CHECK(text.rfind("c.yaml:2:10: YAML aliases are not allowed\n", 0) == 0);
}

TEST_CASE("inputs found by fuzz_loader: a ',' where a document starts, very long names") {
  test::Scratch s;
  // yaml-cpp returned endless empty documents for these; validate never ended.
  CHECK(errors_for(", a\n", s) == "c.yaml:1:1: YAML syntax error: unexpected ','\n");
  CHECK(errors_for("[a], b\n", s) == "c.yaml:1:4: YAML syntax error: unexpected ','\n");
  CHECK(errors_for("type: a\n---\ntype: b\n", s) == "c.yaml:1:1: expected one YAML document, found 2\n");
  // std::regex recursed once per character: 40000 overflowed the stack.
  const std::string long_name(200000, 'a');
  CHECK(errors_for("type: x\npackages: [" + long_name + "]\n", s).empty());
  CHECK(errors_for("type: x\nagent: {mb_urls: [\"" + long_name + ":1883\"]}\n", s).empty());
  CHECK(errors_for("type: x\nagent: {mb_urls: [\"" + long_name + ":188300\"]}\n", s) ==
        "c.yaml:2:19: agent.mb_urls[0] '" + long_name + ":188300' is not a valid host:port\n");
  CHECK(errors_for("type: x\nserver_apps: [" + long_name + "-]\n", s) ==
        "c.yaml:2:15: server_apps[0] '" + long_name + "-' is not a valid Puppet class name\n");
  CHECK(errors_for("type: " + std::string(33, 'a') + "\n", s) ==
        "c.yaml:1:7: invalid type '" + std::string(33, 'a') + "': must match ^[a-z][a-z0-9-]{0,31}$\n");
}

TEST_CASE("huge and binary files") {
  test::Scratch s;
  LoadOptions small;
  small.max_file_bytes = 100;
  CHECK(errors_for("type: php\n# " + std::string(200, 'x') + "\n", s, small) ==
        "c.yaml:1:1: file is too large (213 bytes; limit 100)\n");
  CHECK(errors_for(std::string("type: php\nx: a\0b\n", 16), s) == "c.yaml:2:5: file is not text: control byte 0x00\n");
}

TEST_CASE("apps must be modules that exist") {
  test::Scratch s;
  std::filesystem::create_directories(s.path() / "modules/php");
  std::filesystem::create_directories(s.path() / "modules/mysql");
  LoadOptions opts;
  opts.puppet_modules = s.path() / "modules";
  CHECK(errors_for("type: php\nserver_apps: [phpp]\n", s, opts) ==
        "c.yaml:2:15: server_apps[0] 'phpp' is not a module in " + (s.path() / "modules").string() +
            " (did you mean 'php'?)\n");
  CHECK(errors_for("type: php\ndependent_apps: [Bad-Name]\n", s, opts) ==
        "c.yaml:2:18: dependent_apps[0] 'Bad-Name' is not a valid Puppet class name\n");
}

TEST_CASE("iaas entries") {
  test::Scratch s;
  CHECK(errors_for("type: php\niaas:\n  - {type: gce, region: x}\n", s) ==
        "c.yaml:3:12: iaas[0].type 'gce' is not supported: expected openstack or ec2\n");
  CHECK(errors_for("type: php\niaas:\n  - {type: ec2}\n", s) == "c.yaml:3:5: iaas[0]: missing required key 'region'\n");
}

TEST_CASE("login and time") {
  test::Scratch s;
  CHECK(errors_for("type: php\nlogin: root\n", s) == "c.yaml:2:8: 'login' must be a mapping with user and ssh\n");
  CHECK(errors_for("type: php\nlogin: {usr: admin}\n", s) ==
        "c.yaml:2:9: unknown key 'login.usr' (did you mean 'login.user'?)\n");
  CHECK(errors_for("type: php\nlogin: {user: Admin}\n", s) ==
        "c.yaml:2:15: invalid login.user 'Admin': expected root or a user name ^[a-z_][a-z0-9_-]{0,31}$\n");
  CHECK(errors_for("type: php\nlogin: {user: www-data}\n", s) ==
        "c.yaml:2:15: login.user 'www-data' is a system account: use root or a name of its own\n");
  CHECK(errors_for("type: php\nlogin: {user: systemd-network}\n", s) ==
        "c.yaml:2:15: login.user 'systemd-network' is a system account: use root or a name of its own\n");
  CHECK(errors_for("type: php\nlogin: {user: [a]}\n", s) == "c.yaml:2:15: 'login.user' must be a string\n");
  CHECK(errors_for("type: php\nlogin: {ssh: off-ish}\n", s) == "c.yaml:2:14: 'login.ssh' must be true or false\n");
  CHECK(errors_for("type: php\ntime: [pool.ntp.org]\n", s) ==
        "c.yaml:2:7: 'time' must be a mapping with ntp_servers\n");
  CHECK(errors_for("type: php\ntime: {ntp_server: [a]}\n", s) ==
        "c.yaml:2:8: unknown key 'time.ntp_server' (did you mean 'time.ntp_servers'?)\n");
  CHECK(errors_for("type: php\ntime: {ntp_servers: ntp.example.org}\n", s) ==
        "c.yaml:2:21: 'time.ntp_servers' must be a list of strings\n");
  CHECK(errors_for("type: php\ntime: {ntp_servers: [\"ntp.example.org:123\", -bad]}\n", s) ==
        "c.yaml:2:22: time.ntp_servers[0] 'ntp.example.org:123' is not a valid host name or IP address\n"
        "c.yaml:2:45: time.ntp_servers[1] '-bad' is not a valid host name or IP address\n");
  CHECK(errors_for("type: php\ntime: {ntp_servers: [a.example, b.example, a.example]}\n", s) ==
        "c.yaml:2:44: time.ntp_servers[2] 'a.example' is listed twice\n");
}

TEST_CASE("did_you_mean picks the closest candidate only when close") {
  CHECK(did_you_mean("tpye", {"type", "host"}) == "type");
  CHECK(did_you_mean("xyzzy", {"type", "host"}).empty());
  // The one wording of the hint, for the CLI and the loader.
  CHECK(did_you_mean_suffix("tpye", {"type", "host"}) == " (did you mean 'type'?)");
  CHECK(did_you_mean_suffix("tpye", {"type"}, "base.") == " (did you mean 'base.type'?)");
  CHECK(did_you_mean_suffix("xyzzy", {"type", "host"}).empty());
}
