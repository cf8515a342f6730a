#include "pipeline/build.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <future>
#include <sstream>

#include <spdlog/spdlog.h>

#include "guest/accel.hpp"
#include "guest/guestfs_handle.hpp"
#include "image/catalog.hpp"
#include "image/disk.hpp"
#include "pipeline/layer_store.hpp"
#include "rootfs/rootfs.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/log.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

using Clock = std::chrono::steady_clock;

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
  void note(std::string n) { m_note = std::move(n); }
  LineSink sink() {
    return [this](const std::string& line) {
      spdlog::debug("  | {}", line);
      m_progress.detail(line);
    };
  }

private:
  Progress& m_progress;
  std::vector<PhaseRecord>& m_records;
  std::string m_note;
};

std::string now_utc() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

// Enables a unit the way `systemctl enable` would, from its [Install] WantedBy= lines.
Expected<void> enable_unit(const fs::path& root, const std::string& unit, const std::string& content) {
  std::istringstream in(content);
  std::string line;
  bool install = false;
  std::error_code ec;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '[') {
      install = line.rfind("[Install]", 0) == 0;
      continue;
    }
    if (install && line.rfind("WantedBy=", 0) == 0) {
      std::istringstream targets(line.substr(9));
      std::string target;
      while (targets >> target) {
        const fs::path dir = root / "etc/systemd/system" / (target + ".wants");
        fs::create_directories(dir, ec);
        fs::remove(dir / unit, ec);
        fs::create_symlink("/lib/systemd/system/" + unit, dir / unit, ec);
        if (ec) {
          return fail((dir / unit).string(), "cannot enable unit: " + ec.message());
        }
      }
    }
  }
  return Ok{};
}

void remove_glob_children(const fs::path& dir, bool files_only, bool recursive) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || fs::is_symlink(dir, ec)) {
    return;
  }
  std::vector<fs::path> victims;
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
      if (!it->is_directory() || it->is_symlink()) {
        victims.push_back(it->path());
      }
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (!files_only || !e.is_directory() || e.is_symlink()) {
        victims.push_back(e.path());
      }
    }
  }
  for (const auto& v : victims) {
    fs::remove_all(v, ec);
  }
}

// Unlinks only: the farm shares inodes with the cache.
Expected<void> apply_hygiene(const fs::path& root) {
  std::error_code ec;
  BI_TRY(replace_file(root / "etc/machine-id", ""));
  fs::remove(root / "var/lib/dbus/machine-id", ec);
  for (const auto& e : fs::directory_iterator(root / "etc/ssh", ec)) {
    if (e.path().filename().string().rfind("ssh_host_", 0) == 0) {
      fs::remove(e.path(), ec);
    }
  }
  ec.clear();
  for (const auto& p : hygiene_paths()) {
    fs::remove_all(root / p.substr(1), ec);
  }
  remove_glob_children(root / "var/lib/apt/lists", true, false);
  remove_glob_children(root / "var/cache/apt", true, false);
  remove_glob_children(root / "var/cache/apt/archives", true, false);
  remove_glob_children(root / "var/log", true, true);
  remove_glob_children(root / "tmp", false, false);
  remove_glob_children(root / "var/tmp", false, false);
  remove_glob_children(root / "boot", false, false);
  fs::create_directories(root / "var/lib/apt/lists/partial", ec);
  fs::create_directories(root / "var/cache/apt/archives/partial", ec);
  ::chmod((root / "tmp").c_str(), 01777);
  return Ok{};
}

Expected<void> apply_overlay(const Plan& plan, const fs::path& root) {
  for (const auto& o : plan.overlay) {
    const fs::path dest = root / fs::path(o.dest).relative_path();
    if (!o.source.empty()) {
      BI_TRY_ASSIGN(std::string content, read_file(o.source));
      if (sha256_hex(content) != o.sha256) {
        return fail(o.source.string(), "changed while building (hash differs from the plan)");
      }
      BI_TRY(replace_file(dest, content, o.mode));
    } else {
      BI_TRY(replace_file(dest, o.content, o.mode));
    }
    ::chmod(dest.c_str(), o.mode); // umask must not weaken or strengthen the planned mode
  }
  for (const auto& unit : plan.enable_units) {
    for (const auto& o : plan.overlay) {
      if (fs::path(o.dest).filename() == unit) {
        BI_TRY(enable_unit(root, unit, o.content));
      }
    }
  }
  return Ok{};
}

bool image_up_to_date(const fs::path& image, const fs::path& manifest_path, const Plan& plan) {
  std::error_code ec;
  if (!fs::is_regular_file(image, ec) || !fs::is_regular_file(manifest_path, ec)) {
    return false;
  }
  auto text = read_file(manifest_path);
  if (!text) {
    return false;
  }
  try {
    auto m = nlohmann::json::parse(*text);
    if (m.at("inputs_key") != plan.inputs_key) {
      return false;
    }
    auto digest = sha256_file(image);
    return digest && *digest == m.at("sha256").get<std::string>();
  } catch (const std::exception&) {
    return false;
  }
}

} // namespace

const std::vector<std::string>& hygiene_paths() {
  static const std::vector<std::string> paths = {
      "/etc/resolv.conf",        "/root/.bash_history",          "/var/lib/puppet/ssl",
      "/etc/puppet/ssl",         "/var/cache/puppet/ssl",        "/var/lib/cartridge/launch-params",
      "/var/lib/cartridge/initialized", "/var/lib/cartridge/instance-id", "/tmp/payload",
      "/var/cache/debconf/config.dat-old", "/var/cache/debconf/templates.dat-old",
      "/var/lib/dpkg/status-old", "/var/lib/dpkg/diversions-old", "/usr/sbin/policy-rc.d",
      "/var/lib/systemd/random-seed", "/var/lib/cartridge/root-grown", "/root/.ssh/authorized_keys"};
  return paths;
}

Expected<BuildResult> build_image(const Plan& plan, const BuildOptions& options) {
  BuildResult result;
  const auto start = Clock::now();
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) {
    return fail(options.output_dir.string(), "cannot create the output folder: " + ec.message(),
                ExitCode::host_missing);
  }
  const std::string ext = to_string(plan.format);
  result.image = options.output_dir / (plan.image_name + "." + ext);
  result.manifest_path = options.output_dir / (plan.image_name + ".json");
  result.log_path = options.output_dir / (plan.image_name + ".log");
  auto quiet = make_quiet_progress();
  Progress& progress = options.progress ? *options.progress : *quiet;
  Phases phases(progress, result.phases);

  // One build of an image name at a time per output folder: a second process building the
  // same cartridge waits here, then finds the image up to date.
  BI_TRY_ASSIGN(FileLock image_lock, FileLock::acquire(options.output_dir / (".lock-" + plan.image_name)));
  // Temp files of an earlier build of this image that was killed (SIGKILL leaves them).
  for (const auto& e : fs::directory_iterator(options.output_dir, ec)) {
    if (e.path().filename().string().rfind(".tmp-" + plan.image_name + ".", 0) == 0) {
      fs::remove(e.path(), ec);
    }
  }
  if (!options.no_cache && image_up_to_date(result.image, result.manifest_path, plan)) {
    result.up_to_date = true;
    BI_TRY_ASSIGN(std::string text, read_file(result.manifest_path));
    result.manifest = nlohmann::json::parse(text);
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  }

  const fs::path log_tmp = options.output_dir / (".tmp-" + plan.image_name + ".log");
  // The log keeps its final name whether the build succeeds or not: a failed build's log
  // is the one a user needs.
  struct LogRename {
    fs::path from, to;
    ~LogRename() {
      std::error_code e;
      fs::rename(from, to, e);
    }
  } log_rename{log_tmp, result.log_path};
  ScopedBuildLog log(log_tmp.string());
  spdlog::info("build-image {}: {} ({} mode) -> {}", k_tool_version, plan.cartridge.file.string(),
               to_string(plan.mode), result.image.string());

  LayerStore store(options.cache_dir);
  store.set_remote(options.remote, !options.no_cache); // --no-cache: rebuild (and re-publish), never download
  if (options.no_cache) {
    for (const auto& [kind, key] : {std::pair<std::string, std::string>{"base", plan.base.key},
                                    {"bootloader", plan.bootloader_key},
                                    {"system", plan.system.key}}) {
      remove_tree(options.cache_dir / "layers" / (kind + "-" + key));
    }
  }

  // The bootloader layer needs the one appliance launch; it does not depend on the base
  // OS, so on a cold cache it runs while mmdebstrap works.
  const int launches_before = GuestfsHandle::launch_count();
  auto bootloader = std::async(std::launch::async, [&, build_log = current_build_log()]() -> Expected<LayerStore::Result> {
    set_current_build_log(build_log);
    return store.get_or_build("bootloader", plan.bootloader_key, [&](const fs::path& content) -> Expected<void> {
      const Accelerator accel = detect_accelerator(options.cache_dir);
      spdlog::info("bootloader: libguestfs appliance with {} ({})", accel.kvm ? "KVM" : "TCG", accel.reason);
      return build_bootloader_disk(content / "disk.raw", !accel.kvm);
    });
  });

  fs::path base_tree;
  auto layer_note = [](const LayerStore::Result& r, const std::string& key) {
    const char* how = r.source == LayerStore::Source::local    ? "cached "
                      : r.source == LayerStore::Source::remote ? "remote "
                                                               : "built ";
    return how + key.substr(0, 12);
  };
  auto base_phase = phases.run("base-os", [&]() -> Expected<void> {
    auto r = store.get_or_build("base", plan.base.key, [&](const fs::path& content) -> Expected<void> {
      BI_TRY_ASSIGN(TempDir scratch, TempDir::create(store.tmp_dir(), "base-scratch-"));
      if (!plan.base.image.empty()) {
        const Accelerator accel = detect_accelerator(options.cache_dir);
        return build_base_from_image(plan.base, content, scratch.path(), !accel.kvm, phases.sink());
      }
      return build_base_rootfs(plan.base, content, scratch.path(), phases.sink());
    });
    if (!r) {
      return Unexpected{r.error()};
    }
    base_tree = r->content;
    phases.note(layer_note(*r, plan.base.key));
    return Ok{};
  });
  fs::path bootloader_disk;
  auto boot_phase = phases.run("bootloader", [&]() -> Expected<void> {
    auto r = bootloader.get();
    if (!r) {
      return Unexpected{r.error()};
    }
    bootloader_disk = r->content / "disk.raw";
    phases.note(r->source == LayerStore::Source::local    ? "cached"
                : r->source == LayerStore::Source::remote ? "remote"
                                                          : "built (libguestfs)");
    return Ok{};
  });
  if (!base_phase) {
    return Unexpected{base_phase.error()};
  }
  if (!boot_phase) {
    return Unexpected{boot_phase.error()};
  }

  fs::path system_tree = base_tree;
  if (plan.system.needed) {
    BI_TRY(phases.run("system", [&]() -> Expected<void> {
      auto r = store.get_or_build("system", plan.system.key, [&](const fs::path& content) {
        return build_system_rootfs(plan.system, base_tree, content, phases.sink());
      });
      if (!r) {
        return Unexpected{r.error()};
      }
      system_tree = r->content;
      phases.note(layer_note(*r, plan.system.key));
      return Ok{};
    }));
  }

  BI_TRY_ASSIGN(TempDir work, TempDir::create(store.tmp_dir(), "assemble-" + plan.image_name + "-"));
  const fs::path farm = work.path() / "root";
  const fs::path raw = work.path() / "disk.raw";
  std::map<std::string, std::string> packages;
  auto assembled = phases.run("assemble", [&]() -> Expected<void> {
    fs::create_directories(farm, ec);
    // A hard-link farm costs a second instead of copying ~500 MB; everything below only
    // unlinks and recreates files, so the cached layer is never modified.
    auto linked = run_process({"cp", "-al", system_tree.string() + "/.", farm.string()});
    if (!linked || !linked->ok()) {
      remove_tree(farm);
      fs::create_directories(farm, ec);
      BI_TRY(run_checked({"cp", "-a", system_tree.string() + "/.", farm.string()}));
    }
    BI_TRY(apply_overlay(plan, farm));
    BI_TRY(apply_hygiene(farm));
    // New files and every directory of the farm are fresh inodes: clamping them is safe.
    BI_TRY(clamp_mtimes(farm, source_date_epoch()));
    BI_TRY_ASSIGN(packages, installed_packages(farm));
    AssembleInput in;
    in.root_tree = farm;
    in.boot_tree = system_tree / "boot";
    in.bootloader_disk = bootloader_disk;
    in.mbr_code = "/usr/lib/EXTLINUX/mbr.bin";
    in.disk_bytes = plan.disk_bytes;
    in.uuid_seed = plan.inputs_key;
    BI_TRY(assemble_disk(in, raw));
    phases.note(std::to_string(packages.size()) + " packages");
    return Ok{};
  });
  if (!assembled) {
    work.keep();
    spdlog::error("work files kept in {}", work.path().string());
    return Unexpected{assembled.error()};
  }
  remove_tree(farm);

  const fs::path image_tmp = options.output_dir / (".tmp-" + plan.image_name + "." + ext);
  BI_TRY(phases.run("convert", [&]() -> Expected<void> {
    fs::remove(image_tmp, ec);
    if (plan.format == OutputFormat::raw) {
      fs::rename(raw, image_tmp, ec);
      if (!ec) {
        return Ok{};
      }
    }
    auto converted = convert_disk(raw, ext, image_tmp);
    if (!converted) {
      fs::remove(image_tmp, ec);
    }
    return converted;
  }));

  BI_TRY(phases.run("finalize", [&]() -> Expected<void> {
    auto digests = hash_file(image_tmp);
    if (!digests) {
      fs::remove(image_tmp, ec);
      return Unexpected{digests.error()};
    }
    BI_TRY_ASSIGN(ImageSizes sizes, image_sizes(image_tmp));
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    result.appliance_launches = GuestfsHandle::launch_count() - launches_before;
    result.layers_built = store.layers_built();
    result.remote = store.remote_stats();
    nlohmann::json package_list = nlohmann::json::array();
    for (const auto& [name, version] : packages) {
      package_list.push_back({{"name", name}, {"version", version}});
    }
    nlohmann::json phase_list = nlohmann::json::array();
    for (const auto& p : result.phases) {
      phase_list.push_back({{"name", p.name}, {"seconds", p.seconds}, {"note", p.note}});
    }
    result.manifest = {
        {"name", plan.image_name},
        {"file", result.image.filename().string()},
        {"format", ext},
        {"cartridge", plan.cartridge.type},
        {"mode", to_string(plan.mode)},
        {"tool_version", k_tool_version},
        {"inputs_key", plan.inputs_key},
        {"sha256", digests->sha256},
        {"sha512", digests->sha512},
        {"virtual_size", sizes.virtual_bytes},
        {"file_size", sizes.file_bytes},
        {"layers",
         {{"base", plan.base.key}, {"bootloader", plan.bootloader_key}, {"system", plan.system.key}}},
        {"packages", package_list},
        {"build_seconds", result.seconds},
        {"phases", phase_list},
        {"appliance_launches", result.appliance_launches},
        {"created", now_utc()},
        {"plan", plan.to_json()},
    };
    BI_TRY(write_file_atomic(result.manifest_path, result.manifest.dump(2) + "\n"));
    fs::rename(image_tmp, result.image, ec);
    if (ec) {
      return fail(result.image.string(), "cannot move the image into place: " + ec.message());
    }
    nlohmann::json entry = {{"name", plan.image_name},
                            {"file", result.image.filename().string()},
                            {"manifest", result.manifest_path.filename().string()},
                            {"cartridge", plan.cartridge.type},
                            {"mode", to_string(plan.mode)},
                            {"format", ext},
                            {"sha256", digests->sha256},
                            {"file_size", sizes.file_bytes},
                            {"created", result.manifest["created"]}};
    BI_TRY(catalog_upsert(options.output_dir, entry));
    phases.note(human_bytes(sizes.file_bytes));
    return Ok{};
  }));
  spdlog::info("built {} in {:.1f} s ({} appliance launch(es), {} layer(s) built here)", result.image.string(),
               result.seconds, result.appliance_launches, result.layers_built);
  if (options.remote != nullptr) {
    spdlog::info("remote cache {}: {} hit(s), {} miss(es) ({} corrupt), {} upload(s){}", options.remote->describe(),
                 result.remote.hits, result.remote.misses, result.remote.corrupt, result.remote.uploads,
                 options.remote->available() ? "" : "; unreachable, local cache only");
  }
  return result;
}

} // namespace bi
