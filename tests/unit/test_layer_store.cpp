// The layer cache: atomic entries, corrupt entries detected and rebuilt, locks, gc.
#include <catch2/catch.hpp>

#include "pipeline/layer_store.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"

using namespace bi;

namespace {
LayerStore::BuildFn writer(int& calls, const std::string& content = "data") {
  return [&calls, content](const std::filesystem::path& dir) -> Expected<void> {
    ++calls;
    BI_TRY(replace_file(dir / "etc/file", content));
    std::filesystem::create_directories(dir / "empty");
    return Ok{};
  };
}
} // namespace

TEST_CASE("a layer is built once and then served from the cache") {
  test::Scratch s;
  LayerStore store(s.path());
  int calls = 0;
  auto first = store.get_or_build("base", "k1", writer(calls));
  REQUIRE(first);
  CHECK_FALSE(first->hit);
  auto second = store.get_or_build("base", "k1", writer(calls));
  REQUIRE(second);
  CHECK(second->hit);
  CHECK(calls == 1);
  CHECK(*read_file(second->content / "etc/file") == "data");
}

TEST_CASE("a failed build leaves no entry") {
  test::Scratch s;
  LayerStore store(s.path());
  auto r = store.get_or_build("base", "k2", [](const std::filesystem::path& dir) -> Expected<void> {
    (void)replace_file(dir / "half", "x");
    return fail("test", "boom");
  });
  REQUIRE_FALSE(r);
  CHECK_FALSE(store.lookup("base", "k2"));
  CHECK(store.list().empty());
}

TEST_CASE("what a killed build of a layer left in tmp/ goes with the next build of that layer") {
  test::Scratch s;
  // A SIGKILLed build cannot clean up: its staging and a half download stay behind.
  (void)s.write("tmp/base-k3-Ab12Cd/content/etc/big", std::string(4096, 'x'));
  (void)s.write("tmp/base-k3-remote-Zz9Yy8/archive", "partial");
  // Another layer's staging may be a live build (it holds its own lock): kept.
  (void)s.write("tmp/system-k4-Qq1Ww2/content/etc/file", "live");
  LayerStore store(s.path());
  int calls = 0;
  REQUIRE(store.get_or_build("base", "k3", writer(calls)));
  CHECK_FALSE(std::filesystem::exists(s.path() / "tmp/base-k3-Ab12Cd"));
  CHECK_FALSE(std::filesystem::exists(s.path() / "tmp/base-k3-remote-Zz9Yy8"));
  CHECK(std::filesystem::exists(s.path() / "tmp/system-k4-Qq1Ww2/content/etc/file"));
  // Also when the layer is already in the cache (the killed build was a second one).
  (void)s.write("tmp/base-k3-Ef34Gh/content/x", "y");
  auto hit = store.get_or_build("base", "k3", writer(calls));
  REQUIRE(hit);
  CHECK(hit->hit);
  CHECK_FALSE(std::filesystem::exists(s.path() / "tmp/base-k3-Ef34Gh"));
}

TEST_CASE("a changed, added or removed file makes the entry corrupt; it is rebuilt") {
  test::Scratch s;
  LayerStore store(s.path());
  int calls = 0;
  auto r = store.get_or_build("base", "k3", writer(calls));
  REQUIRE(r);
  SECTION("truncated file") { std::filesystem::resize_file(r->content / "etc/file", 1); }
  SECTION("removed file") { std::filesystem::remove(r->content / "etc/file"); }
  SECTION("added file") { (void)replace_file(r->content / "extra", "x"); }
  SECTION("meta.json missing (a partial entry)") { std::filesystem::remove(r->content.parent_path() / "meta.json"); }
  auto again = store.get_or_build("base", "k3", writer(calls));
  REQUIRE(again);
  CHECK_FALSE(again->hit);
  CHECK(calls == 2);
  CHECK(*read_file(again->content / "etc/file") == "data");
}

TEST_CASE("verify --deep catches same-size content changes that the index misses") {
  test::Scratch s;
  LayerStore store(s.path());
  int calls = 0;
  auto r = store.get_or_build("system", "k4", writer(calls, "abcd"));
  REQUIRE(r);
  {
    std::ofstream f(r->content / "etc/file", std::ios::binary | std::ios::in | std::ios::out);
    f << "ABCD";
  }
  auto shallow = store.verify(false);
  REQUIRE(shallow.size() == 1);
  CHECK(shallow[0].ok);
  auto deep = store.verify(true);
  REQUIRE(deep.size() == 1);
  CHECK_FALSE(deep[0].ok);
  CHECK(deep[0].problem == "content hash mismatch (file bytes changed)");
}

TEST_CASE("gc keeps the named keys only") {
  test::Scratch s;
  LayerStore store(s.path());
  int calls = 0;
  REQUIRE(store.get_or_build("base", "keep", writer(calls)));
  REQUIRE(store.get_or_build("base", "drop", writer(calls)));
  CHECK(store.gc({"keep"}) > 0);
  auto left = store.list();
  REQUIRE(left.size() == 1);
  CHECK(left[0].key == "keep");
}
