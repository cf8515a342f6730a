// --prepare-application-path's resolution and refusals (library); the hand-over to the
// user as root is in test_agent.cpp, through the binary.
#include "application_path.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace cartridge_agent;

namespace {

AgentConfig config_with(const PayloadMap& payload, std::string_view text = "") {
  auto config = parse_config(text, "agent.conf");
  REQUIRE(config);
  REQUIRE(apply_payload_overrides(config.value(), payload, "launch-params"));
  return std::move(config).value();
}

ApplicationPathPlan plan_ok(const PayloadMap& payload, std::string_view text = "") {
  auto plan = plan_application_path(config_with(payload, text), payload);
  INFO((plan ? std::string() : plan.error().message));
  REQUIRE(plan);
  REQUIRE(plan.value());
  return *plan.value();
}

std::string plan_error(const PayloadMap& payload, std::string_view text = "") {
  auto plan = plan_application_path(config_with(payload, text), payload);
  REQUIRE_FALSE(plan);
  return plan.error().message;
}

} // namespace

TEST_CASE("nothing to prepare without REPO_URL", "[application_path]") {
  const PayloadMap payload{{"APPLICATION_PATH", "/etc"}};
  auto plan = plan_application_path(config_with(payload), payload);
  REQUIRE(plan);
  CHECK_FALSE(plan.value());
}

TEST_CASE("the deployment directory follows the agent's rules", "[application_path]") {
  SECTION("the payload's APPLICATION_PATH") {
    const auto plan = plan_ok({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/var/www/app"}});
    CHECK(plan.base == "/var/www/app");
    CHECK(plan.target == "/var/www/app");
  }
  SECTION("the default without one") {
    const auto plan = plan_ok({{"REPO_URL", "http://git/r"}});
    CHECK(plan.base == "/var/www/html");
    CHECK(plan.target == "/var/www/html");
  }
  SECTION("agent.conf's application.path wins") {
    const auto plan = plan_ok({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/var/www/app"}},
                              "application.path = /var/www/conf\n");
    CHECK(plan.base == "/var/www/conf");
  }
  SECTION("MULTITENANT: the super tenant") {
    const auto plan =
        plan_ok({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/var/www/app"}, {"MULTITENANT", "true"}});
    CHECK(plan.base == "/var/www/app");
    CHECK(plan.target == "/var/www/app/repository/deployment/server/");
  }
  SECTION("MULTITENANT: the payload's tenant") {
    const auto plan = plan_ok({{"REPO_URL", "http://git/r"},
                               {"APPLICATION_PATH", "/var/www/app"},
                               {"MULTITENANT", "true"},
                               {"TENANT_ID", "7"}});
    CHECK(plan.base == "/var/www/app");
    CHECK(plan.target == "/var/www/app/repository/tenants/7");
  }
  SECTION("the initial backup beside the target, handed over too") {
    const auto plan = plan_ok({{"REPO_URL", "http://git/r"}}, "enable.initial.artifact.backup = true\n");
    REQUIRE(plan.backup);
    CHECK(*plan.backup == "/var/www/html_backup");
    CHECK_FALSE(plan_ok({{"REPO_URL", "http://git/r"}}).backup);
  }
  SECTION("a configured root") {
    const auto plan =
        plan_ok({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/srv/www/app"}}, "application.root = /srv/www\n");
    CHECK(plan.base == "/srv/www/app");
  }
}

TEST_CASE("paths outside application.root are refused", "[application_path]") {
  CHECK(plan_error({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/etc"}}) ==
        "APPLICATION_PATH '/etc' is outside application.root '/var/www'; refusing to hand it to the agent");
  // Compared by components, not as text.
  CHECK(plan_error({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/var/www2/html"}}) ==
        "APPLICATION_PATH '/var/www2/html' is outside application.root '/var/www'; refusing to hand it to the agent");
  CHECK(plan_error({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/var/www/../../etc"}}) ==
        "APPLICATION_PATH '/etc' is outside application.root '/var/www'; refusing to hand it to the agent");
  CHECK(plan_error({{"REPO_URL", "http://git/r"}, {"APPLICATION_PATH", "/srv/www/app"}}) ==
        "APPLICATION_PATH '/srv/www/app' is outside application.root '/var/www'; refusing to hand it to the agent");
  CHECK(plan_error({{"REPO_URL", "http://git/r"},
                    {"APPLICATION_PATH", "/var/www/app"},
                    {"MULTITENANT", "true"},
                    {"TENANT_ID", "../../../../../etc"}}) ==
        "tenant repository path '/etc' is outside application.root '/var/www'; refusing to hand it to the agent");
  // /var/www itself is inside the root; its backup /var/www_backup is not.
  CHECK(plan_error({{"REPO_URL", "http://git/r"}},
                   "application.path = /var/www\nenable.initial.artifact.backup = true\n") ==
        "initial artifact backup path '/var/www_backup' is outside application.root '/var/www'; refusing to hand it to "
        "the agent");
  CHECK(plan_error({{"REPO_URL", "http://git/r"}}, "application.path = /\n") ==
        "APPLICATION_PATH '/' is outside application.root '/var/www'; refusing to hand it to the agent");
}

TEST_CASE("a symbolic link out of the root is refused before anything changes", "[application_path]") {
  const auto dir = agent_test::make_test_directory("application-path-link");
  const auto root = dir / "www";
  const auto outside = dir / "outside";
  std::filesystem::create_directories(root);
  std::filesystem::create_directories(outside);
  std::filesystem::create_directory_symlink(outside, root / "html");

  const ApplicationPathPlan plan{root / "html", root / "html" / "sub", std::nullopt};
  auto prepared = prepare_application_path(plan, root, ::getuid(), ::getgid());
  REQUIRE_FALSE(prepared);
  CHECK(prepared.error().message == "APPLICATION_PATH (resolved) '" + outside.string() +
                                        "' is outside application.root '" + root.string() +
                                        "'; refusing to hand it to the agent");
  CHECK_FALSE(std::filesystem::exists(outside / "sub"));
}
