// The cartridge YAML loader and validator (load_cartridge_text): any text must give either a
// cartridge or diagnostics with real positions, never a crash, a hang or an exception, and
// a cartridge it accepts must satisfy what the validator promises.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "cartridge/loader.hpp"
#include "fuzz_check.hpp"

namespace fs = std::filesystem;

namespace {

fs::path g_yaml;   // the cartridge's (non-existent) file: sources resolve next to it
fs::path g_folder; // its folder, with files/motd
bi::LoadOptions g_options;

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/fuzz-loader-XXXXXX";
  const fs::path root = ::mkdtemp(tmpl);
  g_folder = root / "cartridge";
  fs::create_directories(g_folder / "files");
  std::ofstream(g_folder / "files" / "motd") << "hello\n";
  fs::create_directories(root / "modules" / "php");
  fs::create_directories(root / "modules" / "apache");
  fs::create_directories(root / "modules" / "mysql");
  g_yaml = g_folder / "cartridge.yaml";
  g_options.puppet_modules = root / "modules";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bi::LoadResult r = bi::load_cartridge_text(text, g_yaml, g_options);

  FUZZ_CHECK(r.cartridge.has_value() == r.diagnostics.empty());
  for (const auto& d : r.diagnostics) {
    FUZZ_CHECK(d.line >= 1 && d.column >= 1 && !d.message.empty());
  }
  (void)bi::format_diagnostics("cartridge.yaml", r.diagnostics);
  if (!r.cartridge) {
    return 0;
  }
  const bi::Cartridge& c = *r.cartridge;
  FUZZ_CHECK(!c.type.empty() && c.type.size() <= 32);
  std::set<int> ports;
  for (const auto& p : c.ports) {
    FUZZ_CHECK(p.port >= 1 && p.port <= 65535 && p.proxy_port >= 0 && p.proxy_port <= 65535);
    FUZZ_CHECK(ports.insert(p.port).second);
  }
  for (const auto& f : c.files) {
    // Accepted sources are inside the cartridge's folder; destinations are absolute, no "..".
    const auto rel = fs::weakly_canonical(f.source).lexically_relative(fs::weakly_canonical(g_folder));
    FUZZ_CHECK(!rel.empty() && *rel.begin() != "..");
    FUZZ_CHECK(fs::path(f.dest).is_absolute());
    for (const auto& part : fs::path(f.dest)) {
      FUZZ_CHECK(part != "..");
    }
    FUZZ_CHECK(f.mode <= 0777);
  }
  FUZZ_CHECK(c.base.os.empty() != c.base.image.empty());
  return 0;
}
