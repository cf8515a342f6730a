#pragma once
// The subcommands: one table (cli.cpp) gives help, dispatch and did-you-mean; each command
// is one file cmd_<name>.cpp.

#include <functional>
#include <ostream>
#include <vector>

#include "cli/options.hpp"

namespace bi::cli {

struct Command {
  const char* name;
  const char* synopsis;
  const char* summary;
  std::function<Expected<int>(Options&)> run;
};

const std::vector<Command>& commands();
void print_help(std::ostream& out);

Expected<int> cmd_build(Options& o);
Expected<int> cmd_validate(Options& o);
Expected<int> cmd_plan(Options& o);
Expected<int> cmd_list(Options& o);
Expected<int> cmd_inspect(Options& o);
Expected<int> cmd_cache(Options& o);
Expected<int> cmd_help(Options& o);
Expected<int> cmd_version(Options& o);
Expected<int> cmd_report(Options& o);
// Writes the HTML build report of the image whose manifest is given into `page`.
Expected<fs::path> write_build_report(const fs::path& manifest_path, const fs::path& page);

} // namespace bi::cli
