#include "pipeline/batch.hpp"

#include <algorithm>
#include <atomic>
#include <numeric>
#include <optional>
#include <thread>
#include <tuple>

namespace bi {

std::vector<size_t> build_order(const std::vector<Plan>& plans, const fs::path& cache_dir, size_t jobs) {
  std::vector<size_t> order(plans.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (jobs <= 1) {
    return order;
  }
  auto cost = [&](const Plan& p) {
    std::error_code ec;
    size_t to_build = 0;
    for (const auto& s : p.steps) {
      if (!s.layer.empty() && s.same_as.empty() && !fs::exists(cache_dir / "layers" / (s.layer + "-" + s.key), ec)) {
        ++to_build;
      }
    }
    return std::make_tuple(to_build, p.system.puppet_classes.size(), p.system.packages.size());
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost(plans[a]) > cost(plans[b]); });
  return order;
}

std::vector<Expected<BuildResult>>
build_all(const std::vector<Plan>& plans, const BuildOptions& options, size_t jobs,
          const std::function<std::unique_ptr<Progress>(const Plan&)>& make_progress) {
  jobs = std::max<size_t>(1, std::min(jobs, plans.size()));
  const std::vector<size_t> order = build_order(plans, options.cache_dir, jobs);
  std::vector<std::optional<Expected<BuildResult>>> results(plans.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t n; (n = next++) < plans.size();) {
      const size_t i = order[n];
      std::unique_ptr<Progress> progress = make_progress(plans[i]);
      BuildOptions bo = options;
      bo.progress = progress.get();
      results[i] = build_image(plans[i], bo);
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < jobs; ++t) {
    threads.emplace_back(worker);
  }
  worker();
  for (auto& t : threads) {
    t.join();
  }
  std::vector<Expected<BuildResult>> out;
  out.reserve(plans.size());
  for (auto& r : results) {
    out.push_back(std::move(*r));
  }
  return out;
}

} // namespace bi
