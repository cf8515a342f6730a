#include "config.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace cartridge_agent;
using namespace std::chrono_literals;

namespace {

AgentConfig parse_ok(std::string_view text) {
  auto config = parse_config(text, "agent.conf");
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config);
  return std::move(config).value();
}

std::string parse_error(std::string_view text) {
  auto config = parse_config(text, "agent.conf");
  REQUIRE_FALSE(config);
  return config.error().message;
}

} // namespace

TEST_CASE("defaults follow the contract", "[config]") {
  const auto config = parse_ok("");
  CHECK(config.brokers.empty());
  CHECK(config.service_name.empty());
  CHECK(config.ports.empty());
  CHECK(config.listen_address == "localhost");
  CHECK(config.port_check_timeout == 600s);
  CHECK(config.stats_interval == 15s);
  CHECK(config.payload_file == "/var/lib/cartridge/launch-params");
  CHECK(config.warnings.empty());
}

TEST_CASE("every contract key is read", "[config]") {
  const auto config = parse_ok("# rendered by the builder\n"
                               "mb.urls = 10.0.2.100:1883, mq2.example.org:1884,[::1]:1885\n"
                               "service.name=php\n"
                               "   ports = 80|443 | 8080\n"
                               "listen.address = 127.0.0.1\r\n"
                               "port.check.timeout = 0\n"
                               "\n"
                               "  # indented comment\n"
                               "stats.interval = 5\n"
                               "payload.file = /tmp/payload/launch-params\n");
  REQUIRE(config.brokers.size() == 3);
  CHECK(config.brokers[0] == BrokerAddress{"10.0.2.100", 1883});
  CHECK(config.brokers[1] == BrokerAddress{"mq2.example.org", 1884});
  CHECK(config.brokers[2] == BrokerAddress{"::1", 1885});
  CHECK(config.brokers[2].to_string() == "[::1]:1885");
  CHECK(config.service_name == "php");
  CHECK(config.ports == std::vector<std::uint16_t>{80, 443, 8080});
  CHECK(config.listen_address == "127.0.0.1");
  CHECK(config.port_check_timeout == 0s);
  CHECK(config.stats_interval == 5s);
  CHECK(config.payload_file == "/tmp/payload/launch-params");
  CHECK(config.warnings.empty());
}

TEST_CASE("the packaged default agent.conf is valid", "[config]") {
  auto config = load_config(AGENT_DEFAULT_CONF);
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config);
  CHECK(config.value().brokers == std::vector<BrokerAddress>{{"127.0.0.1", 1883}});
  CHECK(config.value().warnings.empty());
  CHECK(check_complete(config.value(), "agent.conf"));
}

TEST_CASE("unknown and duplicate keys are warnings", "[config]") {
  const auto config = parse_ok("mb.username = admin\nstats.interval = 5\nstats.interval = 7\n");
  CHECK(config.stats_interval == 7s);
  REQUIRE(config.warnings.size() == 2);
  CHECK(config.warnings[0] == "agent.conf:1: unknown key 'mb.username' ignored");
  CHECK(config.warnings[1] == "agent.conf:3: duplicate key 'stats.interval'; the later value wins");
}

TEST_CASE("errors name file and line exactly", "[config]") {
  CHECK(parse_error("# c\n[agent]\n") == "agent.conf:2: expected 'key = value', got '[agent]'");
  CHECK(parse_error(" = x\n") == "agent.conf:1: empty key");
  CHECK(parse_error("\n\nlisten.address =   \n") == "agent.conf:3: empty value for 'listen.address'");
  CHECK(parse_error("mb.urls = broker\n") ==
        "agent.conf:1: mb.urls: invalid broker address 'broker' (expected host:port)");
  CHECK(parse_error("mb.urls = a:1,b:x\n") == "agent.conf:1: mb.urls: invalid port 'x' (expected 1-65535)");
  CHECK(parse_error("mb.urls = a:0\n") == "agent.conf:1: mb.urls: invalid port '0' (expected 1-65535)");
  CHECK(parse_error("mb.urls = ::1:1883\n") ==
        "agent.conf:1: mb.urls: invalid broker address '::1:1883' (expected host:port)");
  CHECK(parse_error("mb.urls = :1883\n") ==
        "agent.conf:1: mb.urls: invalid broker address ':1883' (expected host:port)");
  CHECK(parse_error("mb.urls = ,\n") == "agent.conf:1: mb.urls: no broker address in ','");
  CHECK(parse_error("ports = 80|http\n") == "agent.conf:1: ports: invalid port 'http' (expected 1-65535)");
  CHECK(parse_error("ports = 65536\n") == "agent.conf:1: ports: invalid port '65536' (expected 1-65535)");
  CHECK(parse_error("stats.interval = 0\n") ==
        "agent.conf:1: stats.interval: expected a whole number of seconds >= 1, got '0'");
  CHECK(parse_error("port.check.timeout = 10m\n") ==
        "agent.conf:1: port.check.timeout: expected a whole number of seconds >= 0, got '10m'");
  CHECK(parse_error("port.check.timeout = -1\n") ==
        "agent.conf:1: port.check.timeout: expected a whole number of seconds >= 0, got '-1'");
  CHECK(parse_error("payload.file = launch-params\n") ==
        "agent.conf:1: payload.file: expected an absolute path, got 'launch-params'");
}

TEST_CASE("a missing file is reported with its path", "[config]") {
  auto config = load_config("/nonexistent/agent.conf");
  REQUIRE_FALSE(config);
  CHECK(config.error().message == "/nonexistent/agent.conf: cannot read: No such file or directory");
}

TEST_CASE("load_config names the real path in errors", "[config]") {
  const auto dir = agent_test::make_test_directory("config");
  agent_test::write_file(dir / "agent.conf", "mb.urls = a:1\nports = x\n");
  auto config = load_config(dir / "agent.conf");
  REQUIRE_FALSE(config);
  CHECK(config.error().message == (dir / "agent.conf").string() + ":2: ports: invalid port 'x' (expected 1-65535)");
}

TEST_CASE("payload values override the configuration", "[config]") {
  auto config = parse_ok("mb.urls = a:1,b:2\nports = 22\nservice.name = generic\n");

  SECTION("MB_IP and MB_PORT together replace mb.urls") {
    REQUIRE(apply_payload_overrides(config, {{"MB_IP", "10.0.2.100"}, {"MB_PORT", "1883"}}, "launch-params"));
    CHECK(config.brokers == std::vector<BrokerAddress>{{"10.0.2.100", 1883}});
    CHECK(config.warnings.empty());
  }
  SECTION("MB_IP alone is ignored with a warning") {
    REQUIRE(apply_payload_overrides(config, {{"MB_IP", "10.0.2.100"}}, "launch-params"));
    CHECK(config.brokers == std::vector<BrokerAddress>{{"a", 1}, {"b", 2}});
    REQUIRE(config.warnings.size() == 1);
    CHECK(config.warnings[0] ==
          "launch-params: MB_IP given without MB_PORT; both are needed to override mb.urls, ignored");
  }
  SECTION("MB_PORT alone is ignored with a warning") {
    REQUIRE(apply_payload_overrides(config, {{"MB_PORT", "1883"}}, "launch-params"));
    CHECK(config.brokers.size() == 2);
    REQUIRE(config.warnings.size() == 1);
    CHECK(config.warnings[0] ==
          "launch-params: MB_PORT given without MB_IP; both are needed to override mb.urls, ignored");
  }
  SECTION("a bad MB_PORT is an error naming the payload") {
    const auto applied = apply_payload_overrides(config, {{"MB_IP", "x"}, {"MB_PORT", "18a"}}, "launch-params");
    REQUIRE_FALSE(applied);
    CHECK(applied.error().message == "launch-params: MB_PORT: invalid port '18a' (expected 1-65535)");
  }
  SECTION("PORTS replaces ports") {
    REQUIRE(apply_payload_overrides(config, {{"PORTS", "80|443"}}, "launch-params"));
    CHECK(config.ports == std::vector<std::uint16_t>{80, 443});
  }
  SECTION("a bad PORTS is an error naming the payload") {
    const auto applied = apply_payload_overrides(config, {{"PORTS", "80|44x3"}}, "launch-params");
    REQUIRE_FALSE(applied);
    CHECK(applied.error().message == "launch-params: PORTS: invalid port '44x3' (expected 1-65535)");
  }
  SECTION("SERVICE_NAME replaces service.name") {
    REQUIRE(apply_payload_overrides(config, {{"SERVICE_NAME", "tomcat"}}, "launch-params"));
    CHECK(config.service_name == "tomcat");
  }
  SECTION("no payload values leave the configuration alone") {
    REQUIRE(apply_payload_overrides(config, {}, "launch-params"));
    CHECK(config.brokers.size() == 2);
    CHECK(config.ports == std::vector<std::uint16_t>{22});
    CHECK(config.service_name == "generic");
  }
}

TEST_CASE("a broker is required after the overrides", "[config]") {
  auto config = parse_ok("ports = 80\n");
  const auto complete = check_complete(config, "/etc/cartridge-agent/agent.conf");
  REQUIRE_FALSE(complete);
  CHECK(complete.error().message ==
        "no message broker configured: set mb.urls in /etc/cartridge-agent/agent.conf or MB_IP and MB_PORT in the "
        "payload");
  REQUIRE(apply_payload_overrides(config, {{"MB_IP", "h"}, {"MB_PORT", "1"}}, "p"));
  CHECK(check_complete(config, "agent.conf"));
}

TEST_CASE("the payload comes from the systemd credential when there is one", "[config]") {
  AgentConfig config;
  config.payload_file = "/srv/launch-params";
  CHECK(resolve_payload_path(config, "/run/credentials/cartridge-agent.service") ==
        "/run/credentials/cartridge-agent.service/launch-params");
  CHECK(resolve_payload_path(config, nullptr) == "/srv/launch-params");
  CHECK(resolve_payload_path(config, "") == "/srv/launch-params");
}

TEST_CASE("Stratos keys: handshake, extensions, artifacts", "[config]") {
  const auto defaults = parse_ok("");
  CHECK(defaults.handshake);
  CHECK(defaults.extensions_dir == "/etc/cartridge-agent/extensions");
  CHECK(defaults.extension_timeout == 120s);
  CHECK(defaults.application_path.empty());
  CHECK(defaults.application_root == "/var/www");
  CHECK(defaults.artifact_update_interval == 0s);
  CHECK(defaults.artifact_clone_retries == 5);
  CHECK(defaults.artifact_clone_interval == 10s);
  CHECK(defaults.git_timeout == 300s);
  CHECK_FALSE(defaults.initial_artifact_backup);

  const auto config =
      parse_ok("stratos.handshake = false\nextensions.dir = /opt/ext\nextension.timeout = 7\n"
               "application.path = /var/www/html\nartifact.update.interval = 15\nartifact.clone.retries = 0\n"
               "artifact.clone.interval = 3\ngit.timeout = 60\nsuper.tenant.repository.path = /s/\n"
               "tenant.repository.path = /t/\napplication.root = /srv/www/\n"
               "enable.initial.artifact.backup = true\n");
  CHECK_FALSE(config.handshake);
  CHECK(config.extensions_dir == "/opt/ext");
  CHECK(config.extension_timeout == 7s);
  CHECK(config.application_path == "/var/www/html");
  CHECK(config.artifact_update_interval == 15s);
  CHECK(config.artifact_clone_retries == 0);
  CHECK(config.artifact_clone_interval == 3s);
  CHECK(config.git_timeout == 60s);
  CHECK(config.super_tenant_repository_path == "/s/");
  CHECK(config.tenant_repository_path == "/t/");
  CHECK(config.application_root == "/srv/www/");
  CHECK(config.initial_artifact_backup);
  CHECK(config.warnings.empty());

  CHECK(parse_error("stratos.handshake = maybe\n") ==
        "agent.conf:1: stratos.handshake: expected true or false, got 'maybe'");
  CHECK(parse_error("enable.initial.artifact.backup = yes please\n") ==
        "agent.conf:1: enable.initial.artifact.backup: expected true or false, got 'yes please'");
  CHECK(parse_error("extensions.dir = ext\n") == "agent.conf:1: extensions.dir: expected an absolute path, got 'ext'");
  CHECK(parse_error("application.root = www\n") ==
        "agent.conf:1: application.root: expected an absolute path, got 'www'");
  CHECK(parse_error("extension.timeout = 0\n") ==
        "agent.conf:1: extension.timeout: expected a whole number of seconds >= 1, got '0'");
  CHECK(parse_error("artifact.clone.retries = many\n") ==
        "agent.conf:1: artifact.clone.retries: expected a whole number 0-100, got 'many'");
}

TEST_CASE("APPLICATION_PATH from the payload, unless agent.conf has one", "[config]") {
  auto config = parse_ok("");
  REQUIRE(apply_payload_overrides(config, {{"APPLICATION_PATH", "/var/www/app"}}, "launch-params"));
  CHECK(config.application_path == "/var/www/app");

  config = parse_ok("application.path = /srv/www\n");
  REQUIRE(apply_payload_overrides(config, {{"APPLICATION_PATH", "/var/www/app"}}, "launch-params"));
  CHECK(config.application_path == "/srv/www");

  config = parse_ok("");
  REQUIRE(apply_payload_overrides(config, {}, "launch-params"));
  CHECK(config.application_path == "/var/www/html");

  config = parse_ok("");
  REQUIRE(apply_payload_overrides(config, {{"APPLICATION_PATH", "www"}}, "launch-params"));
  CHECK(config.application_path == "/var/www/html");
  REQUIRE(config.warnings.size() == 1);
  CHECK(config.warnings[0] == "launch-params: APPLICATION_PATH 'www' is not absolute; ignored");
}
