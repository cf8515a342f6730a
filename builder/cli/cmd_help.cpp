// help and version.
#include "cli/commands.hpp"

#include <iostream>

#include <spdlog/fmt/fmt.h>

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
  out << "\nexit codes: 0 ok, 1 build failed, 2 bad input or usage, 3 host is missing something\n";
}

Expected<int> cmd_help(Options&) {
  print_help(std::cout);
  return 0;
}

Expected<int> cmd_version(Options&) {
  std::cout << "build-image " << k_tool_version << "\n";
  return 0;
}

} // namespace bi::cli
