#include "register/consistency.hpp"

#include <cstdlib>
#include <thread>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "util/process.hpp"

namespace bi::registration {

bool snapshot_not_visible_yet(const net::HttpResponse& response) {
  if (response.status == 404) {
    // EBS direct APIs: x-amzn-ErrorType "ResourceNotFoundException[:<url>]", and the JSON body
    // names it as __type (or Reason SNAPSHOT_NOT_FOUND).
    const std::string type = response.header("x-amzn-ErrorType");
    return type.rfind("ResourceNotFoundException", 0) == 0 ||
           response.body.find("ResourceNotFoundException") != std::string::npos ||
           response.body.find("SNAPSHOT_NOT_FOUND") != std::string::npos;
  }
  if (response.status == 400) {
    // EC2 Query API: <Code>InvalidSnapshot.NotFound</Code>.
    return response.body.find("<Code>InvalidSnapshot.NotFound</Code>") != std::string::npos;
  }
  return false;
}

Expected<ConsistencyPolicy> ConsistencyPolicy::from_env(const std::map<std::string, std::string>& env) {
  ConsistencyPolicy p;
  const auto it = env.find("BUILD_IMAGE_EBS_LAG_SECONDS");
  if (it == env.end() || it->second.empty()) {
    return p;
  }
  char* end = nullptr;
  const long seconds = std::strtol(it->second.c_str(), &end, 10);
  if (end == nullptr || *end != '\0' || seconds < 0 || seconds > 3600) {
    return fail("BUILD_IMAGE_EBS_LAG_SECONDS",
                fmt::format("'{}' is not a whole number of seconds from 0 to 3600", it->second.substr(0, 32)),
                ExitCode::bad_input);
  }
  p.max_total = std::chrono::seconds(seconds);
  return p;
}

std::chrono::milliseconds ConsistencyPolicy::delay(int retry, std::chrono::milliseconds waited) const {
  if (waited >= max_total) {
    return std::chrono::milliseconds(0);
  }
  auto d = first_delay;
  for (int i = 0; i < retry && d < max_delay; ++i) {
    d *= 2;
  }
  d = std::min(d, max_delay);
  return std::min(d, max_total - waited);
}

ConsistencyWait::ConsistencyWait(std::string what, ConsistencyPolicy policy, Sleep sleep)
    : m_what(std::move(what)), m_policy(policy), m_sleep(std::move(sleep)) {
  if (!m_sleep) {
    // In slices, so that Ctrl-C does not wait out a long backoff.
    m_sleep = [](std::chrono::milliseconds d) {
      const auto until = std::chrono::steady_clock::now() + d;
      while (!interrupted() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(until - std::chrono::steady_clock::now(),
                                                                       std::chrono::milliseconds(100)));
      }
    };
  }
}

Expected<net::HttpResponse> ConsistencyWait::run(const std::function<Expected<net::HttpResponse>()>& attempt) {
  std::chrono::milliseconds waited{0};
  for (int retry = 0;; ++retry) {
    BI_TRY_ASSIGN(net::HttpResponse response, attempt());
    if (!snapshot_not_visible_yet(response)) {
      return response;
    }
    const auto d = m_policy.delay(retry, waited);
    if (d.count() <= 0 || interrupted()) {
      spdlog::warn("{}: still not visible after waiting {:.1f} s; giving up", m_what,
                   static_cast<double>(waited.count()) / 1000.0);
      return response;
    }
    if (!m_logged.exchange(true)) {
      // Only the status and the operation: the request (signed headers) is never logged.
      spdlog::info("{}: HTTP {}, snapshot not visible yet (EBS eventual consistency); retrying for up to {} s", m_what,
                   response.status, std::chrono::duration_cast<std::chrono::seconds>(m_policy.max_total).count());
    }
    m_retries.fetch_add(1);
    m_sleep(d);
    waited += d;
  }
}

} // namespace bi::registration
