// The remote layer cache: --cache-url parsing, object names, S3 request shape, and bounded
// failure against servers that refuse or never answer (loopback only).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "net/object_store.hpp"
#include "net/sigv4.hpp"
#include "pipeline/remote_cache.hpp"
#include "test_support.hpp"

using namespace bi;
using namespace bi::net;

namespace {

std::string url_error(const std::string& url) {
  auto r = parse_cache_url(url);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ExitCode::bad_input);
  return r.error().to_string();
}

// A loopback socket that accepts connections (the kernel completes the handshake) but
// never answers: a remote that hangs.
class SilentServer {
public:
  SilentServer() {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_fd, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(m_fd); }
  int port() const { return m_port; }

private:
  int m_fd = -1;
  int m_port = 0;
};

int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

} // namespace

TEST_CASE("--cache-url: s3 and http URLs, prefixes normalized") {
  auto s3 = parse_cache_url("s3://ci-layers/team/build-image/");
  REQUIRE(s3);
  CHECK(s3->scheme == CacheUrl::Scheme::s3);
  CHECK(s3->bucket == "ci-layers");
  CHECK(s3->prefix == "team/build-image");
  auto bare = parse_cache_url("s3://my.bucket");
  REQUIRE(bare);
  CHECK(bare->prefix.empty());
  auto http = parse_cache_url("http://127.0.0.1:8080//cache//x/");
  REQUIRE(http);
  CHECK(http->scheme == CacheUrl::Scheme::http);
  CHECK(http->origin == "http://127.0.0.1:8080");
  CHECK(http->prefix == "cache/x");
  auto https = parse_cache_url("https://cache.example.org");
  REQUIRE(https);
  CHECK(https->origin == "https://cache.example.org");
  CHECK(https->prefix.empty());
}

TEST_CASE("--cache-url: bad URLs are exit-2 errors naming the option") {
  CHECK(url_error("ftp://host/x") ==
        "--cache-url: 'ftp://host/x': unsupported scheme 'ftp' (expected s3, http or https)");
  CHECK(url_error("/tmp/cache") ==
        "--cache-url: '/tmp/cache': expected s3://BUCKET/PREFIX or http(s)://HOST[:PORT]/PREFIX");
  CHECK(url_error("s3:///prefix") == "--cache-url: 's3:///prefix': no bucket name");
  CHECK(url_error("s3://Bad_Bucket/x") ==
        "--cache-url: 's3://Bad_Bucket/x': invalid bucket name 'Bad_Bucket' (3-63 characters: a-z 0-9 . -)");
  CHECK(url_error("s3://bucket/a/../b") == "--cache-url: 's3://bucket/a/../b': the prefix may only contain A-Z a-z 0-9 "
                                           "- _ . ~ / (and no '.' or '..' segment)");
  CHECK(url_error("http://host/x?sig=1") == "--cache-url: 'http://host/x?sig=1': a query or fragment is not allowed");
  CHECK(url_error("http://host:99999/x") == "--cache-url: 'http://host:99999/x': invalid port '99999'");
  CHECK(url_error("http:///x") == "--cache-url: 'http:///x': no host name");
  // Credentials in the URL would be on the command line: refused, and not repeated.
  const std::string e = url_error("https://ci:hunter2@cache.example.org/x");
  CHECK(e.find("hunter2") == std::string::npos);
  CHECK(e.find("credentials in the URL are refused") != std::string::npos);
}

TEST_CASE("remote object names: index beside a content-addressed archive") {
  const std::string key(64, 'a');
  const std::string sha(64, 'b');
  CHECK(RemoteCache::index_name("base", key) == "layers/base-" + key + ".json");
  CHECK(RemoteCache::archive_name("base", key, sha) == "layers/base-" + key + "/" + sha + ".tar.zst");
  auto store = ObjectStore::open(*parse_cache_url("http://127.0.0.1:9/p/q"), {});
  REQUIRE(store);
  CHECK(store->describe("layers/x.json") == "http://127.0.0.1:9/p/q/layers/x.json");
  Env env = {{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "secret"}, {"HOME", "/nonexistent"}};
  auto s3 = ObjectStore::open(*parse_cache_url("s3://bucket/pre"), env);
  REQUIRE(s3);
  CHECK(s3->describe("layers/x.json") == "s3://bucket/pre/layers/x.json");
}

TEST_CASE("s3 cache without credentials is a clear exit-2 error") {
  auto s3 = ObjectStore::open(*parse_cache_url("s3://bucket/pre"), Env{{"HOME", "/nonexistent"}});
  REQUIRE_FALSE(s3);
  CHECK(s3.error().code == ExitCode::bad_input);
  CHECK(s3.error().object == "s3://bucket/pre");
  CHECK(s3.error().detail.find("AWS credentials: none found") == 0);
}

TEST_CASE("s3 endpoints: AWS virtual-hosted by default, path-style for custom endpoints and dotted buckets") {
  auto aws = s3_target("ci-layers", "eu-west-1", {});
  CHECK(aws.endpoint == "https://ci-layers.s3.eu-west-1.amazonaws.com");
  CHECK_FALSE(aws.path_style);
  CHECK(s3_object_url(aws, "team/layers/base-1.json") ==
        "https://ci-layers.s3.eu-west-1.amazonaws.com/team/layers/base-1.json");
  auto dotted = s3_target("my.layers", "", {});
  CHECK(dotted.endpoint == "https://s3.us-east-1.amazonaws.com");
  CHECK(s3_object_url(dotted, "k") == "https://s3.us-east-1.amazonaws.com/my.layers/k");
  auto minio = s3_target("ci", "us-east-1", {{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000/"}});
  CHECK(minio.endpoint == "http://127.0.0.1:9000");
  CHECK(s3_object_url(minio, "a b/c") == "http://127.0.0.1:9000/ci/a%20b/c");
  auto s3_only =
      s3_target("ci", "us-east-1", {{"AWS_ENDPOINT_URL", "http://other"}, {"AWS_ENDPOINT_URL_S3", "http://s3"}});
  CHECK(s3_only.endpoint == "http://s3");
}

TEST_CASE("s3 requests: signed for service s3 with the payload hash in x-amz-content-sha256") {
  AwsCredentials creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "test"};
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1369353600)); // 20130524T000000Z
  const std::string payload(64, 'c');
  auto r = s3_request(s3_target("examplebucket", "us-east-1", {}), "PUT", "team/layers/base-1.json", creds, payload, t);
  REQUIRE(r);
  CHECK(r->method == "PUT");
  CHECK(r->url == "https://examplebucket.s3.us-east-1.amazonaws.com/team/layers/base-1.json");
  auto header = [&](const std::string& name) {
    for (const auto& [k, v] : r->headers) {
      if (k == name) {
        return v;
      }
    }
    return std::string("(missing)");
  };
  CHECK(header("Host") == "examplebucket.s3.us-east-1.amazonaws.com");
  CHECK(header("X-Amz-Date") == "20130524T000000Z");
  CHECK(header("x-amz-content-sha256") == payload);
  const std::string auth = header("Authorization");
  CHECK(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                   "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=",
                   0) == 0);
  CHECK(auth.size() == auth.find("Signature=") + 10 + 64);
  for (const auto& [k, v] : r->headers) {
    CHECK(v.find(creds.secret_access_key) == std::string::npos);
  }

  // The same parameters on AWS's documented S3 example (GET Object with a Range header,
  // "Signature Calculations for the Authorization Header", s3 API reference).
  Headers headers;
  SigV4Input in;
  in.method = "GET";
  in.host = "examplebucket.s3.amazonaws.com";
  in.path = "/test.txt";
  in.headers = {{"Range", "bytes=0-9"}};
  SigV4Params params;
  params.region = "us-east-1";
  params.service = "s3";
  params.time = t;
  params.normalize_path = false;
  params.add_content_sha256 = true;
  params.payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  auto signed_example = sigv4_sign(in, headers, creds, params);
  CHECK(signed_example.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("a remote that never answers costs the bounded timeout once, then is skipped") {
  SilentServer silent;
  ObjectStoreLimits limits;
  limits.connect_timeout = std::chrono::seconds(1);
  limits.request_timeout = std::chrono::seconds(1);
  limits.stall_timeout = std::chrono::seconds(1);
  limits.attempts = 1;
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/cache";
  auto store = ObjectStore::open(*parse_cache_url(url), {}, limits);
  REQUIRE(store);
  const auto start = std::chrono::steady_clock::now();
  auto got = store->get("layers/base-x.json");
  REQUIRE_FALSE(got);
  CHECK(got.error().to_string().find("GET " + url + "/layers/base-x.json") == 0);
  CHECK(got.error().detail.find("timed out") != std::string::npos);

  test::Scratch scratch;
  auto remote = RemoteCache::open(url, {}, limits);
  REQUIRE(remote);
  CHECK((*remote)->fetch("base", std::string(64, 'a'), scratch.path() / "e", scratch.path()) ==
        RemoteCache::Fetch::unavailable);
  CHECK_FALSE((*remote)->available());
  // Skipped from now on: no second timeout.
  const auto before_second = std::chrono::steady_clock::now();
  CHECK((*remote)->fetch("system", std::string(64, 'b'), scratch.path() / "e", scratch.path()) ==
        RemoteCache::Fetch::unavailable);
  CHECK(std::chrono::steady_clock::now() - before_second < std::chrono::milliseconds(100));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(6));
}

TEST_CASE("a remote that refuses connections is unavailable at once") {
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/cache";
  auto remote = RemoteCache::open(url, {});
  REQUIRE(remote);
  test::Scratch scratch;
  const auto start = std::chrono::steady_clock::now();
  CHECK((*remote)->publish("base", std::string(64, 'a'), scratch.path(), scratch.path(), true) ==
        RemoteCache::Publish::unavailable);
  CHECK_FALSE((*remote)->available());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}
