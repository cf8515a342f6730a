// The one list of step kinds. Adding a kind: a new file in this folder defining
// `StepKind <name>_step()`, one line here, and its entry in the plan's list (make_plan).
#include <vector>

#include "pipeline/steps/step.hpp"

namespace bi {

StepKind base_os_step();
StepKind bootloader_step();
StepKind system_step();
StepKind assemble_step();
StepKind convert_step();
StepKind finalize_step();

const StepKind* find_step_kind(const std::string& kind) {
  static const std::vector<StepKind> kinds = {
      base_os_step(), bootloader_step(), system_step(), assemble_step(), convert_step(), finalize_step(),
  };
  for (const auto& k : kinds) {
    if (k.kind == kind) {
      return &k;
    }
  }
  return nullptr;
}

} // namespace bi
