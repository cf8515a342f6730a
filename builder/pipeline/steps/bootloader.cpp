// bootloader: an ext4 boot partition with extlinux installed, shared by every image. It
// needs no other step, so it starts early. extlinux is installed through a loop mount on
// the host; only where the host cannot loop-mount (not root, no loop device) through a
// libguestfs appliance, the one appliance launch of a cold build.
#include <spdlog/spdlog.h>

#include "guest/accel.hpp"
#include "image/disk.hpp"
#include "pipeline/steps/step.hpp"

namespace bi {

StepKind bootloader_step() {
  StepKind k;
  k.kind = "bootloader";
  k.output_in_layer = "disk.raw";
  k.built_note = "built";
  k.run = [](StepContext& ctx, const PlanStep&, const StepIO& io, const fs::path& out) -> Expected<void> {
    BI_TRY_ASSIGN(bool on_host, build_bootloader_disk_on_host(out / "disk.raw"));
    if (on_host) {
      io.note("built (loop mount)");
      return Ok{};
    }
    // Only now: the KVM probe alone can take 15 s on a host with broken nested KVM.
    const Accelerator accel = detect_accelerator(ctx.options.cache_dir);
    spdlog::info("bootloader: libguestfs appliance with {} ({})", accel.kvm ? "KVM" : "TCG", accel.reason);
    BI_TRY(build_bootloader_disk(out / "disk.raw", !accel.kvm));
    io.note("built (libguestfs)");
    return Ok{};
  };
  return k;
}

} // namespace bi
