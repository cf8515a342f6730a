#include "payload.hpp"

#include <catch2/catch.hpp>

#include <string>

using cartridge_agent::is_valid_payload_key;
using cartridge_agent::parse_payload;
using cartridge_agent::ParsedPayload;
using cartridge_agent::payload_value;

namespace {

// products/cartridge-agent/modules/distribution/src/main/extensions/payload/launch-params
// from apache/stratos, as quoted in docs (stratos.md section 2), verbatim.
constexpr std::string_view k_stratos_sample =
    R"(APPLICATION_ID=single-cartridge-app,GROUP_NAME=null,SERVICE_NAME=tomcat,HOST_NAME=tomcat1.tomcat.stratos.org,MULTITENANT=false,TENANT_ID=-1234,TENANT_RANGE=*,CARTRIDGE_ALIAS=tomcat1,CLUSTER_ID=tomcat1.tomcat.domain,CARTRIDGE_KEY=U4OYk2Pnu09TK34x,DEPLOYMENT=default,REPO_URL=https://github.com/imesh/stratos-php-applications.git,PORTS=22,PROVIDER=apache,PUPPET_IP=192.168.30.90,PUPPET_HOSTNAME=puppet.stratostest.org,PUPPET_DNS_AVAILABLE=null,PUPPET_ENV=false,,,DEPENDENCY_CLUSTER_IDS=,EXPORT_METADATA_KEYS=,IMPORT_METADATA_KEYS=,TOKEN=eyJ…,MEMBER_ID=tomcat1.tomcat.domain54e2ebf4-ded5-4892-ada3-61a14a6c59ab,INSTANCE_ID=null,CLUSTER_INSTANCE_ID=single-cartridge-app-1,LB_CLUSTER_ID=null,NETWORK_PARTITION_ID=network-partition-1,PARTITION_ID=partition-1,INTERNAL=false,PRIMARY=false,MIN_COUNT=1)";

bool has_key(const ParsedPayload& parsed, const std::string& key) { return parsed.values.count(key) == 1; }

} // namespace

TEST_CASE("the Stratos sample payload parses completely", "[payload]") {
  const auto parsed = parse_payload(k_stratos_sample);

  CHECK(parsed.warnings.empty());
  CHECK(parsed.values.at("APPLICATION_ID") == "single-cartridge-app");
  CHECK(parsed.values.at("SERVICE_NAME") == "tomcat");
  CHECK(parsed.values.at("HOST_NAME") == "tomcat1.tomcat.stratos.org");
  CHECK(parsed.values.at("TENANT_ID") == "-1234");
  CHECK(parsed.values.at("TENANT_RANGE") == "*");
  CHECK(parsed.values.at("CLUSTER_ID") == "tomcat1.tomcat.domain");
  CHECK(parsed.values.at("CARTRIDGE_KEY") == "U4OYk2Pnu09TK34x");
  CHECK(parsed.values.at("DEPLOYMENT") == "default");
  CHECK(parsed.values.at("REPO_URL") == "https://github.com/imesh/stratos-php-applications.git");
  CHECK(parsed.values.at("PORTS") == "22");
  CHECK(parsed.values.at("PUPPET_IP") == "192.168.30.90");
  CHECK(parsed.values.at("PUPPET_HOSTNAME") == "puppet.stratostest.org");
  // The swapped Stratos fields arrive as written; interpreting them is not the parser's job.
  CHECK(parsed.values.at("PUPPET_ENV") == "false");
  CHECK(parsed.values.at("TOKEN") == "eyJ\xE2\x80\xA6");
  CHECK(parsed.values.at("MEMBER_ID") == "tomcat1.tomcat.domain54e2ebf4-ded5-4892-ada3-61a14a6c59ab");
  CHECK(parsed.values.at("CLUSTER_INSTANCE_ID") == "single-cartridge-app-1");
  CHECK(parsed.values.at("NETWORK_PARTITION_ID") == "network-partition-1");
  CHECK(parsed.values.at("PARTITION_ID") == "partition-1");
  CHECK(parsed.values.at("INTERNAL") == "false");
  CHECK(parsed.values.at("PRIMARY") == "false");
  CHECK(parsed.values.at("MIN_COUNT") == "1");

  // null and empty values are absent.
  CHECK_FALSE(has_key(parsed, "GROUP_NAME"));
  CHECK_FALSE(has_key(parsed, "PUPPET_DNS_AVAILABLE"));
  CHECK_FALSE(has_key(parsed, "INSTANCE_ID"));
  CHECK_FALSE(has_key(parsed, "LB_CLUSTER_ID"));
  CHECK_FALSE(has_key(parsed, "DEPENDENCY_CLUSTER_IDS"));
  CHECK_FALSE(has_key(parsed, "EXPORT_METADATA_KEYS"));
  CHECK_FALSE(has_key(parsed, "IMPORT_METADATA_KEYS"));

  // 33 fields: 2 empty, 4 null values, 3 empty values.
  CHECK(parsed.values.size() == 24);
}

TEST_CASE("null and empty values are absent, and hide earlier values", "[payload]") {
  const auto parsed = parse_payload("A=null,B=,C= null ,D=NULL,E=x,E=null");
  CHECK_FALSE(has_key(parsed, "A"));
  CHECK_FALSE(has_key(parsed, "B"));
  CHECK_FALSE(has_key(parsed, "C"));
  // Only the exact literal is special.
  CHECK(parsed.values.at("D") == "NULL");
  CHECK_FALSE(has_key(parsed, "E"));
  REQUIRE(parsed.warnings.size() == 1);
  CHECK(parsed.warnings[0] == "line 1, field 6: duplicate key 'E'; the later value wins");
  CHECK_FALSE(payload_value(parsed.values, "A").has_value());
  CHECK(payload_value(parsed.values, "D") == std::optional<std::string>("NULL"));
}

TEST_CASE("empty fields are skipped silently", "[payload]") {
  const auto parsed = parse_payload(",,A=1,,,B=2,, ,\t,");
  CHECK(parsed.warnings.empty());
  CHECK(parsed.values == cartridge_agent::PayloadMap{{"A", "1"}, {"B", "2"}});
}

TEST_CASE("values are split at the first '='", "[payload]") {
  const auto parsed = parse_payload("TOKEN=abc==,URL=http://x/?a=b&c=d,EQ==,KEY=a=b=c");
  CHECK(parsed.warnings.empty());
  CHECK(parsed.values.at("TOKEN") == "abc==");
  CHECK(parsed.values.at("URL") == "http://x/?a=b&c=d");
  CHECK(parsed.values.at("EQ") == "=");
  CHECK(parsed.values.at("KEY") == "a=b=c");
}

TEST_CASE("one pair per line, with CRLF and surrounding whitespace", "[payload]") {
  const auto parsed = parse_payload("SERVICE_NAME=php\r\n  CLUSTER_ID = app.php.domain \r\nPORTS=80|443\r\n"
                                    "\r\nGROUP_NAME=null\r\nMB_IP=10.0.2.100\r\n");
  CHECK(parsed.warnings.empty());
  CHECK(parsed.values ==
        cartridge_agent::PayloadMap{
            {"SERVICE_NAME", "php"}, {"CLUSTER_ID", "app.php.domain"}, {"PORTS", "80|443"}, {"MB_IP", "10.0.2.100"}});
}

TEST_CASE("the normalised form of the Stratos sample equals the original", "[payload]") {
  std::string per_line(k_stratos_sample);
  for (auto& c : per_line) {
    if (c == ',') {
      c = '\n';
    }
  }
  const auto original = parse_payload(k_stratos_sample);
  const auto normalised = parse_payload(per_line);
  CHECK(normalised.values == original.values);
  CHECK(normalised.warnings.empty());
}

TEST_CASE("malformed fields are skipped with a warning naming line and field", "[payload]") {
  const auto parsed = parse_payload("GOOD=1,noequals,=value,1KEY=x,KE Y=x,K$=x,A=1,secret-fragment,B.c-d_e=2");
  CHECK(parsed.values == cartridge_agent::PayloadMap{{"GOOD", "1"}, {"A", "1"}});
  REQUIRE(parsed.warnings.size() == 7);
  CHECK(parsed.warnings[0] == "line 1, field 2: no '=' in a 8-character field; skipped");
  CHECK(parsed.warnings[1] == "line 1, field 3: empty key; skipped");
  CHECK(parsed.warnings[2] == "line 1, field 4: invalid key '1KEY'; skipped");
  CHECK(parsed.warnings[3] == "line 1, field 5: invalid key 'KE Y'; skipped");
  CHECK(parsed.warnings[4] == "line 1, field 6: invalid key 'K$'; skipped");
  // The text of a field without '=' is never echoed: it may be part of a secret.
  CHECK(parsed.warnings[5] == "line 1, field 8: no '=' in a 15-character field; skipped");
  CHECK(parsed.warnings[6] == "line 1, field 9: invalid key 'B.c-d_e'; skipped");
}

TEST_CASE("one field per line: a value keeps its commas, a bad line is named", "[payload]") {
  const auto parsed = parse_payload("DEPENDENCY_ALIASES=a,b\nnoequals\nPORTS=80|443");
  CHECK(parsed.values == cartridge_agent::PayloadMap{{"DEPENDENCY_ALIASES", "a,b"}, {"PORTS", "80|443"}});
  REQUIRE(parsed.warnings.size() == 1);
  CHECK(parsed.warnings[0] == "line 2, field 1: no '=' in a 8-character field; skipped");
}

TEST_CASE("invalid keys are shown printable and truncated", "[payload]") {
  const auto parsed = parse_payload(std::string(100, '9') + "=x,\x01\x02=y");
  REQUIRE(parsed.warnings.size() == 2);
  CHECK(parsed.warnings[0] == "line 1, field 1: invalid key '" + std::string(64, '9') + "...'; skipped");
  CHECK(parsed.warnings[1] == "line 1, field 2: invalid key '" + std::string(2, '?') + "'; skipped");
}

TEST_CASE("key syntax", "[payload]") {
  CHECK(is_valid_payload_key("A"));
  CHECK(is_valid_payload_key("_x"));
  CHECK(is_valid_payload_key("a_b_c_9"));
  // Stratos turns a cartridge property `payload_parameter.X` into the payload key X: the
  // payload itself has no dotted keys (tests/data/payload/README.md, rule 4).
  CHECK_FALSE(is_valid_payload_key("payload_parameter.MB_IP"));
  CHECK_FALSE(is_valid_payload_key("a-b"));
  CHECK_FALSE(is_valid_payload_key(""));
  CHECK_FALSE(is_valid_payload_key("9a"));
  CHECK_FALSE(is_valid_payload_key(".a"));
  CHECK_FALSE(is_valid_payload_key("-a"));
  CHECK_FALSE(is_valid_payload_key("a b"));
  CHECK_FALSE(is_valid_payload_key("a/b"));
}

TEST_CASE("empty and blank input give an empty map", "[payload]") {
  for (const std::string text : {"", "\n", "\r\n\r\n", " , ,, ", "\xEF\xBB\xBF"}) {
    const auto parsed = parse_payload(text);
    CHECK(parsed.values.empty());
    CHECK(parsed.warnings.empty());
  }
}

TEST_CASE("a byte-order mark does not corrupt the first key", "[payload]") {
  const auto parsed = parse_payload("\xEF\xBB\xBF"
                                    "SERVICE_NAME=php");
  CHECK(parsed.warnings.empty());
  CHECK(parsed.values.at("SERVICE_NAME") == "php");
}

TEST_CASE("huge input is handled, and warnings are capped", "[payload]") {
  SECTION("many fields and a large value") {
    std::string text;
    for (int i = 0; i < 100'000; ++i) {
      text += "KEY_" + std::to_string(i) + "=value-" + std::to_string(i) + ",,";
    }
    text += "BIG=" + std::string(std::size_t{4} * 1024 * 1024, 'v');
    const auto parsed = parse_payload(text);
    CHECK(parsed.warnings.empty());
    CHECK(parsed.values.size() == 100'001);
    CHECK(parsed.values.at("KEY_99999") == "value-99999");
    CHECK(parsed.values.at("BIG").size() == std::size_t{4} * 1024 * 1024);
  }
  SECTION("megabytes of garbage") {
    std::string text;
    for (int i = 0; i < 200'000; ++i) {
      text += "garbage,";
    }
    text += "LAST=ok";
    const auto parsed = parse_payload(text);
    CHECK(parsed.values == cartridge_agent::PayloadMap{{"LAST", "ok"}});
    REQUIRE(parsed.warnings.size() == cartridge_agent::k_max_payload_warnings + 1);
    CHECK(parsed.warnings.back() ==
          std::to_string(200'000 - cartridge_agent::k_max_payload_warnings) + " more malformed fields skipped");
  }
  SECTION("one enormous field without '='") {
    const auto parsed = parse_payload(std::string(std::size_t{8} * 1024 * 1024, 'x'));
    CHECK(parsed.values.empty());
    REQUIRE(parsed.warnings.size() == 1);
    CHECK(parsed.warnings[0] == "line 1, field 1: no '=' in a 8388608-character field; skipped");
  }
}
