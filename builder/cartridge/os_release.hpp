#pragma once
// The Debian releases `base.os` accepts: one table that the loader (validation), the plan
// (suite, packages, layer keys), the mmdebstrap sources, the manifest and registration read.

#include <string>
#include <string_view>
#include <vector>

namespace bi {

struct OsRelease {
  std::string_view name;           // the base.os value: debian-12
  std::string_view version;        // Glance's os_version: 12
  std::string_view suite;          // the codename mmdebstrap is given: bookworm
  std::string_view security_suite; // bookworm-security (the derived sources name it)
  std::string_view kernel_package; // the cloud kernel of amd64
  // Nothing else differs for the tool: the Puppet modules name Debian's unversioned
  // packages (libapache2-mod-php, mariadb-server, default-jre-headless), the same names
  // exist in both releases (puppet/README.md lists the versions each one brings).
};

// Oldest first; the first one is the default of a cartridge without `base`.
const std::vector<OsRelease>& os_releases();
const OsRelease& default_os_release();
// nullptr when `name` is not a supported base.os.
const OsRelease* find_os_release(std::string_view name);
// "debian-12, debian-13": for messages.
std::string os_release_names();

// An apt sources text (deb822 or one-line) of any supported release rewritten for `target`:
// every suite naming a known codename (bookworm, bookworm-updates, bookworm-security) gets
// the target's codename (trixie, trixie-updates, trixie-security); URIs, keyrings, comments
// and every other byte stay as they are, so the text of the same release comes back
// unchanged.
std::string apt_sources_for_release(const std::string& sources, const OsRelease& target);

} // namespace bi
