#include "cli/cli.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <functional>
#include <iostream>
#include <numeric>
#include <tuple>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "cartridge/loader.hpp"
#include "cli/cmd_boot_test.hpp"
#include "cli/cmd_register.hpp"
#include "cloud/credentials.hpp"
#include "cloud/object_store.hpp"
#include "image/catalog.hpp"
#include "pipeline/build.hpp"
#include "pipeline/layer_store.hpp"
#include "plan/plan.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

struct Options {
  bool verbose = false;
  bool json = false;
  bool help = false;
  bool no_cache = false;
  unsigned jobs = 1;
  std::string since;
  std::optional<Mode> mode;
  OutputFormat format = OutputFormat::qcow2;
  fs::path output_dir = "images";
  fs::path cache_dir;
  std::string cache_url;   // shared remote layer cache (s3:// or http(s)://)
  std::string to, region;  // register
  bool do_register = false; // build --register
  std::optional<std::string> payload, timeout, broker; // boot-test; checked there
  std::vector<std::string> forwards;                    // boot-test --forward (repeatable)
  std::optional<std::string> app_repo, expect_content, until; // boot-test (Stratos servers)
  bool no_stratos = false;                                    // boot-test --no-stratos
  std::vector<std::string> args;
};

struct Command {
  const char* name;
  const char* synopsis;
  const char* summary;
  std::function<Expected<int>(Options&)> run;
};

struct OptionSpec {
  const char* name;
  bool takes_value;
  const char* help;
};

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"--mode", true, "generic | full (overrides the YAML's mode)"},
      {"--output", true, "output folder for images, manifests and catalog.json (default: images)"},
      {"--format", true, "qcow2 (zstd-compressed, default) | raw | vmdk"},
      {"--cache-dir", true, "layer cache (default: $BUILD_IMAGE_CACHE or ~/.cache/build-image)"},
      {"--cache-url", true,
       "shared remote layer cache: s3://BUCKET/PREFIX or http(s)://HOST[:PORT]/PREFIX "
       "(default: $BUILD_IMAGE_CACHE_URL)"},
      {"--no-cache", false, "rebuild every layer of this build"},
      {"--since", true, "plan: only images affected by changes since this git revision (CI job matrix)"},
      {"--jobs", true, "build up to N images at once; shared layers are still built once (default 1)"},
      {"--payload", true, "boot-test: the instance payload file (default: generated for the image)"},
      {"--timeout", true, "boot-test: seconds to wait for InstanceActivatedEvent (default 600)"},
      {"--broker", true, "boot-test: use this MQTT broker HOST:PORT instead of a private mosquitto"},
      {"--forward", true, "boot-test: GUEST_IP:PORT=HOST_PORT, guest address to a loopback port (repeatable)"},
      {"--app-repo", true, "boot-test: a local git repository sent to the agent in an ArtifactUpdatedEvent"},
      {"--expect-content", true, "boot-test: fail unless the guest's web root (GET /) contains this text"},
      {"--no-stratos", false, "boot-test: do not play the Stratos servers, only watch the broker"},
      {"--until", true,
       "boot-test: activated | shutdown (after the cleanup handshake; default when playing the servers)"},
      {"--to", true, "register: openstack | ec2 (default: every iaas target of the cartridge)"},
      {"--region", true, "register: the cloud region (default: the cartridge's iaas entry)"},
      {"--register", false, "after building, register with every iaas target of the cartridge"},
      {"--json", false, "print one machine-readable JSON result on stdout"},
      {"--verbose", false, "debug logs on stderr (also -v)"},
      {"--help", false, "show help (also -h)"},
  };
  return specs;
}

Error usage_error(const std::string& detail) { return make_error("", detail, ExitCode::bad_input); }

Expected<Options> parse_options(const std::vector<std::string>& argv) {
  Options o;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "-v") {
      o.verbose = true;
      continue;
    }
    if (a == "-h") {
      o.help = true;
      continue;
    }
    if (a == "--") {
      o.args.insert(o.args.end(), argv.begin() + static_cast<long>(i) + 1, argv.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      o.args.push_back(a);
      continue;
    }
    std::string name = a;
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    const OptionSpec* spec = nullptr;
    std::vector<std::string> names;
    for (const auto& s : option_specs()) {
      names.emplace_back(s.name);
      if (name == s.name) {
        spec = &s;
      }
    }
    if (spec == nullptr) {
      const auto hint = did_you_mean(name, names);
      return Unexpected{usage_error(hint.empty() ? fmt::format("unknown option '{}'", name)
                                                 : fmt::format("unknown option '{}' (did you mean '{}'?)", name, hint))};
    }
    if (spec->takes_value && !value) {
      if (i + 1 >= argv.size()) {
        return Unexpected{usage_error(fmt::format("option '{}' needs a value", name))};
      }
      value = argv[++i];
    }
    if (!spec->takes_value && value) {
      return Unexpected{usage_error(fmt::format("option '{}' takes no value", name))};
    }
    if (name == "--mode") {
      if (*value == "generic") {
        o.mode = Mode::generic;
      } else if (*value == "full") {
        o.mode = Mode::full;
      } else {
        return Unexpected{usage_error(fmt::format("invalid --mode '{}': expected generic or full", *value))};
      }
    } else if (name == "--output") {
      o.output_dir = *value;
    } else if (name == "--format") {
      auto f = parse_output_format(*value);
      if (!f) {
        return Unexpected{usage_error(fmt::format("invalid --format '{}': expected qcow2, raw or vmdk", *value))};
      }
      o.format = *f;
    } else if (name == "--cache-dir") {
      o.cache_dir = *value;
    } else if (name == "--cache-url") {
      o.cache_url = *value;
    } else if (name == "--since") {
      o.since = *value;
    } else if (name == "--jobs") {
      const std::string& v = *value;
      if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos || std::stoi(v) < 1) {
        return Unexpected{usage_error(fmt::format("invalid --jobs '{}': expected a number from 1 to 999", v))};
      }
      o.jobs = static_cast<unsigned>(std::stoi(v));
    } else if (name == "--payload") {
      o.payload = *value;
    } else if (name == "--timeout") {
      o.timeout = *value;
    } else if (name == "--broker") {
      o.broker = *value;
    } else if (name == "--forward") {
      o.forwards.push_back(*value);
    } else if (name == "--app-repo") {
      o.app_repo = *value;
    } else if (name == "--expect-content") {
      o.expect_content = *value;
    } else if (name == "--until") {
      o.until = *value;
    } else if (name == "--no-stratos") {
      o.no_stratos = true;
    } else if (name == "--no-cache") {
      o.no_cache = true;
    } else if (name == "--to") {
      o.to = *value;
    } else if (name == "--region") {
      o.region = *value;
    } else if (name == "--register") {
      o.do_register = true;
    } else if (name == "--json") {
      o.json = true;
    } else if (name == "--verbose") {
      o.verbose = true;
    } else if (name == "--help") {
      o.help = true;
    }
  }
  if (o.cache_dir.empty()) {
    o.cache_dir = default_cache_dir();
  }
  if (o.cache_url.empty()) {
    if (const char* u = std::getenv("BUILD_IMAGE_CACHE_URL"); u != nullptr) {
      o.cache_url = u;
    }
  }
  if (!o.cache_url.empty()) {
    if (auto url = cloud::parse_cache_url(o.cache_url); !url) {
      return Unexpected{url.error()};
    }
  }
  return o;
}

// Loads every file; prints all diagnostics. Fails with exit 2 if any file has errors.
Expected<std::vector<Cartridge>> load_all(const Options& o) {
  if (o.args.empty()) {
    return Unexpected{usage_error("no cartridge file given (try: build-image templates/php.yaml)")};
  }
  const Resources res = Resources::discover();
  LoadOptions lo;
  std::error_code ec;
  if (fs::is_directory(res.puppet_dir / "modules", ec)) {
    lo.puppet_modules = res.puppet_dir / "modules";
  }
  std::vector<Cartridge> out;
  size_t errors = 0;
  std::string first_bad;
  for (const auto& file : o.args) {
    auto r = load_cartridge(file, lo);
    if (!r.diagnostics.empty()) {
      std::cerr << format_diagnostics(file, r.diagnostics);
      errors += r.diagnostics.size();
      if (first_bad.empty()) {
        first_bad = file;
      }
      continue;
    }
    out.push_back(*r.cartridge);
  }
  if (errors > 0) {
    return fail(first_bad, fmt::format("{} error{} in the cartridge definition{}", errors, errors == 1 ? "" : "s",
                                       o.args.size() > 1 ? "s" : ""),
                ExitCode::bad_input);
  }
  return out;
}

Expected<std::vector<Plan>> plan_all(const Options& o) {
  BI_TRY_ASSIGN(std::vector<Cartridge> cartridges, load_all(o));
  Resources res = Resources::discover();
  res.index_cache_dir = o.cache_dir / "mirror-index";
  std::vector<Plan> plans;
  for (const auto& c : cartridges) {
    BI_TRY_ASSIGN(Plan p, make_plan(c, o.mode.value_or(c.mode), o.format, res));
    plans.push_back(std::move(p));
  }
  return plans;
}

std::string fmt_seconds(double s) { return fmt::format("{:.1f} s", s); }

Expected<int> cmd_build(Options& o) {
  BI_TRY_ASSIGN(std::vector<Plan> plans, plan_all(o));
  if (::geteuid() != 0) {
    return fail("build-image", "building images needs root (mmdebstrap, chroot, device nodes); run it with sudo",
                ExitCode::host_missing);
  }
  // One remote cache for the whole run: a remote that is down is reported once.
  std::shared_ptr<RemoteCache> remote;
  if (!o.cache_url.empty()) {
    BI_TRY_ASSIGN(remote, RemoteCache::open(o.cache_url, cloud::process_env()));
  }
  const size_t jobs = std::min<size_t>(o.jobs, plans.size());
  const bool tty = !o.json && ::isatty(STDERR_FILENO);
  std::vector<std::optional<Expected<BuildResult>>> results(plans.size());
  std::atomic<size_t> next{0};
  // Longest first, so the longest build does not start last and run alone at the end: an
  // image whose system layer must be built before one whose layers are all cached, then
  // more Puppet classes, then more packages (results stay in the order given).
  std::vector<size_t> order(plans.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (jobs > 1) {
    auto cost = [&](const Plan& p) {
      std::error_code ec;
      const bool cached = !p.system.needed || fs::exists(o.cache_dir / "layers" / ("system-" + p.system.key), ec);
      return std::make_tuple(cached ? 0 : 1, p.system.puppet_classes.size(), p.system.packages.size());
    };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost(plans[a]) > cost(plans[b]); });
  }
  // Builds run in worker threads; layers they share are built once (the cache's per-layer
  // lock makes the others wait and then hit).
  auto worker = [&] {
    for (size_t n; (n = next++) < plans.size();) {
      const size_t i = order[n];
      const auto& plan = plans[i];
      std::unique_ptr<Progress> progress =
          !tty ? make_quiet_progress()
               : jobs > 1 ? make_line_progress(STDERR_FILENO, plan.image_name + " ")
                          : make_terminal_progress(STDERR_FILENO, plan.image_name + " ");
      BuildOptions bo;
      bo.output_dir = o.output_dir;
      bo.cache_dir = o.cache_dir;
      bo.no_cache = o.no_cache;
      bo.progress = progress.get();
      bo.remote = remote.get();
      results[i] = build_image(plan, bo);
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

  nlohmann::json images = nlohmann::json::array();
  int worst = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    const auto& plan = plans[i];
    const auto& r = *results[i];
    if (!r) {
      if (!o.json) {
        std::cerr << "build-image: error: " << r.error().to_string() << "\n";
      }
      worst = std::max(worst, static_cast<int>(r.error().code));
      images.push_back({{"name", plan.image_name}, {"ok", false}, {"error", r.error().to_string()},
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
                      {"sha256", r->manifest.value("sha256", "")},
                      {"file_size", r->manifest.value("file_size", 0ull)},
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
      std::cout << fmt::format("{}  {}  {}{}{}\n", r->image.string(), human_bytes(r->manifest.value("file_size", 0ull)),
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
  }
  if (o.json) {
    std::cout << nlohmann::json{{"ok", worst == 0}, {"images", images}}.dump(2) << "\n";
  }
  if (interrupted()) {
    return fail("build-image", "interrupted");
  }
  return worst;
}

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

// Why a change to `path` (relative to the repository) affects the image of `plan`, or "".
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
  const auto rel = [&](const fs::path& p) { return fs::weakly_canonical(p, ec).lexically_relative(repo).generic_string(); };
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
    const bool base_cached = fs::exists(o.cache_dir / "layers" / ("base-" + p.base.key));
    const bool system_cached = !p.system.needed || fs::exists(o.cache_dir / "layers" / ("system-" + p.system.key));
    j["cached"] = {{"base", base_cached}, {"system", system_cached}};
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
      std::cout << fmt::format("{}{}\n  base    {}  {}\n  system  {}  {}\n  image   {}\n", p.image_name,
                               o.since.empty() ? "" : (affected ? "  (affected)" : "  (unchanged)"),
                               p.base.key.substr(0, 12), base_cached ? "cached" : "to build",
                               p.system.key.substr(0, 12),
                               !p.system.needed ? "same as base" : (system_cached ? "cached" : "to build"),
                               p.inputs_key.substr(0, 12));
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

Expected<int> cmd_list(Options& o) {
  BI_TRY_ASSIGN(nlohmann::json catalog, catalog_read(o.output_dir));
  if (o.json) {
    std::cout << catalog.dump(2) << "\n";
    return 0;
  }
  if (catalog["images"].empty()) {
    std::cout << "no images in " << (o.output_dir / "catalog.json").string() << "\n";
  }
  for (const auto& e : catalog["images"]) {
    std::cout << fmt::format("{:<40} {:<8} {:<6} {:>10}  {}\n", e.value("name", ""), e.value("mode", ""),
                             e.value("format", ""), human_bytes(e.value("file_size", 0ull)), e.value("created", ""));
  }
  return 0;
}

Expected<int> cmd_inspect(Options& o) {
  if (o.args.size() != 1) {
    return Unexpected{usage_error("inspect takes one image (a path or a name from the catalog)")};
  }
  BI_TRY_ASSIGN(fs::path manifest, find_manifest(o.output_dir, o.args[0]));
  BI_TRY_ASSIGN(std::string text, read_file(manifest));
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return fail(manifest.string(), std::string("invalid manifest: ") + e.what());
  }
  if (o.json) {
    std::cout << m.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("name          {}\ncartridge     {} ({} mode)\nfile          {} ({}, {})\n"
                           "virtual size  {}\nsha256        {}\ninputs key    {}\nbuilt         {} in {:.1f} s with {}\n"
                           "layers        base {} / system {}\npackages      {}\n",
                           m.value("name", ""), m.value("cartridge", ""), m.value("mode", ""), m.value("file", ""),
                           m.value("format", ""), human_bytes(m.value("file_size", 0ull)),
                           human_bytes(m.value("virtual_size", 0ull)), m.value("sha256", ""),
                           m.value("inputs_key", ""), m.value("created", ""), m.value("build_seconds", 0.0),
                           m.value("tool_version", ""), m["layers"].value("base", "").substr(0, 12),
                           m["layers"].value("system", "").substr(0, 12), m["packages"].size());
  return 0;
}

Expected<int> cmd_cache(Options& o) {
  const std::string action = o.args.empty() ? "ls" : o.args[0];
  LayerStore store(o.cache_dir);
  if (action == "ls") {
    auto layers = store.list();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& l : layers) {
      out.push_back({{"kind", l.kind}, {"key", l.key}, {"bytes", l.bytes}, {"created", l.created}});
      if (!o.json) {
        std::cout << fmt::format("{:<10} {}  {:>10}  {}\n", l.kind, l.key.substr(0, 12), human_bytes(l.bytes), l.created);
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
      std::cout << fmt::format("{:<10} {}  {}\n", r.layer.kind, r.layer.key.substr(0, 12), r.ok ? "ok" : "CORRUPT: " + r.problem);
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
        keep.insert(keep.end(), {p.base.key, p.bootloader_key, p.system.key});
      }
    }
    const auto freed = store.gc(keep);
    std::cout << "freed " << human_bytes(freed) << "\n";
    return 0;
  }
  const auto hint = did_you_mean(action, {"ls", "gc", "verify"});
  return Unexpected{usage_error(hint.empty() ? fmt::format("unknown cache action '{}' (expected ls, gc or verify)", action)
                                             : fmt::format("unknown cache action '{}' (did you mean '{}'?)", action, hint))};
}

const std::vector<Command>& commands();

void print_help(std::ostream& out) {
  out << "usage: build-image [COMMAND] [OPTIONS] FILE...\n\n"
         "Builds VM cartridge images (generic or fully configured) from cartridge YAML files.\n"
         "With no command, FILE... are built.\n\ncommands:\n";
  for (const auto& c : commands()) {
    out << fmt::format("  {:<44} {}\n", c.synopsis, c.summary);
  }
  out << "\noptions:\n";
  for (const auto& s : option_specs()) {
    out << fmt::format("  {:<44} {}\n", std::string(s.name) + (s.takes_value ? " VALUE" : ""), s.help);
  }
  out << "\nexit codes: 0 ok, 1 build failed, 2 bad input or usage, 3 host is missing something\n";
}

Expected<int> cmd_help(Options&) {
  print_help(std::cout);
  return 0;
}

Expected<int> cmd_version(Options&) {
  std::cout << "build-image " << k_tool_version << "\n";
  return 0;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"build", "build FILE... [--mode M] [--format F]", "build images (the default command)", cmd_build},
      {"validate", "validate FILE...", "check cartridge files; report every error", cmd_validate},
      {"plan", "plan FILE... [--since REV] [--json]", "show layers, cache keys and what would be built", cmd_plan},
      {"list", "list [--json]", "show the image catalog", cmd_list},
      {"inspect", "inspect IMAGE [--json]", "print an image's manifest", cmd_inspect},
      {"cache", "cache ls|verify|gc [FILE...]", "manage the layer cache", cmd_cache},
      {"boot-test", "boot-test IMAGE [--payload F] [--timeout S] [--forward IP:PORT=HPORT]", "boot under libvirt, wait for InstanceActivatedEvent",
       [](Options& o) { return cmd_boot_test({o.args, o.json, o.payload, o.timeout, o.broker, o.forwards, o.output_dir, o.cache_dir,
                                              o.app_repo, o.expect_content, o.until, o.no_stratos}); }},
      {"register", "register IMAGE... [--to CLOUD] [--region R]", "upload to Glance / EBS and register (openstack, ec2)",
       [](Options& o) { return cmd_register({o.args, o.output_dir, o.to, o.region, o.json}); }},
      {"cartridge-json", "cartridge-json IMAGE", "print the Stratos cartridge definition with the image IDs",
       [](Options& o) { return cmd_cartridge_json({o.args, o.output_dir, o.to, o.region, o.json}); }},
      {"help", "help", "show this help", cmd_help},
      {"version", "version", "print the version", cmd_version},
  };
  return table;
}

int report(const Error& e) {
  std::cerr << "build-image: error: " << e.to_string() << "\n";
  return static_cast<int>(e.code);
}

// First signal: stop children and unwind (temp files removed). Second: leave now.
void on_signal(int) {
  if (interrupted()) {
    ::_exit(130);
  }
  interrupt_active_processes();
}

} // namespace

// Hidden: PID 1 of the chroot's PID namespace during `puppet apply`. Puppet's systemd
// provider only works when /proc/1/comm says "systemd"; without it Puppet silently
// falls back to update-rc.d and services end up not enabled (full-image-fastpath.md).
int pid1_shim(int argc, char** argv) {
  ::prctl(PR_SET_NAME, "systemd", 0, 0, 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::execvp(argv[0], argv);
    std::perror(argv[0]);
    ::_exit(127);
  }
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(-1, &status, 0);
    if (r == child) {
      break;
    }
    if (r < 0 && errno != EINTR) {
      return 1;
    }
  }
  (void)argc;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int build_image_main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "__pid1") {
    return pid1_shim(argc - 2, argv + 2);
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  const Command* command = nullptr;
  if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
    for (const auto& c : commands()) {
      if (args[0] == c.name) {
        command = &c;
      }
    }
    if (command != nullptr) {
      args.erase(args.begin());
    } else if (args[0].find('.') == std::string::npos && args[0].find('/') == std::string::npos) {
      // Not a file name and not a command: most likely a typo.
      std::vector<std::string> names;
      for (const auto& c : commands()) {
        names.emplace_back(c.name);
      }
      const auto hint = did_you_mean(args[0], names);
      return report(usage_error(hint.empty() ? fmt::format("unknown command '{}' (see build-image help)", args[0])
                                             : fmt::format("unknown command '{}' (did you mean '{}'?)", args[0], hint)));
    }
  }
  if (command == nullptr) {
    command = &commands().front();
  }
  auto options = parse_options(args);
  if (!options) {
    return report(options.error());
  }
  if (options->help || (command == &commands().front() && options->args.empty() && args.empty())) {
    print_help(std::cout);
    return 0;
  }
  setup_logging(options->verbose);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  try {
    auto rc = command->run(*options);
    if (!rc) {
      if (interrupted()) {
        std::cerr << "build-image: interrupted; temporary files removed\n";
        return 130;
      }
      return report(rc.error());
    }
    return *rc;
  } catch (const std::exception& e) {
    return report(make_error("internal error", e.what()));
  }
}

} // namespace bi
