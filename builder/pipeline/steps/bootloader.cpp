// bootloader: an ext4 boot partition with extlinux installed, shared by every image. The
// one libguestfs appliance launch of a build; it needs no other step, so it starts early.
#include <spdlog/spdlog.h>

#include "guest/accel.hpp"
#include "image/disk.hpp"
#include "pipeline/steps/step.hpp"

namespace bi {

StepKind bootloader_step() {
  StepKind k;
  k.kind = "bootloader";
  k.output_in_layer = "disk.raw";
  k.built_note = "built (libguestfs)";
  k.run = [](StepContext& ctx, const PlanStep&, const StepIO&, const fs::path& out) -> Expected<void> {
    const Accelerator accel = detect_accelerator(ctx.options.cache_dir);
    spdlog::info("bootloader: libguestfs appliance with {} ({})", accel.kvm ? "KVM" : "TCG", accel.reason);
    return build_bootloader_disk(out / "disk.raw", !accel.kvm);
  };
  return k;
}

} // namespace bi
