#pragma once
// The shared remote layer cache (`--cache-url`): many CI machines share layers through
// S3-compatible object storage or a plain HTTP server.
//
// Objects, under the URL's prefix:
//   layers/<kind>-<key>/<sha256>.tar.zst   the layer's content/ as a tar (numeric owners,
//                                          modes, hard links, xattrs, sparse files), zstd
//   layers/<kind>-<key>.json               the index: archive name, size and sha256, and the
//                                          layer's tree digests (paths+modes+owners, content)
// A writer uploads the archive first and the index last, so a reader that finds an index
// finds a complete archive. The archive's name is its own hash: two machines publishing the
// same layer at once never overwrite each other's archive, and whichever index lands last
// points at a complete one (same key, same layer: either is right). A reader checks the
// archive's size and sha256 against the index before unpacking, and the unpacked tree
// against the index's digests before the layer is moved into the local cache; anything
// that does not match is reported, not used, and the layer is built and re-published.
// A remote that cannot be reached (or refuses us) is reported once; the build goes on with
// the local cache only.

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "net/object_store.hpp"
#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

struct RemoteStats {
  int hits = 0;    // layers downloaded and verified
  int misses = 0;  // asked, not there (or not usable: see corrupt)
  int uploads = 0; // layers published (built here, or local hits the remote lacked)
  int corrupt = 0; // remote entries that failed verification (counted in misses too)
};

class RemoteCache {
public:
  // Parses the URL and loads credentials (s3: env / AWS profile). Exit 2 on bad input.
  static Expected<std::shared_ptr<RemoteCache>> open(const std::string& url, const net::Env& env,
                                                     const net::ObjectStoreLimits& limits = {});

  static std::string index_name(const std::string& kind, const std::string& key);
  static std::string archive_name(const std::string& kind, const std::string& key, const std::string& sha256);

  enum class Fetch { hit, miss, corrupt, unavailable };
  // Downloads layer `kind`/`key` into the staging dir `entry` (content/ and meta.json, as a
  // local cache entry), verified; scratch files go to `tmp`.
  Fetch fetch(const std::string& kind, const std::string& key, const fs::path& entry, const fs::path& tmp);

  enum class Publish { uploaded, present, failed, unavailable };
  // Uploads the local entry `entry` (archive first, index last). With `only_if_missing`,
  // first asks whether the remote has it (one HEAD).
  Publish publish(const std::string& kind, const std::string& key, const fs::path& entry, const fs::path& tmp,
                  bool only_if_missing);

  bool available() const { return !m_unavailable.load(); }
  std::string describe() const { return m_url; }

private:
  RemoteCache(net::ObjectStore store, std::string url) : m_store(std::move(store)), m_url(std::move(url)) {}
  // Warns once (the first failure), then the remote is skipped for the rest of the run.
  void give_up(const Error& error);

  net::ObjectStore m_store;
  std::string m_url;
  std::atomic<bool> m_unavailable{false};
};

} // namespace bi
