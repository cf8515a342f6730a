#pragma once
// AWS Signature Version 4, written once: canonical request, string to sign, signing key,
// and the Authorization / X-Amz-Date / X-Amz-Security-Token / x-amz-content-sha256
// headers. Checked against the aws-c-auth v4 test suite (tests/data/sigv4/).

#include <chrono>
#include <string>
#include <string_view>

#include "net/http.hpp"

namespace bi::net {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key; // never logged
  std::string session_token;     // never logged; empty for long-term keys
  std::string source;            // where they came from ("environment", "profile dev in ~/.aws/credentials")
};

struct SigV4Params {
  std::string region;
  std::string service;
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();
  // Remove "." and ".." segments and repeated slashes from the path (every service but S3).
  bool normalize_path = true;
  // Add an x-amz-content-sha256 header (S3; EBS does not need it).
  bool add_content_sha256 = false;
  // The payload hash; empty = SHA-256 of the body. "UNSIGNED-PAYLOAD" for streamed bodies.
  std::string payload_hash;
};

struct SigV4Result {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
  std::string authorization;
  std::string amz_date;
};

// A request to sign: the path is NOT percent-encoded (the signer encodes it); the query is
// raw ("a=b&c=d", values may be percent-encoded), headers as they will be sent. `body` is
// used for the payload hash unless params.payload_hash is set.
struct SigV4Input {
  std::string method;
  std::string host;  // host[:port], also sent as the Host header
  std::string path;  // e.g. "/snapshots/snap-1/blocks/0"
  std::string query; // without '?'
  Headers headers;   // other headers to sign (Content-Type, x-amz-*)
  std::string_view body;
};

// Computes the signature and appends the X-Amz-Date, X-Amz-Security-Token (when a session
// token is set), x-amz-content-sha256 (when asked) and Authorization headers to `headers`.
SigV4Result sigv4_sign(const SigV4Input& input, Headers& headers, const AwsCredentials& credentials,
                       const SigV4Params& params);

// Pieces, exposed for tests and for the HTTP layer.
std::string sigv4_canonical_uri(std::string_view path, bool normalize);
std::string sigv4_canonical_query(std::string_view raw_query);
std::string amz_date(std::chrono::system_clock::time_point t); // 20150830T123600Z

// Builds a signed HttpRequest for `url` (scheme://host[:port]/path?query).
Expected<HttpRequest> signed_request(const std::string& method, const std::string& url, Headers headers,
                                     std::string body, const AwsCredentials& credentials, const SigV4Params& params);

std::string hex(std::string_view bytes);
std::string base64(std::string_view bytes);
std::string sha256_raw(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);

} // namespace bi::net
