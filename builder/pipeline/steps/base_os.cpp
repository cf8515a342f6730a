// base-os: the root filesystem every image of this OS release starts from (mmdebstrap
// minbase + kernel + Puppet agent), or the root filesystem of an existing cloud image.
#include <spdlog/spdlog.h>

#include "guest/accel.hpp"
#include "pipeline/steps/step.hpp"

namespace bi {

StepKind base_os_step() {
  StepKind k;
  k.kind = "base-os";
  k.run = [](StepContext& ctx, const PlanStep&, const StepIO& io, const fs::path& out) -> Expected<void> {
    BI_TRY_ASSIGN(TempDir scratch, TempDir::create(ctx.store.tmp_dir(), "base-scratch-"));
    if (!ctx.plan.base.image.empty()) {
      const Accelerator accel = detect_accelerator(ctx.options.cache_dir);
      return build_base_from_image(ctx.plan.base, out, scratch.path(), !accel.kvm, io.sink);
    }
    return build_base_rootfs(ctx.plan.base, out, scratch.path(), io.sink);
  };
  return k;
}

} // namespace bi
