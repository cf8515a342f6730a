#include "events.hpp"
#include "payload.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

using namespace cartridge_agent;

namespace {

MemberIdentity full_identity() {
  const auto payload =
      parse_payload("APPLICATION_ID=app,SERVICE_NAME=php,CLUSTER_ID=app.myphp.php.domain,CLUSTER_INSTANCE_ID=app-1,"
                    "MEMBER_ID=app.myphp.php.domain5b7c,INSTANCE_ID=i-0abc,NETWORK_PARTITION_ID=network-partition-1,"
                    "PARTITION_ID=partition-1");
  return make_member_identity(payload.values, "php", std::nullopt);
}

} // namespace

TEST_CASE("InstanceStartedEvent carries all fields, keys sorted", "[events]") {
  CHECK(instance_started_event(full_identity()) ==
        R"({"applicationId":"app","clusterId":"app.myphp.php.domain","clusterInstanceId":"app-1",)"
        R"("instanceId":"i-0abc","memberId":"app.myphp.php.domain5b7c",)"
        R"("networkPartitionId":"network-partition-1","partitionId":"partition-1","serviceName":"php"})");
}

TEST_CASE("InstanceActivatedEvent and InstanceReadyToShutdownEvent have no applicationId", "[events]") {
  const std::string expected =
      R"({"clusterId":"app.myphp.php.domain","clusterInstanceId":"app-1","instanceId":"i-0abc",)"
      R"("memberId":"app.myphp.php.domain5b7c","networkPartitionId":"network-partition-1",)"
      R"("partitionId":"partition-1","serviceName":"php"})";
  CHECK(instance_activated_event(full_identity()) == expected);
  CHECK(instance_ready_to_shutdown_event(full_identity()) == expected);
}

TEST_CASE("absent values are JSON null", "[events]") {
  const auto payload = parse_payload("CLUSTER_ID=c,MEMBER_ID=m,INSTANCE_ID=null,APPLICATION_ID=,GROUP_NAME=null");
  const auto identity = make_member_identity(payload.values, "", std::nullopt);
  CHECK(instance_started_event(identity) ==
        R"({"applicationId":null,"clusterId":"c","clusterInstanceId":null,"instanceId":null,"memberId":"m",)"
        R"("networkPartitionId":null,"partitionId":null,"serviceName":null})");
  CHECK(instance_activated_event(identity) ==
        R"({"clusterId":"c","clusterInstanceId":null,"instanceId":null,"memberId":"m",)"
        R"("networkPartitionId":null,"partitionId":null,"serviceName":null})");
}

TEST_CASE("instanceId falls back to the init script's file", "[events]") {
  const auto dir = agent_test::make_test_directory("events");
  const auto file = dir / "instance-id";

  SECTION("file used when the payload has none") {
    agent_test::write_file(file, "  i-0123456789\n");
    const auto identity =
        make_member_identity(parse_payload("INSTANCE_ID=null").values, "php", read_instance_id_file(file));
    CHECK(identity.instance_id == std::optional<std::string>("i-0123456789"));
  }
  SECTION("payload wins over the file") {
    agent_test::write_file(file, "i-from-file\n");
    const auto identity =
        make_member_identity(parse_payload("INSTANCE_ID=i-payload").values, "php", read_instance_id_file(file));
    CHECK(identity.instance_id == std::optional<std::string>("i-payload"));
  }
  SECTION("missing, blank or null file is absent") {
    CHECK_FALSE(read_instance_id_file(dir / "missing").has_value());
    agent_test::write_file(file, " \n");
    CHECK_FALSE(read_instance_id_file(file).has_value());
    agent_test::write_file(file, "null\n");
    CHECK_FALSE(read_instance_id_file(file).has_value());
  }
}

TEST_CASE("special characters and invalid UTF-8 never break the JSON", "[events]") {
  const auto payload = parse_payload("CLUSTER_ID=a\"b\\c,MEMBER_ID=m\xFF");
  const auto identity = make_member_identity(payload.values, "php", std::nullopt);
  const auto body = instance_activated_event(identity);
  const auto parsed = nlohmann::json::parse(body);
  CHECK(parsed["clusterId"] == "a\"b\\c");
  CHECK(parsed["memberId"] == "m\xEF\xBF\xBD");
}

TEST_CASE("health message layout", "[events]") {
  const auto message = health_message(full_identity(), HealthSample{42.5, 12.25}, 1700000000123);
  CHECK(message == R"({"clusterId":"app.myphp.php.domain","clusterInstanceId":"app-1",)"
                   R"("networkPartitionId":"network-partition-1","memberId":"app.myphp.php.domain5b7c",)"
                   R"("partitionId":"partition-1","health":{"memory_consumption":42.5,"load_average":12.25},)"
                   R"("timestamp":1700000000123})");
}

TEST_CASE("health topic", "[events]") {
  CHECK(health_topic(full_identity()) == std::optional<std::string>("cartridge/health/app.myphp.php.domain5b7c"));
  MemberIdentity identity;
  CHECK_FALSE(health_topic(identity).has_value());
  identity.member_id = "a/b";
  CHECK_FALSE(health_topic(identity).has_value());
  identity.member_id = "a#";
  CHECK_FALSE(health_topic(identity).has_value());
}

TEST_CASE("topics are the Stratos ones", "[events]") {
  CHECK(k_topic_instance_started == "instance/status/InstanceStartedEvent");
  CHECK(k_topic_instance_activated == "instance/status/InstanceActivatedEvent");
  CHECK(k_topic_ready_to_shutdown == "instance/status/InstanceReadyToShutdownEvent");
}
