// The lifecycle's configuration handling (library) and the command line (binary); the
// broker-facing lifecycle is in test_agent_mqtt.cpp.
#include "agent.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <utility>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace cartridge_agent;
using namespace std::chrono_literals;

namespace {

struct AgentRun {
  int exit_code;
  std::string output;
};

AgentRun run_binary(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  std::vector<std::string> argv{CARTRIDGE_AGENT_EXECUTABLE};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto log = dir / "agent.log";
  std::filesystem::remove(log);
  agent_test::ChildProcess agent(argv, log, {{"CREDENTIALS_DIRECTORY", ""}});
  const int code = agent.wait_for_exit(10s);
  return {code, agent_test::read_file(log)};
}

AgentOptions options_for(const std::filesystem::path& dir) {
  AgentOptions options;
  options.config_path = dir / "agent.conf";
  options.instance_id_file = dir / "instance-id";
  return options;
}

} // namespace

TEST_CASE("configuration problems exit with 2", "[agent]") {
  const auto dir = agent_test::make_test_directory("agent-config");
  const std::atomic<bool> stop{false};
  auto options = options_for(dir);

  SECTION("missing config file") { CHECK(run_agent(options, stop) == k_exit_usage_or_config); }
  SECTION("invalid config file") {
    agent_test::write_file(dir / "agent.conf", "mb.urls = nowhere\n");
    CHECK(run_agent(options, stop) == k_exit_usage_or_config);
  }
  SECTION("missing payload") {
    agent_test::write_file(dir / "agent.conf",
                           "mb.urls = 127.0.0.1:1\npayload.file = " + (dir / "launch-params").string() + "\n");
    CHECK(run_agent(options, stop) == k_exit_usage_or_config);
  }
  SECTION("payload from a credentials directory that lacks it") {
    agent_test::write_file(dir / "launch-params", "MEMBER_ID=m\n");
    agent_test::write_file(dir / "agent.conf",
                           "mb.urls = 127.0.0.1:1\npayload.file = " + (dir / "launch-params").string() + "\n");
    options.credentials_directory = dir / "credentials";
    CHECK(run_agent(options, stop) == k_exit_usage_or_config);
  }
  SECTION("bad PORTS in the payload") {
    agent_test::write_file(dir / "launch-params", "MEMBER_ID=m,PORTS=80|eighty\n");
    agent_test::write_file(dir / "agent.conf",
                           "mb.urls = 127.0.0.1:1\npayload.file = " + (dir / "launch-params").string() + "\n");
    CHECK(run_agent(options, stop) == k_exit_usage_or_config);
  }
  SECTION("no broker anywhere") {
    agent_test::write_file(dir / "launch-params", "MEMBER_ID=m,PORTS=80\n");
    agent_test::write_file(dir / "agent.conf", "payload.file = " + (dir / "launch-params").string() + "\n");
    CHECK(run_agent(options, stop) == k_exit_usage_or_config);
  }
}

TEST_CASE("a stop before any broker answered exits 1 promptly", "[agent]") {
  const auto dir = agent_test::make_test_directory("agent-stop");
  agent_test::write_file(dir / "launch-params", "MEMBER_ID=m,PORTS=80\n");
  agent_test::write_file(dir / "agent.conf", "mb.urls = 127.0.0.1:" + std::to_string(agent_test::free_port()) +
                                                 "\npayload.file = " + (dir / "launch-params").string() + "\n");
  const std::atomic<bool> stop{true};
  const auto started = std::chrono::steady_clock::now();
  // InstanceReadyToShutdownEvent could not be delivered: a runtime failure.
  CHECK(run_agent(options_for(dir), stop) == k_exit_runtime_failure);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("command line", "[agent][cli]") {
  const auto dir = agent_test::make_test_directory("agent-cli");

  SECTION("--version") {
    const auto run = run_binary({"--version"}, dir);
    CHECK(run.exit_code == 0);
    CHECK(run.output == "cartridge-agent " AGENT_VERSION "\n");
  }
  SECTION("--help") {
    const auto run = run_binary({"--help"}, dir);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.output, Catch::StartsWith("Usage: cartridge-agent [--config PATH] [--once]"));
  }
  SECTION("unknown argument") {
    const auto run = run_binary({"--bogus"}, dir);
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::StartsWith("cartridge-agent: unknown argument '--bogus'\nUsage:"));
  }
  SECTION("--config without a path") {
    CHECK(run_binary({"--config"}, dir).exit_code == 2);
    CHECK(run_binary({"--config="}, dir).exit_code == 2);
  }
  SECTION("a bad config file names file and line") {
    agent_test::write_file(dir / "agent.conf", "# x\nstats.interval = soon\n");
    const auto run = run_binary({"--config", (dir / "agent.conf").string()}, dir);
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::Contains((dir / "agent.conf").string() +
                                           ":2: stats.interval: expected a whole number of seconds >= 1, "
                                           "got 'soon'"));
  }
  SECTION("--config=PATH form") {
    const auto run = run_binary({"--config=" + (dir / "missing.conf").string()}, dir);
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::Contains((dir / "missing.conf").string() + ": cannot read"));
  }
}

TEST_CASE("--prepare-application-path gives the web root to the agent's user", "[agent][cli][prepare]") {
  if (::geteuid() != 0) {
    WARN("not root: the hand-over to another user cannot be tested");
    return;
  }
  const passwd* nobody = ::getpwnam("nobody");
  REQUIRE(nobody != nullptr);
  const auto dir = agent_test::make_test_directory("agent-prepare");
  // Stands for /var/www with the php image's root-owned web root and index.php.
  const auto www = dir / "www";
  const auto html = www / "html";
  std::filesystem::create_directories(html / "css");
  agent_test::write_file(html / "index.php", "<?php phpinfo();\n");
  agent_test::write_file(html / "css" / "site.css", "body {}\n");
  // A link must be handed over itself, never what it points at.
  agent_test::write_file(dir / "outside", "root's\n");
  std::filesystem::create_symlink(dir / "outside", html / "link");
  const auto conf = dir / "agent.conf";
  const auto payload = dir / "launch-params";
  agent_test::write_file(conf, "payload.file = " + payload.string() + "\napplication.root = " + www.string() + "\n");
  const std::vector<std::string> prepare{"--config", conf.string(), "--prepare-application-path", "--owner", "nobody"};

  const auto owner_of = [](const std::filesystem::path& path) {
    struct stat status {};
    REQUIRE(::lstat(path.c_str(), &status) == 0);
    return std::pair{status.st_uid, status.st_gid};
  };
  const std::pair expected{nobody->pw_uid, nobody->pw_gid};
  const std::pair root{uid_t{0}, gid_t{0}};

  SECTION("hands APPLICATION_PATH over recursively") {
    agent_test::write_file(payload, "REPO_URL=http://127.0.0.1/app.git,APPLICATION_PATH=" + html.string() + "\n");
    const auto run = run_binary(prepare, dir);
    INFO(run.output);
    CHECK(run.exit_code == 0);
    for (const auto& path : {html, html / "index.php", html / "css", html / "css" / "site.css", html / "link"}) {
      INFO(path);
      CHECK(owner_of(path) == expected);
    }
    CHECK(owner_of(dir / "outside") == root);
    CHECK(owner_of(www) == root);
  }
  SECTION("creates a missing MULTITENANT tenant path") {
    agent_test::write_file(payload, "REPO_URL=http://127.0.0.1/app.git,MULTITENANT=true,TENANT_ID=7,APPLICATION_PATH=" +
                                        (www / "mt").string() + "\n");
    const auto run = run_binary(prepare, dir);
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK(std::filesystem::is_directory(www / "mt/repository/tenants/7"));
    CHECK(owner_of(www / "mt") == expected);
    CHECK(owner_of(www / "mt/repository/tenants/7") == expected);
    CHECK(owner_of(html / "index.php") == root);
  }
  SECTION("no REPO_URL: nothing changes") {
    agent_test::write_file(payload, "APPLICATION_PATH=" + html.string() + "\n");
    const auto run = run_binary(prepare, dir);
    CHECK(run.exit_code == 0);
    CHECK_THAT(run.output, Catch::Contains("no REPO_URL in the payload: no application path to prepare"));
    CHECK(owner_of(html / "index.php") == root);
  }
  SECTION("outside application.root: refused, exit 2") {
    agent_test::write_file(payload, "REPO_URL=http://127.0.0.1/app.git,APPLICATION_PATH=" + dir.string() + "\n");
    const auto run = run_binary(prepare, dir);
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::Contains("APPLICATION_PATH '" + dir.string() + "' is outside application.root '" +
                                           www.string() + "'; refusing to hand it to the agent"));
    CHECK(owner_of(dir / "outside") == root);
  }
  SECTION("an unknown user: exit 2") {
    agent_test::write_file(payload, "REPO_URL=http://127.0.0.1/app.git,APPLICATION_PATH=" + html.string() + "\n");
    auto args = prepare;
    args.back() = "no-such-user-here";
    const auto run = run_binary(args, dir);
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::Contains("user 'no-such-user-here' does not exist"));
    CHECK(owner_of(html / "index.php") == root);
  }
  SECTION("--owner alone is a usage error") {
    const auto run = run_binary({"--owner", "nobody"}, dir);
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::StartsWith("cartridge-agent: --owner only applies to --prepare-application-path\n"));
  }
}
