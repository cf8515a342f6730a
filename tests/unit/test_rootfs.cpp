// Facts read from a root tree for the manifest and the build report (dpkg status, sizes).
#include <catch2/catch.hpp>

#include "rootfs/rootfs.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"

using namespace bi;

namespace {

const char* k_status = "Package: base-files\nStatus: install ok installed\nInstalled-Size: 390\nVersion: 12.4\n\n"
                       "Package: gone\nStatus: deinstall ok config-files\nInstalled-Size: 10\nVersion: 1\n\n"
                       "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nInstalled-Size: 12000\n"
                       "Description: x\n multi-line\n\n"
                       "Package: odd\nStatus: install ok installed\nVersion: 1\nInstalled-Size: lots\n";

} // namespace

TEST_CASE("installed packages, versions and sizes come from one reading of dpkg's status") {
  test::Scratch s;
  s.write("root/var/lib/dpkg/status", k_status);
  auto versions = installed_packages(s.path() / "root");
  REQUIRE(versions);
  CHECK(*versions == std::map<std::string, std::string>{{"base-files", "12.4"}, {"libc6", "2.36-9"}, {"odd", "1"}});
  auto sizes = installed_package_sizes(s.path() / "root");
  REQUIRE(sizes);
  // Not installed: left out; a size that is not a number: left out, not guessed.
  CHECK(*sizes == std::map<std::string, std::uint64_t>{{"base-files", 390}, {"libc6", 12000}});
}

TEST_CASE("tree sizes count each file once per top-level folder and follow no symlink") {
  test::Scratch s;
  const auto root = s.path() / "root";
  s.write("root/usr/bin/a", std::string(1000, 'a'));
  s.write("root/usr/lib/b", std::string(24, 'b'));
  s.write("root/etc/c", std::string(7, 'c'));
  std::filesystem::create_hard_link(root / "usr/bin/a", root / "usr/lib/a-again");
  std::filesystem::create_directory_symlink(root / "usr", root / "etc/usr-link");
  std::filesystem::create_directory_symlink("usr/bin", root / "bin");
  CHECK(tree_sizes(root) == std::map<std::string, std::uint64_t>{{"/etc", 7}, {"/usr", 1024}});
}

TEST_CASE("mmdebstrap's mirror argument: the host's file as is, or the release's text in the scratch") {
  test::Scratch s;
  BaseLayerPlan plan;
  plan.mirror = "/etc/apt/sources.list.d/debian.sources";
  plan.mirror_content = "Types: deb\nURIs: http://m/debian\nSuites: bookworm\n";
  auto same = mmdebstrap_mirror_argument(plan, s.path());
  REQUIRE(same);
  CHECK(*same == plan.mirror);
  CHECK(fs::is_empty(s.path())); // nothing written for the file's own release

  plan.suite = "trixie";
  plan.mirror_content = "Types: deb\nURIs: http://m/debian\nSuites: trixie\n";
  plan.mirror_rewritten = true;
  auto derived = mmdebstrap_mirror_argument(plan, s.path());
  REQUIRE(derived);
  // deb822 by its extension, which mmdebstrap reads the format from.
  CHECK(*derived == (s.path() / "apt-trixie.sources").string());
  CHECK(*read_file(*derived) == plan.mirror_content);

  plan.mirror = "http://m/debian";
  plan.mirror_content = plan.mirror;
  plan.mirror_rewritten = false;
  CHECK(*mmdebstrap_mirror_argument(plan, s.path()) == "http://m/debian");
}
