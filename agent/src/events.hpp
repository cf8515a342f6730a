#pragma once

#include "health.hpp"
#include "payload.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace cartridge_agent {

inline constexpr std::string_view k_topic_instance_started = "instance/status/InstanceStartedEvent";
inline constexpr std::string_view k_topic_instance_activated = "instance/status/InstanceActivatedEvent";
inline constexpr std::string_view k_topic_maintenance_mode = "instance/status/InstanceMaintenanceModeEvent";
inline constexpr std::string_view k_topic_topology_request = "initializer/CompleteTopologyRequestEvent";
inline constexpr std::string_view k_topic_tenant_request = "initializer/CompleteTenantRequestEvent";
inline constexpr std::string_view k_topic_ready_to_shutdown = "instance/status/InstanceReadyToShutdownEvent";
inline constexpr std::string_view k_health_topic_prefix = "cartridge/health/";
inline constexpr std::string_view k_default_instance_id_file = "/var/lib/cartridge/instance-id";

// Who this instance is, as Stratos names it. Absent values become JSON null.
struct MemberIdentity {
    std::optional<std::string> service_name;
    std::optional<std::string> cluster_id;
    std::optional<std::string> cluster_instance_id;
    std::optional<std::string> member_id;
    std::optional<std::string> instance_id;
    std::optional<std::string> network_partition_id;
    std::optional<std::string> partition_id;
    std::optional<std::string> application_id;
};

// `service_name` is the merged configuration value (payload SERVICE_NAME over
// service.name); an empty string means absent. INSTANCE_ID comes from the payload and,
// failing that, from `instance_id_from_file`.
MemberIdentity make_member_identity(const PayloadMap& payload, std::string_view service_name,
                                    const std::optional<std::string>& instance_id_from_file);

// The init script may record the IaaS instance id here; missing, empty or `null` is absent.
std::optional<std::string> read_instance_id_file(const std::filesystem::path& path);

// Compact JSON with keys sorted, as the Python agent's json.dumps(sort_keys=True).
std::string instance_started_event(const MemberIdentity& identity);
std::string instance_activated_event(const MemberIdentity& identity);
std::string instance_ready_to_shutdown_event(const MemberIdentity& identity);
std::string instance_maintenance_mode_event(const MemberIdentity& identity);

// cartridge/health/<memberId>; nothing without a member id, since the topic would not
// identify the sender.
std::optional<std::string> health_topic(const MemberIdentity& identity);

std::string health_message(const MemberIdentity& identity, const HealthSample& sample, std::int64_t timestamp_ms);

} // namespace cartridge_agent
