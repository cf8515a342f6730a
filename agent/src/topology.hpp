#pragma once

#include "common.hpp"
#include "events.hpp"
#include "mqtt.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace cartridge_agent {

// Where our member stands in a CompleteTopologyEvent. Gson leaves null fields out, so
// only the path serviceMap → clusterIdClusterMap → memberMap → memberStateManager is
// read, and every other key may be missing.
struct MemberInTopology {
    enum class Lookup { service_absent, cluster_absent, member_absent, found };
    Lookup lookup = Lookup::service_absent;
    // Last entry of memberStateManager.stateStack; empty when that is missing.
    std::string state;
    // Our cluster's memberMap as JSON text (STRATOS_MEMBER_LIST_JSON); empty if absent.
    std::string member_list_json;

    // "member absent from cluster X", "state Created", for the wait log.
    std::string describe(const MemberIdentity& identity) const;
};

Result<MemberInTopology> find_member_in_topology(std::string_view body, const MemberIdentity& identity);

// The states after which a (re)started agent may announce InstanceStartedEvent: the
// Python agent accepts only Initialized and so hangs forever after a restart.
bool state_allows_start(std::string_view state);

// What an inbound message means for this member.
struct ArtifactUpdate {
    std::string cluster_id;
    std::string tenant_id;
    std::string repo_url;
    std::optional<std::string> repo_user;
    std::optional<std::string> repo_password_encrypted;
    std::optional<std::string> status;
    bool commit_enabled = false;
};

struct RoutedEvent {
    enum class Kind {
        ignore,
        complete_topology,
        member_initialized, // our member
        artifact_updated,   // our cluster
        cleanup,            // our member, or our cluster instance
        complete_tenant,
        signup_removed, // our application
        topology_other, // other Member* topology events: extension only
    };
    Kind kind = Kind::ignore;
    // Last topic segment, also the extension's name.
    std::string event_name;
    // Why it was ignored, for debug logging.
    std::string reason;
    std::optional<MemberInTopology> member;
    std::optional<ArtifactUpdate> artifact;
    // signup_removed: whose sign-up ("-1234", the super tenant, when the body has none).
    std::string tenant_id;
    // The body, for extensions that get it (topology, tenant list).
    std::string body;
};

RoutedEvent route_event(const InboundMessage& message, const MemberIdentity& identity);

} // namespace cartridge_agent
