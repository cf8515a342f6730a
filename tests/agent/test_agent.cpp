// The lifecycle's configuration handling (library) and the command line (binary); the
// broker-facing lifecycle is in test_agent_mqtt.cpp.
#include "agent.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>

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

}  // namespace

TEST_CASE("configuration problems exit with 2", "[agent]") {
    const auto dir = agent_test::make_test_directory("agent-config");
    const std::atomic<bool> stop{false};
    auto options = options_for(dir);

    SECTION("missing config file") {
        CHECK(run_agent(options, stop) == k_exit_usage_or_config);
    }
    SECTION("invalid config file") {
        agent_test::write_file(dir / "agent.conf", "mb.urls = nowhere\n");
        CHECK(run_agent(options, stop) == k_exit_usage_or_config);
    }
    SECTION("missing payload") {
        agent_test::write_file(dir / "agent.conf", "mb.urls = 127.0.0.1:1\npayload.file = " +
                                                       (dir / "launch-params").string() + "\n");
        CHECK(run_agent(options, stop) == k_exit_usage_or_config);
    }
    SECTION("payload from a credentials directory that lacks it") {
        agent_test::write_file(dir / "launch-params", "MEMBER_ID=m\n");
        agent_test::write_file(dir / "agent.conf", "mb.urls = 127.0.0.1:1\npayload.file = " +
                                                       (dir / "launch-params").string() + "\n");
        options.credentials_directory = dir / "credentials";
        CHECK(run_agent(options, stop) == k_exit_usage_or_config);
    }
    SECTION("bad PORTS in the payload") {
        agent_test::write_file(dir / "launch-params", "MEMBER_ID=m,PORTS=80|eighty\n");
        agent_test::write_file(dir / "agent.conf", "mb.urls = 127.0.0.1:1\npayload.file = " +
                                                       (dir / "launch-params").string() + "\n");
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
