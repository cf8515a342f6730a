// The cartridge agent's launch-payload parser (parse_payload) and everything the agent does
// with a payload before it talks to the broker: the overrides of agent.conf, the member
// identity, the status events and the health topic. The payload comes from the IaaS
// metadata (user data): any bytes.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "events.hpp"
#include "fuzz_check.hpp"
#include "payload.hpp"

using namespace cartridge_agent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ParsedPayload parsed = parse_payload(text);

  // Warnings are bounded (plus one summary line), keys valid, absent values dropped.
  FUZZ_CHECK(parsed.warnings.size() <= k_max_payload_warnings + 1);
  for (const auto& [key, value] : parsed.values) {
    FUZZ_CHECK(is_valid_payload_key(key));
    FUZZ_CHECK(!value.empty() && value != "null");
    FUZZ_CHECK(value.front() != ' ' && value.back() != ' ');
  }

  auto config = parse_config("mb.urls = 127.0.0.1:1883\nservice.name = php\n", "agent.conf");
  FUZZ_CHECK(config.has_value());
  AgentConfig merged = config.value();
  if (apply_payload_overrides(merged, parsed.values, "launch-params")) {
    FUZZ_CHECK(check_complete(merged, "agent.conf").has_value());
    for (const auto port : merged.ports) {
      FUZZ_CHECK(port != 0);
    }
  }

  const MemberIdentity identity = make_member_identity(parsed.values, merged.service_name, std::nullopt);
  // Events are valid JSON whatever the payload's bytes (invalid UTF-8 is replaced).
  for (const auto& event : {instance_started_event(identity), instance_activated_event(identity),
                            instance_ready_to_shutdown_event(identity)}) {
    const auto j = nlohmann::json::parse(event, nullptr, false);
    FUZZ_CHECK(!j.is_discarded() && j.is_object());
  }
  if (const auto topic = health_topic(identity)) {
    FUZZ_CHECK(topic->find_first_of("+#", 0) == std::string::npos);
    FUZZ_CHECK(topic->find('/', std::string_view(k_health_topic_prefix).size()) == std::string::npos);
  }
  return 0;
}
