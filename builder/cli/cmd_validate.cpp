// validate FILE...: every error of every file, nothing built.
#include "cli/commands.hpp"

#include <iostream>

#include <nlohmann/json.hpp>

namespace bi::cli {

Expected<int> cmd_validate(Options& o) {
  BI_TRY_ASSIGN(std::vector<Cartridge> cartridges, load_all(o));
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : cartridges) {
      out.push_back({{"file", c.file.string()}, {"type", c.type}, {"ok", true}});
    }
    std::cout << nlohmann::json{{"ok", true}, {"files", out}}.dump(2) << "\n";
  } else {
    for (size_t i = 0; i < cartridges.size(); ++i) {
      std::cout << o.args[i] << ": ok (" << cartridges[i].type << ", " << to_string(o.mode.value_or(cartridges[i].mode))
                << ")\n";
    }
  }
  return 0;
}

} // namespace bi::cli
