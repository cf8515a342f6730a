#include "image/disk.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "guest/guestfs_handle.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

void put_le32(std::string& s, size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    s[at + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
}

Expected<void> pwrite_all(const fs::path& path, const std::string& data, std::uint64_t offset) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(path.string(), std::string("cannot open: ") + std::strerror(errno));
  }
  ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
  int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    return fail(path.string(), std::string("write failed: ") + std::strerror(e),
                e == ENOSPC ? ExitCode::host_missing : ExitCode::build_failed);
  }
  return Ok{};
}

Expected<void> create_sparse(const fs::path& path, std::uint64_t bytes) {
  std::error_code ec;
  fs::remove(path, ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return fail(path.string(), std::string("cannot create: ") + std::strerror(errno),
                errno == ENOSPC ? ExitCode::host_missing : ExitCode::build_failed);
  }
  int rc = ::ftruncate(fd, static_cast<off_t>(bytes));
  int e = errno;
  ::close(fd);
  if (rc != 0) {
    return fail(path.string(), std::string("cannot size: ") + std::strerror(e));
  }
  return Ok{};
}

// A UUID string derived from a seed, so the same plan gives the same filesystem UUIDs.
std::string uuid_from(const std::string& hex) {
  std::string h = hex;
  while (h.size() < 32) {
    h += "0";
  }
  h[12] = '4';
  h[16] = '8';
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4),
                     h.substr(20, 12));
}

Expected<void> run_mke2fs(const std::string& label, const std::string& uuid, std::uint64_t offset, std::uint64_t bytes,
                          const fs::path& disk, const fs::path* tree) {
  // 4 KiB blocks: mke2fs would pick 1 KiB for the small boot fs, which extlinux cannot read.
  std::vector<std::string> argv = {"mke2fs",
                                   "-q",
                                   "-F",
                                   "-t",
                                   "ext4",
                                   "-b",
                                   "4096",
                                   "-L",
                                   label,
                                   "-U",
                                   uuid,
                                   "-E",
                                   fmt::format("offset={},hash_seed={},root_owner=0:0", offset, uuid)};
  if (tree) {
    argv.push_back("-d");
    argv.push_back(tree->string());
  }
  argv.push_back(disk.string());
  argv.push_back(fmt::format("{}k", bytes / 1024));
  RunOptions opts;
  opts.timeout = std::chrono::seconds(1200);
  // Fixed timestamps in the superblock and inodes, for reproducible images.
  opts.extra_env["E2FSPROGS_FAKE_TIME"] = std::to_string(source_date_epoch());
  auto r = run_process(argv, opts);
  if (!r) {
    return Unexpected{r.error()};
  }
  if (!r->ok()) {
    const bool full = r->output.find("No space left") != std::string::npos ||
                      r->output.find("Could not allocate") != std::string::npos;
    return fail("mke2fs " + label,
                std::string(full ? "the filesystem does not fit (raise base.size): " : "failed: ") + r->tail(),
                full ? ExitCode::bad_input : ExitCode::build_failed);
  }
  return Ok{};
}

std::vector<std::uint32_t> parse_ranges(std::string_view text) {
  std::vector<std::uint32_t> out;
  size_t i = 0;
  auto number = [&](std::uint32_t& v) {
    const size_t start = i;
    v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      v = v * 10 + static_cast<std::uint32_t>(text[i] - '0');
      ++i;
    }
    return i > start;
  };
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) {
      ++i;
    }
    std::uint32_t a = 0;
    if (!number(a)) {
      break;
    }
    std::uint32_t b = a;
    if (i < text.size() && text[i] == '-') {
      ++i;
      if (!number(b)) {
        break;
      }
    }
    out.push_back(a);
    out.push_back(b);
  }
  return out;
}

// The GPT of a uefi or hybrid disk, with GUIDs derived from the plan (sgdisk would draw
// random ones).
Expected<void> write_gpt(const fs::path& disk, bool legacy_bootable, const std::string& seed, std::uint64_t root_offset,
                         std::uint64_t root_bytes) {
  const auto sector = [](std::uint64_t bytes) { return std::to_string(bytes / 512); };
  std::vector<std::string> argv = {
      "sgdisk",
      "--clear",
      "--disk-guid=" + uuid_from(sha256_hex(seed + "/disk").substr(0, 32)),
      "--new=1:" + sector(k_boot_offset) + ":" + sector(k_boot_offset + k_boot_bytes - 1),
      "--typecode=1:8300",
      "--change-name=1:boot",
      "--partition-guid=1:" + uuid_from(sha256_hex(seed + "/p1").substr(0, 32)),
      "--new=2:" + sector(k_esp_offset) + ":" + sector(k_esp_offset + k_esp_bytes - 1),
      "--typecode=2:ef00",
      "--change-name=2:ESP",
      "--partition-guid=2:" + uuid_from(sha256_hex(seed + "/p2").substr(0, 32)),
      "--new=3:" + sector(root_offset) + ":" + sector(root_offset + root_bytes - 1),
      "--typecode=3:8300",
      "--change-name=3:rootfs",
      "--partition-guid=3:" + uuid_from(sha256_hex(seed + "/p3").substr(0, 32)),
  };
  if (legacy_bootable) {
    argv.emplace_back("--attributes=1:set:2"); // gptmbr.bin boots the partition with this bit
  }
  argv.push_back(disk.string());
  BI_TRY(run_checked(argv));
  return Ok{};
}

} // namespace

std::vector<std::uint32_t> used_inodes_from_dumpe2fs(const std::string& dumpe2fs_output) {
  std::uint32_t count = 0;
  std::vector<std::uint32_t> free_ranges; // pairs
  std::istringstream in(dumpe2fs_output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Inode count:", 0) == 0) {
      count = static_cast<std::uint32_t>(std::stoul(line.substr(12)));
    } else if (line.rfind("  Free inodes: ", 0) == 0) {
      auto r = parse_ranges(std::string_view(line).substr(15));
      free_ranges.insert(free_ranges.end(), r.begin(), r.end());
    }
  }
  std::vector<bool> is_free(static_cast<size_t>(count) + 1, false);
  for (size_t i = 0; i + 1 < free_ranges.size(); i += 2) {
    for (std::uint32_t n = free_ranges[i]; n <= free_ranges[i + 1] && n <= count; ++n) {
      is_free[n] = true;
    }
  }
  std::vector<std::uint32_t> used;
  for (std::uint32_t n = 1; n <= count; ++n) {
    if (!is_free[n]) {
      used.push_back(n);
    }
  }
  return used;
}

Expected<void> pin_inode_times(const fs::path& disk, std::uint64_t offset, std::int64_t epoch) {
  const auto start = std::chrono::steady_clock::now();
  const std::string device = disk.string() + "?offset=" + std::to_string(offset);
  RunOptions opts;
  opts.timeout = std::chrono::seconds(300);
  opts.max_output_bytes = 64u << 20;
  BI_TRY_ASSIGN(RunResult info, run_checked({"dumpe2fs", device}, opts));
  const auto used = used_inodes_from_dumpe2fs(info.output);
  if (used.empty()) {
    return fail("dumpe2fs " + disk.string(), "no inode information in its output");
  }
  std::string commands;
  commands.reserve(used.size() * 64);
  for (const auto n : used) {
    commands += fmt::format("sif <{}> ctime @{}\nsif <{}> atime @{}\n", n, epoch, n, epoch);
  }
  const fs::path cmdfile = disk.parent_path() / "debugfs-times";
  BI_TRY(replace_file(cmdfile, commands));
  RunOptions dopts;
  dopts.timeout = std::chrono::seconds(600);
  dopts.extra_env["E2FSPROGS_FAKE_TIME"] = std::to_string(epoch);
  dopts.max_output_bytes = 1u << 20;
  auto r = run_checked({"debugfs", "-w", "-f", cmdfile.string(), device}, dopts);
  std::error_code ec;
  fs::remove(cmdfile, ec);
  if (!r) {
    return Unexpected{r.error()};
  }
  // debugfs reports bad commands on its output and still exits 0.
  for (const char* bad : {"Bad inode", "Invalid", "usage:", "Couldn't", "while "}) {
    if (r->output.find(bad) != std::string::npos) {
      return fail("debugfs", std::string("setting inode times failed: ") + r->tail(3));
    }
  }
  spdlog::info("inode ctimes and atimes of {} inodes set to {} in {:.2f} s", used.size(), epoch,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return Ok{};
}

std::string make_mbr(const std::string& boot_code, std::uint32_t disk_signature, const MbrPartition* parts, int count) {
  std::string mbr(512, '\0');
  std::memcpy(mbr.data(), boot_code.data(), std::min<size_t>(440, boot_code.size()));
  put_le32(mbr, 440, disk_signature);
  for (int i = 0; i < count && i < 4; ++i) {
    const size_t at = 446 + static_cast<size_t>(i) * 16;
    mbr[at] = parts[i].bootable ? static_cast<char>(0x80) : 0;
    // CHS fields at their maximum: every BIOS of the last 25 years uses the LBA fields.
    mbr[at + 1] = static_cast<char>(0xfe);
    mbr[at + 2] = static_cast<char>(0xff);
    mbr[at + 3] = static_cast<char>(0xff);
    mbr[at + 4] = static_cast<char>(parts[i].type);
    mbr[at + 5] = static_cast<char>(0xfe);
    mbr[at + 6] = static_cast<char>(0xff);
    mbr[at + 7] = static_cast<char>(0xff);
    put_le32(mbr, at + 8, static_cast<std::uint32_t>(parts[i].start_sector));
    put_le32(mbr, at + 12, static_cast<std::uint32_t>(parts[i].sectors));
  }
  mbr[510] = 0x55;
  mbr[511] = static_cast<char>(0xaa);
  return mbr;
}

namespace {
// no_timer_check: on a loaded host without KVM the kernel's IO-APIC timer probe can miss its
// ticks and panic ("IO-APIC + timer doesn't work"), seen under TCG on q35; the check tests
// the hardware timer, which a virtual machine's hypervisor provides anyway.
const char* const k_kernel_cmdline = "root=LABEL=rootfs ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 "
                                     "modprobe.blacklist=floppy no_timer_check";
} // namespace

std::string extlinux_conf() {
  return std::string("# Written by build-image. /vmlinuz and /initrd.img are symlinks kept current by\n"
                     "# the kernel package (link_in_boot), so kernel upgrades keep booting.\n"
                     "DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nSERIAL 0 115200\n"
                     "LABEL linux\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND ") +
         k_kernel_cmdline + "\n";
}

std::string boot_partition_uuid() { return uuid_from("b007"); }

std::string esp_grub_cfg() {
  // Only commands built into Debian's signed grubx64.efi: under Secure Boot it loads no
  // modules from disk. The kernel links are the ones extlinux boots under BIOS.
  return fmt::format("# Written by build-image: shim -> Debian's signed GRUB -> this file.\n"
                     "search --no-floppy --fs-uuid --set=root {}\n"
                     "set default=0\n"
                     "set timeout=0\n"
                     "menuentry 'Debian' {{\n"
                     "  linux /vmlinuz {}\n"
                     "  initrd /initrd.img\n"
                     "}}\n",
                     boot_partition_uuid(), k_kernel_cmdline);
}

std::string uuid_from_seed(const std::string& seed, const std::string& what) {
  return uuid_from(sha256_hex(seed + "/" + what).substr(0, 32));
}

EspFiles EspFiles::in_tree(const fs::path& root) {
  return {root / "usr/lib/shim/shimx64.efi.signed", root / "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
          root / "usr/lib/shim/mmx64.efi.signed"};
}

Expected<void> build_esp(const EspFiles& files, std::uint64_t bytes, const std::string& seed, const fs::path& out) {
  for (const auto& f : {files.shim, files.grub, files.mokman}) {
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) {
      return fail(f.string(), "missing: the EFI boot chain comes from shim-signed, shim-helpers-amd64-signed and "
                              "grub-efi-amd64-signed, unpacked into the base layer for base.firmware uefi and hybrid");
    }
  }
  BI_TRY(create_sparse(out, bytes));
  const std::string epoch = std::to_string(source_date_epoch());
  RunOptions opts;
  opts.timeout = std::chrono::seconds(120);
  // mkfs.fat and mtools stamp the boot sector, directories and files with the clock
  // unless SOURCE_DATE_EPOCH is set.
  opts.extra_env["SOURCE_DATE_EPOCH"] = epoch;
  opts.extra_env["MTOOLS_SKIP_CHECK"] = "1";
  opts.extra_env["TZ"] = "UTC";
  // 512-byte clusters keep the 64 MiB filesystem above FAT32's minimum cluster count.
  // mkfs.fat ignores SOURCE_DATE_EPOCH: --invariant fixes the label entry's timestamp (and
  // a volume ID, which -i after it replaces).
  BI_TRY(run_checked({"mkfs.fat", "--invariant", "-F", "32", "-S", "512", "-s", "1", "-n", "ESP", "-i",
                      sha256_hex(seed + "/esp").substr(0, 8), out.string()},
                     opts));
  const fs::path cfg = out.parent_path() / "esp-grub.cfg";
  BI_TRY(replace_file(cfg, esp_grub_cfg()));
  BI_TRY(run_checked({"mmd", "-i", out.string(), "::/EFI", "::/EFI/BOOT"}, opts));
  const std::pair<fs::path, std::string> copies[] = {
      {files.shim, "BOOTX64.EFI"}, {files.grub, "grubx64.efi"}, {files.mokman, "mmx64.efi"}, {cfg, "grub.cfg"}};
  for (const auto& [src, name] : copies) {
    BI_TRY(run_checked({"mcopy", "-i", out.string(), src.string(), "::/EFI/BOOT/" + name}, opts));
  }
  std::error_code ec;
  fs::remove(cfg, ec);
  return Ok{};
}

namespace {

Expected<void> make_boot_partition(const fs::path& out) {
  BI_TRY(create_sparse(out, k_boot_offset + k_boot_bytes));
  const MbrPartition boot{true, 0x83, k_boot_offset / 512, k_boot_bytes / 512};
  BI_TRY(pwrite_all(out, make_mbr("", 0, &boot, 1), 0));
  return run_mke2fs("boot", uuid_from("b007"), k_boot_offset, k_boot_bytes, out, nullptr);
}

// Unmounts on every exit path of a loop mount (the loop device goes with it: autoclear).
class LoopMount {
public:
  explicit LoopMount(fs::path dir) : m_dir(std::move(dir)) {}
  LoopMount(const LoopMount&) = delete;
  LoopMount& operator=(const LoopMount&) = delete;
  ~LoopMount() {
    if (m_mounted) {
      (void)run_process({"umount", m_dir.string()});
    }
  }
  void mounted() { m_mounted = true; }
  Expected<void> unmount() {
    BI_TRY(run_checked({"umount", m_dir.string()}));
    m_mounted = false;
    return Ok{};
  }

private:
  fs::path m_dir;
  bool m_mounted = false;
};

} // namespace

Expected<bool> build_bootloader_disk_on_host(const fs::path& out) {
  std::error_code ec;
  if (::geteuid() != 0 || !fs::exists("/dev/loop-control", ec)) {
    spdlog::info("bootloader: no loop mount here (needs root and /dev/loop-control)");
    return false;
  }
  BI_TRY(make_boot_partition(out));
  const fs::path dir = out.parent_path() / "mnt";
  fs::create_directories(dir, ec);
  {
    LoopMount mount(dir);
    auto r = run_process({"mount", "-t", "ext4", "-o",
                          fmt::format("loop,nodev,nosuid,noexec,offset={},sizelimit={}", k_boot_offset, k_boot_bytes),
                          out.string(), dir.string()});
    if (!r || !r->ok()) {
      spdlog::info("bootloader: loop mount failed ({}); using the appliance", r ? r->tail(2) : r.error().to_string());
      fs::remove(dir, ec);
      fs::remove(out, ec);
      return false;
    }
    mount.mounted();
    fs::create_directories(dir / "extlinux", ec);
    BI_TRY(run_checked({"extlinux", "--install", (dir / "extlinux").string()}));
    BI_TRY(mount.unmount());
  }
  fs::remove(dir, ec);
  if (ec) {
    return fail(dir.string(), "cannot remove the mount point: " + ec.message());
  }
  return true;
}

Expected<void> build_bootloader_disk(const fs::path& out, bool use_tcg) {
  BI_TRY(make_boot_partition(out));
  BI_TRY_ASSIGN(GuestfsHandle g, GuestfsHandle::create(use_tcg));
  BI_TRY(g.add_drive(out, "raw", false));
  BI_TRY(g.launch());
  BI_TRY(g.mount("/dev/sda1", "/"));
  BI_TRY(g.mkdir_p("/extlinux"));
  BI_TRY(g.extlinux("/extlinux"));
  BI_TRY(g.umount_all());
  BI_TRY(g.shutdown());
  return Ok{};
}

Expected<void> install_kernel(const fs::path& disk, const fs::path& boot_dir) {
  std::error_code ec;
  std::string commands = "cd /\n";
  std::vector<fs::directory_entry> entries;
  for (const auto& e : fs::directory_iterator(boot_dir, ec)) {
    entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end());
  bool have_kernel = false;
  for (const auto& e : entries) {
    const std::string name = e.path().filename().string();
    if (name.find_first_of(" \t\n\"") != std::string::npos) {
      continue;
    }
    if (e.is_symlink()) {
      commands += fmt::format("symlink {} {}\n", name, fs::read_symlink(e.path(), ec).string());
      have_kernel = have_kernel || name == "vmlinuz";
    } else if (e.is_regular_file()) {
      commands += fmt::format("write {} {}\n", e.path().string(), name);
    }
  }
  if (!have_kernel) {
    // Images whose kernel package keeps its links in / (link_in_boot=no): link the newest.
    std::string newest;
    for (const auto& e : entries) {
      const std::string name = e.path().filename().string();
      if (name.rfind("vmlinuz-", 0) == 0 && e.is_regular_file()) {
        const std::string version = name.substr(8);
        auto r = run_process({"dpkg", "--compare-versions", version, "gt", newest.empty() ? "0" : newest});
        if (newest.empty() || (r && r->exit_code == 0)) {
          newest = version;
        }
      }
    }
    std::error_code ec2;
    if (newest.empty() || !fs::exists(boot_dir / ("initrd.img-" + newest), ec2)) {
      return fail(boot_dir.string(), "no kernel with an initrd in /boot: install a kernel package in the image");
    }
    commands += fmt::format("symlink vmlinuz vmlinuz-{}\nsymlink initrd.img initrd.img-{}\n", newest, newest);
  }
  const fs::path conf = disk.parent_path() / "extlinux.conf";
  BI_TRY(replace_file(conf, extlinux_conf()));
  commands += fmt::format("write {} extlinux/extlinux.conf\n", conf.string());
  const fs::path cmdfile = disk.parent_path() / "debugfs-commands";
  BI_TRY(replace_file(cmdfile, commands));
  RunOptions opts;
  opts.timeout = std::chrono::seconds(300);
  opts.extra_env["E2FSPROGS_FAKE_TIME"] = std::to_string(source_date_epoch());
  auto r = run_checked(
      {"debugfs", "-w", "-f", cmdfile.string(), disk.string() + "?offset=" + std::to_string(k_boot_offset)}, opts);
  if (!r) {
    return Unexpected{r.error()};
  }
  // debugfs reports most errors on its output but still exits 0.
  for (const char* bad : {"No free space", "Could not allocate", "File not found", "Ext2 file too big"}) {
    if (r->output.find(bad) != std::string::npos) {
      return fail("debugfs", std::string("writing the kernel into the boot partition failed: ") + r->tail());
    }
  }
  return Ok{};
}

Expected<void> assemble_disk(const AssembleInput& in, const fs::path& out) {
  const std::uint64_t disk_bytes = in.disk_bytes / (1u << 20) * (1u << 20);
  const bool gpt = in.firmware != "bios";
  const std::uint64_t root_offset = gpt ? k_gpt_root_offset : k_root_offset;
  // GPT keeps a backup table in the last 33 sectors: the root ends at the last usable one
  // (growroot then sees a partition that already fills its disk).
  const std::uint64_t root_bytes = disk_bytes - root_offset - (gpt ? 33 * 512 : 0);
  if (disk_bytes < root_offset + (512ull << 20)) {
    return fail(out.string(), "disk size too small", ExitCode::bad_input);
  }
  BI_TRY(create_sparse(out, disk_bytes));
  // The bootloader disk carries partition 1 at the same offset as every image.
  BI_TRY(copy_sparse_into(in.bootloader_disk, out, 0));
  BI_TRY(install_kernel(out, in.boot_tree));
  BI_TRY_ASSIGN(std::string code, read_file(in.mbr_code));
  if (gpt) {
    BI_TRY(pwrite_all(out, std::string(512, '\0'), 0)); // the bootloader disk's MBR table
    BI_TRY(write_gpt(out, in.firmware == "hybrid", in.uuid_seed, root_offset, root_bytes));
    if (in.firmware == "hybrid") {
      // Boot code only: the protective MBR's table stays as sgdisk wrote it.
      BI_TRY(pwrite_all(out, code.substr(0, std::min<size_t>(440, code.size())), 0));
    }
    const fs::path esp = out.parent_path() / "esp.img";
    BI_TRY(build_esp(in.esp, k_esp_bytes, in.uuid_seed, esp));
    BI_TRY(copy_sparse_into(esp, out, k_esp_offset));
    std::error_code ec;
    fs::remove(esp, ec);
  } else {
    const MbrPartition parts[2] = {
        {true, 0x83, k_boot_offset / 512, k_boot_bytes / 512},
        {false, 0x83, k_root_offset / 512, root_bytes / 512},
    };
    std::uint32_t signature = 0;
    for (size_t i = 0; i < 8 && i < in.uuid_seed.size(); ++i) {
      signature = signature * 16 + static_cast<std::uint32_t>(std::stoul(in.uuid_seed.substr(i, 1), nullptr, 16));
    }
    BI_TRY(pwrite_all(out, make_mbr(code, signature, parts, 2), 0));
  }
  BI_TRY(run_mke2fs("rootfs", uuid_from(in.uuid_seed), root_offset, root_bytes, out, &in.root_tree));
  // mke2fs -d copies each inode's ctime (set by the kernel when the farm was made) and
  // atime (bumped by reading the cached files) from the tree: pin both.
  BI_TRY(pin_inode_times(out, root_offset, source_date_epoch()));
  return Ok{};
}

Expected<void> convert_disk(const fs::path& raw, const std::string& format, const fs::path& out) {
  std::vector<std::string> argv = {"qemu-img", "convert", "-q", "-f", "raw", "-O", format};
  if (format == "qcow2") {
    // No -W: out-of-order writes would make the qcow2 layout differ between runs.
    for (const char* a : {"-c", "-o", "compression_type=zstd", "-m", "4"}) {
      argv.emplace_back(a);
    }
  } else if (format == "vmdk") {
    argv.insert(argv.end(), {"-o", "subformat=streamOptimized"});
  }
  argv.push_back(raw.string());
  argv.push_back(out.string());
  RunOptions opts;
  opts.timeout = std::chrono::seconds(1800);
  auto r = run_process(argv, opts);
  if (!r) {
    return Unexpected{r.error()};
  }
  if (!r->ok()) {
    const bool full = r->output.find("No space left") != std::string::npos;
    return fail(out.string(),
                std::string(full ? "no space left on the output device: " : "qemu-img convert failed: ") + r->tail(),
                full ? ExitCode::host_missing : ExitCode::build_failed);
  }
  return Ok{};
}

Expected<ImageSizes> image_sizes(const fs::path& image) {
  BI_TRY_ASSIGN(RunResult r, run_checked({"qemu-img", "info", "--output=json", image.string()}));
  try {
    auto j = nlohmann::json::parse(r.output);
    ImageSizes s;
    s.virtual_bytes = j.at("virtual-size").get<std::uint64_t>();
    std::error_code ec;
    s.file_bytes = fs::file_size(image, ec);
    return s;
  } catch (const std::exception& e) {
    return fail(image.string(), std::string("cannot parse qemu-img info: ") + e.what());
  }
}

} // namespace bi
