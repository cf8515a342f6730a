#pragma once
// Disk layout and assembly. Every image starts with the same boot partition, so the one
// built once by libguestfs is reused byte for byte and rebuilding the root filesystem needs
// no appliance at all. base.firmware picks the partition table around it:
//   bios:   sector 0 MBR (syslinux mbr.bin + table)
//           1 MiB   p1 "boot", ext4, extlinux installed, kernel + initrd
//           257 MiB p2 "rootfs", ext4 made with mke2fs -d, to the end of the disk
//   hybrid: sector 0 protective MBR with syslinux gptmbr.bin, GPT
//           1 MiB   p1 "boot" as above, GPT attribute "legacy BIOS bootable" (gptmbr's choice)
//           257 MiB p2 "ESP", FAT32: EFI/BOOT/BOOTX64.EFI (Debian's signed shim),
//                   grubx64.efi (Debian's signed GRUB), mmx64.efi, grub.cfg (boots p1's kernel)
//           321 MiB p3 "rootfs", to 1 MiB before the end (the backup GPT)
//   uefi:   as hybrid without BIOS boot code or the legacy attribute

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "util/expected.hpp"

namespace bi {

namespace fs = std::filesystem;

constexpr std::uint64_t k_boot_offset = 1ull << 20;
constexpr std::uint64_t k_boot_bytes = 256ull << 20;
constexpr std::uint64_t k_root_offset = k_boot_offset + k_boot_bytes;
constexpr std::uint64_t k_esp_offset = k_boot_offset + k_boot_bytes;
constexpr std::uint64_t k_esp_bytes = 64ull << 20;
constexpr std::uint64_t k_gpt_root_offset = k_esp_offset + k_esp_bytes;

// The boot partition's UUID (the same in every image: it is built once).
std::string boot_partition_uuid();

struct MbrPartition {
  bool bootable = false;
  std::uint8_t type = 0x83;
  std::uint64_t start_sector = 0;
  std::uint64_t sectors = 0;
};

// 512 bytes: boot code (first 440 bytes of `boot_code`, may be empty), disk signature,
// up to four partitions, 0x55AA.
std::string make_mbr(const std::string& boot_code, std::uint32_t disk_signature, const MbrPartition* parts, int count);

// A 1 MiB + 256 MiB raw disk with an ext4 "boot" partition and extlinux installed
// through libguestfs (an appliance launch). Stored as a cache layer.
Expected<void> build_bootloader_disk(const fs::path& out, bool use_tcg);

// The same disk with extlinux installed through a loop mount on the host (root, a free
// loop device): no appliance. false: this host cannot loop-mount (nothing is left
// behind; use build_bootloader_disk); an error: the build failed.
Expected<bool> build_bootloader_disk_on_host(const fs::path& out);

// The kernel, initrd and extlinux.conf from `boot_dir` (a tree's /boot) written into the
// boot partition of `disk` with debugfs (no appliance, no loop device).
Expected<void> install_kernel(const fs::path& disk, const fs::path& boot_dir);

std::string extlinux_conf();
// EFI/BOOT/grub.cfg on the ESP: Debian's signed GRUB reads it from the directory it was
// started from ($cmdpath) when no /EFI/debian exists, as grub-install --removable does.
std::string esp_grub_cfg();

// Deterministic GUIDs/UUIDs of a disk from its plan's key.
std::string uuid_from_seed(const std::string& seed, const std::string& what);

struct EspFiles {
  fs::path shim;   // shimx64.efi.signed -> EFI/BOOT/BOOTX64.EFI
  fs::path grub;   // grubx64.efi.signed -> EFI/BOOT/grubx64.efi
  fs::path mokman; // mmx64.efi.signed -> EFI/BOOT/mmx64.efi (shim starts it on a failed check)
  static EspFiles in_tree(const fs::path& root);
};
// A FAT32 image of `bytes` at `out` holding `files` and esp_grub_cfg(); volume ID and
// timestamps fixed (reproducible).
Expected<void> build_esp(const EspFiles& files, std::uint64_t bytes, const std::string& seed, const fs::path& out);

struct AssembleInput {
  fs::path root_tree;       // the final root filesystem tree (its /boot emptied)
  fs::path boot_tree;       // kernel files
  fs::path bootloader_disk; // from build_bootloader_disk
  fs::path mbr_code;        // syslinux mbr.bin (bios) or gptmbr.bin (hybrid)
  std::string firmware = "bios";
  EspFiles esp; // uefi and hybrid
  std::uint64_t disk_bytes = 0;
  std::string uuid_seed; // fixed filesystem UUIDs from the plan (reproducible)
};
// Writes a bootable raw disk at `out`.
Expected<void> assemble_disk(const AssembleInput& in, const fs::path& out);

// Sets ctime and atime of every inode in use in the ext4 filesystem at `offset` of `disk`
// to `epoch` (dumpe2fs lists the used inodes, one debugfs batch sets them): `mke2fs -d`
// copies those two from the source tree, where the kernel sets them.
Expected<void> pin_inode_times(const fs::path& disk, std::uint64_t offset, std::int64_t epoch);
// The inodes in use, from dumpe2fs' "Inode count:" and per-group "Free inodes:" lines.
std::vector<std::uint32_t> used_inodes_from_dumpe2fs(const std::string& dumpe2fs_output);

// Converts the raw disk into the output format at `out`.
Expected<void> convert_disk(const fs::path& raw, const std::string& format, const fs::path& out);

struct ImageSizes {
  std::uint64_t virtual_bytes = 0;
  std::uint64_t file_bytes = 0;
};
Expected<ImageSizes> image_sizes(const fs::path& image);

} // namespace bi
