// assemble: the image's root filesystem as a hard-link farm of its root layer + the overlay
// (init scripts, configs, the cartridge's files) + hygiene, then the raw disk: MBR or GPT, the
// cached boot partition, the kernel, the ESP (uefi, hybrid: mkfs.fat + mtools) and the root
// ext4 made with `mke2fs -d` (no appliance).
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include <spdlog/fmt/fmt.h>

#include "image/disk.hpp"
#include "pipeline/steps/step.hpp"
#include "util/hash.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

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

// The first field of each line and the third (uid/gid) of passwd/group style files.
std::set<unsigned long> used_ids(const std::string& text) {
  std::set<unsigned long> ids;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name, x, id;
    if (std::getline(fields, name, ':') && std::getline(fields, x, ':') && std::getline(fields, id, ':') &&
        !id.empty() && id.size() < 10 && id.find_first_not_of("0123456789") == std::string::npos) {
      ids.insert(std::stoul(id));
    }
  }
  return ids;
}

bool has_entry(const std::string& text, const std::string& name) {
  return text.rfind(name + ":", 0) == 0 || text.find("\n" + name + ":") != std::string::npos;
}

// Appends a line keeping the file's mode, owner and group (shadow is root:shadow 0640).
Expected<void> append_account_line(const fs::path& file, const std::string& line) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    return fail(file.string(), "missing from the root filesystem: cannot add the login user");
  }
  BI_TRY_ASSIGN(std::string text, read_file(file));
  if (!text.empty() && text.back() != '\n') {
    text += '\n';
  }
  BI_TRY(replace_file(file, text + line + "\n", st.st_mode & 07777));
  if (::lchown(file.c_str(), st.st_uid, st.st_gid) != 0) {
    return fail(file.string(), "cannot restore its owner");
  }
  return Ok{};
}

} // namespace

Expected<void> add_login_user(const fs::path& root, const std::string& user) {
  const fs::path etc = root / "etc";
  BI_TRY_ASSIGN(std::string passwd, read_file(etc / "passwd"));
  BI_TRY_ASSIGN(std::string group, read_file(etc / "group"));
  if (has_entry(passwd, user) || has_entry(group, user)) {
    return fail(user, "login.user already exists in the image (a package or base.image made it): pick another name",
                ExitCode::bad_input);
  }
  const auto uids = used_ids(passwd);
  const auto gids = used_ids(group);
  unsigned long id = 1000;
  while (uids.count(id) || gids.count(id)) {
    ++id;
  }
  const std::string home = "/home/" + user;
  BI_TRY(append_account_line(etc / "passwd", fmt::format("{}:x:{}:{}::{}:/bin/bash", user, id, id, home)));
  // "!" locks the password (no password login, not even on the console); an empty
  // last-change field keeps the image reproducible and turns password aging off.
  BI_TRY(append_account_line(etc / "shadow", user + ":!::0:99999:7:::"));
  BI_TRY(append_account_line(etc / "group", fmt::format("{}:x:{}:", user, id)));
  BI_TRY(append_account_line(etc / "gshadow", user + ":!::"));
  const fs::path dir = root / home.substr(1);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0 || ::lchown(dir.c_str(), id, id) != 0) {
    return fail(dir.string(), "cannot create the login user's home");
  }
  for (const auto& e : fs::directory_iterator(etc / "skel", ec)) {
    if (!e.is_regular_file()) {
      continue;
    }
    BI_TRY_ASSIGN(std::string content, read_file(e.path()));
    const fs::path dest = dir / e.path().filename();
    BI_TRY(replace_file(dest, content, 0644));
    if (::lchown(dest.c_str(), id, id) != 0) {
      return fail(dest.string(), "cannot hand to the login user");
    }
  }
  return Ok{};
}

const std::vector<std::string>& hygiene_paths() {
  static const std::vector<std::string> paths = {
      "/etc/resolv.conf", "/root/.bash_history", "/var/lib/puppet/ssl", "/etc/puppet/ssl", "/var/cache/puppet/ssl",
      "/var/lib/cartridge/launch-params", "/var/lib/cartridge/initialized", "/var/lib/cartridge/instance-id",
      "/tmp/payload", "/var/cache/debconf/config.dat-old", "/var/cache/debconf/templates.dat-old",
      "/var/lib/dpkg/status-old", "/var/lib/dpkg/diversions-old", "/usr/sbin/policy-rc.d",
      "/var/lib/systemd/random-seed", "/var/lib/cartridge/root-grown", "/root/.ssh/authorized_keys",
      // the EFI boot chain's files, copied onto the ESP
      "/usr/lib/build-image"};
  return paths;
}

StepKind assemble_step() {
  StepKind k;
  k.kind = "assemble";
  // Inputs: the root layer's tree, the bootloader's partition.
  k.run = [](StepContext& ctx, const PlanStep& step, const StepIO& io, const fs::path&) -> Expected<void> {
    const fs::path& root_tree = ctx.input(step, 0);
    BI_TRY_ASSIGN(TempDir work, TempDir::create(ctx.store.tmp_dir(), "assemble-" + ctx.plan.image_name + "-"));
    ctx.work.emplace(std::move(work));
    const fs::path farm = ctx.work->path() / "root";
    const fs::path raw = ctx.work->path() / "disk.raw";
    auto assembled = [&]() -> Expected<void> {
      std::error_code ec;
      fs::create_directories(farm, ec);
      // A hard-link farm costs a second instead of copying ~500 MB; everything below only
      // unlinks and recreates files, so the cached layer is never modified.
      auto linked = run_process({"cp", "-al", root_tree.string() + "/.", farm.string()});
      if (!linked || !linked->ok()) {
        remove_tree(farm);
        fs::create_directories(farm, ec);
        BI_TRY(run_checked({"cp", "-a", root_tree.string() + "/.", farm.string()}));
      }
      if (ctx.plan.cartridge.login.user != "root") {
        BI_TRY(add_login_user(farm, ctx.plan.cartridge.login.user));
      }
      BI_TRY(apply_overlay(ctx.plan, farm));
      BI_TRY(apply_hygiene(farm));
      // New files and every directory of the farm are fresh inodes: clamping them is safe.
      BI_TRY(clamp_mtimes(farm, source_date_epoch()));
      BI_TRY_ASSIGN(ctx.packages, installed_packages(farm));
      BI_TRY_ASSIGN(ctx.package_sizes_kib, installed_package_sizes(farm));
      ctx.tree_sizes = tree_sizes(farm);
      AssembleInput in;
      in.root_tree = farm;
      in.boot_tree = root_tree / "boot";
      in.bootloader_disk = ctx.input(step, 1);
      in.firmware = ctx.plan.base.firmware;
      in.mbr_code = in.firmware == "hybrid" ? "/usr/lib/EXTLINUX/gptmbr.bin" : "/usr/lib/EXTLINUX/mbr.bin";
      in.esp = EspFiles::in_tree(root_tree / k_esp_source_dir);
      in.disk_bytes = ctx.plan.disk_bytes;
      in.uuid_seed = ctx.plan.inputs_key;
      BI_TRY(assemble_disk(in, raw));
      io.note(std::to_string(ctx.packages.size()) + " packages");
      return Ok{};
    }();
    if (!assembled) {
      ctx.work->keep();
      spdlog::error("work files kept in {}", ctx.work->path().string());
      return assembled;
    }
    remove_tree(farm);
    ctx.outputs[step.kind] = raw;
    return Ok{};
  };
  return k;
}

} // namespace bi
