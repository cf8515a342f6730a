// The command and option tables that help, the man page and completion are drawn from.
#include <catch2/catch.hpp>

#include <set>

#include "cli/commands.hpp"
#include "register/provider.hpp"

using namespace bi;

TEST_CASE("cli tables: every option's commands exist, and a 'command:' help prefix agrees") {
  std::set<std::string> names;
  for (const auto& c : cli::commands()) {
    names.insert(c.name);
  }
  for (const auto& s : cli::option_specs()) {
    INFO(s.name);
    if (s.commands != nullptr) {
      std::string list = s.commands;
      size_t start = 0;
      while (start < list.size()) {
        const size_t end = std::min(list.find(' ', start), list.size());
        CHECK(names.count(list.substr(start, end - start)) == 1);
        start = end + 1;
      }
    }
    // "boot-test: ..." in the help names a command the option must apply to (an option added
    // without its commands would otherwise show up under every command).
    const std::string help = s.help;
    if (const auto colon = help.find(": "); colon != std::string::npos) {
      const std::string prefix = help.substr(0, colon);
      if (names.count(prefix) == 1) {
        CHECK(s.commands != nullptr);
        CHECK(cli::applies_to(s, prefix));
      }
    }
  }
}

TEST_CASE("cli tables: --to offers exactly the registered providers") {
  const cli::OptionSpec* to = nullptr;
  for (const auto& s : cli::option_specs()) {
    if (std::string(s.name) == "--to") {
      to = &s;
    }
  }
  REQUIRE(to != nullptr);
  REQUIRE(to->values != nullptr);
  CHECK(std::string(to->values) == registration::provider_names(" "));
}
