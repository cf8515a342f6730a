#pragma once
// EC2 registration through the EBS direct APIs (as awslabs' coldsnap does): the disk is read
// block by block through qemu-nbd (any format: qcow2 is decompressed on the fly, nothing is
// converted to a temp file), all-zero blocks are skipped, non-zero 512 KiB blocks are sent
// in parallel with PutSnapshotBlock and a SHA-256 each, CompleteSnapshot carries the LINEAR
// aggregate checksum; then RegisterImage (hvm, ENA, BootMode, IMDSv2) on the snapshot.
// Idempotent by image name (DescribeImages), by a completed snapshot tagged with the
// image's content (resumes at RegisterImage) and by ClientToken.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "net/credentials.hpp"
#include "register/consistency.hpp"
#include "register/image_info.hpp"
#include "util/expected.hpp"

namespace bi::cloud {

inline constexpr std::uint64_t k_ebs_block_size = std::uint64_t{512} * 1024;

struct Ec2Options {
  std::string region;
  int workers = 8;                       // parallel PutSnapshotBlock requests
  std::string boot_mode = "legacy-bios"; // our images boot extlinux from the MBR
  std::string volume_type = "gp3";
  int snapshot_timeout_minutes = 60;       // StartSnapshot Timeout
  std::chrono::seconds wait_timeout{3600}; // for the snapshot to become completed
  ConsistencyPolicy consistency;           // waits for a new snapshot to become visible
};

// A disk image read as its raw virtual disk, through qemu-nbd + libnbd.
class DiskReader {
public:
  static Expected<DiskReader> open(const fs::path& image, const std::string& format);
  DiskReader(DiskReader&&) noexcept;
  DiskReader& operator=(DiskReader&&) = delete;
  ~DiskReader();
  std::uint64_t size() const { return m_size; }
  // Indices of the blocks of `block_size` that hold data (not reported as zero).
  Expected<std::vector<std::uint64_t>> data_blocks(std::uint64_t block_size);
  // Reads [offset, offset+len) (zero-filled past the end of the disk).
  Expected<void> read(std::uint64_t offset, char* buf, std::size_t len);

private:
  DiskReader() = default;
  struct Impl;
  Impl* m_impl = nullptr;
  std::uint64_t m_size = 0;
};

// The LINEAR aggregate: base64(SHA-256(concatenation of the raw per-block SHA-256 digests
// in block-index order)).
std::string linear_checksum(const std::map<std::uint64_t, std::string>& raw_block_digests);

// The EC2 Query API form body for RegisterImage (exposed for tests).
std::string register_image_form(const BuiltImage& image, const std::string& snapshot_id, std::uint64_t volume_gib,
                                const Ec2Options& options, const std::string& client_token);

// The text of every <tag>...</tag> in an XML document, in order.
std::vector<std::string> xml_values(const std::string& xml, const std::string& tag);

// Parsers of the EC2 Query API (XML) and EBS direct API (JSON) answers. Server responses
// are untrusted input: these never throw (fuzzed: tests/fuzz/), and every ID they return
// passes valid_resource_id (IDs go into request paths and forms).
struct Ec2Image {
  std::string id;
  std::string state; // "" when the item has none
};
// DescribeImages: imageId with its imageState, per <item>.
Expected<std::vector<Ec2Image>> parse_describe_images(const std::string& xml);
// DescribeSnapshots: the snapshotIds, and the status of the first snapshot ("" if none).
Expected<std::vector<std::string>> parse_snapshot_ids(const std::string& xml);
std::string parse_snapshot_status(const std::string& xml);
// RegisterImage: the new imageId.
Expected<std::string> parse_register_image(const std::string& xml);
// An EC2 error answer: "Code: Message" (or the start of the body when it has neither), with
// registered secrets masked (register_secret).
std::string parse_ec2_error(const std::string& xml);

struct StartedSnapshot {
  std::string id;
  std::uint64_t block_size = 0;
};
// EBS StartSnapshot (JSON): SnapshotId and BlockSize (a missing BlockSize is 512 KiB).
Expected<StartedSnapshot> parse_start_snapshot(std::string_view json);

Expected<RegisterResult> register_ec2(const BuiltImage& image, AwsConfig aws, const Ec2Options& options,
                                      const RegisterEvents& events);

} // namespace bi::cloud
