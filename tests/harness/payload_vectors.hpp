// The shared payload test vectors (tests/data/payload/README.md), read for one parser:
// each vector's input bytes and the result that parser must give (the grammar's, or the
// parser's recorded deviation). Header-only: used by the agent's and boot-test's tests.
#pragma once

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace payload_vectors {

struct Vector {
  std::string name;
  std::string input;    // the payload's exact bytes
  std::string expected; // sorted KEY=VALUE lines of the keys that have a value
  std::string expected_file;
  bool deviation = false; // expected comes from NAME.expected.<parser>
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::vector<Vector> load(const std::filesystem::path& dir, const std::string& parser) {
  std::vector<Vector> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".payload") {
      continue;
    }
    Vector v;
    v.name = entry.path().stem().string();
    v.input = read_file(entry.path());
    auto expected = dir / (v.name + ".expected");
    const auto own = dir / (v.name + ".expected." + parser);
    if (std::filesystem::exists(own)) {
      expected = own;
      v.deviation = true;
      std::printf("payload vector %s: %s deviates from the grammar (recorded in %s)\n", v.name.c_str(), parser.c_str(),
                  own.filename().c_str());
    }
    v.expected_file = expected.string();
    v.expected = read_file(expected);
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const Vector& a, const Vector& b) { return a.name < b.name; });
  return out;
}

// The keys that have a value (not empty, not "null"), as sorted KEY=VALUE lines.
template <class Map> std::string render(const Map& values) {
  std::map<std::string, std::string> sorted;
  for (const auto& [key, value] : values) {
    if (!value.empty() && value != "null") {
      sorted.emplace(key, value);
    }
  }
  std::ostringstream s;
  for (const auto& [key, value] : sorted) {
    s << key << '=' << value << '\n';
  }
  return s.str();
}

} // namespace payload_vectors
