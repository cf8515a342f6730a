#pragma once
// `build-image boot-test`: boots an image the way a Stratos IaaS would (transient libvirt
// domain, config drive with a payload, the broker at 10.0.2.100:1883) and waits for the
// cartridge agent's InstanceActivatedEvent for this member. The image is never written:
// the guest runs on a throwaway overlay.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "boot/broker.hpp"
#include "boot/disk_bus.hpp"
#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

// ---- payload (Stratos launch parameters: KEY=VALUE fields, comma- or line-separated)

using PayloadFields = std::map<std::string, std::string>;

// Splits like cartridge-init does: one line is comma-separated, several lines are one
// field each; keys and values are trimmed, the last occurrence of a key wins.
PayloadFields parse_payload(std::string_view text);

struct DefaultPayloadInput {
  std::string service_name;  // the cartridge type
  std::vector<int> ports;    // from the image's plan
  std::string uuid;          // makes MEMBER_ID unique per run
  std::string cartridge_key; // CARTRIDGE_KEY, random per run
};

// A one-line payload in Stratos' field order, with the boot-test guest addresses
// (MB_IP=10.0.2.100, MB_PORT=1883, PUPPET_IP=10.0.2.101).
std::string make_default_payload(const DefaultPayloadInput& in);

// ---- what the guest reports

// The regex the hostname cartridge-init picks must match:
// ^[0-9]+\.<DEPLOYMENT>\.<SERVICE_NAME>\.<PUPPET_HOSTNAME>$ (lower case, as the script
// writes it; any domain when the payload has no usable PUPPET_HOSTNAME).
std::string hostname_pattern(const PayloadFields& payload);
bool hostname_matches(const std::string& hostname, const std::string& pattern);

// The hostname from the last "cartridge-init: hostname <name>" line of a serial log.
std::optional<std::string> find_chosen_hostname(std::string_view console);

// The console line saying the boot gave up (initramfs-tools' "ALERT! ..." before its
// rescue shell, a kernel panic); "" while the boot goes on.
std::string find_boot_failure(std::string_view console);

// An instance/status message, decoded.
struct StatusEvent {
  std::string topic;
  std::string name;        // last topic segment, e.g. InstanceActivatedEvent
  double seconds = 0;      // since power-on (domain start)
  nlohmann::json body;     // null when the payload is not JSON
  std::string member_id;   // body.memberId, empty when absent
  std::string cluster_id;  // body.clusterId
  bool for_member = false; // memberId equals the payload's MEMBER_ID
};

StatusEvent decode_status_event(const BrokerMessage& message, const std::string& member_id,
                                std::chrono::steady_clock::time_point power_on);
bool is_activation_of(const StatusEvent& event);

// ---- running it

// A guest address forwarded to a loopback port of the host.
struct GuestForward {
  std::string guest_ip; // dotted IPv4 inside qemu's user network, e.g. 10.0.2.101
  int guest_port = 0;
  int host_port = 0;
  std::string host = "127.0.0.1";
  // "tcp:10.0.2.101:8140-cmd:..." relaying each guest connection to host:host_port.
  std::string to_guestfwd() const;
};

// Parses GUEST_IP:PORT=HOST_PORT (ports 1-65535, an IPv4 guest address).
Expected<GuestForward> parse_guest_forward(const std::string& text);

struct BootTestOptions {
  std::string image; // a path, or a name in `output_dir`'s catalog
  fs::path output_dir = "images";
  fs::path cache_dir;                   // where the KVM probe verdict is cached
  std::optional<fs::path> payload_file; // default: generated for the image's cartridge
  std::chrono::seconds timeout{600};    // from power-on to InstanceActivatedEvent
  std::optional<BrokerAddress> broker;  // an existing broker; default: a private mosquitto
  // Extra guest addresses (--forward GUEST_IP:PORT=HOST_PORT): qemu guestfwd
  // tcp:GUEST_IP:PORT-tcp:127.0.0.1:HOST_PORT, e.g. a Puppet master at 10.0.2.101:8140.
  std::vector<GuestForward> forwards;
  // After activation, how long to keep watching the console for the login prompt.
  std::chrono::seconds login_grace{20};
  // ---- playing the Stratos servers (boot/stratos_servers.hpp)
  bool stratos = true;                       // false (--no-stratos): answer nothing, only watch
  std::optional<fs::path> app_repo;          // --app-repo DIR: served by git over HTTP to the guest
  std::optional<std::string> expect_content; // --expect-content TEXT in the body of the guest's /
  // --until: the run is complete at the login prompt (no agent needed), at activation, or
  // after the cleanup handshake.
  enum class Until { login, activated, shutdown };
  std::optional<Until> until; // default: shutdown when playing the servers
  // --firmware bios | uefi | uefi-secure; default from the image's base.firmware.
  std::optional<std::string> firmware;
  // ---- the instance's disk and login (docs/image-contract.md, "Login, disk and time")
  DiskBus disk_bus = DiskBus::virtio;      // --disk-bus
  std::optional<std::uint64_t> disk_bytes; // --disk-size: the overlay's size; / must grow to it
  // --ssh-key FILE.pub: the config drive's key pair. Port 22 is forwarded to a loopback
  // port; the host keys are read with ssh-keyscan and, with the private key FILE beside
  // it, boot-test logs in, runs a command and checks that password login is refused.
  std::optional<fs::path> ssh_key;
};

// Parses --firmware's value.
Expected<std::string> parse_boot_firmware(const std::string& text);
// The firmware to boot `image` with: the requested one, checked against what the image was
// built for (base.firmware in its manifest; uefi-secure starts any EFI image), else bios
// for bios and hybrid images and uefi for uefi images. A manifest-less image is taken as
// BIOS-only.
Expected<std::string> choose_boot_firmware(const std::optional<std::string>& requested, const std::string& firmware,
                                           const std::string& image);
// The guest kernel's verdict on the console: "secureboot: Secure boot enabled" / "disabled"
// (printed under EFI only), else nullopt.
std::optional<bool> secure_boot_from_console(const std::string& console);

// Parses --disk-size (4G, 6GiB, 512M ...; at least 1G).
Expected<std::uint64_t> parse_disk_size(const std::string& text);

// One OpenSSH public key line from --ssh-key's file (trimmed), or exit 2 saying why not.
Expected<std::string> read_public_key(const fs::path& file);

// `ssh-keygen -l` lines ("256 SHA256:x [127.0.0.1]:2222 (ED25519)") as "SHA256:x (ED25519)".
std::vector<std::string> parse_fingerprints(const std::string& keygen_output);

// Parses --until's value.
Expected<BootTestOptions::Until> parse_until(const std::string& text);

// Adds KEY=VALUE fields to a payload in its own layout (one comma-separated line, or a
// field per line).
std::string add_payload_fields(const std::string& payload,
                               const std::vector<std::pair<std::string, std::string>>& fields);

// A message between boot-test's Stratos servers and the broker.
struct ExchangedEvent {
  bool sent = false; // true: boot-test published it
  std::string topic;
  std::string name;
  double seconds = 0; // since power-on
};

// What boot-test saw over SSH through the host forward to the guest's port 22.
struct SshReport {
  std::string user;                   // the image's login user (manifest plan "login", default root)
  int port = 0;                       // 127.0.0.1:port -> guest :22
  std::vector<std::string> host_keys; // "SHA256:... (ED25519)", from ssh-keyscan
  bool login_tried = false;           // false: no private key beside the .pub
  bool logged_in = false;
  std::string command;
  std::string output; // the command's output, or ssh's last words
  std::optional<std::uint64_t> root_fs_bytes;
  std::string authorized_keys; // "600 root": mode and owner of the user's authorized_keys
  std::string boot_efi;        // what is mounted at /boot/efi ("vfat"), "none"
  std::optional<bool> password_refused;
  std::string auth_methods; // what the server offers ("publickey")
};

struct BootTestResult {
  bool passed = false;
  std::string reason; // why it failed; empty on pass
  fs::path image;
  std::string accelerator;               // kvm | tcg
  std::string firmware;                  // bios | uefi | uefi-secure
  std::optional<bool> guest_secure_boot; // as the guest kernel reported it (EFI only)
  std::string domain;
  std::string broker; // host:port the guest's 10.0.2.100:1883 reaches
  std::string member_id;
  std::string cluster_id;
  std::string hostname;
  std::string hostname_pattern;
  bool hostname_ok = false;
  std::vector<StatusEvent> events;
  std::optional<double> login_seconds;     // power-on to "login:" on the serial console
  std::optional<double> activated_seconds; // power-on to InstanceActivatedEvent for the member
  double setup_seconds = 0;                // overlay, config drive, broker, libvirtd
  double total_seconds = 0;
  fs::path console_log; // kept after the run
  // ---- playing the Stratos servers
  std::vector<ExchangedEvent> exchange; // every message both ways, in order
  std::vector<std::string> notes;       // what boot-test changed or noticed (payload, broker)
  std::optional<long> http_status;      // GET / from the guest after activation
  std::optional<size_t> http_body_bytes;
  std::optional<double> shutdown_seconds; // power-on to InstanceReadyToShutdownEvent
  std::string console_tail;               // last lines, on failure
  // ---- disk and login
  std::string disk_bus = "virtio";
  std::uint64_t disk_bytes = 0;  // the guest's disk
  std::uint64_t image_bytes = 0; // the image's virtual size
  std::string root_growth;       // cartridge-init's growth line (with --disk-size)
  std::optional<SshReport> ssh;  // with --ssh-key

  nlohmann::json to_json() const;
  std::string to_text() const;
};

// Setup problems (missing tools, bad input, libvirt refusing the domain) are errors;
// a guest that does not activate in time is a result with passed = false.
Expected<BootTestResult> run_boot_test(const BootTestOptions& options);

} // namespace bi
