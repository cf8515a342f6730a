// help and version.
#include "cli/commands.hpp"

#include <iostream>

#include <spdlog/fmt/fmt.h>

#include "util/did_you_mean.hpp"

namespace bi::cli {

void print_help(std::ostream& out) {
  out << "usage: build-image [COMMAND] [OPTIONS] FILE...\n\n"
         "Builds VM cartridge images (generic or fully configured) from cartridge YAML files.\n"
         "With no command, FILE... are built.\n\ncommands:\n";
  for (const auto& c : commands()) {
    out << fmt::format("  {:<44} {}\n", c.synopsis, c.summary);
  }
  out << "\noptions:\n";
  for (const auto& s : option_specs()) {
    out << fmt::format("  {:<44} {}\n", std::string(s.name) + (s.takes_value ? " VALUE" : ""), s.help);
  }
  out << "\nbuild-image COMMAND --help (or build-image help COMMAND) lists only that command's options.\n";
  out << "\nexit codes: 0 ok, 1 build failed, 2 bad input or usage, 3 host is missing something\n";
}

namespace {

// "boot-test: the instance payload file" reads as "the instance payload file" under
// boot-test's own heading.
std::string without_command_prefix(const std::string& help) {
  const auto colon = help.find(": ");
  if (colon == std::string::npos || help.find_first_not_of("abcdefghijklmnopqrstuvwxyz-, ") < colon) {
    return help;
  }
  return help.substr(colon + 2);
}

} // namespace

const Command* find_command(const std::string& name) {
  for (const auto& c : commands()) {
    if (name == c.name) {
      return &c;
    }
  }
  return nullptr;
}

void print_command_help(std::ostream& out, const Command& c) {
  out << "usage: build-image " << c.synopsis << "\n\n" << c.summary << "\n";
  bool own = false;
  bool general = false;
  for (const auto& s : option_specs()) {
    own = own || (s.commands != nullptr && applies_to(s, c.name));
    general = general || s.commands == nullptr;
  }
  const auto list = [&](bool specific) {
    for (const auto& s : option_specs()) {
      if ((s.commands != nullptr) == specific && applies_to(s, c.name)) {
        out << fmt::format("  {:<28} {}\n", std::string(s.name) + (s.takes_value ? " VALUE" : ""),
                           without_command_prefix(s.help));
      }
    }
  };
  if (own) {
    out << "\noptions:\n";
    list(true);
  }
  if (general) {
    out << "\ngeneral options:\n";
    list(false);
  }
}

Expected<int> cmd_help(Options& o) {
  if (o.args.empty()) {
    print_help(std::cout);
    return 0;
  }
  if (o.args.size() > 1) {
    return Unexpected{usage_error("help takes one command (try: build-image help boot-test)")};
  }
  const Command* c = find_command(o.args[0]);
  if (c == nullptr) {
    std::vector<std::string> names;
    for (const auto& cmd : commands()) {
      names.emplace_back(cmd.name);
    }
    const auto hint = did_you_mean_suffix(o.args[0], names);
    return Unexpected{usage_error(fmt::format("unknown command '{}'", o.args[0]) +
                                  (hint.empty() ? " (see build-image help)" : hint))};
  }
  print_command_help(std::cout, *c);
  return 0;
}

Expected<int> cmd_version(Options&) {
  std::cout << "build-image " << k_tool_version << "\n";
  return 0;
}

} // namespace bi::cli
