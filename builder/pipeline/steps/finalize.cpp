// finalize: digests and sizes, the manifest, the image moved to its final name, and the
// catalog entry (atomic renames; the catalog under a lock).
#include "guest/guestfs_handle.hpp"
#include "image/catalog.hpp"
#include "image/disk.hpp"
#include "pipeline/steps/step.hpp"
#include "util/hash.hpp"
#include "util/time.hpp"

namespace bi {

StepKind finalize_step() {
  StepKind k;
  k.kind = "finalize";
  k.run = [](StepContext& ctx, const PlanStep& step, const StepIO& io, const fs::path&) -> Expected<void> {
    const fs::path& image_tmp = ctx.input(step, 0);
    const Plan& plan = ctx.plan;
    BuildResult& result = ctx.result;
    std::error_code ec;
    auto digests = hash_file(image_tmp);
    if (!digests) {
      fs::remove(image_tmp, ec);
      return Unexpected{digests.error()};
    }
    BI_TRY_ASSIGN(ImageSizes sizes, image_sizes(image_tmp));
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.start).count();
    result.appliance_launches = GuestfsHandle::launch_count() - ctx.launches_before;
    result.layers_built = ctx.store.layers_built();
    result.remote = ctx.store.remote_stats();
    Manifest& m = result.manifest;
    m.name = plan.image_name;
    m.file = result.image.filename().string();
    m.format = to_string(plan.format);
    m.cartridge = plan.cartridge.type;
    m.mode = to_string(plan.mode);
    m.tool_version = k_tool_version;
    m.inputs_key = plan.inputs_key;
    m.sha256 = digests->sha256;
    m.sha512 = digests->sha512;
    m.virtual_size = sizes.virtual_bytes;
    m.file_size = sizes.file_bytes;
    m.layers = plan.layer_keys();
    m.packages = ctx.packages;
    m.package_sizes_kib = ctx.package_sizes_kib;
    m.tree_sizes = ctx.tree_sizes;
    m.build_seconds = result.seconds;
    m.phases = result.phases;
    m.appliance_launches = result.appliance_launches;
    m.created = utc_timestamp();
    m.plan = plan.to_json();
    BI_TRY(write_manifest(result.manifest_path, m));
    fs::rename(image_tmp, result.image, ec);
    if (ec) {
      return fail(result.image.string(), "cannot move the image into place: " + ec.message());
    }
    BI_TRY(catalog_upsert(ctx.options.output_dir, m.catalog_entry(result.manifest_path.filename().string())));
    io.note(human_bytes(sizes.file_bytes));
    ctx.outputs[step.kind] = result.image;
    return Ok{};
  };
  return k;
}

} // namespace bi
