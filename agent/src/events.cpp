#include "events.hpp"

#include "config.hpp"

#include <nlohmann/json.hpp>

namespace cartridge_agent {
namespace {

template <class Json> Json optional_string(const std::optional<std::string>& value) {
    return value ? Json(*value) : Json(nullptr);
}

// Fields shared by every instance/status event.
nlohmann::json status_event(const MemberIdentity& identity) {
    using nlohmann::json;
    return json{
        {"serviceName", optional_string<json>(identity.service_name)},
        {"clusterId", optional_string<json>(identity.cluster_id)},
        {"clusterInstanceId", optional_string<json>(identity.cluster_instance_id)},
        {"memberId", optional_string<json>(identity.member_id)},
        {"instanceId", optional_string<json>(identity.instance_id)},
        {"networkPartitionId", optional_string<json>(identity.network_partition_id)},
        {"partitionId", optional_string<json>(identity.partition_id)},
    };
}

std::optional<std::string> present(std::string_view value) {
    if (value.empty() || value == "null") {
        return std::nullopt;
    }
    return std::string(value);
}

// Payload bytes are not guaranteed to be UTF-8; replacing bad sequences beats throwing
// in the middle of a lifecycle step.
template <class Json> std::string serialise(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

} // namespace

MemberIdentity make_member_identity(const PayloadMap& payload, std::string_view service_name,
                                    const std::optional<std::string>& instance_id_from_file) {
    MemberIdentity identity;
    identity.service_name = present(service_name);
    identity.cluster_id = payload_value(payload, "CLUSTER_ID");
    identity.cluster_instance_id = payload_value(payload, "CLUSTER_INSTANCE_ID");
    identity.member_id = payload_value(payload, "MEMBER_ID");
    identity.instance_id = payload_value(payload, "INSTANCE_ID");
    if (!identity.instance_id) {
        identity.instance_id = instance_id_from_file;
    }
    identity.network_partition_id = payload_value(payload, "NETWORK_PARTITION_ID");
    identity.partition_id = payload_value(payload, "PARTITION_ID");
    identity.application_id = payload_value(payload, "APPLICATION_ID");
    return identity;
}

std::optional<std::string> read_instance_id_file(const std::filesystem::path& path) {
    auto text = read_text_file(path);
    if (!text) {
        return std::nullopt;
    }
    const auto& content = text.value();
    const auto first = content.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        return std::nullopt;
    }
    const auto last = content.find_last_not_of(" \t\r\n");
    return present(std::string_view(content).substr(first, last - first + 1));
}

std::string instance_started_event(const MemberIdentity& identity) {
    auto event = status_event(identity);
    event["applicationId"] = optional_string<nlohmann::json>(identity.application_id);
    return serialise(event);
}

std::string instance_activated_event(const MemberIdentity& identity) { return serialise(status_event(identity)); }

std::string instance_ready_to_shutdown_event(const MemberIdentity& identity) {
    return serialise(status_event(identity));
}

std::string instance_maintenance_mode_event(const MemberIdentity& identity) {
    return serialise(status_event(identity));
}

std::optional<std::string> health_topic(const MemberIdentity& identity) {
    // '+', '#' and '/' would change which subscriptions match the topic.
    if (!identity.member_id || identity.member_id->find_first_of("+#/") != std::string::npos) {
        return std::nullopt;
    }
    return std::string(k_health_topic_prefix) + *identity.member_id;
}

std::string health_message(const MemberIdentity& identity, const HealthSample& sample, std::int64_t timestamp_ms) {
    using nlohmann::ordered_json;
    // Field order follows the documented message layout, for readers of raw MQTT traffic.
    const ordered_json message{
        {"clusterId", optional_string<ordered_json>(identity.cluster_id)},
        {"clusterInstanceId", optional_string<ordered_json>(identity.cluster_instance_id)},
        {"networkPartitionId", optional_string<ordered_json>(identity.network_partition_id)},
        {"memberId", optional_string<ordered_json>(identity.member_id)},
        {"partitionId", optional_string<ordered_json>(identity.partition_id)},
        {"health",
         ordered_json{{"memory_consumption", sample.memory_consumption}, {"load_average", sample.load_average}}},
        {"timestamp", timestamp_ms},
    };
    return serialise(message);
}

} // namespace cartridge_agent
