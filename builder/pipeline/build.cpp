#include "pipeline/build.hpp"

#include <chrono>
#include <future>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "guest/guestfs_handle.hpp"
#include "pipeline/layer_store.hpp"
#include "pipeline/steps/step.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/log.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

using Clock = std::chrono::steady_clock;

// Named, timed phases: one per step, logged, reported to Progress, recorded in the manifest.
class Phases {
public:
  Phases(Progress& progress, std::vector<PhaseRecord>& records) : m_progress(progress), m_records(records) {}

  template <typename Fn> auto run(const std::string& name, Fn&& fn) -> decltype(fn()) {
    if (interrupted()) {
      return fail(name, "interrupted");
    }
    spdlog::info("phase {}: start", name);
    m_progress.phase_start(name);
    const auto start = Clock::now();
    auto result = fn();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string note = result ? m_note : "failed";
    m_records.push_back({name, seconds, note});
    m_progress.phase_end(name, seconds, note);
    spdlog::info("phase {}: {} in {:.2f} s{}", name, result ? "done" : "FAILED", seconds,
                 note.empty() ? "" : " (" + note + ")");
    m_note.clear();
    if (!result && interrupted()) {
      return fail(name, "interrupted");
    }
    return result;
  }
  StepIO io() {
    return {[this](const std::string& line) {
              spdlog::debug("  | {}", line);
              m_progress.detail(line);
            },
            [this](std::string n) { m_note = std::move(n); }};
  }

private:
  Progress& m_progress;
  std::vector<PhaseRecord>& m_records;
  std::string m_note;
};

bool image_up_to_date(const fs::path& image, const fs::path& manifest_path, const Plan& plan) {
  std::error_code ec;
  if (!fs::is_regular_file(image, ec) || !fs::is_regular_file(manifest_path, ec)) {
    return false;
  }
  auto m = read_manifest(manifest_path);
  if (!m || m->inputs_key != plan.inputs_key) {
    return false;
  }
  auto digest = sha256_file(image);
  return digest && *digest == m->sha256;
}

const StepKind& kind_of(const PlanStep& step) {
  const StepKind* k = find_step_kind(step.kind);
  if (k == nullptr) {
    // make_plan only emits registered kinds: a missing one is a programming error.
    spdlog::critical("step kind '{}' is not registered (pipeline/steps/registry.cpp)", step.kind);
    std::abort();
  }
  return *k;
}

struct StepDone {
  fs::path output; // set for layers; other steps set StepContext::outputs themselves
  std::string note;
};

// Runs one step: through the layer cache when it is a layer, directly otherwise. Touches no
// shared state of the context for layers, so an early step can run in another thread.
Expected<StepDone> run_step(StepContext& ctx, const PlanStep& step, const StepIO& io) {
  const StepKind& kind = kind_of(step);
  if (step.layer.empty()) {
    BI_TRY(kind.run(ctx, step, io, {}));
    return StepDone{};
  }
  // A layer built here may say how (the bootloader: loop mount or appliance).
  std::string reported;
  const StepIO inner{io.sink, [&reported](std::string n) { reported = std::move(n); }};
  BI_TRY_ASSIGN(LayerStore::Result r, ctx.store.get_or_build(step.layer, step.key, [&](const fs::path& content) {
    return kind.run(ctx, step, inner, content);
  }));
  StepDone done;
  done.output = kind.output_in_layer.empty() ? r.content : r.content / kind.output_in_layer;
  const char* how = r.source == LayerStore::Source::local    ? "cached"
                    : r.source == LayerStore::Source::remote ? "remote"
                                                             : "built";
  if (r.source == LayerStore::Source::built && !reported.empty()) {
    done.note = reported;
  } else if (kind.built_note.empty()) {
    done.note = std::string(how) + " " + step.key.substr(0, 12);
  } else {
    done.note = r.source == LayerStore::Source::built ? kind.built_note : how;
  }
  return done;
}

// The output folder and the image's paths in it. The lock returned is held for the whole
// build: one build of an image name at a time per output folder (a second process
// building the same cartridge waits, then finds the image up to date).
Expected<FileLock> prepare_output(const Plan& plan, const BuildOptions& options, BuildResult& result) {
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) {
    return fail(options.output_dir.string(), "cannot create the output folder: " + ec.message(),
                ExitCode::host_missing);
  }
  result.image = options.output_dir / (plan.image_name + "." + to_string(plan.format));
  result.manifest_path = options.output_dir / (plan.image_name + ".json");
  result.log_path = options.output_dir / (plan.image_name + ".log");
  BI_TRY_ASSIGN(FileLock image_lock, FileLock::acquire(options.output_dir / (".lock-" + plan.image_name)));
  // Temp files of an earlier build of this image that was killed (SIGKILL leaves them).
  for (const auto& e : fs::directory_iterator(options.output_dir, ec)) {
    if (e.path().filename().string().rfind(".tmp-" + plan.image_name + ".", 0) == 0) {
      fs::remove(e.path(), ec);
    }
  }
  return image_lock;
}

// Walks the plan's steps in order, each one a timed phase. Early steps start at once in
// their own thread; their phase waits for them. After a failure only the steps already
// running are waited for, and the first failure is returned.
Expected<void> walk_steps(StepContext& ctx, Phases& phases) {
  const Plan& plan = ctx.plan;
  std::map<std::string, std::future<Expected<StepDone>>> early;
  for (const auto& step : plan.steps) {
    if (step.early && !step.layer.empty()) {
      early[step.kind] = std::async(std::launch::async, [&, build_log = current_build_log()] {
        set_current_build_log(build_log);
        return run_step(
            ctx, step,
            StepIO{[](const std::string& line) { spdlog::debug("  | {}", line); }, [](const std::string&) {}});
      });
    }
  }
  std::optional<Error> failed;
  for (const auto& step : plan.steps) {
    const auto started = early.find(step.kind);
    if (failed && started == early.end()) {
      continue;
    }
    if (!step.same_as.empty()) {
      ctx.outputs[step.kind] = ctx.outputs.at(step.same_as);
      continue;
    }
    auto ran = phases.run(step.kind, [&]() -> Expected<void> {
      const StepIO io = phases.io();
      BI_TRY_ASSIGN(StepDone done, started != early.end() ? started->second.get() : run_step(ctx, step, io));
      if (!done.output.empty()) {
        ctx.outputs[step.kind] = done.output;
      }
      if (!done.note.empty()) {
        io.note(done.note);
      }
      return Ok{};
    });
    if (!ran && !failed) {
      failed = ran.error();
    }
  }
  if (failed) {
    return Unexpected{*failed};
  }
  return Ok{};
}

void log_summary(const BuildResult& result, const BuildOptions& options) {
  spdlog::info("built {} in {:.1f} s ({} appliance launch(es), {} layer(s) built here)", result.image.string(),
               result.seconds, result.appliance_launches, result.layers_built);
  if (options.remote != nullptr) {
    spdlog::info("remote cache {}: {} hit(s), {} miss(es) ({} corrupt), {} upload(s){}", options.remote->describe(),
                 result.remote.hits, result.remote.misses, result.remote.corrupt, result.remote.uploads,
                 options.remote->available() ? "" : "; unreachable, local cache only");
  }
}

} // namespace

Expected<BuildResult> build_image(const Plan& plan, const BuildOptions& options) {
  BuildResult result;
  const auto start = Clock::now();
  BI_TRY_ASSIGN(FileLock image_lock, prepare_output(plan, options, result));
  if (!options.no_cache && image_up_to_date(result.image, result.manifest_path, plan)) {
    result.up_to_date = true;
    BI_TRY_ASSIGN(result.manifest, read_manifest(result.manifest_path));
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  }

  // The log keeps its final name whether the build succeeds or not: a failed build's log
  // is the one a user needs.
  struct LogRename {
    fs::path from, to;
    ~LogRename() {
      std::error_code e;
      fs::rename(from, to, e);
    }
  } log_rename{options.output_dir / (".tmp-" + plan.image_name + ".log"), result.log_path};
  ScopedBuildLog log(log_rename.from.string());
  spdlog::info("build-image {}: {} ({} mode) -> {}", k_tool_version, plan.cartridge.file.string(), to_string(plan.mode),
               result.image.string());

  LayerStore store(options.cache_dir);
  store.set_remote(options.remote, !options.no_cache); // --no-cache: rebuild (and re-publish), never download
  if (options.no_cache) {
    for (const auto& [layer, key] : plan.layer_keys()) {
      remove_tree(options.cache_dir / "layers" / (layer + "-" + key));
    }
  }
  auto quiet = make_quiet_progress();
  Phases phases(options.progress ? *options.progress : *quiet, result.phases);
  StepContext ctx{plan, options, store, result, start, GuestfsHandle::launch_count(), {}, {}, {}, {}, {}};
  BI_TRY(walk_steps(ctx, phases));
  log_summary(result, options);
  return result;
}

} // namespace bi
