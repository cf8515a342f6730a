// Disk layout: the MBR bytes and the fixed partition geometry.
#include <catch2/catch.hpp>

#include "image/disk.hpp"

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
}
