// File helpers: atomic writes, replace-by-unlink (hard-link farms), sparse copies, sizes.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "test_support.hpp"
#include "util/fs.hpp"

using namespace bi;

TEST_CASE("replace_file never modifies a hard-linked original") {
  test::Scratch s;
  const auto original = s.write("cache/file", "cached");
  std::filesystem::create_directories(s.path() / "farm");
  std::filesystem::create_hard_link(original, s.path() / "farm/file");
  REQUIRE(replace_file(s.path() / "farm/file", "new", 0600));
  CHECK(*read_file(original) == "cached");
  CHECK(*read_file(s.path() / "farm/file") == "new");
  struct stat st {};
  ::stat((s.path() / "farm/file").c_str(), &st);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("write_file_atomic replaces content and leaves no temp files") {
  test::Scratch s;
  REQUIRE(write_file_atomic(s.path() / "a.json", "one"));
  REQUIRE(write_file_atomic(s.path() / "a.json", "two"));
  CHECK(*read_file(s.path() / "a.json") == "two");
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(s.path())) {
    ++n;
  }
  CHECK(n == 1);
}

TEST_CASE("copy_sparse_into copies data at an offset and keeps holes") {
  test::Scratch s;
  const auto src = s.path() / "src";
  {
    std::ofstream f(src, std::ios::binary);
    f << "head";
    f.seekp(8 << 20);
    f << "tail";
  }
  const auto dst = s.write("dst", std::string(16, 'x'));
  std::filesystem::resize_file(dst, 16 << 20);
  REQUIRE(copy_sparse_into(src, dst, 4096));
  auto data = *read_file(dst);
  CHECK(data.substr(0, 16) == std::string(16, 'x'));
  CHECK(data.substr(4096, 4) == "head");
  CHECK(data.substr(4096 + (8 << 20), 4) == "tail");
}

TEST_CASE("parse_size understands units and refuses junk") {
  CHECK(parse_size("4G") == (4ull << 30));
  CHECK(parse_size("512M") == (512ull << 20));
  CHECK(parse_size("10GiB") == (10ull << 30));
  CHECK(parse_size("1024") == 1024);
  CHECK(parse_size("4X") == 0);
  CHECK(parse_size("G") == 0);
  CHECK(parse_size("99999999999999999999G") == 0);
}

TEST_CASE("TempDir is removed unless kept") {
  std::filesystem::path kept;
  std::filesystem::path gone;
  {
    auto a = TempDir::create(std::filesystem::temp_directory_path(), "bi-test-");
    auto b = TempDir::create(std::filesystem::temp_directory_path(), "bi-test-");
    REQUIRE(a);
    REQUIRE(b);
    gone = a->path();
    kept = b->path();
    b->keep();
  }
  CHECK_FALSE(std::filesystem::exists(gone));
  CHECK(std::filesystem::exists(kept));
  std::filesystem::remove_all(kept);
}
