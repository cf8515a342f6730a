#pragma once
// Loads and validates a cartridge YAML file. Every problem in the file is reported, each
// with its line and column, so a user fixes them all in one round.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cartridge/cartridge.hpp"
#include "util/expected.hpp"

namespace bi {

struct Diagnostic {
  int line = 1;   // 1-based
  int column = 1; // 1-based
  std::string message;
};

struct LoadOptions {
  // When set, server_apps and dependent_apps must name modules found here.
  std::optional<std::filesystem::path> puppet_modules;
  std::uint64_t max_file_bytes = 1u << 20;
  std::uint64_t max_extra_file_bytes = 64u << 20;
};

struct LoadResult {
  std::optional<Cartridge> cartridge; // set only when there are no diagnostics
  std::vector<Diagnostic> diagnostics;
};

LoadResult load_cartridge(const std::filesystem::path& file, const LoadOptions& options = {});
LoadResult load_cartridge_text(const std::string& text, const std::filesystem::path& file,
                               const LoadOptions& options = {});

// `file:line:col: message` lines, one per diagnostic.
std::string format_diagnostics(const std::string& shown_path, const std::vector<Diagnostic>& diags);

} // namespace bi
