// system: the base layer + the cartridge's packages; in full mode also the cartridge agent
// and `puppet apply` of its classes in a chroot.
#include "pipeline/steps/step.hpp"

namespace bi {

StepKind system_step() {
  StepKind k;
  k.kind = "system";
  k.run = [](StepContext& ctx, const PlanStep& step, const StepIO& io, const fs::path& out) -> Expected<void> {
    return build_system_rootfs(ctx.plan.system, ctx.input(step, 0), out, io.sink);
  };
  return k;
}

} // namespace bi
