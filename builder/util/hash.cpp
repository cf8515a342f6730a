#include "util/hash.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <openssl/evp.h>

namespace bi {

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Hasher::Hasher(HashAlgorithm algorithm) : m_impl(std::make_unique<Impl>()) {
  m_impl->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(m_impl->ctx, algorithm == HashAlgorithm::sha256 ? EVP_sha256() : EVP_sha512(), nullptr);
}

Hasher::~Hasher() { EVP_MD_CTX_free(m_impl->ctx); }

void Hasher::update(std::string_view data) { EVP_DigestUpdate(m_impl->ctx, data.data(), data.size()); }

void Hasher::field(std::string_view name, std::string_view value) {
  update(name);
  update(std::string_view("\0", 1));
  update(std::to_string(value.size()));
  update(std::string_view("\0", 1));
  update(value);
}

std::string Hasher::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(m_impl->ctx, md, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Hasher h;
  h.update(data);
  return h.finish();
}

Expected<FileDigests> hash_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(path.string(), std::string("cannot open: ") + std::strerror(errno));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Hasher h256(HashAlgorithm::sha256);
  Hasher h512(HashAlgorithm::sha512);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return fail(path.string(), std::string("read failed: ") + std::strerror(e));
    }
    if (n == 0) {
      break;
    }
    h256.update({buf.data(), static_cast<size_t>(n)});
    h512.update({buf.data(), static_cast<size_t>(n)});
  }
  ::close(fd);
  return FileDigests{h256.finish(), h512.finish()};
}

Expected<std::string> sha256_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(path.string(), std::string("cannot open: ") + std::strerror(errno));
  }
  Hasher h;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
    h.update({buf.data(), static_cast<size_t>(n)});
  }
  int e = errno;
  ::close(fd);
  if (n < 0) {
    return fail(path.string(), std::string("read failed: ") + std::strerror(e));
  }
  return h.finish();
}

Expected<std::string> hash_tree(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return fail(root.string(), "not a directory");
  }
  std::vector<fs::path> entries;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec) {
    return fail(root.string(), "cannot list: " + ec.message());
  }
  std::sort(entries.begin(), entries.end());
  Hasher h;
  for (const auto& p : entries) {
    const auto rel = fs::relative(p, root).generic_string();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      return fail(p.string(), std::string("cannot stat: ") + std::strerror(errno));
    }
    h.field("path", rel);
    // Only the executable bit matters across checkouts (umask differs).
    h.field("mode", (st.st_mode & S_IXUSR) ? "x" : "-");
    if (S_ISLNK(st.st_mode)) {
      h.field("symlink", fs::read_symlink(p, ec).string());
    } else if (S_ISREG(st.st_mode)) {
      BI_TRY_ASSIGN(std::string digest, sha256_file(p));
      h.field("file", digest);
    } else if (S_ISDIR(st.st_mode)) {
      h.field("dir", "");
    }
  }
  return h.finish();
}

} // namespace bi
