#pragma once
// The content-addressed layer cache. An entry is `<root>/layers/<kind>-<key>/` with the
// layer under `content/` and `meta.json` beside it. Entries are built in a staging dir and
// renamed into place when complete, so a killed build never leaves a usable partial entry.
// On use an entry's index (every path, type, mode, owner, size) is checked; `verify` also
// re-hashes the content.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

struct LayerInfo {
  std::string kind;
  std::string key;
  fs::path dir;
  std::uint64_t bytes = 0;
  std::string created;
};

class LayerStore {
public:
  explicit LayerStore(fs::path root);

  const fs::path& root() const { return m_root; }
  fs::path tmp_dir() const { return m_root / "tmp"; }

  // The content path of a valid entry, or nullopt. A corrupt entry is removed (and logged).
  std::optional<fs::path> lookup(const std::string& kind, const std::string& key);

  using BuildFn = std::function<Expected<void>(const fs::path& content)>;
  struct Result {
    fs::path content;
    bool hit = false;
  };
  // Returns the entry, building it with `build` into an empty `content` dir when absent.
  // Concurrent callers for the same layer wait on a lock instead of building twice.
  Expected<Result> get_or_build(const std::string& kind, const std::string& key, const BuildFn& build);

  std::vector<LayerInfo> list() const;
  struct VerifyResult {
    LayerInfo layer;
    bool ok = false;
    std::string problem;
  };
  std::vector<VerifyResult> verify(bool deep);
  // Removes every entry whose key is not in `keep`; returns the bytes freed.
  std::uint64_t gc(const std::vector<std::string>& keep);

private:
  fs::path entry_dir(const std::string& kind, const std::string& key) const;
  fs::path m_root;
};

struct TreeIndex {
  std::string index_sha256;   // paths, types, modes, owners, sizes, link targets
  std::string content_sha256; // the above plus every regular file's bytes
  std::uint64_t bytes = 0;
};
Expected<TreeIndex> index_tree(const fs::path& root, bool with_content);

// The default cache location: $BUILD_IMAGE_CACHE, else $XDG_CACHE_HOME/build-image,
// else ~/.cache/build-image.
fs::path default_cache_dir();

} // namespace bi
