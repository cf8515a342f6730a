#include "rootfs/rootfs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "guest/guestfs_handle.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) {
    out += out.empty() ? i : sep + i;
  }
  return out;
}

// Files that must be in place before the kernel package is configured.
Expected<void> write_essential_files(const fs::path& dir) {
  // /boot/vmlinuz and /boot/initrd.img symlinks: the boot partition's extlinux.conf names
  // them, so a kernel upgrade inside the instance keeps booting the newest kernel.
  BI_TRY(
      replace_file(dir / "etc/kernel-img.conf", "# Written by build-image\ndo_symlinks = yes\nlink_in_boot = yes\n"));
  // The initramfs fsck hook cannot detect the root fs type inside a chroot.
  BI_TRY(replace_file(dir / "etc/initramfs-tools/conf.d/fstype", "FSTYPE=ext4\n"));
  return Ok{};
}

} // namespace

Expected<std::string> mmdebstrap_mirror_argument(const BaseLayerPlan& plan, const fs::path& scratch) {
  if (!plan.mirror_rewritten) {
    return plan.mirror;
  }
  // mmdebstrap reads a sources file as written (its suites too) and tells deb822 from the
  // one-line format by the name's extension: the release's text, under the file's extension.
  const fs::path file = scratch / ("apt-" + plan.suite + fs::path(plan.mirror).extension().string());
  BI_TRY(write_file_atomic(file, plan.mirror_content));
  return file.string();
}

namespace {

// apt-get download (the tree's own apt lists and sources: the same mirror view as every
// other package of the layer), then dpkg-deb -x on the host: files, no maintainer scripts.
Expected<void> unpack_esp_packages(const BaseLayerPlan& plan, const fs::path& target, const LineSink& on_line) {
  if (plan.esp_packages.empty()) {
    return Ok{};
  }
  const fs::path debs = target / "tmp/build-image-esp";
  std::error_code ec;
  fs::create_directories(debs, ec);
  std::vector<std::string> argv = {"env", "-C", "/tmp/build-image-esp", "apt-get", "-q", "download"};
  argv.insert(argv.end(), plan.esp_packages.begin(), plan.esp_packages.end());
  on_line(format_argv(argv));
  auto r = run_in_chroot(target, argv, {}, on_line, 600);
  if (!r) {
    return Unexpected{r.error()};
  }
  if (!r->ok()) {
    return fail("apt-get download", "the signed EFI boot chain: " + r->tail(10));
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(debs, ec)) {
    if (e.path().extension() == ".deb") {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.size() != plan.esp_packages.size()) {
    return fail("apt-get download", "expected " + std::to_string(plan.esp_packages.size()) + " packages (" +
                                        join(plan.esp_packages, " ") + "), got " + std::to_string(files.size()));
  }
  const fs::path dest = target / k_esp_source_dir;
  fs::create_directories(dest, ec);
  for (const auto& f : files) {
    BI_TRY(run_checked({"dpkg-deb", "-x", f.string(), dest.string()}));
  }
  remove_tree(debs);
  return Ok{};
}

} // namespace

Expected<RunResult> run_in_chroot(const fs::path& root, const std::vector<std::string>& argv,
                                  const std::map<std::string, std::string>& env, const LineSink& on_line,
                                  int timeout_seconds) {
  // /proc/<pid>/exe still executes this binary if it was replaced on disk meanwhile.
  const std::string self = "/proc/" + std::to_string(::getpid()) + "/exe";
  std::vector<std::string> cmd = {"unshare",
                                  "--mount",
                                  "--pid",
                                  "--fork",
                                  "--kill-child",
                                  "--mount-proc=" + (root / "proc").string(),
                                  self,
                                  "__pid1",
                                  "chroot",
                                  root.string(),
                                  "/usr/bin/env",
                                  "-i",
                                  "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                  "HOME=/root",
                                  "LC_ALL=C.UTF-8",
                                  "DEBIAN_FRONTEND=noninteractive"};
  cmd.push_back("SOURCE_DATE_EPOCH=" + std::to_string(source_date_epoch()));
  for (const auto& [k, v] : env) {
    cmd.push_back(k + "=" + v);
  }
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  RunOptions opts;
  opts.timeout = std::chrono::seconds(timeout_seconds);
  opts.on_line = on_line;
  return run_process(cmd, opts);
}

Expected<void> build_base_rootfs(const BaseLayerPlan& plan, const fs::path& target, const fs::path& scratch,
                                 const LineSink& on_line) {
  const fs::path essential = scratch / "essential-files";
  BI_TRY(write_essential_files(essential));
  BI_TRY_ASSIGN(const std::string mirror, mmdebstrap_mirror_argument(plan, scratch));
  std::vector<std::string> cmd = {
      "mmdebstrap", "--mode=root", "--format=directory", "--variant=minbase", "--verbose",
      "--include=" + join(plan.packages, ","), "--aptopt=APT::Install-Recommends \"false\"",
      "--aptopt=Acquire::Languages \"none\"", "--dpkgopt=path-exclude=/usr/share/man/*",
      "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
      "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
      "--dpkgopt=path-exclude=/usr/share/info/*", "--essential-hook=sync-in " + essential.string() + " /",
      // The system layer installs more packages; keeping the lists saves an apt update.
      // Hygiene removes them from the final image.
      "--skip=cleanup/apt/lists", "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata", plan.suite, target.string(),
      mirror};
  RunOptions opts;
  opts.timeout = std::chrono::seconds(1800);
  opts.on_line = on_line;
  // mmdebstrap, dpkg, initramfs-tools and shadow honour it: fixed dates in the tree.
  opts.extra_env["SOURCE_DATE_EPOCH"] = std::to_string(source_date_epoch());
  // The kernel's postinst hook would build an initramfs, and initramfs-tools' trigger a
  // second one at the end of the run (~4-18 s each here). INITRD=No skips the first; the
  // trigger then finds no initramfs to update, and one is made below with every package
  // configured.
  opts.extra_env["INITRD"] = "No";
  auto r = run_process(cmd, opts);
  if (!r) {
    return Unexpected{r.error()};
  }
  if (!r->ok()) {
    const bool network = r->output.find("Failed to fetch") != std::string::npos ||
                         r->output.find("Could not resolve") != std::string::npos ||
                         r->output.find("Temporary failure resolving") != std::string::npos ||
                         r->output.find("Unable to connect") != std::string::npos;
    return fail(
        "mmdebstrap",
        std::string(network ? "cannot reach the Debian mirror " + plan.mirror + ": " : "base OS build failed: ") +
            (r->timed_out ? "timed out" : "exit status " + std::to_string(r->exit_code)) + "\n" + r->tail(),
        network ? ExitCode::host_missing : ExitCode::build_failed);
  }
  // mkinitramfs, not update-initramfs -c: that adds only a syncfs of the whole filesystem,
  // which here flushes the ~500 MB tree mmdebstrap wrote without any fsync (eatmydata).
  std::error_code ec;
  std::vector<std::string> versions;
  for (const auto& e : fs::directory_iterator(target / "boot", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("vmlinuz-", 0) == 0 && e.is_regular_file(ec) && !e.is_symlink(ec)) {
      versions.push_back(name.substr(8));
    }
  }
  std::sort(versions.begin(), versions.end());
  for (const auto& version : versions) {
    auto initramfs =
        run_in_chroot(target, {"mkinitramfs", "-o", "/boot/initrd.img-" + version, version}, {}, on_line, 600);
    if (!initramfs || !initramfs->ok()) {
      return fail("mkinitramfs " + version, initramfs ? initramfs->tail() : initramfs.error().to_string());
    }
  }
  // INITRD=No also kept the kernel's postinst from linking /boot/initrd.img (the boot
  // partition's extlinux.conf and grub.cfg name it): link it now that the initrd exists.
  if (const auto kernel = fs::read_symlink(target / "boot/vmlinuz", ec).string();
      !ec && kernel.rfind("vmlinuz-", 0) == 0) {
    auto links = run_in_chroot(target, {"linux-update-symlinks", "install", kernel.substr(8), "/boot/" + kernel}, {},
                               on_line, 120);
    if (!links || !links->ok()) {
      return fail("linux-update-symlinks", links ? links->tail() : links.error().to_string());
    }
  }
  if (!fs::is_symlink(target / "boot/initrd.img", ec)) {
    return fail((target / "boot/initrd.img").string(), "missing after update-initramfs: the kernel has no initramfs");
  }
  BI_TRY(unpack_esp_packages(plan, target, on_line));
  // Debian enables the Puppet agent daemon; instances run Puppet once from cartridge-init.
  auto disable = run_in_chroot(target, {"systemctl", "disable", "puppet.service"}, {}, on_line, 120);
  if (!disable || !disable->ok()) {
    return fail("systemctl disable puppet.service", disable ? disable->tail() : disable.error().to_string());
  }
  return clamp_mtimes(target, source_date_epoch());
}

Expected<void> build_base_from_image(const BaseLayerPlan& plan, const fs::path& target, const fs::path& scratch,
                                     bool use_tcg, const LineSink& on_line) {
  // The format is named explicitly, never probed from untrusted bytes by qemu.
  BI_TRY_ASSIGN(RunResult info, run_checked({"qemu-img", "info", "--output=json", plan.image.string()}));
  std::string format;
  try {
    auto j = nlohmann::json::parse(info.output);
    format = j.at("format").get<std::string>();
    if (j.contains("backing-filename")) {
      return fail(plan.image.string(), "has a backing file; give a self-contained image", ExitCode::bad_input);
    }
  } catch (const std::exception& e) {
    return fail(plan.image.string(), std::string("cannot read qemu-img info: ") + e.what());
  }
  if (format != "qcow2" && format != "raw") {
    return fail(plan.image.string(), "unsupported image format " + format + " (qcow2 or raw)", ExitCode::bad_input);
  }
  const fs::path tar = scratch / "root.tar";
  {
    on_line("reading the root filesystem of " + plan.image.filename().string());
    BI_TRY_ASSIGN(GuestfsHandle g, GuestfsHandle::create(use_tcg));
    BI_TRY(g.add_drive(plan.image, format, true));
    BI_TRY(g.launch());
    BI_TRY_ASSIGN(std::string root, g.inspect_root());
    BI_TRY_ASSIGN(auto mounts, g.mountpoints(root));
    // Parents before children. The ESP is left out: assembly makes its own, and its mount
    // point may exist only once the instance has booted (our own images make /boot/efi at
    // first boot), so mounting it here would fail.
    std::sort(mounts.begin(), mounts.end(),
              [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
    for (const auto& [mountpoint, device] : mounts) {
      if (mountpoint == "/boot/efi" || mountpoint.rfind("/boot/efi/", 0) == 0) {
        on_line("not reading " + device + " (" + mountpoint + "): the ESP is made by assembly");
        continue;
      }
      BI_TRY(g.mount_ro(device, mountpoint));
    }
    BI_TRY(g.tar_out("/", tar));
    BI_TRY(g.shutdown());
  }
  BI_TRY(run_checked(
      {"tar", "-x", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-f", tar.string(), "-C", target.string()}));
  fs::remove(tar);
  BI_TRY(write_essential_files(target));
  std::error_code ec;
  fs::remove(target / "etc/resolv.conf", ec);
  if (auto resolv = read_file("/etc/resolv.conf")) {
    BI_TRY(replace_file(target / "etc/resolv.conf", *resolv));
  }
  BI_TRY(replace_file(target / "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0755));
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"apt-get", "-q", "update"},
           [&] {
             std::vector<std::string> a = {
                 "apt-get", "-y", "-q", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confold", "install"};
             a.insert(a.end(), plan.packages.begin(), plan.packages.end());
             return a;
           }(),
           {"systemctl", "disable", "puppet.service"}}) {
    on_line(format_argv(argv));
    auto r = run_in_chroot(target, argv, {}, on_line);
    if (!r) {
      return Unexpected{r.error()};
    }
    if (!r->ok()) {
      return fail(argv[0], "in the image's root filesystem: " + format_argv(argv) + "\n" + r->tail(15));
    }
  }
  BI_TRY(unpack_esp_packages(plan, target, on_line));
  fs::remove(target / "usr/sbin/policy-rc.d", ec);
  fs::remove(target / "etc/resolv.conf", ec);
  return clamp_mtimes(target, source_date_epoch());
}

Expected<void> build_system_rootfs(const SystemLayerPlan& plan, const fs::path& base_tree, const fs::path& target,
                                   const LineSink& on_line) {
  BI_TRY(run_checked({"cp", "-a", "--reflink=auto", base_tree.string() + "/.", target.string()}));
  // Maintainer scripts must not start daemons in the chroot.
  BI_TRY(replace_file(target / "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0755));
  // apt needs name resolution to reach the mirror; removed again below.
  if (auto resolv = read_file("/etc/resolv.conf")) {
    BI_TRY(replace_file(target / "etc/resolv.conf", *resolv));
  }
  auto step = [&](const std::string& what, const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, std::vector<int> ok_codes = {0}) -> Expected<void> {
    on_line(what);
    auto r = run_in_chroot(target, argv, env, on_line);
    if (!r) {
      return Unexpected{r.error()};
    }
    if (r->timed_out || std::find(ok_codes.begin(), ok_codes.end(), r->exit_code) == ok_codes.end()) {
      return fail(what, (r->timed_out ? std::string("timed out") : "exit status " + std::to_string(r->exit_code)) +
                            ": " + format_argv(argv) + "\n" + r->tail(20));
    }
    return Ok{};
  };
  const std::vector<std::string> apt = {"apt-get", "-y",
                                        "-q",      "--no-install-recommends",
                                        "-o",      "Dpkg::Options::=--force-unsafe-io",
                                        "-o",      "Dpkg::Options::=--force-confold",
                                        "install"};
  // Packages the base already has (curl, say) cost an apt-get run of ~2 s for nothing.
  BI_TRY_ASSIGN(auto installed, installed_packages(target));
  std::vector<std::string> missing;
  std::copy_if(plan.packages.begin(), plan.packages.end(), std::back_inserter(missing),
               [&](const std::string& p) { return installed.count(p) == 0; });
  if (!missing.empty()) {
    auto argv = apt;
    argv.insert(argv.end(), missing.begin(), missing.end());
    BI_TRY(step("installing packages " + join(missing, " "), argv, {}));
  }
  std::error_code ec;
  if (plan.mode == Mode::full) {
    const fs::path work = target / "tmp/build-image";
    fs::create_directories(work, ec);
    BI_TRY(run_checked({"cp", "-a", (plan.puppet_dir / "modules").string(), (work / "modules").string()}));
    BI_TRY(replace_file(work / "apply.pp", render_puppet_apply_manifest(plan.puppet_classes)));
    BI_TRY(run_checked({"cp", plan.agent_deb.string(), (work / "cartridge-agent.deb").string()}));
    BI_TRY(step("installing the cartridge agent",
                [&] {
                  auto argv = apt;
                  argv.push_back("/tmp/build-image/cartridge-agent.deb");
                  return argv;
                }(),
                {}));
    // Detailed exit codes: 0 = no changes, 2 = changes applied; anything else failed.
    BI_TRY(step("puppet apply " + join(plan.puppet_classes, " "),
                {"puppet", "apply", "--detailed-exitcodes", "--color=false", "--modulepath=/tmp/build-image/modules",
                 "/tmp/build-image/apply.pp"},
                {{"FACTER_cartridge_build", "true"}}, {0, 2}));
    remove_tree(work);
    // Run state with timestamps; a Puppet run on the instance recreates it.
    for (const char* f : {"state/state.yaml", "state/last_run_summary.yaml", "state/last_run_report.yaml",
                          "state/classes.txt", "state/resources.txt", "state/transactionstore.yaml"}) {
      fs::remove(target / "var/cache/puppet" / f, ec);
    }
  }
  fs::remove(target / "usr/sbin/policy-rc.d", ec);
  fs::remove(target / "etc/resolv.conf", ec);
  return clamp_mtimes(target, source_date_epoch());
}

namespace {

// One pass over dpkg's status file: every installed package's stanza fields.
Expected<std::vector<std::map<std::string, std::string>>> installed_stanzas(const fs::path& root) {
  BI_TRY_ASSIGN(std::string status, read_file(root / "var/lib/dpkg/status", 256u << 20));
  std::vector<std::map<std::string, std::string>> out;
  std::istringstream in(status);
  std::map<std::string, std::string> stanza;
  auto flush = [&] {
    const auto& s = stanza["Status"];
    if (!stanza["Package"].empty() && s.find(" installed") != std::string::npos &&
        s.find("not-installed") == std::string::npos) {
      out.push_back(stanza);
    }
    stanza.clear();
  };
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      flush();
      continue;
    }
    for (const char* field : {"Package", "Version", "Status", "Installed-Size"}) {
      const std::string prefix = std::string(field) + ": ";
      if (line.rfind(prefix, 0) == 0) {
        stanza[field] = line.substr(prefix.size());
      }
    }
  }
  flush();
  return out;
}

} // namespace

Expected<std::map<std::string, std::string>> installed_packages(const fs::path& root) {
  BI_TRY_ASSIGN(auto stanzas, installed_stanzas(root));
  std::map<std::string, std::string> out;
  for (auto& s : stanzas) {
    out[s["Package"]] = s["Version"];
  }
  return out;
}

Expected<std::map<std::string, std::uint64_t>> installed_package_sizes(const fs::path& root) {
  BI_TRY_ASSIGN(auto stanzas, installed_stanzas(root));
  std::map<std::string, std::uint64_t> out;
  for (auto& s : stanzas) {
    const std::string& size = s["Installed-Size"];
    if (!size.empty() && size.size() < 16 && size.find_first_not_of("0123456789") == std::string::npos) {
      out[s["Package"]] = std::stoull(size);
    }
  }
  return out;
}

std::map<std::string, std::uint64_t> tree_sizes(const fs::path& root) {
  std::map<std::string, std::uint64_t> out;
  std::set<std::pair<dev_t, ino_t>> seen; // a hard link is one file on the disk
  std::error_code ec;
  for (const auto& top : fs::directory_iterator(root, ec)) {
    if (!top.is_directory(ec) || top.is_symlink(ec)) {
      continue;
    }
    std::uint64_t bytes = 0;
    for (auto it = fs::recursive_directory_iterator(top.path(), fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && seen.emplace(st.st_dev, st.st_ino).second) {
        bytes += static_cast<std::uint64_t>(st.st_size);
      }
    }
    ec.clear();
    out["/" + top.path().filename().string()] = bytes;
  }
  return out;
}

} // namespace bi
