// init [TYPE]: a commented starter cartridge, copied from the installed templates into the
// current folder with the files it names; never overwrites anything.
#include "cli/commands.hpp"

#include <algorithm>
#include <iostream>

#include <spdlog/fmt/fmt.h>

#include "cartridge/loader.hpp"
#include "util/did_you_mean.hpp"
#include "util/fs.hpp"

namespace bi::cli {

namespace {

std::vector<std::string> template_types(const fs::path& dir) {
  std::vector<std::string> types;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".yaml" && it->is_regular_file(ec)) {
      types.push_back(it->path().stem().string());
    }
  }
  std::sort(types.begin(), types.end());
  return types;
}

} // namespace

Expected<int> cmd_init(Options& o) {
  if (o.args.size() > 1) {
    return Unexpected{usage_error("init takes at most one cartridge type (try: build-image init php)")};
  }
  const std::string type = o.args.empty() ? "php" : o.args[0];
  const Resources res = Resources::discover();
  const std::vector<std::string> types = template_types(res.templates_dir);
  if (types.empty()) {
    return fail(res.templates_dir.string(), "no cartridge templates (is build-image installed completely?)",
                ExitCode::host_missing);
  }
  if (std::find(types.begin(), types.end(), type) == types.end()) {
    const std::string hint = did_you_mean_suffix(type, types);
    return Unexpected{usage_error(fmt::format("unknown cartridge type '{}'", type) +
                                  (hint.empty() ? fmt::format(" (templates: {})", fmt::join(types, ", ")) : hint))};
  }
  const fs::path source = res.templates_dir / (type + ".yaml");
  const LoadResult loaded = load_cartridge(source);
  if (!loaded.cartridge) {
    return fail(source.string(), "the template does not load; run build-image validate on it", ExitCode::host_missing);
  }
  // Everything to write, checked before anything is written: the cartridge and the files
  // it names (relative to it, so the starter validates where it is written).
  std::vector<std::pair<fs::path, fs::path>> copies; // destination, source
  const fs::path dest = type + ".yaml";
  copies.emplace_back(dest, source);
  for (const auto& f : loaded.cartridge->files) {
    copies.emplace_back(fs::path(f.source_as_written).lexically_normal(), f.source);
  }
  std::error_code ec;
  for (const auto& [to, from] : copies) {
    if (fs::exists(fs::symlink_status(to, ec))) {
      return fail(to.string(), "already exists; not overwritten (remove it or run init in another folder)",
                  ExitCode::bad_input);
    }
    if (to.is_absolute() || to.string().rfind("..", 0) == 0) {
      return fail(source.string(), fmt::format("names a file outside its folder ({})", to.string()),
                  ExitCode::host_missing);
    }
  }
  BI_TRY_ASSIGN(std::string text, read_file(source));
  const std::string header =
      fmt::format("# Starter cartridge written by `build-image init {}` from {}.\n"
                  "# Edit it, then: build-image validate {} (every error at once), build-image plan {} (the\n"
                  "# layers and what would be built), build-image {} (the image, into images/).\n"
                  "# Every key is described in build-image(1) and in the README's \"The cartridge YAML\".\n\n",
                  type, source.string(), dest.string(), dest.string(), dest.string());
  BI_TRY(write_file_atomic(dest, header + text));
  std::cout << "wrote " << dest.string() << "\n";
  for (size_t i = 1; i < copies.size(); ++i) {
    const auto& [to, from] = copies[i];
    if (to.has_parent_path()) {
      fs::create_directories(to.parent_path(), ec);
    }
    BI_TRY_ASSIGN(std::string content, read_file(from));
    BI_TRY(write_file_atomic(to, content));
    std::cout << "wrote " << to.string() << "\n";
  }
  return 0;
}

} // namespace bi::cli
