#include "cartridge/os_release.hpp"

#include <algorithm>
#include <sstream>

namespace bi {

const std::vector<OsRelease>& os_releases() {
  static const std::vector<OsRelease> releases = {
      {"debian-12", "12", "bookworm", "bookworm-security", "linux-image-cloud-amd64"},
      {"debian-13", "13", "trixie", "trixie-security", "linux-image-cloud-amd64"},
  };
  return releases;
}

const OsRelease& default_os_release() { return os_releases().front(); }

const OsRelease* find_os_release(std::string_view name) {
  const auto& all = os_releases();
  const auto it = std::find_if(all.begin(), all.end(), [&](const OsRelease& r) { return r.name == name; });
  return it == all.end() ? nullptr : &*it;
}

std::string os_release_names() {
  std::string out;
  for (const auto& r : os_releases()) {
    out += (out.empty() ? "" : ", ") + std::string(r.name);
  }
  return out;
}

namespace {

// "bookworm-updates" -> "trixie-updates" for target trixie; a suite of no known release
// (stable, a local repository's name) stays.
std::string rewrite_suite(const std::string& suite, const OsRelease& target) {
  for (const auto& r : os_releases()) {
    const std::string codename(r.suite);
    if (suite == codename || (suite.rfind(codename + "-", 0) == 0)) {
      return std::string(target.suite) + suite.substr(codename.size());
    }
  }
  return suite;
}

// Rewrites the whitespace-separated words of `line` from word index `first` to `last`
// (exclusive; npos = to the end), keeping every separator byte.
std::string rewrite_words(const std::string& line, size_t first, size_t last, const OsRelease& target) {
  std::string out;
  size_t index = 0;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
      out += line[i++];
      continue;
    }
    size_t end = line.find_first_of(" \t\r", i);
    if (end == std::string::npos) {
      end = line.size();
    }
    const std::string word = line.substr(i, end - i);
    out += (index >= first && index < last) ? rewrite_suite(word, target) : word;
    ++index;
    i = end;
  }
  return out;
}

} // namespace

std::string apt_sources_for_release(const std::string& sources, const OsRelease& target) {
  std::string out;
  size_t pos = 0;
  while (pos < sources.size()) {
    size_t nl = sources.find('\n', pos);
    const bool has_nl = nl != std::string::npos;
    if (!has_nl) {
      nl = sources.size();
    }
    std::string line = sources.substr(pos, nl - pos);
    const auto hash = line.find('#');
    const std::string body = line.substr(0, hash);
    const std::string comment = hash == std::string::npos ? "" : line.substr(hash);
    std::istringstream words(body);
    std::string first;
    words >> first;
    if (first == "Suites:") {
      line = rewrite_words(body, 1, std::string::npos, target) + comment;
    } else if (first == "deb" || first == "deb-src") {
      // deb [options] URI suite components...: the suite is the word after the URI.
      size_t index = 1;
      std::string w;
      words >> w;
      if (!w.empty() && w.front() == '[') {
        while (!w.empty() && w.back() != ']' && (words >> w)) {
          ++index;
        }
        ++index;
        words >> w;
      }
      // w is the URI (word `index`); the suite follows it.
      line = rewrite_words(body, index + 1, index + 2, target) + comment;
    }
    out += line;
    if (has_nl) {
      out += '\n';
    }
    pos = nl + 1;
  }
  return out;
}

} // namespace bi
