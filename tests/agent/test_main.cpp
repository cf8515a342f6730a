#define CATCH_CONFIG_MAIN
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

#include "test_support.hpp"

namespace {

// Deletes a test case's directories only when it passed, so failures leave their logs.
class TestDirectoryListener : public Catch::TestEventListenerBase {
public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    agent_test::finish_test_directories(stats.totals.assertions.failed == 0 && stats.totals.testCases.failed == 0);
  }
};

} // namespace

CATCH_REGISTER_LISTENER(TestDirectoryListener)
