// Reads the images the `build_test_images` fixture built, with libguestfs (one read-only
// appliance launch per image), and boots each under qemu to a login prompt.
// Environment: BI_TEST_IMAGES = the output folder with catalog.json.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>

#include "boot/qemu_boot.hpp"
#include "guest/accel.hpp"
#include "guest/guestfs_handle.hpp"
#include "hygiene.hpp"
#include "image/catalog.hpp"
#include "image/disk.hpp"
#include "pipeline/layer_store.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/process.hpp"

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include <unistd.h>

using namespace bi;

namespace {

std::filesystem::path images_dir() {
  const char* d = std::getenv("BI_TEST_IMAGES");
  REQUIRE(d != nullptr);
  return d;
}

std::filesystem::path image_for(const std::string& cartridge, const std::string& mode) {
  auto catalog = catalog_read(images_dir());
  REQUIRE(catalog);
  // The newest entry: a reused output folder can also list images of older inputs.
  const auto& images = (*catalog)["images"];
  for (auto it = images.rbegin(); it != images.rend(); ++it) {
    if ((*it)["cartridge"] == cartridge && (*it)["mode"] == mode) {
      return images_dir() / (*it)["file"].get<std::string>();
    }
  }
  FAIL("no " << cartridge << " " << mode << " image in " << images_dir());
  return {};
}

bool use_tcg() { return !detect_accelerator(default_cache_dir()).kvm; }

// Whether a PE image carries an Authenticode signature (its certificate table) whose
// certificates name `signer`. Shim refuses a grubx64.efi without Debian's, and the firmware
// a BOOTX64.EFI without Microsoft's.
bool pe_signed_by(const std::string& pe, const std::string& signer) {
  const auto u32 = [&](size_t at) -> std::uint32_t {
    if (at + 4 > pe.size()) {
      return 0;
    }
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
      v = (v << 8) | static_cast<unsigned char>(pe[at + static_cast<size_t>(i)]);
    }
    return v;
  };
  if (pe.size() < 0x40 || pe.compare(0, 2, "MZ") != 0) {
    return false;
  }
  const size_t nt = u32(0x3c);
  const size_t optional = nt + 24;
  if (pe.compare(nt, 4, std::string("PE\0\0", 4)) != 0 || u32(optional) % 0x10000 != 0x20b) {
    return false; // not PE32+
  }
  const std::uint32_t cert_at = u32(optional + 144), cert_size = u32(optional + 148); // data directory 4
  if (cert_size == 0 || static_cast<size_t>(cert_at) + cert_size > pe.size()) {
    return false;
  }
  return pe.substr(cert_at, cert_size).find(signer) != std::string::npos;
}

// Facts of a hybrid (or uefi) disk read on the host, no appliance: the GPT, the BIOS boot
// code, and the ESP's removable-path boot chain with its signatures.
void check_efi_disk(const std::filesystem::path& image, bool hybrid) {
  const auto work = images_dir() / ("efi-check-" + image.stem().string());
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const auto raw = work / "disk.raw";
  auto convert = run_process({"qemu-img", "convert", "-O", "raw", image.string(), raw.string()});
  REQUIRE(convert);
  REQUIRE(convert->exit_code == 0);
  auto table = run_process({"sgdisk", "-p", raw.string()});
  REQUIRE(table);
  INFO(table->output);
  CHECK(table->output.find("Partition table holds up to 128 entries") != std::string::npos);
  CHECK(std::regex_search(table->output, std::regex(R"(\n +1 +2048 +526335 +256\.0 MiB +8300 +boot\n)")));
  CHECK(std::regex_search(table->output, std::regex(R"(\n +2 +526336 +657407 +64\.0 MiB +EF00 +ESP\n)")));
  CHECK(std::regex_search(table->output, std::regex(R"(\n +3 +657408 +\d+ +[0-9.]+ GiB +8300 +rootfs\n)")));
  auto p1 = run_process({"sgdisk", "-i", "1", raw.string()});
  REQUIRE(p1);
  // gptmbr.bin boots the partition marked legacy BIOS bootable; a uefi disk has neither.
  CHECK((p1->output.find("Attribute flags: 0000000000000004") != std::string::npos) == hybrid);
  std::string sector0(440, '\0');
  std::ifstream(raw, std::ios::binary).read(sector0.data(), 440);
  auto gptmbr = read_file("/usr/lib/EXTLINUX/gptmbr.bin");
  REQUIRE(gptmbr);
  CHECK((sector0 == gptmbr->substr(0, 440)) == hybrid);
  const std::string esp = raw.string() + "@@" + std::to_string(k_esp_offset);
  auto dir = run_process({"mdir", "-b", "-i", esp, "::/EFI/BOOT"});
  REQUIRE(dir);
  INFO(dir->output);
  for (const char* f :
       {"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/BOOT/grubx64.efi", "::/EFI/BOOT/mmx64.efi", "::/EFI/BOOT/grub.cfg"}) {
    CHECK(dir->output.find(f) != std::string::npos);
  }
  CHECK(dir->output.find("fbx64") == std::string::npos); // fallback would write NVRAM entries and reset
  const auto extract = [&](const std::string& name) {
    const auto out = work / name;
    auto r = run_process({"mcopy", "-n", "-i", esp, "::/EFI/BOOT/" + name, out.string()});
    REQUIRE(r);
    REQUIRE(r->exit_code == 0);
    auto text = read_file(out, 64u << 20);
    REQUIRE(text);
    return *text;
  };
  CHECK(pe_signed_by(extract("BOOTX64.EFI"), "Microsoft Corporation UEFI CA"));
  CHECK(pe_signed_by(extract("grubx64.efi"), "Debian Secure Boot"));
  CHECK_FALSE(pe_signed_by(extract("grub.cfg"), "Debian"));
  const auto cfg = extract("grub.cfg");
  CHECK(cfg.find("search --no-floppy --fs-uuid --set=root " + boot_partition_uuid()) != std::string::npos);
  CHECK(cfg.find("linux /vmlinuz root=LABEL=rootfs") != std::string::npos);
  // The root file system's fstab mounts the ESP (read with debugfs: no appliance).
  auto fstab =
      run_process({"debugfs", "-R", "cat /etc/fstab", raw.string() + "?offset=" + std::to_string(k_gpt_root_offset)});
  REQUIRE(fstab);
  INFO(fstab->output);
  CHECK(fstab->output.find("\nLABEL=ESP /boot/efi vfat umask=0077,nofail 0 0\n") != std::string::npos);
  std::filesystem::remove_all(work);
}

// One appliance per image: open, mount root and boot, then run all checks on it.
struct OpenImage {
  GuestfsHandle g;
  static OpenImage open(const std::filesystem::path& image, const std::string& format = "qcow2") {
    auto h = GuestfsHandle::create(use_tcg());
    REQUIRE(h);
    REQUIRE(h->add_drive(image, format, true));
    REQUIRE(h->launch());
    return OpenImage{std::move(*h)};
  }
  std::string read(const std::string& path) {
    auto r = g.read_file(path);
    INFO(path);
    REQUIRE(r);
    return *r;
  }
  std::map<std::string, std::string> packages() {
    std::map<std::string, std::string> out;
    const auto status = read("/var/lib/dpkg/status");
    size_t pos = 0;
    while ((pos = status.find("Package: ", pos)) != std::string::npos) {
      const auto end = status.find('\n', pos);
      const auto name = status.substr(pos + 9, end - pos - 9);
      const auto block_end = status.find("\n\n", pos);
      const auto block = status.substr(pos, block_end - pos);
      if (block.find("Status: install ok installed") != std::string::npos) {
        out[name] = block;
      }
      pos = end;
    }
    return out;
  }
};

// The disk drivers docs/image-contract.md promises ("Disks"), from the kernel's config and
// `lsinitramfs`: what is missing for booting from virtio-blk, virtio-scsi or NVMe.
std::vector<std::string> missing_disk_drivers(const std::string& kernel_config, const std::string& initramfs_listing) {
  std::vector<std::string> missing;
  const std::vector<std::pair<std::string, std::string>> drivers = {{"CONFIG_VIRTIO_PCI", "virtio_pci.ko"},
                                                                    {"CONFIG_VIRTIO_BLK", "virtio_blk.ko"},
                                                                    {"CONFIG_SCSI_VIRTIO", "virtio_scsi.ko"},
                                                                    {"CONFIG_BLK_DEV_SD", "sd_mod.ko"},
                                                                    {"CONFIG_BLK_DEV_NVME", "nvme.ko"}};
  for (const auto& [option, module] : drivers) {
    const bool built_in = kernel_config.find("\n" + option + "=y\n") != std::string::npos;
    if (!built_in && initramfs_listing.find("/" + module + "\n") == std::string::npos) {
      missing.push_back(module);
    }
  }
  return missing;
}

void check_disk_drivers(OpenImage& img, const std::filesystem::path& work) {
  auto boot = img.g.ls("/boot");
  REQUIRE(boot);
  std::string config_name;
  std::string initrd_name;
  for (const auto& f : *boot) {
    config_name = f.rfind("config-", 0) == 0 ? f : config_name;
    initrd_name = f.rfind("initrd.img-", 0) == 0 ? f : initrd_name;
  }
  REQUIRE_FALSE(config_name.empty());
  REQUIRE_FALSE(initrd_name.empty());
  std::filesystem::create_directories(work);
  const auto tar = work / "boot.tar";
  REQUIRE(img.g.tar_out("/boot", tar));
  REQUIRE(run_process({"tar", "-xf", tar.string(), "-C", work.string()})->ok());
  auto listing = run_process({"lsinitramfs", (work / initrd_name).string()});
  REQUIRE(listing);
  REQUIRE(listing->ok());
  INFO(initrd_name);
  const auto missing = missing_disk_drivers(img.read("/boot/" + config_name), listing->output);
  INFO("missing: " << Catch::Detail::stringify(missing));
  CHECK(missing.empty());
  std::filesystem::remove_all(work);
}

// Cloud-ready (docs/image-contract.md "Login, disk and time"): sshd that takes only the
// cloud's key pair, with no host key or authorized key in the image; growpart for the
// first boot; timesyncd.
void check_cloud_ready(OpenImage& img) {
  auto& g = img.g;
  auto pkgs = img.packages();
  for (const char* p : {"openssh-server", "systemd-timesyncd", "cloud-guest-utils"}) {
    INFO(p);
    CHECK(pkgs.count(p) == 1);
  }
  CHECK(g.exists("/usr/bin/growpart"));
  CHECK(g.exists("/sbin/resize2fs"));
  CHECK(g.is_symlink("/etc/systemd/system/multi-user.target.wants/ssh.service"));
  CHECK(g.is_symlink("/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service"));
  CHECK_FALSE(g.exists("/etc/ssh/sshd_not_to_be_run"));
  auto etc_ssh = g.ls("/etc/ssh");
  REQUIRE(etc_ssh);
  for (const auto& f : *etc_ssh) {
    INFO("/etc/ssh/" << f);
    CHECK(f.rfind("ssh_host_", 0) != 0);
  }
  CHECK_FALSE(g.exists("/root/.ssh/authorized_keys"));
  // Debian's sshd_config includes the drop-ins before its own settings: theirs win.
  const auto sshd_config = img.read("/etc/ssh/sshd_config");
  const auto include = sshd_config.find("\nInclude /etc/ssh/sshd_config.d/*.conf\n");
  CHECK(include != std::string::npos);
  CHECK(include < sshd_config.find("\nPasswordAuthentication"));
  const auto dropin = img.read("/etc/ssh/sshd_config.d/10-cartridge.conf");
  for (const char* line : {"\nPasswordAuthentication no\n", "\nKbdInteractiveAuthentication no\n",
                           "\nPermitRootLogin prohibit-password\n"}) {
    INFO(line);
    CHECK(dropin.find(line) != std::string::npos);
  }
  const auto unit = img.read("/lib/systemd/system/ssh.service.d/cartridge.conf");
  CHECK(unit.find("\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n") !=
        std::string::npos);
  CHECK(unit.find("\nExecCondition=/usr/sbin/cartridge-init --ssh-enabled\n") != std::string::npos);
  CHECK(g.exists("/usr/lib/cartridge/instance.sh"));
  // No password: root's field (shadow's, else passwd's) is locked or a placeholder, never a hash.
  auto root_field = [&](const std::string& file) -> std::optional<std::string> {
    std::istringstream in(img.read(file));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("root:", 0) == 0) {
        return line.substr(5, line.find(':', 5) - 5);
      }
    }
    return std::nullopt;
  };
  const auto field = root_field("/etc/shadow").value_or(root_field("/etc/passwd").value_or("(no root)"));
  INFO("root's password field: " << field);
  CHECK((field == "*" || field == "x" || (!field.empty() && field[0] == '!')));
}

void check_common(OpenImage& img, const std::string& mode) {
  auto& g = img.g;
  // The root filesystem made by mke2fs -d from a hard-link farm must be clean (the fixture's
  // images are hybrid: boot, ESP, rootfs).
  auto fsck_root = g.fsck("ext4", "/dev/sda3");
  REQUIRE(fsck_root);
  CHECK(*fsck_root == 0);
  auto fsck_boot = g.fsck("ext4", "/dev/sda1");
  REQUIRE(fsck_boot);
  CHECK(*fsck_boot == 0);
  auto fsck_esp = g.fsck("vfat", "/dev/sda2");
  REQUIRE(fsck_esp);
  CHECK(*fsck_esp == 0);
  REQUIRE(g.mount_ro("/dev/sda3", "/"));
  REQUIRE(g.mount_ro("/dev/sda1", "/boot"));

  // Bootloader and kernel.
  CHECK(g.exists("/boot/extlinux/ldlinux.sys"));
  CHECK(img.read("/boot/extlinux/extlinux.conf").find("root=LABEL=rootfs") != std::string::npos);
  CHECK(g.is_symlink("/boot/vmlinuz"));
  CHECK(g.is_symlink("/boot/initrd.img"));
  const auto fstab = img.read("/etc/fstab");
  CHECK(fstab.find("LABEL=boot /boot ext4") != std::string::npos);
  // The ESP where Debian's tools look for it; nofail, so a damaged ESP never stops a boot.
  CHECK(fstab.find("\nLABEL=ESP /boot/efi vfat umask=0077,nofail 0 0\n") != std::string::npos);

  // Hygiene, over the whole tree (tests/integration/hygiene.hpp).
  CHECK_THAT(test::hygiene_problems(g), Catch::Matchers::Equals(std::vector<std::string>{}));

  // Puppet agent present, daemon off, pointed at the YAML's master.
  auto pkgs = img.packages();
  CHECK(pkgs.count("puppet-agent") == 1);
  CHECK(pkgs.count("linux-image-cloud-amd64") == 1);
  CHECK_FALSE(g.exists("/etc/systemd/system/multi-user.target.wants/puppet.service"));
  CHECK(img.read("/etc/puppet/puppet.conf").find("server = puppet.example.org\n") != std::string::npos);

  // Init scripts installed and enabled.
  auto init = g.lstat("/usr/sbin/cartridge-init");
  REQUIRE(init);
  CHECK((init->mode & 0777) == 0755);
  CHECK(g.is_symlink("/etc/systemd/system/multi-user.target.wants/cartridge-init.service"));
  const auto conf = img.read("/etc/cartridge/cartridge.conf");
  CHECK(conf.find("CARTRIDGE_MODE=" + mode + "\n") != std::string::npos);
  // The templates' login and time are the defaults: root by key, sshd on, no NTP servers.
  CHECK(conf.find("\nLOGIN_USER=root\nSSH=on\n") != std::string::npos);
  CHECK(conf.find("NTP_SERVERS=") == std::string::npos);
  check_cloud_ready(img);
}

} // namespace

TEST_CASE("the disk driver check names what an initramfs lacks", "[contents]") {
  // Planted: a kernel with NVMe as a module, and an initramfs without it or virtio_scsi.
  const std::string config = "\nCONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_BLK=m\nCONFIG_SCSI_VIRTIO=m\nCONFIG_BLK_DEV_SD=m\n"
                             "CONFIG_BLK_DEV_NVME=m\n";
  const std::string listing = "usr/lib/modules/6.1.0-57-cloud-amd64/kernel/drivers/virtio/virtio_pci.ko\n"
                              "usr/lib/modules/6.1.0-57-cloud-amd64/kernel/drivers/block/virtio_blk.ko\n"
                              "usr/lib/modules/6.1.0-57-cloud-amd64/kernel/drivers/scsi/sd_mod.ko\n";
  CHECK(missing_disk_drivers(config, listing) == std::vector<std::string>{"virtio_scsi.ko", "nvme.ko"});
  CHECK(missing_disk_drivers(config + "CONFIG_BLK_DEV_NVME=y\nCONFIG_SCSI_VIRTIO=y\n", listing).empty());
}

TEST_CASE("the full php image has Apache, PHP and the cartridge agent, and is clean", "[contents]") {
  auto img = OpenImage::open(image_for("php", "full"));
  check_common(img, "full");
  auto pkgs = img.packages();
  CHECK(pkgs.count("apache2") == 1);
  CHECK(pkgs.count("libapache2-mod-php") == 1);
  CHECK(pkgs.count("cartridge-agent") == 1);
  CHECK(img.g.is_symlink("/etc/systemd/system/multi-user.target.wants/apache2.service"));
  CHECK(img.g.is_symlink("/etc/systemd/system/multi-user.target.wants/cartridge-agent.service"));
  CHECK(img.g.exists("/var/www/html/index.php"));
  CHECK(img.g.exists("/usr/sbin/cartridge-agent"));
  const auto conf = img.read("/etc/cartridge-agent/agent.conf");
  CHECK(conf.find("mb.urls = 127.0.0.1:1883\n") != std::string::npos);
  CHECK(conf.find("service.name = php\n") != std::string::npos);
  CHECK(conf.find("ports = 80\n") != std::string::npos);
  CHECK(img.read("/etc/motd") == "This instance is a Stratos cartridge built by build-image.\n");
  check_efi_disk(image_for("php", "full"), true);
  // Once: the generic image has the same base layer, so the same kernel and initramfs.
  check_disk_drivers(img, images_dir() / "drivers");
}

TEST_CASE("the generic php image has the Puppet agent and init scripts but no server apps", "[contents]") {
  auto img = OpenImage::open(image_for("php", "generic"));
  check_common(img, "generic");
  auto pkgs = img.packages();
  CHECK(pkgs.count("apache2") == 0);
  CHECK(pkgs.count("cartridge-agent") == 0);
  CHECK_FALSE(img.g.exists("/etc/cartridge-agent/agent.conf"));
}

TEST_CASE("tiny is clean, and the hygiene check finds host keys, Puppet SSL state, logs and history wherever they are",
          "[contents]") {
  // A raw copy of the fixture's tiny image with defects planted in its root filesystem on
  // the host (debugfs, no appliance), some where neither the builder's clean-up nor the
  // earlier check looked (/etc/puppetlabs): the check must name every one, so it reads the
  // whole image, not a list of known paths.
  const auto work = images_dir() / "planted";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const auto raw = work / "planted.raw";
  auto convert = run_process({"qemu-img", "convert", "-O", "raw", image_for("tiny", "generic").string(), raw.string()});
  REQUIRE(convert);
  REQUIRE(convert->exit_code == 0);
  // tiny is hybrid: the root partition (3) follows the ESP.
  const std::uint64_t offset = k_gpt_root_offset;
  std::ofstream(work / "secret") << "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n";
  std::ofstream(work / "commands") << "mkdir /etc/ssh\n"
                                   << "write " << (work / "secret").string() << " /etc/ssh/ssh_host_ed25519_key\n"
                                   << "mkdir /etc/puppetlabs\nmkdir /etc/puppetlabs/puppet\n"
                                   << "mkdir /etc/puppetlabs/puppet/ssl\nmkdir /etc/puppetlabs/puppet/ssl/certs\n"
                                   << "write " << (work / "secret").string()
                                   << " /etc/puppetlabs/puppet/ssl/certs/web1.pem\n"
                                   << "mkdir /var/cache/puppet\nmkdir /var/cache/puppet/ssl\n"
                                   << "mkdir /var/cache/puppet/ssl/private_keys\n"
                                   << "write " << (work / "secret").string()
                                   << " /var/cache/puppet/ssl/private_keys/web1.pem\n"
                                   << "write " << (work / "secret").string() << " /var/log/syslog\n"
                                   << "write " << (work / "secret").string() << " /root/.bash_history\n"
                                   << "mkdir /root/.ssh\n"
                                   << "write " << (work / "secret").string() << " /root/.ssh/authorized_keys\n";
  auto plant = run_process(
      {"debugfs", "-w", "-f", (work / "commands").string(), raw.string() + "?offset=" + std::to_string(offset)});
  REQUIRE(plant);
  INFO(plant->output);
  REQUIRE(plant->exit_code == 0);

  // One appliance: the fixture's tiny image itself (clean: its only hygiene check) and the
  // planted copy.
  auto g = GuestfsHandle::create(use_tcg());
  REQUIRE(g);
  REQUIRE(g->add_drive(image_for("tiny", "generic"), "qcow2", true));
  REQUIRE(g->add_drive(raw, "raw", true));
  REQUIRE(g->launch());
  REQUIRE(g->mount_ro("/dev/sda3", "/"));
  CHECK_THAT(test::hygiene_problems(*g), Catch::Matchers::Equals(std::vector<std::string>{}));
  REQUIRE(g->umount_all());
  REQUIRE(g->mount_ro("/dev/sdb3", "/"));
  const auto problems = test::hygiene_problems(*g);
  INFO(Catch::Detail::stringify(problems));
  for (const char* planted : {"/etc/ssh/ssh_host_ed25519_key", "/etc/puppetlabs/puppet/ssl/certs/web1.pem",
                              "/var/cache/puppet/ssl/private_keys/web1.pem", "/var/log/syslog", "/root/.bash_history",
                              "/root/.ssh/authorized_keys"}) {
    INFO("planted " << planted);
    CHECK(std::count_if(problems.begin(), problems.end(),
                        [&](const std::string& p) { return p.rfind(std::string(planted) + ": ", 0) == 0; }) == 1);
  }
  CHECK(problems.size() == 6);
  REQUIRE(g->shutdown());
  std::filesystem::remove_all(work);
  check_efi_disk(image_for("tiny-sb", "generic"), false); // base.firmware uefi: no BIOS boot code
}

TEST_CASE("images boot under qemu to a login prompt on the serial console", "[boot]") {
  // The hybrid php images under BIOS and the EFI-only tiny-sb with Secure Boot enforced by
  // OVMF holding Microsoft's keys. (tiny under BIOS gave way to tiny-sb: its disk is php
  // generic's; image_from_cloud_image boots it. php full under UEFI: the boot-test below,
  // boot_test_full and image_ssh.)
  const bool kvm = !use_tcg();
  struct Run {
    std::string cartridge, mode, firmware;
  };
  for (const auto& [cartridge, mode, firmware] :
       std::vector<Run>{{"php", "full", "bios"}, {"php", "generic", "bios"}, {"tiny-sb", "generic", "uefi-secure"}}) {
    const auto image = image_for(cartridge, mode);
    QemuBootOptions o;
    o.image = image;
    o.console_log = images_dir() / fmt::format("{}-{}-{}-boot.log", cartridge, mode, firmware);
    o.use_kvm = kvm;
    o.timeout = std::chrono::seconds(240);
    o.firmware = firmware;
    auto r = boot_and_wait(o);
    REQUIRE(r);
    INFO(firmware << ": " << r->console_tail);
    CHECK(r->found);
    const auto console = read_file(o.console_log, 64u << 20);
    REQUIRE(console);
    // The kernel's own verdict: EFI boots say whether Secure Boot is on, BIOS boots nothing.
    const auto secure = console->find("secureboot: Secure boot enabled") != std::string::npos;
    CHECK(secure == (firmware == "uefi-secure"));
    CHECK((console->find("secureboot: Secure boot disabled") != std::string::npos) == (firmware == "uefi"));
    std::printf("boot to login: %s %s %s %.1f s\n", cartridge.c_str(), mode.c_str(), firmware.c_str(), r->seconds);
  }
}

TEST_CASE("the hybrid php full image activates with Secure Boot enforced", "[boot]") {
  // The issue's "php boots and activates under UEFI with Secure Boot enforced": the fixture's
  // hybrid image as built (base.secure_boot is a registration setting; the signed chain is in
  // every EFI image) under OVMF with Microsoft's keys, to the agent's InstanceActivatedEvent
  // on boot-test's broker. BIOS: boot_test_stratos; UEFI without Secure Boot: boot_test_full.
  const auto image = image_for("php", "full");
  const std::vector<std::string> argv = {BI_BINARY,     "boot-test", "--json", "--firmware",
                                         "uefi-secure", "--timeout", "600",    image.string()};
  RunOptions ro;
  ro.timeout = std::chrono::seconds(900);
  auto r = run_process(argv, ro);
  REQUIRE(r);
  INFO(format_argv(argv) << "\n" << r->output);
  REQUIRE(r->exit_code == 0);
  const auto j = nlohmann::json::parse(r->output.substr(r->output.find('{')));
  CHECK(j["passed"] == true);
  CHECK(j["firmware"] == "uefi-secure");
  CHECK(j["guest_secure_boot"] == true); // the guest kernel's "secureboot: Secure boot enabled"
  const auto activated = std::find_if(j["events"].begin(), j["events"].end(), [](const nlohmann::json& e) {
    return e["event"] == "InstanceActivatedEvent" && e["for_member"] == true;
  });
  REQUIRE(activated != j["events"].end());
  CHECK((*activated)["body"]["memberId"] == j["member_id"]);
  // Login and activation both: the first is what a boot to login alone would have cost.
  const auto& login = j["boot_to_login_seconds"];
  std::printf("boot-test php full uefi-secure: boot to login %s, to activated %.1f s\n",
              login.is_number() ? fmt::format("{:.1f} s", login.get<double>()).c_str() : "not seen",
              j["boot_to_activated_seconds"].get<double>());
}

namespace {

nlohmann::json run_build(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {BI_BINARY, "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o;
  o.extra_env = env;
  o.cwd = BI_SOURCE_DIR;
  auto r = run_process(argv, o);
  REQUIRE(r);
  INFO(r->output);
  REQUIRE(r->exit_code == 0);
  return nlohmann::json::parse(r->output.substr(r->output.find('{')));
}

std::string phase_note(const nlohmann::json& image, const std::string& phase) {
  for (const auto& p : image["phases"]) {
    if (p["name"] == phase) {
      return p["note"];
    }
  }
  return "(no phase " + phase + ")";
}

} // namespace

TEST_CASE("a rebuild after an init-script or files change reuses every layer, no appliance", "[rebuild]") {
  const char* cache = std::getenv("BUILD_IMAGE_CACHE");
  REQUIRE(cache != nullptr);
  const auto work = images_dir() / "rebuild";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work / "src");
  for (const char* dir : {"init-scripts", "puppet", "templates"}) {
    std::filesystem::copy(std::filesystem::path(BI_SOURCE_DIR) / dir, work / "src" / dir,
                          std::filesystem::copy_options::recursive);
  }
  {
    std::ofstream f(work / "src/init-scripts/sbin/cartridge-init", std::ios::app);
    f << "# changed by the rebuild test\n";
  }
  {
    std::ofstream f(work / "src/templates/files/motd", std::ios::app);
    f << "changed by the rebuild test\n";
  }
  const std::map<std::string, std::string> env = {{"BUILD_IMAGE_SOURCE_DIR", (work / "src").string()},
                                                  {"BUILD_IMAGE_CACHE", cache}};
  const auto yaml = (work / "src/templates/php.yaml").string();
  auto first = run_build({"--output", (work / "out").string(), yaml}, env)["images"][0];
  CHECK(first["up_to_date"] == false);
  CHECK(phase_note(first, "base-os").rfind("cached", 0) == 0);
  CHECK(phase_note(first, "bootloader") == "cached");
  CHECK(phase_note(first, "system").rfind("cached", 0) == 0);
  CHECK(first["appliance_launches"] == 0);
  std::printf("rebuild after an init-script change: %.1f s\n", first["seconds"].get<double>());
  // The fixture's image had the original script: the new one must differ.
  auto fixture = image_for("php", "full");
  CHECK(first["image"].get<std::string>() != fixture.string());

  auto second = run_build({"--output", (work / "out").string(), yaml}, env)["images"][0];
  CHECK(second["up_to_date"] == true);
  CHECK(second["sha256"] == first["sha256"]);
  std::filesystem::remove_all(work);
}

namespace {

// Runs a build with -v and SIGKILLs its whole process group once its stderr has shown, in
// order, a line matching each of `marks` (the phase and step lines the build prints as it
// goes). The build must not end first, and each wait is bounded.
void kill_at(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
             const std::filesystem::path& log, const std::vector<std::string>& marks, const std::string& what) {
  std::vector<std::string> argv = {BI_BINARY, "-v"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto proc = Subprocess::start(argv, log.string(), env);
  REQUIRE(proc);
  size_t next = 0;
  size_t read_to = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (next < marks.size()) {
    std::string text;
    {
      std::ifstream f(log);
      text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    for (size_t end = 0; next < marks.size() && (end = text.find('\n', read_to)) != std::string::npos;
         read_to = end + 1) {
      const auto current = text.substr(read_to, end - read_to);
      if (std::regex_search(current, std::regex(marks[next]))) {
        ++next;
      } else if (next > 0 && std::regex_search(current, std::regex(R"(info: phase [a-z-]+: (done|FAILED))"))) {
        // The phase the first mark opened ended before the kill point came.
        FAIL("kill during " << what << ": the phase ended before /" << marks[next] << "/; output:\n" << text);
      }
    }
    if (next == marks.size()) {
      break;
    }
    INFO("kill during " << what << ": waiting for /" << marks[next] << "/; output so far:\n" << text);
    REQUIRE(proc->running());
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  proc->signal(SIGKILL);
  proc->stop();
  std::printf("killed during %s\n", what.c_str());
}

// Processes whose command line mentions `text` (the work folder): a killed build's children
// outside its process group must end with it, or they go on writing into the cache.
std::vector<int> processes_mentioning(const std::string& text) {
  std::vector<int> found;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos || std::stoi(name) == ::getpid()) {
      continue;
    }
    std::ifstream f(e.path() / "cmdline");
    const std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmdline.find(text) != std::string::npos) {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

// After a kill: nothing of the build runs on (bounded wait), the catalog parses and every
// image it lists is complete, no image under a final name lacks its manifest, and every
// layer in the cache verifies (a killed layer build never got its final name).
void check_after_kill(const std::filesystem::path& work, const std::filesystem::path& out, const std::string& cache) {
  // Layers are built in the cache's staging folder (tmp/), images in the work folder.
  const std::string staging = (std::filesystem::path(cache) / "tmp").string() + "/";
  auto left = [&] {
    auto found = processes_mentioning(work.string());
    const auto in_staging = processes_mentioning(staging);
    found.insert(found.end(), in_staging.begin(), in_staging.end());
    return found;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!left().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK_THAT(left(), Catch::Matchers::Equals(std::vector<int>{}));
  if (std::filesystem::exists(out / "catalog.json")) {
    auto catalog = catalog_read(out);
    REQUIRE(catalog);
    for (const auto& e : (*catalog)["images"]) {
      const auto image = out / e["file"].get<std::string>();
      REQUIRE(std::filesystem::exists(image));
      auto digest = sha256_file(image);
      REQUIRE(digest);
      CHECK(*digest == e["sha256"].get<std::string>());
    }
  }
  if (std::filesystem::exists(out)) {
    for (const auto& f : std::filesystem::directory_iterator(out)) {
      const auto name = f.path().filename().string();
      if (name[0] != '.' && f.path().extension() == ".qcow2") {
        auto m = f.path();
        m.replace_extension(".json");
        CHECK(std::filesystem::exists(m));
      }
    }
  }
  RunOptions o;
  o.extra_env = {{"BUILD_IMAGE_CACHE", cache}};
  auto verify = run_process({BI_BINARY, "cache", "verify"}, o);
  REQUIRE(verify);
  INFO(verify->output);
  CHECK(verify->exit_code == 0);
}

// The staging folders a layer's killed builds left in the cache's tmp/ (the layer named
// by the kind and key a finished build's manifest records): the next build of that layer
// removes them, so after it there are none.
std::vector<std::string> staging_leftovers(const std::string& cache, const nlohmann::json& image,
                                           const std::string& kind) {
  auto manifest = std::filesystem::path(image["image"].get<std::string>()).replace_extension(".json");
  std::ifstream in(manifest);
  const auto m = nlohmann::json::parse(in);
  const std::string prefix = kind + "-" + m["layers"][kind].get<std::string>() + "-";
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(cache) / "tmp")) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) {
      left.push_back(e.path().filename().string());
    }
  }
  return left;
}

} // namespace

TEST_CASE("SIGKILL in every phase never leaves a half layer, a half image or a broken catalog", "[kill]") {
  // Kill points spread over the whole build, each found from the phase and step lines the
  // build prints: the base OS (mmdebstrap, a cold cache), the system layer (apt, then
  // puppet apply), assembly, conversion and the catalog write (finalize). After each: the
  // checks above; after each group, a build that completes, using no half layer.
  const char* cache = std::getenv("BUILD_IMAGE_CACHE");
  REQUIRE(cache != nullptr);
  const auto work = images_dir() / "kill";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work / "src");
  for (const char* dir : {"init-scripts", "puppet", "templates"}) {
    std::filesystem::copy(std::filesystem::path(BI_SOURCE_DIR) / dir, work / "src" / dir,
                          std::filesystem::copy_options::recursive);
  }
  const std::string line = R"(^\[[0-9:.]+\] debug:   \| )"; // a step or tool output line
  const auto out = work / "out";

  // 1. The base OS, from a cold cache (the small type-only cartridge; the mirror's index
  //    copied so the plan needs no download).
  {
    const auto cold = work / "cold-cache";
    std::filesystem::create_directories(cold);
    if (std::filesystem::exists(std::filesystem::path(cache) / "mirror-index")) {
      std::filesystem::copy(std::filesystem::path(cache) / "mirror-index", cold / "mirror-index",
                            std::filesystem::copy_options::recursive);
    }
    // The bootloader layer (no appliance launch for the builds below) is all it keeps.
    std::filesystem::create_directories(cold / "layers");
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(cache) / "layers")) {
      if (e.path().filename().string().rfind("bootloader-", 0) == 0) {
        auto cp = run_process({"cp", "-a", e.path().string(), (cold / "layers").string()});
        REQUIRE(cp);
        REQUIRE(cp->exit_code == 0);
      }
    }
    const std::map<std::string, std::string> env = {{"BUILD_IMAGE_CACHE", cold.string()}};
    const auto tiny = (std::filesystem::path(BI_SOURCE_DIR) / "tests/data/tiny.yaml").string();
    kill_at({"--output", out.string(), tiny}, env, work / "base.log", {"info: phase base-os: start", line, line},
            "the base OS (mmdebstrap)");
    check_after_kill(work, out, cold.string());
    auto next = run_build({"--output", out.string(), tiny}, env)["images"][0];
    CHECK(phase_note(next, "base-os").rfind("cached", 0) != 0); // built again, not the half one
    CHECK(phase_note(next, "bootloader") == "cached");
    CHECK_THAT(staging_leftovers(cold.string(), next, "base"), Catch::Matchers::Equals(std::vector<std::string>{}));
    check_after_kill(work, out, cold.string());
    std::filesystem::remove_all(cold);
  }

  // 2. The system layer of php full: a Puppet tree change gives it a new key (the base and
  //    bootloader layers stay cached). Killed while apt installs, then while Puppet applies.
  const std::map<std::string, std::string> env = {{"BUILD_IMAGE_SOURCE_DIR", (work / "src").string()},
                                                  {"BUILD_IMAGE_CACHE", cache}};
  const auto yaml = (work / "src/templates/php.yaml").string();
  {
    std::ofstream f(work / "src/puppet/modules/php/manifests/init.pp", std::ios::app);
    f << "# changed by the kill test\n";
  }
  kill_at({"--output", out.string(), yaml}, env, work / "system-apt.log",
          {"info: phase system: start", R"(\| (installing packages|installing the cartridge agent))", line},
          "the system layer (apt)");
  check_after_kill(work, out, cache);
  kill_at({"--output", out.string(), yaml}, env, work / "system-puppet.log",
          {"info: phase system: start", R"(\| puppet apply)", line}, "the system layer (puppet apply)");
  check_after_kill(work, out, cache);
  auto built = run_build({"--output", out.string(), yaml}, env)["images"][0];
  CHECK(phase_note(built, "system").rfind("cached", 0) != 0);
  CHECK_THAT(staging_leftovers(cache, built, "system"), Catch::Matchers::Equals(std::vector<std::string>{}));
  check_after_kill(work, out, cache);

  // 3. Assembly, conversion, catalog write: every layer cached; a new `files` input each
  //    time, so each build really assembles.
  int trial = 0;
  for (const auto& [phase, what] : std::vector<std::pair<std::string, std::string>>{
           {"assemble", "assembly"}, {"convert", "conversion"}, {"finalize", "the catalog write"}}) {
    {
      std::ofstream f(work / "src/templates/files/motd", std::ios::app);
      f << "kill trial " << ++trial << "\n";
    }
    kill_at({"--output", out.string(), yaml}, env, work / (phase + ".log"), {"info: phase " + phase + ": start"}, what);
    check_after_kill(work, out, cache);
  }

  // The next build succeeds, and it is the image a build of the same inputs into a clean
  // folder gives: same name, same bytes (same layers; see README, reproducibility).
  auto next = run_build({"--output", out.string(), yaml}, env)["images"][0];
  auto clean = run_build({"--output", (work / "clean").string(), yaml}, env)["images"][0];
  CHECK(next["name"] == clean["name"]);
  CHECK(next["sha256"] == clean["sha256"]);
  for (const auto& image : {next["image"].get<std::string>(), clean["image"].get<std::string>()}) {
    auto check = run_process({"qemu-img", "check", image});
    REQUIRE(check);
    INFO(check->output);
    CHECK(check->exit_code == 0);
  }
  check_after_kill(work, out, cache);
  std::filesystem::remove_all(work);
}

TEST_CASE("base.image: a cartridge built from an existing cloud image boots and is clean", "[from-image]") {
  const char* cache = std::getenv("BUILD_IMAGE_CACHE");
  REQUIRE(cache != nullptr);
  const auto work = images_dir() / "from-image";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  // Any self-contained Debian qcow2 will do; the fixture's type-only image is one.
  std::filesystem::copy_file(image_for("tiny", "generic"), work / "cloud.qcow2");
  {
    std::ofstream f(work / "fromimage.yaml");
    f << "type: fromimage\nmode: generic\nbase:\n  image: cloud.qcow2\n  size: 3G\n";
  }
  auto built = run_build({"--output", (work / "out").string(), (work / "fromimage.yaml").string()},
                         {{"BUILD_IMAGE_CACHE", cache}})["images"][0];
  const std::filesystem::path image = built["image"].get<std::string>();
  {
    auto img = OpenImage::open(image);
    REQUIRE(img.g.mount_ro("/dev/sda3", "/"));
    REQUIRE(img.g.mount_ro("/dev/sda1", "/boot"));
    CHECK(img.read("/etc/cartridge/cartridge.conf").find("SERVICE_NAME=fromimage\n") != std::string::npos);
    CHECK_THAT(test::hygiene_problems(img.g), Catch::Matchers::Equals(std::vector<std::string>{}));
    CHECK(img.packages().count("puppet-agent") == 1);
    CHECK(img.g.is_symlink("/boot/vmlinuz"));
    CHECK(img.g.is_symlink("/etc/systemd/system/multi-user.target.wants/cartridge-init.service"));
  }
  QemuBootOptions o;
  o.image = image;
  o.console_log = work / "boot.log";
  o.use_kvm = !use_tcg();
  o.timeout = std::chrono::seconds(300);
  auto r = boot_and_wait(o);
  REQUIRE(r);
  INFO(r->console_tail);
  CHECK(r->found);
  std::printf("from a cloud image: built in %.1f s, boot to login %.1f s\n", built["seconds"].get<double>(),
              r->seconds);
  std::filesystem::remove_all(work);
}

TEST_CASE("--format raw and vmdk give images of that format from the same layers", "[formats]") {
  const char* cache = std::getenv("BUILD_IMAGE_CACHE");
  REQUIRE(cache != nullptr);
  const auto out = images_dir() / "formats";
  std::filesystem::remove_all(out);
  for (const std::string format : {"raw", "vmdk"}) {
    auto built = run_build({"--output", out.string(), "--format", format, "tests/data/tiny.yaml"},
                           {{"BUILD_IMAGE_CACHE", cache}})["images"][0];
    const std::filesystem::path image = built["image"].get<std::string>();
    CHECK(image.extension() == "." + format);
    CHECK(built["appliance_launches"] == 0);
    auto info = run_process({"qemu-img", "info", "--output=json", image.string()});
    REQUIRE(info);
    auto j = nlohmann::json::parse(info->output);
    CHECK(j["format"] == format);
    CHECK(j["virtual-size"].get<std::uint64_t>() == (4ull << 30));
  }
  std::filesystem::remove_all(out);
}

TEST_CASE("the same inputs and layers give the same image bytes", "[reproducible]") {
  // Two builds of tiny from the fixture's cached layers, into two output folders, at
  // different times: different hard-link farms (new ctimes, atimes bumped by the first
  // build's reads), the same image. The remote_cache test also compares an image made from
  // downloaded layers with one made from the local ones. Not covered (README,
  // "Reproducibility"): a layer rebuilt from scratch.
  const char* cache = std::getenv("BUILD_IMAGE_CACHE");
  REQUIRE(cache != nullptr);
  const auto work = images_dir() / "reproducible";
  std::filesystem::remove_all(work);
  const std::map<std::string, std::string> env = {{"BUILD_IMAGE_CACHE", cache}};
  auto first = run_build({"--output", (work / "a").string(), "tests/data/tiny.yaml"}, env)["images"][0];
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto second = run_build({"--output", (work / "b").string(), "tests/data/tiny.yaml"}, env)["images"][0];
  CHECK(first["up_to_date"] == false);
  CHECK(second["up_to_date"] == false);
  CHECK(first["layers_built"] == 0);
  CHECK(second["layers_built"] == 0);
  CHECK(first["sha256"] == second["sha256"]);
  auto sha_a = sha256_file(first["image"].get<std::string>());
  auto sha_b = sha256_file(second["image"].get<std::string>());
  REQUIRE(sha_a);
  REQUIRE(sha_b);
  CHECK(*sha_a == *sha_b);
  // The fixture's own tiny image came from the same layers and inputs.
  const auto fixture = image_for("tiny", "generic");
  if (fixture.filename() == std::filesystem::path(first["image"].get<std::string>()).filename()) {
    CHECK(*sha256_file(fixture) == *sha_a);
  }
  std::printf("reproducible: two tiny builds %.1f s and %.1f s, sha256 %s\n", first["seconds"].get<double>(),
              second["seconds"].get<double>(), sha_a->substr(0, 16).c_str());
  std::filesystem::remove_all(work);
}

namespace {

// `build-image boot-test --json --until login --ssh-key KEY.pub ... IMAGE`: its report.
nlohmann::json boot_test_ssh(const std::filesystem::path& image, const std::filesystem::path& key,
                             const std::vector<std::string>& options, const std::filesystem::path& work,
                             const std::string& name) {
  std::vector<std::string> argv = {BI_BINARY,   "boot-test",          "--json", "--until", "login", "--timeout", "600",
                                   "--ssh-key", key.string() + ".pub"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back(image.string());
  RunOptions o;
  o.timeout = std::chrono::seconds(900);
  o.stdout_file = (work / (name + ".json")).string();
  auto r = run_process(argv, o);
  REQUIRE(r);
  INFO(name << ": " << format_argv(argv) << "\n" << r->output);
  auto report = read_file(work / (name + ".json"));
  REQUIRE(report);
  INFO(*report);
  REQUIRE(r->exit_code == 0);
  return nlohmann::json::parse(*report);
}

} // namespace

// boot-test's own NVMe disk, larger overlay and key pair on the config drive, as an
// operator's instance on EC2 Nitro would have them; a second instance of the same image
// (virtio, UEFI) must come up with host keys of its own. Both mount the ESP at /boot/efi.
TEST_CASE("an instance on NVMe takes the config drive's key pair over SSH, refuses passwords, grows / to a larger "
          "disk; two instances (BIOS, UEFI) have different host keys and mount the ESP",
          "[boot-ssh]") {
  const auto image = image_for("php", "full");
  const auto work = images_dir() / "ssh-boot";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const auto key = work / "id_ed25519";
  auto keygen = run_process({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "boot-test", "-f", key.string()});
  REQUIRE(keygen);
  REQUIRE(keygen->exit_code == 0);

  // A disk 2 GiB larger than the image: the disk a larger flavour or volume gives.
  auto info = run_process({"qemu-img", "info", "-U", "--output=json", image.string()});
  REQUIRE(info);
  const auto image_bytes = nlohmann::json::parse(info->output).at("virtual-size").get<std::uint64_t>();
  const std::uint64_t grow = 2ull << 30;
  const auto nvme = boot_test_ssh(image, key, {"--disk-bus", "nvme", "--disk-size", std::to_string(image_bytes + grow)},
                                  work, "nvme");
  CHECK(nvme["passed"] == true);
  CHECK(nvme["disk"]["bus"] == "nvme");
  CHECK(nvme["disk"]["bytes"] == image_bytes + grow);
  // cartridge-init's line names the partition it grew: on NVMe, nvme0n1.
  const std::string growth = nvme["disk"]["root_growth"];
  const std::regex grew_re(
      R"(^cartridge-init: grew / from ([0-9]+) MiB to ([0-9]+) MiB \(/dev/nvme0n1p[0-9]+ on /dev/nvme0n1\)$)");
  std::smatch grew;
  INFO("growth: " << growth);
  REQUIRE(std::regex_match(growth, grew, grew_re));
  // Whole MiB, rounded down on both sides: the partition grew by 2 GiB give or take one.
  const auto grown_mib = std::stoull(grew[2]) - std::stoull(grew[1]);
  CHECK(grown_mib >= (grow >> 20) - 1);
  CHECK(grown_mib <= (grow >> 20));

  const auto& ssh = nvme["ssh"];
  REQUIRE(ssh.is_object());
  CHECK(ssh["user"] == "root");
  CHECK(ssh["logged_in"] == true);
  // Without growth / would be smaller than the image's whole disk; grown, it holds the
  // 2 GiB more (ext4 keeps a few percent for itself).
  REQUIRE(ssh["root_fs_bytes"].is_number());
  const auto root_bytes = ssh["root_fs_bytes"].get<std::uint64_t>();
  CHECK(root_bytes > image_bytes);
  CHECK(root_bytes > (image_bytes + grow - (257ull << 20)) / 100 * 95);
  CHECK(ssh["authorized_keys"] == "600 root");
  // Password login: the server does not offer it at all.
  CHECK(ssh["password_refused"] == true);
  CHECK(ssh["auth_methods"] == "publickey");
  const auto first_keys = ssh["host_keys"].get<std::vector<std::string>>();
  CHECK(first_keys.size() >= 2);

  // A second instance of the same image: every host key is its own (none baked in).
  // The second instance under UEFI (OVMF, Secure Boot off): the hybrid disk's EFI path to
  // an SSH login, at no extra boot.
  const auto virtio = boot_test_ssh(image, key, {"--firmware", "uefi"}, work, "virtio");
  CHECK(virtio["passed"] == true);
  CHECK(virtio["disk"]["bus"] == "virtio");
  CHECK(virtio["firmware"] == "uefi");
  CHECK(virtio["guest_secure_boot"] == false);
  CHECK(virtio["ssh"]["logged_in"] == true);
  // The ESP is mounted whichever firmware started the instance.
  CHECK(nvme["ssh"]["boot_efi"] == "vfat");
  CHECK(virtio["ssh"]["boot_efi"] == "vfat");
  const auto second_keys = virtio["ssh"]["host_keys"].get<std::vector<std::string>>();
  CHECK(second_keys.size() == first_keys.size());
  for (const auto& k : second_keys) {
    INFO("host key " << k << " on both instances");
    CHECK(std::find(first_keys.begin(), first_keys.end(), k) == first_keys.end());
  }
  std::printf("ssh boots: nvme (bios) %.0f s to login (%s), virtio (uefi) %.0f s; %zu host keys each\n",
              nvme["boot_to_login_seconds"].get<double>(), grew[0].str().c_str(),
              virtio["boot_to_login_seconds"].get<double>(), second_keys.size());
  std::filesystem::remove_all(work);
}
