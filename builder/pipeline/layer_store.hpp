#pragma once
// The content-addressed layer cache. An entry is `<root>/layers/<kind>-<key>/` with the
// layer under `content/` and `meta.json` beside it. Entries are built in a staging dir and
// renamed into place when complete, so a killed build never leaves a usable partial entry.
// On use an entry's index (every path, type, mode, owner, size) is checked; `verify` also
// re-hashes the content.

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

class RemoteCache;
struct RemoteStats;

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

  // With a remote cache, a local miss is looked up there (downloaded, verified, installed
  // atomically) before building, and a layer built here is published (remote_cache.hpp).
  // Without `fetch` (--no-cache), layers are only published, never downloaded.
  void set_remote(RemoteCache* remote, bool fetch = true) {
    m_remote = remote;
    m_remote_fetch = fetch;
  }

  using BuildFn = std::function<Expected<void>(const fs::path& content)>;
  enum class Source { local, remote, built };
  struct Result {
    fs::path content;
    bool hit = false; // not built here (local or remote)
    Source source = Source::built;
  };
  // Returns the entry, building it with `build` into an empty `content` dir when absent.
  // Concurrent callers for the same layer wait on a lock instead of building twice.
  Expected<Result> get_or_build(const std::string& kind, const std::string& key, const BuildFn& build);

  // What this store did with the remote cache, and how many layers it built.
  RemoteStats remote_stats() const;
  int layers_built() const { return m_built.load(); }

  std::vector<LayerInfo> list() const;
  struct VerifyResult {
    LayerInfo layer;
    bool ok = false;
    std::string problem;
  };
  std::vector<VerifyResult> verify(bool deep) const;
  // Removes every entry whose key is not in `keep`; returns the bytes freed.
  std::uint64_t gc(const std::vector<std::string>& keep);

private:
  fs::path entry_dir(const std::string& kind, const std::string& key) const;
  fs::path m_root;
  RemoteCache* m_remote = nullptr;
  bool m_remote_fetch = true;
  std::atomic<int> m_built{0};
  std::atomic<int> m_remote_hits{0}, m_remote_misses{0}, m_remote_uploads{0}, m_remote_corrupt{0};
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
