// Artifact deployment pieces: credential scrubbing, tenant paths, git's environment, and
// deploy_repository against a local repository (HTTP with a password: test_agent_stratos).
#include "artifacts.hpp"
#include "crypto.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace cartridge_agent;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void git(const fs::path& dir, std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv = {"/usr/bin/git", "-C", dir.string(), "-c", "user.name=t", "-c", "user.email=t@example.invalid"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.environment = {"PATH=/usr/bin:/bin", "HOME=" + dir.string(), "GIT_CONFIG_NOSYSTEM=1"};
  std::string output;
  const auto result = run_process(spec, sleep_idle, [&](std::string_view line) { output += std::string(line) + "\n"; });
  INFO(output);
  REQUIRE(result.success());
}

// Every file under `dir` (including .git) as one string.
std::string all_bytes(const fs::path& dir) {
  std::string text;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      text += agent_test::read_file(entry.path());
    }
  }
  return text;
}

} // namespace

TEST_CASE("credentials are taken out of the URL", "[artifacts]") {
  const auto full = split_url_credentials("https://alice:p%40ss%3Aw0rd@git.example.org:8443/org/app.git");
  CHECK(full.url == "https://git.example.org:8443/org/app.git");
  CHECK(full.user == "alice");
  CHECK(full.password == "p@ss:w0rd");
  const auto user_only = split_url_credentials("http://bob@host/repo.git");
  CHECK(user_only.url == "http://host/repo.git");
  CHECK(user_only.user == "bob");
  CHECK_FALSE(user_only.password);
  const auto none = split_url_credentials("http://host/path@with-at");
  CHECK(none.url == "http://host/path@with-at");
  CHECK_FALSE(none.user);
  CHECK(split_url_credentials("/srv/git/app.git").url == "/srv/git/app.git");
}

TEST_CASE("the tenant path rules of the Python agent", "[artifacts]") {
  RepositoryLayout layout{"/var/www", false};
  CHECK(repository_path(layout, "-1234") == "/var/www");
  CHECK(repository_path(layout, "5") == "/var/www");
  layout.multitenant = true;
  CHECK(repository_path(layout, "-1234") == "/var/www/repository/deployment/server/");
  CHECK(repository_path(layout, "5") == "/var/www/repository/tenants/5");
  layout.tenant_path = "/t/";
  CHECK(repository_path(layout, "7") == "/var/www/t/7");
}

TEST_CASE("git gets credentials only through its environment", "[artifacts]") {
  const std::map<std::string, std::string> base{{"PATH", "/bin"}, {"GIT_DIR", "/elsewhere"}};
  const auto env = git_environment(base, RepositoryCredentials{"alice", "s3cret"});
  CHECK(env.at("PATH") == "/bin");
  CHECK_FALSE(env.contains("GIT_DIR"));
  CHECK(env.at("GIT_TERMINAL_PROMPT") == "0");
  const auto count = std::stoi(env.at("GIT_CONFIG_COUNT"));
  std::map<std::string, std::string> config;
  for (int i = 0; i < count; ++i) {
    config[env.at("GIT_CONFIG_KEY_" + std::to_string(i))] = env.at("GIT_CONFIG_VALUE_" + std::to_string(i));
  }
  CHECK(config.at("http.extraHeader") == "Authorization: Basic " + base64_encode("alice:s3cret"));
  CHECK(config.at("safe.directory") == "*");
  const auto anonymous = git_environment(base, std::nullopt);
  for (const auto& [name, value] : anonymous) {
    CHECK(value.find("Authorization") == std::string::npos);
  }
}

TEST_CASE("deploy initialises over existing files, then follows new commits", "[artifacts]") {
  const auto dir = agent_test::make_test_directory("artifacts-deploy");
  const auto source = dir / "source";
  fs::create_directories(source);
  git(source, {"init", "-q", "-b", "master"});
  agent_test::write_file(source / "index.php", "<?php echo 'v1';");
  git(source, {"add", "index.php"});
  git(source, {"commit", "-q", "-m", "v1"});

  const auto target = dir / "www";
  fs::create_directories(target);
  agent_test::write_file(target / "index.php", "placeholder from the image");
  agent_test::write_file(target / "kept.html", "not in the repository");

  GitDeployment deployment;
  deployment.target = target;
  deployment.url = "file://" + source.string();
  // Unused by a file:// remote, but must not be written anywhere.
  deployment.credentials = RepositoryCredentials{"alice", "never-on-disk-7f3a"};
  deployment.base_environment = {{"PATH", "/usr/bin:/bin"}, {"HOME", dir.string()}};
  deployment.timeout = 60s;

  const auto first = deploy_repository(deployment, sleep_idle);
  REQUIRE(first);
  CHECK(first.value().size() == 40);
  CHECK(agent_test::read_file(target / "index.php") == "<?php echo 'v1';");
  CHECK(agent_test::read_file(target / "kept.html") == "not in the repository");

  agent_test::write_file(source / "index.php", "<?php echo 'v2';");
  git(source, {"commit", "-q", "-am", "v2"});
  // A local edit must not block the update.
  agent_test::write_file(target / "index.php", "edited on the instance");
  const auto second = deploy_repository(deployment, sleep_idle);
  REQUIRE(second);
  CHECK(second.value() != first.value());
  CHECK(agent_test::read_file(target / "index.php") == "<?php echo 'v2';");

  CHECK(all_bytes(target).find("never-on-disk-7f3a") == std::string::npos);
  CHECK(all_bytes(target).find(base64_encode("alice:never-on-disk-7f3a")) == std::string::npos);
  CHECK_THAT(agent_test::read_file(target / ".git" / "config"), Catch::Contains("url = file://"));

  deployment.url = "file://" + (dir / "missing").string();
  const auto missing = deploy_repository(deployment, sleep_idle);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::StartsWith("git fetch: exit status 128"));
}

TEST_CASE("the image's content is backed up once and restored when the sign-up goes", "[artifacts]") {
  const auto dir = agent_test::make_test_directory("artifacts-backup");
  const auto target = dir / "html";
  CHECK(initial_backup_path(target) == dir / "html_backup");
  CHECK(initial_backup_path(dir / "html/") == dir / "html_backup");

  fs::create_directories(target / "css");
  agent_test::write_file(target / "index.html", "image page");
  agent_test::write_file(target / "css" / "site.css", "body{}");
  fs::create_symlink("/etc/passwd", target / "link");

  // The backup folder is --prepare-application-path's to create.
  const auto missing = back_up_initial_content(target);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message ==
        (dir / "html_backup").string() + ": no such folder (cartridge-agent --prepare-application-path creates it)");

  fs::create_directories(dir / "html_backup");
  const auto copied = back_up_initial_content(target);
  REQUIRE(copied);
  CHECK(copied.value());
  CHECK(agent_test::read_file(dir / "html_backup" / "index.html") == "image page");
  CHECK(agent_test::read_file(dir / "html_backup" / "css" / "site.css") == "body{}");
  CHECK(fs::is_symlink(dir / "html_backup" / "link"));

  // A deployment happened (the application replaced the page); a restarted agent must not
  // back up the application over the image's content.
  fs::create_directories(target / ".git");
  agent_test::write_file(target / "index.html", "application page");
  agent_test::write_file(target / "app.php", "<?php");
  const auto again = back_up_initial_content(target);
  REQUIRE(again);
  CHECK_FALSE(again.value());
  CHECK(agent_test::read_file(dir / "html_backup" / "index.html") == "image page");

  REQUIRE(remove_deployment(target, true));
  CHECK(fs::is_directory(target));
  CHECK_FALSE(fs::exists(target / ".git"));
  CHECK_FALSE(fs::exists(target / "app.php"));
  CHECK(agent_test::read_file(target / "index.html") == "image page");
  CHECK(agent_test::read_file(target / "css" / "site.css") == "body{}");

  // Without a restore the folder is left empty.
  REQUIRE(remove_deployment(target, false));
  CHECK(fs::is_directory(target));
  CHECK(fs::is_empty(target));
}
