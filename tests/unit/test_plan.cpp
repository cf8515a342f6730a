// The plan: cache keys change exactly when their inputs change; rendered configs.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "cartridge/loader.hpp"
#include "image/manifest.hpp"
#include "pipeline/steps/step.hpp"
#include "plan/plan.hpp"
#include "test_support.hpp"

using namespace bi;

namespace {

struct Fixture {
  test::Scratch s;
  Resources res;
  std::map<std::string, std::string> mirror; // URL -> InRelease content
  std::vector<std::string> fetched;
  Fixture() {
    mirror["http://mirror/debian/dists/bookworm/InRelease"] = "Packages sha256 aaa\n";
    res.fetch_url = [this](const std::string& url) -> Expected<std::string> {
      fetched.push_back(url);
      if (auto it = mirror.find(url); it != mirror.end()) {
        return it->second;
      }
      return fail(url, "cannot fetch: 404", ExitCode::host_missing);
    };
    s.write("puppet/modules/php/manifests/init.pp", "class php {}\n");
    s.write("puppet/modules/base/manifests/init.pp", "class base {}\n");
    s.write("init-scripts/sbin/cartridge-init", "#!/bin/bash\necho v1\n");
    s.write("init-scripts/systemd/cartridge-init.service", "[Unit]\n[Install]\nWantedBy=multi-user.target\n");
    s.write("agent.deb", "deb");
    s.write("sources", "deb http://mirror/debian bookworm main\n");
    s.write("files/motd", "motd v1\n");
    res.puppet_dir = s.path() / "puppet";
    res.init_scripts_dir = s.path() / "init-scripts";
    res.agent_deb = s.path() / "agent.deb";
    res.apt_sources = s.path() / "sources";
  }
  Plan plan(const std::string& yaml, Mode mode) const {
    const auto file = s.write("c.yaml", yaml);
    auto r = load_cartridge(file);
    REQUIRE(r.cartridge);
    auto p = make_plan(*r.cartridge, mode, OutputFormat::qcow2, res);
    REQUIRE(p);
    return *p;
  }
};

const char* k_yaml = "type: php\nserver_apps: [php]\npackages: [curl]\nports: [{port: 80}, {port: 443}]\n"
                     "files: [{source: files/motd, dest: /etc/motd}]\n";

} // namespace

TEST_CASE("plans are deterministic") {
  Fixture f;
  auto a = f.plan(k_yaml, Mode::full);
  auto b = f.plan(k_yaml, Mode::full);
  CHECK(a.inputs_key == b.inputs_key);
  CHECK(a.to_json() == b.to_json());
  CHECK(a.image_name == "php-full-" + a.inputs_key.substr(0, 12));
}

TEST_CASE("an init-script or files change touches only the final image, not the layers") {
  Fixture f;
  auto before = f.plan(k_yaml, Mode::full);
  SECTION("init script") { f.s.write("init-scripts/sbin/cartridge-init", "#!/bin/bash\necho v2\n"); }
  SECTION("files entry") { f.s.write("files/motd", "motd v2\n"); }
  auto after = f.plan(k_yaml, Mode::full);
  CHECK(after.base.key == before.base.key);
  CHECK(after.system.key == before.system.key);
  CHECK(after.inputs_key != before.inputs_key);
}

TEST_CASE("a Puppet module or agent change rebuilds the full system layer but not the base") {
  Fixture f;
  auto before = f.plan(k_yaml, Mode::full);
  auto generic_before = f.plan(k_yaml, Mode::generic);
  SECTION("module") { f.s.write("puppet/modules/php/manifests/init.pp", "class php { }\n"); }
  SECTION("agent") { f.s.write("agent.deb", "deb2"); }
  auto after = f.plan(k_yaml, Mode::full);
  CHECK(after.base.key == before.base.key);
  CHECK(after.system.key != before.system.key);
  // Generic images install neither at build time.
  CHECK(f.plan(k_yaml, Mode::generic).system.key == generic_before.system.key);
}

TEST_CASE("a mirror or package change rebuilds what depends on it") {
  Fixture f;
  auto before = f.plan(k_yaml, Mode::generic);
  f.s.write("sources", "deb http://other/debian bookworm main\n");
  f.mirror["http://other/debian/dists/bookworm/InRelease"] = "Packages sha256 aaa\n";
  auto mirror = f.plan(k_yaml, Mode::generic);
  CHECK(mirror.base.key != before.base.key);
  auto pkgs = f.plan("type: php\npackages: [curl, git]\n", Mode::generic);
  CHECK(pkgs.base.key == mirror.base.key);
  CHECK(pkgs.system.key != mirror.system.key);
}

TEST_CASE("a package version change on the mirror (new InRelease) rebuilds the base layer") {
  Fixture f;
  auto before = f.plan(k_yaml, Mode::generic);
  CHECK(f.fetched == std::vector<std::string>{"http://mirror/debian/dists/bookworm/InRelease"});
  f.mirror["http://mirror/debian/dists/bookworm/InRelease"] = "Packages sha256 bbb\n";
  auto after = f.plan(k_yaml, Mode::generic);
  CHECK(after.base.key != before.base.key);
  CHECK(after.system.key != before.system.key);
}

TEST_CASE("a mirror index digest seen within the window is used without a fetch") {
  Fixture f;
  f.res.index_cache_dir = f.s.path() / "index-cache";
  f.res.index_max_age = std::chrono::seconds(3600);
  auto first = f.plan(k_yaml, Mode::generic);
  REQUIRE(f.fetched.size() == 1);
  // A publish on the mirror inside the window: this run keeps the view it saw first.
  f.mirror["http://mirror/debian/dists/bookworm/InRelease"] = "Packages sha256 bbb\n";
  auto pinned = f.plan(k_yaml, Mode::generic);
  CHECK(f.fetched.size() == 1);
  CHECK(pinned.base.key == first.base.key);
}

TEST_CASE("with no window every plan asks the mirror") {
  Fixture f;
  f.res.index_cache_dir = f.s.path() / "index-cache-no-window";
  auto first = f.plan(k_yaml, Mode::generic);
  f.res.index_max_age = std::chrono::seconds(0);
  f.mirror["http://mirror/debian/dists/bookworm/InRelease"] = "Packages sha256 ccc\n";
  auto second = f.plan(k_yaml, Mode::generic);
  CHECK(f.fetched.size() == 2);
  CHECK(second.base.key != first.base.key);
}

TEST_CASE("an unreachable mirror index is a host error unless one was seen before") {
  Fixture f;
  f.res.index_cache_dir = f.s.path() / "index-cache";
  auto seen = f.plan(k_yaml, Mode::generic);
  f.mirror.clear();
  f.s.write("sources", "deb http://mirror/debian bookworm main\n# comment changes nothing\n");
  f.res.index_cache_dir.clear();
  const auto file = f.s.write("c.yaml", k_yaml);
  auto c = load_cartridge(file);
  auto offline = make_plan(*c.cartridge, Mode::generic, OutputFormat::qcow2, f.res);
  REQUIRE_FALSE(offline);
  CHECK(offline.error().code == ExitCode::host_missing);
  CHECK(offline.error().to_string().rfind(
            "http://mirror/debian/dists/bookworm/InRelease: cannot read the mirror's index (needed for cache keys): ",
            0) == 0);
}

TEST_CASE("mirror_suites reads deb822, one-line sources and bare URLs") {
  using P = std::vector<std::pair<std::string, std::string>>;
  CHECK(mirror_suites("Types: deb\nURIs: http://a/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
                      "Types: deb-src\nURIs: http://src\nSuites: bookworm\n\n"
                      "Types: deb\n# note\nURIs: http://s/debian-security\nSuites: bookworm-security\n",
                      "bookworm") == P{{"http://a/debian", "bookworm"},
                                       {"http://a/debian", "bookworm-updates"},
                                       {"http://s/debian-security", "bookworm-security"}});
  CHECK(mirror_suites("deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main\n", "bookworm") ==
        P{{"http://m/debian", "bookworm"}});
  CHECK(mirror_suites("http://m/debian", "bookworm") == P{{"http://m/debian", "bookworm"}});
}

TEST_CASE("apt_sources_for_release renames the suites of the host's sources, nothing else") {
  const std::string host = "Types: deb\n"
                           "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
                           "URIs: http://deb.debian.org/debian\n"
                           "Suites: bookworm bookworm-updates\n"
                           "Components: main\n"
                           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                           "\n"
                           "Types: deb\n"
                           "URIs: http://deb.debian.org/debian-security\n"
                           "Suites: bookworm-security # the security archive\n"
                           "Components: main\n"
                           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
  const auto& trixie = *find_os_release("debian-13");
  const auto& bookworm = *find_os_release("debian-12");
  std::string expected = host;
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"Suites: bookworm bookworm-updates", "Suites: trixie trixie-updates"},
           {"Suites: bookworm-security #", "Suites: trixie-security #"}}) {
    expected.replace(expected.find(from), from.size(), to);
  }
  CHECK(apt_sources_for_release(host, trixie) == expected);
  // The file's own release: byte for byte the file (so debian-12's base key is unchanged).
  CHECK(apt_sources_for_release(host, bookworm) == host);
  CHECK(apt_sources_for_release(expected, bookworm) == host);
  // One-line format, with and without options; a suite of no known release stays.
  CHECK(apt_sources_for_release("deb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main\n"
                                "deb http://m/debian-security bookworm-security main\n"
                                "deb [trusted=yes] http://local/repo ./\n"
                                "deb-src http://m/debian bookworm-updates main",
                                trixie) == "deb [arch=amd64 signed-by=/k.gpg] http://m/debian trixie main\n"
                                           "deb http://m/debian-security trixie-security main\n"
                                           "deb [trusted=yes] http://local/repo ./\n"
                                           "deb-src http://m/debian trixie-updates main");
  // Component and URI words that happen to contain a codename are not suites.
  CHECK(apt_sources_for_release("deb http://m/bookworm bookworm bookworm-main\n", trixie) ==
        "deb http://m/bookworm trixie bookworm-main\n");
}

TEST_CASE("base.os debian-13: trixie's sources, index and pin; never debian-12's layers") {
  Fixture f;
  f.s.write("sources", "Types: deb\nURIs: http://mirror/debian\nSuites: bookworm bookworm-updates\n\n"
                       "Types: deb\nURIs: http://mirror/debian-security\nSuites: bookworm-security\n");
  for (const auto* suite : {"bookworm", "bookworm-updates", "trixie", "trixie-updates"}) {
    f.mirror[std::string("http://mirror/debian/dists/") + suite + "/InRelease"] = std::string("Packages ") + suite;
  }
  f.mirror["http://mirror/debian-security/dists/bookworm-security/InRelease"] = "Packages bookworm-security";
  f.mirror["http://mirror/debian-security/dists/trixie-security/InRelease"] = "Packages trixie-security";
  f.res.index_cache_dir = f.s.path() / "index-cache";
  f.res.index_max_age = std::chrono::seconds(3600);
  auto bookworm = f.plan(k_yaml, Mode::full);
  f.fetched.clear();
  auto trixie = f.plan(std::string(k_yaml) + "base: {os: debian-13}\n", Mode::full);
  CHECK(bookworm.base.suite == "bookworm");
  CHECK_FALSE(bookworm.base.mirror_rewritten);
  CHECK(trixie.base.os == "debian-13");
  CHECK(trixie.base.suite == "trixie");
  CHECK(trixie.base.mirror_rewritten);
  CHECK(trixie.base.mirror_content.find("Suites: trixie trixie-updates\n") != std::string::npos);
  CHECK(trixie.base.mirror_content.find("Suites: " + std::string(find_os_release("debian-13")->security_suite) +
                                        "\n") != std::string::npos);
  CHECK(trixie.base.mirror_content.find("bookworm") == std::string::npos);
  // Its own view of the mirror: trixie's InRelease files, not the pin of bookworm's.
  CHECK(f.fetched == std::vector<std::string>{"http://mirror/debian/dists/trixie/InRelease",
                                              "http://mirror/debian/dists/trixie-updates/InRelease",
                                              "http://mirror/debian-security/dists/trixie-security/InRelease"});
  CHECK(trixie.base.mirror_index != bookworm.base.mirror_index);
  // No layer of one release is another's; the boot partition has no OS in it.
  CHECK(trixie.base.key != bookworm.base.key);
  CHECK(trixie.system.key != bookworm.system.key);
  CHECK(trixie.inputs_key != bookworm.inputs_key);
  CHECK(trixie.bootloader_key == bookworm.bootloader_key);
  CHECK(trixie.to_json()["layers"]["base"]["os"] == "debian-13");
  CHECK(trixie.to_json()["layers"]["base"]["suite"] == "trixie");
  // Each release keeps its pin: a publish on the mirror changes neither within the window.
  f.mirror["http://mirror/debian/dists/trixie/InRelease"] = "Packages trixie, later";
  f.mirror["http://mirror/debian/dists/bookworm/InRelease"] = "Packages bookworm, later";
  f.fetched.clear();
  CHECK(f.plan(std::string(k_yaml) + "base: {os: debian-13}\n", Mode::full).base.key == trixie.base.key);
  CHECK(f.plan(k_yaml, Mode::full).base.key == bookworm.base.key);
  CHECK(f.fetched.empty());
}

TEST_CASE("a bare mirror URL is pinned per release") {
  Fixture f;
  f.mirror["http://mirror/debian/dists/trixie/InRelease"] = "Packages trixie\n";
  f.res.index_cache_dir = f.s.path() / "index-cache";
  f.res.index_max_age = std::chrono::seconds(3600);
  auto bookworm = f.plan("type: php\nbase: {os: debian-12, mirror: http://mirror/debian}\n", Mode::generic);
  auto trixie = f.plan("type: php\nbase: {os: debian-13, mirror: http://mirror/debian}\n", Mode::generic);
  CHECK(f.fetched == std::vector<std::string>{"http://mirror/debian/dists/bookworm/InRelease",
                                              "http://mirror/debian/dists/trixie/InRelease"});
  CHECK_FALSE(trixie.base.mirror_rewritten);
  CHECK(trixie.base.mirror_index != bookworm.base.mirror_index);
}

TEST_CASE("a generic cartridge without packages uses the base layer as its system layer") {
  Fixture f;
  auto p = f.plan("type: tiny\nmode: generic\n", Mode::generic);
  CHECK_FALSE(p.system.needed);
  CHECK(p.system.key == p.base.key);
}

TEST_CASE("a full build without the agent package is a host error") {
  Fixture f;
  f.res.agent_deb = f.s.path() / "missing.deb";
  const auto file = f.s.write("c.yaml", "type: php\n");
  auto c = load_cartridge(file);
  auto p = make_plan(*c.cartridge, Mode::full, OutputFormat::qcow2, f.res);
  REQUIRE_FALSE(p);
  CHECK(p.error().code == ExitCode::host_missing);
}

TEST_CASE("rendered configuration files") {
  Fixture f;
  auto p = f.plan(k_yaml, Mode::full);
  const auto& c = p.cartridge;
  CHECK(render_cartridge_conf(c, Mode::full) ==
        "# Written by build-image; read by cartridge-init at boot.\nSERVICE_NAME=php\nCARTRIDGE_MODE=full\n"
        "PUPPET_SERVER=puppet\nPUPPET_ENVIRONMENT=production\nPORTS=80|443\nLOGIN_USER=root\nSSH=on\n");
  CHECK(render_agent_conf(c).find("mb.urls = 127.0.0.1:1883\n") != std::string::npos);
  CHECK(render_agent_conf(c).find("ports = 80|443\n") != std::string::npos);
  CHECK(render_puppet_apply_manifest({"mysql", "wordpress"}) ==
        "# Generated by build-image for the full image build.\ninclude base\ninclude mysql\n"
        "Class['base'] -> Class['mysql']\ninclude wordpress\nClass['mysql'] -> Class['wordpress']\n");
  bool has_unit = false;
  for (const auto& u : p.enable_units) {
    has_unit = has_unit || u == "cartridge-init.service";
  }
  CHECK(has_unit);
}

TEST_CASE("the plan holds the build as an ordered list of registered steps") {
  Fixture f;
  auto full = f.plan(k_yaml, Mode::full);
  std::vector<std::string> kinds;
  for (const auto& s : full.steps) {
    CHECK(find_step_kind(s.kind) != nullptr); // every kind the plan emits has its one file
    for (const auto& in : s.inputs) {         // inputs come before the step that reads them
      CHECK(std::find(kinds.begin(), kinds.end(), in) != kinds.end());
    }
    kinds.push_back(s.kind);
  }
  CHECK(kinds == std::vector<std::string>{"base-os", "bootloader", "system", "assemble", "convert", "finalize"});
  CHECK(full.steps[1].early);
  CHECK(full.steps[2].same_as.empty());
  CHECK(full.layer_keys() == std::map<std::string, std::string>{{"base", full.base.key},
                                                                {"bootloader", full.bootloader_key},
                                                                {"system", full.system.key}});
  const auto j = full.to_json();
  REQUIRE(j["steps"].size() == 6);
  CHECK(j["steps"][2]["layer"] == "system");
  CHECK(j["steps"][2]["key"] == full.system.key);
  CHECK(j["steps"][3]["inputs"] == nlohmann::json::array({"system", "bootloader"}));

  // Nothing to add to the base: the system step is the base layer, not a build.
  auto bare = f.plan("type: tiny\n", Mode::generic);
  REQUIRE_FALSE(bare.system.needed);
  CHECK(bare.steps[2].same_as == "base-os");
  CHECK(bare.layer_keys().at("system") == bare.base.key);
}

TEST_CASE("resources: the installed data next to the executable wins over the build tree") {
  test::Scratch s;
  REQUIRE(std::getenv("BUILD_IMAGE_SOURCE_DIR") == nullptr);
  REQUIRE(std::getenv("BUILD_IMAGE_AGENT_DEB") == nullptr);
  const fs::path prefix = s.path() / "opt" / "tool";
  fs::create_directories(prefix / "bin");
  // A build tree (no share/ beside it): the tree the binary was compiled in.
  const Resources tree = Resources::discover(prefix / "bin");
  CHECK(tree.puppet_dir.parent_path() != prefix / "share" / "build-image");
  CHECK(tree.templates_dir == tree.puppet_dir.parent_path() / "templates");

  fs::create_directories(prefix / "share" / "build-image" / "puppet");
  const Resources installed = Resources::discover(prefix / "bin");
  const fs::path data = prefix / "share" / "build-image";
  CHECK(installed.puppet_dir == data / "puppet");
  CHECK(installed.init_scripts_dir == data / "init-scripts");
  CHECK(installed.templates_dir == data / "templates");
  CHECK(installed.agent_deb.parent_path() == data);
  CHECK(installed.agent_deb.filename().string().rfind("cartridge-agent_", 0) == 0);
  CHECK(installed.agent_deb.extension() == ".deb");
}

TEST_CASE("base.firmware picks the packages and the image key; plan --json and the manifest carry it") {
  Fixture f;
  auto hybrid = f.plan("type: tiny\n", Mode::generic);
  auto uefi = f.plan("type: tiny\nbase: {os: debian-12, firmware: uefi}\n", Mode::generic);
  auto sb = f.plan("type: tiny\nbase: {os: debian-12, firmware: uefi, secure_boot: true}\n", Mode::generic);
  auto bios = f.plan("type: tiny\nbase: {os: debian-12, firmware: bios}\n", Mode::generic);
  CHECK(hybrid.base.firmware == "hybrid");
  const auto has = [](const std::vector<std::string>& list, const char* pkg) {
    return std::find(list.begin(), list.end(), pkg) != list.end();
  };
  // The signed boot chain is unpacked for the ESP, not installed into the root filesystem.
  CHECK(hybrid.base.esp_packages ==
        std::vector<std::string>{"shim-signed", "shim-helpers-amd64-signed", "grub-efi-amd64-signed"});
  CHECK(bios.base.esp_packages.empty());
  CHECK_FALSE(has(hybrid.base.packages, "shim-signed"));
  CHECK_FALSE(has(hybrid.base.packages, "grub-efi-amd64-signed"));
  CHECK(hybrid.base.packages == bios.base.packages);
  CHECK(sb.to_json()["layers"]["base"]["esp_packages"].size() == 3);
  // The ESP is mounted at /boot/efi on every layout that has one.
  const auto fstab = [](const Plan& p) {
    for (const auto& o : p.overlay) {
      if (o.dest == "/etc/fstab") {
        return o.content;
      }
    }
    return std::string("(none)");
  };
  const std::string esp_line = "\nLABEL=ESP /boot/efi vfat umask=0077,nofail 0 0\n";
  CHECK(fstab(hybrid).find(esp_line) != std::string::npos);
  CHECK(fstab(uefi).find(esp_line) != std::string::npos);
  CHECK(fstab(bios).find("/boot/efi") == std::string::npos);
  CHECK(fstab(bios).find("\nLABEL=boot /boot ext4 defaults 0 2\n") != std::string::npos);
  // The EFI layouts share one base layer (same packages); BIOS has its own.
  CHECK(hybrid.base.key == uefi.base.key);
  CHECK(uefi.base.key == sb.base.key);
  CHECK(bios.base.key != hybrid.base.key);
  CHECK(hybrid.bootloader_key == bios.bootloader_key);
  // Every choice is a different image.
  const std::set<std::string> keys = {hybrid.inputs_key, uefi.inputs_key, sb.inputs_key, bios.inputs_key};
  CHECK(keys.size() == 4);
  const auto j = sb.to_json();
  CHECK(j["layers"]["base"]["firmware"] == "uefi");
  CHECK(j["layers"]["base"]["secure_boot"] == true);
  CHECK(hybrid.to_json()["layers"]["base"]["secure_boot"] == false);
  CHECK(j["steps"][3]["produces"] == "raw disk (uefi): root layer + overlay + hygiene");
  Manifest m;
  m.plan = j;
  CHECK(m.firmware() == "uefi");
  CHECK(m.secure_boot());
  Manifest old; // written before base.firmware existed: those images were BIOS-only
  old.plan = nlohmann::json::parse(R"({"layers": {"base": {"key": "k"}}})");
  CHECK(old.firmware() == "bios");
  CHECK_FALSE(old.secure_boot());
  CHECK(Manifest{}.firmware() == "bios");
  // The login user boot-test logs in as: from the plan, root when the manifest predates it.
  CHECK(Manifest{}.login_user() == "root");
  Manifest admin;
  admin.plan = nlohmann::json::parse(R"({"login": {"user": "admin", "ssh": true}})");
  CHECK(admin.login_user() == "admin");
  admin.plan = nlohmann::json::parse(R"({"login": {"user": 7}})"); // a wrong shape is not a crash
  CHECK(admin.login_user() == "root");
}

TEST_CASE("login and time reach cartridge.conf, the plan JSON and the keys") {
  Fixture f;
  const auto root = f.plan(k_yaml, Mode::full);
  auto conf_of = [](const Plan& p) {
    for (const auto& o : p.overlay) {
      if (o.dest == "/etc/cartridge/cartridge.conf") {
        return o.content;
      }
    }
    return std::string("(none)");
  };
  CHECK(root.to_json()["login"] == nlohmann::json{{"user", "root"}, {"ssh", true}});
  CHECK(root.to_json()["time"] == nlohmann::json{{"ntp_servers", nlohmann::json::array()}});
  for (const auto& o : root.overlay) {
    CHECK(o.dest.rfind("/etc/sudoers.d/", 0) != 0); // root needs no sudo
  }

  const auto admin = f.plan(std::string(k_yaml) + "login: {user: admin, ssh: false}\n"
                                                  "time: {ntp_servers: [ntp1.example.org, 192.0.2.1]}\n",
                            Mode::full);
  CHECK(conf_of(admin).find("\nLOGIN_USER=admin\nSSH=off\nNTP_SERVERS=ntp1.example.org 192.0.2.1\n") !=
        std::string::npos);
  CHECK(admin.to_json()["login"] == nlohmann::json{{"user", "admin"}, {"ssh", false}});
  CHECK(admin.to_json()["time"]["ntp_servers"] == nlohmann::json::array({"ntp1.example.org", "192.0.2.1"}));
  bool sudoers = false;
  for (const auto& o : admin.overlay) {
    if (o.dest == "/etc/sudoers.d/90-cartridge-login") {
      sudoers = true;
      CHECK(o.mode == 0440);
      CHECK(o.content.find("\nadmin ALL=(ALL:ALL) NOPASSWD: ALL\n") != std::string::npos);
    }
  }
  CHECK(sudoers);
  // sudo joins the system layer; the base is shared; the image key differs.
  CHECK(std::count(admin.system.packages.begin(), admin.system.packages.end(), "sudo") == 1);
  CHECK(admin.base.key == root.base.key);
  CHECK(admin.system.key != root.system.key);
  CHECK(admin.inputs_key != root.inputs_key);

  // Only the time servers: the layers stay, the image changes.
  const auto ntp = f.plan(std::string(k_yaml) + "time: {ntp_servers: [ntp1.example.org]}\n", Mode::full);
  CHECK(ntp.system.key == root.system.key);
  CHECK(ntp.inputs_key != root.inputs_key);
  CHECK(conf_of(ntp).find("\nLOGIN_USER=root\nSSH=on\nNTP_SERVERS=ntp1.example.org\n") != std::string::npos);
}

TEST_CASE("add_login_user writes the account like useradd, with a locked password and a private home") {
  test::Scratch s;
  const auto root = s.path() / "root";
  s.write("root/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
                             "old:x:1000:1000::/home/old:/bin/bash\n");
  s.write("root/etc/shadow", "root:*:19000:0:99999:7:::\n");
  s.write("root/etc/group", "root:x:0:\nold:x:1000:\nsudo:x:27:\nodd:x:1001:\n");
  s.write("root/etc/gshadow", "root:*::\n");
  s.write("root/etc/skel/.profile", "# profile\n");
  ::chmod((root / "etc/shadow").c_str(), 0640);
  REQUIRE(add_login_user(root, "admin"));
  auto read = [&](const char* f) { return *read_file(root / f); };
  // 1000 is old's uid and 1001 a group's gid: the first id free in both.
  CHECK(read("etc/passwd").find("\nadmin:x:1002:1002::/home/admin:/bin/bash\n") != std::string::npos);
  CHECK(read("etc/shadow") == "root:*:19000:0:99999:7:::\nadmin:!::0:99999:7:::\n");
  CHECK(read("etc/group").find("\nadmin:x:1002:\n") != std::string::npos);
  CHECK(read("etc/gshadow") == "root:*::\nadmin:!::\n");
  struct stat st {};
  REQUIRE(::stat((root / "etc/shadow").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  REQUIRE(::stat((root / "home/admin").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(st.st_uid == 1002);
  CHECK(read("home/admin/.profile") == "# profile\n");

  auto again = add_login_user(root, "admin");
  REQUIRE_FALSE(again);
  CHECK(again.error().to_string() ==
        "admin: login.user already exists in the image (a package or base.image made it): pick another name");
}
