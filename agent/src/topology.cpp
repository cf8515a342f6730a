#include "topology.hpp"

#include <nlohmann/json.hpp>

namespace cartridge_agent {
namespace {

using nlohmann::json;

const json* child(const json& object, std::string_view key) {
    if (!object.is_object()) {
        return nullptr;
    }
    const auto found = object.find(key);
    return found == object.end() ? nullptr : &*found;
}

std::optional<std::string> string_field(const json& object, std::string_view key) {
    const auto* value = child(object, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (value->is_string()) {
        return value->get<std::string>();
    }
    // Stratos writes tenantId as a string, other senders as a number; both mean the same.
    if (value->is_number_integer()) {
        return std::to_string(value->get<long long>());
    }
    return std::nullopt;
}

bool matches(const std::optional<std::string>& ours, const std::optional<std::string>& theirs) {
    return ours && theirs && !ours->empty() && *ours == *theirs;
}

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

} // namespace

std::string MemberInTopology::describe(const MemberIdentity& identity) const {
    const auto text = [](const std::optional<std::string>& value) { return value ? *value : std::string("(none)"); };
    switch (lookup) {
    case Lookup::service_absent:
        return "service " + text(identity.service_name) + " absent";
    case Lookup::cluster_absent:
        return "cluster " + text(identity.cluster_id) + " absent";
    case Lookup::member_absent:
        return "member absent from cluster " + text(identity.cluster_id);
    case Lookup::found:
        break;
    }
    return "member state " + (state.empty() ? std::string("unknown") : state);
}

Result<MemberInTopology> find_member_in_topology(std::string_view body, const MemberIdentity& identity) {
    const auto parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded()) {
        return Error{"CompleteTopologyEvent: not valid JSON"};
    }
    MemberInTopology result;
    const json* topology = child(parsed, "topology");
    const json* services = topology != nullptr ? child(*topology, "serviceMap") : nullptr;
    const json* service =
        services != nullptr && identity.service_name ? child(*services, *identity.service_name) : nullptr;
    if (service == nullptr) {
        return result;
    }
    const json* clusters = child(*service, "clusterIdClusterMap");
    const json* cluster = clusters != nullptr && identity.cluster_id ? child(*clusters, *identity.cluster_id) : nullptr;
    if (cluster == nullptr) {
        result.lookup = MemberInTopology::Lookup::cluster_absent;
        return result;
    }
    const json* members = child(*cluster, "memberMap");
    if (members != nullptr) {
        result.member_list_json = dump(*members);
    }
    const json* member = members != nullptr && identity.member_id ? child(*members, *identity.member_id) : nullptr;
    if (member == nullptr) {
        result.lookup = MemberInTopology::Lookup::member_absent;
        return result;
    }
    result.lookup = MemberInTopology::Lookup::found;
    const json* manager = child(*member, "memberStateManager");
    const json* stack = manager != nullptr ? child(*manager, "stateStack") : nullptr;
    if (stack != nullptr && stack->is_array() && !stack->empty() && stack->back().is_string()) {
        result.state = stack->back().get<std::string>();
    }
    return result;
}

bool state_allows_start(std::string_view state) {
    return state == "Initialized" || state == "Starting" || state == "Active";
}

RoutedEvent route_event(const InboundMessage& message, const MemberIdentity& identity) {
    RoutedEvent routed;
    const std::string_view topic = message.topic;
    routed.event_name = std::string(topic.substr(topic.rfind('/') + 1));
    const auto ignore = [&](std::string reason) {
        routed.kind = RoutedEvent::Kind::ignore;
        routed.reason = std::move(reason);
        return routed;
    };
    // The agent's own status events come back through instance/#.
    if (topic.starts_with("instance/status/")) {
        return ignore("own status event");
    }
    if (topic == "topology/CompleteTopologyEvent") {
        auto member = find_member_in_topology(message.payload, identity);
        if (!member) {
            return ignore(member.error().message);
        }
        routed.kind = RoutedEvent::Kind::complete_topology;
        routed.member = std::move(member).value();
        routed.body = message.payload;
        return routed;
    }
    const auto body = json::parse(message.payload, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        return ignore("body is not a JSON object");
    }
    if (topic == "topology/MemberInitializedEvent") {
        if (!matches(identity.member_id, string_field(body, "memberId"))) {
            routed.kind = RoutedEvent::Kind::topology_other;
            return routed;
        }
        routed.kind = RoutedEvent::Kind::member_initialized;
        return routed;
    }
    if (topic.starts_with("topology/Member")) {
        routed.kind = RoutedEvent::Kind::topology_other;
        return routed;
    }
    if (topic == "instance/notifier/ArtifactUpdatedEvent") {
        ArtifactUpdate update;
        auto cluster = string_field(body, "clusterId");
        if (cluster) {
            const auto first = cluster->find_first_not_of(" \t\r\n");
            *cluster = first == std::string::npos
                           ? std::string()
                           : cluster->substr(first, cluster->find_last_not_of(" \t\r\n") - first + 1);
        }
        if (!matches(identity.cluster_id, cluster)) {
            return ignore("ArtifactUpdatedEvent for another cluster");
        }
        const auto url = string_field(body, "repoURL");
        if (!url || url->empty()) {
            return ignore("ArtifactUpdatedEvent without repoURL");
        }
        update.cluster_id = *cluster;
        update.repo_url = *url;
        update.tenant_id = string_field(body, "tenantId").value_or("-1234");
        update.repo_user = string_field(body, "repoUserName");
        update.repo_password_encrypted = string_field(body, "repoPassword");
        update.status = string_field(body, "status");
        if (const auto* commit = child(body, "commitEnabled"); commit != nullptr && commit->is_boolean()) {
            update.commit_enabled = commit->get<bool>();
        }
        routed.kind = RoutedEvent::Kind::artifact_updated;
        routed.artifact = std::move(update);
        return routed;
    }
    if (topic == "instance/notifier/InstanceCleanupMemberEvent") {
        if (!matches(identity.member_id, string_field(body, "memberId"))) {
            return ignore("cleanup of another member");
        }
        routed.kind = RoutedEvent::Kind::cleanup;
        return routed;
    }
    if (topic == "instance/notifier/InstanceCleanupClusterEvent") {
        if (!matches(identity.cluster_id, string_field(body, "clusterId")) ||
            !matches(identity.cluster_instance_id, string_field(body, "clusterInstanceId"))) {
            return ignore("cleanup of another cluster instance");
        }
        routed.kind = RoutedEvent::Kind::cleanup;
        return routed;
    }
    if (topic == "tenant/CompleteTenantEvent") {
        routed.kind = RoutedEvent::Kind::complete_tenant;
        const auto* tenants = child(body, "tenants");
        routed.body = tenants != nullptr ? dump(*tenants) : std::string("[]");
        return routed;
    }
    if (topic == "application/signup/ApplicationSignUpRemovedEvent") {
        if (!matches(identity.application_id, string_field(body, "applicationId"))) {
            return ignore("sign-up removal of another application");
        }
        routed.kind = RoutedEvent::Kind::signup_removed;
        routed.tenant_id = string_field(body, "tenantId").value_or("-1234");
        return routed;
    }
    return ignore("no handler");
}

} // namespace cartridge_agent
