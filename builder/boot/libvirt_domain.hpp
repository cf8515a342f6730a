#pragma once
// RAII over the libvirt C API for boot tests: a connection to qemu:///system and one
// transient domain that is destroyed when the object goes away (and by libvirtd itself
// if this process dies, through VIR_DOMAIN_START_AUTODESTROY). Every failing call
// becomes an Error naming the operation and the domain.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "boot/disk_bus.hpp"
#include "util/expected.hpp"

// libvirt's own names, declared here so callers need not include libvirt.h.
struct _virConnect; // NOLINT(bugprone-reserved-identifier)
struct _virDomain;  // NOLINT(bugprone-reserved-identifier)

namespace bi {

namespace fs = std::filesystem;

// What a boot-test guest looks like. Rendered to domain XML by render_domain_xml.
struct DomainSpec {
  std::string name;
  std::string uuid;
  bool kvm = false; // false: TCG with a qemu64 CPU
  int memory_mib = 1024;
  int vcpus = 2;
  fs::path disk;          // qcow2 overlay the guest writes to
  fs::path backing_image; // the overlay's backing file; never relabelled (it is the user's image)
  fs::path config_drive;  // raw, read-only second disk; empty: none
  fs::path console_log;   // serial port 0 is written here
  // qemu user networking with restrict=on: the guest reaches only these forwards,
  // e.g. "tcp:10.0.2.100:1883-tcp:127.0.0.1:18830".
  std::vector<std::string> guestfwd;
  // virtio-blk (vda), virtio-scsi (sda) or NVMe (a qemu device beside libvirt's disks).
  DiskBus disk_bus = DiskBus::virtio;
  // Host-side ports into the guest, e.g. "tcp:127.0.0.1:18080-:80" (boot-test fetches the
  // cartridge's web root); restrict=on still allows them, they are host-initiated.
  std::vector<std::string> hostfwd;
  // A `cmd:` guestfwd spawns a process per guest connection: qemu's seccomp sandbox
  // (libvirt passes spawn=deny) must then allow spawning.
  bool allow_spawn = false;
  // bios (i440fx + SeaBIOS) | uefi (q35 + OVMF) | uefi-secure (q35 + SMM + OVMF with
  // Microsoft's keys enrolled, Secure Boot enforced). EFI guests keep their variables in
  // `nvram`, a per-run copy libvirt makes from the firmware's template.
  std::string firmware = "bios";
  fs::path nvram;
};

// OVMF from Debian's ovmf package: the code and variable-store template for a firmware
// kind (empty for bios).
struct OvmfFiles {
  fs::path code;
  fs::path vars_template;
};
OvmfFiles ovmf_files(const std::string& firmware);

std::string render_domain_xml(const DomainSpec& spec);

// Escapes text for XML attribute values and element content.
std::string xml_escape(const std::string& text);

// Makes sure libvirtd answers on qemu:///system: starts `virtlogd -d` and `libvirtd -d`
// when its socket is missing or dead (there is no systemd to socket-activate it), then
// waits up to `timeout` for a connection to succeed. Missing binaries are host_missing.
Expected<void> ensure_libvirtd(std::chrono::seconds timeout);

class LibvirtDomain;

class LibvirtConnection {
public:
  static Expected<LibvirtConnection> open(const std::string& uri = "qemu:///system");
  LibvirtConnection(LibvirtConnection&& other) noexcept;
  LibvirtConnection& operator=(LibvirtConnection&&) = delete;
  LibvirtConnection(const LibvirtConnection&) = delete;
  ~LibvirtConnection();

  // Starts a transient domain from `xml`; it disappears when destroyed.
  Expected<LibvirtDomain> create_transient(const std::string& xml, const std::string& name);
  const std::string& uri() const { return m_uri; }

private:
  LibvirtConnection(_virConnect* conn, std::string uri) : m_conn(conn), m_uri(std::move(uri)) {}
  _virConnect* m_conn = nullptr;
  std::string m_uri;
};

class LibvirtDomain {
public:
  LibvirtDomain(LibvirtDomain&& other) noexcept;
  LibvirtDomain& operator=(LibvirtDomain&&) = delete;
  LibvirtDomain(const LibvirtDomain&) = delete;
  ~LibvirtDomain();

  const std::string& name() const { return m_name; }
  // False once the guest powered off or crashed (on_poweroff/on_crash = destroy).
  Expected<bool> is_active() const;
  // Hard power-off; a no-op when already gone.
  Expected<void> destroy();

private:
  friend class LibvirtConnection;
  LibvirtDomain(_virDomain* dom, std::string name) : m_dom(dom), m_name(std::move(name)) {}
  _virDomain* m_dom = nullptr;
  std::string m_name;
};

} // namespace bi
