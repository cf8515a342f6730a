#include "boot/libvirt_domain.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

constexpr const char* k_libvirt_sock = "/run/libvirt/libvirt-sock";
constexpr const char* k_virtlogd_sock = "/run/libvirt/virtlogd-sock";
constexpr const char* k_libvirtd_log = "/var/log/libvirt/libvirtd.log";

// libvirt prints every error to stderr by default; ours are reported once, as values.
void ignore_libvirt_error(void*, virErrorPtr) {}

void silence_libvirt() {
  static const bool done = [] {
    virInitialize();
    virSetErrorFunc(nullptr, ignore_libvirt_error);
    return true;
  }();
  (void)done;
}

std::string last_libvirt_error() {
  const char* msg = virGetLastErrorMessage();
  return msg != nullptr ? msg : "unknown libvirt error";
}

// A socket file can outlive its daemon; only a successful connect proves someone listens.
bool unix_socket_answers(const char* path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

bool connection_works() {
  virConnectPtr c = virConnectOpen("qemu:///system");
  if (c == nullptr) {
    return false;
  }
  virConnectClose(c);
  return true;
}

// The daemon binaries live in /usr/sbin, which is not always in PATH.
std::string daemon_path(const std::string& name) {
  if (program_available(name)) {
    return name;
  }
  const std::string sbin = "/usr/sbin/" + name;
  return program_available(sbin) ? sbin : std::string();
}

// The last error lines libvirtd logged: the reason it refused to serve qemu:///system.
std::string libvirtd_log_errors() {
  auto text = read_file(k_libvirtd_log, 64u << 20);
  if (!text) {
    return {};
  }
  std::vector<std::string> errors;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) {
      end = text->size();
    }
    const std::string line = text->substr(pos, end - pos);
    if (line.find(" error : ") != std::string::npos) {
      errors.push_back(line.substr(line.find(" error : ") + 9));
    }
    pos = end + 1;
  }
  std::string out;
  for (size_t i = errors.size() > 3 ? errors.size() - 3 : 0; i < errors.size(); ++i) {
    out += "\n  " + errors[i];
  }
  return out;
}

Expected<void> start_daemon(const std::string& name) {
  const std::string path = daemon_path(name);
  if (path.empty()) {
    return fail(name, "not installed (apt-get install libvirt-daemon-system libvirt-daemon-driver-qemu)",
                ExitCode::host_missing);
  }
  RunOptions ro;
  ro.timeout = std::chrono::seconds(60);
  ro.cwd = "/";
  // `-d` returns once the daemon has forked into its own session, so it outlives us. A
  // daemon that cannot start is a host problem (exit 3), named with its own message.
  auto started = run_checked({path, "-d"}, ro);
  if (!started) {
    return fail(name, "cannot start: " + started.error().to_string(), ExitCode::host_missing);
  }
  return Ok{};
}

} // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '\'':
      out += "&apos;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

OvmfFiles ovmf_files(const std::string& firmware) {
  if (firmware == "uefi") {
    return {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"};
  }
  if (firmware == "uefi-secure") {
    return {"/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"};
  }
  return {};
}

std::string render_domain_xml(const DomainSpec& s) {
  const auto e = [](const auto& v) { return xml_escape(std::string(v)); };
  std::string x;
  x += fmt::format("<domain type='{}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n",
                   s.kvm ? "kvm" : "qemu");
  x += fmt::format("  <name>{}</name>\n", e(s.name));
  if (!s.uuid.empty()) {
    x += fmt::format("  <uuid>{}</uuid>\n", e(s.uuid));
  }
  x += fmt::format("  <memory unit='MiB'>{}</memory>\n  <vcpu>{}</vcpu>\n", s.memory_mib, s.vcpus);
  const bool efi = s.firmware != "bios";
  const bool secure = s.firmware == "uefi-secure";
  // Firmware files given explicitly rather than through <os firmware='efi'>: the run
  // reports exactly which code and variable store the guest booted with.
  x += fmt::format("  <os>\n    <type arch='x86_64' machine='{}'>hvm</type>\n", efi ? "q35" : "pc");
  if (efi) {
    const OvmfFiles f = ovmf_files(s.firmware);
    x += fmt::format("    <loader readonly='yes' secure='{}' type='pflash'>{}</loader>\n", secure ? "yes" : "no",
                     e(f.code.string()));
    x += fmt::format("    <nvram template='{}'>{}</nvram>\n", e(f.vars_template.string()), e(s.nvram.string()));
  }
  x += "    <boot dev='hd'/>\n  </os>\n";
  x += "  <features>\n    <acpi/>\n    <apic/>\n";
  if (secure) {
    x += "    <smm state='on'/>\n"; // OVMF's secure variable store needs SMM
  }
  if (!s.kvm) {
    // QEMU's default translation cache is 1 GiB; a quarter of that keeps TCG fast
    // without doubling the guest's footprint on a shared host.
    x += "    <tcg>\n      <tb-cache unit='MiB'>256</tb-cache>\n    </tcg>\n";
  }
  x += "  </features>\n";
  // TCG cannot pass the host CPU through; qemu64 is the model every TCG build supports.
  x += s.kvm ? "  <cpu mode='host-passthrough'/>\n"
             : "  <cpu mode='custom' match='exact'>\n    <model fallback='allow'>qemu64</model>\n  </cpu>\n";
  x += "  <clock offset='utc'/>\n";
  // A reboot or crash ends the test: the domain disappears and the wait loop says so.
  x += "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n  <on_crash>destroy</on_crash>\n";
  x += "  <devices>\n";
  // cache='unsafe': the disk is a throwaway overlay deleted after the test, so the guest's
  // flushes need not reach the host's disk (dpkg fsyncs every file it unpacks; each flush
  // costs several host fsyncs of ~7 ms here).
  if (s.disk_bus == DiskBus::scsi) {
    x += "    <controller type='scsi' index='0' model='virtio-scsi'/>\n";
  }
  // libvirt 9.0 has no NVMe disk bus: that disk is passed to qemu below.
  if (s.disk_bus != DiskBus::nvme) {
    x += "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='unsafe'/>\n";
    x += fmt::format("      <source file='{}'/>\n", e(s.disk.string()));
  }
  if (!s.backing_image.empty() && s.disk_bus != DiskBus::nvme) {
    // Given explicitly so the DAC driver leaves the user's image alone: libvirt chowns
    // backing files to the qemu user and never restores them.
    x += "      <backingStore type='file'>\n        <format type='qcow2'/>\n";
    x += fmt::format("        <source file='{}'>\n          <seclabel model='dac' relabel='no'/>\n        </source>\n",
                     e(s.backing_image.string()));
    x += "        <backingStore/>\n      </backingStore>\n";
  }
  if (s.disk_bus != DiskBus::nvme) {
    x += s.disk_bus == DiskBus::scsi ? "      <target dev='sda' bus='scsi'/>\n    </disk>\n"
                                     : "      <target dev='vda' bus='virtio'/>\n    </disk>\n";
  }
  if (!s.config_drive.empty()) {
    x += "    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n";
    x += fmt::format("      <source file='{}'/>\n", e(s.config_drive.string()));
    x += "      <target dev='vdb' bus='virtio'/>\n      <readonly/>\n    </disk>\n";
  }
  x += fmt::format("    <serial type='file'>\n      <source path='{}'/>\n      <target port='0'/>\n    </serial>\n",
                   e(s.console_log.string()));
  x += "    <memballoon model='none'/>\n";
  x += "  </devices>\n";
  // libvirt's <interface type='user'> has neither restrict= nor guestfwd=, so the NIC is
  // passed to qemu directly. Its PCI address is explicit: libvirt does not know about it
  // and would otherwise hand the same slot to a disk.
  std::string netdev = "user,id=n0,restrict=on";
  for (const auto& f : s.guestfwd) {
    netdev += ",guestfwd=" + f;
  }
  for (const auto& f : s.hostfwd) {
    netdev += ",hostfwd=" + f;
  }
  x += "  <qemu:commandline>\n";
  x += "    <qemu:arg value='-netdev'/>\n";
  x += fmt::format("    <qemu:arg value='{}'/>\n", e(netdev));
  x += "    <qemu:arg value='-device'/>\n";
  x += fmt::format("    <qemu:arg value='virtio-net-pci,netdev=n0,bus={},addr=0x10'/>\n", efi ? "pcie.0" : "pci.0");
  if (s.disk_bus == DiskBus::nvme) {
    // qemu opens the overlay (and through it the backing image) itself: the caller makes
    // both accessible to libvirt's qemu user, which libvirt does only for its own disks.
    for (const auto& a : qemu_disk_args(DiskBus::nvme, "file=" + s.disk.string() + ",format=qcow2,cache=unsafe",
                                        efi ? ",bus=pcie.0,addr=0x11" : ",bus=pci.0,addr=0x11")) {
      x += fmt::format("    <qemu:arg value='{}'/>\n", e(a));
    }
  }
  if (s.allow_spawn) {
    // libvirt's own -sandbox (spawn=deny) comes after these arguments and would win, so
    // its capability is dropped below and the sandbox is given here without `spawn` and
    // `elevateprivileges` (libslirp's child calls setsid(), which that set kills).
    x += "    <qemu:arg value='-sandbox'/>\n";
    x += "    <qemu:arg value='on,obsolete=deny,resourcecontrol=deny'/>\n";
  }
  x += "  </qemu:commandline>\n";
  if (s.allow_spawn) {
    x += "  <qemu:capabilities>\n    <qemu:del capability='seccomp-sandbox'/>\n  </qemu:capabilities>\n";
  }
  x += "</domain>\n";
  return x;
}

Expected<void> ensure_libvirtd(std::chrono::seconds timeout) {
  silence_libvirt();
  if (unix_socket_answers(k_libvirt_sock) && connection_works()) {
    return Ok{};
  }
  if (daemon_path("libvirtd").empty()) {
    return fail("libvirtd", "not installed (apt-get install libvirt-daemon-system libvirt-daemon-driver-qemu)",
                ExitCode::host_missing);
  }
  // Both daemons refuse to start when they cannot open their log files.
  std::error_code ec;
  fs::create_directories("/var/log/libvirt", ec);
  if (!unix_socket_answers(k_virtlogd_sock)) {
    spdlog::info("starting virtlogd");
    BI_TRY(start_daemon("virtlogd"));
  }
  if (!unix_socket_answers(k_libvirt_sock)) {
    spdlog::info("starting libvirtd (no systemd here to socket-activate it)");
    BI_TRY(start_daemon("libvirtd"));
  }
  // The first start probes QEMU's capabilities, which takes seconds under load.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool listened = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (interrupted()) {
      return fail("libvirtd", "interrupted");
    }
    if (connection_works()) {
      return Ok{};
    }
    // A socket that answered and then stopped answering means the daemon gave up
    // (e.g. its QEMU driver failed to load): waiting longer cannot help.
    const bool listens = unix_socket_answers(k_libvirt_sock);
    if (listened && !listens) {
      break;
    }
    listened = listened || listens;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const std::string log = libvirtd_log_errors();
  // A libvirtd that does not serve qemu:///system (without libvirt-daemon-system there is no
  // qemu.conf and no libvirt-qemu user, and the QEMU driver refuses to load) is a host
  // problem, not a failed boot: exit 3.
  return fail("libvirtd",
              fmt::format("qemu:///system did not answer within {} s: {}{}{}", timeout.count(), last_libvirt_error(),
                          log.empty() ? "" : "\nlast errors in " + std::string(k_libvirtd_log) + ":", log),
              ExitCode::host_missing);
}

Expected<LibvirtConnection> LibvirtConnection::open(const std::string& uri) {
  silence_libvirt();
  virConnectPtr c = virConnectOpen(uri.c_str());
  if (c == nullptr) {
    return fail("libvirt " + uri, "cannot connect (virConnectOpen): " + last_libvirt_error());
  }
  return LibvirtConnection(c, uri);
}

LibvirtConnection::LibvirtConnection(LibvirtConnection&& other) noexcept
    : m_conn(other.m_conn), m_uri(std::move(other.m_uri)) {
  other.m_conn = nullptr;
}

LibvirtConnection::~LibvirtConnection() {
  if (m_conn != nullptr) {
    virConnectClose(m_conn);
  }
}

Expected<LibvirtDomain> LibvirtConnection::create_transient(const std::string& xml, const std::string& name) {
  // AUTODESTROY: if this process dies without cleaning up, libvirtd destroys the guest
  // when our connection drops, so no qemu is left running.
  virDomainPtr d = virDomainCreateXML(m_conn, xml.c_str(), VIR_DOMAIN_START_AUTODESTROY);
  if (d == nullptr) {
    return fail("libvirt domain " + name, "cannot start (virDomainCreateXML): " + last_libvirt_error());
  }
  return LibvirtDomain(d, name);
}

LibvirtDomain::LibvirtDomain(LibvirtDomain&& other) noexcept : m_dom(other.m_dom), m_name(std::move(other.m_name)) {
  other.m_dom = nullptr;
}

LibvirtDomain::~LibvirtDomain() {
  if (m_dom == nullptr) {
    return;
  }
  if (auto r = destroy(); !r) {
    spdlog::warn("{}", r.error().to_string());
  }
  virDomainFree(m_dom);
}

Expected<bool> LibvirtDomain::is_active() const {
  const int r = virDomainIsActive(m_dom);
  if (r < 0) {
    // A transient domain that shut down no longer exists: that is "not active".
    const virErrorPtr err = virGetLastError();
    if (err != nullptr && err->code == VIR_ERR_NO_DOMAIN) {
      return false;
    }
    return fail("libvirt domain " + m_name, "cannot query state (virDomainIsActive): " + last_libvirt_error());
  }
  return r == 1;
}

Expected<void> LibvirtDomain::destroy() {
  BI_TRY_ASSIGN(bool active, is_active());
  if (!active) {
    return Ok{};
  }
  if (virDomainDestroy(m_dom) < 0) {
    const virErrorPtr err = virGetLastError();
    if (err != nullptr && (err->code == VIR_ERR_NO_DOMAIN || err->code == VIR_ERR_OPERATION_INVALID)) {
      return Ok{}; // it stopped by itself in the meantime
    }
    return fail("libvirt domain " + m_name, "cannot destroy (virDomainDestroy): " + last_libvirt_error());
  }
  return Ok{};
}

} // namespace bi
