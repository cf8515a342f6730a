#pragma once
// RAII over the libguestfs C API. Every failing call becomes an Error naming the operation
// and the drive; appliance launches are counted because each costs ~11 s under TCG.

#include <filesystem>
#include <string>
#include <vector>

#include "util/expected.hpp"

struct guestfs_h;

namespace bi {

class GuestfsHandle {
public:
  // `use_tcg` forces software emulation (nested KVM is unusable on many CI hosts).
  static Expected<GuestfsHandle> create(bool use_tcg);
  GuestfsHandle(GuestfsHandle&& other) noexcept;
  GuestfsHandle& operator=(GuestfsHandle&&) = delete;
  GuestfsHandle(const GuestfsHandle&) = delete;
  ~GuestfsHandle();

  Expected<void> add_drive(const std::filesystem::path& image, const std::string& format, bool readonly);
  Expected<void> launch();
  Expected<void> mount(const std::string& device, const std::string& mountpoint);
  Expected<void> mount_ro(const std::string& device, const std::string& mountpoint);
  Expected<void> extlinux(const std::string& directory);
  Expected<void> mkdir_p(const std::string& path);
  Expected<std::string> read_file(const std::string& path);
  Expected<std::vector<std::string>> ls(const std::string& dir);
  Expected<std::vector<std::string>> find(const std::string& dir);
  Expected<std::vector<std::string>> list_filesystems_labels();
  bool exists(const std::string& path);
  bool is_dir(const std::string& path);
  bool is_symlink(const std::string& path);
  Expected<std::string> readlink(const std::string& path);
  struct Stat {
    long long mode = 0;
    long long size = 0;
    long long uid = 0;
  };
  Expected<Stat> lstat(const std::string& path);
  // e2fsck -fn style check; returns fsck's status (0 = clean).
  Expected<int> fsck(const std::string& fstype, const std::string& device);
  // The root device of the (one) operating system on the disk, and its mountpoints
  // (mountpoint -> device), shortest first so they can be mounted in order.
  Expected<std::string> inspect_root();
  Expected<std::vector<std::pair<std::string, std::string>>> mountpoints(const std::string& root);
  // The tree under `dir` as a tar file on the host (numeric owners, xattrs kept).
  Expected<void> tar_out(const std::string& dir, const std::filesystem::path& tarfile);
  Expected<void> umount_all();
  Expected<void> shutdown();

  // Launches made by this process so far.
  static int launch_count();

private:
  explicit GuestfsHandle(guestfs_h* g) : m_g(g) {}
  Error error(const std::string& operation, const std::string& object) const;
  guestfs_h* m_g = nullptr;
  std::string m_drive;
};

} // namespace bi
