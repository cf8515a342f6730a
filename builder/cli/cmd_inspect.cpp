// inspect IMAGE: an image's manifest.
#include "cli/commands.hpp"

#include <iostream>

#include <spdlog/fmt/fmt.h>

#include "image/catalog.hpp"
#include "image/manifest.hpp"
#include "util/fs.hpp"

namespace bi::cli {

Expected<int> cmd_inspect(Options& o) {
  if (o.args.size() != 1) {
    return Unexpected{usage_error("inspect takes one image (a path or a name from the catalog)")};
  }
  BI_TRY_ASSIGN(fs::path manifest, find_manifest(o.output_dir, o.args[0]));
  BI_TRY_ASSIGN(Manifest m, read_manifest(manifest));
  if (o.json) {
    std::cout << m.to_json().dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format(
      "name          {}\ncartridge     {} ({} mode)\nfile          {} ({}, {})\n"
      "virtual size  {}\nsha256        {}\ninputs key    {}\nbuilt         {} in {:.1f} s with {}\n"
      "layers        base {} / system {}\npackages      {}\n",
      m.name, m.cartridge, m.mode, m.file, m.format, human_bytes(m.file_size), human_bytes(m.virtual_size), m.sha256,
      m.inputs_key, m.created, m.build_seconds, m.tool_version, m.layer("base").substr(0, 12),
      m.layer("system").substr(0, 12), m.packages.size());
  return 0;
}

} // namespace bi::cli
