#pragma once
// The cartridge definition as the user wrote it (after validation). Everything the build
// does is derived from this plus the repository's puppet/, init-scripts/ and agent.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bi {

enum class Mode { generic, full };
const char* to_string(Mode mode);

struct PortMapping {
  std::string name;
  std::string protocol;
  int port = 0;
  int proxy_port = 0;
};

struct ExtraFile {
  std::filesystem::path source; // absolute, inside the cartridge folder
  std::string source_as_written;
  std::string dest; // absolute path in the image
  unsigned mode = 0644;
};

struct IaasTarget {
  std::string type; // openstack | ec2
  std::string region;
  std::map<std::string, std::string> properties;
};

struct BaseSpec {
  std::string os;              // e.g. debian-12 (exactly one of os / image)
  std::filesystem::path image; // an existing qcow2/raw cloud image
  std::uint64_t size_bytes = 4ull << 30;
  std::string mirror; // deb822 .sources file or a URL; empty = host's apt sources
  // bios: MBR + extlinux. uefi: GPT + EFI system partition. hybrid: one GPT disk that boots
  // under both (docs/image-contract.md, "Firmware").
  std::string firmware = "hybrid";
  bool secure_boot = false; // the image is registered as needing Secure Boot (EFI only)
};

// Who logs in with the cloud's key pair, and whether sshd runs (docs/image-contract.md,
// "Login, disk and time").
struct LoginSpec {
  std::string user = "root"; // not root: created in the image, password locked, sudo without password
  bool ssh = true;
};

struct Cartridge {
  std::filesystem::path file; // the YAML file
  std::string type;
  std::string display_name;
  std::string description;
  std::string version;
  std::string category = "framework";
  std::string provider;
  std::string host;
  bool multi_tenant = false;
  Mode mode = Mode::generic;
  BaseSpec base;
  std::vector<std::string> packages;
  std::vector<std::string> dependent_apps;
  std::vector<std::string> server_apps;
  std::string puppet_server = "puppet";
  std::string puppet_environment = "production";
  std::vector<std::string> mb_urls;
  std::vector<PortMapping> ports;
  std::vector<ExtraFile> files;
  std::vector<IaasTarget> iaas;
  LoginSpec login;
  std::vector<std::string> ntp_servers; // time.ntp_servers; empty: DHCP's, else Debian's pool
};

} // namespace bi
