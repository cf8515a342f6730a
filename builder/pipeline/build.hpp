#pragma once
// The build: a linear list of named, timed phases executing a Plan.
//   base-os -> bootloader -> system -> assemble -> convert -> finalize
// Layers come from the cache when their key matches; the overlay (init scripts, configs,
// files) is applied on every build because it costs milliseconds.

#include <filesystem>
#include <string>
#include <vector>

#include "image/manifest.hpp"
#include "pipeline/progress.hpp"
#include "pipeline/remote_cache.hpp"
#include "plan/plan.hpp"
#include "util/expected.hpp"

namespace bi {

struct BuildOptions {
  fs::path output_dir = "images";
  fs::path cache_dir;
  bool no_cache = false;
  Progress* progress = nullptr;
  RemoteCache* remote = nullptr; // --cache-url; shared by the builds of one run
};

struct BuildResult {
  fs::path image;
  fs::path manifest_path;
  fs::path log_path;
  Manifest manifest;
  std::vector<PhaseRecord> phases;
  double seconds = 0;
  int appliance_launches = 0;
  bool up_to_date = false; // the image already existed and verified; nothing was built
  int layers_built = 0;    // layers built by this build (not from the local or remote cache)
  RemoteStats remote;      // remote cache hits, misses, uploads (zero without --cache-url)
};

Expected<BuildResult> build_image(const Plan& plan, const BuildOptions& options);

// Files removed or emptied in every image (exposed for tests and `inspect`).
const std::vector<std::string>& hygiene_paths();

// Creates the cartridge's login user (login.user, not root) in the root tree `root` as
// `useradd --create-home` would, but by unlinking and rewriting passwd, shadow, group and
// gshadow (the tree is a hard-link farm of a cached layer): the first free uid/gid from
// 1000, a group of its own, password locked ("!": key login only), a home with /etc/skel.
// A user that already exists is an error naming its uid.
Expected<void> add_login_user(const fs::path& root, const std::string& user);

} // namespace bi
