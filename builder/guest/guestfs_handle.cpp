#include "guest/guestfs_handle.hpp"

#include <guestfs.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include <spdlog/spdlog.h>

namespace bi {

namespace {
std::atomic<int> g_launches{0};

std::vector<std::string> take_strings(char** list) {
  std::vector<std::string> out;
  if (list == nullptr) {
    return out;
  }
  for (char** p = list; *p != nullptr; ++p) {
    out.emplace_back(*p);
    ::free(*p);
  }
  ::free(list);
  return out;
}
} // namespace

int GuestfsHandle::launch_count() { return g_launches.load(); }

Expected<GuestfsHandle> GuestfsHandle::create(bool use_tcg) {
  guestfs_h* g = guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT);
  if (g == nullptr) {
    return fail("libguestfs", "guestfs_create failed (is libguestfs0 installed?)", ExitCode::host_missing);
  }
  // Our own error reporting; libguestfs would otherwise print to stderr itself.
  guestfs_set_error_handler(g, nullptr, nullptr);
  if (guestfs_parse_environment(g) != 0) {
    std::string msg = guestfs_last_error(g) ? guestfs_last_error(g) : "unknown";
    guestfs_close(g);
    return fail("libguestfs", "bad LIBGUESTFS_* environment: " + msg, ExitCode::bad_input);
  }
  if (use_tcg) {
    const char* settings[] = {"force_tcg", nullptr};
    guestfs_set_backend_settings(g, const_cast<char* const*>(settings));
  }
  return GuestfsHandle(g);
}

GuestfsHandle::GuestfsHandle(GuestfsHandle&& other) noexcept : m_g(other.m_g), m_drive(std::move(other.m_drive)) {
  other.m_g = nullptr;
}

GuestfsHandle::~GuestfsHandle() {
  if (m_g != nullptr) {
    // Closing shuts the appliance down; errors here have nowhere useful to go.
    guestfs_shutdown(m_g);
    guestfs_close(m_g);
  }
}

Error GuestfsHandle::error(const std::string& operation, const std::string& object) const {
  const char* last = guestfs_last_error(m_g);
  return make_error(object.empty() ? m_drive : object,
                    "libguestfs " + operation + " failed: " + (last ? last : "unknown error"));
}

Expected<void> GuestfsHandle::add_drive(const std::filesystem::path& image, const std::string& format, bool readonly) {
  m_drive = image.string();
  if (guestfs_add_drive_opts(m_g, image.c_str(), GUESTFS_ADD_DRIVE_OPTS_FORMAT, format.c_str(),
                             GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly ? 1 : 0, -1) != 0) {
    return Unexpected{error("add_drive", image.string())};
  }
  return Ok{};
}

Expected<void> GuestfsHandle::launch() {
  const auto start = std::chrono::steady_clock::now();
  ++g_launches;
  spdlog::debug("libguestfs: launching appliance for {}", m_drive);
  if (guestfs_launch(m_g) != 0) {
    return Unexpected{error("launch", "")};
  }
  spdlog::debug("libguestfs: appliance up in {:.1f} s",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return Ok{};
}

Expected<void> GuestfsHandle::mount(const std::string& device, const std::string& mountpoint) {
  if (guestfs_mount(m_g, device.c_str(), mountpoint.c_str()) != 0) {
    return Unexpected{error("mount " + device, "")};
  }
  return Ok{};
}

Expected<void> GuestfsHandle::mount_ro(const std::string& device, const std::string& mountpoint) {
  if (guestfs_mount_ro(m_g, device.c_str(), mountpoint.c_str()) != 0) {
    return Unexpected{error("mount_ro " + device, "")};
  }
  return Ok{};
}

Expected<void> GuestfsHandle::extlinux(const std::string& directory) {
  if (guestfs_extlinux(m_g, directory.c_str()) != 0) {
    return Unexpected{error("extlinux " + directory, "")};
  }
  return Ok{};
}

Expected<void> GuestfsHandle::mkdir_p(const std::string& path) {
  if (guestfs_mkdir_p(m_g, path.c_str()) != 0) {
    return Unexpected{error("mkdir_p " + path, "")};
  }
  return Ok{};
}

Expected<std::string> GuestfsHandle::read_file(const std::string& path) {
  size_t size = 0;
  char* data = guestfs_read_file(m_g, path.c_str(), &size);
  if (data == nullptr) {
    return Unexpected{error("read_file " + path, "")};
  }
  std::string out(data, size);
  ::free(data);
  return out;
}

Expected<std::vector<std::string>> GuestfsHandle::ls(const std::string& dir) {
  char** list = guestfs_ls(m_g, dir.c_str());
  if (list == nullptr) {
    return Unexpected{error("ls " + dir, "")};
  }
  return take_strings(list);
}

Expected<std::vector<std::string>> GuestfsHandle::find(const std::string& dir) {
  char** list = guestfs_find(m_g, dir.c_str());
  if (list == nullptr) {
    return Unexpected{error("find " + dir, "")};
  }
  return take_strings(list);
}

Expected<std::vector<std::string>> GuestfsHandle::list_filesystems_labels() {
  char** list = guestfs_list_filesystems(m_g);
  if (list == nullptr) {
    return Unexpected{error("list_filesystems", "")};
  }
  auto pairs = take_strings(list);
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
    char* label = guestfs_vfs_label(m_g, pairs[i].c_str());
    out.push_back(pairs[i] + "=" + pairs[i + 1] + ":" + (label ? label : ""));
    ::free(label);
  }
  return out;
}

bool GuestfsHandle::exists(const std::string& path) { return guestfs_exists(m_g, path.c_str()) == 1; }
bool GuestfsHandle::is_dir(const std::string& path) { return guestfs_is_dir(m_g, path.c_str()) == 1; }
bool GuestfsHandle::is_symlink(const std::string& path) { return guestfs_is_symlink(m_g, path.c_str()) == 1; }

Expected<std::string> GuestfsHandle::readlink(const std::string& path) {
  char* target = guestfs_readlink(m_g, path.c_str());
  if (target == nullptr) {
    return Unexpected{error("readlink " + path, "")};
  }
  std::string out(target);
  ::free(target);
  return out;
}

Expected<GuestfsHandle::Stat> GuestfsHandle::lstat(const std::string& path) {
  struct guestfs_statns* st = guestfs_lstatns(m_g, path.c_str());
  if (st == nullptr) {
    return Unexpected{error("lstat " + path, "")};
  }
  Stat out{st->st_mode, st->st_size, st->st_uid};
  guestfs_free_statns(st);
  return out;
}

Expected<int> GuestfsHandle::fsck(const std::string& fstype, const std::string& device) {
  int r = guestfs_fsck(m_g, fstype.c_str(), device.c_str());
  if (r < 0) {
    return Unexpected{error("fsck " + device, "")};
  }
  return r;
}

Expected<std::string> GuestfsHandle::inspect_root() {
  char** roots = guestfs_inspect_os(m_g);
  if (roots == nullptr) {
    return Unexpected{error("inspect_os", "")};
  }
  auto list = take_strings(roots);
  if (list.size() != 1) {
    return fail(m_drive, "expected one operating system in the image, found " + std::to_string(list.size()),
                ExitCode::bad_input);
  }
  return list[0];
}

Expected<std::vector<std::pair<std::string, std::string>>> GuestfsHandle::mountpoints(const std::string& root) {
  char** pairs = guestfs_inspect_get_mountpoints(m_g, root.c_str());
  if (pairs == nullptr) {
    return Unexpected{error("inspect_get_mountpoints", "")};
  }
  auto flat = take_strings(pairs);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i + 1 < flat.size(); i += 2) {
    out.emplace_back(flat[i], flat[i + 1]);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
  return out;
}

Expected<void> GuestfsHandle::tar_out(const std::string& dir, const std::filesystem::path& tarfile) {
  if (guestfs_tar_out_opts(m_g, dir.c_str(), tarfile.c_str(), GUESTFS_TAR_OUT_OPTS_NUMERICOWNER, 1,
                           GUESTFS_TAR_OUT_OPTS_XATTRS, 1, GUESTFS_TAR_OUT_OPTS_ACLS, 1, -1) != 0) {
    return Unexpected{error("tar_out " + dir, "")};
  }
  return Ok{};
}

Expected<void> GuestfsHandle::umount_all() {
  if (guestfs_umount_all(m_g) != 0) {
    return Unexpected{error("umount_all", "")};
  }
  return Ok{};
}

Expected<void> GuestfsHandle::shutdown() {
  if (guestfs_shutdown(m_g) != 0) {
    return Unexpected{error("shutdown", "")};
  }
  return Ok{};
}

} // namespace bi
