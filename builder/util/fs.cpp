#include "util/fs.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include <spdlog/fmt/fmt.h>

namespace bi {

namespace {
std::string errno_text() { return std::strerror(errno); }

Expected<void> write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail(path.string(), "write failed: " + errno_text(),
                  errno == ENOSPC ? ExitCode::host_missing : ExitCode::build_failed);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok{};
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}
} // namespace

Expected<std::string> read_file(const fs::path& path, std::uintmax_t max_bytes) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) {
    return fail(path.string(), "cannot read: " + ec.message());
  }
  if (size > max_bytes) {
    return fail(path.string(), fmt::format("file is too large ({} bytes, limit {})", size, max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(path.string(), "cannot open: " + errno_text());
  }
  std::string data(size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

Expected<void> write_file_atomic(const fs::path& path, std::string_view content, unsigned mode) {
  const fs::path tmp = path.parent_path() / (".tmp-" + path.filename().string() + "-" + random_suffix());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return fail(tmp.string(), "cannot create: " + errno_text(),
                errno == ENOSPC ? ExitCode::host_missing : ExitCode::build_failed);
  }
  auto written = write_all(fd, content, tmp);
  if (written && ::fsync(fd) != 0) {
    written = fail(tmp.string(), "fsync failed: " + errno_text());
  }
  ::fchmod(fd, mode);
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return written;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = errno_text();
    ::unlink(tmp.c_str());
    return fail(path.string(), "cannot rename into place: " + e);
  }
  return Ok{};
}

Expected<void> replace_file(const fs::path& path, std::string_view content, unsigned mode) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return fail(path.string(), "cannot remove: " + errno_text());
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    return fail(path.string(), "cannot create: " + errno_text());
  }
  auto written = write_all(fd, content, path);
  ::fchmod(fd, mode);
  ::close(fd);
  return written;
}

Expected<void> copy_sparse_into(const fs::path& src, const fs::path& dst, std::uint64_t dst_offset) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return fail(src.string(), "cannot open: " + errno_text());
  }
  int out = ::open(dst.c_str(), O_WRONLY | O_CLOEXEC);
  if (out < 0) {
    ::close(in);
    return fail(dst.string(), "cannot open: " + errno_text());
  }
  struct stat st {};
  ::fstat(in, &st);
  const off_t end = st.st_size;
  off_t pos = 0;
  std::vector<char> buf(1 << 20);
  Expected<void> result = Ok{};
  while (pos < end && result) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) {
      break; // only a hole remains
    }
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) {
      hole = end;
    }
    for (off_t p = data; p < hole;) {
      size_t want = static_cast<size_t>(std::min<off_t>(hole - p, static_cast<off_t>(buf.size())));
      ssize_t n = ::pread(in, buf.data(), want, p);
      if (n <= 0) {
        result = fail(src.string(), "read failed: " + errno_text());
        break;
      }
      ssize_t w = ::pwrite(out, buf.data(), static_cast<size_t>(n), static_cast<off_t>(dst_offset) + p);
      if (w != n) {
        result = fail(dst.string(), "write failed: " + errno_text(),
                      errno == ENOSPC ? ExitCode::host_missing : ExitCode::build_failed);
        break;
      }
      p += n;
    }
    pos = hole;
  }
  ::close(in);
  ::close(out);
  return result;
}

Expected<FileLock> FileLock::acquire(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return fail(path.string(), "cannot open lock file: " + errno_text());
  }
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      auto e = errno_text();
      ::close(fd);
      return fail(path.string(), "cannot lock: " + e);
    }
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }

FileLock::~FileLock() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Expected<TempDir> TempDir::create(const fs::path& parent, std::string_view prefix) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  std::string templ = (parent / (std::string(prefix) + "XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return fail(parent.string(), "cannot create temp dir: " + errno_text(),
                errno == ENOSPC ? ExitCode::host_missing : ExitCode::build_failed);
  }
  return TempDir(fs::path(templ));
}

TempDir::TempDir(TempDir&& other) noexcept : m_path(std::move(other.m_path)), m_keep(other.m_keep) {
  other.m_path.clear();
}

TempDir::~TempDir() {
  if (!m_path.empty() && !m_keep) {
    remove_tree(m_path);
  }
}

void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

Expected<void> clamp_mtimes(const fs::path& root, std::int64_t epoch) {
  std::error_code ec;
  std::vector<fs::path> paths{root};
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it); it.increment(ec)) {
    paths.push_back(it->path());
  }
  if (ec) {
    return fail(root.string(), "cannot list: " + ec.message());
  }
  const struct timespec times[2] = {{static_cast<time_t>(epoch), 0}, {static_cast<time_t>(epoch), 0}};
  for (const auto& p : paths) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0 && (st.st_mtime > epoch || st.st_atime > epoch)) {
      if (::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return fail(p.string(), std::string("cannot set times: ") + std::strerror(errno));
      }
    }
  }
  return Ok{};
}

std::int64_t source_date_epoch() {
  if (const char* v = std::getenv("SOURCE_DATE_EPOCH"); v && *v) {
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    if (end && *end == '\0' && n > 0) {
      return n;
    }
  }
  return 1700000000; // 2023-11-14, fixed so identical inputs give identical images
}

std::uint64_t parse_size(std::string_view text) {
  if (text.empty()) {
    return 0;
  }
  std::uint64_t value = 0;
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (value > (UINT64_MAX / 10)) {
      return 0;
    }
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) {
    return 0;
  }
  std::string unit(text.substr(i));
  std::uint64_t mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "KiB" || unit == "k") {
    mult = 1ull << 10;
  } else if (unit == "M" || unit == "MiB") {
    mult = 1ull << 20;
  } else if (unit == "G" || unit == "GiB") {
    mult = 1ull << 30;
  } else if (unit == "T" || unit == "TiB") {
    mult = 1ull << 40;
  } else {
    return 0;
  }
  if (value > UINT64_MAX / mult) {
    return 0;
  }
  return value * mult;
}

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

} // namespace bi
