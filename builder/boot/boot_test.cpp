#include "boot/boot_test.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "boot/config_drive.hpp"
#include "boot/git_http_server.hpp"
#include "boot/libvirt_domain.hpp"
#include "boot/stratos_servers.hpp"
#include "cartridge/loader.hpp"
#include "guest/accel.hpp"
#include "image/catalog.hpp"
#include "image/manifest.hpp"
#include "net/http.hpp"
#include "util/did_you_mean.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/text.hpp"

namespace bi {

namespace {

using Clock = std::chrono::steady_clock;

// The addresses docs/image-contract.md promises a boot-test guest.
constexpr const char* k_guest_broker_ip = "10.0.2.100";
constexpr int k_guest_broker_port = 1883;
constexpr const char* k_guest_puppet_ip = "10.0.2.101";
constexpr const char* k_hostname_marker = "cartridge-init: hostname ";
constexpr const char* k_activated = "InstanceActivatedEvent";
// Stratos servers: the git server the ArtifactUpdatedEvent points the guest at.
constexpr const char* k_guest_git_ip = "10.0.2.104";
constexpr int k_guest_git_port = 80;
// The agent starts after cartridge-init has read the payload (its hostname line); under
// TCG that is minutes after power-on, so the minute is counted from that line (or from
// power-on when the line never comes, with a longer allowance).
constexpr auto k_broker_check_after = std::chrono::seconds(60);
constexpr auto k_broker_check_without_hostname = std::chrono::seconds(300);
constexpr auto k_cleanup_bound = std::chrono::seconds(180);

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) {
    return {};
  }
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  for (auto& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

// ^[A-Za-z_][A-Za-z0-9_]*$ (tests/data/payload/README.md, rule 4).
bool is_payload_key(std::string_view key) {
  const auto start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; };
  return !key.empty() && start(key.front()) && std::all_of(key.begin() + 1, key.end(), [&](char c) {
    return start(c) || std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

bool is_hostname_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

bool is_ipv4(const std::string& s) {
  static const std::regex re(R"(^[0-9]{1,3}(\.[0-9]{1,3}){3}$)");
  return std::regex_match(s, re);
}

std::string value_or(const PayloadFields& p, const std::string& key, const std::string& fallback) {
  auto it = p.find(key);
  return it == p.end() || it->second.empty() || it->second == "null" ? fallback : it->second;
}

std::string random_uuid() {
  std::random_device rd;
  std::array<unsigned, 16> b{};
  for (auto& x : b) {
    x = rd() & 0xffu;
  }
  b[6] = (b[6] & 0x0fu) | 0x40u; // version 4
  b[8] = (b[8] & 0x3fu) | 0x80u; // RFC 4122 variant
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", b[0],
      b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

std::string random_key(size_t n) {
  static const std::string_view chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += chars[rd() % chars.size()];
  }
  return out;
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string last_lines(const std::string& text, size_t n) {
  const std::string out = tail_lines(text, n);
  // The serial log carries terminal escapes and NULs from the boot; keep it printable.
  std::string clean;
  for (size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (c == '\x1b') {
      while (i < out.size() && !std::isalpha(static_cast<unsigned char>(out[i]))) {
        ++i;
      }
      continue;
    }
    if (c == '\n' || c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f)) {
      clean += c;
    }
  }
  return clean;
}

// The disk to boot and its manifest (none when a bare disk file without one is given).
struct BootImage {
  fs::path image;
  std::optional<Manifest> manifest;
};

std::vector<int> ports_from_manifest(const Manifest& m) {
  std::vector<int> ports = m.ports();
  if (!ports.empty() || m.plan.contains("ports")) {
    return ports;
  }
  // Manifests written before the plan recorded ports: the cartridge file, if still there.
  const std::string file = m.plan.value("file", "");
  std::error_code ec;
  if (!file.empty() && fs::is_regular_file(file, ec)) {
    auto loaded = load_cartridge(file);
    if (loaded.cartridge) {
      for (const auto& p : loaded.cartridge->ports) {
        ports.push_back(p.port);
      }
    }
  }
  return ports;
}

} // namespace

Expected<std::string> parse_boot_firmware(const std::string& text) {
  static const std::vector<std::string> kinds = {"bios", "uefi", "uefi-secure"};
  if (std::find(kinds.begin(), kinds.end(), text) == kinds.end()) {
    return fail(
        "", "invalid --firmware '" + text + "': expected bios, uefi or uefi-secure" + did_you_mean_suffix(text, kinds),
        ExitCode::bad_input);
  }
  return text;
}

Expected<std::string> choose_boot_firmware(const std::optional<std::string>& requested, const std::string& firmware,
                                           const std::string& image) {
  if (!requested) {
    return std::string(firmware == "uefi" ? "uefi" : "bios");
  }
  // uefi-secure needs no base.secure_boot: every EFI image's ESP holds the same signed shim
  // and GRUB and its kernel is Debian's signed one; base.secure_boot changes only what
  // registration asks of the cloud.
  if (*requested != "bios" && firmware == "bios") {
    return fail(image,
                "--firmware " + *requested +
                    " cannot start an image built with base.firmware bios (no EFI "
                    "system partition)",
                ExitCode::bad_input);
  }
  if (*requested == "bios" && firmware == "uefi") {
    return fail(image, "--firmware bios cannot start an image built with base.firmware uefi (no BIOS boot code)",
                ExitCode::bad_input);
  }
  return *requested;
}

std::optional<bool> secure_boot_from_console(const std::string& console) {
  if (console.find("secureboot: Secure boot enabled") != std::string::npos) {
    return true;
  }
  if (console.find("secureboot: Secure boot disabled") != std::string::npos) {
    return false;
  }
  return std::nullopt;
}

namespace {

Expected<BootImage> resolve_image(const BootTestOptions& o) {
  BootImage info;
  std::error_code ec;
  std::optional<fs::path> manifest;
  if (fs::is_regular_file(o.image, ec)) {
    info.image = fs::absolute(o.image).lexically_normal();
    fs::path m = info.image;
    m.replace_extension(".json");
    if (fs::is_regular_file(m, ec)) {
      manifest = m;
    }
  } else {
    BI_TRY_ASSIGN(fs::path m, find_manifest(o.output_dir, o.image));
    manifest = m;
  }
  if (manifest) {
    BI_TRY_ASSIGN(info.manifest, read_manifest(*manifest));
    if (info.image.empty()) {
      info.image = fs::absolute(manifest->parent_path() / info.manifest->file).lexically_normal();
      if (!fs::is_regular_file(info.image, ec)) {
        return fail(info.image.string(), "image named by " + manifest->string() + " does not exist",
                    ExitCode::bad_input);
      }
    }
  }
  return info;
}

// The user and group libvirt runs qemu as (qemu.conf, else Debian's build default).
std::pair<std::string, std::string> qemu_identity() {
  std::string user = "libvirt-qemu";
  std::string group = "libvirt-qemu";
  if (auto conf = read_file("/etc/libvirt/qemu.conf", 1u << 20)) {
    static const std::regex re(R"re(^\s*(user|group)\s*=\s*"([^"]*)")re");
    std::istringstream in(*conf);
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
      if (std::regex_search(line, m, re)) {
        (m[1] == "user" ? user : group) = m[2];
      }
    }
  }
  return {user, group};
}

// Whether qemu, running as libvirt's unprivileged user, can open `path` (the file and
// every directory above it).
bool readable_by_qemu(const fs::path& path) {
  const auto [user, group] = qemu_identity();
  if (user == "root" || user == "+0") {
    return true;
  }
  if (::getpwnam(user.c_str()) == nullptr) {
    return true; // libvirtd itself will refuse to run; it says so more precisely
  }
  auto r =
      run_process({"setpriv", "--reuid=" + user, "--regid=" + group, "--init-groups", "test", "-r", path.string()});
  return r && r->exit_code == 0;
}

struct ImageInfo {
  std::string format;
  std::uint64_t virtual_size = 0;
};

Expected<ImageInfo> image_info(const fs::path& image) {
  RunOptions ro;
  ro.timeout = std::chrono::seconds(60);
  // -U: the image may be open elsewhere (another test booting it); we only read the header.
  BI_TRY_ASSIGN(RunResult r, run_checked({"qemu-img", "info", "-U", "--output=json", image.string()}, ro));
  try {
    auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    return ImageInfo{j.at("format").get<std::string>(), j.at("virtual-size").get<std::uint64_t>()};
  } catch (const std::exception& e) {
    return fail(image.string(), std::string("cannot read the image format from qemu-img info: ") + e.what());
  }
}

// ---- SSH through the host forward

// The ESP's mount last: findmnt fails when nothing is mounted there, which is a finding, not
// a failed login.
constexpr const char* k_ssh_command = "id -un; df -B1 --output=size / | tail -n 1; stat -c '%a %U' "
                                      "~/.ssh/authorized_keys && { findmnt -n -o FSTYPE /boot/efi || echo none; }";
constexpr auto k_ssh_bound = std::chrono::seconds(120);

std::vector<std::string> ssh_argv(int port, const std::vector<std::string>& extra) {
  // -F /dev/null: the caller's ssh config must not change what is tested; the guest's host
  // key is new on every boot, so it is neither checked nor remembered.
  std::vector<std::string> argv = {"ssh",
                                   "-F",
                                   "/dev/null",
                                   "-p",
                                   std::to_string(port),
                                   "-o",
                                   "BatchMode=yes",
                                   "-o",
                                   "StrictHostKeyChecking=no",
                                   "-o",
                                   "UserKnownHostsFile=/dev/null",
                                   "-o",
                                   "ConnectTimeout=15",
                                   "-o",
                                   "LogLevel=ERROR"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// Host keys, login with the key pair, and a password attempt; sshd may still be starting
// after the login prompt, so each is retried until `until`.
SshReport check_ssh(const fs::path& public_key, const std::string& user, int port, const fs::path& work,
                    Clock::time_point until) {
  SshReport r;
  r.user = user;
  r.port = port;
  RunOptions ro;
  ro.timeout = std::chrono::seconds(30);
  const fs::path scanned = work / "host-keys";
  const auto scan = [&](const std::string& type) -> std::vector<std::string> {
    RunOptions to_file = ro;
    to_file.stdout_file = scanned.string();
    auto keys = run_process({"ssh-keyscan", "-T", "20", "-t", type, "-p", std::to_string(port), "127.0.0.1"}, to_file);
    if (!keys || !keys->ok()) {
      return {};
    }
    auto listed = run_process({"ssh-keygen", "-l", "-f", scanned.string()}, ro);
    return listed && listed->ok() ? parse_fingerprints(listed->output) : std::vector<std::string>{};
  };
  // One type at a time: asked for all at once, ssh-keyscan's parallel connections to a
  // guest under TCG sometimes lost one (an ed25519 key missing from one run of two).
  std::set<std::string> missing = {"rsa", "ecdsa", "ed25519"};
  int rounds_with_keys = 0;
  while (!missing.empty() && Clock::now() < until && !interrupted() && rounds_with_keys < 3) {
    for (auto it = missing.begin(); it != missing.end();) {
      auto found = scan(*it);
      r.host_keys.insert(r.host_keys.end(), found.begin(), found.end());
      it = found.empty() ? std::next(it) : missing.erase(it);
    }
    rounds_with_keys += r.host_keys.empty() ? 0 : 1;
    if (!missing.empty()) {
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  std::sort(r.host_keys.begin(), r.host_keys.end());
  const std::string pub = public_key.string();
  const fs::path private_key = pub.size() > 4 && pub.compare(pub.size() - 4, 4, ".pub") == 0
                                   ? fs::path(pub.substr(0, pub.size() - 4))
                                   : fs::path();
  std::error_code ec;
  r.login_tried = !private_key.empty() && fs::is_regular_file(private_key, ec);
  if (r.login_tried) {
    r.command = k_ssh_command;
    for (;;) {
      auto login = run_process(
          ssh_argv(port, {"-o", "IdentitiesOnly=yes", "-i", private_key.string(), user + "@127.0.0.1", r.command}), ro);
      r.output = login ? login->output : login.error().to_string();
      r.logged_in = login && login->ok();
      if (r.logged_in || Clock::now() >= until || interrupted()) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    if (r.logged_in) {
      std::istringstream lines(r.output);
      std::string who;
      std::string size;
      std::getline(lines, who);
      std::getline(lines, size);
      std::getline(lines, r.authorized_keys);
      std::getline(lines, r.boot_efi);
      r.boot_efi = trim(r.boot_efi);
      size = trim(size);
      if (!size.empty() && size.size() < 20 && size.find_first_not_of("0123456789") == std::string::npos) {
        r.root_fs_bytes = std::stoull(size);
      }
      r.authorized_keys = trim(r.authorized_keys);
    }
  }
  if (!r.host_keys.empty()) {
    auto password = run_process(ssh_argv(port, {"-o", "PreferredAuthentications=password,keyboard-interactive", "-o",
                                                "PubkeyAuthentication=no", user + "@127.0.0.1", "true"}),
                                ro);
    static const std::regex denied(R"(Permission denied \(([^)]*)\))");
    std::smatch m;
    if (password && std::regex_search(password->output, m, denied)) {
      r.auth_methods = m[1].str();
      r.password_refused = r.auth_methods.find("password") == std::string::npos &&
                           r.auth_methods.find("keyboard-interactive") == std::string::npos;
    } else if (password) {
      r.password_refused = false; // it let us in without a password, or said something else
      r.auth_methods = trim(last_lines(password->output, 2));
    }
  }
  return r;
}

// Why the SSH report fails the test ("" when it does not).
std::string ssh_problem(const SshReport& r) {
  if (r.host_keys.empty()) {
    return fmt::format("no SSH host key from the guest's port 22 (ssh-keyscan 127.0.0.1:{})", r.port);
  }
  if (r.login_tried && !r.logged_in) {
    return fmt::format("SSH login as {} with the key pair through 127.0.0.1:{} failed: {}", r.user, r.port,
                       trim(last_lines(r.output, 3)));
  }
  if (r.password_refused && !*r.password_refused) {
    return "sshd did not refuse password login (" + r.auth_methods + ")";
  }
  return {};
}

// Accumulates the serial log as the guest writes it.
class ConsoleReader {
public:
  explicit ConsoleReader(fs::path path) : m_path(std::move(path)) {}
  // Returns the offset where the new text starts.
  size_t poll() {
    const size_t before = m_text.size();
    std::ifstream f(m_path, std::ios::binary);
    if (!f || m_text.size() >= k_max_bytes) {
      return before;
    }
    f.seekg(static_cast<std::streamoff>(m_offset));
    std::string chunk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    m_offset += chunk.size();
    m_text += chunk;
    return before;
  }
  const std::string& text() const { return m_text; }

private:
  static constexpr size_t k_max_bytes = 32u << 20;
  fs::path m_path;
  std::uintmax_t m_offset = 0;
  std::string m_text;
};

fs::path kept_log_path(const fs::path& image) {
  fs::path p = image;
  p.replace_extension(".boot-test.log");
  return p;
}

// Copies the serial log next to the image (or to /var/tmp when that folder is read-only).
fs::path keep_console_log(const fs::path& console, const fs::path& image) {
  std::error_code ec;
  for (const fs::path& dest : {kept_log_path(image), fs::path("/var/tmp") / kept_log_path(image).filename()}) {
    fs::copy_file(console, dest, fs::copy_options::overwrite_existing, ec);
    if (!ec) {
      ::chmod(dest.c_str(), 0644);
      return dest;
    }
    spdlog::warn("cannot keep the console log as {}: {}", dest.string(), ec.message());
  }
  return {};
}

// cartridge-init's growth outcome: "cartridge-init: grew / from ..." or a growroot: line.
std::string find_growth_line(const std::string& console) {
  for (const char* marker : {"cartridge-init: grew / from ", "cartridge-init: growroot: "}) {
    const auto at = console.find(marker);
    const auto end = at == std::string::npos ? at : console.find('\n', at);
    if (end != std::string::npos) {
      return trim(console.substr(at, end - at));
    }
  }
  return {};
}

std::string describe_events(const std::vector<StatusEvent>& events) {
  if (events.empty()) {
    return "no instance/status event reached the broker";
  }
  std::string out = "events seen:";
  for (const auto& e : events) {
    out += fmt::format(" {} at {:.1f} s{};", e.name, e.seconds,
                       e.for_member ? "" : " (memberId " + (e.member_id.empty() ? "missing" : e.member_id) + ")");
  }
  out.pop_back();
  return out;
}

} // namespace

// ---- payload

PayloadFields parse_payload(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) {
    text.remove_prefix(3);
  }
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    std::string line = trim(text.substr(pos, end - pos));
    if (!line.empty()) {
      lines.push_back(std::move(line));
    }
    pos = end + 1;
  }
  std::vector<std::string> fields;
  if (lines.size() == 1) {
    std::string_view line = lines[0];
    size_t start = 0;
    for (;;) {
      const size_t comma = line.find(',', start);
      fields.emplace_back(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (comma == std::string_view::npos) {
        break;
      }
      start = comma + 1;
    }
  } else {
    fields = lines;
  }
  PayloadFields out;
  for (const auto& f : fields) {
    const auto eq = f.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    std::string key = trim(std::string_view(f).substr(0, eq));
    if (!is_payload_key(key)) {
      continue;
    }
    std::string value = trim(std::string_view(f).substr(eq + 1));
    // Stratos writes `null` (and an empty value for lists) for what is unset; a later
    // unset value hides an earlier one.
    if (value.empty() || value == "null") {
      out.erase(key);
    } else {
      out[key] = std::move(value);
    }
  }
  return out;
}

std::string make_default_payload(const DefaultPayloadInput& in) {
  const std::string& t = in.service_name;
  std::string ports;
  for (int p : in.ports) {
    append_separated(ports, "|", std::to_string(p));
  }
  const std::string cluster = "boot-test." + t + ".domain";
  std::vector<std::pair<std::string, std::string>> f = {
      {"APPLICATION_ID", "boot-test"},
      {"GROUP_NAME", "null"},
      {"SERVICE_NAME", t},
      {"HOST_NAME", "boot-test." + t + ".stratos.test"},
      {"MULTITENANT", "false"},
      {"TENANT_ID", "-1234"},
      {"TENANT_RANGE", "*"},
      {"CARTRIDGE_ALIAS", t},
      {"CLUSTER_ID", cluster},
      {"CARTRIDGE_KEY", in.cartridge_key},
      {"DEPLOYMENT", "default"},
  };
  // Without PORTS the agent falls back to the ports in the image's agent.conf.
  if (!ports.empty()) {
    f.emplace_back("PORTS", ports);
  }
  const std::vector<std::pair<std::string, std::string>> tail = {
      {"PUPPET_IP", k_guest_puppet_ip},
      {"PUPPET_HOSTNAME", "puppet.test"},
      {"PUPPET_DNS_AVAILABLE", "false"},
      {"MEMBER_ID", cluster + in.uuid},
      {"CLUSTER_INSTANCE_ID", "boot-test-1"},
      {"NETWORK_PARTITION_ID", "np-1"},
      {"PARTITION_ID", "p-1"},
      {"INTERNAL", "false"},
      {"MB_IP", k_guest_broker_ip},
      {"MB_PORT", std::to_string(k_guest_broker_port)},
  };
  f.insert(f.end(), tail.begin(), tail.end());
  std::string out;
  for (const auto& [k, v] : f) {
    append_separated(out, ",", std::string(k).append("=").append(v));
  }
  return out;
}

Expected<BootTestOptions::Until> parse_until(const std::string& text) {
  if (text == "login") {
    return BootTestOptions::Until::login;
  }
  if (text == "activated") {
    return BootTestOptions::Until::activated;
  }
  if (text == "shutdown") {
    return BootTestOptions::Until::shutdown;
  }
  return Unexpected{
      make_error("", "invalid --until '" + text + "': expected login, activated or shutdown", ExitCode::bad_input)};
}

Expected<std::uint64_t> parse_disk_size(const std::string& text) {
  const std::uint64_t bytes = parse_size(text);
  if (bytes == 0) {
    return Unexpected{
        make_error("", "invalid --disk-size '" + text + "': expected a size like 6G or 8GiB", ExitCode::bad_input)};
  }
  if (bytes < (1ull << 30) || bytes > (2048ull << 30)) {
    return Unexpected{make_error("", "invalid --disk-size '" + text + "': expected 1G to 2T", ExitCode::bad_input)};
  }
  return bytes;
}

Expected<std::string> read_public_key(const fs::path& file) {
  auto text = read_file(file, 16u << 10);
  if (!text) {
    return fail(file.string(), text.error().detail + " (--ssh-key)", ExitCode::bad_input);
  }
  const std::string key = trim(*text);
  // The same shape cartridge-init accepts (CI_SSH_KEY_RE): a type, base64, an optional comment.
  static const std::regex re(
      R"(^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [ -~]*)?$)");
  if (key.find('\n') != std::string::npos || !std::regex_match(key, re)) {
    return fail(file.string(), "not one OpenSSH public key line (--ssh-key takes the .pub file)", ExitCode::bad_input);
  }
  return key;
}

std::vector<std::string> parse_fingerprints(const std::string& keygen_output) {
  std::vector<std::string> out;
  std::istringstream in(keygen_output);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string bits;
    std::string fingerprint;
    words >> bits >> fingerprint;
    const auto open = line.rfind(" (");
    if (fingerprint.rfind("SHA256:", 0) != 0 || open == std::string::npos || line.back() != ')') {
      continue;
    }
    out.push_back(fingerprint + line.substr(open));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string add_payload_fields(const std::string& payload,
                               const std::vector<std::pair<std::string, std::string>>& fields) {
  const std::string body = trim(payload);
  // parse_payload reads several lines as one field each, a single line as comma-separated.
  const bool per_line = body.find('\n') != std::string::npos;
  std::string out = body;
  for (const auto& [k, v] : fields) {
    out.append(per_line ? "\n" : ",").append(k).append("=").append(v);
  }
  return out + (per_line ? "\n" : "");
}

// ---- what the guest reports

std::string hostname_pattern(const PayloadFields& payload) {
  // cartridge-init lower-cases each part and falls back to these defaults.
  const std::string deployment = lower(value_or(payload, "DEPLOYMENT", "default"));
  const std::string service = lower(value_or(payload, "SERVICE_NAME", "unknown"));
  const std::string puppet = lower(value_or(payload, "PUPPET_HOSTNAME", ""));
  // Without a usable Puppet host name the domain comes from the image's cartridge.conf.
  const std::string domain = puppet.empty() || is_ipv4(puppet) ? "[a-z0-9.-]+" : regex_escape(puppet);
  return "^[0-9]+\\." + regex_escape(deployment) + "\\." + regex_escape(service) + "\\." + domain + "$";
}

bool hostname_matches(const std::string& hostname, const std::string& pattern) {
  try {
    return std::regex_match(hostname, std::regex(pattern));
  } catch (const std::regex_error&) {
    return false;
  }
}

std::optional<std::string> find_chosen_hostname(std::string_view console) {
  std::optional<std::string> found;
  const std::string_view marker = k_hostname_marker;
  size_t pos = 0;
  while ((pos = console.find(marker, pos)) != std::string_view::npos) {
    pos += marker.size();
    size_t end = console.find('\n', pos);
    if (end == std::string_view::npos) {
      break; // the line is still being written
    }
    const std::string rest = trim(console.substr(pos, end - pos));
    // Only "hostname <fqdn>" itself: other lines start with the same words.
    if (!rest.empty() && std::all_of(rest.begin(), rest.end(), is_hostname_char)) {
      found = rest;
    }
    pos = end;
  }
  return found;
}

// The line that says the kernel or initramfs gave up ("" while booting goes on).
std::string find_boot_failure(std::string_view console) {
  for (const char* marker : {"ALERT! ", "Kernel panic - not syncing"}) {
    const auto at = console.find(marker);
    const auto end = at == std::string::npos ? at : console.find('\n', at);
    if (end != std::string::npos) {
      return trim(console.substr(at, end - at));
    }
  }
  return {};
}

StatusEvent decode_status_event(const BrokerMessage& message, const std::string& member_id,
                                std::chrono::steady_clock::time_point power_on) {
  StatusEvent e;
  e.topic = message.topic;
  e.name = message.topic.substr(message.topic.rfind('/') + 1);
  e.seconds = seconds_between(power_on, message.received);
  e.body = nlohmann::json::parse(message.payload, nullptr, false);
  if (e.body.is_discarded()) {
    e.body = nullptr;
  }
  if (e.body.is_object()) {
    if (auto it = e.body.find("memberId"); it != e.body.end() && it->is_string()) {
      e.member_id = it->get<std::string>();
    }
    if (auto it = e.body.find("clusterId"); it != e.body.end() && it->is_string()) {
      e.cluster_id = it->get<std::string>();
    }
  }
  e.for_member = !member_id.empty() && e.member_id == member_id;
  return e;
}

bool is_activation_of(const StatusEvent& event) { return event.for_member && event.name == k_activated; }

// ---- reporting

nlohmann::json BootTestResult::to_json() const {
  nlohmann::json events_json = nlohmann::json::array();
  for (const auto& e : events) {
    events_json.push_back({{"event", e.name},
                           {"topic", e.topic},
                           {"seconds", e.seconds},
                           {"member_id", e.member_id},
                           {"cluster_id", e.cluster_id},
                           {"for_member", e.for_member},
                           {"body", e.body}});
  }
  const auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json j = {
      {"passed", passed},
      {"reason", reason},
      {"image", image.string()},
      {"accelerator", accelerator},
      {"firmware", firmware},
      {"guest_secure_boot", guest_secure_boot ? nlohmann::json(*guest_secure_boot) : nlohmann::json(nullptr)},
      {"domain", domain},
      {"broker", broker},
      {"member_id", member_id},
      {"cluster_id", cluster_id},
      {"hostname", hostname},
      {"hostname_pattern", hostname_pattern},
      {"hostname_matches", hostname_ok},
      {"events", events_json},
      {"boot_to_login_seconds", opt(login_seconds)},
      {"boot_to_activated_seconds", opt(activated_seconds)},
      {"setup_seconds", setup_seconds},
      {"total_seconds", total_seconds},
      {"console_log", console_log.string()},
  };
  nlohmann::json exchange_json = nlohmann::json::array();
  for (const auto& e : exchange) {
    exchange_json.push_back(
        {{"direction", e.sent ? "sent" : "received"}, {"topic", e.topic}, {"event", e.name}, {"seconds", e.seconds}});
  }
  j["stratos_messages"] = exchange_json;
  j["notes"] = notes;
  j["http_status"] = http_status ? nlohmann::json(*http_status) : nlohmann::json(nullptr);
  j["http_body_bytes"] = http_body_bytes ? nlohmann::json(*http_body_bytes) : nlohmann::json(nullptr);
  j["boot_to_shutdown_ready_seconds"] = opt(shutdown_seconds);
  j["disk"] = {{"bus", disk_bus}, {"bytes", disk_bytes}, {"image_bytes", image_bytes}, {"root_growth", root_growth}};
  if (ssh) {
    j["ssh"] = {
        {"user", ssh->user},
        {"port", ssh->port},
        {"host_keys", ssh->host_keys},
        {"login_tried", ssh->login_tried},
        {"logged_in", ssh->logged_in},
        {"command", ssh->command},
        {"output", ssh->output},
        {"root_fs_bytes", ssh->root_fs_bytes ? nlohmann::json(*ssh->root_fs_bytes) : nlohmann::json(nullptr)},
        {"authorized_keys", ssh->authorized_keys},
        {"boot_efi", ssh->boot_efi},
        {"password_refused", ssh->password_refused ? nlohmann::json(*ssh->password_refused) : nlohmann::json(nullptr)},
        {"auth_methods", ssh->auth_methods}};
  } else {
    j["ssh"] = nullptr;
  }
  if (!passed) {
    j["console_tail"] = console_tail;
  }
  return j;
}

std::string BootTestResult::to_text() const {
  std::string out = fmt::format("boot-test {}: {} ({})\n", passed ? "PASSED" : "FAILED", image.string(), accelerator);
  out += fmt::format("  firmware        {}{}\n", firmware,
                     !guest_secure_boot   ? ""
                     : *guest_secure_boot ? ", guest: Secure Boot on"
                                          : ", guest: Secure Boot off");
  if (!passed) {
    out += fmt::format("  reason          {}\n", reason);
  }
  out += fmt::format("  member          {}\n", member_id);
  out += fmt::format("  hostname        {}\n",
                     hostname.empty()
                         ? "(not seen)"
                         : hostname + (hostname_ok ? " (matches " : " (does NOT match ") + hostname_pattern + ")");
  out += "  events          (seconds since power-on)\n";
  for (const auto& e : events) {
    out += fmt::format("    {:7.1f} s  {:<26} {}\n", e.seconds, e.name,
                       e.for_member ? "this member" : "other member " + e.member_id);
  }
  if (events.empty()) {
    out += "    (none)\n";
  }
  if (!exchange.empty()) {
    out += "  stratos         (seconds since power-on; > sent by boot-test, < received)\n";
    for (const auto& e : exchange) {
      out += fmt::format("    {:7.1f} s  {} {}\n", e.seconds, e.sent ? ">" : "<", e.topic);
    }
  }
  const auto secs = [](const std::optional<double>& v) { return v ? fmt::format("{:.1f} s", *v) : "not seen"; };
  out += fmt::format("  boot to login   {}\n", secs(login_seconds));
  out += fmt::format("  boot to active  {}\n", secs(activated_seconds));
  if (http_status) {
    out += fmt::format("  GET /           HTTP {}, {} bytes\n", *http_status, http_body_bytes.value_or(0));
  }
  if (shutdown_seconds) {
    out += fmt::format("  boot to ready-to-shutdown {}\n", secs(shutdown_seconds));
  }
  out += fmt::format("  disk            {}, {} bytes (image {}){}\n", disk_bus, disk_bytes, image_bytes,
                     root_growth.empty() ? "" : "; " + root_growth);
  if (ssh) {
    out += fmt::format("  ssh             {}@127.0.0.1:{}: {}\n", ssh->user, ssh->port,
                       !ssh->login_tried ? "login not tried (no private key beside the .pub)"
                       : ssh->logged_in  ? "logged in, ran a command"
                                         : "login FAILED");
    if (ssh->root_fs_bytes) {
      out += fmt::format("  root fs         {} bytes\n", *ssh->root_fs_bytes);
    }
    if (!ssh->boot_efi.empty()) {
      out += fmt::format("  /boot/efi       {}\n", ssh->boot_efi);
    }
    if (ssh->password_refused) {
      out += fmt::format("  password login  {} (server offers: {})\n",
                         *ssh->password_refused ? "refused" : "NOT refused", ssh->auth_methods);
    }
    for (const auto& k : ssh->host_keys) {
      out += "  host key        " + k + "\n";
    }
  }
  for (const auto& n : notes) {
    out += "  note            " + n + "\n";
  }
  out += fmt::format("  console log     {}\n", console_log.empty() ? "(not kept)" : console_log.string());
  if (!passed && !console_tail.empty()) {
    out += "  last console lines:\n";
    std::istringstream in(console_tail);
    std::string line;
    while (std::getline(in, line)) {
      out += "    | " + line + "\n";
    }
  }
  return out;
}

// ---- guest forwards

// A `tcp:` chardev target is ONE host connection for the VM's lifetime: every guest
// connection shares its byte stream, and once the server closes it (HTTP with
// Connection: close, an idle timeout) the address is dead. A Puppet master or an apt
// repository needs a host connection per guest connection, and so does the broker (an agent
// that starts late finds the single connection closed; one that reconnects needs a new
// one), so every target is `cmd:`, which
// libslirp spawns per connection (argv split like a shell; no commas, which the -netdev
// string would need doubled): bash's /dev/tcp relays stdin/stdout to the loopback port.
std::string GuestForward::to_guestfwd() const {
  return fmt::format("tcp:{}:{}-cmd:/bin/bash -c 'exec 3<>/dev/tcp/{}/{}; cat <&3 & cat >&3'", guest_ip, guest_port,
                     host, host_port);
}

Expected<GuestForward> parse_guest_forward(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Unexpected{
        make_error("", fmt::format("invalid --forward '{}': {} (expected GUEST_IP:PORT=HOST_PORT)", text, why),
                   ExitCode::bad_input)};
  };
  static const std::regex re(R"(^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3}):([0-9]{1,5})=([0-9]{1,5})$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    return bad("not of the form");
  }
  for (int i = 1; i <= 4; ++i) {
    if (std::stoi(m[i].str()) > 255) {
      return bad("not an IPv4 address");
    }
  }
  GuestForward f;
  f.guest_ip = fmt::format("{}.{}.{}.{}", m[1].str(), m[2].str(), m[3].str(), m[4].str());
  f.guest_port = std::stoi(m[5].str());
  f.host_port = std::stoi(m[6].str());
  if (f.guest_port < 1 || f.guest_port > 65535 || f.host_port < 1 || f.host_port > 65535) {
    return bad("ports are 1 to 65535");
  }
  if (f.guest_ip == k_guest_broker_ip && f.guest_port == k_guest_broker_port) {
    return bad("the broker's address is forwarded already");
  }
  return f;
}

// ---- running it: named phases, in the order run_boot_test calls them

namespace {

// --until, or its default: after the cleanup handshake when playing the Stratos servers.
BootTestOptions::Until effective_until(const BootTestOptions& o) {
  return o.until.value_or(o.stratos ? BootTestOptions::Until::shutdown : BootTestOptions::Until::activated);
}

// The payload the guest gets: the user's file or one made for the image's cartridge.
Expected<std::string> read_or_make_payload(const BootTestOptions& o, const BootImage& info, const std::string& uuid) {
  if (o.payload_file) {
    auto text = read_file(*o.payload_file, 1u << 20);
    if (!text) {
      return fail(o.payload_file->string(), text.error().detail + " (--payload)", ExitCode::bad_input);
    }
    if (trim(*text).empty()) {
      return fail(o.payload_file->string(), "payload file is empty", ExitCode::bad_input);
    }
    return std::move(*text);
  }
  if (!info.manifest || info.manifest->cartridge.empty()) {
    return fail(info.image.string(),
                "no manifest beside the image, so its cartridge type is unknown; "
                "give a payload with --payload FILE",
                ExitCode::bad_input);
  }
  return make_default_payload({info.manifest->cartridge, ports_from_manifest(*info.manifest), uuid, random_key(16)});
}

std::string git_guest_url() { return fmt::format("http://{}{}", k_guest_git_ip, GitHttpServer::path()); }

// What the guest needs to reach boot-test's broker and git server. A real Stratos payload
// has no MB_IP (the broker is in agent.conf), and the image's default broker is nothing
// inside the guest; each addition is noted in the result.
std::string complete_payload_for_guest(const std::string& payload, const BootTestOptions& o,
                                       std::vector<std::string>& notes) {
  const PayloadFields given = parse_payload(payload);
  std::vector<std::pair<std::string, std::string>> added;
  const bool no_broker = value_or(given, "MB_IP", "").empty();
  if (no_broker) {
    added.emplace_back("MB_IP", k_guest_broker_ip);
    if (value_or(given, "MB_PORT", "").empty()) {
      added.emplace_back("MB_PORT", std::to_string(k_guest_broker_port));
    }
  }
  if (o.app_repo && value_or(given, "CARTRIDGE_KEY", "").empty()) {
    added.emplace_back("CARTRIDGE_KEY", random_key(16));
  }
  if (o.app_repo && value_or(given, "REPO_URL", "").empty()) {
    added.emplace_back("REPO_URL", git_guest_url());
  }
  if (added.empty()) {
    return payload;
  }
  std::string keys;
  for (const auto& [k, v] : added) {
    append_separated(keys, ", ", k + (k == "CARTRIDGE_KEY" ? "" : "=" + v));
  }
  notes.push_back((no_broker ? "the payload has no MB_IP: " : "") + std::string("boot-test added ") + keys +
                  " to the payload on the config drive");
  return add_payload_fields(payload, added);
}

// The payload's fields boot-test relies on, checked before anything boots (bad input).
Expected<void> check_payload_fields(const PayloadFields& fields, const BootTestOptions& o, BootTestResult& result) {
  if (o.app_repo) {
    BI_TRY(encrypt_repo_password("", value_or(fields, "CARTRIDGE_KEY", "")));
  }
  result.member_id = value_or(fields, "MEMBER_ID", "");
  result.cluster_id = value_or(fields, "CLUSTER_ID", "");
  if (result.member_id.empty()) {
    return fail(o.payload_file ? o.payload_file->string() : "payload",
                "no MEMBER_ID: the InstanceActivatedEvent cannot be matched to this instance", ExitCode::bad_input);
  }
  if (value_or(fields, "MB_IP", k_guest_broker_ip) != k_guest_broker_ip ||
      value_or(fields, "MB_PORT", std::to_string(k_guest_broker_port)) != std::to_string(k_guest_broker_port)) {
    spdlog::warn("the payload's MB_IP/MB_PORT are not {}:{}, the only broker address the guest can reach",
                 k_guest_broker_ip, k_guest_broker_port);
  }
  result.hostname_pattern = hostname_pattern(fields);
  return {};
}

Expected<void> require_host_tools() {
  for (const char* tool : {"qemu-img", "xorriso", "qemu-system-x86_64", "setpriv"}) {
    if (!program_available(tool)) {
      return fail(tool, "not installed (see scripts/install-deps)", ExitCode::host_missing);
    }
  }
  return {};
}

struct GuestDisk {
  fs::path backing; // the image, or a private copy qemu's user can read
  fs::path overlay; // throwaway qcow2 on top: the image itself is never written
};

// Everything qemu touches lives in `run_dir`, which its unprivileged user can traverse;
// the files are 0600 and libvirt hands them to that user for the run. With --disk-size the
// overlay is that larger disk (a flavour's or a volume's): / must grow into it.
Expected<GuestDisk> prepare_guest_disk(const fs::path& image, const fs::path& run_dir, const BootTestOptions& o,
                                       BootTestResult& result) {
  GuestDisk disk{image, run_dir / "overlay.qcow2"};
  if (!readable_by_qemu(image)) {
    // Relabelling the user's image would change its owner for good; a private copy is safer.
    spdlog::info("{} is not readable by libvirt's qemu user; booting a private copy", image.string());
    disk.backing = run_dir / ("image" + image.extension().string());
    BI_TRY(run_checked({"cp", "--sparse=always", "--reflink=auto", image.string(), disk.backing.string()}));
    ::chmod(disk.backing.c_str(), 0644);
  }
  BI_TRY_ASSIGN(ImageInfo info, image_info(disk.backing));
  result.image_bytes = info.virtual_size;
  result.disk_bytes = o.disk_bytes.value_or(info.virtual_size);
  result.disk_bus = to_string(o.disk_bus);
  if (result.disk_bytes < info.virtual_size) {
    return fail(
        image.string(),
        fmt::format("--disk-size {} is smaller than the image ({} bytes)", result.disk_bytes, info.virtual_size),
        ExitCode::bad_input);
  }
  BI_TRY(run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", disk.backing.string(), "-F", info.format,
                      disk.overlay.string(), std::to_string(result.disk_bytes)}));
  ::chmod(disk.overlay.c_str(), 0600);
  if (o.disk_bus == DiskBus::nvme) {
    // Passed to qemu behind libvirt's back (libvirt 9.0 has no NVMe disk), so libvirt does
    // not hand it to its qemu user: done here.
    const auto [qemu_user, qemu_group] = qemu_identity();
    if (const passwd* pw = ::getpwnam(qemu_user.c_str()); pw != nullptr) {
      if (::chown(disk.overlay.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        return fail(disk.overlay.string(), "cannot hand the NVMe disk to " + qemu_user);
      }
    }
  }
  return disk;
}

// The host side of the run: the broker, boot-test's recorder of the instance's status
// events, the Stratos servers and (with --app-repo) the git server behind the artifact.
struct HostServices {
  std::optional<MosquittoBroker> own_broker;
  BrokerAddress broker;
  std::unique_ptr<EventRecorder> recorder;
  std::unique_ptr<GitHttpServer> git;
  std::unique_ptr<StratosServers> servers;
  std::vector<std::string> own_clients; // boot-test's own MQTT client ids
};

Expected<HostServices> start_host_services(const BootTestOptions& o, const PayloadFields& fields,
                                           const fs::path& run_dir) {
  HostServices h;
  if (o.broker) {
    h.broker = *o.broker;
  } else {
    BI_TRY_ASSIGN(MosquittoBroker b, MosquittoBroker::start(run_dir));
    h.broker = b.address();
    h.own_broker.emplace(std::move(b));
  }
  BI_TRY_ASSIGN(h.recorder, EventRecorder::connect(h.broker, "instance/status/#", std::chrono::seconds(15)));
  StratosServersOptions stratos;
  stratos.payload = fields;
  stratos.answer = o.stratos;
  if (o.app_repo && o.stratos) {
    const std::string user = "boot-" + random_key(8);
    const std::string password = random_key(24);
    BI_TRY_ASSIGN(h.git, GitHttpServer::start(*o.app_repo, user, password, run_dir));
    stratos.artifact = ArtifactSource{git_guest_url(), user, password};
  }
  BI_TRY_ASSIGN(h.servers, StratosServers::connect(h.broker, stratos, std::chrono::seconds(15)));
  h.own_clients = {h.recorder->client_id(), h.servers->client_id()};
  return h;
}

// The guest's web port: the payload's first PORTS entry, else 80.
int web_guest_port(const PayloadFields& fields) {
  const std::string ports = value_or(fields, "PORTS", "");
  const std::string first = ports.substr(0, ports.find('|'));
  if (!first.empty() && first.size() <= 5 && first.find_first_not_of("0123456789") == std::string::npos) {
    return std::stoi(first);
  }
  return 80;
}

struct DomainInputs {
  std::string uuid;
  bool kvm = false;
  GuestDisk disk;
  fs::path config_drive;
  fs::path console_log;
  std::string firmware; // bios | uefi | uefi-secure
  fs::path nvram;       // the per-run copy of the UEFI variables
  const BootTestOptions* options = nullptr;
  const HostServices* services = nullptr;
  int web_host_port = 0;
  int web_guest_port = 80;
  int ssh_host_port = 0; // with --ssh-key: the host's forward to the guest's port 22
};

// The domain: the overlay and config drive, the guest's forwards to the broker, the git
// server and --forward's services, and the host's forward to the guest's web port.
DomainSpec make_domain_spec(const DomainInputs& in) {
  DomainSpec spec;
  spec.name = "build-image-boot-" + in.uuid.substr(0, 8);
  spec.uuid = in.uuid;
  spec.kvm = in.kvm;
  spec.disk = in.disk.overlay;
  spec.disk_bus = in.options->disk_bus;
  spec.backing_image = in.disk.backing;
  spec.config_drive = in.config_drive;
  spec.console_log = in.console_log;
  spec.firmware = in.firmware;
  spec.nvram = in.nvram;
  GuestForward broker_forward;
  broker_forward.guest_ip = k_guest_broker_ip;
  broker_forward.guest_port = k_guest_broker_port;
  broker_forward.host = in.services->broker.host;
  broker_forward.host_port = in.services->broker.port;
  spec.guestfwd = {broker_forward.to_guestfwd()};
  for (const auto& f : in.options->forwards) {
    spec.guestfwd.push_back(f.to_guestfwd());
  }
  if (in.services->git) {
    GuestForward git_forward;
    git_forward.guest_ip = k_guest_git_ip;
    git_forward.guest_port = k_guest_git_port;
    git_forward.host_port = in.services->git->port();
    spec.guestfwd.push_back(git_forward.to_guestfwd());
  }
  spec.hostfwd = {fmt::format("tcp:127.0.0.1:{}-:{}", in.web_host_port, in.web_guest_port)};
  if (in.ssh_host_port > 0) {
    spec.hostfwd.push_back(fmt::format("tcp:127.0.0.1:{}-:22", in.ssh_host_port));
  }
  spec.allow_spawn = true;
  return spec;
}

// Watches one running guest: its serial console and the status events on the broker.
class GuestWatch {
public:
  GuestWatch(const fs::path& console_log, HostServices& services, BootTestResult& result, Clock::time_point power_on,
             bool watch_growth)
      : m_console(console_log), m_services(services), m_result(result), m_power_on(power_on),
        m_watch_growth(watch_growth) {}

  // New status events into the result; remembers the first activation of the member.
  void collect_events() {
    const auto messages = m_services.recorder->messages();
    for (; m_seen_messages < messages.size(); ++m_seen_messages) {
      StatusEvent e = decode_status_event(messages[m_seen_messages], m_result.member_id, m_power_on);
      spdlog::info("boot-test: {} at {:.1f} s{}", e.name, e.seconds, e.for_member ? "" : " (another member)");
      if (is_activation_of(e) && !activated_at) {
        activated_at = messages[m_seen_messages].received;
        m_result.activated_seconds = e.seconds;
      }
      m_result.events.push_back(std::move(e));
    }
  }

  // Reads what the console printed since the last poll: login prompt, chosen hostname.
  void poll_console(Clock::time_point now) {
    const size_t from = m_console.poll();
    if (!m_result.login_seconds) {
      // "login:" can straddle two reads; look back a few bytes.
      const size_t look = from > 8 ? from - 8 : 0;
      if (m_console.text().find("login:", look) != std::string::npos) {
        m_result.login_seconds = seconds_between(m_power_on, now);
      }
    }
    if (m_result.hostname.empty()) {
      if (auto h = find_chosen_hostname(m_console.text())) {
        m_result.hostname = *h;
      }
    }
    if (!m_payload_read_at && !m_result.hostname.empty()) {
      m_payload_read_at = now;
    }
    // A guest that cannot mount / waits forever in the initramfs shell (or has panicked):
    // no use waiting out the timeout (e.g. a disk bus whose driver the initramfs lacks).
    if (boot_failure.empty()) {
      boot_failure = find_boot_failure(m_console.text());
    }
    if (m_watch_growth && m_result.root_growth.empty()) {
      m_result.root_growth = find_growth_line(m_console.text());
    }
  }

  // Once, a minute after the guest read its payload: did any MQTT client of the guest
  // reach the broker? A note says where to look when not (withdrawn if one comes later).
  void check_broker_reached(Clock::time_point now) {
    if (!m_broker_checked && (m_payload_read_at ? now - *m_payload_read_at >= k_broker_check_after
                                                : now - m_power_on >= k_broker_check_without_hostname)) {
      m_broker_checked = true;
      if (!guest_reached_broker()) {
        broker_problem =
            fmt::format("no MQTT client of the guest reached the broker ({}, guest address {}:{}) "
                        "within {:.0f} s of power-on: check the payload's MB_IP/MB_PORT and the "
                        "agent's mb.urls",
                        m_result.broker, k_guest_broker_ip, k_guest_broker_port, seconds_between(m_power_on, now));
        spdlog::warn("boot-test: {}", broker_problem);
        m_result.notes.push_back(broker_problem);
      }
    } else if (!broker_problem.empty() && guest_reached_broker()) {
      spdlog::info("boot-test: a client of the guest reached the broker after {:.1f} s",
                   seconds_between(m_power_on, now));
      std::erase(m_result.notes, broker_problem);
      broker_problem.clear();
    }
  }

  // Power is off: the last of the console.
  void final_poll() {
    m_console.poll();
    if (m_result.hostname.empty()) {
      if (auto h = find_chosen_hostname(m_console.text())) {
        m_result.hostname = *h;
      }
    }
  }

  const std::string& console_text() const { return m_console.text(); }

  std::optional<Clock::time_point> activated_at;
  std::string broker_problem;
  std::string boot_failure; // the initramfs shell or a panic, from the console

private:
  // A message from the guest, or (our own mosquitto) a client in its log that is not
  // boot-test's.
  bool guest_reached_broker() const {
    if (!m_result.events.empty()) {
      return true;
    }
    for (const auto& m : m_services.servers->messages()) {
      if (!m.sent) {
        return true;
      }
    }
    if (m_services.own_broker) {
      auto log = read_file(m_services.own_broker->log_file());
      return log && log_shows_foreign_client(*log, m_services.own_clients);
    }
    return false;
  }

  ConsoleReader m_console;
  HostServices& m_services;
  BootTestResult& m_result;
  Clock::time_point m_power_on;
  size_t m_seen_messages = 0;
  bool m_broker_checked = false;
  std::optional<Clock::time_point> m_payload_read_at;
  bool m_watch_growth = false;
};

// Until the member's activation (plus a grace for the login prompt and hostname), the
// deadline, or the guest or broker going away. Returns why it stopped early ("" when
// activated).
Expected<std::string> watch_until_activated(GuestWatch& watch, LibvirtDomain& domain, HostServices& services,
                                            const BootTestOptions& o, BootTestResult& result,
                                            Clock::time_point power_on) {
  const auto deadline = power_on + o.timeout;
  for (;;) {
    if (interrupted()) {
      return fail("boot-test", "interrupted");
    }
    const auto now = Clock::now();
    watch.poll_console(now);
    if (!watch.boot_failure.empty()) {
      return "the guest gave up booting: " + watch.boot_failure;
    }
    watch.collect_events();
    watch.check_broker_reached(now);
    if (effective_until(o) == BootTestOptions::Until::login) {
      // With --disk-size the growth's outcome is part of what is checked.
      if (result.login_seconds && (!o.disk_bytes || !result.root_growth.empty())) {
        return std::string();
      }
      if (now >= deadline) {
        return fmt::format("no {} on the serial console within {} s",
                           result.login_seconds ? "cartridge-init growroot line" : "login prompt", o.timeout.count());
      }
    } else if (watch.activated_at) {
      const bool grace_over = now - *watch.activated_at > o.login_grace;
      if ((!result.hostname.empty() && result.login_seconds) || grace_over || now >= deadline) {
        return std::string();
      }
    } else if (now >= deadline) {
      return fmt::format("no {} for member {} within {} s", k_activated, result.member_id, o.timeout.count());
    }
    BI_TRY_ASSIGN(bool active, domain.is_active());
    if (!active) {
      return fmt::format("the guest stopped (powered off, rebooted or crashed) after {:.1f} s",
                         seconds_between(power_on, now));
    }
    if (services.own_broker && !services.own_broker->running()) {
      return "the MQTT broker (mosquitto) exited; see " + services.own_broker->log_file().string();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// GET / through the host forward; with --expect-content, what is wrong with the page ("" when right).
std::string check_web_root(const BootTestOptions& o, int host_port, int guest_port, BootTestResult& result) {
  net::HttpRequest get;
  get.url = fmt::format("http://127.0.0.1:{}/", host_port);
  get.timeout = std::chrono::seconds(60);
  auto page = net::http_send(get);
  if (page) {
    result.http_status = page->status;
    result.http_body_bytes = page->body.size();
    spdlog::info("boot-test: GET / from the guest's port {}: HTTP {}, {} bytes", guest_port, page->status,
                 page->body.size());
  } else {
    result.notes.push_back("GET / from the guest's port " + std::to_string(guest_port) +
                           " failed: " + page.error().detail);
  }
  if (o.expect_content && (!page || page->body.find(*o.expect_content) == std::string::npos)) {
    return fmt::format("GET / from the guest's port {} {} does not contain '{}'", guest_port,
                       page ? fmt::format("(HTTP {}, {} bytes)", page->status, page->body.size())
                            : std::string("(no answer)"),
                       *o.expect_content);
  }
  return {};
}

// Scale-down: boot-test (as the Autoscaler) asks for cleanup, then waits for the
// agent's maintenance and ready-to-shutdown events, in that order. Returns what went
// wrong ("" when right, or when no cleanup is wanted or possible).
Expected<std::string> await_cleanup(GuestWatch& watch, LibvirtDomain& domain, HostServices& services,
                                    const BootTestOptions& o, BootTestResult& result, Clock::time_point deadline) {
  if (effective_until(o) != BootTestOptions::Until::shutdown) {
    return std::string();
  }
  bool requested_topology = false;
  for (const auto& m : services.servers->messages()) {
    requested_topology = requested_topology || (!m.sent && m.name == "CompleteTopologyRequestEvent");
  }
  if (o.stratos && !requested_topology) {
    // An agent without the Stratos handshake never listens: a request would go unanswered.
    result.notes.push_back("the agent never requested the topology (an agent without the Stratos handshake): "
                           "no cleanup requested");
    return std::string();
  }
  if (o.stratos) {
    BI_TRY(services.servers->send_cleanup());
  }
  const auto cleanup_deadline = std::max(deadline, Clock::now() + k_cleanup_bound);
  std::optional<double> maintenance;
  while (!result.shutdown_seconds && Clock::now() < cleanup_deadline && !interrupted()) {
    watch.collect_events();
    for (const auto& e : result.events) {
      if (e.for_member && e.name == "InstanceMaintenanceModeEvent" && !maintenance) {
        maintenance = e.seconds;
      }
      if (e.for_member && e.name == "InstanceReadyToShutdownEvent" && !result.shutdown_seconds) {
        result.shutdown_seconds = e.seconds;
      }
    }
    BI_TRY_ASSIGN(bool active, domain.is_active());
    if (!active) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (interrupted()) {
    return fail("boot-test", "interrupted");
  }
  if (!result.shutdown_seconds) {
    return fmt::format("no InstanceReadyToShutdownEvent for member {} after {} ({})", result.member_id,
                       o.stratos ? "boot-test's InstanceCleanupMemberEvent" : "activation",
                       maintenance ? "InstanceMaintenanceModeEvent seen" : "no InstanceMaintenanceModeEvent either");
  }
  if (!maintenance || *maintenance > *result.shutdown_seconds) {
    return std::string("InstanceReadyToShutdownEvent came without an InstanceMaintenanceModeEvent before it");
  }
  return std::string();
}

// The verdict: the first problem in the order a reader needs them.
void conclude(BootTestResult& result, const BootTestOptions& o, const GuestWatch& watch, const std::string& stop_reason,
              const std::string& content_problem, const std::string& cleanup_problem) {
  result.hostname_ok = !result.hostname.empty() && hostname_matches(result.hostname, result.hostname_pattern);
  if (effective_until(o) == BootTestOptions::Until::login) {
    result.reason = stop_reason;
    if (stop_reason.empty() && o.disk_bytes && result.root_growth.find(" grew / from ") == std::string::npos) {
      result.reason =
          "/ did not grow to the " + std::to_string(result.disk_bytes) + "-byte disk: " + result.root_growth;
    }
  } else if (!watch.activated_at) {
    result.reason = stop_reason + "; " + describe_events(result.events) +
                    (result.hostname.empty() ? "; cartridge-init never printed its hostname" : "") +
                    (watch.broker_problem.empty() ? "" : "; " + watch.broker_problem);
  } else if (result.hostname.empty()) {
    result.reason = "cartridge-init never printed its hostname ('cartridge-init: hostname ...' on the serial console)";
  } else if (!result.hostname_ok) {
    result.reason = "hostname " + result.hostname + " does not match " + result.hostname_pattern;
  }
  if (result.reason.empty() && result.ssh) {
    result.reason = ssh_problem(*result.ssh);
  }
  if (result.reason.empty()) {
    result.reason = !content_problem.empty() ? content_problem : cleanup_problem;
  }
  result.guest_secure_boot = secure_boot_from_console(watch.console_text());
  if (result.reason.empty() && result.firmware == "uefi-secure" && result.guest_secure_boot != true) {
    result.reason = "booted with --firmware uefi-secure but the guest kernel did not report 'secureboot: Secure "
                    "boot enabled'";
  }
  result.passed = result.reason.empty();
  if (!result.passed) {
    result.console_tail = last_lines(watch.console_text(), 25);
  }
}

} // namespace

Expected<BootTestResult> run_boot_test(const BootTestOptions& o) {
  const auto started = Clock::now();
  BootTestResult result;

  // Inputs first: a usage problem must not cost a VM start.
  BI_TRY_ASSIGN(BootImage info, resolve_image(o));
  result.image = info.image;
  BI_TRY_ASSIGN(result.firmware, choose_boot_firmware(o.firmware, info.manifest ? info.manifest->firmware() : "bios",
                                                      info.image.string()));
  const std::string uuid = random_uuid();
  BI_TRY_ASSIGN(std::string payload, read_or_make_payload(o, info, uuid));
  payload = complete_payload_for_guest(payload, o, result.notes);
  const PayloadFields fields = parse_payload(payload);
  BI_TRY(check_payload_fields(fields, o, result));
  std::string public_key;
  if (o.ssh_key) {
    BI_TRY_ASSIGN(public_key, read_public_key(*o.ssh_key));
  }
  BI_TRY(require_host_tools());

  const Accelerator accel = detect_accelerator(o.cache_dir);
  result.accelerator = accel.kvm ? "kvm" : "tcg";
  spdlog::info("boot-test: {} under {} ({}), firmware {}", info.image.string(), result.accelerator, accel.reason,
               result.firmware);

  std::error_code ec;
  const fs::path parent =
      fs::is_directory("/var/lib/libvirt/images", ec) ? fs::path("/var/lib/libvirt/images") : fs::path("/var/tmp");
  BI_TRY_ASSIGN(TempDir run_dir, TempDir::create(parent, "build-image-boot-"));
  if (::chmod(run_dir.path().c_str(), 0711) != 0) {
    return fail(run_dir.path().string(), "cannot chmod the run directory");
  }
  BI_TRY_ASSIGN(GuestDisk disk, prepare_guest_disk(info.image, run_dir.path(), o, result));
  const fs::path config_drive = run_dir.path() / "config-2.iso";
  ConfigDriveContent drive{payload, uuid, "boot-test-" + uuid.substr(0, 8), {}};
  if (!public_key.empty()) {
    drive.public_keys["boot-test"] = public_key;
  }
  BI_TRY(make_config_drive(config_drive, drive, run_dir.path()));
  payload.clear();

  BI_TRY_ASSIGN(HostServices services, start_host_services(o, fields, run_dir.path()));
  result.broker = services.broker.to_string();
  BI_TRY_ASSIGN(const int web_host_port, free_loopback_port());
  const int web_port = web_guest_port(fields);
  int ssh_host_port = 0;
  if (o.ssh_key) {
    BI_TRY_ASSIGN(ssh_host_port, free_loopback_port());
  }

  BI_TRY(ensure_libvirtd(std::chrono::seconds(90)));
  BI_TRY_ASSIGN(LibvirtConnection conn, LibvirtConnection::open("qemu:///system"));
  const DomainSpec spec =
      make_domain_spec({uuid, accel.kvm, disk, config_drive, run_dir.path() / "console.log", result.firmware,
                        run_dir.path() / "OVMF_VARS.fd", &o, &services, web_host_port, web_port, ssh_host_port});
  result.domain = spec.name;
  const std::string xml = render_domain_xml(spec);
  spdlog::debug("domain XML:\n{}", xml);
  result.setup_seconds = seconds_between(started, Clock::now());

  BI_TRY_ASSIGN(LibvirtDomain domain, conn.create_transient(xml, spec.name));
  const auto power_on = Clock::now();
  spdlog::info("boot-test: domain {} started; waiting up to {} s for {} of {}", spec.name, o.timeout.count(),
               k_activated, result.member_id);
  GuestWatch watch(spec.console_log, services, result, power_on, o.disk_bytes.has_value());
  BI_TRY_ASSIGN(const std::string stop_reason, watch_until_activated(watch, domain, services, o, result, power_on));

  std::string content_problem;
  std::string cleanup_problem;
  if (o.ssh_key && stop_reason.empty() && (watch.activated_at || effective_until(o) == BootTestOptions::Until::login)) {
    spdlog::info("boot-test: SSH to the guest through 127.0.0.1:{}", ssh_host_port);
    result.ssh = check_ssh(*o.ssh_key, info.manifest ? info.manifest->login_user() : "root", ssh_host_port,
                           run_dir.path(), std::max(power_on + o.timeout, Clock::now() + k_ssh_bound));
  }
  if (watch.activated_at && stop_reason.empty()) {
    content_problem = check_web_root(o, web_host_port, web_port, result);
    BI_TRY_ASSIGN(cleanup_problem, await_cleanup(watch, domain, services, o, result, power_on + o.timeout));
  }
  for (const auto& m : services.servers->messages()) {
    result.exchange.push_back({m.sent, m.topic, m.name, seconds_between(power_on, m.at)});
  }
  if (services.git) {
    spdlog::debug("git server: {} requests, {} refused", services.git->requests(), services.git->unauthorized());
  }

  // Power off before reading the log for the last time, so it is complete.
  BI_TRY(domain.destroy());
  watch.final_poll();
  result.console_log = keep_console_log(spec.console_log, info.image);
  conclude(result, o, watch, stop_reason, content_problem, cleanup_problem);
  result.total_seconds = seconds_between(started, Clock::now());
  return result;
}

} // namespace bi
