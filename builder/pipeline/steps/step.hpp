#pragma once
// A step kind: what the build runs for one entry of Plan::steps. Every kind lives in one
// file of this folder and one line of registry.cpp; the orchestrator (build.cpp) caches,
// times, reports and records any step without knowing its kind.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "pipeline/build.hpp"
#include "pipeline/layer_store.hpp"
#include "plan/plan.hpp"
#include "rootfs/rootfs.hpp"
#include "util/expected.hpp"
#include "util/fs.hpp"

namespace bi {

// What the steps of one build share: the plan, where things go, what earlier steps made.
struct StepContext {
  const Plan& plan;
  const BuildOptions& options;
  LayerStore& store;
  BuildResult& result;
  std::chrono::steady_clock::time_point start;            // of the build
  int launches_before = 0;                                // appliance launches when the build started
  std::map<std::string, fs::path> outputs;                // step kind -> what it produced
  std::map<std::string, std::string> packages;            // installed in the image (from assembly)
  std::map<std::string, std::uint64_t> package_sizes_kib; // dpkg Installed-Size (for the report)
  std::map<std::string, std::uint64_t> tree_sizes;        // bytes per top-level folder (for the report)
  std::optional<TempDir> work;                            // scratch of the steps after the layers

  // The output of the step's i-th input (PlanStep::inputs).
  const fs::path& input(const PlanStep& step, size_t i) const { return outputs.at(step.inputs.at(i)); }
};

// How one step reports: lines of tool output (progress detail + debug log) and a note for
// the phase line ("123 packages"). Early steps run beside another phase and get a sink
// that only logs.
struct StepIO {
  LineSink sink;
  std::function<void(std::string)> note;
};

struct StepKind {
  std::string kind;
  // Layered steps (PlanStep::layer set) build into `out`, an empty content dir of the layer
  // cache, and are skipped on a cache hit; other steps run on every build and set their
  // output (StepContext::outputs[kind]) themselves, `out` being empty.
  std::function<Expected<void>(StepContext&, const PlanStep&, const StepIO&, const fs::path& out)> run;
  // A layered step's output inside its content dir ("" = the dir itself).
  std::string output_in_layer;
  // The phase note of a layer built here; "" = "built <key>" (with the source and key
  // prefix also for cache hits: "cached <key>", "remote <key>").
  std::string built_note;
};

// The registered kind, or nullptr.
const StepKind* find_step_kind(const std::string& kind);

} // namespace bi
