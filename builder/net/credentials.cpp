#include "net/credentials.hpp"

#include <algorithm>
#include <functional>
#include <sstream>
#include <vector>

#include <spdlog/fmt/fmt.h>
#include <yaml-cpp/yaml.h>

#include "util/fs.hpp"

extern char** environ;

namespace bi::net {

namespace {

std::string get(const Env& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? "" : it->second;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) {
    return "";
  }
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

fs::path home(const Env& env) {
  const std::string h = get(env, "HOME");
  return h.empty() ? fs::path("/root") : fs::path(h);
}

std::string first_of(const Env& env, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (auto v = get(env, k); !v.empty()) {
      return v;
    }
  }
  return "";
}

} // namespace

Env process_env() {
  Env env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string_view::npos) {
      env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  return env;
}

std::map<std::string, std::map<std::string, std::string>> parse_ini(const std::string& text) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') {
      continue;
    }
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      out[section];
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos || section.empty()) {
      continue;
    }
    out[section][trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

std::string AwsConfig::describe() const {
  return fmt::format("access key {}... from {}", credentials.access_key_id.substr(0, 4), credentials.source);
}

void AwsConfig::resolve_endpoints(const std::string& region_name) {
  region = region_name;
  ec2_endpoint =
      !endpoint_override_ec2.empty() ? endpoint_override_ec2 : fmt::format("https://ec2.{}.amazonaws.com", region_name);
  ebs_endpoint =
      !endpoint_override_ebs.empty() ? endpoint_override_ebs : fmt::format("https://ebs.{}.amazonaws.com", region_name);
  while (!ec2_endpoint.empty() && ec2_endpoint.back() == '/') {
    ec2_endpoint.pop_back();
  }
  while (!ebs_endpoint.empty() && ebs_endpoint.back() == '/') {
    ebs_endpoint.pop_back();
  }
}

Expected<AwsConfig> load_aws_config(const Env& env) {
  AwsConfig c;
  c.profile = first_of(env, {"AWS_PROFILE", "AWS_DEFAULT_PROFILE"});
  const bool profile_given = !c.profile.empty();
  if (c.profile.empty()) {
    c.profile = "default";
  }
  const fs::path cred_file = !get(env, "AWS_SHARED_CREDENTIALS_FILE").empty()
                                 ? fs::path(get(env, "AWS_SHARED_CREDENTIALS_FILE"))
                                 : home(env) / ".aws/credentials";
  const fs::path config_file =
      !get(env, "AWS_CONFIG_FILE").empty() ? fs::path(get(env, "AWS_CONFIG_FILE")) : home(env) / ".aws/config";
  std::map<std::string, std::string> cred_section, config_section;
  std::error_code ec;
  if (fs::is_regular_file(cred_file, ec)) {
    BI_TRY_ASSIGN(std::string text, read_file(cred_file, 1 << 20));
    auto ini = parse_ini(text);
    if (ini.count(c.profile)) {
      cred_section = ini[c.profile];
    }
  }
  if (fs::is_regular_file(config_file, ec)) {
    BI_TRY_ASSIGN(std::string text, read_file(config_file, 1 << 20));
    auto ini = parse_ini(text);
    const std::string name = c.profile == "default" ? "default" : "profile " + c.profile;
    if (ini.count(name)) {
      config_section = ini[name];
    } else if (ini.count(c.profile)) {
      config_section = ini[c.profile];
    }
  }
  const std::string env_key = get(env, "AWS_ACCESS_KEY_ID");
  const std::string env_secret = get(env, "AWS_SECRET_ACCESS_KEY");
  if (!env_key.empty() && !env_secret.empty() && !profile_given) {
    c.credentials = {env_key, env_secret, get(env, "AWS_SESSION_TOKEN"), "the environment (AWS_ACCESS_KEY_ID)"};
  } else {
    // The credentials file wins over the config file for the same profile (as the CLI does).
    auto pick = [&](const char* key) {
      if (cred_section.count(key)) {
        return cred_section[key];
      }
      return config_section.count(key) ? config_section[key] : std::string();
    };
    c.credentials.access_key_id = pick("aws_access_key_id");
    c.credentials.secret_access_key = pick("aws_secret_access_key");
    c.credentials.session_token = pick("aws_session_token");
    c.credentials.source = cred_section.count("aws_access_key_id")
                               ? fmt::format("profile '{}' in {}", c.profile, cred_file.string())
                               : fmt::format("profile '{}' in {}", c.profile, config_file.string());
    if (c.credentials.access_key_id.empty() && !env_key.empty() && !env_secret.empty()) {
      c.credentials = {env_key, env_secret, get(env, "AWS_SESSION_TOKEN"), "the environment (AWS_ACCESS_KEY_ID)"};
    }
  }
  if (c.credentials.access_key_id.empty() || c.credentials.secret_access_key.empty()) {
    return fail("AWS credentials",
                fmt::format("none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '{}' in {}",
                            c.profile, cred_file.string()),
                ExitCode::bad_input);
  }
  c.region = first_of(env, {"AWS_REGION", "AWS_DEFAULT_REGION"});
  if (c.region.empty() && config_section.count("region")) {
    c.region = config_section["region"];
  }
  c.endpoint_override_ec2 = first_of(env, {"AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"});
  c.endpoint_override_ebs = first_of(env, {"AWS_ENDPOINT_URL_EBS", "AWS_ENDPOINT_URL"});
  return c;
}

std::string OpenStackAuth::describe() const {
  if (auth_type == "v3applicationcredential") {
    return fmt::format("application credential {} at {} from {}",
                       !application_credential_id.empty() ? application_credential_id : application_credential_name,
                       auth_url, source);
  }
  return fmt::format("user {} project {} at {} from {}", !username.empty() ? username : user_id,
                     !project_name.empty() ? project_name : project_id, auth_url, source);
}

namespace {

void merge_yaml(YAML::Node target, const YAML::Node& source) {
  if (!source.IsMap()) {
    return;
  }
  for (const auto& kv : source) {
    const std::string key = kv.first.as<std::string>();
    if (kv.second.IsMap() && target[key] && target[key].IsMap()) {
      merge_yaml(target[key], kv.second);
    } else {
      target[key] = kv.second;
    }
  }
}

std::string yaml_str(const YAML::Node& n, const char* key) {
  if (n && n.IsMap() && n[key] && n[key].IsScalar()) {
    return n[key].as<std::string>();
  }
  return "";
}

// One OpenStackAuth field and where clouds.yaml (its cloud, or the cloud's auth:) and the
// OS_* variables spell it; the first non-empty spelling wins.
struct AuthField {
  std::string OpenStackAuth::*member;
  std::vector<const char*> yaml;
  bool under_auth;
  std::vector<const char*> env;
};

const std::vector<AuthField>& auth_fields() {
  using A = OpenStackAuth;
  static const std::vector<AuthField> fields = {
      {&A::auth_type, {"auth_type"}, false, {"OS_AUTH_TYPE"}},
      {&A::auth_url, {"auth_url"}, true, {"OS_AUTH_URL"}},
      {&A::username, {"username"}, true, {"OS_USERNAME"}},
      {&A::user_id, {"user_id"}, true, {"OS_USER_ID"}},
      {&A::password, {"password"}, true, {"OS_PASSWORD"}},
      {&A::user_domain_name, {"user_domain_name"}, true, {"OS_USER_DOMAIN_NAME"}},
      {&A::user_domain_id, {"user_domain_id"}, true, {"OS_USER_DOMAIN_ID"}},
      {&A::project_name, {"project_name", "tenant_name"}, true, {"OS_PROJECT_NAME", "OS_TENANT_NAME"}},
      {&A::project_id, {"project_id"}, true, {"OS_PROJECT_ID", "OS_TENANT_ID"}},
      {&A::project_domain_name, {"project_domain_name"}, true, {"OS_PROJECT_DOMAIN_NAME"}},
      {&A::project_domain_id, {"project_domain_id"}, true, {"OS_PROJECT_DOMAIN_ID"}},
      {&A::application_credential_id, {"application_credential_id"}, true, {"OS_APPLICATION_CREDENTIAL_ID"}},
      {&A::application_credential_name, {"application_credential_name"}, true, {"OS_APPLICATION_CREDENTIAL_NAME"}},
      {&A::application_credential_secret,
       {"application_credential_secret"},
       true,
       {"OS_APPLICATION_CREDENTIAL_SECRET"}},
      {&A::region, {"region_name"}, false, {"OS_REGION_NAME"}},
      {&A::interface, {"interface"}, false, {"OS_INTERFACE"}},
  };
  return fields;
}

// The one credential filler: `lookup` reads a field from clouds.yaml or from the
// environment; an empty answer keeps the default.
void fill_openstack_auth(OpenStackAuth& a, const std::function<std::string(const AuthField&)>& lookup) {
  for (const auto& f : auth_fields()) {
    if (auto v = lookup(f); !v.empty()) {
      a.*(f.member) = std::move(v);
    }
  }
}

} // namespace

Expected<OpenStackAuth> load_openstack_auth(const Env& env) {
  OpenStackAuth a;
  const std::string cloud = get(env, "OS_CLOUD");
  if (!cloud.empty()) {
    std::vector<fs::path> dirs = {fs::current_path(), home(env) / ".config/openstack", "/etc/openstack"};
    fs::path clouds_file;
    std::error_code ec;
    if (auto f = get(env, "OS_CLIENT_CONFIG_FILE"); !f.empty()) {
      clouds_file = f;
    } else {
      for (const auto& d : dirs) {
        if (fs::is_regular_file(d / "clouds.yaml", ec)) {
          clouds_file = d / "clouds.yaml";
          break;
        }
      }
    }
    if (clouds_file.empty()) {
      return fail("OS_CLOUD=" + cloud, "no clouds.yaml found (looked in ./, ~/.config/openstack/, /etc/openstack/)",
                  ExitCode::bad_input);
    }
    YAML::Node root;
    try {
      BI_TRY_ASSIGN(std::string text, read_file(clouds_file, 1 << 20));
      root = YAML::Load(text);
      fs::path secure = get(env, "OS_CLIENT_SECURE_FILE");
      if (secure.empty()) {
        secure = clouds_file.parent_path() / "secure.yaml";
      }
      if (fs::is_regular_file(secure, ec)) {
        BI_TRY_ASSIGN(std::string stext, read_file(secure, 1 << 20));
        merge_yaml(root, YAML::Load(stext));
      }
    } catch (const std::exception& e) {
      return fail(clouds_file.string(), std::string("invalid YAML: ") + e.what(), ExitCode::bad_input);
    }
    const YAML::Node c = root["clouds"] ? root["clouds"][cloud] : YAML::Node();
    if (!c || !c.IsMap()) {
      return fail(clouds_file.string(), fmt::format("no cloud '{}' under 'clouds:'", cloud), ExitCode::bad_input);
    }
    const YAML::Node auth = c["auth"];
    a.source = fmt::format("clouds.yaml cloud '{}' ({})", cloud, clouds_file.string());
    fill_openstack_auth(a, [&](const AuthField& f) {
      for (const char* key : f.yaml) {
        if (auto v = yaml_str(f.under_auth ? auth : c, key); !v.empty()) {
          return v;
        }
      }
      return std::string();
    });
    // clouds.yaml's shorthand for both domains.
    if (auto d = yaml_str(auth, "domain_name"); !d.empty()) {
      a.user_domain_name = a.user_domain_name.empty() ? d : a.user_domain_name;
      a.project_domain_name = a.project_domain_name.empty() ? d : a.project_domain_name;
    }
  } else {
    a.source = "the environment (OS_*)";
    fill_openstack_auth(a, [&](const AuthField& f) {
      for (const char* key : f.env) {
        if (auto v = get(env, key); !v.empty()) {
          return v;
        }
      }
      return std::string();
    });
  }
  // Same defaults and spellings as keystoneauth.
  if (a.auth_type.empty()) {
    a.auth_type = (!a.application_credential_secret.empty()) ? "v3applicationcredential" : "password";
  }
  if (a.auth_type == "v3password") {
    a.auth_type = "password";
  }
  if (a.auth_type == "applicationcredential" || a.auth_type == "application_credential") {
    a.auth_type = "v3applicationcredential";
  }
  if (a.interface == "publicURL") {
    a.interface = "public";
  } else if (a.interface == "internalURL") {
    a.interface = "internal";
  } else if (a.interface == "adminURL") {
    a.interface = "admin";
  }
  if (a.auth_url.empty()) {
    return fail("OpenStack credentials",
                "no auth URL: set OS_CLOUD (clouds.yaml) or OS_AUTH_URL and the other OS_* variables",
                ExitCode::bad_input);
  }
  if (a.auth_type == "password") {
    if ((a.username.empty() && a.user_id.empty()) || a.password.empty()) {
      return fail("OpenStack credentials", "password auth needs a username (OS_USERNAME) and a password (OS_PASSWORD)",
                  ExitCode::bad_input);
    }
    if (a.user_domain_name.empty() && a.user_domain_id.empty() && a.user_id.empty()) {
      a.user_domain_id = "default";
    }
    if (a.project_domain_name.empty() && a.project_domain_id.empty() && a.project_id.empty()) {
      a.project_domain_id = "default";
    }
  } else if (a.auth_type == "v3applicationcredential") {
    if (a.application_credential_secret.empty() ||
        (a.application_credential_id.empty() && a.application_credential_name.empty())) {
      return fail("OpenStack credentials",
                  "application-credential auth needs OS_APPLICATION_CREDENTIAL_ID (or _NAME with a user) and "
                  "OS_APPLICATION_CREDENTIAL_SECRET",
                  ExitCode::bad_input);
    }
  } else {
    return fail("OpenStack credentials",
                fmt::format("unsupported auth type '{}' (password or v3applicationcredential)", a.auth_type),
                ExitCode::bad_input);
  }
  return a;
}

} // namespace bi::net
