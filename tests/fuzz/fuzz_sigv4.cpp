// The SigV4 canonicalizer: canonical URI, canonical query, canonical headers and the whole
// signature over attacker-shaped paths, queries and header values (object keys and
// snapshot IDs from a server end up in paths). The input is split into fields at 0x00 bytes:
// path, query, header name, header value, method.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "net/http.hpp"
#include "net/sigv4.hpp"

using namespace bi::net;

namespace {

bool unreserved_or_pct(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '%';
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (fields.size() < 5) {
    const auto nul = in.find('\0', start);
    fields.emplace_back(in.substr(start, nul == std::string_view::npos ? std::string_view::npos : nul - start));
    if (nul == std::string_view::npos) {
      break;
    }
    start = nul + 1;
  }
  fields.resize(5);
  const std::string& path = fields[0];
  const std::string& query = fields[1];

  // Canonical URI: absolute, percent-encoded, and (normalized) free of empty, "." and ".." segments.
  for (const bool normalize : {true, false}) {
    const std::string uri = sigv4_canonical_uri(path, normalize);
    FUZZ_CHECK(!uri.empty());
    for (const char c : uri) {
      FUZZ_CHECK(c == '/' || unreserved_or_pct(c));
    }
    if (normalize) {
      FUZZ_CHECK(uri.front() == '/');
      FUZZ_CHECK(uri.find("//") == std::string::npos);
      FUZZ_CHECK(uri.find("/./") == std::string::npos && uri.find("/../") == std::string::npos);
      FUZZ_CHECK(sigv4_canonical_uri(url_decode(uri), true) == uri || uri.find('%') != std::string::npos);
    }
  }

  // Canonical query: only encoded pairs, sorted, and a fixed point.
  const std::string q = sigv4_canonical_query(query);
  for (const char c : q) {
    FUZZ_CHECK(c == '&' || c == '=' || unreserved_or_pct(c));
  }
  FUZZ_CHECK(sigv4_canonical_query(q) == q);

  // url_encode/url_decode round trip.
  FUZZ_CHECK(url_decode(url_encode(path)) == path);

  // A whole signature: deterministic, and the headers it adds are the ones it signs.
  AwsCredentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", "fuzz"};
  SigV4Params params;
  params.region = "us-east-1";
  params.service = "ebs";
  params.time = std::chrono::system_clock::time_point(std::chrono::seconds(1440938160));
  SigV4Input input;
  input.method = fields[4].empty() ? "GET" : fields[4];
  input.host = "127.0.0.1:8443";
  input.path = path;
  input.query = query;
  if (!fields[2].empty()) {
    input.headers.emplace_back(fields[2], fields[3]);
  }
  input.body = in;
  Headers h1 = input.headers;
  Headers h2 = input.headers;
  const SigV4Result a = sigv4_sign(input, h1, credentials, params);
  const SigV4Result b = sigv4_sign(input, h2, credentials, params);
  FUZZ_CHECK(a.signature == b.signature && a.signature.size() == 64);
  FUZZ_CHECK(
      a.authorization.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ebs/aws4_request, ", 0) == 0);
  FUZZ_CHECK(!h1.empty() && h1.back().first == "Authorization");
  // The secret is never part of what is sent or logged.
  for (const auto& [k, v] : h1) {
    FUZZ_CHECK(v.find(credentials.secret_access_key) == std::string::npos ||
               fields[3].find(credentials.secret_access_key) != std::string::npos);
  }
  FUZZ_CHECK(a.canonical_request.find(credentials.secret_access_key) == std::string::npos ||
             in.find(credentials.secret_access_key) != std::string_view::npos);

  // The retry layer's header parsers, also server-controlled.
  if (const auto after = parse_retry_after(fields[3])) {
    FUZZ_CHECK(after->count() >= 0 && after->count() <= 60);
  }
  (void)redact_url("https://" + path + "?" + query);
  return 0;
}
