#include "boot/stratos_servers.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>
#include <sstream>

#include <mosquitto.h>
#include <openssl/evp.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "boot/git_http_server.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

using Clock = std::chrono::steady_clock;

std::string field(const PayloadFields& p, const std::string& key, const std::string& fallback = "") {
  auto it = p.find(key);
  return it == p.end() || it->second.empty() || it->second == "null" ? fallback : it->second;
}

std::string last_segment(const std::string& topic) { return topic.substr(topic.rfind('/') + 1); }

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  CipherCtx() = default;
  CipherCtx(const CipherCtx&) = delete;
  CipherCtx& operator=(const CipherCtx&) = delete;
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

Expected<std::string> aes_128_ecb(std::string_view input, std::string_view key, bool encrypt) {
  if (key.size() != 16) {
    return fail("CARTRIDGE_KEY", fmt::format("must be 16 characters (an AES-128 key), not {}", key.size()),
                ExitCode::bad_input);
  }
  CipherCtx c;
  if (c.ctx == nullptr ||
      EVP_CipherInit_ex(c.ctx, EVP_aes_128_ecb(), nullptr, reinterpret_cast<const unsigned char*>(key.data()), nullptr,
                        encrypt ? 1 : 0) != 1) {
    return fail("AES-128-ECB", "cannot initialise the cipher");
  }
  std::string out(input.size() + 16, '\0');
  int n = 0;
  int tail = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_CipherUpdate(c.ctx, o, &n, reinterpret_cast<const unsigned char*>(input.data()),
                       static_cast<int>(input.size())) != 1 ||
      EVP_CipherFinal_ex(c.ctx, o + n, &tail) != 1) {
    return fail("repoPassword", encrypt ? "cannot encrypt" : "does not decrypt with this CARTRIDGE_KEY (bad padding)");
  }
  out.resize(static_cast<size_t>(n) + static_cast<size_t>(tail));
  return out;
}

nlohmann::json port_map(const PayloadFields& p) {
  nlohmann::json ports = nlohmann::json::object();
  std::string list = field(p, "PORTS");
  list.erase(std::remove(list.begin(), list.end(), '"'), list.end());
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, '|')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 5) {
      continue;
    }
    const int port = std::stoi(item);
    const std::string protocol = port == 443 || port == 8443 ? "https" : (port == 80 || port == 8080 ? "http" : "tcp");
    // Gson writes Map<Integer,Port> keys as strings; the key is the proxy port.
    ports[item] = {{"protocol", protocol}, {"value", port}, {"proxy", port}};
  }
  return ports;
}

} // namespace

Expected<std::string> encrypt_repo_password(std::string_view password, std::string_view key) {
  BI_TRY_ASSIGN(std::string raw, aes_128_ecb(password, key, true));
  return base64_encode(raw);
}

Expected<std::string> decrypt_repo_password(std::string_view base64, std::string_view key) {
  const auto raw = base64_decode(base64);
  if (!raw) {
    return fail("repoPassword", "is not base64", ExitCode::bad_input);
  }
  return aes_128_ecb(*raw, key, false);
}

std::string member_state_after(const std::string& current, const std::string& status_event) {
  // TopologyBuilder.handleMember*: the transitions MemberStatus allows; others are dropped.
  if (status_event == "InstanceStartedEvent") {
    return current == "Initialized" || current == "Starting" || current == "Active" ? "Starting" : "";
  }
  if (status_event == "InstanceActivatedEvent") {
    return current == "Starting" || current == "Active" ? "Active" : "";
  }
  if (status_event == "InstanceMaintenanceModeEvent") {
    return current == "Active" || current == "In_Maintenance" ? "In_Maintenance" : "";
  }
  if (status_event == "InstanceReadyToShutdownEvent") {
    return current == "In_Maintenance" || current == "ReadyToShutDown" ? "ReadyToShutDown" : "";
  }
  return "";
}

nlohmann::json complete_topology_event(const PayloadFields& p, const std::vector<std::string>& state_stack) {
  const std::string service = field(p, "SERVICE_NAME");
  const std::string cluster = field(p, "CLUSTER_ID");
  const std::string member = field(p, "MEMBER_ID");
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  // Gson leaves null fields out: the optional ids appear only when the payload has them.
  nlohmann::json m = {
      {"serviceName", service},
      {"clusterId", cluster},
      {"memberId", member},
      {"initTime", now_ms},
      {"portMap", port_map(p)},
      // qemu's user network always gives the guest this address.
      {"defaultPrivateIP", "10.0.2.15"},
      {"memberPrivateIPs", {"10.0.2.15"}},
      {"properties", nlohmann::json::object()},
      {"memberStateManager", {{"stateStack", state_stack}, {"identifier", member}}},
  };
  for (const auto& [json_key, payload_key] :
       std::vector<std::pair<std::string, std::string>>{{"clusterInstanceId", "CLUSTER_INSTANCE_ID"},
                                                        {"networkPartitionId", "NETWORK_PARTITION_ID"},
                                                        {"partitionId", "PARTITION_ID"},
                                                        {"lbClusterId", "LB_CLUSTER_ID"}}) {
    if (const std::string v = field(p, payload_key); !v.empty()) {
      m[json_key] = v;
    }
  }
  nlohmann::json c = {
      {"serviceName", service},
      {"clusterId", cluster},
      {"autoscalePolicyName", "boot-test-autoscale"},
      {"deploymentPolicyName", "boot-test-deployment"},
      {"hostNames", nlohmann::json::array()},
      {"tenantRange", field(p, "TENANT_RANGE", "*")},
      {"isLbCluster", false},
      {"isKubernetesCluster", false},
      {"appId", field(p, "APPLICATION_ID")},
      {"kubernetesServices", nlohmann::json::array()},
      {"properties", nlohmann::json::object()},
      {"memberMap", {{member, m}}},
  };
  if (const std::string h = field(p, "HOST_NAME"); !h.empty()) {
    c["hostNames"].push_back(h);
  }
  const bool multi = field(p, "MULTITENANT") == "true";
  nlohmann::json s = {
      {"serviceName", service},
      {"serviceType", multi ? "MultiTenant" : "SingleTenant"},
      {"portMap", nlohmann::json::object()},
      {"properties", nlohmann::json::object()},
      {"clusterIdClusterMap", {{cluster, c}}},
  };
  // The CC never marks its own topology initialized (reference §2).
  return {{"topology", {{"serviceMap", {{service, s}}}, {"initialized", false}}}};
}

nlohmann::json complete_tenant_event(const PayloadFields& p) {
  int tenant = -1234;
  try {
    tenant = std::stoi(field(p, "TENANT_ID", "-1234"));
  } catch (const std::exception&) {
  }
  return {{"tenants", {{{"tenantId", tenant}, {"tenantDomain", tenant == -1234 ? "carbon.super" : "boot-test.org"}}}}};
}

nlohmann::json artifact_updated_event(const PayloadFields& p, const std::string& repo_url, const std::string& repo_user,
                                      const std::string& encrypted_password) {
  // tenantId is a String in ArtifactUpdatedEvent.java; commitEnabled is always false from the SM.
  return {
      {"clusterId", field(p, "CLUSTER_ID")}, {"tenantId", field(p, "TENANT_ID", "-1234")}, {"repoURL", repo_url},
      {"repoUserName", repo_user},           {"repoPassword", encrypted_password},         {"commitEnabled", false}};
}

nlohmann::json instance_cleanup_member_event(const std::string& member_id) { return {{"memberId", member_id}}; }

bool log_shows_foreign_client(const std::string& log, const std::vector<std::string>& own_ids) {
  static const std::regex re(R"(New client connected from \S+ as (\S+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it) {
    const std::string id = (*it)[1];
    if (std::find(own_ids.begin(), own_ids.end(), id) == own_ids.end()) {
      return true;
    }
  }
  return false;
}

StratosServers::StratosServers(StratosServersOptions options) : m_options(std::move(options)) {
  m_member_id = field(m_options.payload, "MEMBER_ID");
  m_cluster_id = field(m_options.payload, "CLUSTER_ID");
  if (m_options.answer) {
    // Our own publications would echo back on topology/, tenant/ and instance/notifier/.
    m_filters = {"initializer/#", "instance/status/#"};
  } else {
    m_filters = {"initializer/#", "instance/#", "topology/#", "tenant/#", "application/signup/#"};
  }
}

Expected<std::unique_ptr<StratosServers>>
StratosServers::connect(const BrokerAddress& broker, StratosServersOptions options, std::chrono::seconds timeout) {
  std::unique_ptr<StratosServers> s(new StratosServers(std::move(options)));
  if (s->m_options.answer && s->m_options.artifact) {
    BI_TRY_ASSIGN(s->m_encrypted_password,
                  encrypt_repo_password(s->m_options.artifact->password, field(s->m_options.payload, "CARTRIDGE_KEY")));
  }
  init_mosquitto_lib();
  if (s->m_options.client_id.empty()) {
    s->m_options.client_id = fmt::format("build-image-stratos-{}", ::getpid());
  }
  const std::string object = "MQTT broker " + broker.to_string();
  s->m_mosq = mosquitto_new(s->m_options.client_id.c_str(), true, s.get());
  if (s->m_mosq == nullptr) {
    return fail(object, std::string("cannot create an MQTT client: ") + std::strerror(errno));
  }
  mosquitto_connect_callback_set(s->m_mosq, &StratosServers::on_connect);
  mosquitto_subscribe_callback_set(s->m_mosq, &StratosServers::on_subscribe);
  mosquitto_message_callback_set(s->m_mosq, &StratosServers::on_message);
  mosquitto_reconnect_delay_set(s->m_mosq, 1, 5, false);
  const auto deadline = Clock::now() + timeout;
  BI_TRY(mqtt_connect_and_start(s->m_mosq, broker, deadline, object));
  s->m_loop_started = true;
  // Subscribed before anything is answered: a request sent after this returns is seen.
  while (s->m_subscribed.load() < static_cast<int>(s->m_filters.size()) && Clock::now() < deadline && !interrupted()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (s->m_subscribed.load() < static_cast<int>(s->m_filters.size())) {
    return fail(object, "did not acknowledge the subscriptions of the Stratos servers");
  }
  if (s->m_options.answer) {
    s->m_timer = std::thread([p = s.get()] { p->periodic_topology(); });
  }
  return s;
}

StratosServers::~StratosServers() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_stop_cv.notify_all();
  if (m_timer.joinable()) {
    m_timer.join();
  }
  if (m_mosq != nullptr) {
    if (m_loop_started) {
      mosquitto_disconnect(m_mosq);
      mosquitto_loop_stop(m_mosq, true);
    }
    mosquitto_destroy(m_mosq);
  }
}

void StratosServers::periodic_topology() {
  std::unique_lock<std::mutex> lock(m_mutex);
  for (;;) {
    if (m_stop_cv.wait_for(lock, m_options.topology_period, [this] { return m_stop; })) {
      return;
    }
    const nlohmann::json body = complete_topology_event(m_options.payload, m_state_stack);
    lock.unlock();
    publish("topology/CompleteTopologyEvent", body);
    lock.lock();
  }
}

void StratosServers::publish(const std::string& topic, const nlohmann::json& body) {
  const std::string text = body.dump();
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_messages.push_back({true, topic, last_segment(topic), text, Clock::now()});
  }
  // QoS 1 like the broker-side recorder; the agent subscribes at QoS 0 anyway.
  const int rc =
      mosquitto_publish(m_mosq, nullptr, topic.c_str(), static_cast<int>(text.size()), text.data(), 1, false);
  if (rc != MOSQ_ERR_SUCCESS) {
    spdlog::warn("boot-test: cannot publish {}: {}", topic, mosquitto_strerror(rc));
  }
}

Expected<void> StratosServers::send_cleanup() {
  if (!m_options.answer) {
    return fail("boot-test", "--no-stratos: the cleanup request is left to the servers on the broker");
  }
  publish("instance/notifier/InstanceCleanupMemberEvent", instance_cleanup_member_event(m_member_id));
  return Ok{};
}

std::vector<StratosMessage> StratosServers::messages() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_messages;
}

std::string StratosServers::member_state() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_state_stack.back();
}

void StratosServers::handle(const std::string& topic, const std::string& payload) {
  const std::string name = last_segment(topic);
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_messages.push_back({false, topic, name, payload, Clock::now()});
  }
  if (!m_options.answer) {
    return;
  }
  if (topic == "initializer/CompleteTopologyRequestEvent") {
    nlohmann::json body;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      body = complete_topology_event(m_options.payload, m_state_stack);
    }
    publish("topology/CompleteTopologyEvent", body);
    return;
  }
  if (topic == "initializer/CompleteTenantRequestEvent") {
    publish("tenant/CompleteTenantEvent", complete_tenant_event(m_options.payload));
    return;
  }
  if (topic.rfind("instance/status/", 0) != 0) {
    return;
  }
  const nlohmann::json body = nlohmann::json::parse(payload, nullptr, false);
  if (!body.is_object()) {
    return;
  }
  const auto str = [&](const char* key) {
    auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (str("memberId") == m_member_id) {
    std::lock_guard<std::mutex> lock(m_mutex);
    const std::string next = member_state_after(m_state_stack.back(), name);
    if (!next.empty() && next != m_state_stack.back()) {
      m_state_stack.push_back(next);
    }
  }
  // StratosManagerInstanceStatusEventReceiver: an artifact event per sign-up repository of
  // the started cluster; it needs applicationId, serviceName and clusterId.
  if (name == "InstanceStartedEvent" && m_options.artifact && str("clusterId") == m_cluster_id &&
      !str("applicationId").empty() && !str("serviceName").empty()) {
    publish("instance/notifier/ArtifactUpdatedEvent",
            artifact_updated_event(m_options.payload, m_options.artifact->repo_url, m_options.artifact->user,
                                   m_encrypted_password));
  }
}

void StratosServers::on_connect(struct mosquitto* m, void* self, int rc) {
  if (rc != 0) {
    return;
  }
  // A clean session forgets subscriptions: every (re)connect subscribes again.
  for (const auto& f : static_cast<StratosServers*>(self)->m_filters) {
    mosquitto_subscribe(m, nullptr, f.c_str(), 1);
  }
}

void StratosServers::on_subscribe(struct mosquitto*, void* self, int, int qos_count, const int* granted) {
  if (qos_count > 0 && granted != nullptr && granted[0] != 0x80) {
    static_cast<StratosServers*>(self)->m_subscribed.fetch_add(1);
  }
}

void StratosServers::on_message(struct mosquitto*, void* self, const struct mosquitto_message* msg) {
  std::string payload;
  if (msg->payload != nullptr && msg->payloadlen > 0) {
    payload.assign(static_cast<const char*>(msg->payload), static_cast<size_t>(msg->payloadlen));
  }
  static_cast<StratosServers*>(self)->handle(msg->topic != nullptr ? msg->topic : "", payload);
}

} // namespace bi
