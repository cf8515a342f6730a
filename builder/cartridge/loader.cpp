#include "cartridge/loader.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <spdlog/fmt/fmt.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "cartridge/os_release.hpp"
#include "register/provider.hpp"
#include "util/did_you_mean.hpp"
#include "util/fs.hpp"

namespace bi {

const char* to_string(Mode mode) { return mode == Mode::full ? "full" : "generic"; }

namespace {

namespace fs = std::filesystem;

// yaml-cpp resolves aliases into shared nodes; a walk over a "billion laughs" document
// would still be exponential, so aliases are refused before loading.
class AliasFinder : public YAML::EventHandler {
public:
  std::vector<Diagnostic>& out;
  std::vector<YAML::Mark> document_starts;
  explicit AliasFinder(std::vector<Diagnostic>& o) : out(o) {}
  void OnDocumentStart(const YAML::Mark& mark) override { document_starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    out.push_back({mark.line + 1, mark.column + 1, "YAML aliases are not allowed"});
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Names are checked by hand-written matchers, not std::regex: libstdc++'s regex executor
// recurses once per character, so a long scalar (the file may be 1 MiB) overflowed the
// stack (`packages: [aaaa...]` of 40000 characters crashed `validate`; found while writing
// tests/fuzz/fuzz_loader.cpp, kept in its corpus).
bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

template <typename Pred> bool all_chars(std::string_view s, Pred pred) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return pred(c); });
}

// ^[a-z][a-z0-9-]{0,31}$
bool valid_type(std::string_view s) {
  return !s.empty() && s.size() <= 32 && s[0] >= 'a' && s[0] <= 'z' &&
         all_chars(s, [](char c) { return lower_alnum(c) || c == '-'; });
}
// ^[a-z0-9][a-z0-9+.-]+$
bool valid_package(std::string_view s) {
  return s.size() >= 2 && lower_alnum(s[0]) &&
         all_chars(s, [](char c) { return lower_alnum(c) || c == '+' || c == '.' || c == '-'; });
}
// ^[a-z][a-z0-9_]*$
bool valid_module(std::string_view s) {
  return !s.empty() && s[0] >= 'a' && s[0] <= 'z' && all_chars(s, [](char c) { return lower_alnum(c) || c == '_'; });
}
// ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$
bool valid_host(std::string_view s) {
  return !s.empty() && s.size() <= 253 && alnum(s.front()) && alnum(s.back()) &&
         all_chars(s, [](char c) { return alnum(c) || c == '.' || c == '-'; });
}
// ^[a-z0-9_]+$
bool valid_environment(std::string_view s) {
  return !s.empty() && all_chars(s, [](char c) { return lower_alnum(c) || c == '_'; });
}
// ^[A-Za-z0-9.-]+:[0-9]{1,5}$
bool valid_host_port(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return false;
  }
  const auto host = s.substr(0, colon);
  const auto port = s.substr(colon + 1);
  return all_chars(host, [](char c) { return alnum(c) || c == '.' || c == '-'; }) && !port.empty() &&
         port.size() <= 5 && all_chars(port, [](char c) { return c >= '0' && c <= '9'; });
}
// ^[a-z_][a-z0-9_-]{0,31}$ (what cartridge-init accepts for LOGIN_USER)
bool valid_user(std::string_view s) {
  return !s.empty() && s.size() <= 32 && ((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_') &&
         all_chars(s, [](char c) { return lower_alnum(c) || c == '_' || c == '-'; });
}
// An account Debian or a base package already has: making it the login user would hand the
// cloud's key pair to a daemon's identity.
bool system_account(std::string_view s) {
  static const std::set<std::string_view> names = {
      "daemon",  "bin",  "sys",        "sync",     "games",  "man",    "lp",       "mail",
      "news",    "uucp", "proxy",      "www-data", "backup", "list",   "irc",      "gnats",
      "nobody",  "sshd", "messagebus", "puppet",   "mysql",  "tomcat", "tomcat10", "cartridge-agent",
      "polkitd", "tss"};
  return names.count(s) > 0 || s.rfind("systemd-", 0) == 0 || s.rfind('_', 0) == 0;
}
// An NTP server: a host name or an IPv4/IPv6 address (no port: timesyncd takes none).
bool valid_ntp_server(std::string_view s) {
  if (valid_host(s)) {
    return true;
  }
  return s.size() >= 2 && s.size() <= 45 && s.find(':') != std::string_view::npos && all_chars(s, [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
         });
}
// ^0?[0-7]{3}$
bool valid_mode(std::string_view s) {
  if (s.size() == 4 && s[0] == '0') {
    s.remove_prefix(1);
  }
  return s.size() == 3 && all_chars(s, [](char c) { return c >= '0' && c <= '7'; });
}

class Validator {
public:
  Validator(fs::path file, const LoadOptions& options) : m_file(std::move(file)), m_options(options) {}

  std::vector<Diagnostic> diags;

  void error(const YAML::Node& at, std::string message) {
    const auto m = at.Mark();
    diags.push_back({m.line + 1, m.column + 1, std::move(message)});
  }
  void error_at(const YAML::Mark& m, std::string message) {
    diags.push_back({m.line + 1, m.column + 1, std::move(message)});
  }

  // Checks keys of a mapping against the allowed set; returns key -> (key node, value node).
  std::map<std::string, std::pair<YAML::Node, YAML::Node>> keys(const YAML::Node& map, const std::string& where,
                                                                const std::vector<std::string>& allowed) {
    std::map<std::string, std::pair<YAML::Node, YAML::Node>> out;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        error(key, fmt::format("{}keys must be strings", where.empty() ? "" : where + ": "));
        continue;
      }
      const std::string& name = key.Scalar();
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        const std::string prefix = where.empty() ? "" : where + ".";
        error(key, fmt::format("unknown key '{}{}'", prefix, name) + did_you_mean_suffix(name, allowed, prefix));
        continue;
      }
      if (auto found = out.find(name); found != out.end()) {
        error(key, fmt::format("duplicate key '{}' (first at line {})", name, found->second.first.Mark().line + 1));
        continue;
      }
      out.emplace(name, std::make_pair(key, it->second));
    }
    return out;
  }

  std::optional<std::string> string(const YAML::Node& n, const std::string& name) {
    if (!n.IsScalar()) {
      error(n, fmt::format("'{}' must be a string", name));
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<bool> boolean(const YAML::Node& n, const std::string& name) {
    bool v = false;
    if (n.IsScalar() && YAML::convert<bool>::decode(n, v)) {
      return v;
    }
    error(n, fmt::format("'{}' must be true or false", name));
    return std::nullopt;
  }

  std::optional<long long> integer(const YAML::Node& n, const std::string& name) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (!s.empty() && s.size() < 12 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::stoll(s);
      }
    }
    error(n, fmt::format("'{}' must be an integer", name));
    return std::nullopt;
  }

  std::vector<std::string> string_list(const YAML::Node& n, const std::string& name, bool (*valid)(std::string_view),
                                       const std::string& what) {
    std::vector<std::string> out;
    if (n.IsNull()) {
      return out;
    }
    if (!n.IsSequence()) {
      error(n, fmt::format("'{}' must be a list of strings", name));
      return out;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node item = n[i];
      if (!item.IsScalar()) {
        error(item, fmt::format("'{}[{}]' must be a string", name, i));
        continue;
      }
      if (!valid(item.Scalar())) {
        error(item, fmt::format("{}[{}] '{}' is not a valid {}", name, i, item.Scalar(), what));
        continue;
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  void apps(const YAML::Node& n, const std::string& name, std::vector<std::string>& out) {
    out = string_list(n, name, valid_module, "Puppet class name");
    if (!m_options.puppet_modules) {
      return;
    }
    std::vector<std::string> available;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(*m_options.puppet_modules, ec)) {
      available.push_back(e.path().filename().string());
    }
    for (size_t i = 0; i < out.size() && n.IsSequence(); ++i) {
      if (std::find(available.begin(), available.end(), out[i]) == available.end()) {
        error(n[i],
              fmt::format("{}[{}] '{}' is not a module in {}", name, i, out[i], m_options.puppet_modules->string()) +
                  did_you_mean_suffix(out[i], available));
      }
    }
  }

  std::optional<Cartridge> run(const YAML::Node& root) {
    if (!root.IsMap()) {
      error(root, "the cartridge definition must be a YAML mapping (key: value)");
      return std::nullopt;
    }
    static const std::vector<std::string> top = {"type",     "display_name",   "description",  "version", "category",
                                                 "provider", "host",           "multi_tenant", "mode",    "base",
                                                 "packages", "dependent_apps", "server_apps",  "puppet",  "agent",
                                                 "ports",    "files",          "iaas",         "login",   "time"};
    auto k = keys(root, "", top);
    Cartridge c;
    c.file = m_file;

    if (auto it = k.find("type"); it == k.end()) {
      error_at(root.Mark(), "missing required key 'type'");
    } else if (auto v = string(it->second.second, "type")) {
      if (!valid_type(*v)) {
        error(it->second.second, fmt::format("invalid type '{}': must match ^[a-z][a-z0-9-]{{0,31}}$", *v));
      }
      c.type = *v;
    }
    auto str = [&](const char* key, std::string& out) {
      if (auto it = k.find(key); it != k.end()) {
        if (auto v = string(it->second.second, key)) {
          out = *v;
        }
      }
    };
    str("display_name", c.display_name);
    str("description", c.description);
    str("version", c.version);
    str("provider", c.provider);
    str("host", c.host);
    if (auto it = k.find("category"); it != k.end()) {
      if (auto v = string(it->second.second, "category")) {
        static const std::set<std::string> ok = {"framework", "data", "application", "load-balancer"};
        if (!ok.count(*v)) {
          error(it->second.second, fmt::format("invalid category '{}': expected framework, data, application or "
                                               "load-balancer",
                                               *v));
        }
        c.category = *v;
      }
    }
    if (auto it = k.find("multi_tenant"); it != k.end()) {
      if (auto v = boolean(it->second.second, "multi_tenant")) {
        c.multi_tenant = *v;
      }
    }
    if (auto it = k.find("mode"); it != k.end()) {
      if (auto v = string(it->second.second, "mode")) {
        if (*v == "generic") {
          c.mode = Mode::generic;
        } else if (*v == "full") {
          c.mode = Mode::full;
        } else {
          error(it->second.second, fmt::format("invalid mode '{}': expected generic or full", *v));
        }
      }
    }
    if (auto it = k.find("base"); it != k.end()) {
      base(it->second.second, c.base);
    } else {
      c.base.os = std::string(default_os_release().name);
    }
    if (auto it = k.find("packages"); it != k.end()) {
      c.packages = string_list(it->second.second, "packages", valid_package, "Debian package name");
    }
    if (auto it = k.find("dependent_apps"); it != k.end()) {
      apps(it->second.second, "dependent_apps", c.dependent_apps);
    }
    if (auto it = k.find("server_apps"); it != k.end()) {
      apps(it->second.second, "server_apps", c.server_apps);
    }
    if (auto it = k.find("puppet"); it != k.end()) {
      puppet(it->second.second, c);
    }
    if (auto it = k.find("agent"); it != k.end()) {
      agent(it->second.second, c);
    }
    if (auto it = k.find("ports"); it != k.end()) {
      ports(it->second.second, c.ports);
    }
    if (auto it = k.find("files"); it != k.end()) {
      files(it->second.second, c.files);
    }
    if (auto it = k.find("iaas"); it != k.end()) {
      iaas(it->second.second, c.iaas);
    }
    if (auto it = k.find("login"); it != k.end()) {
      login(it->second.second, c.login);
    }
    if (auto it = k.find("time"); it != k.end()) {
      time(it->second.second, c.ntp_servers);
    }
    if (!diags.empty()) {
      return std::nullopt;
    }
    return c;
  }

private:
  void base(const YAML::Node& n, BaseSpec& b) {
    if (!n.IsMap()) {
      error(n, "'base' must be a mapping with 'os' or 'image'");
      return;
    }
    auto k = keys(n, "base", {"os", "image", "size", "mirror", "firmware", "secure_boot"});
    const bool has_os = k.count("os") > 0;
    const bool has_image = k.count("image") > 0;
    if (has_os && has_image) {
      error(k.at("image").first, "base: set exactly one of 'os' and 'image', not both");
    } else if (!has_os && !has_image) {
      error(n, "base: set exactly one of 'os' and 'image'");
    }
    if (has_os) {
      if (auto v = string(k.at("os").second, "base.os")) {
        if (find_os_release(*v) == nullptr) {
          std::vector<std::string> supported;
          std::string hint;
          for (const auto& r : os_releases()) {
            supported.emplace_back(r.name);
            if (*v == r.suite) { // a codename: people write `trixie` for debian-13
              hint = fmt::format(" (did you mean '{}'?)", r.name);
            }
          }
          error(k.at("os").second, fmt::format("unsupported base.os '{}': supported: {}", *v, os_release_names()) +
                                       (hint.empty() ? did_you_mean_suffix(*v, supported) : hint));
        }
        b.os = *v;
      }
    }
    if (has_image) {
      if (auto v = string(k.at("image").second, "base.image")) {
        fs::path p = fs::path(*v).is_absolute() ? fs::path(*v) : m_file.parent_path() / *v;
        std::error_code ec;
        if (!fs::is_regular_file(p, ec)) {
          error(k.at("image").second, fmt::format("base.image '{}' does not exist", *v));
        }
        b.image = fs::absolute(p, ec);
      }
    }
    if (auto it = k.find("size"); it != k.end()) {
      if (auto v = string(it->second.second, "base.size")) {
        const auto bytes = parse_size(*v);
        if (bytes == 0) {
          error(it->second.second, fmt::format("invalid base.size '{}': expected a size like 4G or 512M", *v));
        } else if (bytes < (1ull << 30)) {
          error(it->second.second, fmt::format("base.size '{}' is too small: at least 1G", *v));
        } else if (bytes > (2048ull << 30)) {
          error(it->second.second, fmt::format("base.size '{}' is too large: at most 2T", *v));
        } else {
          b.size_bytes = bytes;
        }
      }
    }
    if (auto it = k.find("mirror"); it != k.end()) {
      if (auto v = string(it->second.second, "base.mirror")) {
        b.mirror = *v;
      }
    }
    if (auto it = k.find("firmware"); it != k.end()) {
      if (auto v = string(it->second.second, "base.firmware")) {
        static const std::vector<std::string> kinds = {"bios", "uefi", "hybrid"};
        if (std::find(kinds.begin(), kinds.end(), *v) == kinds.end()) {
          error(it->second.second, fmt::format("invalid base.firmware '{}': expected bios, uefi or hybrid", *v) +
                                       did_you_mean_suffix(*v, kinds));
        } else {
          b.firmware = *v;
        }
      }
    }
    if (auto it = k.find("secure_boot"); it != k.end()) {
      if (auto v = boolean(it->second.second, "base.secure_boot")) {
        b.secure_boot = *v;
        if (*v && b.firmware == "bios") {
          error(it->second.first, "base.secure_boot needs UEFI: set base.firmware to uefi or hybrid, not bios");
        }
      }
    }
  }

  void puppet(const YAML::Node& n, Cartridge& c) {
    if (!n.IsMap()) {
      error(n, "'puppet' must be a mapping");
      return;
    }
    auto k = keys(n, "puppet", {"server", "environment"});
    if (auto it = k.find("server"); it != k.end()) {
      if (auto v = string(it->second.second, "puppet.server")) {
        if (!valid_host(*v)) {
          error(it->second.second, fmt::format("invalid puppet.server '{}': expected a host name", *v));
        }
        c.puppet_server = *v;
      }
    }
    if (auto it = k.find("environment"); it != k.end()) {
      if (auto v = string(it->second.second, "puppet.environment")) {
        if (!valid_environment(*v)) {
          error(it->second.second, fmt::format("invalid puppet.environment '{}': expected [a-z0-9_]+", *v));
        }
        c.puppet_environment = *v;
      }
    }
  }

  void agent(const YAML::Node& n, Cartridge& c) {
    if (!n.IsMap()) {
      error(n, "'agent' must be a mapping");
      return;
    }
    auto k = keys(n, "agent", {"mb_urls"});
    if (auto it = k.find("mb_urls"); it != k.end()) {
      c.mb_urls = string_list(it->second.second, "agent.mb_urls", valid_host_port, "host:port");
    }
  }

  void login(const YAML::Node& n, LoginSpec& out) {
    if (!n.IsMap()) {
      error(n, "'login' must be a mapping with user and ssh");
      return;
    }
    auto k = keys(n, "login", {"user", "ssh"});
    if (auto it = k.find("user"); it != k.end()) {
      if (auto v = string(it->second.second, "login.user")) {
        if (!valid_user(*v)) {
          error(it->second.second,
                fmt::format("invalid login.user '{}': expected root or a user name ^[a-z_][a-z0-9_-]{{0,31}}$", *v));
        } else if (system_account(*v)) {
          error(it->second.second,
                fmt::format("login.user '{}' is a system account: use root or a name of its own", *v));
        }
        out.user = *v;
      }
    }
    if (auto it = k.find("ssh"); it != k.end()) {
      if (auto v = boolean(it->second.second, "login.ssh")) {
        out.ssh = *v;
      }
    }
  }

  void time(const YAML::Node& n, std::vector<std::string>& out) {
    if (!n.IsMap()) {
      error(n, "'time' must be a mapping with ntp_servers");
      return;
    }
    auto k = keys(n, "time", {"ntp_servers"});
    if (auto it = k.find("ntp_servers"); it != k.end()) {
      out = string_list(it->second.second, "time.ntp_servers", valid_ntp_server, "host name or IP address");
      const YAML::Node list = it->second.second;
      std::set<std::string> seen;
      for (size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
        if (list[i].IsScalar() && valid_ntp_server(list[i].Scalar()) && !seen.insert(list[i].Scalar()).second) {
          error(list[i], fmt::format("time.ntp_servers[{}] '{}' is listed twice", i, list[i].Scalar()));
        }
      }
    }
  }

  void ports(const YAML::Node& n, std::vector<PortMapping>& out) {
    if (!n.IsSequence()) {
      error(n, "'ports' must be a list");
      return;
    }
    std::map<int, size_t> seen;
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node p = n[i];
      const std::string where = fmt::format("ports[{}]", i);
      if (!p.IsMap()) {
        error(p, fmt::format("'{}' must be a mapping with name, protocol, port", where));
        continue;
      }
      auto k = keys(p, where, {"name", "protocol", "port", "proxy_port"});
      PortMapping m;
      if (auto it = k.find("name"); it != k.end()) {
        if (auto v = string(it->second.second, where + ".name")) {
          m.name = *v;
        }
      }
      if (auto it = k.find("protocol"); it != k.end()) {
        if (auto v = string(it->second.second, where + ".protocol")) {
          m.protocol = *v;
        }
      } else {
        m.protocol = "http";
      }
      auto in_range = [&](const char* key, int lo, int& dst) {
        auto it = k.find(key);
        if (it == k.end()) {
          return false;
        }
        auto v = integer(it->second.second, where + "." + key);
        if (!v) {
          return false;
        }
        if (*v < lo || *v > 65535) {
          error(it->second.second, fmt::format("{}.{} {} is out of range {}-65535", where, key, *v, lo));
          return false;
        }
        dst = static_cast<int>(*v);
        return true;
      };
      if (k.find("port") == k.end()) {
        error(p, fmt::format("{}: missing required key 'port'", where));
      } else if (in_range("port", 1, m.port)) {
        if (auto dup = seen.find(m.port); dup != seen.end()) {
          error(k.at("port").second, fmt::format("{}.port {} is a duplicate of ports[{}]", where, m.port, dup->second));
        } else {
          seen.emplace(m.port, i);
        }
      }
      in_range("proxy_port", 0, m.proxy_port);
      if (m.name.empty()) {
        m.name = fmt::format("{}-{}", m.protocol, m.port);
      }
      out.push_back(m);
    }
  }

  void files(const YAML::Node& n, std::vector<ExtraFile>& out) {
    if (!n.IsSequence()) {
      error(n, "'files' must be a list");
      return;
    }
    std::error_code ec;
    const fs::path folder = fs::weakly_canonical(fs::absolute(m_file.parent_path(), ec), ec);
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node f = n[i];
      const std::string where = fmt::format("files[{}]", i);
      if (!f.IsMap()) {
        error(f, fmt::format("'{}' must be a mapping with source and dest", where));
        continue;
      }
      auto k = keys(f, where, {"source", "dest", "mode"});
      ExtraFile e;
      if (k.find("source") == k.end()) {
        error(f, fmt::format("{}: missing required key 'source'", where));
      } else if (auto v = string(k.at("source").second, where + ".source")) {
        e.source_as_written = *v;
        const fs::path resolved = fs::weakly_canonical(folder / *v, ec);
        const auto rel = resolved.lexically_relative(folder);
        const YAML::Node at = k.at("source").second;
        if (fs::path(*v).is_absolute() || rel.empty() || *rel.begin() == "..") {
          error(at, fmt::format("{}.source '{}' is outside the cartridge folder {}", where, *v, folder.string()));
        } else if (!fs::exists(resolved, ec)) {
          error(at, fmt::format("{}.source '{}' does not exist", where, *v));
        } else if (!fs::is_regular_file(resolved, ec)) {
          error(at, fmt::format("{}.source '{}' is not a regular file", where, *v));
        } else if (fs::file_size(resolved, ec) > m_options.max_extra_file_bytes) {
          error(at, fmt::format("{}.source '{}' is too large ({} bytes; limit {})", where, *v,
                                fs::file_size(resolved, ec), m_options.max_extra_file_bytes));
        } else {
          e.source = resolved;
        }
      }
      if (k.find("dest") == k.end()) {
        error(f, fmt::format("{}: missing required key 'dest'", where));
      } else if (auto v = string(k.at("dest").second, where + ".dest")) {
        const fs::path d(*v);
        bool dotdot = false;
        for (const auto& part : d) {
          dotdot = dotdot || part == "..";
        }
        if (!d.is_absolute()) {
          error(k.at("dest").second, fmt::format("{}.dest '{}' must be an absolute path", where, *v));
        } else if (dotdot || d.filename().empty()) {
          error(k.at("dest").second, fmt::format("{}.dest '{}' must name a file without '..'", where, *v));
        }
        e.dest = *v;
      }
      if (auto it = k.find("mode"); it != k.end()) {
        const YAML::Node m = it->second.second;
        if (!m.IsScalar() || !valid_mode(m.Scalar())) {
          error(m, fmt::format("{}.mode must be an octal mode like \"0644\"", where));
        } else {
          e.mode = static_cast<unsigned>(std::stoul(m.Scalar(), nullptr, 8));
        }
      }
      out.push_back(e);
    }
  }

  void iaas(const YAML::Node& n, std::vector<IaasTarget>& out) {
    if (!n.IsSequence()) {
      error(n, "'iaas' must be a list");
      return;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node t = n[i];
      const std::string where = fmt::format("iaas[{}]", i);
      if (!t.IsMap()) {
        error(t, fmt::format("'{}' must be a mapping with type and region", where));
        continue;
      }
      auto k = keys(t, where, {"type", "region", "properties"});
      IaasTarget target;
      if (k.find("type") == k.end()) {
        error(t, fmt::format("{}: missing required key 'type'", where));
      } else if (auto v = string(k.at("type").second, where + ".type")) {
        // The clouds are the registration's provider table: a new provider is valid here at once.
        if (registration::find_provider(*v) == nullptr) {
          error(k.at("type").second, fmt::format("{}.type '{}' is not supported: expected {}", where, *v,
                                                 registration::provider_names(" or ")));
        }
        target.type = *v;
      }
      if (k.find("region") == k.end()) {
        error(t, fmt::format("{}: missing required key 'region'", where));
      } else if (auto v = string(k.at("region").second, where + ".region")) {
        target.region = *v;
      }
      if (auto it = k.find("properties"); it != k.end()) {
        const YAML::Node props = it->second.second;
        if (!props.IsMap()) {
          error(props, fmt::format("'{}.properties' must be a mapping of strings", where));
        } else {
          for (auto p = props.begin(); p != props.end(); ++p) {
            if (!p->first.IsScalar() || !p->second.IsScalar()) {
              error(p->first, fmt::format("'{}.properties' must be a mapping of strings", where));
              continue;
            }
            target.properties[p->first.Scalar()] = p->second.Scalar();
          }
        }
      }
      out.push_back(target);
    }
  }

  fs::path m_file;
  const LoadOptions& m_options;
};

// Binary content would make yaml-cpp's messages useless; report where it starts.
std::optional<Diagnostic> check_text(const std::string& text) {
  int line = 1;
  int col = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t')) {
      return Diagnostic{line, col, fmt::format("file is not text: control byte 0x{:02x}", c)};
    }
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::nullopt;
}

} // namespace

std::string format_diagnostics(const std::string& shown_path, const std::vector<Diagnostic>& diags) {
  std::string out;
  for (const auto& d : diags) {
    out += fmt::format("{}:{}:{}: {}\n", shown_path, d.line, d.column, d.message);
  }
  return out;
}

LoadResult load_cartridge_text(const std::string& text, const fs::path& file, const LoadOptions& options) {
  LoadResult result;
  if (text.size() > options.max_file_bytes) {
    result.diagnostics.push_back(
        {1, 1, fmt::format("file is too large ({} bytes; limit {})", text.size(), options.max_file_bytes)});
    return result;
  }
  if (auto bad = check_text(text)) {
    result.diagnostics.push_back(*bad);
    return result;
  }
  try {
    std::istringstream events_in(text);
    YAML::Parser parser(events_in);
    AliasFinder finder(result.diagnostics);
    while (parser.HandleNextDocument(finder)) {
      // yaml-cpp 0.7 does not consume a ',' where a document's node should start (", a" or
      // "[a], b"): every call then returns another empty document at the same place, so
      // LoadAll and this loop never ended (found by fuzz_loader; kept in its corpus).
      const auto& starts = finder.document_starts;
      if (starts.size() >= 2 && starts.back().pos == starts[starts.size() - 2].pos) {
        const auto& m = starts.back();
        const char c = m.pos >= 0 && static_cast<size_t>(m.pos) < text.size() ? text[static_cast<size_t>(m.pos)] : '?';
        result.diagnostics.push_back({m.line + 1, m.column + 1, fmt::format("YAML syntax error: unexpected '{}'", c)});
        return result;
      }
    }
    if (!result.diagnostics.empty()) {
      return result;
    }
    if (finder.document_starts.size() > 1) {
      result.diagnostics.push_back(
          {1, 1, "expected one YAML document, found " + std::to_string(finder.document_starts.size())});
      return result;
    }
    // One document: parsed once more, into nodes (Load reads only the first document).
    const YAML::Node doc = YAML::Load(text);
    if (!doc || doc.IsNull()) {
      result.diagnostics.push_back({1, 1, "the file is empty: at least 'type' is required"});
      return result;
    }
    Validator v(file, options);
    result.cartridge = v.run(doc);
    result.diagnostics = std::move(v.diags);
    if (!result.diagnostics.empty()) {
      result.cartridge.reset();
    }
  } catch (const YAML::Exception& e) {
    result.diagnostics.push_back({e.mark.line + 1, e.mark.column + 1, "YAML syntax error: " + e.msg});
    result.cartridge.reset();
  }
  return result;
}

LoadResult load_cartridge(const fs::path& file, const LoadOptions& options) {
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return LoadResult{std::nullopt, {{1, 1, "no such file"}}};
  }
  if (!fs::is_regular_file(file, ec)) {
    return LoadResult{std::nullopt, {{1, 1, "not a regular file"}}};
  }
  const auto size = fs::file_size(file, ec);
  if (size > options.max_file_bytes) {
    return LoadResult{std::nullopt,
                      {{1, 1, fmt::format("file is too large ({} bytes; limit {})", size, options.max_file_bytes)}}};
  }
  auto text = read_file(file, options.max_file_bytes);
  if (!text) {
    return LoadResult{std::nullopt, {{1, 1, text.error().detail}}};
  }
  return load_cartridge_text(*text, fs::absolute(file, ec), options);
}

} // namespace bi
