#pragma once
// Many builds in one run (--jobs N): worker threads take plans longest first; layers that
// several plans share are built once (the layer cache's per-layer lock makes the others
// wait, then hit). Results stay in the order of the plans.

#include <functional>
#include <memory>
#include <vector>

#include "pipeline/build.hpp"

namespace bi {

// The order builds start in with more than one job: those with more layers to build first,
// then more Puppet classes, then more packages, so the longest does not start last and
// run alone at the end. With one job: as given.
std::vector<size_t> build_order(const std::vector<Plan>& plans, const fs::path& cache_dir, size_t jobs);

// Runs every plan with `options` (its progress replaced by `make_progress(plan)`).
std::vector<Expected<BuildResult>>
build_all(const std::vector<Plan>& plans, const BuildOptions& options, size_t jobs,
          const std::function<std::unique_ptr<Progress>(const Plan&)>& make_progress);

} // namespace bi
