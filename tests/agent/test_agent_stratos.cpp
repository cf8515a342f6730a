// The agent against a stand-in for the Stratos servers (Cloud Controller, Stratos Manager,
// Autoscaler) on a real mosquitto, and a real git smart-HTTP server with a password
// (git_http_server.py: `git http-backend` behind HTTP Basic auth), all on 127.0.0.1.
#include "crypto.hpp"
#include "process.hpp"
#include "test_broker.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <mosquitto.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <mutex>

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_topology_request = "initializer/CompleteTopologyRequestEvent";
constexpr std::string_view k_tenant_request = "initializer/CompleteTenantRequestEvent";
constexpr std::string_view k_started = "instance/status/InstanceStartedEvent";
constexpr std::string_view k_activated = "instance/status/InstanceActivatedEvent";
constexpr std::string_view k_maintenance = "instance/status/InstanceMaintenanceModeEvent";
constexpr std::string_view k_shutdown = "instance/status/InstanceReadyToShutdownEvent";
// Test constants: an allocation failure before main() fails the test binary, as it should.
// NOLINTBEGIN(cert-err58-cpp)
const std::string k_member = "php1.php.domain3f6a";
const std::string k_cluster = "php1.php.domain";
const std::string k_cartridge_key = "PUjpXCLujDhYr5A6";
const std::string k_git_user = "tenant-user";
// Non-ASCII and URL-special characters: must survive decryption and HTTP Basic.
const std::string k_git_password = "pä$s w@rd:9f2c";
// NOLINTEND(cert-err58-cpp)

json topology(const std::string& state, bool with_member = true) {
  json member_map = json::object();
  if (with_member) {
    // The Gson shape, with optional fields left out as Gson does for nulls.
    member_map[k_member] = {{"serviceName", "php"},
                            {"clusterId", k_cluster},
                            {"memberId", k_member},
                            {"clusterInstanceId", "app1-1"},
                            {"portMap", {{"80", {{"protocol", "http"}, {"value", 80}, {"proxy", 80}}}}},
                            {"properties", json::object()},
                            {"memberStateManager", {{"stateStack", {"Created", state}}, {"identifier", k_member}}}};
  }
  return {{"topology",
           {{"initialized", false},
            {"serviceMap",
             {{"php",
               {{"serviceType", "SingleTenant"},
                {"portMap", json::object()},
                {"clusterIdClusterMap",
                 {{k_cluster,
                   {{"serviceName", "php"},
                    {"autoscalePolicyName", "as1"},
                    {"hostNames", {"php1.stratos.org"}},
                    {"isLbCluster", false},
                    {"isKubernetesCluster", false},
                    {"appId", "app1"},
                    {"kubernetesServices", json::array()},
                    {"memberMap", member_map}}}}}}}}}}}};
}

struct Seen {
  std::string topic;
  std::string payload;
};

// Plays the servers: answers the topology request (after it arrives, never before), and
// InstanceStartedEvent with an ArtifactUpdatedEvent at once, as the Stratos Manager does.
// Records everything on initializer/# and instance/status/#, in arrival order, together
// with what it published itself.
class StratosServers {
public:
  StratosServers(std::uint16_t port, std::string member_state) : m_state(std::move(member_state)) {
    mosquitto_lib_init();
    m_handle = mosquitto_new(nullptr, true, this);
    REQUIRE(m_handle != nullptr);
    mosquitto_connect_callback_set(m_handle, [](mosquitto* handle, void*, int rc) {
      if (rc == 0) {
        mosquitto_subscribe(handle, nullptr, "initializer/#", 0);
        mosquitto_subscribe(handle, nullptr, "instance/status/#", 0);
      }
    });
    mosquitto_subscribe_callback_set(m_handle, [](mosquitto*, void* self, int, int, const int*) {
      auto* servers = static_cast<StratosServers*>(self);
      const std::lock_guard lock(servers->m_mutex);
      ++servers->m_subscriptions;
    });
    mosquitto_message_callback_set(m_handle, [](mosquitto*, void* self, const mosquitto_message* message) {
      static_cast<StratosServers*>(self)->on_message(
          message->topic, std::string(static_cast<const char*>(message->payload),
                                      static_cast<std::size_t>(std::max(message->payloadlen, 0))));
    });
    REQUIRE(mosquitto_connect(m_handle, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS);
    REQUIRE(mosquitto_loop_start(m_handle) == MOSQ_ERR_SUCCESS);
    REQUIRE(agent_test::wait_until(
        [&] {
          const std::lock_guard lock(m_mutex);
          return m_subscriptions >= 2;
        },
        10s));
  }
  ~StratosServers() {
    mosquitto_disconnect(m_handle);
    mosquitto_loop_stop(m_handle, true);
    mosquitto_destroy(m_handle);
    mosquitto_lib_cleanup();
  }
  StratosServers(const StratosServers&) = delete;
  StratosServers& operator=(const StratosServers&) = delete;

  // The ArtifactUpdatedEvent sent in reply to InstanceStartedEvent; empty: none.
  void set_artifact_reply(json event) {
    const std::lock_guard lock(m_mutex);
    m_artifact_reply = std::move(event);
  }
  void set_answer_topology(bool answer) {
    const std::lock_guard lock(m_mutex);
    m_answer_topology = answer;
  }

  void publish(const std::string& topic, const json& body) {
    const auto text = body.dump();
    {
      const std::lock_guard lock(m_mutex);
      m_seen.push_back({"sent " + topic, text});
    }
    REQUIRE(mosquitto_publish(m_handle, nullptr, topic.c_str(), static_cast<int>(text.size()), text.data(), 0, false) ==
            MOSQ_ERR_SUCCESS);
  }

  std::vector<Seen> seen() const {
    const std::lock_guard lock(m_mutex);
    return m_seen;
  }
  std::vector<std::string> topics() const {
    std::vector<std::string> out;
    for (const auto& entry : seen()) {
      out.push_back(entry.topic);
    }
    return out;
  }
  std::size_t count(std::string_view topic) const {
    std::size_t n = 0;
    for (const auto& entry : seen()) {
      n += entry.topic == topic ? 1 : 0;
    }
    return n;
  }
  bool wait_for(std::string_view topic, std::size_t n = 1, std::chrono::milliseconds timeout = 60s) const {
    return agent_test::wait_until([&] { return count(topic) >= n; }, timeout);
  }

private:
  void on_message(const std::string& topic, const std::string& payload) {
    std::optional<json> artifact;
    bool answer = false;
    {
      const std::lock_guard lock(m_mutex);
      m_seen.push_back({topic, payload});
      answer = topic == k_topology_request && m_answer_topology;
      if (topic == k_started && !m_artifact_reply.empty()) {
        artifact = m_artifact_reply;
      }
    }
    if (answer) {
      publish("topology/CompleteTopologyEvent", topology(m_state));
    }
    if (artifact) {
      publish("instance/notifier/ArtifactUpdatedEvent", *artifact);
    }
  }

  mosquitto* m_handle = nullptr;
  mutable std::mutex m_mutex;
  int m_subscriptions = 0;
  std::string m_state;
  bool m_answer_topology = true;
  json m_artifact_reply;
  std::vector<Seen> m_seen;
};

void git(const fs::path& dir, std::vector<std::string> args) {
  cartridge_agent::ProcessSpec spec;
  spec.argv = {"/usr/bin/git", "-C", dir.string(), "-c", "user.name=t", "-c", "user.email=t@example.invalid"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.environment = {"PATH=/usr/bin:/bin", "HOME=" + dir.string(), "GIT_CONFIG_NOSYSTEM=1"};
  std::string output;
  const auto result = cartridge_agent::run_process(spec, cartridge_agent::sleep_idle,
                                                   [&](std::string_view line) { output += std::string(line) + "\n"; });
  INFO(output);
  REQUIRE(result.success());
}

// A repository `app.git` served over HTTP with Basic auth, and a working copy to commit from.
class GitServer {
public:
  explicit GitServer(const fs::path& dir) : m_work(dir / "work"), m_root(dir / "git"), m_port(agent_test::free_port()) {
    fs::create_directories(m_work);
    fs::create_directories(m_root);
    git(m_work, {"init", "-q", "-b", "master"});
    commit("<?php echo 'marker-v1';");
    git(m_root, {"init", "-q", "--bare", "app.git"});
    git(m_work, {"push", "-q", (m_root / "app.git").string(), "master"});
    m_process.emplace(
        std::vector<std::string>{"/usr/bin/python3", GIT_HTTP_SERVER, "--port", std::to_string(m_port), "--root",
                                 m_root.string()},
        dir / "git-http.log",
        std::map<std::string, std::string>{{"GIT_TEST_USER", k_git_user}, {"GIT_TEST_PASSWORD", k_git_password}});
    const auto port = m_port;
    REQUIRE(agent_test::wait_until([port] { return agent_test::port_open(port); }, 20s));
  }
  void commit(const std::string& index) {
    agent_test::write_file(m_work / "index.php", index);
    git(m_work, {"add", "index.php"});
    git(m_work, {"commit", "-q", "-m", "update"});
  }
  void push() { git(m_work, {"push", "-q", (m_root / "app.git").string(), "master"}); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/app.git"; }

private:
  fs::path m_work;
  fs::path m_root;
  std::uint16_t m_port;
  std::optional<agent_test::ChildProcess> m_process;
};

json artifact_event(const std::string& url, const std::string& password) {
  return {{"clusterId", k_cluster},
          {"tenantId", "-1234"},
          {"repoURL", url},
          {"repoUserName", k_git_user},
          {"repoPassword", cartridge_agent::encrypt_repo_password(password, k_cartridge_key).value()},
          {"commitEnabled", false}};
}

struct Instance {
  fs::path dir;
  std::uint16_t broker_port = 0;
  std::uint16_t service_port = 0;
  bool with_repo = true;

  fs::path www() const { return dir / "www"; }
  fs::path extensions() const { return dir / "extensions"; }
  fs::path log() const { return dir / "agent.log"; }

  std::unique_ptr<agent_test::ChildProcess> start(const std::string& extra_conf = "") const {
    fs::create_directories(extensions());
    // The real Stratos shape: null values, empty fields.
    std::string payload = "APPLICATION_ID=app1,GROUP_NAME=null,SERVICE_NAME=php,MULTITENANT=false,TENANT_ID=-1234,"
                          "CLUSTER_ID=" +
                          k_cluster + ",,,PORTS=" + std::to_string(service_port) + ",MEMBER_ID=" + k_member +
                          ",INSTANCE_ID=null,CLUSTER_INSTANCE_ID=app1-1,LB_CLUSTER_ID=null,"
                          "NETWORK_PARTITION_ID=np1,PARTITION_ID=p1,APPLICATION_PATH=" +
                          www().string() + ",CARTRIDGE_KEY=" + k_cartridge_key + ",TOKEN=tok-8d1e";
    if (with_repo) {
      payload += ",REPO_URL=http://placeholder/app.git";
    }
    agent_test::write_file(dir / "launch-params", payload);
    agent_test::write_file(dir / "agent.conf",
                           "mb.urls = 127.0.0.1:" + std::to_string(broker_port) +
                               "\nlisten.address = 127.0.0.1\nport.check.timeout = 30\n"
                               "payload.file = " +
                               (dir / "launch-params").string() + "\nextensions.dir = " + extensions().string() +
                               "\nartifact.clone.retries = 1\nartifact.clone.interval = 0\n" + extra_conf);
    return std::make_unique<agent_test::ChildProcess>(
        std::vector<std::string>{CARTRIDGE_AGENT_EXECUTABLE, "--config", (dir / "agent.conf").string()}, log(),
        std::map<std::string, std::string>{{"CREDENTIALS_DIRECTORY", ""}, {"HOME", dir.string()}});
  }
};

void write_script(const fs::path& path, const std::string& body) {
  agent_test::write_file(path, "#!/bin/sh\n" + body);
  fs::permissions(path, fs::perms::owner_all);
}

std::string all_bytes(const fs::path& dir) {
  std::string text;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      text += agent_test::read_file(entry.path());
    }
  }
  return text;
}

std::size_t index_of(const std::vector<std::string>& topics, std::string_view topic) {
  const auto it = std::find(topics.begin(), topics.end(), topic);
  return it == topics.end() ? topics.size() : static_cast<std::size_t>(it - topics.begin());
}

} // namespace

TEST_CASE("handshake order, then the application deployed from git with a password, then pulled",
          "[integration][stratos]") {
  const auto dir = agent_test::make_test_directory("stratos-artifacts");
  agent_test::MosquittoBroker broker(dir, agent_test::free_port());
  GitServer git_server(dir);
  StratosServers servers(broker.port(), "Initialized");
  servers.set_artifact_reply(artifact_event(git_server.url(), k_git_password));
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);

  Instance instance{dir, broker.port(), service_port, true};
  fs::create_directories(instance.www());
  // The web root's content as the image ships it: the backup keeps it, a removed sign-up
  // brings it back.
  const std::string image_page = "<?php echo 'page the image shipped';";
  agent_test::write_file(instance.www() / "index.php", image_page);
  // What --prepare-application-path creates with enable.initial.artifact.backup.
  fs::create_directories(dir / "www_backup");
  fs::create_directories(instance.extensions());
  write_script(instance.extensions() / "ArtifactUpdatedEvent.sh",
               "env > \"$STRATOS_APPLICATION_PATH/../env\" && mv \"$STRATOS_APPLICATION_PATH/../env\" "
               "\"$STRATOS_APPLICATION_PATH/../artifact-env\"\n");
  write_script(instance.extensions() / "StartServers.sh", "echo start-servers-ran\n");
  write_script(instance.extensions() / "ApplicationSignUpRemovedEvent.sh",
               // Renamed into place: the test must never read a half-written file.
               "ls -A \"$STRATOS_APPLICATION_PATH\" > \"$STRATOS_APPLICATION_PATH/../listing\" &&\n"
               "mv \"$STRATOS_APPLICATION_PATH/../listing\" \"$STRATOS_APPLICATION_PATH/../after-signup-removed\"\n");
  auto agent = instance.start("enable.initial.artifact.backup = true\n");

  REQUIRE(servers.wait_for(k_activated));
  const auto topics = servers.topics();
  // Started only after the topology reply; the artifact reply to started was not lost,
  // which it would be if instance/# were subscribed after started (QoS 0, not kept).
  CHECK(index_of(topics, k_topology_request) < index_of(topics, "sent topology/CompleteTopologyEvent"));
  CHECK(index_of(topics, "sent topology/CompleteTopologyEvent") < index_of(topics, k_started));
  CHECK(servers.count(k_started) == 1);
  CHECK(index_of(topics, "sent topology/CompleteTopologyEvent") < index_of(topics, k_tenant_request));
  CHECK(index_of(topics, k_tenant_request) < index_of(topics, k_started));
  CHECK(index_of(topics, k_started) < index_of(topics, "sent instance/notifier/ArtifactUpdatedEvent"));
  CHECK(index_of(topics, "sent instance/notifier/ArtifactUpdatedEvent") < index_of(topics, k_activated));
  CHECK(agent_test::read_file(instance.www() / "index.php") == "<?php echo 'marker-v1';");

  // The broker's own record, which cannot race: it handles one client's packets in order.
  const auto broker_log = agent_test::read_file(dir / "mosquitto.log");
  const auto subscribed_at = broker_log.find("\tinstance/# (QoS");
  const auto started_at = broker_log.find("'instance/status/InstanceStartedEvent'");
  REQUIRE(subscribed_at != std::string::npos);
  REQUIRE(started_at != std::string::npos);
  CHECK(subscribed_at < started_at);

  const auto started = json::parse(servers.seen().at(index_of(topics, k_started)).payload);
  CHECK(started.at("applicationId") == "app1");
  CHECK(started.at("memberId") == k_member);
  CHECK(started.at("instanceId").is_null());

  // A second event pulls the new commit.
  git_server.commit("<?php echo 'marker-v2';");
  git_server.push();
  servers.publish("instance/notifier/ArtifactUpdatedEvent", artifact_event(git_server.url(), k_git_password));
  CHECK(agent_test::wait_until(
      [&] { return agent_test::read_file(instance.www() / "index.php") == "<?php echo 'marker-v2';"; }, 60s));
  CHECK(servers.count(k_activated) == 1);

  // The script got the event's values, the encrypted password only, and no secrets.
  REQUIRE(agent_test::wait_until([&] { return fs::exists(dir / "artifact-env"); }, 30s));
  const auto env = agent_test::read_file(dir / "artifact-env");
  CHECK_THAT(env, Catch::Contains("STRATOS_ARTIFACT_UPDATED_REPO_URL=" + git_server.url()));
  CHECK_THAT(env, Catch::Contains("STRATOS_ARTIFACT_UPDATED_RESULT=deployed"));
  CHECK_THAT(env, Catch::Contains("STRATOS_CLUSTER_ID=" + k_cluster));
  CHECK_THAT(agent_test::read_file(instance.log()), Catch::Contains("extension StartServers: start-servers-ran"));
  CHECK(agent_test::read_file(dir / "www_backup" / "index.php") == image_page);

  // The subscriber leaves: another application's sign-up removal changes nothing (its
  // script runs only for ours); ours removes the application and brings back the image's page.
  servers.publish("application/signup/ApplicationSignUpRemovedEvent", {{"applicationId", "app2"}, {"tenantId", -1234}});
  servers.publish("application/signup/ApplicationSignUpRemovedEvent", {{"applicationId", "app1"}, {"tenantId", -1234}});
  REQUIRE(agent_test::wait_until([&] { return fs::exists(dir / "after-signup-removed"); }, 30s));
  CHECK(agent_test::read_file(dir / "after-signup-removed") == "index.php\n");
  CHECK(agent_test::read_file(instance.www() / "index.php") == image_page);
  CHECK_FALSE(fs::exists(instance.www() / ".git"));

  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(20s) == 0);
  // The password, in clear or as the Basic header, is in no file the agent wrote (web
  // root including .git, the log, the script's environment), nor is the key or token.
  const auto basic = cartridge_agent::base64_encode(k_git_user + ":" + k_git_password);
  for (const auto& text : {all_bytes(instance.www()), agent_test::read_file(instance.log()), env}) {
    CHECK(text.find(k_git_password) == std::string::npos);
    CHECK(text.find(basic) == std::string::npos);
  }
  CHECK(env.find(k_cartridge_key) == std::string::npos);
  CHECK(env.find("tok-8d1e") == std::string::npos);
}

TEST_CASE("no started before the member shows up; MemberInitializedEvent releases the wait", "[integration][stratos]") {
  const auto dir = agent_test::make_test_directory("stratos-wait");
  agent_test::MosquittoBroker broker(dir, agent_test::free_port());
  StratosServers servers(broker.port(), "Created");
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);
  Instance instance{dir, broker.port(), service_port, false};
  // Their "done" lines in the log show how far the agent has read the events.
  fs::create_directories(instance.extensions());
  write_script(instance.extensions() / "MemberInitializedEvent.sh", "exit 0\n");
  servers.set_answer_topology(false);
  auto agent = instance.start();

  // Our MemberInitializedEvent before any topology: Stratos drops it, and so does the agent.
  REQUIRE(servers.wait_for(k_topology_request));
  servers.publish("topology/MemberInitializedEvent", {{"memberId", k_member}, {"clusterId", k_cluster}});
  REQUIRE(agent_test::wait_until(
      [&] {
        return agent_test::read_file(instance.log())
                   .find(
                       "MemberInitializedEvent for this member before any CompleteTopologyEvent showing it: dropped") !=
               std::string::npos;
      },
      30s));
  // A topology without the member, one with it still Created, another member initialised:
  // none releases.
  servers.publish("topology/CompleteTopologyEvent", topology("Created", false));
  servers.publish("topology/CompleteTopologyEvent", topology("Created"));
  servers.publish("topology/MemberInitializedEvent", {{"memberId", "someone-else"}});
  // Events are handled in order: once the last one's extension is done, all three were
  // seen; the wait loop's next report (every 30 s, only while it still waits, naming the
  // last topology) proves that none of them ended the wait.
  const auto still_waiting = [&] {
    const auto log = agent_test::read_file(instance.log());
    const auto handled = log.find("extension MemberInitializedEvent: done");
    return handled != std::string::npos &&
           log.find("as Initialized, Starting or Active; so far: last CompleteTopologyEvent: member state Created",
                    handled) != std::string::npos;
  };
  REQUIRE(agent_test::wait_until(still_waiting, 90s));
  CHECK(servers.count(k_started) == 0);
  CHECK(agent_test::read_file(instance.log()).find("published InstanceStartedEvent") == std::string::npos);
  CHECK_THAT(
      agent_test::read_file(instance.log()),
      Catch::Contains("waiting 0 s so far for a CompleteTopologyEvent or MemberInitializedEvent showing member " +
                      k_member));

  servers.publish("topology/MemberInitializedEvent", {{"memberId", k_member}, {"clusterId", k_cluster}});
  REQUIRE(servers.wait_for(k_started));
  // No REPO_URL: activation follows at once.
  CHECK(servers.wait_for(k_activated));
  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(20s) == 0);
}

TEST_CASE("cleanup: maintenance, clean.sh, ready-to-shutdown, in order and once", "[integration][stratos]") {
  const auto dir = agent_test::make_test_directory("stratos-cleanup");
  agent_test::MosquittoBroker broker(dir, agent_test::free_port());
  StratosServers servers(broker.port(), "Initialized");
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);
  Instance instance{dir, broker.port(), service_port, false};
  fs::create_directories(instance.extensions());
  // clean.sh records how many status events the servers had when it ran.
  write_script(instance.extensions() / "clean.sh", "echo \"$STRATOS_EVENT\" >> " + (dir / "clean-ran").string() + "\n");
  write_script(instance.extensions() / "MemberStartedEvent.sh", "exit 0\n");
  auto agent = instance.start();
  REQUIRE(servers.wait_for(k_activated));

  // Another cluster instance, and another member: ignored. A cleanup publishes maintenance
  // while it handles the event, so once the marker event after them has run its extension
  // (events are handled in order), a wrong cleanup would already be in the log.
  servers.publish("instance/notifier/InstanceCleanupClusterEvent",
                  {{"clusterId", k_cluster}, {"clusterInstanceId", "app1-2"}});
  servers.publish("instance/notifier/InstanceCleanupMemberEvent", {{"memberId", k_member + "-other"}});
  servers.publish("topology/MemberStartedEvent", {{"memberId", k_member + "-other"}});
  REQUIRE(agent_test::wait_until(
      [&] {
        return agent_test::read_file(instance.log()).find("extension MemberStartedEvent: done") != std::string::npos;
      },
      60s));
  CHECK(agent_test::read_file(instance.log()).find("InstanceMaintenanceModeEvent") == std::string::npos);
  CHECK(agent_test::read_file(dir / "clean-ran").empty());
  CHECK(servers.count(k_maintenance) == 0);

  servers.publish("instance/notifier/InstanceCleanupMemberEvent", {{"memberId", k_member}});
  REQUIRE(servers.wait_for(k_shutdown));
  std::size_t maintenance_at = 0;
  {
    const auto topics = servers.topics();
    maintenance_at = index_of(topics, k_maintenance);
    CHECK(index_of(topics, k_activated) < maintenance_at);
    CHECK(maintenance_at < index_of(topics, k_shutdown));
  }
  CHECK(agent_test::read_file(dir / "clean-ran") == "clean\n");
  const auto log = agent_test::read_file(instance.log());
  CHECK(log.find("published InstanceMaintenanceModeEvent") < log.find("extension clean: running"));
  CHECK(log.find("extension clean: done") < log.find("published InstanceReadyToShutdownEvent"));

  // A cluster cleanup for us afterwards, and SIGTERM: nothing is announced twice.
  servers.publish("instance/notifier/InstanceCleanupClusterEvent",
                  {{"clusterId", k_cluster}, {"clusterInstanceId", "app1-1"}});
  REQUIRE(agent_test::wait_until(
      [&] { return agent_test::read_file(instance.log()).find("cleanup already done") != std::string::npos; }, 30s));
  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(20s) == 0);
  CHECK(servers.count(k_maintenance) == 1);
  CHECK(servers.count(k_shutdown) == 1);
  CHECK(agent_test::read_file(dir / "clean-ran") == "clean\n");
}

TEST_CASE("a restarted agent on an active member starts, redeploys and activates again", "[integration][stratos]") {
  const auto dir = agent_test::make_test_directory("stratos-restart");
  agent_test::MosquittoBroker broker(dir, agent_test::free_port());
  GitServer git_server(dir);
  StratosServers servers(broker.port(), "Active");
  servers.set_artifact_reply(artifact_event(git_server.url(), k_git_password));
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);
  Instance instance{dir, broker.port(), service_port, true};

  auto agent = instance.start();
  REQUIRE(servers.wait_for(k_activated));
  // A crash: no goodbye.
  agent->send_signal(SIGKILL);
  agent->wait_for_exit(10s);
  git_server.commit("<?php echo 'marker-after-restart';");
  git_server.push();

  agent = instance.start();
  REQUIRE(servers.wait_for(k_activated, 2));
  CHECK(servers.count(k_started) == 2);
  CHECK(servers.count(k_topology_request) == 2);
  CHECK(agent_test::read_file(instance.www() / "index.php") == "<?php echo 'marker-after-restart';");
  CHECK_THAT(agent_test::read_file(instance.log()), Catch::Contains("as Active"));
  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(20s) == 0);
}

TEST_CASE("a wrong repository password: retries logged, no activation, said on the console", "[integration][stratos]") {
  const auto dir = agent_test::make_test_directory("stratos-bad-password");
  agent_test::MosquittoBroker broker(dir, agent_test::free_port());
  GitServer git_server(dir);
  StratosServers servers(broker.port(), "Initialized");
  servers.set_artifact_reply(artifact_event(git_server.url(), "not-the-password"));
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);
  Instance instance{dir, broker.port(), service_port, true};
  auto agent = instance.start();

  REQUIRE(servers.wait_for(k_started));
  REQUIRE(agent_test::wait_until(
      [&] {
        return agent_test::read_file(instance.log()).find("InstanceActivatedEvent is NOT published") !=
               std::string::npos;
      },
      60s));
  const auto log = agent_test::read_file(instance.log());
  CHECK_THAT(log, Catch::Contains("artifact deployment attempt 1/2 from " + git_server.url()));
  CHECK_THAT(log, Catch::Contains("artifact deployment attempt 2/2 from " + git_server.url()));
  CHECK_THAT(log, Catch::Contains("artifact deployment from " + git_server.url() + " failed: 2 attempt(s) failed"));
  CHECK(servers.count(k_activated) == 0);
  CHECK(log.find("not-the-password") == std::string::npos);

  // The next event with the right password deploys and activates.
  servers.publish("instance/notifier/ArtifactUpdatedEvent", artifact_event(git_server.url(), k_git_password));
  CHECK(servers.wait_for(k_activated));
  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(20s) == 0);
}

TEST_CASE("artifact.update.interval pulls new commits without an event", "[integration][stratos]") {
  const auto dir = agent_test::make_test_directory("stratos-periodic");
  agent_test::MosquittoBroker broker(dir, agent_test::free_port());
  GitServer git_server(dir);
  StratosServers servers(broker.port(), "Initialized");
  servers.set_artifact_reply(artifact_event(git_server.url(), k_git_password));
  const auto service_port = agent_test::free_port();
  agent_test::TcpListener service(service_port);
  Instance instance{dir, broker.port(), service_port, true};
  auto agent = instance.start("artifact.update.interval = 1\n");

  REQUIRE(servers.wait_for(k_activated));
  git_server.commit("<?php echo 'marker-periodic';");
  git_server.push();
  CHECK(agent_test::wait_until(
      [&] { return agent_test::read_file(instance.www() / "index.php") == "<?php echo 'marker-periodic';"; }, 60s));
  CHECK(servers.count("sent instance/notifier/ArtifactUpdatedEvent") == 1);
  agent->send_signal(SIGTERM);
  CHECK(agent->wait_for_exit(20s) == 0);
}
