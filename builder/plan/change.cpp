#include "plan/change.hpp"

#include <algorithm>

namespace bi {

std::string change_reason(const std::string& path, const Plan& plan, const fs::path& repo) {
  auto under = [&](const char* prefix) { return path.rfind(prefix, 0) == 0; };
  if (under("builder/") || path == "CMakeLists.txt" || under("cmake/")) {
    return "the builder changed: " + path;
  }
  if (under("init-scripts/")) {
    return "init script changed: " + path;
  }
  if (plan.mode == Mode::full && under("agent/")) {
    return "cartridge agent changed: " + path;
  }
  if (plan.mode == Mode::full && under("puppet/modules/")) {
    const std::string module = path.substr(15, path.find('/', 15) - 15);
    const auto& classes = plan.system.puppet_classes;
    if (module == "base" || std::find(classes.begin(), classes.end(), module) != classes.end()) {
      return "Puppet module " + module + " changed: " + path;
    }
  }
  std::error_code ec;
  const auto rel = [&](const fs::path& p) {
    return fs::weakly_canonical(p, ec).lexically_relative(repo).generic_string();
  };
  if (rel(plan.cartridge.file) == path) {
    return "cartridge definition changed: " + path;
  }
  for (const auto& f : plan.cartridge.files) {
    if (rel(f.source) == path) {
      return "file changed: " + path;
    }
  }
  return "";
}

} // namespace bi
