#pragma once
// A git server for boot tests: a small HTTP/1.1 server on 127.0.0.1 that checks Basic auth
// and hands each request to `git http-backend` (smart HTTP, CGI) through the process
// runner, serving one local repository read-only. The guest reaches it through a guestfwd,
// like the broker; the user and password are random per run, so the artifact flow is
// exercised with real credentials that never need to be kept anywhere.

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

std::string base64_encode(std::string_view data);
// Standard alphabet with padding; nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view text);

// A parsed HTTP/1.1 request (what the server needs of it).
struct HttpRequestHead {
  std::string method;
  std::string path;                           // without the query
  std::string query;                          // after '?', may be empty
  std::map<std::string, std::string> headers; // names lower-cased
};

// Parses the request line and headers (everything before the blank line).
Expected<HttpRequestHead> parse_request_head(std::string_view head);

// Whether an Authorization header value is Basic for exactly this user and password.
bool basic_auth_matches(const std::string& header_value, const std::string& user, const std::string& password);

class GitHttpServer {
public:
  // Serves `repository` (a git work tree or bare repository) at
  // http://127.0.0.1:<port>/repo.git. Fails with bad_input when it is not a git repository.
  static Expected<std::unique_ptr<GitHttpServer>> start(const fs::path& repository, std::string user,
                                                        std::string password, const fs::path& work_dir);
  GitHttpServer(const GitHttpServer&) = delete;
  GitHttpServer& operator=(const GitHttpServer&) = delete;
  ~GitHttpServer();

  int port() const { return m_port; }
  // The URL path the repository is served at.
  static constexpr const char* path() { return "/repo.git"; }
  // Requests answered so far, and how many were refused for missing or wrong credentials.
  int requests() const { return m_requests.load(); }
  int unauthorized() const { return m_unauthorized.load(); }

private:
  GitHttpServer() = default;
  void serve();
  void handle(int fd);

  fs::path m_repository;
  fs::path m_work_dir;
  std::string m_user;
  std::string m_password;
  int m_listen_fd = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_requests{0};
  std::atomic<int> m_unauthorized{0};
  std::thread m_thread;
};

} // namespace bi
