#include "net/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "util/text.hpp"
#include "util/time.hpp"

namespace bi::net {

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string sha256_raw(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string amz_date(std::chrono::system_clock::time_point t) { return format_utc(t, "%Y%m%dT%H%M%SZ"); }

std::string sigv4_canonical_uri(std::string_view path, bool normalize) {
  if (path.empty()) {
    return "/";
  }
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string_view::npos ? path.size() : slash;
    segments.emplace_back(path.substr(start, end - start));
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  // segments[0] is what precedes the leading '/', normally empty.
  if (!normalize) {
    std::string out;
    for (size_t i = 0; i < segments.size(); ++i) {
      if (i > 0) {
        out += '/';
      }
      out += url_encode(segments[i]);
    }
    return out.empty() ? "/" : out;
  }
  const bool trailing_slash = path.size() > 1 && path.back() == '/';
  std::vector<std::string> kept;
  for (const auto& s : segments) {
    if (s.empty() || s == ".") {
      continue;
    }
    if (s == "..") {
      if (!kept.empty()) {
        kept.pop_back();
      }
      continue;
    }
    kept.push_back(url_encode(s));
  }
  std::string out;
  for (const auto& s : kept) {
    out += '/' + s;
  }
  if (out.empty()) {
    return "/";
  }
  if (trailing_slash) {
    out += '/';
  }
  return out;
}

std::string sigv4_canonical_query(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!raw_query.empty()) {
    const auto amp = raw_query.find('&');
    std::string_view pair = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view{} : raw_query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const auto eq = pair.find('=');
    std::string key = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    params.emplace_back(url_encode(key), url_encode(value));
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) {
      out += '&';
    }
    out += k + "=" + v;
  }
  return out;
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Trims and collapses runs of spaces (the canonical header value).
std::string canonical_value(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) {
      out += ' ';
    }
    space = false;
    out += c;
  }
  return out;
}

} // namespace

SigV4Result sigv4_sign(const SigV4Input& input, Headers& headers, const AwsCredentials& credentials,
                       const SigV4Params& params) {
  SigV4Result r;
  r.amz_date = amz_date(params.time);
  const std::string date = r.amz_date.substr(0, 8);
  const std::string payload_hash = !params.payload_hash.empty() ? params.payload_hash : hex(sha256_raw(input.body));

  headers.emplace_back("X-Amz-Date", r.amz_date);
  if (!credentials.session_token.empty()) {
    headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  if (params.add_content_sha256) {
    headers.emplace_back("x-amz-content-sha256", payload_hash);
  }

  // name -> values in order of appearance (duplicates joined with ',').
  std::map<std::string, std::vector<std::string>> canon;
  canon["host"].push_back(input.host);
  for (const auto& [k, v] : input.headers) {
    const std::string name = lower(k);
    if (name == "host" || name == "authorization") {
      continue;
    }
    canon[name].push_back(canonical_value(v));
  }
  for (const auto& [k, v] : headers) {
    const std::string name = lower(k);
    if (name == "x-amz-date" || name == "x-amz-security-token" || name == "x-amz-content-sha256") {
      if (std::find(canon[name].begin(), canon[name].end(), v) == canon[name].end()) {
        canon[name].push_back(canonical_value(v));
      }
    }
  }
  std::string canonical_headers;
  std::string signed_headers;
  for (const auto& [name, values] : canon) {
    std::string joined;
    for (size_t i = 0; i < values.size(); ++i) {
      joined += (i ? "," : "") + values[i];
    }
    canonical_headers += name + ":" + joined + "\n";
    append_separated(signed_headers, ";", name);
  }

  r.canonical_request =
      fmt::format("{}\n{}\n{}\n{}\n{}\n{}", input.method, sigv4_canonical_uri(input.path, params.normalize_path),
                  sigv4_canonical_query(input.query), canonical_headers, signed_headers, payload_hash);
  const std::string scope = fmt::format("{}/{}/{}/aws4_request", date, params.region, params.service);
  r.string_to_sign =
      fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", r.amz_date, scope, hex(sha256_raw(r.canonical_request)));
  std::string key = hmac_sha256("AWS4" + credentials.secret_access_key, date);
  key = hmac_sha256(key, params.region);
  key = hmac_sha256(key, params.service);
  key = hmac_sha256(key, "aws4_request");
  r.signature = hex(hmac_sha256(key, r.string_to_sign));
  r.authorization = fmt::format("AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}",
                                credentials.access_key_id, scope, signed_headers, r.signature);
  headers.emplace_back("Authorization", r.authorization);
  return r;
}

Expected<HttpRequest> signed_request(const std::string& method, const std::string& url, Headers headers,
                                     std::string body, const AwsCredentials& credentials, const SigV4Params& params) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) {
    return fail(url, "not an absolute URL", ExitCode::bad_input);
  }
  const auto path_start = url.find('/', scheme + 3);
  SigV4Input in;
  in.method = method;
  in.host = url.substr(scheme + 3, path_start == std::string::npos ? std::string::npos : path_start - scheme - 3);
  std::string path_and_query = path_start == std::string::npos ? "/" : url.substr(path_start);
  const auto q = path_and_query.find('?');
  in.path = url_decode(path_and_query.substr(0, q));
  in.query = q == std::string::npos ? "" : path_and_query.substr(q + 1);
  in.headers = headers;
  in.body = body;
  Headers out = std::move(headers);
  out.emplace_back("Host", in.host);
  sigv4_sign(in, out, credentials, params);
  HttpRequest request;
  request.method = method;
  request.url = url;
  request.headers = std::move(out);
  request.body = std::move(body);
  return request;
}

} // namespace bi::net
