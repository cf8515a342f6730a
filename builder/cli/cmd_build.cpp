// build FILE...: the default command; --jobs builds several at once, --register after.
#include "cli/commands.hpp"

#include <unistd.h>

#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>

#include "cli/cmd_register.hpp"
#include "net/credentials.hpp"
#include "pipeline/batch.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi::cli {

namespace {

std::string fmt_seconds(double s) { return fmt::format("{:.1f} s", s); }

} // namespace

Expected<int> cmd_build(Options& o) {
  BI_TRY_ASSIGN(std::vector<Plan> plans, plan_all(o));
  if (!o.report.empty() && plans.size() != 1) {
    return Unexpected{
        usage_error("--report FILE.html takes one cartridge; for several, run `build-image report IMAGE` for each")};
  }
  if (::geteuid() != 0) {
    return fail("build-image", "building images needs root (mmdebstrap, chroot, device nodes); run it with sudo",
                ExitCode::host_missing);
  }
  // One remote cache for the whole run: a remote that is down is reported once.
  std::shared_ptr<RemoteCache> remote;
  if (!o.cache_url.empty()) {
    BI_TRY_ASSIGN(remote, RemoteCache::open(o.cache_url, net::process_env()));
  }
  const size_t jobs = std::min<size_t>(o.jobs, plans.size());
  const bool tty = !o.json && ::isatty(STDERR_FILENO);
  BuildOptions bo;
  bo.output_dir = o.output_dir;
  bo.cache_dir = o.cache_dir;
  bo.no_cache = o.no_cache;
  bo.remote = remote.get();
  const std::vector<Expected<BuildResult>> results =
      build_all(plans, bo, jobs, [&](const Plan& plan) -> std::unique_ptr<Progress> {
        return !tty       ? make_quiet_progress()
               : jobs > 1 ? make_line_progress(STDERR_FILENO, plan.image_name + " ")
                          : make_terminal_progress(STDERR_FILENO, plan.image_name + " ");
      });

  nlohmann::json images = nlohmann::json::array();
  int worst = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    const auto& plan = plans[i];
    const auto& r = results[i];
    if (!r) {
      if (!o.json) {
        std::cerr << "build-image: error: " << r.error().to_string() << "\n";
      }
      worst = std::max(worst, static_cast<int>(r.error().code));
      images.push_back({{"name", plan.image_name},
                        {"ok", false},
                        {"error", r.error().to_string()},
                        {"exit_code", static_cast<int>(r.error().code)}});
      continue;
    }
    nlohmann::json phases = nlohmann::json::array();
    for (const auto& p : r->phases) {
      phases.push_back({{"name", p.name}, {"seconds", p.seconds}, {"note", p.note}});
    }
    images.push_back({{"name", plan.image_name},
                      {"ok", true},
                      {"image", r->image.string()},
                      {"manifest", r->manifest_path.string()},
                      {"log", r->up_to_date ? "" : r->log_path.string()},
                      {"sha256", r->manifest.sha256},
                      {"file_size", r->manifest.file_size},
                      {"seconds", r->seconds},
                      {"up_to_date", r->up_to_date},
                      {"appliance_launches", r->appliance_launches},
                      {"layers_built", r->layers_built},
                      {"phases", phases}});
    std::string remote_summary;
    if (remote) {
      images.back()["remote_cache"] = {{"url", remote->describe()},    {"hits", r->remote.hits},
                                       {"misses", r->remote.misses},   {"corrupt", r->remote.corrupt},
                                       {"uploads", r->remote.uploads}, {"available", remote->available()}};
      if (!r->up_to_date) {
        remote_summary = fmt::format(
            "  (remote cache: {} hit{}, {} miss{}, {} upload{}{})", r->remote.hits, r->remote.hits == 1 ? "" : "s",
            r->remote.misses, r->remote.misses == 1 ? "" : "es", r->remote.uploads, r->remote.uploads == 1 ? "" : "s",
            r->remote.corrupt > 0 ? fmt::format(", {} corrupt", r->remote.corrupt) : "");
      }
    }
    if (!o.json) {
      std::cout << fmt::format("{}  {}  {}{}{}\n", r->image.string(), human_bytes(r->manifest.file_size),
                               fmt_seconds(r->seconds), r->up_to_date ? "  (up to date)" : "", remote_summary);
    }
    if (o.do_register) {
      auto regs = register_built_image(r->manifest_path, o.json);
      if (!regs) {
        if (!o.json) {
          std::cerr << "build-image: error: " << regs.error().to_string() << "\n";
        }
        worst = std::max(worst, static_cast<int>(regs.error().code));
        images.back()["ok"] = false;
        images.back()["error"] = regs.error().to_string();
      } else {
        images.back()["registrations"] = *regs;
      }
    }
    // After registering, so that the page lists the registrations.
    if (!o.report.empty()) {
      auto page = write_build_report(r->manifest_path, o.report);
      if (!page) {
        if (!o.json) {
          std::cerr << "build-image: error: " << page.error().to_string() << "\n";
        }
        worst = std::max(worst, static_cast<int>(page.error().code));
      } else {
        images.back()["report"] = page->string();
        if (!o.json) {
          std::cout << "report: " << page->string() << "\n";
        }
      }
    }
  }
  if (o.json) {
    std::cout << nlohmann::json{{"ok", worst == 0}, {"images", images}}.dump(2) << "\n";
  }
  if (interrupted()) {
    return fail("build-image", "interrupted");
  }
  return worst;
}

} // namespace bi::cli
