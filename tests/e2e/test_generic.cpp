// End to end, generic mode (issues 3 and 4): GENERIC images booted with
// `build-image boot-test` are configured by a real Puppet master and must activate:
// php (the `images` fixture's) and mysql (the catalogue_mysql test's; its full build left
// MariaDB's .debs in the shared cache, so the local repository can serve them).
//  - tests/harness/puppet-master.sh: Debian's puppetserver on loopback (autosign, heap
//    512 MB) serving this repository's puppet/ as environment production; the guest
//    reaches it as puppet.test = 10.0.2.101:8140.
//  - tests/harness/package-repo.sh: a flat apt repository built from the fixture cache's
//    .debs (full-mode system layers keep them) + the cartridge-agent .deb, served by
//    python3 -m http.server; the guest reaches it as 10.0.2.102:80 (PACKAGE_REPO).
// Each passes when the agent Puppet installed sends InstanceActivatedEvent for its member
// (it does so once the cartridge's port answers), with a Stratos hostname whose
// certificate the master signed. One master and one repository serve both boots.
// Environment: BI_TEST_IMAGES (the fixture's output), BUILD_IMAGE_CACHE (its cache).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include "fixture_images.hpp"
#include "image/catalog.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

using namespace bi;
namespace fs = std::filesystem;

namespace {

fs::path generic_image(const std::string& cartridge) {
  const char* dir = std::getenv("BI_TEST_IMAGES");
  REQUIRE(dir != nullptr);
  return test::newest_image(dir, cartridge, "generic");
}

fs::path agent_deb() {
  const fs::path dir = fs::path(BI_BINARY_DIR) / "packages";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("cartridge-agent_", 0) == 0 && e.path().extension() == ".deb") {
      return e.path();
    }
  }
  FAIL("no cartridge-agent .deb in " << dir << " (make agent-deb)");
  return {};
}

// A loopback port nobody listens on right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Runs a harness script's `stop` when it goes out of scope, whatever happened.
class HarnessService {
public:
  HarnessService(std::string script, fs::path dir) : m_script(std::move(script)), m_dir(std::move(dir)) {}
  HarnessService(const HarnessService&) = delete;
  HarnessService& operator=(const HarnessService&) = delete;
  ~HarnessService() {
    RunOptions ro;
    ro.timeout = std::chrono::seconds(60);
    auto r = run_process({"bash", m_script, "stop", m_dir.string()}, ro);
    if (!r || r->exit_code != 0) {
      (void)std::fprintf(stderr, "warning: %s stop failed\n", m_script.c_str());
    }
  }
  // Starts it; fails the test (the destructor still stops what may have started).
  void start(const std::vector<std::string>& args, std::chrono::seconds limit) {
    std::vector<std::string> argv = {"bash", m_script, "start", m_dir.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions ro;
    ro.timeout = limit;
    auto r = run_process(argv, ro);
    REQUIRE(r);
    INFO(r->output);
    REQUIRE(r->exit_code == 0);
    std::printf("%s", r->output.c_str());
  }

private:
  std::string m_script;
  fs::path m_dir;
};

std::string random_hex(int n) {
  std::random_device rd;
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "0123456789abcdef"[rd() % 16];
  }
  return s;
}

struct GenericCase {
  std::string cartridge;
  int port;
  // Deploy the subscriber's application (boot-test's git server) and expect PHP to serve it.
  bool with_application = false;
};

// Boots CARTRIDGE's generic image against the running master and repository.
void boot_generic(const GenericCase& c, const fs::path& work, int master_port, int repo_port) {
  const auto image = generic_image(c.cartridge);
  const std::string cluster = "boot-test." + c.cartridge + ".domain";
  const std::string member = cluster + random_hex(32);
  const fs::path payload = work / ("payload-" + c.cartridge);
  {
    std::ofstream out(payload);
    out << "APPLICATION_ID=boot-test\nSERVICE_NAME=" << c.cartridge << "\nCLUSTER_ID=" << cluster << "\n"
        << "CARTRIDGE_KEY=" << random_hex(16) << "\nDEPLOYMENT=default\nPORTS=" << c.port << "\n"
        << "PUPPET_IP=10.0.2.101\nPUPPET_HOSTNAME=puppet.test\nPUPPET_PORT=8140\nPUPPET_DNS_AVAILABLE=false\n"
        << "PACKAGE_REPO=deb [trusted=yes] http://10.0.2.102/ ./\n"
        << "MEMBER_ID=" << member << "\nCLUSTER_INSTANCE_ID=boot-test-1\nNETWORK_PARTITION_ID=np-1\n"
        << "PARTITION_ID=p-1\nINTERNAL=false\nMB_IP=10.0.2.100\nMB_PORT=1883\n";
    REQUIRE(out.good());
  }

  std::vector<std::string> argv = {BI_BINARY,
                                   "boot-test",
                                   "--json",
                                   "--timeout",
                                   "1400",
                                   "--payload",
                                   payload.string(),
                                   "--forward",
                                   "10.0.2.101:8140=" + std::to_string(master_port),
                                   "--forward",
                                   "10.0.2.102:80=" + std::to_string(repo_port)};
  std::string marker;
  if (c.with_application) {
    // No REPO_URL in the payload: boot-test adds its git server's.
    marker = test::make_marker_application(work / ("app-" + c.cartridge));
    argv.insert(argv.end(), {"--app-repo", (work / ("app-" + c.cartridge)).string(), "--expect-content", marker});
  }
  argv.push_back(image.string());
  RunOptions ro;
  ro.timeout = std::chrono::seconds(1500);
  auto r = run_process(argv, ro);
  REQUIRE(r);
  INFO(r->output);
  REQUIRE(r->exit_code == 0);
  const auto start = r->output.find("{\n  \"");
  REQUIRE(start != std::string::npos);
  const auto j = nlohmann::json::parse(r->output.substr(start));

  CHECK(j["passed"] == true);
  CHECK(j["reason"].get<std::string>().empty());
  CHECK(j["member_id"] == member);
  const auto* activated = test::find_member_event(j["events"], "InstanceActivatedEvent");
  REQUIRE(activated != nullptr);
  CHECK((*activated)["body"]["memberId"] == member);
  CHECK((*activated)["body"]["clusterId"] == cluster);
  CHECK((*activated)["body"]["serviceName"] == c.cartridge);

  const std::string hostname = j["hostname"];
  CHECK(std::regex_match(hostname, std::regex("^[0-9]+\\.default\\." + c.cartridge + "\\.puppet\\.test$")));
  CHECK(j["hostname_matches"] == true);

  // The master saw this instance: its certificate was autosigned.
  bool signed_cert = false;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(work / "master/etc/ca", ec)) {
    if (e.path().filename() == hostname + ".pem") {
      signed_cert = true;
    }
  }
  CHECK(signed_cert);

  // Puppet ran on the node, from the master, and configured the cartridge's class.
  const std::string console = fs::path(j["console_log"].get<std::string>()).string();
  std::ifstream log(console);
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(text.find("cartridge-init: puppet agent: success, changes applied (exit 2)") != std::string::npos);
  CHECK(text.find("Agent/Package[cartridge-agent]/ensure: created") != std::string::npos);

  const double activated_s = j["boot_to_activated_seconds"];
  if (c.with_application) {
    // The agent Puppet installed did the whole Stratos exchange: the application reached
    // the web root Puppet configured, PHP served it, cleanup was answered.
    CHECK(j["http_status"] == 200);
    test::check_stratos_lifecycle(j);
  }
  std::printf("boot-test %s generic (%s): power-on to activated%s %.1f s (Puppet master + local apt repo), "
              "hostname %s\n",
              c.cartridge.c_str(), j["accelerator"].get<std::string>().c_str(),
              c.with_application ? " with an artifact" : "", activated_s, hostname.c_str());
  (void)std::fflush(stdout);
}

} // namespace

TEST_CASE("boot-test: generic php and mysql images are configured by a Puppet master and activate", "[generic]") {
  const char* cache_env = std::getenv("BUILD_IMAGE_CACHE");
  REQUIRE(cache_env != nullptr);
  const fs::path source = BI_SOURCE_DIR;

  auto work = TempDir::create(fs::temp_directory_path(), "bi-generic-e2e");
  REQUIRE(work);
  const int master_port = free_port();
  const int repo_port = free_port();

  HarnessService repo((source / "tests/harness/package-repo.sh").string(), work->path() / "repo");
  repo.start({std::to_string(repo_port), cache_env, agent_deb().string()}, std::chrono::seconds(120));
  HarnessService master((source / "tests/harness/puppet-master.sh").string(), work->path() / "master");
  master.start({std::to_string(master_port)}, std::chrono::seconds(480));

  // One after the other, no SECTIONs: Catch would rerun the case (and restart the master)
  // per section.
  for (const GenericCase& c : {GenericCase{"php", 80, true}, GenericCase{"mysql", 3306}}) {
    INFO("cartridge " << c.cartridge);
    boot_generic(c, work->path(), master_port, repo_port);
  }
}
