// The process runner: argv without a shell, explicit environment, output lines, time limit.
#include "process.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <csignal>

using namespace cartridge_agent;
using namespace std::chrono_literals;

namespace {

struct Run {
  ProcessResult result;
  std::vector<std::string> lines;
};

Run run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 10s, std::vector<std::string> env = {},
        IdleFunction idle = sleep_idle) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.environment = std::move(env);
  spec.timeout = timeout;
  spec.kill_grace = 1s;
  Run out;
  out.result = run_process(spec, idle, [&](std::string_view line) { out.lines.emplace_back(line); });
  return out;
}

} // namespace

TEST_CASE("output lines, exit status and only the given environment", "[process]") {
  const auto ok =
      run({"/bin/sh", "-c", "echo one; echo two >&2; printf 'no newline'; echo \"[$ONLY][$HOME]\"", "ignored"}, 10s,
          {"ONLY=x"});
  CHECK(ok.result.success());
  CHECK(ok.lines == std::vector<std::string>{"one", "two", "no newline[x][]"});
  const auto failed = run({"/bin/sh", "-c", "exit 3"});
  CHECK(failed.result.outcome == ProcessResult::Outcome::exited);
  CHECK(failed.result.exit_code == 3);
  CHECK(failed.result.describe() == "exit status 3");
  const auto missing = run({"/nonexistent/program"});
  CHECK(missing.result.outcome == ProcessResult::Outcome::not_started);
  CHECK(missing.result.describe() == "not started: /nonexistent/program: No such file or directory");
  // argv is not a shell string.
  const auto literal = run({"/bin/echo", "$HOME; rm -rf /"});
  CHECK(literal.lines == std::vector<std::string>{"$HOME; rm -rf /"});
}

TEST_CASE("a program over its time limit is killed with its whole process group", "[process]") {
  const auto dir = agent_test::make_test_directory("process-timeout");
  const auto marker = dir / "child-pid";
  // The child ignores SIGTERM and leaves a grandchild behind; both must be gone.
  const auto slow =
      run({"/bin/sh", "-c", "trap '' TERM; sleep 300 & echo $! > " + marker.string() + "; echo started; wait"}, 1s);
  CHECK(slow.result.outcome == ProcessResult::Outcome::timed_out);
  CHECK(slow.result.describe() == "timed out (no exit within 1 s)");
  CHECK(slow.lines == std::vector<std::string>{"started"});
  const auto grandchild = std::stoi(agent_test::read_file(marker));
  CHECK(agent_test::wait_until([&] { return ::kill(grandchild, 0) != 0; }, 5s));
}

TEST_CASE("a daemon holding the output open does not block the caller", "[process]") {
  const auto dir = agent_test::make_test_directory("process-daemon");
  const auto marker = dir / "daemon-pid";
  // Waiting for the pipe's end would run into the 20 s limit (the daemon sleeps 30 s).
  const auto result = run({"/bin/sh", "-c", "sleep 30 & echo $! > " + marker.string() + "; echo parent done"}, 20s);
  CHECK(result.result.success());
  CHECK(result.lines == std::vector<std::string>{"parent done"});
  ::kill(std::stoi(agent_test::read_file(marker)), SIGKILL);
}

TEST_CASE("a stop request from idle ends the program", "[process]") {
  int calls = 0;
  const auto stopped = run({"/bin/sleep", "30"}, 60s, {}, [&](std::chrono::milliseconds d) {
    sleep_idle(d);
    return ++calls < 5;
  });
  CHECK(stopped.result.outcome == ProcessResult::Outcome::stopped);
}
