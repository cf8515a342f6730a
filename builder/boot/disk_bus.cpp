#include "boot/disk_bus.hpp"

namespace bi {

const char* to_string(DiskBus bus) {
  switch (bus) {
  case DiskBus::scsi:
    return "scsi";
  case DiskBus::nvme:
    return "nvme";
  case DiskBus::virtio:
    break;
  }
  return "virtio";
}

std::optional<DiskBus> parse_disk_bus(const std::string& text) {
  for (DiskBus b : {DiskBus::virtio, DiskBus::scsi, DiskBus::nvme}) {
    if (text == to_string(b)) {
      return b;
    }
  }
  return std::nullopt;
}

std::vector<std::string> qemu_disk_args(DiskBus bus, const std::string& drive, const std::string& pci) {
  switch (bus) {
  case DiskBus::scsi:
    return {"-device", "virtio-scsi-pci,id=scsi0" + pci,
            "-drive",  drive + ",if=none,id=disk0",
            "-device", "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0"};
  case DiskBus::nvme:
    // bootindex: SeaBIOS and OVMF otherwise try the config drive first.
    return {"-drive", drive + ",if=none,id=disk0", "-device", "nvme,drive=disk0,serial=disk0,bootindex=0" + pci};
  case DiskBus::virtio:
    break;
  }
  return {"-drive", drive + ",if=virtio"};
}

} // namespace bi
