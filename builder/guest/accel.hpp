#pragma once
// Decides between KVM and TCG. /dev/kvm existing is not enough: nested KVM on some hosts
// hangs or aborts qemu (MSR 0x10a), so a tiny kernel boot is tried once and the verdict
// cached per host kernel and qemu binary.

#include <filesystem>
#include <string>

namespace bi {

struct Accelerator {
  bool kvm = false;
  std::string reason;
};

// BUILD_IMAGE_ACCEL=kvm|tcg forces the choice.
Accelerator detect_accelerator(const std::filesystem::path& cache_dir);

} // namespace bi
