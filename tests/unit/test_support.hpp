#pragma once
// Shared helpers for unit tests: a per-test scratch dir that is kept when the test fails.

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

namespace test {

namespace fs = std::filesystem;

class Scratch {
public:
  Scratch() {
    const std::string test_name = Catch::getResultCapture().getCurrentTestName();
    std::string name;
    for (char c : test_name) {
      name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    }
    m_path = fs::temp_directory_path() / "build-image-unit" / name.substr(0, 60);
    fs::remove_all(m_path);
    fs::create_directories(m_path);
  }
  ~Scratch() {
    if (Catch::getResultCapture().lastAssertionPassed()) {
      std::error_code ec;
      fs::remove_all(m_path, ec);
    } else {
      (void)std::fprintf(stderr, "note: test data kept in %s\n", m_path.c_str());
    }
  }
  const fs::path& path() const { return m_path; }
  fs::path write(const std::string& rel, const std::string& content) const {
    fs::path p = m_path / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

private:
  fs::path m_path;
};

} // namespace test
