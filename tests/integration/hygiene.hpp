// Image hygiene (README, "What is in an image"), read from a mounted image: every problem
// found, as text naming the path, so a test can CHECK the list is empty and a planted
// defect can be shown to be found. One listing of the whole tree: a key, a certificate or
// a log is found wherever it is, not only where the builder is known to remove it.
// Used by tests/integration (the fixture's images) and tests/catalogue (every template).
#pragma once

#include <regex>
#include <string>
#include <vector>

#include "guest/guestfs_handle.hpp"

namespace bi::test {

// Puppet's SSL state (CA certificate, keys, CSRs) in any of its homes: Debian's puppet
// (/var/lib/puppet/ssl, /etc/puppet/ssl), puppet 7+ (/var/cache/puppet/ssl), Puppetlabs'
// packages (/etc/puppetlabs/puppet/ssl, /opt/puppetlabs/...), or any other ssl folder
// below a folder named for Puppet.
// Ruby libraries named puppet/ssl/*.rb are code, not state.
inline bool is_puppet_ssl_path(const std::string& path) {
  static const std::regex re(R"(^/(etc|var|opt|root|home)/(.*/)?[^/]*puppet[^/]*/(.*/)?ssl/.+)");
  return path.find("/ruby/") == std::string::npos && std::regex_match(path, re);
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline bool is_shell_history(const std::string& name) {
  return name == ".lesshst" || name == ".viminfo" || (name.size() > 8 && name[0] == '.' && ends_with(name, "_history"));
}

// The image's root filesystem must be mounted at / (and its boot partition at /boot).
inline std::vector<std::string> hygiene_problems(GuestfsHandle& g) {
  std::vector<std::string> problems;
  auto listing = g.find("/");
  if (!listing) {
    return {"cannot list the image: " + listing.error().to_string()};
  }
  auto read = [&](const std::string& path) -> std::string {
    auto r = g.read_file(path);
    if (!r) {
      problems.push_back(path + ": cannot read: " + r.error().to_string());
      return {};
    }
    return *r;
  };
  auto starts = [](const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; };
  for (const auto& rel : *listing) {
    const std::string path = "/" + rel;
    const std::string name = path.substr(path.rfind('/') + 1);
    if (starts(name, "ssh_host_") && (ends_with(name, "_key") || ends_with(name, "_key.pub"))) {
      problems.push_back(path + ": an SSH host key (every instance must make its own)");
    }
    if (is_puppet_ssl_path(path) && !g.is_dir(path)) {
      problems.push_back(path + ": Puppet SSL state (the master would refuse a second agent with it)");
    }
    if (name == "authorized_keys" || name == "authorized_keys2") {
      problems.push_back(path + ": SSH authorized keys (the cloud's key pair is installed at boot)");
    }
    if (is_shell_history(name)) {
      problems.push_back(path + ": shell history");
    }
    if (starts(path, "/var/log/") && !g.is_dir(path)) {
      problems.push_back(path + ": a file under /var/log");
    }
    if (starts(path, "/var/lib/apt/lists/") && path != "/var/lib/apt/lists/lock" && !g.is_dir(path)) {
      problems.push_back(path + ": an apt package list");
    }
    if (starts(path, "/var/cache/apt/") && path != "/var/cache/apt/archives/lock" && !g.is_dir(path)) {
      problems.push_back(path + ": an apt cache file");
    }
  }
  for (const char* path :
       {"/etc/resolv.conf", "/var/lib/cartridge/launch-params", "/var/lib/cartridge/initialized",
        "/var/lib/cartridge/instance-id", "/tmp/payload", "/etc/ssl/private/ssl-cert-snakeoil.key",
        "/var/lib/dbus/machine-id", "/var/lib/systemd/random-seed", "/var/lib/cartridge/root-grown"}) {
    if (g.exists(path) || g.is_symlink(path)) {
      problems.push_back(std::string(path) + ": must not be in an image");
    }
  }
  if (!read("/etc/machine-id").empty()) {
    problems.push_back("/etc/machine-id: not empty (every instance must make its own)");
  }
  if (const auto hostname = read("/etc/hostname"); hostname != "localhost\n") {
    problems.push_back("/etc/hostname: '" + hostname + "', not the neutral 'localhost'");
  }
  // Root has no password (locked), so there is no password login at all.
  const auto shadow = read("/etc/shadow");
  const auto at = shadow.rfind("root:", 0) == 0 ? 0 : shadow.find("\nroot:");
  if (at == std::string::npos) {
    problems.push_back("/etc/shadow: no root entry");
  } else {
    const auto begin = at == 0 ? 0 : at + 1;
    const auto line = shadow.substr(begin, shadow.find('\n', begin) - begin);
    if (line.rfind("root:*:", 0) != 0 && line.rfind("root:!", 0) != 0) {
      problems.push_back("/etc/shadow: root has a password");
    }
  }
  return problems;
}

} // namespace bi::test
