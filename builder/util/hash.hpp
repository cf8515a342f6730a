#pragma once
// Content hashes (OpenSSL EVP). Cache keys, manifests and upload checks all use these.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "util/expected.hpp"

namespace bi {

enum class HashAlgorithm { sha256, sha512 };

// Incremental hasher; hex digest on finish().
class Hasher {
public:
  explicit Hasher(HashAlgorithm algorithm = HashAlgorithm::sha256);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(std::string_view data);
  // A length-prefixed field, so ("ab","c") and ("a","bc") hash differently.
  void field(std::string_view name, std::string_view value);
  std::string finish();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

std::string sha256_hex(std::string_view data);

struct FileDigests {
  std::string sha256;
  std::string sha512;
};
// Both digests in one read of the file.
Expected<FileDigests> hash_file(const std::filesystem::path& path);
Expected<std::string> sha256_file(const std::filesystem::path& path);

// A hash of a directory tree: paths, types, modes, symlink targets and file contents,
// in sorted order, so it is stable across machines and checkouts.
Expected<std::string> hash_tree(const std::filesystem::path& root);

} // namespace bi
