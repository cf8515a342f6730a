#pragma once
// Root filesystem trees on the host: the base OS from Debian packages (mmdebstrap) and
// the system layer on top of it (apt and `puppet apply` in a chroot, at native speed).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "plan/plan.hpp"
#include "util/expected.hpp"

namespace bi {

using LineSink = std::function<void(const std::string&)>;

// Where the base layer holds the unpacked BaseLayerPlan::esp_packages (their own paths
// below it: usr/lib/shim/..., usr/lib/grub/...). Assembly copies them onto the ESP;
// hygiene keeps them out of the image's root filesystem.
inline constexpr const char* k_esp_source_dir = "usr/lib/build-image/esp";

// Builds the base OS into the empty directory `target`.
Expected<void> build_base_rootfs(const BaseLayerPlan& plan, const fs::path& target, const fs::path& scratch,
                                 const LineSink& on_line);

// The mirror argument of mmdebstrap: base.mirror (a URL or the sources file), or, when the
// release's sources differ from the file (plan.mirror_rewritten), a file written into
// `scratch` with them (never into the repository or /etc).
Expected<std::string> mmdebstrap_mirror_argument(const BaseLayerPlan& plan, const fs::path& scratch);

// Builds the base from an existing cloud image (plan.image): its root filesystem is read
// with libguestfs (one appliance launch), then the base packages are added with apt.
Expected<void> build_base_from_image(const BaseLayerPlan& plan, const fs::path& target, const fs::path& scratch,
                                     bool use_tcg, const LineSink& on_line);

// Builds the system layer into `target` (empty) from the base tree.
Expected<void> build_system_rootfs(const SystemLayerPlan& plan, const fs::path& base_tree, const fs::path& target,
                                   const LineSink& on_line);

// Runs a command chrooted into `root`, in private mount and PID namespaces with a fresh
// /proc, so facter and maintainer scripts see a sane system and nothing outlives the call.
Expected<struct RunResult> run_in_chroot(const fs::path& root, const std::vector<std::string>& argv,
                                         const std::map<std::string, std::string>& env, const LineSink& on_line,
                                         int timeout_seconds = 1800);

// Installed packages (name -> version) read from the tree's dpkg status file.
Expected<std::map<std::string, std::string>> installed_packages(const fs::path& root);
// dpkg's Installed-Size (KiB) of every installed package of the root tree.
Expected<std::map<std::string, std::uint64_t>> installed_package_sizes(const fs::path& root);
// Bytes of regular files (each inode once) under each top-level folder of the tree, by
// "/name"; symlinks are not followed.
std::map<std::string, std::uint64_t> tree_sizes(const fs::path& root);

} // namespace bi
