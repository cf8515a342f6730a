#include "net/object_store.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>

#include <spdlog/fmt/fmt.h>

#include "util/hash.hpp"

namespace bi::net {

namespace {

constexpr const char* k_empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Unexpected bad_url(std::string_view url, const std::string& detail) {
  return fail("--cache-url", fmt::format("'{}': {}", url, detail), ExitCode::bad_input);
}

bool valid_prefix(std::string_view prefix) {
  size_t start = 0;
  while (start <= prefix.size()) {
    const auto slash = prefix.find('/', start);
    const auto seg = prefix.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "." || seg == "..") {
      return false;
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  return std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/';
  });
}

std::string trim_slashes(std::string s) {
  while (!s.empty() && s.front() == '/') {
    s.erase(0, 1);
  }
  while (!s.empty() && s.back() == '/') {
    s.pop_back();
  }
  // Repeated slashes would make object keys that differ from what other clients compute.
  std::string out;
  for (char c : s) {
    if (c == '/' && !out.empty() && out.back() == '/') {
      continue;
    }
    out += c;
  }
  return out;
}

} // namespace

Expected<CacheUrl> parse_cache_url(std::string_view url) {
  CacheUrl out;
  out.text = std::string(url);
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return bad_url(url, "expected s3://BUCKET/PREFIX or http(s)://HOST[:PORT]/PREFIX");
  }
  const std::string scheme(url.substr(0, scheme_end));
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad_url(url, "a query or fragment is not allowed");
  }
  if (std::any_of(rest.begin(), rest.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
    return bad_url(url, "spaces are not allowed");
  }
  const auto slash = rest.find('/');
  const std::string authority(rest.substr(0, slash));
  const std::string prefix = trim_slashes(slash == std::string_view::npos ? "" : std::string(rest.substr(slash)));
  if (authority.find('@') != std::string::npos) {
    return bad_url(redact_url(out.text), "credentials in the URL are refused (they would be visible in the process "
                                         "list and logs); use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE");
  }
  if (!valid_prefix(prefix)) {
    return bad_url(url, "the prefix may only contain A-Z a-z 0-9 - _ . ~ / (and no '.' or '..' segment)");
  }
  out.prefix = prefix;
  if (scheme == "s3") {
    out.scheme = CacheUrl::Scheme::s3;
    const std::string& b = authority;
    const bool ok = b.size() >= 3 && b.size() <= 63 && std::isalnum(static_cast<unsigned char>(b.front())) &&
                    std::isalnum(static_cast<unsigned char>(b.back())) && std::all_of(b.begin(), b.end(), [](char c) {
                      return std::islower(static_cast<unsigned char>(c)) ||
                             std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
                    });
    if (b.empty()) {
      return bad_url(url, "no bucket name");
    }
    if (!ok) {
      return bad_url(url, fmt::format("invalid bucket name '{}' (3-63 characters: a-z 0-9 . -)", b));
    }
    out.bucket = b;
    return out;
  }
  if (scheme == "http" || scheme == "https") {
    out.scheme = CacheUrl::Scheme::http;
    if (authority.empty() || authority.front() == ':') {
      return bad_url(url, "no host name");
    }
    if (const auto colon = authority.rfind(':');
        colon != std::string::npos && authority.find(']') == std::string::npos) {
      const std::string port = authority.substr(colon + 1);
      if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(port) < 1 || std::stoi(port) > 65535) {
        return bad_url(url, fmt::format("invalid port '{}'", port));
      }
    }
    out.origin = scheme + "://" + authority;
    return out;
  }
  return bad_url(url, fmt::format("unsupported scheme '{}' (expected s3, http or https)", scheme));
}

S3Target s3_target(const std::string& bucket, const std::string& region, const Env& env) {
  S3Target t;
  t.bucket = bucket;
  t.region = region.empty() ? "us-east-1" : region;
  std::string endpoint;
  for (const char* name : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
    if (auto it = env.find(name); it != env.end() && !it->second.empty()) {
      endpoint = it->second;
      break;
    }
  }
  if (!endpoint.empty()) {
    t.endpoint = endpoint;
    t.path_style = true;
  } else if (bucket.find('.') != std::string::npos) {
    // Dots break the TLS wildcard certificate of virtual-hosted names.
    t.endpoint = fmt::format("https://s3.{}.amazonaws.com", t.region);
    t.path_style = true;
  } else {
    t.endpoint = fmt::format("https://{}.s3.{}.amazonaws.com", bucket, t.region);
    t.path_style = false;
  }
  while (!t.endpoint.empty() && t.endpoint.back() == '/') {
    t.endpoint.pop_back();
  }
  return t;
}

std::string s3_object_url(const S3Target& target, const std::string& key) {
  return target.endpoint + (target.path_style ? "/" + url_encode(target.bucket) : "") + "/" + url_encode(key, true);
}

Expected<HttpRequest> s3_request(const S3Target& target, const std::string& method, const std::string& key,
                                 const AwsCredentials& credentials, const std::string& payload_hash,
                                 std::chrono::system_clock::time_point time) {
  SigV4Params params;
  params.region = target.region;
  params.service = "s3";
  params.time = time;
  params.normalize_path = false; // S3 keys are taken literally
  params.add_content_sha256 = true;
  params.payload_hash = payload_hash;
  return signed_request(method, s3_object_url(target, key), {}, "", credentials, params);
}

Expected<ObjectStore> ObjectStore::open(const CacheUrl& url, const Env& env, const ObjectStoreLimits& limits) {
  ObjectStore store;
  store.m_url = url;
  store.m_limits = limits;
  if (url.scheme == CacheUrl::Scheme::s3) {
    auto config = load_aws_config(env);
    if (!config) {
      return fail(url.text, config.error().to_string(), config.error().code);
    }
    store.m_credentials = config->credentials;
    store.m_target = s3_target(url.bucket, config->region, env);
  }
  return store;
}

std::string ObjectStore::key(const std::string& name) const {
  return m_url.prefix.empty() ? name : m_url.prefix + "/" + name;
}

std::string ObjectStore::describe(const std::string& name) const {
  if (m_url.scheme == CacheUrl::Scheme::s3) {
    return "s3://" + m_url.bucket + "/" + key(name);
  }
  return m_url.origin + "/" + key(name);
}

Expected<HttpRequest> ObjectStore::request(const std::string& method, const std::string& name,
                                           const std::string& payload_hash) const {
  Expected<HttpRequest> r = [&]() -> Expected<HttpRequest> {
    if (m_url.scheme == CacheUrl::Scheme::s3) {
      return s3_request(m_target, method, key(name), m_credentials, payload_hash);
    }
    HttpRequest plain;
    plain.method = method;
    plain.url = m_url.origin + "/" + url_encode(key(name), true);
    return plain;
  }();
  if (r) {
    r->connect_timeout = m_limits.connect_timeout;
    r->timeout = m_limits.request_timeout;
    r->stall_timeout = m_limits.stall_timeout;
  }
  return r;
}

Expected<HttpResponse> ObjectStore::send(const std::function<Expected<HttpRequest>()>& make) const {
  RetryPolicy policy;
  policy.max_attempts = m_limits.attempts;
  policy.first_delay = std::chrono::milliseconds(300);
  policy.max_delay = std::chrono::milliseconds(2000);
  return send_with_retry(make, policy);
}

Expected<std::optional<std::string>> ObjectStore::get(const std::string& name) const {
  BI_TRY_ASSIGN(HttpResponse r, send([&] { return request("GET", name, k_empty_sha256); }));
  if (r.status == 404) {
    return std::optional<std::string>{};
  }
  if (r.status != 200) {
    return fail(http_error("GET", describe(name), r));
  }
  if (r.body.size() > (1u << 20)) {
    return fail("GET " + describe(name), "larger than 1 MiB: not a cache index");
  }
  return std::optional<std::string>{std::move(r.body)};
}

Expected<bool> ObjectStore::get_to(const std::string& name, const BodySink& sink) const {
  BI_TRY_ASSIGN(HttpResponse r, send([&]() -> Expected<HttpRequest> {
                  BI_TRY_ASSIGN(HttpRequest req, request("GET", name, k_empty_sha256));
                  req.timeout = std::chrono::seconds(0); // large: bounded by the stall timeout
                  req.body_sink = sink;
                  return req;
                }));
  if (r.status == 404) {
    return false;
  }
  if (r.status != 200) {
    return fail(http_error("GET", describe(name), r));
  }
  return true;
}

Expected<bool> ObjectStore::exists(const std::string& name) const {
  BI_TRY_ASSIGN(HttpResponse r, send([&] { return request("HEAD", name, k_empty_sha256); }));
  if (r.status == 404) {
    return false;
  }
  if (r.status != 200) {
    return fail(http_error("HEAD", describe(name), r));
  }
  return true;
}

Expected<void> ObjectStore::put(const std::string& name, const std::string& body,
                                const std::string& content_type) const {
  BI_TRY_ASSIGN(HttpResponse r, send([&]() -> Expected<HttpRequest> {
                  Expected<HttpRequest> req = fail("", "");
                  if (m_url.scheme == CacheUrl::Scheme::s3) {
                    // Content-Type is signed too: build the request through the signer.
                    SigV4Params params;
                    params.region = m_target.region;
                    params.service = "s3";
                    params.normalize_path = false;
                    params.add_content_sha256 = true;
                    req = signed_request("PUT", s3_object_url(m_target, key(name)), {{"Content-Type", content_type}},
                                         body, m_credentials, params);
                  } else {
                    req = request("PUT", name, "");
                    if (req) {
                      req->headers.emplace_back("Content-Type", content_type);
                      req->body = body;
                    }
                  }
                  if (req) {
                    req->connect_timeout = m_limits.connect_timeout;
                    req->timeout = m_limits.request_timeout;
                  }
                  return req;
                }));
  if (r.status != 200 && r.status != 201 && r.status != 204) {
    return fail(http_error("PUT", describe(name), r));
  }
  return Ok{};
}

Expected<void> ObjectStore::put_file(const std::string& name, const fs::path& file, const std::string& sha256) const {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) {
    return fail(file.string(), "cannot read: " + ec.message());
  }
  BI_TRY_ASSIGN(HttpResponse r, send([&]() -> Expected<HttpRequest> {
                  BI_TRY_ASSIGN(HttpRequest req, request("PUT", name, sha256));
                  auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
                  if (!*in) {
                    return fail(file.string(), "cannot open");
                  }
                  req.headers.emplace_back("Content-Type", "application/zstd");
                  req.timeout = std::chrono::seconds(0); // large: bounded by the stall timeout
                  req.body_size = size;
                  req.body_reader = [in, file](char* buf, std::size_t len) -> Expected<std::size_t> {
                    in->read(buf, static_cast<std::streamsize>(len));
                    if (in->bad()) {
                      return fail(file.string(), "read error");
                    }
                    return static_cast<std::size_t>(in->gcount());
                  };
                  return req;
                }));
  if (r.status != 200 && r.status != 201 && r.status != 204) {
    return fail(http_error("PUT", describe(name), r));
  }
  return Ok{};
}

} // namespace bi::net
