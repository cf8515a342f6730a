// plan FILE... [--since REV]: layers, cache keys, what would be built; a CI job matrix.
#include "cli/commands.hpp"

#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>

#include "plan/change.hpp"
#include "util/process.hpp"

namespace bi::cli {

Expected<int> cmd_plan(Options& o) {
  BI_TRY_ASSIGN(std::vector<Plan> plans, plan_all(o));
  std::vector<std::string> changed;
  std::error_code ec;
  const fs::path repo = fs::weakly_canonical(Resources::discover().puppet_dir.parent_path(), ec);
  if (!o.since.empty()) {
    auto diff = run_process({"git", "-C", repo.string(), "diff", "--name-only", o.since, "--"});
    if (!diff) {
      return Unexpected{diff.error()};
    }
    if (!diff->ok()) {
      return fail("--since " + o.since, "git diff failed: " + diff->tail(3), ExitCode::bad_input);
    }
    // New files count as changes too (a module gains a manifest before it is committed).
    auto untracked = run_process({"git", "-C", repo.string(), "ls-files", "--others", "--exclude-standard"});
    std::istringstream lines(diff->output + (untracked && untracked->ok() ? untracked->output : ""));
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) {
        changed.push_back(line);
      }
    }
  }
  nlohmann::json out = nlohmann::json::array();
  nlohmann::json matrix = nlohmann::json::array();
  for (const auto& p : plans) {
    auto j = p.to_json();
    // Per layer of the step list: in the local cache (a step that is another's layer is).
    std::map<std::string, bool> cached;
    for (const auto& step : p.steps) {
      if (!step.layer.empty()) {
        cached[step.layer] =
            !step.same_as.empty() || fs::exists(o.cache_dir / "layers" / (step.layer + "-" + step.key), ec);
      }
    }
    j["cached"] = cached;
    const bool base_cached = cached["base"];
    const bool system_cached = cached["system"];
    bool affected = true;
    if (!o.since.empty()) {
      nlohmann::json reasons = nlohmann::json::array();
      for (const auto& path : changed) {
        if (auto why = change_reason(path, p, repo); !why.empty()) {
          reasons.push_back(why);
        }
      }
      affected = !reasons.empty();
      j["affected"] = affected;
      j["reasons"] = reasons;
    }
    if (affected) {
      matrix.push_back({{"cartridge", p.cartridge.type},
                        {"file", fs::weakly_canonical(p.cartridge.file, ec).lexically_relative(repo).generic_string()},
                        {"mode", to_string(p.mode)},
                        {"image_name", p.image_name},
                        {"inputs_key", p.inputs_key}});
    }
    out.push_back(j);
    if (!o.json) {
      std::cout << fmt::format(
          "{}{}\n  base    {}  {}\n  system  {}  {}\n  image   {}\n", p.image_name,
          o.since.empty() ? "" : (affected ? "  (affected)" : "  (unchanged)"), p.base.key.substr(0, 12),
          base_cached ? "cached" : "to build", p.system.key.substr(0, 12),
          !p.system.needed ? "same as base" : (system_cached ? "cached" : "to build"), p.inputs_key.substr(0, 12));
    }
  }
  if (o.json) {
    nlohmann::json result = {{"plans", out}, {"matrix", {{"include", matrix}}}};
    if (!o.since.empty()) {
      result["since"] = o.since;
      result["changed_files"] = changed;
    }
    std::cout << result.dump(2) << "\n";
  }
  return 0;
}

} // namespace bi::cli
