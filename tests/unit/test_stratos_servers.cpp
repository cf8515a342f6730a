// boot-test playing the Stratos servers: password encryption, the Gson bodies, the git
// HTTP server (with the host's git over loopback) and the server logic against a real
// mosquitto, with libmosquitto subscribers and mosquitto_pub standing in for the agent.

#include <thread>

#include <catch2/catch.hpp>

#include "boot/broker.hpp"
#include "boot/git_http_server.hpp"
#include "boot/libvirt_domain.hpp"
#include "boot/stratos_servers.hpp"
#include "cli/cmd_boot_test.hpp"
#include "net/http.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

using namespace bi;

namespace {

// Polls `done` until it holds or 15 s pass (a bound, not a timing assertion).
template <typename F> bool wait_until(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

PayloadFields sample_payload() {
  return parse_payload("APPLICATION_ID=app1,SERVICE_NAME=php,HOST_NAME=php1.stratos.org,MULTITENANT=false,"
                       "TENANT_ID=-1234,CLUSTER_ID=php1.php.domain,CARTRIDGE_KEY=PUjpXCLujDhYr5A6,PORTS=80|8080,"
                       "MEMBER_ID=php1.php.domain-42,CLUSTER_INSTANCE_ID=app1-1,NETWORK_PARTITION_ID=np1,"
                       "PARTITION_ID=p1,INSTANCE_ID=null");
}

bool have_mosquitto() {
  return (program_available("mosquitto") || program_available("/usr/sbin/mosquitto")) &&
         program_available("mosquitto_pub");
}

void pub(const MosquittoBroker& broker, const std::string& topic, const std::string& body) {
  // QoS 1: mosquitto_pub returns after the broker has the message, so two calls arrive in order.
  REQUIRE(run_checked(
      {"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-q", "1", "-t", topic, "-m", body}));
}

std::vector<nlohmann::json> bodies(const EventRecorder& r, const std::string& topic) {
  std::vector<nlohmann::json> out;
  for (const auto& m : r.messages()) {
    if (m.topic == topic) {
      out.push_back(nlohmann::json::parse(m.payload));
    }
  }
  return out;
}

std::string status_body(const std::string& member, const std::string& cluster = "php1.php.domain") {
  return nlohmann::json{{"applicationId", "app1"},       {"serviceName", "php"}, {"clusterId", cluster},
                        {"clusterInstanceId", "app1-1"}, {"memberId", member},   {"instanceId", nullptr},
                        {"networkPartitionId", "np1"},   {"partitionId", "p1"}}
      .dump();
}

fs::path make_repo(const test::Scratch& s, const std::string& marker) {
  fs::path repo = s.path() / "app";
  fs::create_directories(repo);
  std::ofstream(repo / "index.php") << "<?php echo '" << marker << "'; ?>\n";
  RunOptions ro;
  ro.cwd = repo.string();
  REQUIRE(run_checked({"git", "init", "-q", "-b", "master"}, ro));
  REQUIRE(run_checked({"git", "add", "index.php"}, ro));
  REQUIRE(
      run_checked({"git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "app"}, ro));
  return repo;
}

} // namespace

TEST_CASE("repoPassword: AES-128-ECB, PKCS#7, base64 with the CARTRIDGE_KEY", "[stratos]") {
  // The reference's vector (ADCTestCase launch-params).
  auto clear = decrypt_repo_password("+to2qVW16jzy+Xb/zuafQQ==", "PUjpXCLujDhYr5A6");
  REQUIRE(clear);
  CHECK(*clear == "iXSLhimFulqe@%&");
  auto enc = encrypt_repo_password("iXSLhimFulqe@%&", "PUjpXCLujDhYr5A6");
  REQUIRE(enc);
  CHECK(*enc == "+to2qVW16jzy+Xb/zuafQQ==");

  // Non-ASCII and trailing blanks survive a real unpad; a full block gains a whole pad block.
  const std::string odd = "p\xc3\xa4ss w\xc3\xb6rd  ";
  auto round = decrypt_repo_password(*encrypt_repo_password(odd, "0123456789abcdef"), "0123456789abcdef");
  REQUIRE(round);
  CHECK(*round == odd);
  CHECK(encrypt_repo_password("0123456789abcdef", "0123456789abcdef")->size() == 44);
  // Two blocks, each encrypted alone (ECB; CBC would chain them): from `openssl enc -aes-128-ecb`.
  CHECK(encrypt_repo_password("0123456789abcdef-two-blocks", "0123456789abcdef").value() ==
        "cnJ+iB7c/QEApxhoeQm1ZUYLzSNusEkvluDXcLjy+VU=");

  auto short_key = encrypt_repo_password("x", "short");
  REQUIRE_FALSE(short_key);
  CHECK(short_key.error().to_string() == "CARTRIDGE_KEY: must be 16 characters (an AES-128 key), not 5");
  CHECK(short_key.error().code == ExitCode::bad_input);
  auto bad64 = decrypt_repo_password("not base64!", "PUjpXCLujDhYr5A6");
  REQUIRE_FALSE(bad64);
  CHECK(bad64.error().to_string() == "repoPassword: is not base64");
  auto wrong_key = decrypt_repo_password("+to2qVW16jzy+Xb/zuafQQ==", "AAAAAAAAAAAAAAAA");
  REQUIRE_FALSE(wrong_key);
  CHECK(wrong_key.error().to_string() == "repoPassword: does not decrypt with this CARTRIDGE_KEY (bad padding)");
}

TEST_CASE("base64 and HTTP Basic auth", "[stratos]") {
  CHECK(base64_encode("").empty());
  CHECK(base64_encode("user:pass") == "dXNlcjpwYXNz");
  CHECK(base64_decode("dXNlcjpwYXNz") == std::optional<std::string>("user:pass"));
  CHECK(base64_decode("YQ==") == std::optional<std::string>("a"));
  CHECK_FALSE(base64_decode("YQ=").has_value());
  CHECK_FALSE(base64_decode("Y=Q=").has_value());
  CHECK(basic_auth_matches("Basic dXNlcjpwYXNz", "user", "pass"));
  CHECK(basic_auth_matches("basic dXNlcjpwYXNz", "user", "pass"));
  CHECK_FALSE(basic_auth_matches("Basic dXNlcjpwYXNz", "user", "pasS"));
  CHECK_FALSE(basic_auth_matches("Basic dXNlcjpwYXNzeA==", "user", "pass"));
  CHECK_FALSE(basic_auth_matches("Bearer dXNlcjpwYXNz", "user", "pass"));

  auto h = parse_request_head("POST /repo.git/git-upload-pack?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type:  t/x \r\n");
  REQUIRE(h);
  CHECK(h->method == "POST");
  CHECK(h->path == "/repo.git/git-upload-pack");
  CHECK(h->query == "x=1");
  CHECK(h->headers.at("content-type") == "t/x");
  auto bad = parse_request_head("GET nothing");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().to_string() == "HTTP request: malformed request line 'GET nothing'");
}

TEST_CASE("CompleteTopologyEvent has every key the 4.1.6 parser indexes, our member in its state", "[stratos]") {
  const auto p = sample_payload();
  const auto j = complete_topology_event(p, {"Created", "Initialized"});
  const auto& t = j.at("topology");
  CHECK(t.at("initialized") == false);
  const auto& s = t.at("serviceMap").at("php");
  for (const char* k : {"serviceType", "portMap", "clusterIdClusterMap"}) {
    CHECK(s.contains(k));
  }
  CHECK(s.at("serviceType") == "SingleTenant");
  const auto& c = s.at("clusterIdClusterMap").at("php1.php.domain");
  for (const char* k : {"serviceName", "autoscalePolicyName", "hostNames", "isLbCluster", "isKubernetesCluster",
                        "memberMap", "appId", "kubernetesServices"}) {
    CHECK(c.contains(k));
  }
  CHECK(c.at("appId") == "app1");
  CHECK(c.at("hostNames") == nlohmann::json::array({"php1.stratos.org"}));
  const auto& m = c.at("memberMap").at("php1.php.domain-42");
  for (const char* k : {"serviceName", "clusterId", "portMap", "memberStateManager"}) {
    CHECK(m.contains(k));
  }
  CHECK(m.at("memberStateManager").at("stateStack").back() == "Initialized");
  CHECK(m.at("clusterInstanceId") == "app1-1");
  CHECK(m.at("networkPartitionId") == "np1");
  CHECK(m.at("partitionId") == "p1");
  // Gson: Map<Integer,Port> keys are strings; absent values are left out, never null.
  CHECK(m.at("portMap").at("80") == nlohmann::json{{"protocol", "http"}, {"value", 80}, {"proxy", 80}});
  CHECK(m.at("portMap").contains("8080"));
  CHECK_FALSE(m.contains("lbClusterId"));
  CHECK(j.dump().find("null") == std::string::npos);

  const auto active = complete_topology_event(p, {"Created", "Initialized", "Starting", "Active"});
  CHECK(active.at("topology")
            .at("serviceMap")
            .at("php")
            .at("clusterIdClusterMap")
            .at("php1.php.domain")
            .at("memberMap")
            .at("php1.php.domain-42")
            .at("memberStateManager")
            .at("stateStack")
            .back() == "Active");

  CHECK(complete_tenant_event(p) ==
        nlohmann::json::parse(R"({"tenants":[{"tenantId":-1234,"tenantDomain":"carbon.super"}]})"));
  const auto a = artifact_updated_event(p, "http://10.0.2.104/repo.git", "u", "c2VjcmV0");
  CHECK(a == nlohmann::json::parse(R"({"clusterId":"php1.php.domain","tenantId":"-1234",
      "repoURL":"http://10.0.2.104/repo.git","repoUserName":"u","repoPassword":"c2VjcmV0","commitEnabled":false})"));
  CHECK(instance_cleanup_member_event("m1") == nlohmann::json{{"memberId", "m1"}});
}

TEST_CASE("the member's state follows the agent's status events as the CC allows", "[stratos]") {
  CHECK(member_state_after("Initialized", "InstanceStartedEvent") == "Starting");
  CHECK(member_state_after("Active", "InstanceStartedEvent") == "Starting"); // a restarted agent
  CHECK(member_state_after("Starting", "InstanceActivatedEvent") == "Active");
  CHECK(member_state_after("Initialized", "InstanceActivatedEvent").empty());
  CHECK(member_state_after("Active", "InstanceMaintenanceModeEvent") == "In_Maintenance");
  CHECK(member_state_after("Starting", "InstanceMaintenanceModeEvent").empty());
  CHECK(member_state_after("In_Maintenance", "InstanceReadyToShutdownEvent") == "ReadyToShutDown");
  CHECK(member_state_after("Active", "InstanceReadyToShutdownEvent").empty());
}

TEST_CASE("mosquitto's log tells whether a client other than boot-test's connected", "[stratos]") {
  const std::string ours =
      "1700000000: New client connected from 127.0.0.1:40000 as build-image-stratos-7 (p2, c1, k30).\n"
      "1700000000: New client connected from 127.0.0.1:40002 as build-image-boot-test-7 (p2, c1, k30).\n";
  const std::vector<std::string> own = {"build-image-stratos-7", "build-image-boot-test-7"};
  CHECK_FALSE(log_shows_foreign_client(ours, own));
  CHECK(log_shows_foreign_client(
      ours + "1700000050: New client connected from 127.0.0.1:40100 as auto-1F2E (p2, c1, k60).\n", own));
}

TEST_CASE("git HTTP server: clone with the right password, 401 without or with a wrong one, no push", "[stratos]") {
  if (!program_available("git")) {
    WARN("git not installed");
    return;
  }
  test::Scratch s;
  const fs::path repo = make_repo(s, "MARKER-7731");
  const fs::path work = s.path() / "work";
  fs::create_directories(work);
  auto server = GitHttpServer::start(repo, "u-boot", "pw-Secret-1", work);
  REQUIRE(server);
  const std::string url = "http://127.0.0.1:" + std::to_string((*server)->port()) + GitHttpServer::path();
  RunOptions ro;
  ro.timeout = std::chrono::seconds(60);
  ro.extra_env = {{"GIT_TERMINAL_PROMPT", "0"}, {"GIT_ASKPASS", "/bin/false"}};

  // Credentials in a header given on the command line only: nothing to store on disk.
  const std::string header = "http.extraHeader=Authorization: Basic " + base64_encode("u-boot:pw-Secret-1");
  auto ok = run_process({"git", "-c", header, "clone", "-q", url, (s.path() / "clone").string()}, ro);
  REQUIRE(ok);
  INFO(ok->output);
  REQUIRE(ok->exit_code == 0);
  CHECK(read_file(s.path() / "clone" / "index.php").value().find("MARKER-7731") != std::string::npos);
  const std::string config = read_file(s.path() / "clone" / ".git" / "config").value();
  CHECK(config.find("url = " + url + "\n") != std::string::npos);
  CHECK(config.find("pw-Secret-1") == std::string::npos);
  CHECK(config.find("Authorization") == std::string::npos);

  // git asks for credentials (askpass: /bin/false) only when the server answered 401.
  const int refused_before = (*server)->unauthorized();
  const std::string wrong = "http.extraHeader=Authorization: Basic " + base64_encode("u-boot:pw-Secret-2");
  auto bad = run_process({"git", "-c", wrong, "clone", "-q", url, (s.path() / "bad").string()}, ro);
  REQUIRE(bad);
  INFO(bad->output);
  CHECK(bad->exit_code != 0);
  CHECK(bad->output.find("could not read Username") != std::string::npos);
  const int refused_wrong = (*server)->unauthorized();
  CHECK(refused_wrong > refused_before);
  auto none = run_process({"git", "clone", "-q", url, (s.path() / "none").string()}, ro);
  REQUIRE(none);
  CHECK(none->exit_code != 0);
  CHECK((*server)->unauthorized() > refused_wrong);
  CHECK_FALSE(fs::exists(s.path() / "none" / "index.php"));

  const auto request = [](const std::string& u) {
    net::HttpRequest r;
    r.url = u;
    return r;
  };
  auto plain = net::http_send(request(url + "/info/refs?service=git-upload-pack"));
  REQUIRE(plain);
  CHECK(plain->status == 401);
  CHECK(plain->header("WWW-Authenticate") == "Basic realm=\"build-image boot-test\"");
  net::HttpRequest push = request(url + "/info/refs?service=git-receive-pack");
  push.headers = {{"Authorization", "Basic " + base64_encode("u-boot:pw-Secret-1")}};
  auto refused = net::http_send(push);
  REQUIRE(refused);
  CHECK(refused->status == 403);
  net::HttpRequest other = request("http://127.0.0.1:" + std::to_string((*server)->port()) + "/etc/passwd");
  other.headers = push.headers;
  CHECK(net::http_send(other)->status == 404);

  auto not_repo = GitHttpServer::start(work, "u", "p", work);
  REQUIRE_FALSE(not_repo);
  CHECK(not_repo.error().to_string() == work.string() + ": not a git repository (--app-repo)");
  CHECK(not_repo.error().code == ExitCode::bad_input);
}

TEST_CASE("Stratos servers answer the agent's requests on a real broker", "[stratos]") {
  if (!have_mosquitto()) {
    WARN("mosquitto or mosquitto_pub not installed");
    return;
  }
  test::Scratch s;
  auto broker = MosquittoBroker::start(s.path());
  REQUIRE(broker);
  StratosServersOptions o;
  o.payload = sample_payload();
  o.artifact = ArtifactSource{"http://10.0.2.104/repo.git", "boot-user", "Pa55-w\xc3\xb6rd"};
  o.topology_period = std::chrono::hours(1); // only answers in the recorded sequence below
  auto servers = StratosServers::connect(broker->address(), o, std::chrono::seconds(10));
  REQUIRE(servers);
  auto& sv = **servers;
  // The fake agent's subscriptions (EventRecorder waits for the broker's SUBACK).
  auto topology = EventRecorder::connect(broker->address(), "topology/#", std::chrono::seconds(10));
  auto notifier = EventRecorder::connect(broker->address(), "instance/notifier/#", std::chrono::seconds(10));
  auto tenant = EventRecorder::connect(broker->address(), "tenant/#", std::chrono::seconds(10));
  REQUIRE(topology);
  REQUIRE(notifier);
  REQUIRE(tenant);
  const std::string member = "php1.php.domain-42";
  const auto member_of = [&](const nlohmann::json& event) {
    return event.at("topology")
        .at("serviceMap")
        .at("php")
        .at("clusterIdClusterMap")
        .at("php1.php.domain")
        .at("memberMap")
        .at(member);
  };

  pub(*broker, "initializer/CompleteTopologyRequestEvent", "{}");
  REQUIRE(wait_until([&] { return !bodies(**topology, "topology/CompleteTopologyEvent").empty(); }));
  CHECK(member_of(bodies(**topology, "topology/CompleteTopologyEvent")[0]).at("memberStateManager").at("stateStack") ==
        nlohmann::json::array({"Created", "Initialized"}));
  pub(*broker, "initializer/CompleteTenantRequestEvent", "{}");
  REQUIRE(wait_until([&] { return !bodies(**tenant, "tenant/CompleteTenantEvent").empty(); }));
  CHECK(bodies(**tenant, "tenant/CompleteTenantEvent")[0].at("tenants")[0].at("tenantId") == -1234);

  // Another cluster's start gets no artifact; the tenant reply after it proves it was handled.
  pub(*broker, "instance/status/InstanceStartedEvent", status_body("other-member", "other.cluster"));
  pub(*broker, "initializer/CompleteTenantRequestEvent", "{}");
  REQUIRE(wait_until([&] { return bodies(**tenant, "tenant/CompleteTenantEvent").size() == 2; }));
  CHECK(bodies(**notifier, "instance/notifier/ArtifactUpdatedEvent").empty());

  pub(*broker, "instance/status/InstanceStartedEvent", status_body(member));
  REQUIRE(wait_until([&] { return !bodies(**notifier, "instance/notifier/ArtifactUpdatedEvent").empty(); }));
  const auto artifact = bodies(**notifier, "instance/notifier/ArtifactUpdatedEvent")[0];
  CHECK(artifact.at("clusterId") == "php1.php.domain");
  CHECK(artifact.at("tenantId") == "-1234");
  CHECK(artifact.at("repoURL") == "http://10.0.2.104/repo.git");
  CHECK(artifact.at("repoUserName") == "boot-user");
  CHECK(artifact.at("repoPassword") != "Pa55-w\xc3\xb6rd");
  CHECK(decrypt_repo_password(artifact.at("repoPassword").get<std::string>(), "PUjpXCLujDhYr5A6").value() ==
        "Pa55-w\xc3\xb6rd");
  CHECK(sv.member_state() == "Starting");

  pub(*broker, "instance/status/InstanceActivatedEvent", status_body(member));
  REQUIRE(wait_until([&] { return sv.member_state() == "Active"; }));
  // A restarted agent asks again and finds itself Active.
  pub(*broker, "initializer/CompleteTopologyRequestEvent", "{}");
  REQUIRE(wait_until([&] { return bodies(**topology, "topology/CompleteTopologyEvent").size() == 2; }));
  CHECK(member_of(bodies(**topology, "topology/CompleteTopologyEvent")[1]).at("memberStateManager").at("stateStack") ==
        nlohmann::json::array({"Created", "Initialized", "Starting", "Active"}));

  REQUIRE(sv.send_cleanup());
  REQUIRE(wait_until([&] { return !bodies(**notifier, "instance/notifier/InstanceCleanupMemberEvent").empty(); }));
  CHECK(bodies(**notifier, "instance/notifier/InstanceCleanupMemberEvent")[0] == nlohmann::json{{"memberId", member}});
  pub(*broker, "instance/status/InstanceMaintenanceModeEvent", status_body(member));
  pub(*broker, "instance/status/InstanceReadyToShutdownEvent", status_body(member));
  REQUIRE(wait_until([&] { return sv.member_state() == "ReadyToShutDown"; }));

  // Both ways, in order.
  std::vector<std::string> seen;
  for (const auto& m : sv.messages()) {
    seen.push_back((m.sent ? "> " : "< ") + m.name);
  }
  const std::vector<std::string> expected = {
      "< CompleteTopologyRequestEvent", "> CompleteTopologyEvent",        "< CompleteTenantRequestEvent",
      "> CompleteTenantEvent",          "< InstanceStartedEvent",         "< CompleteTenantRequestEvent",
      "> CompleteTenantEvent",          "< InstanceStartedEvent",         "> ArtifactUpdatedEvent",
      "< InstanceActivatedEvent",       "< CompleteTopologyRequestEvent", "> CompleteTopologyEvent",
      "> InstanceCleanupMemberEvent",   "< InstanceMaintenanceModeEvent", "< InstanceReadyToShutdownEvent"};
  CHECK(seen == expected);
}

TEST_CASE("the Cloud Controller repeats CompleteTopologyEvent without being asked", "[stratos]") {
  if (!have_mosquitto()) {
    WARN("mosquitto or mosquitto_pub not installed");
    return;
  }
  test::Scratch s;
  auto broker = MosquittoBroker::start(s.path());
  REQUIRE(broker);
  auto topology = EventRecorder::connect(broker->address(), "topology/#", std::chrono::seconds(10));
  REQUIRE(topology);
  StratosServersOptions o;
  o.payload = sample_payload();
  o.topology_period = std::chrono::milliseconds(200); // 60 s for real
  auto servers = StratosServers::connect(broker->address(), o, std::chrono::seconds(10));
  REQUIRE(servers);
  REQUIRE(wait_until([&] { return bodies(**topology, "topology/CompleteTopologyEvent").size() >= 2; }));
  for (const auto& m : (*servers)->messages()) {
    CHECK(m.sent);
    CHECK(m.name == "CompleteTopologyEvent");
  }
}

TEST_CASE("--no-stratos: the servers only watch", "[stratos]") {
  if (!have_mosquitto()) {
    WARN("mosquitto or mosquitto_pub not installed");
    return;
  }
  test::Scratch s;
  auto broker = MosquittoBroker::start(s.path());
  REQUIRE(broker);
  StratosServersOptions o;
  o.payload = sample_payload();
  o.answer = false;
  o.artifact = ArtifactSource{"http://10.0.2.104/repo.git", "u", "p"};
  auto servers = StratosServers::connect(broker->address(), o, std::chrono::seconds(10));
  REQUIRE(servers);
  pub(*broker, "initializer/CompleteTopologyRequestEvent", "{}");
  pub(*broker, "instance/status/InstanceStartedEvent", status_body("php1.php.domain-42"));
  pub(*broker, "topology/CompleteTopologyEvent", "{\"from\":\"another CC\"}");
  REQUIRE(wait_until([&] { return (*servers)->messages().size() >= 3; }));
  for (const auto& m : (*servers)->messages()) {
    CHECK_FALSE(m.sent);
  }
  CHECK((*servers)->messages().size() == 3);
  CHECK((*servers)->messages()[2].topic == "topology/CompleteTopologyEvent");
  auto refused = (*servers)->send_cleanup();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().to_string() ==
        "boot-test: --no-stratos: the cleanup request is left to the servers on the broker");
}

TEST_CASE("boot-test: bad values for the Stratos options exit 2 with exact messages", "[stratos]") {
  test::Scratch s;
  const fs::path image = s.write("x.qcow2", "not really an image");
  const fs::path repo = make_repo(s, "M");
  const auto run = [&](BootTestCommand c) {
    c.args = {image.string()};
    auto r = cmd_boot_test(c);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ExitCode::bad_input);
    return r.error().to_string();
  };
  BootTestCommand until;
  until.until = "later";
  CHECK(run(until) == "invalid --until 'later': expected login, activated or shutdown");
  BootTestCommand both;
  both.app_repo = repo.string();
  both.no_stratos = true;
  CHECK(run(both) == "--app-repo needs boot-test to play the Stratos servers: it cannot go with --no-stratos");
  BootTestCommand not_repo;
  not_repo.app_repo = s.path().string() + "/nothing";
  CHECK(run(not_repo) == s.path().string() + "/nothing: not a git repository (--app-repo)");
  BootTestCommand empty;
  empty.expect_content = "";
  CHECK(run(empty) == "invalid --expect-content '': expected some text");
  // A payload's CARTRIDGE_KEY must be an AES-128 key before anything boots.
  BootTestCommand key;
  key.app_repo = repo.string();
  key.payload = s.write("payload", "SERVICE_NAME=php,CLUSTER_ID=c,MEMBER_ID=m,CARTRIDGE_KEY=short").string();
  CHECK(run(key) == "CARTRIDGE_KEY: must be 16 characters (an AES-128 key), not 5");
}

TEST_CASE("boot-test adds fields to a payload in its own layout", "[stratos]") {
  CHECK(add_payload_fields("A=1,B=2\n", {{"MB_IP", "10.0.2.100"}, {"MB_PORT", "1883"}}) ==
        "A=1,B=2,MB_IP=10.0.2.100,MB_PORT=1883");
  CHECK(add_payload_fields("A=1\nB=2\n", {{"REPO_URL", "http://10.0.2.104/repo.git"}}) ==
        "A=1\nB=2\nREPO_URL=http://10.0.2.104/repo.git\n");
  const auto p = parse_payload(add_payload_fields("A=1,MB_IP=null", {{"MB_IP", "10.0.2.100"}}));
  CHECK(p.at("MB_IP") == "10.0.2.100");
  CHECK(parse_until("activated").value() == BootTestOptions::Until::activated);
  CHECK(parse_until("shutdown").value() == BootTestOptions::Until::shutdown);
  CHECK(parse_until("login").value() == BootTestOptions::Until::login);
}

TEST_CASE("the guest's web root is reached through a hostfwd on loopback, beside the guestfwds", "[stratos]") {
  DomainSpec spec;
  spec.name = "d";
  spec.uuid = "00000000-0000-4000-8000-000000000000";
  spec.disk = "/tmp/o.qcow2";
  spec.backing_image = "/tmp/i.qcow2";
  spec.console_log = "/tmp/c.log";
  GuestForward git;
  git.guest_ip = "10.0.2.104";
  git.guest_port = 80;
  git.host_port = 40404;
  spec.guestfwd = {git.to_guestfwd()};
  spec.hostfwd = {"tcp:127.0.0.1:18080-:80"};
  const std::string xml = render_domain_xml(spec);
  CHECK(xml.find("user,id=n0,restrict=on,guestfwd=tcp:10.0.2.104:80-cmd:") != std::string::npos);
  CHECK(xml.find("/dev/tcp/127.0.0.1/40404") != std::string::npos);
  CHECK(xml.find(",hostfwd=tcp:127.0.0.1:18080-:80'") != std::string::npos);
}
