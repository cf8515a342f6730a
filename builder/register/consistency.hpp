#pragma once
// EBS and EC2 are eventually consistent: right after StartSnapshot, PutSnapshotBlock and
// CompleteSnapshot may answer 404 ResourceNotFoundException ("snapshot does not exist"),
// and DescribeSnapshots / RegisterImage may answer InvalidSnapshot.NotFound for a snapshot
// that exists. The EBS team's advice (coldsnap does the same): wait and retry, for up to
// about two minutes. This is separate from the HTTP retry layer (throttling, 5xx), which
// gives up after a few seconds.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "net/http.hpp"
#include "util/expected.hpp"

namespace bi::registration {

// Whether an answer means "this snapshot is not visible yet" (and so is worth waiting for).
bool snapshot_not_visible_yet(const net::HttpResponse& response);

struct ConsistencyPolicy {
  std::chrono::milliseconds first_delay{500};
  std::chrono::milliseconds max_delay{16000};
  std::chrono::milliseconds max_total{120000}; // the sum of all waits of one operation
  // BUILD_IMAGE_EBS_LAG_SECONDS (whole seconds, 0..3600) sets max_total; default 120 s.
  static Expected<ConsistencyPolicy> from_env(const std::map<std::string, std::string>& env);
  // The wait before retry number `retry` (0-based) when `waited` has been waited so far;
  // zero once the bound is spent (then the operation gives up).
  std::chrono::milliseconds delay(int retry, std::chrono::milliseconds waited) const;
};

// Retries one kind of call (`what`, e.g. "ebs PutSnapshotBlock snap-1") while its answer is
// snapshot_not_visible_yet, with the policy's backoff; returns the first other answer, or the
// last lagging one when the bound is spent (the caller reports it as before). Logs once per
// object the first time it waits, not per retry or per worker. Thread-safe.
class ConsistencyWait {
public:
  using Sleep = std::function<void(std::chrono::milliseconds)>;
  ConsistencyWait(std::string what, ConsistencyPolicy policy, Sleep sleep = {});
  Expected<net::HttpResponse> run(const std::function<Expected<net::HttpResponse>()>& attempt);
  int retries() const { return m_retries.load(); }

private:
  std::string m_what;
  ConsistencyPolicy m_policy;
  Sleep m_sleep;
  std::atomic<bool> m_logged{false};
  std::atomic<int> m_retries{0};
};

} // namespace bi::registration
