#pragma once
// Cloud credentials, read the way the standard tools read them:
//  AWS: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the shared
//       files (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, AWS_CONFIG_FILE or
//       ~/.aws/config) for AWS_PROFILE (default "default"); region from AWS_REGION,
//       AWS_DEFAULT_REGION or the profile; endpoints from AWS_ENDPOINT_URL_EC2 /
//       AWS_ENDPOINT_URL_EBS / AWS_ENDPOINT_URL.
//  OpenStack: OS_CLOUD + clouds.yaml (and secure.yaml), else OS_* variables; password
//       or application-credential auth.
// Secrets are never logged and never put on a command line; describe() shows the rest.

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "net/sigv4.hpp"
#include "util/expected.hpp"

namespace bi::net {

// The environment as a map, so tests can pass their own.
using Env = std::map<std::string, std::string>;
Env process_env();

struct AwsConfig {
  AwsCredentials credentials;
  std::string profile;
  std::string region;       // may be empty: then the caller's --region or the YAML's
  std::string ec2_endpoint; // e.g. https://ec2.ap-southeast-1.amazonaws.com (filled by endpoints())
  std::string ebs_endpoint;
  std::string endpoint_override_ec2; // from AWS_ENDPOINT_URL(_EC2)
  std::string endpoint_override_ebs; // from AWS_ENDPOINT_URL(_EBS)
  std::string describe() const;      // no secrets
  // Fills ec2_endpoint/ebs_endpoint for `region`.
  void resolve_endpoints(const std::string& region_name);
};

Expected<AwsConfig> load_aws_config(const Env& env);

struct OpenStackAuth {
  std::string auth_type = "password"; // password | v3applicationcredential
  std::string auth_url;
  std::string username, user_id, user_domain_name, user_domain_id;
  std::string project_name, project_id, project_domain_name, project_domain_id;
  std::string password; // secret
  std::string application_credential_id;
  std::string application_credential_name;
  std::string application_credential_secret; // secret
  std::string region;
  std::string interface = "public";
  std::string source;           // "environment (OS_*)" or "clouds.yaml cloud 'x' (path)"
  std::string describe() const; // no secrets
};

Expected<OpenStackAuth> load_openstack_auth(const Env& env);

// Minimal INI reader for the AWS shared files: section -> key -> value.
std::map<std::string, std::map<std::string, std::string>> parse_ini(const std::string& text);

} // namespace bi::net
