// EBS/EC2 eventual consistency: which answers are waited for, the backoff and its bound.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "register/consistency.hpp"

using namespace bi;
using namespace bi::net;
using namespace bi::registration;
using namespace std::chrono_literals;

namespace {

HttpResponse answer(long status, std::string body, Headers headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

HttpResponse ebs_not_found() {
  return answer(404, R"({"__type":"ResourceNotFoundException","message":"The snapshot 'snap-1' does not exist."})",
                {{"x-amzn-ErrorType", "ResourceNotFoundException"}});
}

HttpResponse ec2_error(const std::string& code) {
  return answer(400,
                "<Response><Errors><Error><Code>" + code + "</Code><Message>m</Message></Error></Errors></Response>");
}

} // namespace

TEST_CASE("consistency: a snapshot not visible yet is waited for; other errors are not") {
  CHECK(snapshot_not_visible_yet(ebs_not_found()));
  // AWS's own form: the header carries a URL suffix, the body a Reason.
  CHECK(snapshot_not_visible_yet(
      answer(404, R"({"Message":"x","Reason":"SNAPSHOT_NOT_FOUND"})",
             {{"X-Amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/"}})));
  CHECK(snapshot_not_visible_yet(ec2_error("InvalidSnapshot.NotFound")));
  CHECK_FALSE(snapshot_not_visible_yet(answer(404, "<html>not found</html>")));
  CHECK_FALSE(snapshot_not_visible_yet(ec2_error("InvalidParameterValue")));
  CHECK_FALSE(snapshot_not_visible_yet(ec2_error("InvalidAMIName.Duplicate")));
  CHECK_FALSE(snapshot_not_visible_yet(
      answer(403, R"({"__type":"AccessDeniedException"})", {{"x-amzn-ErrorType", "AccessDeniedException"}})));
  CHECK_FALSE(snapshot_not_visible_yet(answer(400, R"({"__type":"ValidationException"})")));
  CHECK_FALSE(snapshot_not_visible_yet(answer(500, "ResourceNotFoundException")));
  CHECK_FALSE(snapshot_not_visible_yet(answer(201, "{}")));
}

TEST_CASE("consistency: exponential backoff, capped per wait, the sum bounded by the total") {
  ConsistencyPolicy p; // 0.5 s doubling to 16 s, 120 s in all
  std::vector<long> delays;
  std::chrono::milliseconds waited{0};
  for (int retry = 0; retry < 100; ++retry) {
    const auto d = p.delay(retry, waited);
    if (d.count() == 0) {
      break;
    }
    delays.push_back(static_cast<long>(d.count()));
    waited += d;
  }
  REQUIRE(delays.size() >= 7);
  CHECK(std::vector<long>(delays.begin(), delays.begin() + 7) ==
        std::vector<long>{500, 1000, 2000, 4000, 8000, 16000, 16000});
  CHECK(std::accumulate(delays.begin(), delays.end(), 0L) == 120000);
  CHECK(*std::max_element(delays.begin(), delays.end()) == 16000);
}

TEST_CASE("consistency: BUILD_IMAGE_EBS_LAG_SECONDS sets the bound") {
  CHECK(ConsistencyPolicy::from_env({})->max_total == 120s);
  CHECK(ConsistencyPolicy::from_env({{"BUILD_IMAGE_EBS_LAG_SECONDS", "7"}})->max_total == 7s);
  CHECK(ConsistencyPolicy::from_env({{"BUILD_IMAGE_EBS_LAG_SECONDS", "0"}})->max_total == 0s);
  for (const char* bad : {"x", "-1", "3601", "1.5"}) {
    auto r = ConsistencyPolicy::from_env({{"BUILD_IMAGE_EBS_LAG_SECONDS", bad}});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ExitCode::bad_input);
    CHECK(r.error().to_string() ==
          std::string("BUILD_IMAGE_EBS_LAG_SECONDS: '") + bad + "' is not a whole number of seconds from 0 to 3600");
  }
}

TEST_CASE("consistency: retries while lagging, then returns the first other answer") {
  ConsistencyPolicy p;
  p.max_total = 10s;
  std::vector<std::chrono::milliseconds> slept;
  auto sleep = [&](std::chrono::milliseconds d) { slept.push_back(d); };

  SECTION("visible after three lagging answers") {
    ConsistencyWait wait("ebs PutSnapshotBlock snap-1", p, sleep);
    int calls = 0;
    auto r = wait.run([&]() -> Expected<HttpResponse> { return ++calls <= 3 ? ebs_not_found() : answer(201, "{}"); });
    REQUIRE(r);
    CHECK(r->status == 201);
    CHECK(calls == 4);
    CHECK(wait.retries() == 3);
    CHECK(slept == std::vector<std::chrono::milliseconds>{500ms, 1000ms, 2000ms});
  }
  SECTION("never visible: gives up at the bound with the last answer") {
    ConsistencyWait wait("ec2 RegisterImage", p, sleep);
    int calls = 0;
    auto r = wait.run([&]() -> Expected<HttpResponse> {
      ++calls;
      return ec2_error("InvalidSnapshot.NotFound");
    });
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(slept == std::vector<std::chrono::milliseconds>{500ms, 1000ms, 2000ms, 4000ms, 2500ms});
    CHECK(calls == 6);
  }
  SECTION("another error is returned at once") {
    ConsistencyWait wait("ebs CompleteSnapshot snap-1", p, sleep);
    int calls = 0;
    auto r = wait.run([&]() -> Expected<HttpResponse> {
      ++calls;
      return ec2_error("InvalidParameterValue");
    });
    REQUIRE(r);
    CHECK(calls == 1);
    CHECK(slept.empty());
  }
  SECTION("a transport error is passed on") {
    ConsistencyWait wait("ebs PutSnapshotBlock snap-1", p, sleep);
    auto r = wait.run([&]() -> Expected<HttpResponse> { return fail("PUT http://127.0.0.1:1/x", "refused"); });
    REQUIRE_FALSE(r);
    CHECK(r.error().detail == "refused");
    CHECK(slept.empty());
  }
}
