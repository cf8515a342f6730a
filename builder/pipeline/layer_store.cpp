#include "pipeline/layer_store.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "pipeline/remote_cache.hpp"
#include "rootfs/rootfs.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/time.hpp"

namespace bi {

fs::path default_cache_dir() {
  if (const char* c = std::getenv("BUILD_IMAGE_CACHE"); c && *c) {
    return c;
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    return fs::path(x) / "build-image";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/var/cache") / ".cache" / "build-image";
}

Expected<TreeIndex> index_tree(const fs::path& root, bool with_content) {
  std::error_code ec;
  std::vector<fs::path> entries;
  entries.push_back(root);
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec) {
    return fail(root.string(), "cannot list layer: " + ec.message());
  }
  std::sort(entries.begin(), entries.end());
  Hasher index;
  Hasher content;
  TreeIndex out;
  for (const auto& p : entries) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      return fail(p.string(), std::string("cannot stat: ") + std::strerror(errno));
    }
    std::string link;
    if (S_ISLNK(st.st_mode)) {
      link = fs::read_symlink(p, ec).string();
    }
    const long long size = S_ISREG(st.st_mode) ? static_cast<long long>(st.st_size) : 0;
    const std::string line = fmt::format("{}\t{:o}\t{}\t{}\t{}\t{}\n", p.lexically_relative(root).generic_string(),
                                         st.st_mode, st.st_uid, st.st_gid, size, link);
    index.update(line);
    out.bytes += static_cast<std::uint64_t>(size);
    if (with_content) {
      content.update(line);
      if (S_ISREG(st.st_mode)) {
        BI_TRY_ASSIGN(std::string digest, sha256_file(p));
        content.update(digest);
      }
    }
  }
  out.index_sha256 = index.finish();
  out.content_sha256 = with_content ? content.finish() : "";
  return out;
}

LayerStore::LayerStore(fs::path root) : m_root(std::move(root)) {}

fs::path LayerStore::entry_dir(const std::string& kind, const std::string& key) const {
  return m_root / "layers" / (kind + "-" + key);
}

std::optional<fs::path> LayerStore::lookup(const std::string& kind, const std::string& key) {
  const fs::path dir = entry_dir(kind, key);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return std::nullopt;
  }
  std::string problem;
  auto meta_text = read_file(dir / "meta.json");
  if (!meta_text) {
    problem = "meta.json missing";
  } else {
    try {
      auto meta = nlohmann::json::parse(*meta_text);
      auto idx = index_tree(dir / "content", false);
      if (!idx) {
        problem = idx.error().detail;
      } else if (meta.at("index_sha256").get<std::string>() != idx->index_sha256) {
        problem = "content does not match its index (files changed, added or removed)";
      }
    } catch (const std::exception& e) {
      problem = std::string("meta.json unreadable: ") + e.what();
    }
  }
  if (!problem.empty()) {
    spdlog::warn("cache: {} layer {} is corrupt ({}); rebuilding it", kind, key.substr(0, 12), problem);
    const fs::path trash = m_root / "tmp" / ("corrupt-" + kind + "-" + key);
    fs::create_directories(m_root / "tmp", ec);
    remove_tree(trash);
    fs::rename(dir, trash, ec);
    remove_tree(trash);
    return std::nullopt;
  }
  return dir / "content";
}

namespace {

// Free space a layer build needs in the cache before it starts. A base layer is ~460 MiB and
// a system layer ~530 MiB here, plus what apt downloads on the way; without this check a
// nearly full cache made mmdebstrap crawl on with failing writes instead of failing.
std::uintmax_t min_free_mib(const std::string& kind) { return kind == "bootloader" ? 128 : 1024; }

Expected<void> check_free_space(const fs::path& dir, const std::string& kind) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    return {}; // not knowing is no reason to refuse; the build reports real write errors
  }
  const std::uintmax_t free_mib =
      static_cast<std::uintmax_t>(st.f_bavail) * st.f_frsize / (std::uintmax_t{1024} * 1024);
  if (free_mib < min_free_mib(kind)) {
    return fail(dir.parent_path().string(),
                fmt::format("no space to build the {} layer: {} MiB free in the cache, at least {} MiB needed", kind,
                            free_mib, min_free_mib(kind)),
                ExitCode::host_missing);
  }
  return {};
}

// The staging folders of one layer under tmp/: "<kind>-<key>-XXXXXX" (a build) and
// "<kind>-<key>-remote-XXXXXX" (a download).
std::string staging_prefix(const std::string& kind, const std::string& key) { return kind + "-" + key + "-"; }

// Called under the layer's lock, so no other build of this layer is running: a staging
// folder of it is what a killed build (SIGKILL, power loss) left. Other layers' folders
// may belong to live builds and are left alone.
void remove_leftovers(const fs::path& tmp, const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) {
      std::uint64_t bytes = 0;
      for (const auto& [folder, folder_bytes] : tree_sizes(entry.path())) {
        bytes += folder_bytes;
      }
      spdlog::info("removing {} ({:.1f} MiB) left by an interrupted build", entry.path().string(),
                   static_cast<double>(bytes) / (1024.0 * 1024.0));
      remove_tree(entry.path());
    }
  }
}

} // namespace

Expected<LayerStore::Result> LayerStore::get_or_build(const std::string& kind, const std::string& key,
                                                      const BuildFn& build) {
  std::error_code ec;
  fs::create_directories(m_root / "locks", ec);
  fs::create_directories(m_root / "layers", ec);
  fs::create_directories(m_root / "tmp", ec);
  if (ec) {
    return fail(m_root.string(), "cannot create the cache: " + ec.message(), ExitCode::host_missing);
  }
  BI_TRY_ASSIGN(FileLock lock, FileLock::acquire(m_root / "locks" / (kind + "-" + key + ".lock")));
  remove_leftovers(m_root / "tmp", staging_prefix(kind, key));
  if (auto hit = lookup(kind, key)) {
    // Seeds a remote that lacks the layer (a new bucket, a layer built before --cache-url).
    if (m_remote != nullptr &&
        m_remote->publish(kind, key, entry_dir(kind, key), tmp_dir(), true) == RemoteCache::Publish::uploaded) {
      ++m_remote_uploads;
    }
    return Result{*hit, true, Source::local};
  }
  if (m_remote != nullptr && m_remote_fetch && m_remote->available()) {
    BI_TRY_ASSIGN(TempDir download, TempDir::create(m_root / "tmp", staging_prefix(kind, key) + "remote-"));
    switch (m_remote->fetch(kind, key, download.path(), m_root / "tmp")) {
    case RemoteCache::Fetch::hit: {
      const fs::path final_dir = entry_dir(kind, key);
      fs::rename(download.path(), final_dir, ec);
      if (ec) {
        return fail(final_dir.string(), "cannot move the downloaded layer into the cache: " + ec.message());
      }
      ::sync();
      ++m_remote_hits;
      return Result{final_dir / "content", true, Source::remote};
    }
    case RemoteCache::Fetch::corrupt:
      ++m_remote_corrupt;
      ++m_remote_misses;
      break;
    case RemoteCache::Fetch::miss:
      ++m_remote_misses;
      break;
    case RemoteCache::Fetch::unavailable:
      break;
    }
  }
  BI_TRY(check_free_space(m_root / "tmp", kind));
  BI_TRY_ASSIGN(TempDir staging, TempDir::create(m_root / "tmp", staging_prefix(kind, key)));
  const fs::path content = staging.path() / "content";
  fs::create_directories(content, ec);
  auto built = build(content);
  if (!built) {
    return Unexpected{built.error()};
  }
  BI_TRY_ASSIGN(TreeIndex idx, index_tree(content, true));
  nlohmann::json meta = {{"kind", kind},
                         {"key", key},
                         {"created", utc_timestamp()},
                         {"bytes", idx.bytes},
                         {"index_sha256", idx.index_sha256},
                         {"content_sha256", idx.content_sha256}};
  BI_TRY(write_file_atomic(staging.path() / "meta.json", meta.dump(2) + "\n"));
  const fs::path final_dir = entry_dir(kind, key);
  fs::rename(staging.path(), final_dir, ec);
  if (ec) {
    return fail(final_dir.string(), "cannot move the layer into the cache: " + ec.message());
  }
  ::sync();
  ++m_built;
  if (m_remote != nullptr &&
      m_remote->publish(kind, key, final_dir, tmp_dir(), false) == RemoteCache::Publish::uploaded) {
    ++m_remote_uploads;
  }
  return Result{final_dir / "content", false, Source::built};
}

RemoteStats LayerStore::remote_stats() const {
  RemoteStats s;
  s.hits = m_remote_hits.load();
  s.misses = m_remote_misses.load();
  s.uploads = m_remote_uploads.load();
  s.corrupt = m_remote_corrupt.load();
  return s;
}

std::vector<LayerInfo> LayerStore::list() const {
  std::vector<LayerInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(m_root / "layers", ec)) {
    LayerInfo info;
    info.dir = e.path();
    const std::string name = e.path().filename().string();
    const auto dash = name.rfind('-');
    info.kind = dash == std::string::npos ? name : name.substr(0, dash);
    info.key = dash == std::string::npos ? "" : name.substr(dash + 1);
    if (auto meta_text = read_file(e.path() / "meta.json")) {
      try {
        auto meta = nlohmann::json::parse(*meta_text);
        info.bytes = meta.value("bytes", 0ull);
        info.created = meta.value("created", "");
      } catch (const std::exception&) {
      }
    }
    out.push_back(info);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.dir < b.dir; });
  return out;
}

std::vector<LayerStore::VerifyResult> LayerStore::verify(bool deep) const {
  std::vector<VerifyResult> out;
  for (const auto& layer : list()) {
    VerifyResult r{layer, false, ""};
    auto meta_text = read_file(layer.dir / "meta.json");
    if (!meta_text) {
      r.problem = "meta.json missing";
      out.push_back(r);
      continue;
    }
    try {
      auto meta = nlohmann::json::parse(*meta_text);
      auto idx = index_tree(layer.dir / "content", deep);
      if (!idx) {
        r.problem = idx.error().detail;
      } else if (meta.at("index_sha256").get<std::string>() != idx->index_sha256) {
        r.problem = "index mismatch (files changed, added or removed)";
      } else if (deep && meta.at("content_sha256").get<std::string>() != idx->content_sha256) {
        r.problem = "content hash mismatch (file bytes changed)";
      } else {
        r.ok = true;
      }
    } catch (const std::exception& e) {
      r.problem = std::string("meta.json unreadable: ") + e.what();
    }
    out.push_back(r);
  }
  return out;
}

std::uint64_t LayerStore::gc(const std::vector<std::string>& keep) {
  std::uint64_t freed = 0;
  for (const auto& layer : list()) {
    if (std::find(keep.begin(), keep.end(), layer.key) == keep.end()) {
      freed += layer.bytes;
      remove_tree(layer.dir);
    }
  }
  remove_tree(m_root / "tmp");
  return freed;
}

} // namespace bi
