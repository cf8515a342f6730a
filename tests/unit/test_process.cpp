// The process runner: argv only, exit code, output and timeout reported distinctly.
#include <catch2/catch.hpp>

#include "util/process.hpp"

using namespace bi;

TEST_CASE("run_process captures combined output and the exit code") {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  REQUIRE(r);
  CHECK(r->exit_code == 3);
  CHECK_FALSE(r->timed_out);
  CHECK(r->output.find("out\n") != std::string::npos);
  CHECK(r->output.find("err\n") != std::string::npos);
}

TEST_CASE("arguments are passed verbatim, never through a shell") {
  auto r = run_process({"printf", "%s|", "a b", "$(touch /tmp/never)", "'q'"});
  REQUIRE(r);
  CHECK(r->output == "a b|$(touch /tmp/never)|'q'|\n");
}

TEST_CASE("a timeout is reported as a timeout and kills the process group") {
  RunOptions o;
  o.timeout = std::chrono::seconds(1);
  auto r = run_process({"sh", "-c", "sleep 30 & sleep 30"}, o);
  REQUIRE(r);
  CHECK(r->timed_out);
  CHECK(r->exit_code == -1);
  CHECK(r->seconds < 10);
}

TEST_CASE("a missing program is a host error (exit 3), not a crash") {
  auto r = run_process({"definitely-not-a-program-xyz"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ExitCode::host_missing);
  CHECK(r.error().to_string() ==
        "definitely-not-a-program-xyz: program not found in PATH (install it, see scripts/install-deps)");
}

TEST_CASE("run_checked turns a non-zero exit into an error naming the command") {
  auto r = run_checked({"sh", "-c", "echo boom; exit 7"});
  REQUIRE_FALSE(r);
  CHECK(r.error().to_string() == "sh: exited with status 7: sh -c 'echo boom; exit 7'\nboom\n");
}

TEST_CASE("on_line sees each line as it arrives and env is applied") {
  std::vector<std::string> lines;
  RunOptions o;
  o.on_line = [&](const std::string& l) { lines.push_back(l); };
  o.extra_env["BI_TEST_VALUE"] = "42";
  auto r = run_process({"sh", "-c", "echo one; echo $BI_TEST_VALUE"}, o);
  REQUIRE(r);
  CHECK(lines == std::vector<std::string>{"one", "42"});
}

TEST_CASE("inherited descriptors above 2 are closed in the child") {
  auto r = run_process({"sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"});
  REQUIRE(r);
  // 0-2 plus the fd ls itself opens for the listing.
  CHECK(r->output == "0 1 2 3 \n");
}

TEST_CASE("format_argv quotes for pasting into a shell") {
  CHECK(format_argv({"echo", "a b", "it's", "plain"}) == "echo 'a b' 'it'\\''s' plain");
}

TEST_CASE("tail_lines and RunResult::tail keep the last N lines", "[process]") {
  CHECK(tail_lines("a\nb\nc\n", 2) == "b\nc\n");
  CHECK(tail_lines("a\nb\nc", 2) == "b\nc");
  CHECK(tail_lines("a\nb\n", 5) == "a\nb\n");
  CHECK(tail_lines("", 3).empty());
  CHECK(tail_lines("only\n", 1) == "only\n");
  RunResult r;
  r.output = "1\n2\n3\n4\n";
  CHECK(r.tail(3) == "2\n3\n4\n");
  CHECK(r.tail(1) == "4\n");
}
