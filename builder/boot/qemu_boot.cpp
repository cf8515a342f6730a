#include "boot/qemu_boot.hpp"

#include <thread>

#include <spdlog/spdlog.h>

#include "boot/libvirt_domain.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi {

Expected<QemuBootResult> boot_and_wait(const QemuBootOptions& o) {
  std::error_code ec;
  std::filesystem::remove(o.console_log, ec);
  std::string netdev = "user,id=n0,restrict=on";
  for (const auto& f : o.guestfwd) {
    netdev += ",guestfwd=" + f;
  }
  std::vector<std::string> argv = {"qemu-system-x86_64",
                                   "-accel",
                                   o.use_kvm ? "kvm" : "tcg",
                                   "-m",
                                   std::to_string(o.memory_mib),
                                   "-smp",
                                   "2",
                                   "-display",
                                   "none",
                                   "-monitor",
                                   "none",
                                   "-serial",
                                   "file:" + o.console_log.string(),
                                   "-snapshot",
                                   "-netdev",
                                   netdev,
                                   "-device",
                                   "virtio-net-pci,netdev=n0"};
  if (o.firmware != "bios") {
    const OvmfFiles f = ovmf_files(o.firmware);
    const std::string vars = o.console_log.string() + ".vars";
    std::filesystem::copy_file(f.vars_template, vars, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      return fail(f.vars_template.string(), "cannot copy OVMF's variable store (install ovmf): " + ec.message(),
                  ExitCode::host_missing);
    }
    const bool secure = o.firmware == "uefi-secure";
    argv.insert(argv.end(), {"-machine", secure ? "q35,smm=on" : "q35"});
    if (secure) {
      argv.insert(argv.end(), {"-global", "driver=cfi.pflash01,property=secure,value=on"});
    }
    argv.insert(argv.end(), {"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + f.code.string(), "-drive",
                             "if=pflash,format=raw,unit=1,file=" + vars});
  }
  const auto disk = qemu_disk_args(o.disk_bus, "file=" + o.image.string());
  argv.insert(argv.end(), disk.begin(), disk.end());
  for (const auto& d : o.extra_drives) {
    argv.insert(argv.end(), {"-drive", "file=" + d.string() + ",if=virtio,format=raw,readonly=on"});
  }
  const auto start = std::chrono::steady_clock::now();
  BI_TRY_ASSIGN(Subprocess qemu, Subprocess::start(argv, o.console_log.string() + ".qemu"));
  QemuBootResult result;
  while (std::chrono::steady_clock::now() - start < o.timeout) {
    if (interrupted()) {
      return fail(o.image.string(), "interrupted");
    }
    auto text = read_file(o.console_log, 64u << 20);
    if (text && text->find(o.wait_for) != std::string::npos) {
      result.found = true;
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      break;
    }
    if (!qemu.running()) {
      auto err = read_file(o.console_log.string() + ".qemu");
      return fail(o.image.string(), "qemu exited (status " + std::to_string(qemu.exit_code()) +
                                        ") before the guest printed '" + o.wait_for + "': " + (err ? *err : ""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  if (auto text = read_file(o.console_log, 64u << 20)) {
    result.console_tail = text->size() > 4000 ? text->substr(text->size() - 4000) : *text;
  }
  qemu.stop();
  return result;
}

} // namespace bi
