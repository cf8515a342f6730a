#include "boot/git_http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

constexpr size_t k_max_head = size_t{64} * 1024;
constexpr size_t k_max_body = 64u << 20;

// Owns one socket descriptor.
class Socket {
public:
  explicit Socket(int fd) : m_fd(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  int fd() const { return m_fd; }

private:
  int m_fd;
};

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) {
    return {};
  }
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Appends what arrives to `buf`; false on EOF, error or the receive timeout.
bool recv_more(int fd, std::string& buf) {
  char chunk[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    buf.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

std::string status_text(int code) {
  switch (code) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 413:
    return "Payload Too Large";
  default:
    return code >= 500 ? "Internal Server Error" : "Status";
  }
}

std::string simple_response(int code, const std::string& extra_headers = "") {
  const std::string body = status_text(code) + "\n";
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}", code,
      status_text(code), body.size(), extra_headers, body);
}

// Reads a chunked body that starts at `buf[pos]`; reads more from `fd` as needed.
std::optional<std::string> read_chunked(int fd, std::string& buf, size_t pos) {
  std::string body;
  for (;;) {
    size_t eol = 0;
    while ((eol = buf.find("\r\n", pos)) == std::string::npos) {
      if (buf.size() - pos > 1024 || !recv_more(fd, buf)) {
        return std::nullopt;
      }
    }
    const std::string size_text = buf.substr(pos, eol - pos);
    size_t size = 0;
    try {
      size = std::stoul(size_text, nullptr, 16);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    pos = eol + 2;
    if (body.size() + size > k_max_body) {
      return std::nullopt;
    }
    while (buf.size() < pos + size + 2) {
      if (!recv_more(fd, buf)) {
        return std::nullopt;
      }
    }
    if (size == 0) {
      return body; // trailers are not used by git
    }
    body.append(buf, pos, size);
    pos += size + 2;
  }
}

} // namespace

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0 ||
      text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
          std::string_view::npos) {
    return std::nullopt;
  }
  const size_t first_pad = text.find('=');
  if (first_pad != std::string_view::npos &&
      (first_pad + 2 < text.size() || text.find_first_not_of('=', first_pad) != std::string_view::npos)) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock counts the padding as zero bytes.
  const size_t pad = first_pad == std::string_view::npos ? 0 : text.size() - first_pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Expected<HttpRequestHead> parse_request_head(std::string_view head) {
  HttpRequestHead r;
  size_t eol = head.find("\r\n");
  const std::string line(head.substr(0, eol));
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1 || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    return fail("HTTP request", "malformed request line '" + line + "'", ExitCode::bad_input);
  }
  r.method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  if (r.path.empty() || r.path[0] != '/') {
    return fail("HTTP request", "request target '" + target + "' is not an absolute path", ExitCode::bad_input);
  }
  while (eol != std::string_view::npos) {
    const size_t start = eol + 2;
    eol = head.find("\r\n", start);
    const std::string_view h = head.substr(start, eol == std::string_view::npos ? std::string_view::npos : eol - start);
    if (h.empty()) {
      continue;
    }
    const auto colon = h.find(':');
    if (colon == std::string_view::npos) {
      return fail("HTTP request", "malformed header line", ExitCode::bad_input);
    }
    r.headers[lower(std::string(h.substr(0, colon)))] = trim(h.substr(colon + 1));
  }
  return r;
}

bool basic_auth_matches(const std::string& header_value, const std::string& user, const std::string& password) {
  if (lower(header_value.substr(0, 6)) != "basic ") {
    return false;
  }
  const auto decoded = base64_decode(trim(std::string_view(header_value).substr(6)));
  const std::string expected = user + ":" + password;
  // Constant time: the comparison must not tell a guesser how much of the password was right.
  return decoded && decoded->size() == expected.size() &&
         CRYPTO_memcmp(decoded->data(), expected.data(), expected.size()) == 0;
}

Expected<std::unique_ptr<GitHttpServer>> GitHttpServer::start(const fs::path& repository, std::string user,
                                                              std::string password, const fs::path& work_dir) {
  std::error_code ec;
  if (!fs::is_directory(repository / ".git", ec) && !fs::is_regular_file(repository / "HEAD", ec)) {
    return fail(repository.string(), "not a git repository (--app-repo)", ExitCode::bad_input);
  }
  if (!program_available("git")) {
    return fail("git", "not installed (apt-get install git)", ExitCode::host_missing);
  }
  std::unique_ptr<GitHttpServer> s(new GitHttpServer());
  s->m_repository = fs::absolute(repository).lexically_normal();
  s->m_work_dir = work_dir;
  s->m_user = std::move(user);
  s->m_password = std::move(password);
  s->m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->m_listen_fd < 0) {
    return fail("git HTTP server", std::string("cannot create a socket: ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(s->m_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(s->m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(s->m_listen_fd, 16) != 0 ||
      ::getsockname(s->m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail("git HTTP server", std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
  }
  s->m_port = ntohs(addr.sin_port);
  s->m_thread = std::thread([p = s.get()] { p->serve(); });
  spdlog::debug("git HTTP server for {} on 127.0.0.1:{}", s->m_repository.string(), s->m_port);
  return s;
}

GitHttpServer::~GitHttpServer() {
  m_stop.store(true);
  if (m_thread.joinable()) {
    m_thread.join();
  }
  if (m_listen_fd >= 0) {
    ::close(m_listen_fd);
  }
}

void GitHttpServer::serve() {
  // One request at a time is enough for one guest (git's requests are sequential); polling
  // lets the destructor stop the loop without a wake-up descriptor.
  while (!m_stop.load()) {
    pollfd p{m_listen_fd, POLLIN, 0};
    const int r = ::poll(&p, 1, 200);
    if (r <= 0) {
      continue;
    }
    const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    Socket conn(fd);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    handle(fd);
  }
}

void GitHttpServer::handle(int fd) {
  std::string buf;
  size_t head_end = 0;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > k_max_head || !recv_more(fd, buf)) {
      return;
    }
  }
  auto head = parse_request_head(std::string_view(buf).substr(0, head_end));
  if (!head) {
    send_all(fd, simple_response(400));
    return;
  }
  m_requests.fetch_add(1);
  if (head->method != "GET" && head->method != "POST") {
    send_all(fd, simple_response(405));
    return;
  }
  const auto auth = head->headers.find("authorization");
  if (auth == head->headers.end() || !basic_auth_matches(auth->second, m_user, m_password)) {
    m_unauthorized.fetch_add(1);
    send_all(fd, simple_response(401, "WWW-Authenticate: Basic realm=\"build-image boot-test\"\r\n"));
    return;
  }
  const std::string prefix = path();
  if (head->path.rfind(prefix + "/", 0) != 0) {
    send_all(fd, simple_response(404));
    return;
  }
  const std::string path_info = head->path.substr(prefix.size());
  // Read-only: http-backend enables pushes for any authenticated user (REMOTE_USER set).
  if (path_info == "/git-receive-pack" || head->query.find("service=git-receive-pack") != std::string::npos) {
    send_all(fd, simple_response(403));
    return;
  }

  std::string body;
  const size_t body_start = head_end + 4;
  if (lower(head->headers["transfer-encoding"]) == "chunked") {
    auto b = read_chunked(fd, buf, body_start);
    if (!b) {
      send_all(fd, simple_response(400));
      return;
    }
    body = std::move(*b);
  } else if (const auto cl = head->headers.find("content-length"); cl != head->headers.end()) {
    size_t length = 0;
    try {
      length = std::stoul(cl->second);
    } catch (const std::exception&) {
      send_all(fd, simple_response(400));
      return;
    }
    if (length > k_max_body) {
      send_all(fd, simple_response(413));
      return;
    }
    while (buf.size() < body_start + length) {
      if (!recv_more(fd, buf)) {
        return;
      }
    }
    body = buf.substr(body_start, length);
  }

  const int n = m_requests.load();
  const fs::path in = m_work_dir / fmt::format("git-http-{}.in", n);
  const fs::path out = m_work_dir / fmt::format("git-http-{}.out", n);
  // Scratch data of one request: no fsync (write_file_atomic) needed.
  if (!(std::ofstream(in, std::ios::binary | std::ios::trunc) << body)) {
    send_all(fd, simple_response(500));
    return;
  }
  RunOptions ro;
  ro.timeout = std::chrono::seconds(120);
  ro.stdin_file = in.string();
  ro.stdout_file = out.string();
  ro.unset_env = {"GIT_DIR", "GIT_WORK_TREE", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"};
  ro.extra_env = {
      {"GATEWAY_INTERFACE", "CGI/1.1"},
      {"SERVER_PROTOCOL", "HTTP/1.1"},
      {"REQUEST_METHOD", head->method},
      {"QUERY_STRING", head->query},
      {"PATH_INFO", path_info},
      {"CONTENT_TYPE", head->headers["content-type"]},
      {"CONTENT_LENGTH", std::to_string(body.size())},
      {"REMOTE_USER", m_user},
      {"REMOTE_ADDR", "127.0.0.1"},
      {"GIT_PROJECT_ROOT", m_repository.string()},
      {"GIT_HTTP_EXPORT_ALL", "1"},
  };
  if (auto it = head->headers.find("content-encoding"); it != head->headers.end()) {
    ro.extra_env["HTTP_CONTENT_ENCODING"] = it->second;
  }
  if (auto it = head->headers.find("git-protocol"); it != head->headers.end()) {
    ro.extra_env["GIT_PROTOCOL"] = it->second;
  }
  // safe.directory: the served repository usually belongs to another user than the one
  // running boot-test (root); it is only read.
  auto r = run_process({"git", "-c", "safe.directory=*", "-c", "http.receivepack=false", "http-backend"}, ro);
  std::error_code ec;
  fs::remove(in, ec);
  auto cgi = read_file(out);
  fs::remove(out, ec);
  if (!r || !r->ok() || !cgi) {
    spdlog::warn("git http-backend failed for {} {}: {}", head->method, head->path,
                 !r ? r.error().to_string() : r->tail(5));
    send_all(fd, simple_response(500));
    return;
  }
  // CGI output: header lines, a blank line, the body.
  size_t sep = cgi->find("\r\n\r\n");
  size_t sep_len = 4;
  if (const size_t lf = cgi->find("\n\n"); lf != std::string::npos && (sep == std::string::npos || lf < sep)) {
    sep = lf;
    sep_len = 2;
  }
  if (sep == std::string::npos) {
    send_all(fd, simple_response(500));
    return;
  }
  int status = 200;
  std::string headers;
  size_t pos = 0;
  while (pos < sep) {
    size_t eol = cgi->find('\n', pos);
    if (eol == std::string::npos || eol > sep) {
      eol = sep;
    }
    const std::string line = trim(std::string_view(*cgi).substr(pos, eol - pos));
    pos = eol + 1;
    if (line.empty()) {
      continue;
    }
    if (lower(line.substr(0, 7)) == "status:") {
      try {
        status = std::stoi(trim(line.substr(7)));
      } catch (const std::exception&) {
        status = 500;
      }
    } else {
      headers += line + "\r\n";
    }
  }
  const std::string_view payload = std::string_view(*cgi).substr(sep + sep_len);
  send_all(fd, fmt::format("HTTP/1.1 {} {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n", status,
                           status_text(status), headers, payload.size()));
  send_all(fd, payload);
}

} // namespace bi
