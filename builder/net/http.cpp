#include "net/http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "util/process.hpp"

namespace bi::net {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  std::optional<Error> body_error; // from the body reader
  std::uint64_t sent = 0;
  CURL* easy = nullptr;
  std::optional<Error> sink_error; // from the body sink
};

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->body_sink) {
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      auto r = t->request->body_sink(std::string_view(data, size * n));
      if (!r) {
        t->sink_error = r.error();
        return 0;
      }
      return size * n;
    }
  }
  // Responses we read are small (JSON, XML); cap them so a misbehaving server cannot
  // exhaust memory.
  if (t->response->body.size() + size * n > (64u << 20)) {
    return 0;
  }
  t->response->body.append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear(); // a new response (after 100 Continue or a redirect)
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    t->response->headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  return size * n;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  auto r = t->request->body_reader(buf, size * n);
  if (!r) {
    t->body_error = r.error();
    return CURL_READFUNC_ABORT;
  }
  t->sent += *r;
  return *r;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (interrupted() && !t->request->cleanup) {
    return 1; // Ctrl-C: abort the transfer
  }
  if (t->request->on_upload_progress) {
    t->request->on_upload_progress(static_cast<std::uint64_t>(ulnow));
  }
  return 0;
}

bool secret_key(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* s : {"signature", "token", "credential", "password", "secret", "key"}) {
    if (k.find(s) != std::string::npos) {
      return true;
    }
  }
  return false;
}

} // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) {
      return v;
    }
  }
  return "";
}

std::string redact_url(const std::string& url) {
  std::string out = url;
  // scheme://user:pass@host -> scheme://host
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto host_start = scheme + 3;
    const auto path_start = out.find('/', host_start);
    const auto at = out.find('@', host_start);
    if (at != std::string::npos && (path_start == std::string::npos || at < path_start)) {
      out.erase(host_start, at + 1 - host_start);
    }
  }
  const auto q = out.find('?');
  if (q == std::string::npos) {
    return out;
  }
  std::string result = out.substr(0, q + 1);
  std::string_view query(out);
  query.remove_prefix(q + 1);
  bool first = true;
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (!first) {
      result += '&';
    }
    first = false;
    if (eq != std::string_view::npos && secret_key(pair.substr(0, eq))) {
      result += std::string(pair.substr(0, eq)) + "=***";
    } else {
      result += std::string(pair);
    }
  }
  return result;
}

std::string describe_request(const std::string& method, const std::string& url) {
  return method + " " + redact_url(url);
}

Expected<HttpResponse> http_send(const HttpRequest& request) {
  global_init();
  const std::string what = describe_request(request.method, request.url);
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) {
    return fail(what, "cannot create a libcurl handle");
  }
  CURL* c = easy.get();
  HttpResponse response;
  Transfer transfer{&request, &response, std::nullopt, 0, c, std::nullopt};
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* raw_list = nullptr;
  bool has_content_type = false;
  for (const auto& [k, v] : request.headers) {
    has_content_type = has_content_type || iequals(k, "content-type");
    raw_list = curl_slist_append(raw_list, (k + ": " + v).c_str());
  }
  // No "Expect: 100-continue" round trip; an empty Content-Type is never sent by accident.
  raw_list = curl_slist_append(raw_list, "Expect:");
  if (!has_content_type) {
    raw_list = curl_slist_append(raw_list, "Content-Type:");
  }
  std::unique_ptr<curl_slist, SlistDeleter> header_list(raw_list);

  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "build-image");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count() * 1000));
  if (request.timeout.count() > 0) {
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count() * 1000));
  }
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.stall_timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);

  const std::string& m = request.method;
  if (request.body_reader) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L); // PUT by default
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body_size));
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    if (m != "PUT") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
    }
  } else if (m == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (m == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    if (m == "POST" || !request.body.empty() || m == "PUT" || m == "PATCH") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }
    if (m != "POST") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
    }
  }

  const CURLcode rc = curl_easy_perform(c);
  if (transfer.body_error) {
    return fail(what, "reading the request body: " + transfer.body_error->to_string());
  }
  if (transfer.sink_error) {
    return fail(what, "storing the response body: " + transfer.sink_error->to_string());
  }
  if (rc != CURLE_OK) {
    if (rc == CURLE_ABORTED_BY_CALLBACK && interrupted()) {
      return fail(what, "interrupted");
    }
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      detail = "timed out: " + detail;
    }
    return fail(what, detail);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

bool is_retryable(const HttpResponse& r) {
  if (r.status == 429 || r.status >= 500) {
    return true;
  }
  if (r.status == 400 || r.status == 403 || r.status == 503) {
    for (const char* code :
         {"RequestLimitExceeded", "Throttling", "ThrottlingException", "SlowDown", "RequestThrottledException",
          "ConcurrentLimitExceededException", "TooManyRequestsException"}) {
      if (r.body.find(code) != std::string::npos || r.header("x-amzn-ErrorType").find(code) != std::string::npos) {
        return true;
      }
    }
  }
  return false;
}

Expected<HttpResponse> send_with_retry(const std::function<Expected<HttpRequest>()>& make_request,
                                       const RetryPolicy& policy) {
  thread_local std::mt19937 rng{std::random_device{}()};
  std::string last_failure;
  std::string what;
  auto delay = policy.first_delay;
  const int attempts = std::max(1, policy.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    BI_TRY_ASSIGN(HttpRequest request, make_request());
    what = describe_request(request.method, request.url);
    auto r = http_send(request);
    if (r && !is_retryable(*r)) {
      return r;
    }
    if (interrupted() && !request.cleanup) {
      return fail(what, "interrupted");
    }
    if (r) {
      std::string body = redact_secrets(r->body).substr(0, 200);
      std::replace(body.begin(), body.end(), '\n', ' ');
      last_failure = fmt::format("HTTP {}{}{}", r->status, body.empty() ? "" : ": ", body);
    } else {
      last_failure = r.error().detail;
    }
    if (attempt == attempts) {
      break;
    }
    // Full jitter in [delay/2, delay]; the server's Retry-After wins when it asks for more.
    std::uniform_int_distribution<long> jitter(delay.count() / 2, delay.count());
    auto wait = std::chrono::milliseconds(jitter(rng));
    if (r) {
      if (const auto asked = parse_retry_after(r->header("Retry-After"))) {
        wait = std::max(wait, std::chrono::duration_cast<std::chrono::milliseconds>(*asked));
      }
    }
    spdlog::debug("{}: attempt {}/{} failed ({}); retrying in {} ms", what, attempt, attempts, last_failure,
                  wait.count());
    std::this_thread::sleep_for(wait);
    delay = std::min(policy.max_delay, delay * 2);
  }
  return fail(what, fmt::format("failed after {} attempt{}: {}", attempts, attempts == 1 ? "" : "s", last_failure));
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::chrono::seconds cap) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  if (value.empty()) {
    return std::nullopt;
  }
  long long seconds = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    // Saturate instead of overflowing: "99999999999999999999" means "long", not a crash.
    seconds = std::min<long long>(seconds * 10 + (c - '0'), cap.count());
  }
  return std::chrono::seconds(std::min<long long>(seconds, cap.count()));
}

namespace {

std::mutex g_secrets_mutex;
std::vector<std::string>& secrets() {
  static std::vector<std::string> list;
  return list;
}

} // namespace

void register_secret(const std::string& secret) {
  // Very short values would mask innocent text and are not worth hiding.
  if (secret.size() < 4) {
    return;
  }
  std::lock_guard lock(g_secrets_mutex);
  auto& list = secrets();
  if (std::find(list.begin(), list.end(), secret) == list.end()) {
    list.push_back(secret);
  }
}

std::string redact_secrets(std::string text) {
  std::lock_guard lock(g_secrets_mutex);
  for (const auto& secret : secrets()) {
    for (const std::string& form : {secret, url_encode(secret)}) {
      for (auto pos = text.find(form); pos != std::string::npos; pos = text.find(form, pos + 3)) {
        text.replace(pos, form.size(), "***");
      }
    }
  }
  return text;
}

bool valid_resource_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

Error http_error(const std::string& method, const std::string& url, const HttpResponse& response, ExitCode code) {
  std::string body = redact_secrets(response.body).substr(0, 300);
  std::replace(body.begin(), body.end(), '\n', ' ');
  return make_error(describe_request(method, url),
                    fmt::format("HTTP {}{}{}", response.status, body.empty() ? "" : ": ", body), code);
}

Error http_error(const HttpRequest& request, const HttpResponse& response, ExitCode code) {
  return http_error(request.method, request.url, response, code);
}

std::string url_encode(std::string_view text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string url_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

} // namespace bi::net
