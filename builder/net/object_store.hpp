#pragma once
// A flat object store for the shared layer cache: S3-compatible object storage
// (`s3://bucket/prefix`, every request signed with SigV4) or a plain HTTP server
// (`http[s]://host[:port]/prefix`, GET/PUT/HEAD). Objects are named relative to the
// prefix. Requests have bounded timeouts and few attempts: a cache that is down must
// cost seconds, not minutes. Errors name the operation and the object; credentials only
// ever travel in headers (never in URLs, errors or logs).

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "net/credentials.hpp"
#include "net/http.hpp"
#include "util/expected.hpp"

namespace bi::net {

namespace fs = std::filesystem;

struct CacheUrl {
  enum class Scheme { s3, http };
  Scheme scheme = Scheme::s3;
  std::string text;   // as given (no credentials: they are refused)
  std::string bucket; // s3
  std::string origin; // http: scheme://host[:port]
  std::string prefix; // without leading or trailing '/', may be empty
};

// Parses `s3://bucket[/prefix]` or `http[s]://host[:port][/prefix]`. Bad input is an error
// on `--cache-url` with exit code 2.
Expected<CacheUrl> parse_cache_url(std::string_view url);

struct ObjectStoreLimits {
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds request_timeout{30}; // small objects (markers, HEAD)
  std::chrono::seconds stall_timeout{30};   // large transfers: abort below 1 byte/s for this long
  int attempts = 2;                         // per request, for 429/5xx/connection errors
};

// Where S3 requests go. Endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (path-style
// addressing, for MinIO, Ceph RGW, s3rver, ...), else AWS's regional endpoint with
// virtual-hosted addressing (path-style for bucket names with dots).
struct S3Target {
  std::string endpoint; // scheme://host[:port], no trailing '/'
  bool path_style = true;
  std::string region;
  std::string bucket;
};
S3Target s3_target(const std::string& bucket, const std::string& region, const Env& env);

// The URL of object `key` (the full key, prefix included).
std::string s3_object_url(const S3Target& target, const std::string& key);

// A signed S3 request for `key`: x-amz-content-sha256 set to `payload_hash` (the hex
// SHA-256 of the body; for GET/HEAD the hash of the empty body). Exposed for tests.
Expected<HttpRequest> s3_request(const S3Target& target, const std::string& method, const std::string& key,
                                 const AwsCredentials& credentials, const std::string& payload_hash,
                                 std::chrono::system_clock::time_point time = std::chrono::system_clock::now());

class ObjectStore {
public:
  // For s3:// URLs, credentials and region come from the environment or the AWS profile
  // (load_aws_config); missing credentials are an error (exit 2).
  static Expected<ObjectStore> open(const CacheUrl& url, const Env& env, const ObjectStoreLimits& limits = {});

  // "s3://bucket/prefix/name" or "http://host/prefix/name", for messages.
  std::string describe(const std::string& name) const;
  const CacheUrl& url() const { return m_url; }

  // A small object (at most 1 MiB), or nullopt when it does not exist.
  Expected<std::optional<std::string>> get(const std::string& name) const;
  // Streams an object into `sink`; false when it does not exist.
  Expected<bool> get_to(const std::string& name, const BodySink& sink) const;
  Expected<bool> exists(const std::string& name) const;
  Expected<void> put(const std::string& name, const std::string& body, const std::string& content_type) const;
  // Streams `file` (its hex SHA-256 is `sha256`: S3 checks the body against it).
  Expected<void> put_file(const std::string& name, const fs::path& file, const std::string& sha256) const;

private:
  ObjectStore() = default;
  std::string key(const std::string& name) const;
  Expected<HttpRequest> request(const std::string& method, const std::string& name,
                                const std::string& payload_hash) const;
  Expected<HttpResponse> send(const std::function<Expected<HttpRequest>()>& make) const;

  CacheUrl m_url;
  ObjectStoreLimits m_limits;
  S3Target m_target;
  AwsCredentials m_credentials;
};

} // namespace bi::net
