#pragma once
// The subcommands: one table (cli.cpp) gives help, dispatch and did-you-mean; each command
// is one file cmd_<name>.cpp.

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/options.hpp"

namespace bi::cli {

struct Command {
  const char* name;
  const char* synopsis;
  const char* summary;
  std::function<Expected<int>(Options&)> run;
  // What bash completion offers for its arguments: "yaml" (cartridge files), "commands",
  // "templates", a space-separated word list, or nullptr for any file.
  const char* arguments = nullptr;
};

const std::vector<Command>& commands();
void print_help(std::ostream& out);
const Command* find_command(const std::string& name);
// One command's usage: its synopsis, summary and only the options that apply to it.
void print_command_help(std::ostream& out, const Command& c);
// Both generated from the command and option tables at build time (hidden commands
// __man and __bash-completion), installed by cmake --install and the .deb.
void print_man_page(std::ostream& out);
void print_bash_completion(std::ostream& out);

Expected<int> cmd_build(Options& o);
Expected<int> cmd_validate(Options& o);
Expected<int> cmd_plan(Options& o);
Expected<int> cmd_list(Options& o);
Expected<int> cmd_inspect(Options& o);
Expected<int> cmd_cache(Options& o);
Expected<int> cmd_help(Options& o);
Expected<int> cmd_version(Options& o);
Expected<int> cmd_report(Options& o);
Expected<int> cmd_init(Options& o);
// Writes the HTML build report of the image whose manifest is given into `page`.
Expected<fs::path> write_build_report(const fs::path& manifest_path, const fs::path& page);

} // namespace bi::cli
