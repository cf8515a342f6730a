// Black-box tests of the build-image binary: exact stdout, stderr and exit codes.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

using namespace bi;
namespace fs = std::filesystem;

namespace {

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome run_binary(const std::string& binary, std::vector<std::string> args, const std::string& cwd,
                   const std::vector<std::string>& unset_env = {}) {
  const std::string err_file = std::filesystem::temp_directory_path() / ("bi-cli-err-" + std::to_string(::getpid()));
  std::vector<std::string> argv = {"sh", "-c", "exec \"$0\" \"$@\" 2>\"$BI_ERR\"", binary};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o;
  o.cwd = cwd;
  o.unset_env = unset_env;
  o.extra_env["BI_ERR"] = err_file;
  o.extra_env["BUILD_IMAGE_CACHE"] = std::filesystem::temp_directory_path() / "bi-cli-cache";
  auto r = run_process(argv, o);
  REQUIRE(r);
  auto err_text = read_file(err_file);
  std::string err = err_text ? *err_text : "";
  std::filesystem::remove(err_file);
  return {r->exit_code, r->output, err};
}

Outcome run_cli(std::vector<std::string> args, const std::string& cwd = BI_SOURCE_DIR) {
  return run_binary(BI_BINARY, std::move(args), cwd);
}

} // namespace

TEST_CASE("no arguments prints help and succeeds") {
  auto r = run_cli({});
  CHECK(r.code == 0);
  CHECK(r.out.rfind("usage: build-image [COMMAND] [OPTIONS] FILE...\n", 0) == 0);
  CHECK(r.out.find("exit codes: 0 ok, 1 build failed, 2 bad input or usage, 3 host is missing something") !=
        std::string::npos);
}

TEST_CASE("unknown commands and options get did-you-mean and exit 2") {
  auto a = run_cli({"biuld"});
  CHECK(a.code == 2);
  CHECK(a.err == "build-image: error: unknown command 'biuld' (did you mean 'build'?)\n");
  auto b = run_cli({"validate", "--modee", "full", "templates/php.yaml"});
  CHECK(b.code == 2);
  CHECK(b.err == "build-image: error: unknown option '--modee' (did you mean '--mode'?)\n");
  // An option of another command is refused, naming the command and where it belongs.
  auto wrong = run_cli({"validate", "--firmware", "uefi", "templates/php.yaml"});
  CHECK(wrong.code == 2);
  CHECK(wrong.err == "build-image: error: option '--firmware' does not apply to 'validate' (it is for: boot-test)\n");
  auto wrong_build = run_cli({"--since", "HEAD", "templates/php.yaml"}); // build, the default command
  CHECK(wrong_build.code == 2);
  CHECK(wrong_build.err == "build-image: error: option '--since' does not apply to 'build' (it is for: plan)\n");
  auto wrong_output = run_cli({"plan", "--output", "x", "templates/php.yaml"});
  CHECK(wrong_output.code == 2);
  CHECK(wrong_output.err == "build-image: error: option '--output' does not apply to 'plan' (it is for: build, list, "
                            "inspect, boot-test, register, cartridge-json, report)\n");
  auto c = run_cli({"validate", "--mode", "fast", "templates/php.yaml"});
  CHECK(c.code == 2);
  CHECK(c.err == "build-image: error: invalid --mode 'fast': expected generic or full\n");
  auto d = run_cli({"build", "--format", "qcow3", "templates/php.yaml"});
  CHECK(d.code == 2);
  CHECK(d.err == "build-image: error: invalid --format 'qcow3': expected qcow2, raw or vmdk\n");
  auto e = run_cli({"cache", "vrify"});
  CHECK(e.code == 2);
  CHECK(e.err == "build-image: error: unknown cache action 'vrify' (did you mean 'verify'?)\n");
}

TEST_CASE("validate accepts the templates and reports every error of a bad file") {
  auto ok = run_cli({"validate", "templates/php.yaml", "tests/data/tiny.yaml"});
  CHECK(ok.code == 0);
  CHECK(ok.out == "templates/php.yaml: ok (php, full)\ntests/data/tiny.yaml: ok (tiny, generic)\n");
  CHECK(ok.err.empty());

  auto bad = run_cli({"validate", "tests/data/bad.yaml"});
  CHECK(bad.code == 2);
  CHECK(bad.out.empty());
  CHECK(bad.err == "tests/data/bad.yaml:1:1: unknown key 'tpye' (did you mean 'type'?)\n"
                   "tests/data/bad.yaml:1:1: missing required key 'type'\n"
                   "tests/data/bad.yaml:2:7: invalid mode 'fast': expected generic or full\n"
                   "tests/data/bad.yaml:5:12: ports[1].port 80 is a duplicate of ports[0]\n"
                   "build-image: error: tests/data/bad.yaml: 4 errors in the cartridge definition\n");

  auto missing = run_cli({"validate", "nope.yaml"});
  CHECK(missing.code == 2);
  CHECK(missing.err ==
        "nope.yaml:1:1: no such file\nbuild-image: error: nope.yaml: 1 error in the cartridge definition\n");
}

TEST_CASE("validate: login and time errors at their place, exit 2; plan --json carries them") {
  auto bad = run_cli({"validate", "tests/data/bad-login.yaml"});
  CHECK(bad.code == 2);
  CHECK(bad.out.empty());
  CHECK(bad.err ==
        "tests/data/bad-login.yaml:3:9: invalid login.user 'Admin': expected root or a user name "
        "^[a-z_][a-z0-9_-]{0,31}$\n"
        "tests/data/bad-login.yaml:4:8: 'login.ssh' must be true or false\n"
        "tests/data/bad-login.yaml:6:34: time.ntp_servers[1] 'ntp.example.org:123' is not a valid host name or IP "
        "address\n"
        "build-image: error: tests/data/bad-login.yaml: 3 errors in the cartridge definition\n");

  test::Scratch s;
  const auto yaml =
      s.write("c.yaml", "type: tiny\nlogin: {user: admin, ssh: false}\ntime: {ntp_servers: [192.0.2.1]}\n");
  auto plan = run_cli({"plan", "--json", yaml.string()});
  REQUIRE(plan.code == 0);
  const auto p = nlohmann::json::parse(plan.out)["plans"][0];
  CHECK(p["login"] == nlohmann::json{{"user", "admin"}, {"ssh", false}});
  CHECK(p["time"] == nlohmann::json{{"ntp_servers", {"192.0.2.1"}}});
  CHECK(p["layers"]["system"]["packages"] == nlohmann::json::array({"sudo"}));
}

TEST_CASE("a bad file fails the build before anything is built, exit 2") {
  test::Scratch s;
  auto r = run_cli({"build", "--output", s.path().string(), "tests/data/bad.yaml"});
  CHECK(r.code == 2);
  CHECK(r.err.find("build-image: error: tests/data/bad.yaml: 4 errors in the cartridge definition\n") !=
        std::string::npos);
  CHECK(std::filesystem::is_empty(s.path()));
}

TEST_CASE("plan --json shows layers and keys without building") {
  auto r = run_cli({"plan", "--json", "templates/php.yaml"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  const auto& p = j["plans"][0];
  CHECK(p["cartridge"] == "php");
  CHECK(p["mode"] == "full");
  CHECK(p["layers"]["base"]["key"].get<std::string>().size() == 64);
  CHECK(p["layers"]["system"]["puppet_classes"] == nlohmann::json::array({"php"}));
  CHECK(p["image_name"].get<std::string>().rfind("php-full-", 0) == 0);
  auto generic = run_cli({"plan", "--json", "--mode", "generic", "templates/php.yaml"});
  auto g = nlohmann::json::parse(generic.out);
  CHECK(g["plans"][0]["layers"]["base"]["key"] == p["layers"]["base"]["key"]);
  CHECK(g["plans"][0]["inputs_key"] != p["inputs_key"]);
}

TEST_CASE("list and inspect on an empty output folder") {
  test::Scratch s;
  auto l = run_cli({"list", "--output", s.path().string()});
  CHECK(l.code == 0);
  CHECK(l.out == "no images in " + (s.path() / "catalog.json").string() + "\n");
  auto i = run_cli({"inspect", "--output", s.path().string(), "php-full"});
  CHECK(i.code == 2);
  CHECK(i.err == "build-image: error: php-full: no such image (not a file, and not in " +
                     (s.path() / "catalog.json").string() + ")\n");
}

TEST_CASE("plan --since lists exactly the images a change affects (CI job matrix)") {
  test::Scratch s;
  const auto repo = s.path() / "repo";
  std::filesystem::create_directories(repo);
  for (const char* dir : {"init-scripts", "puppet", "templates"}) {
    std::filesystem::copy(std::filesystem::path(BI_SOURCE_DIR) / dir, repo / dir,
                          std::filesystem::copy_options::recursive);
  }
  std::filesystem::copy(std::filesystem::path(BI_SOURCE_DIR) / "tests/data/tiny.yaml", repo / "templates/tiny.yaml");
  std::filesystem::create_directories(repo / "agent");
  s.write("repo/agent/agent.cpp", "v1\n");
  auto git = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"git", "-C", repo.string(), "-c", "user.name=t", "-c", "user.email=t@t"});
    auto r = run_process(args);
    REQUIRE(r);
    REQUIRE(r->exit_code == 0);
  };
  git({"init", "-q"});
  git({"add", "."});
  git({"commit", "-qm", "base"});
  auto affected = [&]() {
    std::vector<std::string> argv = {"sh",
                                     "-c",
                                     "exec \"$0\" \"$@\"",
                                     BI_BINARY,
                                     "plan",
                                     "--json",
                                     "--since",
                                     "HEAD",
                                     "templates/php.yaml",
                                     "templates/tiny.yaml"};
    RunOptions o;
    o.cwd = repo.string();
    o.extra_env["BUILD_IMAGE_SOURCE_DIR"] = repo.string();
    auto r = run_process(argv, o);
    REQUIRE(r);
    REQUIRE(r->exit_code == 0);
    auto j = nlohmann::json::parse(r->output);
    std::vector<std::string> names;
    for (const auto& m : j["matrix"]["include"]) {
      names.push_back(m["cartridge"].get<std::string>() + "-" + m["mode"].get<std::string>());
    }
    return names;
  };
  using V = std::vector<std::string>;
  CHECK(affected().empty());
  SECTION("a Puppet module change rebuilds only the full images that use it") {
    s.write("repo/puppet/modules/php/manifests/extra.pp", "class php::extra {}\n");
    CHECK(affected() == V{"php-full"});
  }
  SECTION("an agent change rebuilds only full images") {
    s.write("repo/agent/agent.cpp", "v2\n");
    CHECK(affected() == V{"php-full"});
  }
  SECTION("an init-script change rebuilds every image") {
    s.write("repo/init-scripts/sbin/cartridge-init", "#!/bin/bash\n");
    CHECK(affected() == V{"php-full", "tiny-generic"});
  }
  SECTION("a cartridge's files entry rebuilds that cartridge only") {
    s.write("repo/templates/files/motd", "new motd\n");
    CHECK(affected() == V{"php-full"});
  }
}

TEST_CASE("--jobs must be a positive number") {
  auto r = run_cli({"build", "--jobs", "0", "templates/php.yaml"});
  CHECK(r.code == 2);
  CHECK(r.err == "build-image: error: invalid --jobs '0': expected a number from 1 to 999\n");
}

TEST_CASE("--cache-url: bad URLs exit 2 before anything is planned or built") {
  auto scheme = run_cli({"build", "--cache-url", "ftp://host/x", "templates/php.yaml"});
  CHECK(scheme.code == 2);
  CHECK(scheme.err ==
        "build-image: error: --cache-url: 'ftp://host/x': unsupported scheme 'ftp' (expected s3, http or https)\n");
  auto secret = run_cli({"build", "--cache-url=https://ci:hunter2@cache.example.org/x", "templates/php.yaml"});
  CHECK(secret.code == 2);
  CHECK(secret.err.find("credentials in the URL are refused") != std::string::npos);
  CHECK(secret.err.find("hunter2") == std::string::npos);
  auto help = run_cli({"help"});
  CHECK(help.out.find("  --cache-url VALUE") != std::string::npos);
}

TEST_CASE("boot-test: usage errors exit 2 before anything boots") {
  test::Scratch s;
  auto a = run_cli({"boot-test"});
  CHECK(a.code == 2);
  CHECK(a.err == "build-image: error: boot-test takes one image (a path, or a name from the catalog)\n");
  auto b = run_cli({"boot-test", "--timeout", "0", "x.qcow2"});
  CHECK(b.code == 2);
  CHECK(b.err == "build-image: error: invalid --timeout '0': expected 1 to 86400 seconds\n");
  auto c = run_cli({"boot-test", "--broker", "localhost", "x.qcow2"});
  CHECK(c.code == 2);
  CHECK(c.err == "build-image: error: localhost: expected HOST:PORT\n");
  auto d = run_cli({"boot-test", "--output", s.path().string(), "php-full"});
  CHECK(d.code == 2);
  CHECK(d.err == "build-image: error: php-full: no such image (not a file, and not in " +
                     (s.path() / "catalog.json").string() + ")\n");
  // An image without a manifest has no known cartridge type: a payload must be given.
  const auto image = s.write("bare.qcow2", "not really an image");
  auto e = run_cli({"boot-test", image.string()});
  CHECK(e.code == 2);
  CHECK(e.err == "build-image: error: " + image.string() +
                     ": no manifest beside the image, so its cartridge type is unknown; give a payload with "
                     "--payload FILE\n");
  auto f = run_cli({"boot-test", "--payload", (s.path() / "missing").string(), image.string()});
  CHECK(f.code == 2);
  CHECK(f.err == "build-image: error: " + (s.path() / "missing").string() +
                     ": cannot read: No such file or directory (--payload)\n");
  auto g = run_cli({"boot-test", "--firmware", "efi", image.string()});
  CHECK(g.code == 2);
  CHECK(g.err == "build-image: error: invalid --firmware 'efi': expected bios, uefi or uefi-secure (did you mean "
                 "'uefi'?)\n");
  // A BIOS-only image has no EFI system partition to start with Secure Boot enforced.
  const nlohmann::json manifest = {{"schema_version", 1},
                                   {"name", "tiny-generic-0123"},
                                   {"file", "tiny.qcow2"},
                                   {"format", "qcow2"},
                                   {"inputs_key", "abc"},
                                   {"sha256", std::string(64, 'e')},
                                   {"plan", {{"layers", {{"base", {{"firmware", "bios"}, {"secure_boot", false}}}}}}}};
  s.write("tiny.json", manifest.dump());
  const auto tiny = s.write("tiny.qcow2", "qcow2");
  auto h = run_cli({"boot-test", "--firmware", "uefi-secure", tiny.string()});
  CHECK(h.code == 2);
  CHECK(h.err == "build-image: error: " + tiny.string() +
                     ": --firmware uefi-secure cannot start an image built with base.firmware bios (no EFI system "
                     "partition)\n");
}

TEST_CASE("validate: a bad base.firmware or Secure Boot without UEFI is named by position") {
  test::Scratch s;
  const auto file = s.write("fw.yaml", "type: php\nbase:\n  os: debian-12\n  firmware: efi\n");
  auto r = run_cli({"validate", file.string()});
  CHECK(r.code == 2);
  CHECK(r.err == file.string() +
                     ":4:13: invalid base.firmware 'efi': expected bios, uefi or hybrid (did you mean 'uefi'?)\n"
                     "build-image: error: " +
                     file.string() + ": 1 error in the cartridge definition\n");
  const auto sb = s.write("sb.yaml", "type: php\nbase:\n  os: debian-12\n  firmware: bios\n  secure_boot: true\n");
  auto q = run_cli({"validate", sb.string()});
  CHECK(q.code == 2);
  CHECK(q.err == sb.string() +
                     ":5:3: base.secure_boot needs UEFI: set base.firmware to uefi or hybrid, not bios\n"
                     "build-image: error: " +
                     sb.string() + ": 1 error in the cartridge definition\n");
}

TEST_CASE("boot-test: disk and SSH options are checked before anything boots, exit 2") {
  test::Scratch s;
  auto bus = run_cli({"boot-test", "--disk-bus", "ide", "x.qcow2"});
  CHECK(bus.code == 2);
  CHECK(bus.err == "build-image: error: invalid --disk-bus 'ide': expected virtio, scsi or nvme\n");
  auto size = run_cli({"boot-test", "--disk-size", "6X", "x.qcow2"});
  CHECK(size.code == 2);
  CHECK(size.err == "build-image: error: invalid --disk-size '6X': expected a size like 6G or 8GiB\n");
  auto small = run_cli({"boot-test", "--disk-size", "512M", "x.qcow2"});
  CHECK(small.code == 2);
  CHECK(small.err == "build-image: error: invalid --disk-size '512M': expected 1G to 2T\n");
  auto until = run_cli({"boot-test", "--until", "ssh", "x.qcow2"});
  CHECK(until.code == 2);
  CHECK(until.err == "build-image: error: invalid --until 'ssh': expected login, activated or shutdown\n");
  const auto missing = s.path() / "id.pub";
  auto nokey = run_cli({"boot-test", "--ssh-key", missing.string(), "x.qcow2"});
  CHECK(nokey.code == 2);
  CHECK(nokey.err ==
        "build-image: error: " + missing.string() + ": cannot read: No such file or directory (--ssh-key)\n");
  // The private key given by mistake: refused, and its text never echoed.
  const auto priv = s.write("id", "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n");
  auto wrong = run_cli({"boot-test", "--ssh-key", priv.string(), "x.qcow2"});
  CHECK(wrong.code == 2);
  CHECK(wrong.err ==
        "build-image: error: " + priv.string() + ": not one OpenSSH public key line (--ssh-key takes the .pub file)\n");
  // A disk smaller than the image would cut its root filesystem off.
  const auto image = s.path() / "two.qcow2";
  REQUIRE(run_process({"qemu-img", "create", "-q", "-f", "qcow2", image.string(), "2G"})->ok());
  const auto payload = s.write("payload", "MEMBER_ID=m1\n");
  auto smaller = run_cli({"boot-test", "--payload", payload.string(), "--disk-size", "1G", image.string()});
  CHECK(smaller.code == 2);
  CHECK(smaller.err == "build-image: error: " + image.string() +
                           ": --disk-size 1073741824 is smaller than the image (2147483648 bytes)\n");
}

TEST_CASE("--version and -V print the version like the version command") {
  auto command = run_cli({"version"});
  CHECK(command.code == 0);
  CHECK(command.out.rfind("build-image ", 0) == 0);
  for (const char* flag : {"--version", "-V"}) {
    auto r = run_cli({flag});
    CHECK(r.code == 0);
    CHECK(r.out == command.out);
    CHECK(r.err.empty());
  }
}

TEST_CASE("report writes an image's HTML page; misuse exits 2") {
  test::Scratch s;
  const nlohmann::json manifest = {
      {"schema_version", 1},
      {"name", "tiny-full-0123"},
      {"file", "tiny.qcow2"},
      {"format", "qcow2"},
      {"inputs_key", "abc"},
      {"sha256", std::string(64, 'e')},
      {"packages", {{{"name", "base-files"}, {"version", "12.4"}, {"installed_size_kib", 390}}}},
      {"tree_sizes", {{"/usr", 1000}}}};
  s.write("tiny.json", manifest.dump());
  const auto image = s.write("tiny.qcow2", "qcow2");
  auto r = run_cli({"report", image.string()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out == (s.path() / "tiny.html").string() + "\n");
  auto page = read_file(s.path() / "tiny.html");
  REQUIRE(page);
  CHECK(page->rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(page->find("\"name\":\"tiny-full-0123\"") != std::string::npos);
  CHECK(page->find("\"installed_size_kib\":390") != std::string::npos);

  auto chosen = run_cli({"report", image.string(), "--report", (s.path() / "r.html").string()});
  CHECK(chosen.code == 0);
  CHECK(std::filesystem::exists(s.path() / "r.html"));

  auto none = run_cli({"report"});
  CHECK(none.code == 2);
  CHECK(none.err == "build-image: error: report takes one image (a path or a name from the catalog)\n");
  auto two = run_cli({"build", "--report", "x.html", "templates/php.yaml", "templates/mysql.yaml"});
  CHECK(two.code == 2);
  CHECK(two.err == "build-image: error: --report FILE.html takes one cartridge; for several, run `build-image report "
                   "IMAGE` for each\n");
  auto empty = run_cli({"report", image.string(), "--report="});
  CHECK(empty.code == 2);
  CHECK(empty.err == "build-image: error: invalid --report '': expected a file name\n");
}

// `cmake --install` into a DESTDIR with another prefix, then the tree moved elsewhere: the
// installed binary must find its data relative to itself (../share/build-image), with no
// BUILD_IMAGE_SOURCE_DIR and the checkout not consulted.
TEST_CASE("a staged, relocated install validates and plans with its own data only") {
  test::Scratch s;
  RunOptions io;
  io.extra_env["DESTDIR"] = (s.path() / "stage").string();
  auto installed = run_process({BI_CMAKE_COMMAND, "--install", BI_BINARY_DIR, "--prefix", "/opt/bi"}, io);
  REQUIRE(installed);
  INFO(installed->output);
  REQUIRE(installed->exit_code == 0);
  const fs::path prefix = s.path() / "relocated" / "tool";
  fs::create_directories(prefix.parent_path());
  fs::rename(s.path() / "stage" / "opt" / "bi", prefix);
  const fs::path data = prefix / "share" / "build-image";
  CHECK(fs::is_regular_file(prefix / "bin" / "build-image"));
  CHECK(fs::is_regular_file(data / "templates" / "php.yaml"));
  CHECK(fs::is_directory(data / "puppet" / "modules"));
  CHECK(fs::is_regular_file(data / "init-scripts" / "sbin" / "cartridge-init"));
  // Only build-image's component: the agent's files (/usr/sbin, /etc) are its package's.
  CHECK(!fs::exists(s.path() / "stage" / "etc"));
  CHECK(!fs::exists(prefix / "sbin"));

  const std::string tool = (prefix / "bin" / "build-image").string();
  const std::vector<std::string> no_checkout = {"BUILD_IMAGE_SOURCE_DIR", "BUILD_IMAGE_AGENT_DEB"};
  auto v = run_binary(tool, {"validate", "share/build-image/templates/php.yaml"}, prefix.string(), no_checkout);
  CHECK(v.code == 0);
  CHECK(v.out == "share/build-image/templates/php.yaml: ok (php, full)\n");
  CHECK(v.err.empty());

  const std::string php = (data / "templates" / "php.yaml").string();
  auto from_install = run_binary(tool, {"plan", "--json", php}, s.path().string(), no_checkout);
  REQUIRE(from_install.code == 0);
  auto from_tree = run_cli({"plan", "--json", php});
  REQUIRE(from_tree.code == 0);
  const auto installed_plan = nlohmann::json::parse(from_install.out)["plans"][0];
  const auto tree_plan = nlohmann::json::parse(from_tree.out)["plans"][0];
  // The same data gives the same keys (the installed tool shares the build tree's cache)...
  CHECK(installed_plan["layers"]["system"]["key"] == tree_plan["layers"]["system"]["key"]);
  CHECK(installed_plan["inputs_key"] == tree_plan["inputs_key"]);

  // ...and it is the installed data that is read: a change there changes the system layer's
  // key, and without the installed agent package a full plan names the installed path.
  std::ofstream(data / "puppet" / "modules" / "php" / "manifests" / "init.pp", std::ios::app) << "# changed\n";
  auto changed = run_binary(tool, {"plan", "--json", php}, s.path().string(), no_checkout);
  REQUIRE(changed.code == 0);
  CHECK(nlohmann::json::parse(changed.out)["plans"][0]["layers"]["system"]["key"] !=
        tree_plan["layers"]["system"]["key"]);
  fs::path agent_deb;
  for (const auto& e : fs::directory_iterator(data)) {
    if (e.path().extension() == ".deb") {
      agent_deb = e.path();
    }
  }
  REQUIRE(!agent_deb.empty());
  fs::remove(agent_deb);
  auto no_agent = run_binary(tool, {"plan", php}, s.path().string(), no_checkout);
  CHECK(no_agent.code == 3);
  CHECK(no_agent.err.find("build-image: error: " + agent_deb.string() + ": ") == 0);
}

TEST_CASE("init writes a starter cartridge that validates, and never overwrites") {
  test::Scratch s;
  const std::string dir = s.path().string();
  auto made = run_cli({"init"}, dir);
  CHECK(made.code == 0);
  CHECK(made.err.empty());
  CHECK(made.out == "wrote php.yaml\nwrote files/motd\n");
  auto text = read_file(s.path() / "php.yaml");
  REQUIRE(text);
  CHECK(text->rfind("# Starter cartridge written by `build-image init php` from ", 0) == 0);
  CHECK(text->find("\ntype: php\n") != std::string::npos);
  auto v = run_cli({"validate", "php.yaml"}, dir);
  CHECK(v.code == 0);
  CHECK(v.out == "php.yaml: ok (php, full)\n");

  std::ofstream(s.path() / "php.yaml", std::ios::app) << "# mine\n";
  auto again = run_cli({"init", "php"}, dir);
  CHECK(again.code == 2);
  CHECK(again.out.empty());
  CHECK(again.err == "build-image: error: php.yaml: already exists; not overwritten (remove it or run init in "
                     "another folder)\n");
  auto kept = read_file(s.path() / "php.yaml");
  REQUIRE(kept);
  CHECK(kept->size() > 7);
  CHECK(kept->substr(kept->size() - 7) == "# mine\n");

  // A file the template names that is already here is not overwritten either, and then
  // nothing at all is written.
  fs::create_directories(s.path() / "other");
  fs::create_directories(s.path() / "other" / "files");
  std::ofstream(s.path() / "other" / "files" / "motd") << "my motd\n";
  auto clash = run_cli({"init", "mysql"}, (s.path() / "other").string());
  CHECK(clash.code == 2);
  CHECK(clash.err == "build-image: error: files/motd: already exists; not overwritten (remove it or run init in "
                     "another folder)\n");
  CHECK(!fs::exists(s.path() / "other" / "mysql.yaml"));

  auto typo = run_cli({"init", "phq"}, dir);
  CHECK(typo.code == 2);
  CHECK(typo.err == "build-image: error: unknown cartridge type 'phq' (did you mean 'php'?)\n");
  auto unknown = run_cli({"init", "cobol"}, dir);
  CHECK(unknown.code == 2);
  CHECK(unknown.err ==
        "build-image: error: unknown cartridge type 'cobol' (templates: mysql, php, ruby, tomcat, wordpress)\n");
  auto two = run_cli({"init", "php", "mysql"}, dir);
  CHECK(two.code == 2);
  CHECK(two.err == "build-image: error: init takes at most one cartridge type (try: build-image init php)\n");
}

TEST_CASE("per-command help lists only that command's options") {
  auto r = run_cli({"boot-test", "--help"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK(r.out.rfind("usage: build-image boot-test IMAGE ", 0) == 0);
  CHECK(r.out.find("\noptions:\n") != std::string::npos);
  // Its own options without the "boot-test: " of the global help.
  CHECK(r.out.find("\n  --payload VALUE              the instance payload file (default: generated for the "
                   "image)\n") != std::string::npos);
  for (const char* own : {"--timeout VALUE", "--forward VALUE", "--no-stratos", "--until VALUE", "--output VALUE"}) {
    CHECK(r.out.find(own) != std::string::npos);
  }
  for (const char* other : {"--mode", "--since", "--jobs", "--format", "--to ", "--register", "--no-cache"}) {
    INFO(other);
    CHECK(r.out.find(other) == std::string::npos);
  }
  CHECK(r.out.find("\ngeneral options:\n") != std::string::npos);
  CHECK(r.out.find("--json") != std::string::npos);
  auto same = run_cli({"help", "boot-test"});
  CHECK(same.code == 0);
  CHECK(same.out == r.out);
  auto plan = run_cli({"plan", "-h"});
  CHECK(plan.out.find("--since VALUE") != std::string::npos);
  CHECK(plan.out.find("--payload") == std::string::npos);
  // The global help is still the whole table.
  auto global = run_cli({"--help"});
  CHECK(global.out.rfind("usage: build-image [COMMAND] [OPTIONS] FILE...\n", 0) == 0);
  CHECK(global.out.find("--payload VALUE") != std::string::npos);
  CHECK(global.out.find("--since VALUE") != std::string::npos);
  auto typo = run_cli({"help", "boot-tset"});
  CHECK(typo.code == 2);
  CHECK(typo.err == "build-image: error: unknown command 'boot-tset' (did you mean 'boot-test'?)\n");
}

TEST_CASE("the man page is generated from the tables and renders without warnings") {
  auto r = run_cli({"__man"});
  REQUIRE(r.code == 0);
  const auto escaped = [](const std::string& name) {
    std::string out;
    for (char ch : name) {
      out += ch == '-' ? std::string("\\-") : std::string(1, ch);
    }
    return out;
  };
  for (const auto& c : cli::commands()) {
    INFO(c.name);
    CHECK(r.out.find("\n.B " + escaped(c.name)) != std::string::npos);
  }
  for (const auto& s : cli::option_specs()) {
    INFO(s.name);
    CHECK(r.out.find("\n.B " + escaped(s.name)) != std::string::npos);
  }
  test::Scratch s;
  const auto page = s.write("build-image.1", r.out);
  RunOptions o;
  auto groff = run_process({"groff", "-man", "-ww", "-z", page.string()}, o);
  REQUIRE(groff);
  CHECK(groff->exit_code == 0);
  CHECK(groff->output.empty());
  // Nothing of the build machine in it (the .deb is reproducible).
  CHECK(r.out.find(BI_SOURCE_DIR) == std::string::npos);
}

TEST_CASE("bash completion offers commands, each command's own options and option values") {
  auto gen = run_cli({"__bash-completion"});
  REQUIRE(gen.code == 0);
  test::Scratch s;
  const auto script = s.write("build-image.bash", gen.out);
  s.write("work/php.yaml", "type: php\n");
  s.write("work/notes.txt", "x\n");
  const auto complete = [&](const std::vector<std::string>& words) {
    std::string line = "source '" + script.string() + "'; COMP_WORDS=(";
    for (const auto& w : words) {
      line += "'" + w + "' ";
    }
    line += "); COMP_CWORD=" + std::to_string(words.size() - 1) +
            "; _build_image; ((${#COMPREPLY[@]} == 0)) || printf '%s\\n' \"${COMPREPLY[@]}\" | sort | tr '\\n' ' '";
    RunOptions o;
    o.cwd = (s.path() / "work").string();
    auto r = run_process({"bash", "-c", line}, o);
    REQUIRE(r);
    REQUIRE(r->exit_code == 0);
    std::string offered = r->output;
    while (!offered.empty() && offered.back() == '\n') {
      offered.pop_back();
    }
    return offered;
  };
  CHECK(complete({"build-image", "boot"}) == "boot-test ");
  CHECK(complete({"build-image", "boot-test", "--p"}) == "--payload ");
  CHECK(complete({"build-image", "boot-test", "--mo"}).empty());
  CHECK(complete({"build-image", "validate", "--mo"}) == "--mode ");
  CHECK(complete({"build-image", "register", "--to", ""}) == "ec2 openstack ");
  CHECK(complete({"build-image", "--format", "q"}) == "qcow2 ");
  CHECK(complete({"build-image", "cache", "v"}) == "verify ");
  CHECK(complete({"build-image", "help", "reg"}) == "register ");
  CHECK(complete({"build-image", "init", "wo"}) == "wordpress ");
  CHECK(complete({"build-image", "validate", ""}) == "php.yaml ");
  CHECK(complete({"build-image", "p"}) == "php.yaml plan ");
}
