// Topology parsing (lenient, as Gson leaves nulls out) and routing of inbound events.
#include "topology.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

using namespace cartridge_agent;
using nlohmann::json;

namespace {

MemberIdentity identity() {
  MemberIdentity id;
  id.service_name = "php";
  id.cluster_id = "php1.php.domain";
  id.member_id = "php1.php.domain-m1";
  id.cluster_instance_id = "app1-1";
  id.application_id = "app1";
  return id;
}

// The minimal body of the protocol reference, with our member in `states`.
json topology_with(const json& states) {
  return json::parse(R"({"topology": {"initialized": false,
      "serviceMap": {"php": {"serviceType": "SingleTenant", "portMap": {}, "properties": {},
        "clusterIdClusterMap": {"php1.php.domain": {
          "serviceName": "php", "autoscalePolicyName": "as1", "hostNames": ["php1.stratos.org"],
          "isLbCluster": false, "isKubernetesCluster": false, "appId": "app1", "kubernetesServices": [],
          "memberMap": {"php1.php.domain-m1": {
            "serviceName": "php", "clusterId": "php1.php.domain", "memberId": "php1.php.domain-m1",
            "portMap": {"8280": {"protocol": "http", "value": 80, "proxy": 8280}},
            "memberStateManager": {"stateStack": []}}}}}}}}})")
      .patch(json::array({{{"op", "replace"},
                           {"path", "/topology/serviceMap/php/clusterIdClusterMap/php1.php.domain/memberMap/"
                                    "php1.php.domain-m1/memberStateManager/stateStack"},
                           {"value", states}}}));
}

RoutedEvent route(std::string topic, const json& body) {
  return route_event(InboundMessage{std::move(topic), body.dump()}, identity());
}

} // namespace

TEST_CASE("each member state is read from the end of the state stack", "[topology]") {
  for (const std::string state : {"Created", "Initialized", "Starting", "Active", "In_Maintenance"}) {
    const auto found = find_member_in_topology(topology_with({"Created", state}).dump(), identity());
    REQUIRE(found);
    CHECK(found.value().lookup == MemberInTopology::Lookup::found);
    CHECK(found.value().state == state);
  }
  CHECK(state_allows_start("Initialized"));
  CHECK(state_allows_start("Starting"));
  CHECK(state_allows_start("Active"));
  CHECK_FALSE(state_allows_start("Created"));
  CHECK_FALSE(state_allows_start("In_Maintenance"));
  CHECK_FALSE(state_allows_start(""));
}

TEST_CASE("missing optional keys and an empty state stack do not stop the lookup", "[topology]") {
  // Only the path to the member: everything Gson may omit is gone.
  const auto sparse = R"({"topology":{"serviceMap":{"php":{"clusterIdClusterMap":{"php1.php.domain":
        {"memberMap":{"php1.php.domain-m1":{"memberStateManager":{"stateStack":["Initialized"]}}}}}}}}})";
  const auto found = find_member_in_topology(sparse, identity());
  REQUIRE(found);
  CHECK(found.value().state == "Initialized");
  CHECK_THAT(found.value().member_list_json, Catch::Contains("php1.php.domain-m1"));

  const auto empty_stack = find_member_in_topology(topology_with(json::array()).dump(), identity());
  REQUIRE(empty_stack);
  CHECK(empty_stack.value().lookup == MemberInTopology::Lookup::found);
  CHECK(empty_stack.value().state.empty());
  const auto no_manager =
      find_member_in_topology(R"({"topology":{"serviceMap":{"php":{"clusterIdClusterMap":{"php1.php.domain":
        {"memberMap":{"php1.php.domain-m1":{}}}}}}}})",
                              identity());
  REQUIRE(no_manager);
  CHECK(no_manager.value().state.empty());
}

TEST_CASE("absent service, cluster or member is told apart", "[topology]") {
  auto other = identity();
  other.member_id = "someone-else";
  const auto member_absent = find_member_in_topology(topology_with({"Initialized"}).dump(), other);
  REQUIRE(member_absent);
  CHECK(member_absent.value().lookup == MemberInTopology::Lookup::member_absent);
  CHECK(member_absent.value().describe(other) == "member absent from cluster php1.php.domain");

  other = identity();
  other.cluster_id = "other.cluster";
  CHECK(find_member_in_topology(topology_with({"Initialized"}).dump(), other).value().lookup ==
        MemberInTopology::Lookup::cluster_absent);
  other = identity();
  other.service_name = "tomcat";
  CHECK(find_member_in_topology(topology_with({"Initialized"}).dump(), other).value().lookup ==
        MemberInTopology::Lookup::service_absent);
  CHECK(find_member_in_topology("{}", identity()).value().lookup == MemberInTopology::Lookup::service_absent);
  CHECK(find_member_in_topology(R"({"topology":{"serviceMap":[]}})", identity()).value().lookup ==
        MemberInTopology::Lookup::service_absent);
  const auto invalid = find_member_in_topology("{not json", identity());
  REQUIRE_FALSE(invalid);
  CHECK(invalid.error().message == "CompleteTopologyEvent: not valid JSON");
}

TEST_CASE("events are routed by topic and matched to this member", "[topology]") {
  using Kind = RoutedEvent::Kind;
  const auto topology = route("topology/CompleteTopologyEvent", topology_with({"Created", "Initialized"}));
  CHECK(topology.kind == Kind::complete_topology);
  CHECK(topology.member->state == "Initialized");

  CHECK(route("topology/MemberInitializedEvent", {{"memberId", "php1.php.domain-m1"}}).kind ==
        Kind::member_initialized);
  CHECK(route("topology/MemberInitializedEvent", {{"memberId", "other"}}).kind == Kind::topology_other);
  CHECK(route("topology/MemberActivatedEvent", {{"memberId", "other"}}).event_name == "MemberActivatedEvent");

  CHECK(route("instance/notifier/InstanceCleanupMemberEvent", {{"memberId", "php1.php.domain-m1"}}).kind ==
        Kind::cleanup);
  CHECK(route("instance/notifier/InstanceCleanupMemberEvent", {{"memberId", "php1.php.domain-m2"}}).kind ==
        Kind::ignore);
  CHECK(route("instance/notifier/InstanceCleanupMemberEvent", json::object()).kind == Kind::ignore);
  CHECK(route("instance/notifier/InstanceCleanupClusterEvent",
              {{"clusterId", "php1.php.domain"}, {"clusterInstanceId", "app1-1"}})
            .kind == Kind::cleanup);
  CHECK(route("instance/notifier/InstanceCleanupClusterEvent",
              {{"clusterId", "php1.php.domain"}, {"clusterInstanceId", "app1-2"}})
            .kind == Kind::ignore);
  CHECK(route("instance/notifier/InstanceCleanupClusterEvent", {{"clusterId", "php1.php.domain"}}).kind ==
        Kind::ignore);

  CHECK(route("instance/status/InstanceStartedEvent", {{"memberId", "php1.php.domain-m1"}}).kind == Kind::ignore);
  CHECK(route("tenant/CompleteTenantEvent", {{"tenants", {{{"tenantId", 1}, {"tenantDomain", "a.com"}}}}}).body ==
        R"([{"tenantDomain":"a.com","tenantId":1}])");
  CHECK(route("application/signup/ApplicationSignUpRemovedEvent", {{"applicationId", "app1"}, {"tenantId", 1}}).kind ==
        Kind::signup_removed);
  CHECK(route("application/signup/ApplicationSignUpRemovedEvent", {{"applicationId", "app2"}}).kind == Kind::ignore);
  CHECK(route("tenant/DomainsMappingRemovedEvent", json::object()).kind == Kind::ignore);
  CHECK(route_event({"instance/notifier/InstanceCleanupMemberEvent", "not json"}, identity()).kind == Kind::ignore);
}

TEST_CASE("ArtifactUpdatedEvent matches on the cluster only, tenantId string or number", "[topology]") {
  using Kind = RoutedEvent::Kind;
  const auto routed = route("instance/notifier/ArtifactUpdatedEvent", {{"clusterId", " php1.php.domain "},
                                                                       {"tenantId", "-1234"},
                                                                       {"repoURL", "http://git/app.git"},
                                                                       {"repoUserName", "u"},
                                                                       {"repoPassword", "+to2qVW16jzy+Xb/zuafQQ=="},
                                                                       {"commitEnabled", false}});
  REQUIRE(routed.kind == Kind::artifact_updated);
  CHECK(routed.artifact->tenant_id == "-1234");
  CHECK(routed.artifact->repo_url == "http://git/app.git");
  CHECK(routed.artifact->repo_user == "u");
  CHECK(routed.artifact->repo_password_encrypted == "+to2qVW16jzy+Xb/zuafQQ==");
  CHECK_FALSE(routed.artifact->status);

  const auto numeric = route("instance/notifier/ArtifactUpdatedEvent",
                             {{"clusterId", "php1.php.domain"}, {"tenantId", 7}, {"repoURL", "http://x"}});
  REQUIRE(numeric.kind == Kind::artifact_updated);
  CHECK(numeric.artifact->tenant_id == "7");
  CHECK_FALSE(numeric.artifact->repo_user);
  CHECK_FALSE(numeric.artifact->repo_password_encrypted);

  CHECK(route("instance/notifier/ArtifactUpdatedEvent", {{"clusterId", "other"}, {"repoURL", "http://x"}}).kind ==
        Kind::ignore);
  CHECK(route("instance/notifier/ArtifactUpdatedEvent", {{"clusterId", "php1.php.domain"}}).kind == Kind::ignore);
  CHECK(route("instance/notifier/ArtifactUpdatedEvent", {{"clusterId", "php1.php.domain"}, {"repoURL", ""}}).kind ==
        Kind::ignore);
}
