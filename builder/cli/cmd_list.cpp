// list: the image catalog.
#include "cli/commands.hpp"

#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>

#include "image/catalog.hpp"
#include "util/fs.hpp"

namespace bi::cli {

Expected<int> cmd_list(Options& o) {
  BI_TRY_ASSIGN(nlohmann::json catalog, catalog_read(o.output_dir));
  if (o.json) {
    std::cout << catalog.dump(2) << "\n";
    return 0;
  }
  if (catalog["images"].empty()) {
    std::cout << "no images in " << (o.output_dir / "catalog.json").string() << "\n";
  }
  for (const auto& e : catalog["images"]) {
    std::cout << fmt::format("{:<40} {:<8} {:<6} {:>10}  {}\n", e.value("name", ""), e.value("mode", ""),
                             e.value("format", ""), human_bytes(e.value("file_size", 0ull)), e.value("created", ""));
  }
  return 0;
}

} // namespace bi::cli
