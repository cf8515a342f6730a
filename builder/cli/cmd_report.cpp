// report IMAGE: the HTML build report of a built image (report/html_report.hpp); `build
// --report FILE.html` writes the same page right after a build.
#include "cli/commands.hpp"

#include <iostream>

#include "image/catalog.hpp"
#include "image/manifest.hpp"
#include "report/html_report.hpp"
#include "util/fs.hpp"

namespace bi::cli {

Expected<fs::path> write_build_report(const fs::path& manifest_path, const fs::path& page) {
  BI_TRY_ASSIGN(Manifest m, read_manifest(manifest_path));
  BI_TRY(write_file_atomic(page, render_html_report(m.to_json())));
  return page;
}

Expected<int> cmd_report(Options& o) {
  if (o.args.size() != 1) {
    return Unexpected{usage_error("report takes one image (a path or a name from the catalog)")};
  }
  BI_TRY_ASSIGN(fs::path manifest, find_manifest(o.output_dir, o.args[0]));
  fs::path page = o.report;
  if (page.empty()) {
    page = manifest;
    page.replace_extension(".html");
  }
  BI_TRY_ASSIGN(fs::path written, write_build_report(manifest, page));
  std::cout << written.string() << "\n";
  return 0;
}

} // namespace bi::cli
