#include "pipeline/remote_cache.hpp"

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "pipeline/layer_store.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"
#include "util/process.hpp"
#include "util/time.hpp"

namespace bi {

namespace {

using Clock = std::chrono::steady_clock;

bool is_hex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// tar options shared by packing and unpacking: numeric owners, every xattr (file
// capabilities), sparse files (the bootloader disk), permissions kept as they are.
const std::vector<std::string>& tar_common() {
  static const std::vector<std::string> args = {"--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*"};
  return args;
}

} // namespace

Expected<std::shared_ptr<RemoteCache>> RemoteCache::open(const std::string& url, const net::Env& env,
                                                         const net::ObjectStoreLimits& limits) {
  BI_TRY_ASSIGN(net::CacheUrl parsed, net::parse_cache_url(url));
  BI_TRY_ASSIGN(net::ObjectStore store, net::ObjectStore::open(parsed, env, limits));
  return std::shared_ptr<RemoteCache>(new RemoteCache(std::move(store), parsed.text));
}

std::string RemoteCache::index_name(const std::string& kind, const std::string& key) {
  return "layers/" + kind + "-" + key + ".json";
}

std::string RemoteCache::archive_name(const std::string& kind, const std::string& key, const std::string& sha256) {
  return "layers/" + kind + "-" + key + "/" + sha256 + ".tar.zst";
}

void RemoteCache::give_up(const Error& error) {
  if (!m_unavailable.exchange(true)) {
    spdlog::warn("remote cache {} unusable ({}); continuing with the local cache only", m_url, error.to_string());
  }
}

RemoteCache::Fetch RemoteCache::fetch(const std::string& kind, const std::string& key, const fs::path& entry,
                                      const fs::path& tmp) {
  if (!available()) {
    return Fetch::unavailable;
  }
  const std::string index_object = index_name(kind, key);
  const auto start = Clock::now();
  auto index_text = m_store.get(index_object);
  if (!index_text) {
    give_up(index_text.error());
    return Fetch::unavailable;
  }
  if (!*index_text) {
    spdlog::info("remote cache: {} layer {} not in {}", kind, key.substr(0, 12), m_url);
    return Fetch::miss;
  }
  auto corrupt = [&](const std::string& object, const std::string& problem) {
    spdlog::warn("remote cache: {}: {}; not used, the layer is built here and re-published", m_store.describe(object),
                 problem);
    return Fetch::corrupt;
  };
  std::string archive, archive_sha256, index_sha256, content_sha256;
  std::uint64_t archive_bytes = 0, bytes = 0;
  try {
    const auto j = nlohmann::json::parse(**index_text);
    if (j.at("format").get<int>() != 1 || j.at("kind").get<std::string>() != kind ||
        j.at("key").get<std::string>() != key) {
      return corrupt(index_object, "index is for another layer or format");
    }
    archive = j.at("archive").get<std::string>();
    archive_sha256 = j.at("archive_sha256").get<std::string>();
    archive_bytes = j.at("archive_bytes").get<std::uint64_t>();
    index_sha256 = j.at("index_sha256").get<std::string>();
    content_sha256 = j.at("content_sha256").get<std::string>();
    bytes = j.at("bytes").get<std::uint64_t>();
  } catch (const std::exception& e) {
    return corrupt(index_object, std::string("index unreadable: ") + e.what());
  }
  if (!is_hex64(archive_sha256) || archive != archive_name(kind, key, archive_sha256)) {
    return corrupt(index_object, "index names an unexpected archive '" + archive + "'");
  }

  // Download while hashing; never more bytes than the index announced.
  const fs::path archive_file = tmp / (kind + "-" + key.substr(0, 12) + "-download.tar.zst");
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove_archive{archive_file};
  std::uint64_t received = 0;
  std::string problem;
  auto got = [&]() -> Expected<bool> {
    std::ofstream out(archive_file, std::ios::binary | std::ios::trunc);
    if (!out) {
      return fail(archive_file.string(), "cannot create");
    }
    Hasher hasher;
    auto r = m_store.get_to(archive, [&](std::string_view data) -> Expected<void> {
      received += data.size();
      if (received > archive_bytes) {
        return fail(m_store.describe(archive), "larger than its index says");
      }
      hasher.update(data);
      out.write(data.data(), static_cast<std::streamsize>(data.size()));
      if (!out) {
        return fail(archive_file.string(), "write failed (disk full?)");
      }
      return Ok{};
    });
    out.close();
    if (r && *r) {
      if (received != archive_bytes) {
        problem = fmt::format("archive is {} bytes, its index says {}", received, archive_bytes);
      } else if (const auto digest = hasher.finish(); digest != archive_sha256) {
        problem = "archive sha256 " + digest + " does not match its index";
      }
    }
    return r;
  }();
  if (!got) {
    if (got.error().detail.find("larger than its index") != std::string::npos) {
      return corrupt(archive, "archive larger than its index says");
    }
    if (got.error().object == archive_file.string()) {
      spdlog::warn("remote cache: {}", got.error().to_string());
      return Fetch::miss;
    }
    give_up(got.error());
    return Fetch::unavailable;
  }
  if (!*got) {
    return corrupt(index_object, "its archive " + archive + " is missing");
  }
  if (!problem.empty()) {
    return corrupt(archive, problem);
  }

  const fs::path content = entry / "content";
  std::error_code ec;
  fs::create_directories(content, ec);
  std::vector<std::string> argv = {"tar"};
  argv.insert(argv.end(), tar_common().begin(), tar_common().end());
  argv.insert(argv.end(),
              {"--same-permissions", "--same-owner", "-x", "-f", archive_file.string(), "-C", content.string()});
  RunOptions opts;
  opts.timeout = std::chrono::seconds(1800);
  auto unpacked = run_process(argv, opts);
  if (!unpacked) {
    spdlog::warn("remote cache: {}", unpacked.error().to_string());
    return Fetch::miss;
  }
  if (!unpacked->ok()) {
    return corrupt(archive, "cannot unpack: " + unpacked->tail(3));
  }
  auto idx = index_tree(content, true);
  if (!idx) {
    return corrupt(archive, idx.error().to_string());
  }
  if (idx->index_sha256 != index_sha256 || idx->content_sha256 != content_sha256) {
    return corrupt(archive, "unpacked tree does not match the index's digests");
  }
  nlohmann::json meta = {{"kind", kind},
                         {"key", key},
                         {"created", utc_timestamp()},
                         {"bytes", bytes},
                         {"index_sha256", index_sha256},
                         {"content_sha256", content_sha256},
                         {"from", m_store.describe(archive)}};
  if (auto w = write_file_atomic(entry / "meta.json", meta.dump(2) + "\n"); !w) {
    spdlog::warn("remote cache: {}", w.error().to_string());
    return Fetch::miss;
  }
  spdlog::info("remote cache: {} layer {} downloaded and verified ({}, {:.1f} s)", kind, key.substr(0, 12),
               human_bytes(archive_bytes), std::chrono::duration<double>(Clock::now() - start).count());
  return Fetch::hit;
}

RemoteCache::Publish RemoteCache::publish(const std::string& kind, const std::string& key, const fs::path& entry,
                                          const fs::path& tmp, bool only_if_missing) {
  if (!available()) {
    return Publish::unavailable;
  }
  const std::string index_object = index_name(kind, key);
  if (only_if_missing) {
    auto there = m_store.exists(index_object);
    if (!there) {
      give_up(there.error());
      return Publish::unavailable;
    }
    if (*there) {
      return Publish::present;
    }
  }
  const auto start = Clock::now();
  nlohmann::json meta;
  try {
    auto text = read_file(entry / "meta.json");
    if (!text) {
      spdlog::warn("remote cache: not publishing {} layer {}: {}", kind, key.substr(0, 12), text.error().to_string());
      return Publish::failed;
    }
    meta = nlohmann::json::parse(*text);
    (void)meta.at("index_sha256").get<std::string>();
    (void)meta.at("content_sha256").get<std::string>();
  } catch (const std::exception& e) {
    spdlog::warn("remote cache: not publishing {} layer {}: meta.json unreadable: {}", kind, key.substr(0, 12),
                 e.what());
    return Publish::failed;
  }
  auto scratch = TempDir::create(tmp, "publish-" + kind + "-");
  if (!scratch) {
    spdlog::warn("remote cache: not publishing {} layer {}: {}", kind, key.substr(0, 12), scratch.error().to_string());
    return Publish::failed;
  }
  const fs::path archive_file = scratch->path() / "layer.tar.zst";
  std::vector<std::string> argv = {"tar"};
  argv.insert(argv.end(), tar_common().begin(), tar_common().end());
  argv.insert(argv.end(), {"--sparse", "-c", "-f", archive_file.string(), "-C", (entry / "content").string(), "."});
  RunOptions opts;
  opts.timeout = std::chrono::seconds(1800);
  opts.extra_env["ZSTD_NBTHREADS"] = std::to_string(std::max(1u, std::thread::hardware_concurrency()));
  auto packed = run_checked(argv, opts);
  if (!packed) {
    spdlog::warn("remote cache: not publishing {} layer {}: {}", kind, key.substr(0, 12), packed.error().to_string());
    return Publish::failed;
  }
  auto sha = sha256_file(archive_file);
  if (!sha) {
    spdlog::warn("remote cache: not publishing {} layer {}: {}", kind, key.substr(0, 12), sha.error().to_string());
    return Publish::failed;
  }
  std::error_code ec;
  const auto archive_bytes = fs::file_size(archive_file, ec);
  const std::string archive = archive_name(kind, key, *sha);
  if (auto put = m_store.put_file(archive, archive_file, *sha); !put) {
    give_up(put.error());
    return Publish::unavailable;
  }
  const nlohmann::json index = {{"format", 1},
                                {"kind", kind},
                                {"key", key},
                                {"archive", archive},
                                {"archive_sha256", *sha},
                                {"archive_bytes", archive_bytes},
                                {"bytes", meta.value("bytes", 0ull)},
                                {"index_sha256", meta["index_sha256"]},
                                {"content_sha256", meta["content_sha256"]},
                                {"created", utc_timestamp()}};
  if (auto put = m_store.put(index_object, index.dump(2) + "\n", "application/json"); !put) {
    give_up(put.error());
    return Publish::unavailable;
  }
  spdlog::info("remote cache: {} layer {} published to {} ({}, {:.1f} s)", kind, key.substr(0, 12), m_url,
               human_bytes(archive_bytes), std::chrono::duration<double>(Clock::now() - start).count());
  return Publish::uploaded;
}

} // namespace bi
