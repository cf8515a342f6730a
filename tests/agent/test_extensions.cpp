// Extension scripts: which run, with what environment, and the time limit.
#include "extensions.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace cartridge_agent;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void write_script(const fs::path& path, const std::string& body, fs::perms perms = fs::perms::owner_all) {
  agent_test::write_file(path, "#!/bin/sh\n" + body);
  fs::permissions(path, perms);
}

} // namespace

TEST_CASE("the environment has STRATOS_ values but never the secrets", "[extensions]") {
  const std::map<std::string, std::string> base{{"PATH", "/usr/bin:/bin"},
                                                {"STRATOS_STALE", "from before"},
                                                {"CREDENTIALS_DIRECTORY", "/run/credentials/cartridge-agent.service"}};
  const PayloadMap payload{{"CLUSTER_ID", "c1"},
                           {"CARTRIDGE_KEY", "PUjpXCLujDhYr5A6"},
                           {"TOKEN", "secret-token"},
                           {"APPLICATION_ID", "app"}};
  const auto env = extension_environment(base, payload, {{"EVENT", "clean"}, {"BIG", std::string(200, 'x')}}, 100);
  CHECK(env.at("PATH") == "/usr/bin:/bin");
  CHECK(env.at("STRATOS_CLUSTER_ID") == "c1");
  CHECK(env.at("STRATOS_APPLICATION_ID") == "app");
  CHECK(env.at("STRATOS_EVENT") == "clean");
  CHECK_FALSE(env.contains("STRATOS_CARTRIDGE_KEY"));
  CHECK_FALSE(env.contains("STRATOS_TOKEN"));
  CHECK_FALSE(env.contains("STRATOS_STALE"));
  CHECK_FALSE(env.contains("CREDENTIALS_DIRECTORY"));
  CHECK_FALSE(env.contains("STRATOS_BIG"));
  for (const auto& [name, value] : env) {
    CHECK(value.find("PUjpXCLujDhYr5A6") == std::string::npos);
    CHECK(value.find("secret-token") == std::string::npos);
  }
}

TEST_CASE("a script runs with its environment; absent or non-executable ones are skipped", "[extensions]") {
  const auto dir = agent_test::make_test_directory("extensions-run");
  write_script(dir / "CompleteTopologyEvent.sh", "echo \"$STRATOS_EVENT $STRATOS_CLUSTER_ID $PWD\" > out.txt\n");
  write_script(dir / "InstanceStartedEvent.sh", "touch ran\n", fs::perms::owner_read | fs::perms::owner_write);
  const std::map<std::string, std::string> env{{"STRATOS_EVENT", "CompleteTopologyEvent"},
                                               {"STRATOS_CLUSTER_ID", "c1"}};

  const auto ran = run_extension(dir, "CompleteTopologyEvent", env, 10s, sleep_idle);
  CHECK(ran.ran);
  CHECK(ran.result.success());
  CHECK(agent_test::read_file(dir / "out.txt") == "CompleteTopologyEvent c1 " + dir.string() + "\n");

  CHECK_FALSE(run_extension(dir, "InstanceStartedEvent", env, 10s, sleep_idle).ran);
  CHECK_FALSE(fs::exists(dir / "ran"));
  CHECK_FALSE(run_extension(dir, "clean", env, 10s, sleep_idle).ran);
}

TEST_CASE("a script past extension.timeout is stopped and reported, not waited for", "[extensions]") {
  const auto dir = agent_test::make_test_directory("extensions-timeout");
  write_script(dir / "clean.sh", "echo cleaning\nexec sleep 300\n");
  const auto ran = run_extension(dir, "clean", {}, 1s, sleep_idle);
  CHECK(ran.ran);
  CHECK(ran.result.outcome == ProcessResult::Outcome::timed_out);

  write_script(dir / "ArtifactUpdatedEvent.sh", "echo failing >&2\nexit 4\n");
  const auto failed = run_extension(dir, "ArtifactUpdatedEvent", {}, 10s, sleep_idle);
  CHECK(failed.ran);
  CHECK(failed.result.exit_code == 4);
}
