#pragma once
// boot-test playing the Stratos 4.1.6 servers for one instance, on the broker the guest
// uses: what the Cloud Controller answers (CompleteTopologyEvent on request and every
// minute, the member's state following its status events), what the Stratos Manager answers
// (CompleteTenantEvent; ArtifactUpdatedEvent in reaction to InstanceStartedEvent) and what
// the Autoscaler sends on scale-down (InstanceCleanupMemberEvent). Bodies are the Gson
// shapes of docs in ../shared/reference/stratos-agent-protocol.md §2-§5. Every message,
// both ways, is recorded with its time.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "boot/boot_test.hpp"
#include "boot/broker.hpp"
#include "util/expected.hpp"

struct mosquitto;
struct mosquitto_message;

namespace bi {

// CommonUtil.encryptPassword: AES-128/ECB/PKCS5 (= PKCS#7 for 16-byte blocks), base64.
// The key is the 16 characters of the payload's CARTRIDGE_KEY.
Expected<std::string> encrypt_repo_password(std::string_view password, std::string_view key);
// The inverse, with a real PKCS#7 unpad (tests, and checking what the agent must do).
Expected<std::string> decrypt_repo_password(std::string_view base64, std::string_view key);

// Stratos' member states, in lifecycle order (MemberStatus.java).
// The state the CC moves a member to on an agent's status event, or "" when the event
// does not apply from `current` (the CC drops invalid transitions).
std::string member_state_after(const std::string& current, const std::string& status_event);

// topology/CompleteTopologyEvent holding the payload's service, cluster and member, the
// member's stateStack ending in `state`.
nlohmann::json complete_topology_event(const PayloadFields& payload, const std::vector<std::string>& state_stack);
// tenant/CompleteTenantEvent: the payload's tenant (TENANT_ID, default -1234).
nlohmann::json complete_tenant_event(const PayloadFields& payload);
// instance/notifier/ArtifactUpdatedEvent for the payload's cluster.
nlohmann::json artifact_updated_event(const PayloadFields& payload, const std::string& repo_url,
                                      const std::string& repo_user, const std::string& encrypted_password);
// instance/notifier/InstanceCleanupMemberEvent.
nlohmann::json instance_cleanup_member_event(const std::string& member_id);

// Whether mosquitto's log (connection_messages true) shows a client other than `own_ids`
// connecting: "New client connected from 127.0.0.1:N as <id> (...)".
bool log_shows_foreign_client(const std::string& mosquitto_log, const std::vector<std::string>& own_ids);

struct StratosMessage {
  bool sent = false; // true: boot-test published it; false: received from the broker
  std::string topic;
  std::string name; // last topic segment
  std::string payload;
  std::chrono::steady_clock::time_point at;
};

struct ArtifactSource {
  std::string repo_url; // as the guest reaches it
  std::string user;
  std::string password; // clear; sent encrypted with CARTRIDGE_KEY
};

struct StratosServersOptions {
  PayloadFields payload;
  // false (--no-stratos): publish nothing, only record what the agent and others send.
  bool answer = true;
  std::optional<ArtifactSource> artifact;
  std::chrono::milliseconds topology_period{60000}; // TopologyEventSynchronizer: every minute
  std::string client_id;                            // default: build-image-stratos-<pid>
};

class StratosServers {
public:
  // Fails with bad_input when an artifact is to be sent and CARTRIDGE_KEY is not 16 characters.
  static Expected<std::unique_ptr<StratosServers>> connect(const BrokerAddress& broker, StratosServersOptions options,
                                                           std::chrono::seconds timeout);
  StratosServers(const StratosServers&) = delete;
  StratosServers& operator=(const StratosServers&) = delete;
  ~StratosServers();

  // The Autoscaler's scale-down request for this member.
  Expected<void> send_cleanup();

  std::vector<StratosMessage> messages() const;
  // The member's state as this Cloud Controller sees it (Created, Initialized, Starting...).
  std::string member_state() const;
  const std::string& client_id() const { return m_options.client_id; }

private:
  explicit StratosServers(StratosServersOptions options);
  static void on_connect(struct mosquitto* m, void* self, int rc);
  static void on_subscribe(struct mosquitto* m, void* self, int mid, int qos_count, const int* granted);
  static void on_message(struct mosquitto* m, void* self, const struct mosquitto_message* msg);
  void publish(const std::string& topic, const nlohmann::json& body);
  void handle(const std::string& topic, const std::string& payload);
  void periodic_topology();

  StratosServersOptions m_options;
  std::string m_member_id;
  std::string m_cluster_id;
  std::string m_encrypted_password;
  std::vector<std::string> m_filters;
  struct mosquitto* m_mosq = nullptr;
  bool m_loop_started = false;
  std::atomic<int> m_subscribed{0};
  mutable std::mutex m_mutex;
  std::vector<StratosMessage> m_messages;
  std::vector<std::string> m_state_stack{"Created", "Initialized"};
  std::condition_variable m_stop_cv;
  bool m_stop = false;
  std::thread m_timer;
};

} // namespace bi
