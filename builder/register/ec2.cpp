#include "register/ec2.hpp"

#include <libnbd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "net/http.hpp"
#include "net/sigv4.hpp"
#include "register/provider.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/process.hpp"
#include "util/text.hpp"
#include "util/undo.hpp"

namespace bi::registration {

namespace {

using Clock = std::chrono::steady_clock;

std::string random_token() {
  std::random_device rd;
  std::uniform_int_distribution<int> d(0, 15);
  std::string s;
  for (int i = 0; i < 32; ++i) {
    s += "0123456789abcdef"[d(rd)];
  }
  return s;
}

std::string nbd_err() {
  const char* e = nbd_get_error();
  return e ? e : "unknown libnbd error";
}

} // namespace

// ---------------------------------------------------------------- DiskReader

struct DiskReader::Impl {
  std::optional<TempDir> dir;
  std::optional<Subprocess> server;
  nbd_handle* nbd = nullptr;
  ~Impl() {
    if (nbd != nullptr) {
      nbd_shutdown(nbd, 0);
      nbd_close(nbd);
    }
    if (server) {
      server->stop(std::chrono::milliseconds(2000));
    }
  }
};

Expected<DiskReader> DiskReader::open(const fs::path& image, const std::string& format) {
  if (!program_available("qemu-nbd")) {
    return fail("qemu-nbd", "not found (install qemu-utils)", ExitCode::host_missing);
  }
  DiskReader r;
  r.m_impl = new Impl;
  BI_TRY_ASSIGN(TempDir dir, TempDir::create(fs::temp_directory_path(), "build-image-nbd-"));
  r.m_impl->dir.emplace(std::move(dir));
  const fs::path sock = r.m_impl->dir->path() / "nbd.sock";
  const fs::path log = r.m_impl->dir->path() / "qemu-nbd.log";
  BI_TRY_ASSIGN(Subprocess server, Subprocess::start({"qemu-nbd", "--read-only", "--shared=1", "--format=" + format,
                                                      "--socket=" + sock.string(), fs::absolute(image).string()},
                                                     log.string()));
  r.m_impl->server.emplace(std::move(server));
  std::error_code ec;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!fs::exists(sock, ec)) {
    if (!r.m_impl->server->running()) {
      auto text = read_file(log);
      return fail("qemu-nbd " + image.string(),
                  "exited before serving the image: " + (text ? text->substr(0, 500) : std::string("(no log)")));
    }
    if (Clock::now() > deadline) {
      return fail("qemu-nbd " + image.string(), "did not create its socket within 30 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.m_impl->nbd = nbd_create();
  if (r.m_impl->nbd == nullptr) {
    return fail("libnbd", nbd_err());
  }
  nbd_add_meta_context(r.m_impl->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (nbd_connect_unix(r.m_impl->nbd, sock.c_str()) == -1) {
    return fail("qemu-nbd " + image.string(), "cannot connect: " + nbd_err());
  }
  const int64_t size = nbd_get_size(r.m_impl->nbd);
  if (size < 0) {
    return fail("qemu-nbd " + image.string(), "no size: " + nbd_err());
  }
  r.m_size = static_cast<std::uint64_t>(size);
  return r;
}

DiskReader::DiskReader(DiskReader&& o) noexcept : m_impl(o.m_impl), m_size(o.m_size) { o.m_impl = nullptr; }

DiskReader::~DiskReader() { delete m_impl; }

Expected<std::vector<std::uint64_t>> DiskReader::data_blocks(std::uint64_t block_size) {
  std::vector<std::uint64_t> blocks;
  const std::uint64_t nblocks = (m_size + block_size - 1) / block_size;
  if (nbd_can_meta_context(m_impl->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1) {
    // No allocation map: every block is a candidate (zero blocks are still skipped after reading).
    for (std::uint64_t i = 0; i < nblocks; ++i) {
      blocks.push_back(i);
    }
    return blocks;
  }
  std::vector<bool> data(nblocks, false);
  struct Ctx {
    std::vector<bool>* data = nullptr;
    std::uint64_t block_size = 0;
    std::uint64_t next = 0; // where the server's answer ended
  } ctx{&data, block_size, 0};
  std::uint64_t offset = 0;
  while (offset < m_size) {
    const std::uint64_t count = std::min<std::uint64_t>(m_size - offset, 1ull << 30);
    ctx.next = offset;
    nbd_extent_callback cb;
    cb.user_data = &ctx;
    cb.free = nullptr;
    cb.callback = [](void* user, const char* metacontext, uint64_t off, uint32_t* entries, size_t n, int*) -> int {
      auto* c = static_cast<Ctx*>(user);
      if (std::strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) {
        return 0;
      }
      for (size_t i = 0; i + 1 < n; i += 2) {
        const std::uint64_t len = entries[i];
        const std::uint32_t flags = entries[i + 1];
        if ((flags & LIBNBD_STATE_ZERO) == 0 && len > 0) {
          for (std::uint64_t b = off / c->block_size; b <= (off + len - 1) / c->block_size && b < c->data->size();
               ++b) {
            (*c->data)[b] = true;
          }
        }
        off += len;
      }
      c->next = off;
      return 0;
    };
    if (nbd_block_status(m_impl->nbd, count, offset, cb, 0) == -1) {
      return fail("qemu-nbd", "block status failed: " + nbd_err());
    }
    if (ctx.next <= offset) {
      return fail("qemu-nbd", "block status made no progress");
    }
    offset = ctx.next;
  }
  for (std::uint64_t i = 0; i < nblocks; ++i) {
    if (data[i]) {
      blocks.push_back(i);
    }
  }
  return blocks;
}

Expected<void> DiskReader::read(std::uint64_t offset, char* buf, std::size_t len) {
  std::size_t n = len;
  if (offset >= m_size) {
    n = 0;
  } else if (offset + len > m_size) {
    n = static_cast<std::size_t>(m_size - offset);
  }
  if (n < len) {
    std::memset(buf + n, 0, len - n);
  }
  if (n > 0 && nbd_pread(m_impl->nbd, buf, n, offset, 0) == -1) {
    return fail("qemu-nbd", fmt::format("read of {} bytes at {} failed: {}", n, offset, nbd_err()));
  }
  return Ok{};
}

// ---------------------------------------------------------------- helpers

std::string linear_checksum(const std::map<std::uint64_t, std::string>& raw_block_digests) {
  std::string all;
  all.reserve(raw_block_digests.size() * 32);
  for (const auto& [index, digest] : raw_block_digests) {
    all += digest;
  }
  return net::base64(net::sha256_raw(all));
}

std::vector<std::string> xml_values(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">";
  const std::string close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    const auto start = pos + open.size();
    const auto end = xml.find(close, start);
    if (end == std::string::npos) {
      break;
    }
    out.push_back(xml.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

Expected<std::vector<Ec2Image>> parse_describe_images(const std::string& xml) {
  std::vector<Ec2Image> out;
  // Each image is an <item> of <imagesSet>; an item's own imageState belongs to it (a
  // missing one must not shift the states of the next images).
  for (const auto& item : xml_values(xml, "item")) {
    const auto ids = xml_values(item, "imageId");
    if (ids.empty()) {
      continue;
    }
    if (!net::valid_resource_id(ids.front())) {
      return fail("ec2 DescribeImages", fmt::format("invalid imageId '{}' in the response", ids.front().substr(0, 64)));
    }
    const auto states = xml_values(item, "imageState");
    out.push_back({ids.front(), states.empty() ? "" : states.front()});
  }
  return out;
}

Expected<std::vector<std::string>> parse_snapshot_ids(const std::string& xml) {
  auto ids = xml_values(xml, "snapshotId");
  for (const auto& id : ids) {
    if (!net::valid_resource_id(id)) {
      return fail("ec2 DescribeSnapshots", fmt::format("invalid snapshotId '{}' in the response", id.substr(0, 64)));
    }
  }
  return ids;
}

std::string parse_snapshot_status(const std::string& xml) {
  const auto status = xml_values(xml, "status");
  return status.empty() ? "" : status.front();
}

Expected<std::string> parse_register_image(const std::string& xml) {
  const auto ids = xml_values(xml, "imageId");
  if (ids.empty()) {
    return fail("ec2 RegisterImage", "no imageId in the response");
  }
  if (!net::valid_resource_id(ids.front())) {
    return fail("ec2 RegisterImage", fmt::format("invalid imageId '{}' in the response", ids.front().substr(0, 64)));
  }
  return ids.front();
}

std::string parse_ec2_error(const std::string& raw) {
  const std::string xml = net::redact_secrets(raw);
  const auto codes = xml_values(xml, "Code");
  const auto messages = xml_values(xml, "Message");
  std::string out = codes.empty() ? "" : codes.front().substr(0, 200);
  if (!messages.empty()) {
    append_separated(out, ": ", messages.front().substr(0, 500));
  } else {
    append_separated(out, ": ", xml.substr(0, 200));
  }
  return out;
}

Expected<StartedSnapshot> parse_start_snapshot(std::string_view json) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail("ebs StartSnapshot", "the response is not a JSON object");
  }
  StartedSnapshot out;
  const auto id = j.find("SnapshotId");
  if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    return fail("ebs StartSnapshot", "no SnapshotId in the response");
  }
  out.id = id->get<std::string>();
  if (!net::valid_resource_id(out.id)) {
    return fail("ebs StartSnapshot", fmt::format("invalid SnapshotId '{}' in the response", out.id.substr(0, 64)));
  }
  out.block_size = k_ebs_block_size;
  if (const auto bs = j.find("BlockSize"); bs != j.end()) {
    if (!bs->is_number_unsigned()) {
      return fail("ebs StartSnapshot", fmt::format("unexpected BlockSize {}", bs->dump().substr(0, 64)));
    }
    out.block_size = bs->get<std::uint64_t>();
  }
  return out;
}

namespace {

std::string form(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    append_separated(out, "&", net::url_encode(k) + "=" + net::url_encode(v));
  }
  return out;
}

class Aws {
public:
  Aws(net::AwsConfig config) : m_config(std::move(config)) {}

  // EC2 Query API call; returns the XML body of a 200, or an error with AWS's code/message.
  Expected<std::string> ec2(const std::string& action, std::vector<std::pair<std::string, std::string>> params,
                            bool cleanup = false) const {
    BI_TRY_ASSIGN(net::HttpResponse resp, ec2_response(action, std::move(params), cleanup));
    return ec2_body(action, resp);
  }

  // The body of a 200 answer of `action`, else an error with AWS's code and message.
  Expected<std::string> ec2_body(const std::string& action, const net::HttpResponse& resp) const {
    if (resp.status != 200) {
      return fail(fmt::format("ec2 {} ({})", action, net::redact_url(m_config.ec2_endpoint + "/")),
                  fmt::format("HTTP {}: {}", resp.status, parse_ec2_error(resp.body)));
    }
    return resp.body;
  }

  // The answer of an EC2 Query API call, whatever its status.
  Expected<net::HttpResponse> ec2_response(const std::string& action,
                                           std::vector<std::pair<std::string, std::string>> params,
                                           bool cleanup = false) const {
    params.insert(params.begin(), {{"Action", action}, {"Version", "2016-11-15"}});
    const std::string body = form(params);
    const std::string url = m_config.ec2_endpoint + "/";
    return net::send_with_retry([&]() -> Expected<net::HttpRequest> {
      net::SigV4Params p;
      p.region = m_config.region;
      p.service = "ec2";
      auto r = net::signed_request("POST", url, {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
                                   body, m_config.credentials, p);
      if (r) {
        r->timeout = std::chrono::seconds(60);
        r->cleanup = cleanup;
      }
      return r;
    });
  }

  // EBS direct API call (REST-JSON).
  Expected<net::HttpResponse> ebs(const std::string& method, const std::string& path, net::Headers headers,
                                  std::string body, bool unsigned_payload, net::RetryPolicy policy = {}) const {
    const std::string url = m_config.ebs_endpoint + path;
    return net::send_with_retry(
        [&]() -> Expected<net::HttpRequest> {
          net::SigV4Params p;
          p.region = m_config.region;
          p.service = "ebs";
          if (unsigned_payload) {
            p.payload_hash = "UNSIGNED-PAYLOAD";
            p.add_content_sha256 = true;
          }
          auto r = net::signed_request(method, url, headers, body, m_config.credentials, p);
          if (r) {
            r->timeout = std::chrono::seconds(120);
            r->stall_timeout = std::chrono::seconds(30);
          }
          return r;
        },
        policy);
  }

  const net::AwsConfig& config() const { return m_config; }

private:
  net::AwsConfig m_config;
};

// Bounded queue of blocks between the reader and the upload workers.
struct Block {
  std::uint64_t index = 0;
  std::string data;
  std::string digest; // raw SHA-256
};

class BlockQueue {
public:
  explicit BlockQueue(size_t cap) : m_cap(cap) {}
  bool push(Block b) {
    std::unique_lock lock(m_mutex);
    m_not_full.wait(lock, [&] { return m_items.size() < m_cap || m_closed; });
    if (m_closed) {
      return false;
    }
    m_items.push_back(std::move(b));
    m_not_empty.notify_one();
    return true;
  }
  std::optional<Block> pop() {
    std::unique_lock lock(m_mutex);
    m_not_empty.wait(lock, [&] { return !m_items.empty() || m_closed || m_done; });
    if (m_items.empty()) {
      return std::nullopt;
    }
    Block b = std::move(m_items.front());
    m_items.pop_front();
    m_not_full.notify_one();
    return b;
  }
  void finish() { // no more pushes; workers drain
    std::lock_guard lock(m_mutex);
    m_done = true;
    m_not_empty.notify_all();
  }
  void abort() { // stop everything
    std::lock_guard lock(m_mutex);
    m_closed = true;
    m_items.clear();
    m_not_empty.notify_all();
    m_not_full.notify_all();
  }

private:
  size_t m_cap;
  std::mutex m_mutex;
  std::condition_variable m_not_full, m_not_empty;
  std::deque<Block> m_items;
  bool m_closed = false;
  bool m_done = false;
};

bool all_zero(const std::string& data) {
  // Compare in words; blocks are 512 KiB and aligned by std::string's allocator.
  const char* p = data.data();
  size_t n = data.size();
  while (n >= 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    if (w != 0) {
      return false;
    }
    p += 8;
    n -= 8;
  }
  while (n-- > 0) {
    if (*p++ != 0) {
      return false;
    }
  }
  return true;
}

} // namespace

std::string ec2_boot_mode(const std::string& firmware, bool secure_boot) {
  if (firmware == "uefi" || secure_boot) {
    return "uefi"; // uefi-preferred would start a Secure Boot image under BIOS on older types
  }
  return firmware == "hybrid" ? "uefi-preferred" : "legacy-bios";
}

std::string register_image_form(const BuiltImage& image, const std::string& snapshot_id, std::uint64_t volume_gib,
                                const Ec2Options& options, const std::string& client_token) {
  const std::string boot_mode = ec2_boot_mode(image.manifest.firmware(), image.manifest.secure_boot());
  std::vector<std::pair<std::string, std::string>> params = {
      {"Name", image.manifest.name},
      {"Description", fmt::format("build-image {} ({} mode), sha256 {}", image.manifest.cartridge, image.manifest.mode,
                                  image.manifest.sha256.substr(0, 16))},
      {"Architecture", "x86_64"},
      {"VirtualizationType", "hvm"},
      {"RootDeviceName", "/dev/xvda"},
      {"BlockDeviceMapping.1.DeviceName", "/dev/xvda"},
      {"BlockDeviceMapping.1.Ebs.SnapshotId", snapshot_id},
      {"BlockDeviceMapping.1.Ebs.VolumeSize", std::to_string(volume_gib)},
      {"BlockDeviceMapping.1.Ebs.VolumeType", options.volume_type},
      {"BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"},
      {"EnaSupport", "true"},
      {"SriovNetSupport", "simple"},
      {"BootMode", boot_mode},
      {"ImdsSupport", "v2.0"},
      {"ClientToken", client_token},
      {"TagSpecification.1.ResourceType", "image"},
      {"TagSpecification.1.Tag.1.Key", "build-image:inputs-key"},
      {"TagSpecification.1.Tag.1.Value", image.manifest.inputs_key},
      {"TagSpecification.1.Tag.2.Key", "build-image:sha256"},
      {"TagSpecification.1.Tag.2.Value", image.manifest.sha256}};
  if (boot_mode == "uefi") {
    params.emplace_back("TpmSupport", "v2.0"); // NitroTPM, for measured boot; EC2 allows it with UEFI only
  }
  return form(params);
}

namespace {

// The query parameters (not yet form-encoded) of register_image_form, for Aws::ec2.
std::vector<std::pair<std::string, std::string>> parse_form(const std::string& body) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    const auto amp = body.find('&', pos);
    const std::string pair = body.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    const auto eq = pair.find('=');
    out.emplace_back(net::url_decode(pair.substr(0, eq)),
                     eq == std::string::npos ? "" : net::url_decode(pair.substr(eq + 1)));
    if (amp == std::string::npos) {
      break;
    }
    pos = amp + 1;
  }
  return out;
}

// 1. Already registered under this name? Its AMI id, or "".
Expected<std::string> find_registered_ami(const Aws& aws, const BuiltImage& image) {
  BI_TRY_ASSIGN(std::string images_xml,
                aws.ec2("DescribeImages",
                        {{"Owner.1", "self"}, {"Filter.1.Name", "name"}, {"Filter.1.Value.1", image.manifest.name}}));
  BI_TRY_ASSIGN(std::vector<Ec2Image> images, parse_describe_images(images_xml));
  for (const auto& found : images) {
    if (found.state == "available" || found.state == "pending") {
      return found.id;
    }
  }
  return std::string();
}

// 2. A completed snapshot of these exact bytes from an earlier run (RegisterImage failed)? Its id, or "".
Expected<std::string> find_completed_snapshot(const Aws& aws, const BuiltImage& image) {
  BI_TRY_ASSIGN(std::string snaps_xml, aws.ec2("DescribeSnapshots", {{"Owner.1", "self"},
                                                                     {"Filter.1.Name", "tag:build-image:inputs-key"},
                                                                     {"Filter.1.Value.1", image.manifest.inputs_key},
                                                                     {"Filter.2.Name", "tag:build-image:sha256"},
                                                                     {"Filter.2.Value.1", image.manifest.sha256},
                                                                     {"Filter.3.Name", "status"},
                                                                     {"Filter.3.Value.1", "completed"}}));
  BI_TRY_ASSIGN(std::vector<std::string> done_snaps, parse_snapshot_ids(snaps_xml));
  return done_snaps.empty() ? std::string() : done_snaps.front();
}

// 3. StartSnapshot (the ClientToken makes retries of this request idempotent).
Expected<std::string> start_snapshot(const Aws& aws, const BuiltImage& image, const Ec2Options& options,
                                     std::uint64_t volume_gib) {
  const std::string token = random_token();
  nlohmann::json start_body = {{"VolumeSize", volume_gib},
                               {"Timeout", options.snapshot_timeout_minutes},
                               {"ClientToken", token},
                               {"Description", "build-image " + image.manifest.name},
                               {"Tags",
                                {{{"Key", "Name"}, {"Value", image.manifest.name}},
                                 {{"Key", "build-image:inputs-key"}, {"Value", image.manifest.inputs_key}},
                                 {{"Key", "build-image:sha256"}, {"Value", image.manifest.sha256}}}}};
  BI_TRY_ASSIGN(net::HttpResponse started,
                aws.ebs("POST", "/snapshots", {{"Content-Type", "application/json"}}, start_body.dump(), false));
  if (started.status != 201 && started.status != 200) {
    return Unexpected{net::http_error("POST", aws.config().ebs_endpoint + "/snapshots", started)};
  }
  BI_TRY_ASSIGN(StartedSnapshot started_snapshot, parse_start_snapshot(started.body));
  if (started_snapshot.block_size != k_ebs_block_size) {
    return fail("ebs StartSnapshot", fmt::format("unexpected BlockSize {}", started_snapshot.block_size));
  }
  return started_snapshot.id;
}

// 4. The blocks: reader (this thread) -> queue -> workers sending PutSnapshotBlock. Returns
//    the raw SHA-256 of every block sent, by index; fills the result's byte and block counts.
Expected<std::map<std::uint64_t, std::string>> upload_blocks(const Aws& aws, const BuiltImage& image,
                                                             const std::string& snapshot_id, const Ec2Options& options,
                                                             const RegisterEvents& events, RegisterResult& result) {
  BI_TRY_ASSIGN(DiskReader disk, DiskReader::open(image.image, image.manifest.format));
  if (image.manifest.virtual_size != 0 && disk.size() != image.manifest.virtual_size) {
    return fail(image.image.string(), fmt::format("virtual size {} differs from the manifest's {}", disk.size(),
                                                  image.manifest.virtual_size));
  }
  BI_TRY_ASSIGN(std::vector<std::uint64_t> candidates, disk.data_blocks(k_ebs_block_size));
  const std::uint64_t total_bytes = candidates.size() * k_ebs_block_size;
  std::map<std::uint64_t, std::string> digests;
  std::mutex digests_mutex;
  std::atomic<std::uint64_t> sent_bytes{0};
  std::atomic<std::uint64_t> sent_blocks{0};
  std::optional<Error> first_error;
  std::mutex error_mutex;
  BlockQueue queue(static_cast<size_t>(std::max(2, options.workers * 2)));
  auto set_error = [&](Error e) {
    std::lock_guard lock(error_mutex);
    if (!first_error) {
      first_error = std::move(e);
    }
    queue.abort();
  };
  const auto upload_start = Clock::now();
  // Shared by the workers: the first lagging answer is logged once for the snapshot.
  ConsistencyWait block_wait("ebs PutSnapshotBlock " + snapshot_id, options.consistency);
  std::vector<std::thread> workers;
  const int nworkers = std::max(1, options.workers);
  workers.reserve(static_cast<size_t>(nworkers));
  for (int w = 0; w < nworkers; ++w) {
    workers.emplace_back([&] {
      net::RetryPolicy policy;
      policy.max_attempts = 8;
      policy.first_delay = std::chrono::milliseconds(200);
      while (auto block = queue.pop()) {
        const std::string path = fmt::format("/snapshots/{}/blocks/{}", snapshot_id, block->index);
        const std::string checksum = net::base64(block->digest);
        const auto progress_pct = candidates.empty() ? 100 : (sent_blocks.load() * 100) / candidates.size();
        auto resp = block_wait.run([&] {
          return aws.ebs("PUT", path,
                         {{"Content-Type", "application/octet-stream"},
                          {"x-amz-Data-Length", std::to_string(block->data.size())},
                          {"x-amz-Checksum", checksum},
                          {"x-amz-Checksum-Algorithm", "SHA256"},
                          {"x-amz-Progress", std::to_string(progress_pct)}},
                         block->data, true, policy);
        });
        if (!resp) {
          set_error(resp.error());
          return;
        }
        if (resp->status != 201 && resp->status != 200) {
          set_error(net::http_error("PUT", aws.config().ebs_endpoint + path, *resp));
          return;
        }
        {
          std::lock_guard lock(digests_mutex);
          digests[block->index] = block->digest;
        }
        sent_blocks.fetch_add(1);
        events.progress(sent_bytes.fetch_add(block->data.size()) + block->data.size(), total_bytes);
      }
    });
  }
  std::uint64_t skipped = 0;
  for (std::uint64_t index : candidates) {
    if (interrupted()) {
      set_error(make_error("ec2 upload", "interrupted"));
      break;
    }
    Block b;
    b.index = index;
    b.data.resize(k_ebs_block_size);
    auto r = disk.read(index * k_ebs_block_size, b.data.data(), b.data.size());
    if (!r) {
      set_error(r.error());
      break;
    }
    if (all_zero(b.data)) {
      ++skipped;
      continue;
    }
    b.digest = net::sha256_raw(b.data);
    if (!queue.push(std::move(b))) {
      break; // aborted by a worker
    }
  }
  queue.finish();
  for (auto& t : workers) {
    t.join();
  }
  result.upload_seconds = std::chrono::duration<double>(Clock::now() - upload_start).count();
  result.bytes_sent = sent_bytes.load();
  result.blocks_sent = sent_blocks.load();
  result.blocks_skipped = skipped + ((disk.size() + k_ebs_block_size - 1) / k_ebs_block_size - candidates.size());
  if (first_error) {
    return fail(first_error->object,
                first_error->detail + fmt::format(" (snapshot {} abandoned and deleted)", snapshot_id));
  }
  return digests;
}

// 5. CompleteSnapshot with the LINEAR aggregate checksum.
Expected<void> complete_snapshot(const Aws& aws, const std::string& snapshot_id, const Ec2Options& options,
                                 const std::map<std::uint64_t, std::string>& digests) {
  ConsistencyWait complete_wait("ebs CompleteSnapshot " + snapshot_id, options.consistency);
  BI_TRY_ASSIGN(net::HttpResponse completed, complete_wait.run([&] {
    return aws.ebs("POST", "/snapshots/completion/" + snapshot_id,
                   {{"x-amz-ChangedBlocksCount", std::to_string(digests.size())},
                    {"x-amz-Checksum", linear_checksum(digests)},
                    {"x-amz-Checksum-Algorithm", "SHA256"},
                    {"x-amz-Checksum-Aggregation-Method", "LINEAR"}},
                   "", false);
  }));
  if (completed.status != 202 && completed.status != 200) {
    return Unexpected{
        net::http_error("POST", aws.config().ebs_endpoint + "/snapshots/completion/" + snapshot_id, completed)};
  }
  return Ok{};
}

// 6. Waits for the snapshot to be completed.
Expected<void> wait_snapshot_completed(const Aws& aws, const std::string& snapshot_id, const Ec2Options& options) {
  const auto deadline = Clock::now() + options.wait_timeout;
  auto delay = std::chrono::milliseconds(500);
  ConsistencyWait describe_wait("ec2 DescribeSnapshots " + snapshot_id, options.consistency);
  for (;;) {
    BI_TRY_ASSIGN(net::HttpResponse described, describe_wait.run([&] {
      return aws.ec2_response("DescribeSnapshots", {{"SnapshotId.1", snapshot_id}});
    }));
    BI_TRY_ASSIGN(std::string xml, aws.ec2_body("DescribeSnapshots", described));
    const std::string s = parse_snapshot_status(xml);
    if (s == "completed") {
      return Ok{};
    }
    if (s == "error") {
      return fail("snapshot " + snapshot_id, "EBS reports status 'error' after CompleteSnapshot");
    }
    if (Clock::now() > deadline || interrupted()) {
      return fail("snapshot " + snapshot_id, fmt::format("still '{}' after {} s; it is kept (register again to resume)",
                                                         s, options.wait_timeout.count()));
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(10000));
  }
}

// 7. RegisterImage; the ClientToken is derived from the image and snapshot, so a retried
//    or repeated call returns the same AMI.
Expected<std::string> register_ami(const Aws& aws, const BuiltImage& image, const std::string& snapshot_id,
                                   std::uint64_t volume_gib, const Ec2Options& options) {
  const std::string client_token =
      sha256_hex(image.manifest.inputs_key + "/" + image.manifest.sha256 + "/" + snapshot_id).substr(0, 64);
  ConsistencyWait register_wait("ec2 RegisterImage on " + snapshot_id, options.consistency);
  auto registered = register_wait.run([&] {
    return aws.ec2_response("RegisterImage",
                            parse_form(register_image_form(image, snapshot_id, volume_gib, options, client_token)));
  });
  const Expected<std::string> registered_body =
      registered ? aws.ec2_body("RegisterImage", *registered) : Expected<std::string>(Unexpected{registered.error()});
  if (!registered_body) {
    return fail(registered_body.error().object,
                registered_body.error().detail +
                    fmt::format(" (snapshot {} is complete and kept: register again to retry)", snapshot_id));
  }
  auto registered_id = parse_register_image(*registered_body);
  if (!registered_id) {
    return fail(registered_id.error().object, registered_id.error().detail + " (snapshot " + snapshot_id + " kept)");
  }
  return *registered_id;
}

// Best effort, on the error path: logs instead of failing.
void delete_unfinished_snapshot(const Aws& aws, const std::string& id) {
  auto r = aws.ec2("DeleteSnapshot", {{"SnapshotId", id}}, true);
  if (r) {
    spdlog::warn("deleted the unfinished snapshot {}", id);
  } else {
    spdlog::warn("could not delete the unfinished snapshot {}: {}", id, r.error().to_string());
  }
}

std::uint64_t volume_gib_of(const BuiltImage& image) {
  const std::uint64_t gib = 1ull << 30;
  return std::max<std::uint64_t>(1, (image.manifest.virtual_size + gib - 1) / gib);
}

class Ec2Session final : public CloudSession {
public:
  Ec2Session(const net::AwsConfig& config, Ec2Options options)
      : m_aws(config), m_endpoint(config.ec2_endpoint), m_options(std::move(options)) {}

  std::string endpoint() const override { return m_endpoint; }

  Expected<std::string> find_registered(const BuiltImage& image, const RegisterEvents&) override {
    return find_registered_ami(m_aws, image);
  }

  // The EBS snapshot of the image: a completed one of these exact bytes from an earlier
  // run (its RegisterImage failed), else a new one, block by block; until CompleteSnapshot
  // succeeds any failure deletes the pending snapshot.
  Expected<std::string> upload(const BuiltImage& image, const RegisterEvents& events, RegisterResult& result) override {
    BI_TRY_ASSIGN(std::string snapshot_id, find_completed_snapshot(m_aws, image));
    if (!snapshot_id.empty()) {
      result.snapshot_id = snapshot_id;
      events.id("snapshot (already uploaded)", snapshot_id);
      return snapshot_id;
    }
    BI_TRY_ASSIGN(snapshot_id, start_snapshot(m_aws, image, m_options, volume_gib_of(image)));
    result.snapshot_id = snapshot_id;
    events.id("snapshot", snapshot_id);
    // Until CompleteSnapshot succeeds, any failure deletes the pending snapshot.
    UndoUnlessCommitted delete_pending([&] { delete_unfinished_snapshot(m_aws, snapshot_id); });
    using Digests = std::map<std::uint64_t, std::string>;
    BI_TRY_ASSIGN(Digests digests, upload_blocks(m_aws, image, snapshot_id, m_options, events, result));
    BI_TRY(complete_snapshot(m_aws, snapshot_id, m_options, digests));
    delete_pending.commit(); // from here on the snapshot is complete (or AWS reports its error)
    BI_TRY(wait_snapshot_completed(m_aws, snapshot_id, m_options));
    return snapshot_id;
  }

  Expected<std::string> register_upload(const BuiltImage& image, const std::string& snapshot_id,
                                        RegisterResult&) override {
    if (image.manifest.secure_boot()) {
      // UefiData is AWS's own serialisation of a whole variable store (PK, KEK, db, dbx);
      // without it EC2 starts instances in SetupMode, no keys enrolled, Secure Boot off.
      // Writing that format from OVMF's Microsoft-key store is not done here (nothing on this
      // side could verify the blob), so the operator is told instead of misled.
      spdlog::warn("ec2: {}: registered without UefiData (no Secure Boot keys): EC2 starts its instances with "
                   "Secure Boot off; the image boots either way",
                   image.manifest.name);
    }
    return register_ami(m_aws, image, snapshot_id, volume_gib_of(image), m_options);
  }

  // A completed snapshot is the expensive part and is found again by its tags: the next
  // run registers it without uploading (register_ami's error says so).
  void remove_upload(const std::string& snapshot_id) override {
    spdlog::info("ec2: keeping the completed snapshot {} for the next registration", snapshot_id);
  }

private:
  Aws m_aws;
  std::string m_endpoint;
  Ec2Options m_options;
};

} // namespace

Expected<std::unique_ptr<CloudSession>> open_ec2_session(net::AwsConfig config, const Ec2Options& options) {
  config.resolve_endpoints(options.region);
  net::register_secret(config.credentials.secret_access_key);
  net::register_secret(config.credentials.session_token);
  spdlog::info("ec2: {} in {} ({})", config.describe(), options.region, config.ec2_endpoint);
  return std::unique_ptr<CloudSession>(std::make_unique<Ec2Session>(config, options));
}

} // namespace bi::registration
