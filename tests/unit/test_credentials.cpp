// Credentials: AWS env and shared files with profiles and session tokens; OpenStack OS_*
// variables and clouds.yaml (password and application credential). No secret in describe().
#include <catch2/catch.hpp>

#include "net/credentials.hpp"
#include "test_support.hpp"

using namespace bi;
using namespace bi::net;

TEST_CASE("AWS credentials from the environment, with a session token") {
  test::Scratch s;
  Env env{{"HOME", s.path().string()},
          {"AWS_ACCESS_KEY_ID", "AKIAENV"},
          {"AWS_SECRET_ACCESS_KEY", "envsecret"},
          {"AWS_SESSION_TOKEN", "envtoken"},
          {"AWS_REGION", "ap-southeast-1"}};
  auto c = load_aws_config(env);
  REQUIRE(c);
  CHECK(c->credentials.access_key_id == "AKIAENV");
  CHECK(c->credentials.secret_access_key == "envsecret");
  CHECK(c->credentials.session_token == "envtoken");
  CHECK(c->region == "ap-southeast-1");
  CHECK(c->describe().find("envsecret") == std::string::npos);
  CHECK(c->describe().find("envtoken") == std::string::npos);
  c->resolve_endpoints("ap-southeast-1");
  CHECK(c->ec2_endpoint == "https://ec2.ap-southeast-1.amazonaws.com");
  CHECK(c->ebs_endpoint == "https://ebs.ap-southeast-1.amazonaws.com");
}

TEST_CASE("AWS profiles from ~/.aws/credentials and ~/.aws/config") {
  test::Scratch s;
  s.write(".aws/credentials",
          "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = defsecret\n\n"
          "[dev]\naws_access_key_id=AKIADEV\naws_secret_access_key=devsecret\naws_session_token = devtoken\n");
  s.write(".aws/config", "[default]\nregion = us-east-1\n[profile dev]\nregion = eu-west-1\n");
  auto d = load_aws_config({{"HOME", s.path().string()}});
  REQUIRE(d);
  CHECK(d->credentials.access_key_id == "AKIADEF");
  CHECK(d->credentials.session_token.empty());
  CHECK(d->region == "us-east-1");
  auto dev = load_aws_config(
      {{"HOME", s.path().string()}, {"AWS_PROFILE", "dev"}, {"AWS_ENDPOINT_URL", "http://127.0.0.1:9999/"}});
  REQUIRE(dev);
  CHECK(dev->credentials.access_key_id == "AKIADEV");
  CHECK(dev->credentials.session_token == "devtoken");
  CHECK(dev->region == "eu-west-1");
  dev->resolve_endpoints("eu-west-1");
  CHECK(dev->ec2_endpoint == "http://127.0.0.1:9999");
  CHECK(dev->ebs_endpoint == "http://127.0.0.1:9999");
  // Keys only in the config file count too; a missing profile is a clear error.
  s.write(".aws/config2", "[profile cfg]\naws_access_key_id = AKIACFG\naws_secret_access_key = cfgsecret\n");
  auto cfg = load_aws_config(
      {{"HOME", s.path().string()}, {"AWS_PROFILE", "cfg"}, {"AWS_CONFIG_FILE", (s.path() / ".aws/config2").string()}});
  REQUIRE(cfg);
  CHECK(cfg->credentials.access_key_id == "AKIACFG");
  auto none = load_aws_config({{"HOME", s.path().string()}, {"AWS_PROFILE", "nope"}});
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ExitCode::bad_input);
  CHECK(none.error().to_string().find("profile 'nope'") != std::string::npos);
}

TEST_CASE("OpenStack password auth from OS_* variables") {
  test::Scratch s;
  Env env{{"HOME", s.path().string()},
          {"OS_AUTH_URL", "http://127.0.0.1:5000/v3"},
          {"OS_USERNAME", "admin"},
          {"OS_PASSWORD", "pw-secret"},
          {"OS_PROJECT_NAME", "admin"},
          {"OS_USER_DOMAIN_NAME", "Default"},
          {"OS_PROJECT_DOMAIN_NAME", "Default"},
          {"OS_REGION_NAME", "RegionOne"},
          {"OS_INTERFACE", "internalURL"}};
  auto a = load_openstack_auth(env);
  REQUIRE(a);
  CHECK(a->auth_type == "password");
  CHECK(a->password == "pw-secret");
  CHECK(a->region == "RegionOne");
  CHECK(a->interface == "internal");
  CHECK(a->describe().find("pw-secret") == std::string::npos);
  env.erase("OS_PASSWORD");
  auto missing = load_openstack_auth(env);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ExitCode::bad_input);
}

TEST_CASE("OpenStack clouds.yaml with secure.yaml and application credentials") {
  test::Scratch s;
  s.write(".config/openstack/clouds.yaml", "clouds:\n"
                                           "  lab:\n"
                                           "    auth:\n"
                                           "      auth_url: http://127.0.0.1:15000\n"
                                           "      username: demo\n"
                                           "      project_name: demo\n"
                                           "      user_domain_name: Default\n"
                                           "      project_domain_name: Default\n"
                                           "    region_name: RegionOne\n"
                                           "  appcred:\n"
                                           "    auth_type: v3applicationcredential\n"
                                           "    auth:\n"
                                           "      auth_url: http://127.0.0.1:15000/v3\n"
                                           "      application_credential_id: 0123abcd\n"
                                           "      application_credential_secret: ac-secret\n"
                                           "    region_name: RegionTwo\n"
                                           "    interface: internal\n");
  s.write(".config/openstack/secure.yaml", "clouds:\n  lab:\n    auth:\n      password: from-secure\n");
  auto lab = load_openstack_auth({{"HOME", s.path().string()}, {"OS_CLOUD", "lab"}});
  REQUIRE(lab);
  CHECK(lab->auth_type == "password");
  CHECK(lab->username == "demo");
  CHECK(lab->password == "from-secure");
  CHECK(lab->region == "RegionOne");
  auto ac = load_openstack_auth({{"HOME", s.path().string()}, {"OS_CLOUD", "appcred"}});
  REQUIRE(ac);
  CHECK(ac->auth_type == "v3applicationcredential");
  CHECK(ac->application_credential_id == "0123abcd");
  CHECK(ac->application_credential_secret == "ac-secret");
  CHECK(ac->interface == "internal");
  CHECK(ac->describe().find("ac-secret") == std::string::npos);
  auto unknown = load_openstack_auth({{"HOME", s.path().string()}, {"OS_CLOUD", "nope"}});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().to_string().find("no cloud 'nope'") != std::string::npos);
}
