#pragma once
// Boots an image under qemu (KVM when usable, else TCG) on a throwaway overlay
// (-snapshot) and watches the serial console. Used to prove an image boots to a login
// prompt and to measure boot time.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "boot/disk_bus.hpp"
#include "util/expected.hpp"

namespace bi {

struct QemuBootOptions {
  std::filesystem::path image;
  std::filesystem::path console_log;
  std::string wait_for = "login:"; // text on the serial console
  std::chrono::seconds timeout{300};
  std::vector<std::string> guestfwd;               // "tcp:10.0.2.100:1883-tcp:127.0.0.1:18830"
  std::vector<std::filesystem::path> extra_drives; // e.g. a config drive (raw, read-only)
  DiskBus disk_bus = DiskBus::virtio;
  bool use_kvm = false;
  int memory_mib = 1024;
  // bios | uefi | uefi-secure (boot/libvirt_domain.hpp): OVMF's variables are copied to
  // `console_log` + ".vars" for the run.
  std::string firmware = "bios";
};

struct QemuBootResult {
  bool found = false;
  double seconds = 0; // from qemu start to `wait_for`
  std::string console_tail;
};

Expected<QemuBootResult> boot_and_wait(const QemuBootOptions& options);

} // namespace bi
