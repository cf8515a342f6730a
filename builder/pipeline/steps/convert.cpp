// convert: the raw disk to the output format (zstd qcow2, vmdk; raw is a rename), written
// under a temporary name in the output folder.
#include "image/disk.hpp"
#include "pipeline/steps/step.hpp"

namespace bi {

StepKind convert_step() {
  StepKind k;
  k.kind = "convert";
  k.run = [](StepContext& ctx, const PlanStep& step, const StepIO&, const fs::path&) -> Expected<void> {
    const fs::path& raw = ctx.input(step, 0);
    const std::string ext = to_string(ctx.plan.format);
    const fs::path image_tmp = ctx.options.output_dir / (".tmp-" + ctx.plan.image_name + "." + ext);
    ctx.outputs[step.kind] = image_tmp;
    std::error_code ec;
    fs::remove(image_tmp, ec);
    if (ctx.plan.format == OutputFormat::raw) {
      fs::rename(raw, image_tmp, ec);
      if (!ec) {
        return Ok{};
      }
    }
    auto converted = convert_disk(raw, ext, image_tmp);
    if (!converted) {
      fs::remove(image_tmp, ec);
    }
    return converted;
  };
  return k;
}

} // namespace bi
