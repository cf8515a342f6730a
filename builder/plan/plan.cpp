#include "plan/plan.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

#include <spdlog/fmt/fmt.h>

#include "cartridge/os_release.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/process.hpp"

#ifndef BUILD_IMAGE_VERSION
#define BUILD_IMAGE_VERSION "0.0.0"
#endif
#ifndef BUILD_IMAGE_SOURCE_DIR
#define BUILD_IMAGE_SOURCE_DIR "."
#endif
#ifndef BUILD_IMAGE_AGENT_DEB
#define BUILD_IMAGE_AGENT_DEB ""
#endif
#ifndef BUILD_IMAGE_AGENT_DEB_NAME
#define BUILD_IMAGE_AGENT_DEB_NAME "cartridge-agent.deb"
#endif

namespace bi {

// Bump the suffix whenever layer-building code changes what ends up in a layer, so old
// cache entries stop matching.
const char* const k_tool_version = BUILD_IMAGE_VERSION "+layers.4";

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) {
    out += out.empty() ? i : sep + i;
  }
  return out;
}

std::string ports_text(const Cartridge& c) {
  std::vector<std::string> ports;
  for (const auto& p : c.ports) {
    ports.push_back(std::to_string(p.port));
  }
  return join(ports, "|");
}

const char* const k_network_interfaces =
    "# Written by build-image: DHCP on the first NIC (net.ifnames=0 keeps it eth0).\n"
    "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n";

std::string render_fstab(const std::string& firmware) {
  std::string out = "# Written by build-image\n"
                    "LABEL=rootfs / ext4 errors=remount-ro 0 1\n"
                    "LABEL=boot /boot ext4 defaults 0 2\n";
  if (firmware != "bios") {
    // The ESP where Debian's tools look for it (grub-install, shim-signed's postinst);
    // systemd makes the mount point on p1. nofail: a damaged ESP must not stop a boot that
    // did not need it (BIOS); pass 0: the image has no fsck.vfat.
    out += "LABEL=ESP /boot/efi vfat umask=0077,nofail 0 0\n";
  }
  return out;
}

const char* const k_hosts = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n";

} // namespace

// zstd: initramfs-tools compresses with it when it finds it, gzip otherwise (zstd is ~25%
// faster here and the initramfs 2 MB smaller).
const std::vector<std::string>& base_packages() {
  static const std::vector<std::string> packages = {"systemd-sysv",
                                                    "udev",
                                                    "linux-image-cloud-amd64",
                                                    "ifupdown",
                                                    "isc-dhcp-client",
                                                    "iproute2",
                                                    "ca-certificates",
                                                    "curl",
                                                    "procps",
                                                    "puppet-agent",
                                                    "e2fsprogs",
                                                    "kmod",
                                                    "openssh-server",
                                                    "systemd-timesyncd",
                                                    "cloud-guest-utils",
                                                    "zstd"};
  return packages;
}

std::vector<std::string> base_packages(const OsRelease& release) {
  auto packages = base_packages();
  std::replace(packages.begin(), packages.end(), std::string("linux-image-cloud-amd64"),
               std::string(release.kernel_package));
  return packages;
}

std::vector<std::string> esp_packages(const std::string& firmware) {
  if (firmware == "bios") {
    return {};
  }
  // shimx64 and mmx64 (shim-signed, shim-helpers-amd64-signed) and grubx64: only these
  // three files reach the ESP. Unpacked, not installed: installing them pulls in ~20
  // packages (grub-common, grub-efi-amd64-bin, mokutil...), ~55 MB in the root filesystem
  // that nothing in the instance uses. Their versions still move with the mirror (the base
  // key holds the mirror's index).
  return {"shim-signed", "shim-helpers-amd64-signed", "grub-efi-amd64-signed"};
}

const char* to_string(OutputFormat f) {
  switch (f) {
  case OutputFormat::raw:
    return "raw";
  case OutputFormat::vmdk:
    return "vmdk";
  case OutputFormat::qcow2:
    break;
  }
  return "qcow2";
}

std::optional<OutputFormat> parse_output_format(const std::string& s) {
  if (s == "qcow2") {
    return OutputFormat::qcow2;
  }
  if (s == "raw") {
    return OutputFormat::raw;
  }
  if (s == "vmdk") {
    return OutputFormat::vmdk;
  }
  return std::nullopt;
}

Resources Resources::discover() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return discover(ec ? fs::path{} : exe.parent_path());
}

Resources Resources::discover(const fs::path& exe_dir) {
  Resources r;
  fs::path data = BUILD_IMAGE_SOURCE_DIR;
  fs::path agent_deb = BUILD_IMAGE_AGENT_DEB;
  std::error_code ec;
  // The installed layout wins over the compiled-in tree: an installed binary must never
  // quietly use a checkout that happens to still exist on the build machine.
  if (const fs::path installed = (exe_dir / ".." / "share" / "build-image").lexically_normal();
      !exe_dir.empty() && fs::is_directory(installed / "puppet", ec)) {
    data = installed;
    agent_deb = installed / BUILD_IMAGE_AGENT_DEB_NAME;
  }
  if (const char* source = std::getenv("BUILD_IMAGE_SOURCE_DIR"); source != nullptr && *source != '\0') {
    data = source;
  }
  r.puppet_dir = data / "puppet";
  r.init_scripts_dir = data / "init-scripts";
  r.templates_dir = data / "templates";
  r.agent_deb = env_or("BUILD_IMAGE_AGENT_DEB", agent_deb.string());
  r.apt_sources = env_or("BUILD_IMAGE_APT_SOURCES", "/etc/apt/sources.list.d/debian.sources");
  r.index_cache_dir = env_or("BUILD_IMAGE_MIRROR_INDEX_DIR", "");
  const std::string ttl = env_or("BUILD_IMAGE_MIRROR_INDEX_TTL", "120");
  if (!ttl.empty() && ttl.size() < 9 && ttl.find_first_not_of("0123456789") == std::string::npos) {
    r.index_max_age = std::chrono::seconds(std::stol(ttl));
  } else {
    spdlog::warn("BUILD_IMAGE_MIRROR_INDEX_TTL={}: not a number of seconds; the mirror's index is always fetched", ttl);
  }
  r.fetch_url = [](const std::string& url) -> Expected<std::string> {
    RunOptions o;
    o.timeout = std::chrono::seconds(30);
    auto res = run_process({"curl", "-fsSL", "--max-time", "20", "--retry", "2", url}, o);
    if (!res) {
      return Unexpected{res.error()};
    }
    if (!res->ok()) {
      return fail(url, "cannot fetch: " + res->tail(2), ExitCode::host_missing);
    }
    return res->output;
  };
  return r;
}

std::string render_cartridge_conf(const Cartridge& c, Mode mode) {
  std::string out = fmt::format("# Written by build-image; read by cartridge-init at boot.\n"
                                "SERVICE_NAME={}\nCARTRIDGE_MODE={}\nPUPPET_SERVER={}\n"
                                "PUPPET_ENVIRONMENT={}\nPORTS={}\nLOGIN_USER={}\nSSH={}\n",
                                c.type, to_string(mode), c.puppet_server, c.puppet_environment, ports_text(c),
                                c.login.user, c.login.ssh ? "on" : "off");
  if (!c.ntp_servers.empty()) {
    out += "NTP_SERVERS=" + join(c.ntp_servers, " ") + "\n";
  }
  return out;
}

std::string render_login_sudoers(const Cartridge& c) {
  // What Debian's cloud images give their default user: root has no password to type.
  return fmt::format("# Written by build-image: the cartridge's login user (login.user) administers the instance.\n"
                     "{} ALL=(ALL:ALL) NOPASSWD: ALL\n",
                     c.login.user);
}

std::string render_puppet_conf(const Cartridge& c) {
  return fmt::format("# Written by build-image; cartridge-init points it at the payload's master.\n"
                     "[main]\nserver = {}\nenvironment = {}\n",
                     c.puppet_server, c.puppet_environment);
}

std::string render_agent_conf(const Cartridge& c) {
  std::vector<std::string> urls = c.mb_urls;
  if (urls.empty()) {
    urls.push_back("127.0.0.1:1883");
  }
  return fmt::format("# Written by build-image from {}; payload keys override it.\n"
                     "mb.urls = {}\nservice.name = {}\nports = {}\nlisten.address = localhost\n"
                     "port.check.timeout = 600\nstats.interval = 15\n"
                     "payload.file = /var/lib/cartridge/launch-params\n",
                     c.file.filename().string(), join(urls, ","), c.type, ports_text(c));
}

std::string render_puppet_apply_manifest(const std::vector<std::string>& classes) {
  // The same classes, in the same order, that site.pp gives a node of this service.
  std::string out = "# Generated by build-image for the full image build.\ninclude base\n";
  std::string previous = "base";
  for (const auto& c : classes) {
    out += fmt::format("include {}\nClass['{}'] -> Class['{}']\n", c, previous, c);
    previous = c;
  }
  return out;
}

namespace {

Expected<void> add_tree(std::vector<OverlayFile>& overlay, const fs::path& dir, const std::string& dest_dir,
                        unsigned mode) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Ok{};
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    BI_TRY_ASSIGN(std::string content, read_file(f));
    OverlayFile o;
    o.dest = dest_dir + "/" + f.filename().string();
    o.mode = mode;
    o.sha256 = sha256_hex(content);
    o.content = std::move(content);
    overlay.push_back(std::move(o));
  }
  return Ok{};
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

Expected<std::string> resolve_mirror_index(const BaseLayerPlan& base, const Resources& resources) {
  // Cartridges of one run planned at once share the mirror: the first one fetches, the
  // others find its digest fresh in index_cache_dir (index_max_age).
  static std::mutex fetch_mutex;
  std::lock_guard lock(fetch_mutex);
  const auto suites = mirror_suites(base.mirror_content, base.suite);
  Hasher h;
  // One pin per view of the mirror: a sources text names its suites itself (the release's,
  // apt_sources_for_release), a bare URL is read with the release's suite.
  const bool bare_url = suites.size() == 1 && suites.front().first == base.mirror_content;
  const fs::path remembered =
      resources.index_cache_dir.empty()
          ? fs::path()
          : resources.index_cache_dir /
                sha256_hex(bare_url ? base.mirror_content + "\n" + base.suite : base.mirror_content);
  if (!remembered.empty() && resources.index_max_age.count() > 0) {
    std::error_code ec;
    const auto seen = fs::last_write_time(remembered, ec);
    if (!ec && fs::file_time_type::clock::now() - seen < resources.index_max_age) {
      if (auto last = read_file(remembered)) {
        spdlog::debug("mirror index digest seen less than {} s ago: not fetched again",
                      resources.index_max_age.count());
        return *last;
      }
    }
  }
  for (const auto& [uri, suite] : suites) {
    std::string url = uri;
    while (!url.empty() && url.back() == '/') {
      url.pop_back();
    }
    url += "/dists/" + suite + "/InRelease";
    auto text = resources.fetch_url ? resources.fetch_url(url) : fail(url, "no fetcher", ExitCode::host_missing);
    if (!text) {
      // Offline: a warm rebuild may still use the index seen last time.
      if (auto last = read_file(remembered); !remembered.empty() && last) {
        spdlog::warn("mirror index {} unreachable ({}); using the one seen last time", url, text.error().detail);
        return *last;
      }
      return fail(url, "cannot read the mirror's index (needed for cache keys): " + text.error().detail,
                  ExitCode::host_missing);
    }
    h.field(url, sha256_hex(*text));
  }
  std::string digest = h.finish();
  if (!remembered.empty()) {
    std::error_code ec;
    fs::create_directories(remembered.parent_path(), ec);
    (void)write_file_atomic(remembered, digest);
  }
  return digest;
}

OverlayFile inline_file(std::string dest, std::string content, unsigned mode = 0644) {
  OverlayFile o;
  o.dest = std::move(dest);
  o.mode = mode;
  o.sha256 = sha256_hex(content);
  o.content = std::move(content);
  return o;
}

} // namespace

std::vector<std::pair<std::string, std::string>> mirror_suites(const std::string& content,
                                                               const std::string& default_suite) {
  std::vector<std::pair<std::string, std::string>> out;
  if (content.find("://") != std::string::npos && content.find('\n') == std::string::npos &&
      content.find(' ') == std::string::npos) {
    out.emplace_back(content, default_suite); // a bare mirror URL
    return out;
  }
  std::istringstream in(content + "\n\n");
  std::vector<std::string> uris;
  std::vector<std::string> suites;
  bool deb = false;
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos && line[first] == '#') {
      continue; // a comment line does not end a deb822 stanza
    }
    const auto trimmed = line.substr(0, line.find('#'));
    if (trimmed.find_first_not_of(" \t\r") == std::string::npos) {
      if (deb) {
        for (const auto& u : uris) {
          for (const auto& s : suites) {
            out.emplace_back(u, s);
          }
        }
      }
      uris.clear();
      suites.clear();
      deb = false;
      continue;
    }
    auto words = split_ws(trimmed);
    if (words[0] == "deb" && words.size() >= 3) { // one-line format
      size_t i = 1;
      if (words[i].rfind('[', 0) == 0) {
        while (i < words.size() && words[i].back() != ']') {
          ++i;
        }
        ++i;
      }
      if (i + 1 < words.size()) {
        out.emplace_back(words[i], words[i + 1]);
      }
    } else if (words[0] == "Types:") {
      deb = std::find(words.begin(), words.end(), "deb") != words.end();
    } else if (words[0] == "URIs:") {
      uris.assign(words.begin() + 1, words.end());
    } else if (words[0] == "Suites:") {
      suites.assign(words.begin() + 1, words.end());
    }
  }
  return out;
}

Expected<Plan> make_plan(const Cartridge& cartridge, Mode mode, OutputFormat format, const Resources& resources) {
  Plan plan;
  plan.cartridge = cartridge;
  plan.mode = mode;
  plan.format = format;
  plan.tool_version = k_tool_version;
  plan.disk_bytes = cartridge.base.size_bytes;

  // Base layer: shared by every cartridge on the same OS and mirror.
  auto& base = plan.base;
  base.os = cartridge.base.os.empty() ? std::string(default_os_release().name) : cartridge.base.os;
  const OsRelease* release = find_os_release(base.os);
  if (release == nullptr) {
    return fail(base.os, "unsupported base.os: supported: " + os_release_names(), ExitCode::bad_input);
  }
  base.suite = release->suite;
  if (!cartridge.base.image.empty()) {
    base.image = cartridge.base.image;
    base.os = "image";
    BI_TRY_ASSIGN(base.image_sha256, sha256_file(base.image));
  }
  base.firmware = cartridge.base.firmware;
  base.secure_boot = cartridge.base.secure_boot;
  base.packages = base_packages(*release);
  base.esp_packages = esp_packages(base.firmware);
  base.mirror = cartridge.base.mirror.empty() ? resources.apt_sources.string() : cartridge.base.mirror;
  const bool mirror_is_url = base.mirror.find("://") != std::string::npos;
  if (!mirror_is_url) {
    auto content = read_file(base.mirror);
    if (!content) {
      return fail(base.mirror,
                  "cannot read the apt sources for the base OS (set base.mirror): " + content.error().detail,
                  ExitCode::host_missing);
    }
    // A sources file names its suites: the host's (bookworm) ones become the release's. For
    // the file's own release this is the file unchanged, so its key is too.
    base.mirror_content = apt_sources_for_release(*content, *release);
    base.mirror_rewritten = base.mirror_content != *content;
  } else {
    base.mirror_content = base.mirror;
  }
  BI_TRY_ASSIGN(base.mirror_index, resolve_mirror_index(base, resources));
  {
    Hasher h;
    h.field("layer", "base");
    h.field("tool", k_tool_version);
    h.field("os", base.os);
    h.field("suite", base.suite);
    h.field("packages", join(base.packages, ","));
    h.field("esp_packages", join(base.esp_packages, ","));
    h.field("mirror", base.mirror_content);
    h.field("mirror_index", base.mirror_index);
    h.field("image", base.image_sha256);
    base.key = h.finish();
  }
  {
    Hasher h;
    h.field("layer", "bootloader");
    h.field("tool", k_tool_version);
    h.field("format", "ext4-4k");
    plan.bootloader_key = h.finish();
  }

  // System layer.
  auto& sys = plan.system;
  sys.mode = mode;
  sys.packages = cartridge.packages;
  if (cartridge.login.user != "root") {
    sys.packages.push_back("sudo"); // the login user's way to root (render_login_sudoers)
  }
  std::sort(sys.packages.begin(), sys.packages.end());
  sys.packages.erase(std::unique(sys.packages.begin(), sys.packages.end()), sys.packages.end());
  if (mode == Mode::full) {
    sys.puppet_classes = cartridge.dependent_apps;
    sys.puppet_classes.insert(sys.puppet_classes.end(), cartridge.server_apps.begin(), cartridge.server_apps.end());
    sys.puppet_dir = resources.puppet_dir;
    auto tree = hash_tree(resources.puppet_dir / "modules");
    if (!tree) {
      return fail(resources.puppet_dir.string(), "cannot read the Puppet modules: " + tree.error().detail,
                  ExitCode::host_missing);
    }
    sys.puppet_tree_sha256 = *tree;
    sys.agent_deb = resources.agent_deb;
    std::error_code ec;
    if (resources.agent_deb.empty() || !fs::is_regular_file(resources.agent_deb, ec)) {
      return fail(resources.agent_deb.empty() ? "cartridge-agent" : resources.agent_deb.string(),
                  "the cartridge agent package is missing (build the project with cmake, or set "
                  "BUILD_IMAGE_AGENT_DEB)",
                  ExitCode::host_missing);
    }
    BI_TRY_ASSIGN(sys.agent_deb_sha256, sha256_file(resources.agent_deb));
  }
  sys.needed = mode == Mode::full || !sys.packages.empty();
  {
    Hasher h;
    h.field("layer", "system");
    h.field("base", base.key);
    h.field("mode", to_string(mode));
    h.field("packages", join(sys.packages, ","));
    h.field("classes", join(sys.puppet_classes, ","));
    h.field("puppet", sys.puppet_tree_sha256);
    h.field("agent", sys.agent_deb_sha256);
    sys.key = sys.needed ? h.finish() : base.key;
  }

  // Overlay: everything cheap that changes often.
  auto& ov = plan.overlay;
  ov.push_back(inline_file("/etc/cartridge/cartridge.conf", render_cartridge_conf(cartridge, mode)));
  ov.push_back(inline_file("/etc/puppet/puppet.conf", render_puppet_conf(cartridge)));
  ov.push_back(inline_file("/etc/network/interfaces", k_network_interfaces));
  ov.push_back(inline_file("/etc/fstab", render_fstab(cartridge.base.firmware)));
  ov.push_back(inline_file("/etc/hosts", k_hosts));
  ov.push_back(inline_file("/etc/hostname", "localhost\n"));
  if (cartridge.login.user != "root") {
    ov.push_back(inline_file("/etc/sudoers.d/90-cartridge-login", render_login_sudoers(cartridge), 0440));
  }
  if (mode == Mode::full) {
    ov.push_back(inline_file("/etc/cartridge-agent/agent.conf", render_agent_conf(cartridge)));
  }
  BI_TRY(add_tree(ov, resources.init_scripts_dir / "sbin", "/usr/sbin", 0755));
  BI_TRY(add_tree(ov, resources.init_scripts_dir / "lib", "/usr/lib/cartridge", 0644));
  BI_TRY(add_tree(ov, resources.init_scripts_dir / "systemd", "/lib/systemd/system", 0644));
  BI_TRY(add_tree(ov, resources.init_scripts_dir / "systemd/ssh.service.d", "/lib/systemd/system/ssh.service.d", 0644));
  BI_TRY(add_tree(ov, resources.init_scripts_dir / "sshd_config.d", "/etc/ssh/sshd_config.d", 0644));
  for (const auto& o : ov) {
    if (o.dest.rfind("/lib/systemd/system/", 0) == 0 && o.dest.size() > 8 &&
        o.dest.compare(o.dest.size() - 8, 8, ".service") == 0) {
      plan.enable_units.push_back(fs::path(o.dest).filename().string());
    }
  }
  for (const auto& f : cartridge.files) {
    OverlayFile o;
    o.dest = f.dest;
    o.mode = f.mode;
    o.source = f.source;
    BI_TRY_ASSIGN(o.sha256, sha256_file(f.source));
    ov.push_back(std::move(o));
  }

  Hasher h;
  // Bump when assembly changes what an image contains from the same layers and overlay
  // (v2: inode ctimes/atimes pinned to SOURCE_DATE_EPOCH; v3: base.firmware layouts; v4:
  // no_timer_check on the kernel command line of extlinux.conf and the ESP's grub.cfg).
  h.field("image", "v4");
  h.field("firmware", plan.base.firmware);
  h.field("secure_boot", plan.base.secure_boot ? "true" : "false");
  h.field("system", sys.key);
  h.field("bootloader", plan.bootloader_key);
  h.field("disk", std::to_string(plan.disk_bytes));
  h.field("type", cartridge.type);
  // Assembly creates the account (its passwd, shadow, group lines and home).
  h.field("login_user", cartridge.login.user);
  for (const auto& o : ov) {
    h.field("overlay", fmt::format("{} {:o} {}", o.dest, o.mode, o.sha256));
  }
  for (const auto& u : plan.enable_units) {
    h.field("enable", u);
  }
  plan.inputs_key = h.finish();
  plan.image_name = fmt::format("{}-{}-{}", cartridge.type, to_string(mode), plan.inputs_key.substr(0, 12));

  // The build as a list of steps. The base OS and the bootloader need nothing; without
  // packages, agent or classes the system layer is the base layer.
  const std::string ext = to_string(format);
  plan.steps = {
      {"base-os",
       "base",
       base.key,
       {},
       base.image.empty() ? "root filesystem of " + base.os : "root filesystem of " + base.image.string(),
       false,
       ""},
      {"bootloader", "bootloader", plan.bootloader_key, {}, "ext4 boot partition with extlinux (disk.raw)", true, ""},
      {"system",
       "system",
       sys.key,
       {"base-os"},
       "root filesystem with the cartridge's packages and apps",
       false,
       sys.needed ? "" : "base-os"},
      {"assemble",
       "",
       "",
       {"system", "bootloader"},
       "raw disk (" + base.firmware + "): root layer + overlay + hygiene",
       false,
       ""},
      {"convert", "", "", {"assemble"}, ext + " image under a temporary name", false, ""},
      {"finalize", "", "", {"convert"}, plan.image_name + "." + ext + ", its manifest and catalog entry", false, ""},
  };
  return plan;
}

nlohmann::json PlanStep::to_json() const {
  return {{"kind", kind},         {"layer", layer}, {"key", key},        {"inputs", inputs},
          {"produces", produces}, {"early", early}, {"same_as", same_as}};
}

std::map<std::string, std::string> Plan::layer_keys() const {
  std::map<std::string, std::string> keys;
  for (const auto& s : steps) {
    if (!s.layer.empty()) {
      keys[s.layer] = s.key;
    }
  }
  return keys;
}

nlohmann::json Plan::to_json() const {
  using nlohmann::json;
  // The cartridge definition fields (`build-image cartridge-json`, register).
  auto stratos_json = [&] {
    json iaas_json = json::array();
    for (const auto& t : cartridge.iaas) {
      iaas_json.push_back({{"type", t.type}, {"region", t.region}, {"properties", t.properties}});
    }
    return json{{"display_name", cartridge.display_name}, {"description", cartridge.description},
                {"version", cartridge.version},           {"category", cartridge.category},
                {"provider", cartridge.provider},         {"host", cartridge.host},
                {"multi_tenant", cartridge.multi_tenant}, {"iaas", iaas_json}};
  };
  json steps_json = json::array();
  for (const auto& s : steps) {
    steps_json.push_back(s.to_json());
  }
  json overlay_json = json::array();
  // Ports are in the manifest for tools that act for the cloud, like boot-test's payload.
  json ports_json = json::array();
  for (const auto& p : cartridge.ports) {
    ports_json.push_back({{"name", p.name}, {"protocol", p.protocol}, {"port", p.port}, {"proxy_port", p.proxy_port}});
  }
  for (const auto& o : overlay) {
    overlay_json.push_back({{"dest", o.dest}, {"mode", fmt::format("{:04o}", o.mode)}, {"sha256", o.sha256}});
  }
  return json{
      {"cartridge", cartridge.type},
      {"file", cartridge.file.string()},
      {"mode", to_string(mode)},
      {"format", to_string(format)},
      {"tool_version", tool_version},
      {"image_name", image_name},
      {"inputs_key", inputs_key},
      {"disk_bytes", disk_bytes},
      {"layers",
       {{"base",
         {{"key", base.key},
          {"os", base.os},
          {"suite", base.suite},
          {"packages", base.packages},
          {"esp_packages", base.esp_packages},
          {"mirror", base.mirror},
          {"mirror_index", base.mirror_index},
          {"image", base.image.string()},
          {"image_sha256", base.image_sha256},
          {"firmware", base.firmware},
          {"secure_boot", base.secure_boot}}},
        {"bootloader", {{"key", bootloader_key}}},
        {"system",
         {{"key", system.key},
          {"shared_with_base", !system.needed},
          {"packages", system.packages},
          {"puppet_classes", system.puppet_classes},
          {"puppet_tree_sha256", system.puppet_tree_sha256},
          {"agent_deb_sha256", system.agent_deb_sha256}}}}},
      {"ports", ports_json},
      {"login", {{"user", cartridge.login.user}, {"ssh", cartridge.login.ssh}}},
      {"time", {{"ntp_servers", cartridge.ntp_servers}}},
      {"stratos", stratos_json()},
      {"overlay", overlay_json},
      {"enable_units", enable_units},
      {"steps", steps_json},
  };
}

} // namespace bi
