#pragma once
// The image an end-to-end test boots (the one this run's `images` fixture built), and what
// the tests read from boot-test's report.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "image/catalog.hpp"
#include "util/process.hpp"

namespace test {

// The newest image of CARTRIDGE in MODE on base.os `os` in the catalog in `dir`. A folder
// reused across runs (build/test-images) also lists older images, and the catalog keeps
// entries in the order they were last written, so the newest is the latest `created`, the
// later entry on a tie. Entries without "os" predate the choice: debian-12.
inline std::filesystem::path newest_image(const std::filesystem::path& dir, const std::string& cartridge,
                                          const std::string& mode, const std::string& os = "debian-12") {
  auto catalog = bi::catalog_read(dir);
  REQUIRE(catalog);
  const nlohmann::json* best = nullptr;
  for (const auto& e : (*catalog)["images"]) {
    if (e["cartridge"] == cartridge && e["mode"] == mode && e.value("os", "debian-12") == os &&
        (best == nullptr || e.value("created", "") >= best->value("created", ""))) {
      best = &e;
    }
  }
  if (best == nullptr) {
    FAIL("no " << cartridge << " " << mode << " " << os << " image in " << dir << "/catalog.json");
  }
  return dir / (*best)["file"].get<std::string>();
}

inline std::filesystem::path newest_php_full(const std::filesystem::path& dir, const std::string& os = "debian-12") {
  return newest_image(dir, "php", "full", os);
}

// The newest php full image of the fixture's folder ($BI_TEST_IMAGES).
inline std::filesystem::path php_full_image() {
  const char* dir = std::getenv("BI_TEST_IMAGES");
  REQUIRE(dir != nullptr);
  return newest_php_full(dir);
}

// The boot-test report's status event `name` of the booted member, or nullptr.
inline const nlohmann::json* find_member_event(const nlohmann::json& events, const std::string& name) {
  for (const auto& e : events) {
    if (e["event"] == name && e["for_member"] == true) {
      return &e;
    }
  }
  return nullptr;
}

// The first message of `event` in `direction` ("sent" by boot-test's Stratos servers or
// "received" from the agent) at or after index `from` of the report's stratos_messages;
// -1 when there is none.
inline int find_message(const nlohmann::json& messages, const std::string& direction, const std::string& event,
                        size_t from = 0) {
  for (size_t i = from; i < messages.size(); ++i) {
    if (messages[i]["direction"] == direction && messages[i]["event"] == event) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// The subscriber's application for `--app-repo`: a git repository in `dir` whose index.php
// prints the returned marker. The marker is computed, so it only appears in a page when PHP
// runs the file (not in its source).
inline std::string make_marker_application(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "index.php") << "<?php echo 'STRATOS-' . 'ARTIFACT-' . (6 * 7); ?>\n";
  bi::RunOptions git;
  git.cwd = dir.string();
  REQUIRE(bi::run_checked({"git", "init", "-q", "-b", "master"}, git));
  REQUIRE(bi::run_checked({"git", "add", "index.php"}, git));
  REQUIRE(bi::run_checked(
      {"git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "app"}, git));
  return "STRATOS-ARTIFACT-42";
}

// The Stratos lifecycle of a boot-test report in which boot-test played the servers with an
// application: topology request → its answer → started → ArtifactUpdatedEvent → activated
// → cleanup request → maintenance → ready-to-shutdown, in that order.
inline void check_stratos_lifecycle(const nlohmann::json& report) {
  const auto& m = report["stratos_messages"];
  const int request = find_message(m, "received", "CompleteTopologyRequestEvent");
  // The servers also repeat the topology every minute, so on a slow boot one is sent
  // before the agent asks: the answer is the first one after the request.
  const int topology = request < 0 ? -1 : find_message(m, "sent", "CompleteTopologyEvent", request + 1);
  const int started = find_message(m, "received", "InstanceStartedEvent");
  const int artifact = find_message(m, "sent", "ArtifactUpdatedEvent");
  const int activated = find_message(m, "received", "InstanceActivatedEvent");
  const int cleanup = find_message(m, "sent", "InstanceCleanupMemberEvent");
  const int maintenance = find_message(m, "received", "InstanceMaintenanceModeEvent");
  const int ready = find_message(m, "received", "InstanceReadyToShutdownEvent");
  REQUIRE(request >= 0);
  REQUIRE(topology >= 0);
  CHECK(request < topology);
  CHECK(topology < started);
  CHECK(started < artifact);
  CHECK(artifact < activated);
  CHECK(activated < cleanup);
  CHECK(cleanup < maintenance);
  CHECK(maintenance < ready);
  REQUIRE(find_member_event(report["events"], "InstanceReadyToShutdownEvent") != nullptr);
}

} // namespace test
