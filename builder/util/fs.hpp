#pragma once
// File system helpers with the guarantees the builder relies on: atomic replacement,
// locks, temp dirs that can be kept for debugging, sparse copies.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

Expected<std::string> read_file(const fs::path& path, std::uintmax_t max_bytes = 64u << 20);

// Writes to a temp file in the same directory, fsyncs, then renames over `path`: readers
// see the old or the new content, never a mix, also after a crash.
Expected<void> write_file_atomic(const fs::path& path, std::string_view content, unsigned mode = 0644);

// Unlinks `path` first, then writes: used on hard-link farms of cached layers so the
// cached inode is never modified.
Expected<void> replace_file(const fs::path& path, std::string_view content, unsigned mode = 0644);

// Copies data regions only (SEEK_DATA/SEEK_HOLE) from `src` into `dst` at `dst_offset`.
Expected<void> copy_sparse_into(const fs::path& src, const fs::path& dst, std::uint64_t dst_offset);

// Exclusive advisory lock on a file, held for the object's lifetime.
class FileLock {
public:
  static Expected<FileLock> acquire(const fs::path& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

private:
  explicit FileLock(int fd) : m_fd(fd) {}
  int m_fd = -1;
};

// A temp directory removed on destruction unless keep() was called (a failed build keeps
// its work dir and says where).
class TempDir {
public:
  static Expected<TempDir> create(const fs::path& parent, std::string_view prefix);
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();
  const fs::path& path() const { return m_path; }
  void keep() { m_keep = true; }

private:
  explicit TempDir(fs::path p) : m_path(std::move(p)) {}
  fs::path m_path;
  bool m_keep = false;
};

// Removes a tree, also one containing immutable-free files owned by root.
void remove_tree(const fs::path& path);

// Sets every mtime and atime newer than `epoch` in the tree to `epoch` (symlinks too), so
// filesystems made from the tree are byte-identical across builds.
Expected<void> clamp_mtimes(const fs::path& root, std::int64_t epoch);

// SOURCE_DATE_EPOCH from the environment, else a fixed default.
std::int64_t source_date_epoch();

// Parses sizes like 4G, 512M, 10GiB, 1073741824 into bytes. Returns 0 on bad input.
std::uint64_t parse_size(std::string_view text);

std::string human_bytes(std::uint64_t bytes);

} // namespace bi
