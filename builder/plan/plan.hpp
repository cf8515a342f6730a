#pragma once
// The resolved build plan: pure data derived from the cartridge and the repository.
// Cache keys, `build-image plan`, the manifest and `inspect` all come from this one
// structure; executing a build reads nothing that is not in it (osbuild's rule).

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cartridge/cartridge.hpp"
#include "cartridge/os_release.hpp"
#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

// Where the builder finds the repository content it puts into images.
struct Resources {
  fs::path puppet_dir;       // puppet/ (modules/, manifests/)
  fs::path init_scripts_dir; // init-scripts/ (sbin/, lib/, systemd/)
  fs::path templates_dir;    // templates/ (the starter cartridges of `init`)
  fs::path agent_deb;        // the cartridge-agent .deb built by CMake/CPack
  fs::path apt_sources;      // the host's deb822 sources, used when base.mirror is unset
  // Fetches a URL (the mirror's InRelease files); tests replace it. Default: curl.
  std::function<Expected<std::string>(const std::string& url)> fetch_url;
  // Where the last seen mirror index digests are kept, for planning while offline.
  fs::path index_cache_dir;
  // A digest kept there that is younger than this is used without asking the mirror (0:
  // always ask). Saves a round trip per plan on warm rebuilds, and pins one view of the
  // mirror for a whole test run. BUILD_IMAGE_MIRROR_INDEX_TTL, seconds.
  std::chrono::seconds index_max_age{0};
  // BUILD_IMAGE_SOURCE_DIR (a checkout) if set; else the installed data relative to the
  // executable (<bindir>/../share/build-image, so any prefix, DESTDIR or relocated copy
  // works); else the source and build tree this binary was compiled in (a build-tree run).
  // BUILD_IMAGE_AGENT_DEB overrides the agent package in every case.
  static Resources discover();
  // The same, for an executable in `exe_dir` (tests).
  static Resources discover(const fs::path& exe_dir);
};

enum class OutputFormat { qcow2, raw, vmdk };
const char* to_string(OutputFormat f);
std::optional<OutputFormat> parse_output_format(const std::string& s);

// A file placed into the image at assembly (cheap, never cached): init scripts, configs,
// the cartridge's `files`.
struct OverlayFile {
  std::string dest; // absolute path in the image
  unsigned mode = 0644;
  std::string content; // inline content, or...
  fs::path source;     // ...a host file (large user files)
  std::string sha256;
};

struct BaseLayerPlan {
  std::string key;
  std::string os = "debian-12";
  std::string suite = "bookworm";
  std::vector<std::string> packages;
  std::string mirror; // a URL, or a path to a deb822/one-line sources file
  // The sources file's content for this release (hashed into the key): the file itself, or
  // its suites renamed for the release (apt_sources_for_release).
  std::string mirror_content;
  // mirror_content differs from the file: mmdebstrap gets it as a file of the build's scratch.
  bool mirror_rewritten = false;
  // sha256 over the mirror's InRelease files: they list the hash of every Packages index,
  // so any package version change on the mirror changes the base layer's key.
  std::string mirror_index;
  // Set when the cartridge starts from an existing cloud image (base.image) instead of
  // Debian packages: its root filesystem becomes the base, plus the packages above.
  fs::path image;
  std::string image_sha256;
  // base.firmware and base.secure_boot: the disk layout (image/disk.hpp) and what
  // registration asks of the cloud. EFI firmware adds the signed boot chain's packages.
  std::string firmware = "bios";
  bool secure_boot = false;
  // Debian's signed EFI boot chain (uefi, hybrid): downloaded and unpacked into the base
  // layer at k_esp_source_dir for the ESP, never installed into the root filesystem.
  std::vector<std::string> esp_packages;
};

// Base + the cartridge's packages (+ in full mode: Puppet classes and the agent).
struct SystemLayerPlan {
  std::string key;
  bool needed = false; // false: the base layer is the system layer
  Mode mode = Mode::generic;
  std::vector<std::string> packages;
  std::vector<std::string> puppet_classes; // dependent_apps then server_apps
  std::string puppet_tree_sha256;
  fs::path puppet_dir;
  fs::path agent_deb;
  std::string agent_deb_sha256;
};

// One step of the build, as data: the orchestrator (pipeline/build.cpp) walks Plan::steps in
// order and the step's kind (pipeline/steps/) does the work. `plan --json`, the manifest's
// layers, `inspect` and --no-cache all read this list.
struct PlanStep {
  std::string kind;                // a kind registered in pipeline/steps/registry.cpp
  std::string layer;               // cached as layers/<layer>-<key>; "" = runs on every build
  std::string key;                 // the layer's cache key
  std::vector<std::string> inputs; // the steps whose outputs it reads, in order
  std::string produces;            // what it makes, for people (plan --json, ARCHITECTURE.md)
  bool early = false;              // a layer that needs no other step: starts with the build
  std::string same_as;             // not "": nothing to run, its output is that step's

  nlohmann::json to_json() const;
};

struct Plan {
  Cartridge cartridge;
  Mode mode = Mode::generic;
  OutputFormat format = OutputFormat::qcow2;
  std::string tool_version;
  BaseLayerPlan base;
  std::string bootloader_key;
  SystemLayerPlan system;
  std::vector<OverlayFile> overlay;
  std::vector<std::string> enable_units; // unit file names under /lib/systemd/system
  std::uint64_t disk_bytes = 4ull << 30;
  std::string inputs_key;      // the final image's key (all inputs)
  std::string image_name;      // <type>-<mode>-<short key>
  std::vector<PlanStep> steps; // the build, in order

  // Layer kind -> cache key, for every layered step (the manifest's "layers").
  std::map<std::string, std::string> layer_keys() const;
  nlohmann::json to_json() const;
};

// Resolves the plan: reads and hashes every input file. Fails (exit 3) when a resource
// such as the agent package is missing.
Expected<Plan> make_plan(const Cartridge& cartridge, Mode mode, OutputFormat format, const Resources& resources);

// The image content rendered from the cartridge (exposed for tests).
std::string render_cartridge_conf(const Cartridge& c, Mode mode);
std::string render_puppet_conf(const Cartridge& c);
std::string render_login_sudoers(const Cartridge& c); // only for a login user other than root
std::string render_agent_conf(const Cartridge& c);
std::string render_puppet_apply_manifest(const std::vector<std::string>& classes);

// (URI, suite) pairs of a deb822 or one-line apt sources text, or of a plain mirror URL.
std::vector<std::pair<std::string, std::string>> mirror_suites(const std::string& mirror_content,
                                                               const std::string& default_suite);

// Packages every image gets (kernel, bootloader-independent boot, DHCP, Puppet agent).
const std::vector<std::string>& base_packages();
// base_packages() with the release's kernel, the same for every base.firmware (the EFI boot
// chain is esp_packages()).
std::vector<std::string> base_packages(const OsRelease& release);
// The packages holding Debian's signed shim, MokManager and GRUB for base.firmware uefi
// and hybrid (none for bios).
std::vector<std::string> esp_packages(const std::string& firmware);

extern const char* const k_tool_version;

} // namespace bi
