#pragma once
// HTTP for the cloud registration code: an RAII libcurl easy handle per request, a
// per-request timeout (total for small requests, a stall limit for streamed uploads),
// streamed request bodies (from a callback, never the whole file in memory), and the one
// retry layer (throttling, 5xx, connection errors; bounded attempts with backoff).
// Errors name the method and the URL; URLs and errors never carry credentials (callers
// put secrets in headers only, and headers are never part of an error).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/expected.hpp"

namespace bi::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Fills `buf` with up to `len` bytes of the body; returns the count, 0 at the end.
using BodyReader = std::function<Expected<std::size_t>(char* buf, std::size_t len)>;

// Receives a 2xx response body piece by piece (downloads of any size, never in memory).
using BodySink = std::function<Expected<void>(std::string_view data)>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;       // in-memory body (JSON, form, one EBS block)
  BodyReader body_reader; // streamed body; then body_size is sent as Content-Length
  std::uint64_t body_size = 0;
  // Streamed response body: a 2xx body goes here instead of HttpResponse::body (other
  // statuses, e.g. an error document, still land in `body`).
  BodySink body_sink;
  // Total time for the request; 0 = no total limit (streamed uploads use stall_timeout).
  std::chrono::seconds timeout{60};
  std::chrono::seconds connect_timeout{10};
  // Abort when fewer than 1 byte/s moves for this long (uploads of any size stay bounded).
  std::chrono::seconds stall_timeout{60};
  // Upload progress (bytes sent so far); called from the transfer loop.
  std::function<void(std::uint64_t)> on_upload_progress;
  // Cleanup (deleting a half-made image or snapshot): still runs after Ctrl-C.
  bool cleanup = false;
};

struct HttpResponse {
  long status = 0;
  Headers headers; // in arrival order, names as sent
  std::string body;
  // First header with this name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

// One attempt. A transport failure (DNS, refused, reset, timeout) is an error naming
// method + URL; any HTTP status is a response.
Expected<HttpResponse> http_send(const HttpRequest& request);

// "METHOD URL" with userinfo removed and secret-looking query values masked.
std::string describe_request(const std::string& method, const std::string& url);
std::string redact_url(const std::string& url);

struct RetryPolicy {
  int max_attempts = 6;
  std::chrono::milliseconds first_delay{500};
  std::chrono::milliseconds max_delay{10000};
};

// Whether a response is worth another attempt: 429, 5xx, and AWS throttling codes
// (SlowDown, RequestLimitExceeded, Throttling, RequestThrottledException, ...).
bool is_retryable(const HttpResponse& response);

// The retry layer. `make_request` builds (and signs) a fresh request for every attempt.
// Returns the first non-retryable response (any status: the caller decides what is an
// error), or an error naming the request, the attempts and the last failure.
Expected<HttpResponse> send_with_retry(const std::function<Expected<HttpRequest>()>& make_request,
                                       const RetryPolicy& policy = {});

// The delay a Retry-After header asks for: delta-seconds only (an HTTP date or anything
// else is ignored), capped at `cap`.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::seconds cap = std::chrono::seconds(60));

// The secrets of this process (passwords, secret keys, session and auth tokens). Server
// answers are untrusted and may echo a request: an AWS SignatureDoesNotMatch body can hold
// the canonical request with the session token. Every piece of a response that reaches an
// error or a log (http_error, the retry layer's failures, EC2 error messages) goes through
// redact_secrets, which masks each registered secret as "***". Thread-safe.
void register_secret(const std::string& secret);
std::string redact_secrets(std::string text);

// Whether an ID a server gave us is safe to put into a request path or form:
// 1-128 characters of [A-Za-z0-9._-], not "." or "..".
bool valid_resource_id(std::string_view id);

// Error for an unexpected status: "METHOD URL: HTTP 409: <short body>".
Error http_error(const HttpRequest& request, const HttpResponse& response, ExitCode code = ExitCode::build_failed);
Error http_error(const std::string& method, const std::string& url, const HttpResponse& response,
                 ExitCode code = ExitCode::build_failed);

// RFC 3986 percent-encoding of everything but unreserved characters (A-Z a-z 0-9 - . _ ~);
// `keep_slash` leaves '/' as is (paths).
std::string url_encode(std::string_view text, bool keep_slash = false);
std::string url_decode(std::string_view text);

} // namespace bi::net
