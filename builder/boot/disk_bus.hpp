#pragma once
// The bus a boot-test guest's disk hangs on: virtio-blk (OpenStack's default), virtio-scsi
// (hw_disk_bus=scsi) or NVMe (EC2 Nitro). The image must boot from each unchanged
// (docs/image-contract.md, "Login, disk and time").

#include <optional>
#include <string>
#include <vector>

namespace bi {

enum class DiskBus { virtio, scsi, nvme };

const char* to_string(DiskBus bus);
std::optional<DiskBus> parse_disk_bus(const std::string& text);

// qemu arguments attaching one disk on `bus`. `drive` is the -drive option list without
// if=/id= (e.g. "file=x.qcow2,format=qcow2"); `pci` is appended to the controller or NVMe
// device (",bus=pci.0,addr=0x11" when libvirt owns the other slots).
std::vector<std::string> qemu_disk_args(DiskBus bus, const std::string& drive, const std::string& pci = "");

} // namespace bi
