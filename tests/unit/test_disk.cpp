// Disk layout: the MBR bytes and the fixed partition geometry.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include "image/disk.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/process.hpp"

using namespace bi;

namespace {
std::uint32_t le32(const std::string& s, size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  }
  return v;
}
} // namespace

TEST_CASE("make_mbr writes boot code, signature, partitions and the magic") {
  const std::string code(440, '\x90');
  const MbrPartition parts[2] = {{true, 0x83, 2048, 524288}, {false, 0x83, 526336, 1000000}};
  const auto mbr = make_mbr(code, 0xdeadbeef, parts, 2);
  REQUIRE(mbr.size() == 512);
  CHECK(mbr.substr(0, 440) == code);
  CHECK(le32(mbr, 440) == 0xdeadbeef);
  CHECK(static_cast<unsigned char>(mbr[446]) == 0x80);
  CHECK(static_cast<unsigned char>(mbr[446 + 4]) == 0x83);
  CHECK(le32(mbr, 446 + 8) == 2048);
  CHECK(le32(mbr, 446 + 12) == 524288);
  CHECK(static_cast<unsigned char>(mbr[462]) == 0x00);
  CHECK(le32(mbr, 462 + 8) == 526336);
  CHECK(le32(mbr, 462 + 12) == 1000000);
  CHECK(std::string(mbr.data() + 478, 32) == std::string(32, '\0'));
  CHECK(static_cast<unsigned char>(mbr[510]) == 0x55);
  CHECK(static_cast<unsigned char>(mbr[511]) == 0xaa);
}

TEST_CASE("the layout keeps the boot partition where the cached bootloader expects it") {
  CHECK(k_boot_offset == 1048576);
  CHECK(k_root_offset == k_boot_offset + k_boot_bytes);
  CHECK(k_root_offset % 4096 == 0);
}

TEST_CASE("extlinux.conf boots the kernel symlinks on the serial console") {
  const auto conf = extlinux_conf();
  CHECK(conf.find("LINUX /vmlinuz\n") != std::string::npos);
  CHECK(conf.find("INITRD /initrd.img\n") != std::string::npos);
  CHECK(conf.find("root=LABEL=rootfs") != std::string::npos);
  CHECK(conf.find("console=ttyS0,115200n8") != std::string::npos);
  // Under TCG on a loaded host the IO-APIC timer probe panics the kernel now and then.
  CHECK(conf.find(" no_timer_check\n") != std::string::npos);
  CHECK(esp_grub_cfg().find(" no_timer_check\n") != std::string::npos);
}

TEST_CASE("the GPT layouts put the ESP after the cached boot partition, all 1 MiB aligned") {
  CHECK(k_esp_offset == k_boot_offset + k_boot_bytes);
  CHECK(k_gpt_root_offset == k_esp_offset + k_esp_bytes);
  CHECK(k_gpt_root_offset % (1u << 20) == 0);
}

TEST_CASE("the ESP's grub.cfg boots the boot partition's kernel links with extlinux's command line") {
  const auto cfg = esp_grub_cfg();
  CHECK(cfg.find("search --no-floppy --fs-uuid --set=root " + boot_partition_uuid() + "\n") != std::string::npos);
  CHECK(cfg.find("  linux /vmlinuz root=LABEL=rootfs ro console=tty0 console=ttyS0,115200n8") != std::string::npos);
  CHECK(cfg.find("  initrd /initrd.img\n") != std::string::npos);
  CHECK(boot_partition_uuid() == "b0070000-0000-4000-8000-000000000000");
  CHECK(uuid_from_seed("k", "disk") == uuid_from_seed("k", "disk"));
  CHECK(uuid_from_seed("k", "disk") != uuid_from_seed("k", "p1"));
}

TEST_CASE("build_esp: FAT32 labelled ESP with the removable-path files; same inputs, same bytes", "[esp]") {
  test::Scratch s;
  EspFiles files{s.write("shim", "shim"), s.write("grub", "grub"), s.write("mm", "mm")};
  REQUIRE(build_esp(files, 64u << 20, "seed", s.path() / "a.img"));
  REQUIRE(build_esp(files, 64u << 20, "seed", s.path() / "b.img"));
  CHECK(*sha256_file(s.path() / "a.img") == *sha256_file(s.path() / "b.img"));
  REQUIRE(build_esp(files, 64u << 20, "other", s.path() / "c.img"));
  CHECK(*sha256_file(s.path() / "a.img") != *sha256_file(s.path() / "c.img")); // volume ID from the key
  auto dir = run_checked({"mdir", "-i", (s.path() / "a.img").string(), "::/EFI/BOOT"});
  REQUIRE(dir);
  for (const char* name : {"BOOTX64  EFI", "grubx64  efi", "mmx64    efi", "grub     cfg"}) {
    CHECK(dir->output.find(name) != std::string::npos);
  }
  CHECK(dir->output.find("Volume in drive : is ESP") != std::string::npos);
  // mtools stamps directories and files with the clock unless given SOURCE_DATE_EPOCH (two
  // builds within one FAT 2-second tick would not show it).
  const std::time_t epoch = source_date_epoch();
  std::tm tm{};
  gmtime_r(&epoch, &tm);
  char day[16];
  REQUIRE(std::strftime(day, sizeof day, "%Y-%m-%d", &tm) > 0);
  INFO(dir->output);
  CHECK(dir->output.find(std::string("BOOTX64  EFI         4 ") + day) != std::string::npos);
  CHECK(dir->output.find(std::string(".            <DIR>     ") + day) != std::string::npos);
  // mkfs.fat stamps the volume label's entry with the clock unless --invariant: not today.
  auto image = read_file(s.path() / "a.img", 128u << 20);
  REQUIRE(image);
  const auto label = image->find(std::string("ESP        \x08", 12));
  REQUIRE(label != std::string::npos);
  const std::time_t now = std::time(nullptr);
  std::tm today{};
  gmtime_r(&now, &today);
  const unsigned fat_today =
      static_cast<unsigned>(((today.tm_year - 80) << 9) | ((today.tm_mon + 1) << 5) | today.tm_mday);
  const unsigned label_date = static_cast<unsigned char>((*image)[label + 24]) |
                              static_cast<unsigned>(static_cast<unsigned char>((*image)[label + 25])) << 8;
  CHECK(label_date != fat_today);
  auto shim = run_checked({"mtype", "-i", (s.path() / "a.img").string(), "::/EFI/BOOT/BOOTX64.EFI"});
  REQUIRE(shim);
  CHECK(shim->output.rfind("shim", 0) == 0);
  auto fsck = run_process({"fsck.fat", "-n", (s.path() / "a.img").string()});
  REQUIRE(fsck);
  CHECK(fsck->exit_code == 0);
}

TEST_CASE("build_esp names a missing boot chain file") {
  test::Scratch s;
  EspFiles files = EspFiles::in_tree(s.path());
  auto r = build_esp(files, 64u << 20, "seed", s.path() / "a.img");
  REQUIRE_FALSE(r);
  CHECK(
      r.error().to_string() ==
      (s.path() / "usr/lib/shim/shimx64.efi.signed").string() +
          ": missing: the EFI boot chain comes from shim-signed, shim-helpers-amd64-signed and grub-efi-amd64-signed, "
          "unpacked into the base layer for base.firmware uefi and hybrid");
}

TEST_CASE("used_inodes_from_dumpe2fs takes every inode not in a group's free ranges") {
  const std::string out = "Inode count:              20\n"
                          "Inodes per group:         10\n"
                          "Group 0: (Blocks 0-99)\n"
                          "  Free inodes: 4-5, 9\n"
                          "Group 1: (Blocks 100-199)\n"
                          "  Free inodes: 13-20\n";
  CHECK(used_inodes_from_dumpe2fs(out) == std::vector<std::uint32_t>{1, 2, 3, 6, 7, 8, 10, 11, 12});
  CHECK(used_inodes_from_dumpe2fs("Inode count: 3\n  Free inodes: \n") == std::vector<std::uint32_t>{1, 2, 3});
  CHECK(used_inodes_from_dumpe2fs("nothing useful\n").empty());
}

TEST_CASE("pin_inode_times makes mke2fs -d output independent of the tree's ctimes and atimes") {
  test::Scratch scratch;
  const auto tree = scratch.path() / "tree";
  scratch.write("tree/etc/motd", "hello\n");
  scratch.write("tree/usr/bin/tool", "#!/bin/sh\n");
  std::filesystem::create_hard_link(tree / "usr/bin/tool", tree / "usr/bin/tool2");
  std::filesystem::create_symlink("tool", tree / "usr/bin/link");
  REQUIRE(clamp_mtimes(tree, 1700000000));
  auto make_fs = [&](const std::string& name) {
    auto disk = scratch.path() / name;
    std::ofstream(disk).close();
    std::filesystem::resize_file(disk, 64ull << 20);
    RunOptions o;
    o.extra_env["E2FSPROGS_FAKE_TIME"] = "1700000000";
    auto r = run_process(
        {"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-U", "11111111-2222-4333-8444-555555555555", "-E",
         "hash_seed=11111111-2222-4333-8444-555555555555,root_owner=0:0", "-d", tree.string(), disk.string()},
        o);
    REQUIRE(r);
    REQUIRE(r->ok());
    return disk;
  };
  const auto first = make_fs("a.raw");
  // New ctimes (chmod) and atimes (a read after the clamp): what a second build's farm has.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::filesystem::permissions(tree / "etc/motd",
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                   std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  (void)read_file(tree / "usr/bin/tool");
  const auto second = make_fs("b.raw");
  CHECK(sha256_file(first).value() != sha256_file(second).value()); // the problem this solves
  REQUIRE(pin_inode_times(first, 0, 1700000000));
  REQUIRE(pin_inode_times(second, 0, 1700000000));
  CHECK(sha256_file(first).value() == sha256_file(second).value());
  auto fsck = run_process({"e2fsck", "-fn", first.string()});
  REQUIRE(fsck);
  CHECK(fsck->exit_code == 0);
}

TEST_CASE("the bootloader disk made on the host has extlinux in partition 1 and leaves nothing mounted") {
  std::error_code ec;
  if (::geteuid() != 0 || !std::filesystem::exists("/dev/loop-control", ec)) {
    WARN("needs root and loop devices: build_bootloader_disk_on_host falls back to the appliance there");
    return;
  }
  test::Scratch s;
  const auto out = s.path() / "content/disk.raw";
  std::filesystem::create_directories(out.parent_path());
  auto built = build_bootloader_disk_on_host(out);
  REQUIRE(built);
  REQUIRE(*built);
  CHECK_FALSE(std::filesystem::exists(out.parent_path() / "mnt"));
  auto mounts = read_file("/proc/self/mounts");
  REQUIRE(mounts);
  CHECK(mounts->find(s.path().string()) == std::string::npos);
  auto ls =
      run_checked({"debugfs", "-R", "ls -l /extlinux", out.string() + "?offset=" + std::to_string(k_boot_offset)});
  REQUIRE(ls);
  CHECK(ls->output.find("ldlinux.sys") != std::string::npos);
  CHECK(ls->output.find("ldlinux.c32") != std::string::npos);
  auto disk = read_file(out, 512u << 20);
  REQUIRE(disk);
  // extlinux's boot sector in the partition: its name, and the partition's first sector as
  // "hidden sectors" (where ldlinux.sys's sector list is counted from), read from the loop
  // device's offset.
  CHECK(disk->substr(k_boot_offset + 3, 8) == "SYSLINUX");
  CHECK(le32(*disk, k_boot_offset + 0x1c) == k_boot_offset / 512);
  // The MBR names partition 1 at the offset every image expects.
  CHECK(le32(*disk, 446 + 8) == k_boot_offset / 512);
}
