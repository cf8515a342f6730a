// cache ls|verify|gc [FILE...]: the local layer cache.
#include "cli/commands.hpp"

#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>

#include "pipeline/layer_store.hpp"
#include "util/did_you_mean.hpp"
#include "util/fs.hpp"

namespace bi::cli {

Expected<int> cmd_cache(Options& o) {
  const std::string action = o.args.empty() ? "ls" : o.args[0];
  LayerStore store(o.cache_dir);
  if (action == "ls") {
    auto layers = store.list();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& l : layers) {
      out.push_back({{"kind", l.kind}, {"key", l.key}, {"bytes", l.bytes}, {"created", l.created}});
      if (!o.json) {
        std::cout << fmt::format("{:<10} {}  {:>10}  {}\n", l.kind, l.key.substr(0, 12), human_bytes(l.bytes),
                                 l.created);
      }
    }
    if (o.json) {
      std::cout << nlohmann::json{{"cache", o.cache_dir.string()}, {"layers", out}}.dump(2) << "\n";
    }
    return 0;
  }
  if (action == "verify") {
    auto results = store.verify(true);
    int bad = 0;
    for (const auto& r : results) {
      bad += r.ok ? 0 : 1;
      std::cout << fmt::format("{:<10} {}  {}\n", r.layer.kind, r.layer.key.substr(0, 12),
                               r.ok ? "ok" : "CORRUPT: " + r.problem);
    }
    return bad == 0 ? 0 : 1;
  }
  if (action == "gc") {
    // Keeps the layers the given cartridges need; with no cartridges, empties the cache.
    std::vector<std::string> keep;
    if (o.args.size() > 1) {
      Options sub = o;
      sub.args.assign(o.args.begin() + 1, o.args.end());
      BI_TRY_ASSIGN(std::vector<Plan> plans, plan_all(sub));
      for (const auto& p : plans) {
        for (const auto& [layer, key] : p.layer_keys()) {
          keep.push_back(key);
        }
      }
    }
    const auto freed = store.gc(keep);
    std::cout << "freed " << human_bytes(freed) << "\n";
    return 0;
  }
  const auto hint = did_you_mean_suffix(action, {"ls", "gc", "verify"});
  return Unexpected{usage_error(fmt::format("unknown cache action '{}'", action) +
                                (hint.empty() ? " (expected ls, gc or verify)" : hint))};
}

} // namespace bi::cli
