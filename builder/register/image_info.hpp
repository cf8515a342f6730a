#pragma once
// Checks on a built image before upload, the result of a registration, and how uploads
// report progress.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "image/manifest.hpp"
#include "util/expected.hpp"

namespace bi::registration {

namespace fs = std::filesystem;

// `qemu-img info`: the format must match the manifest, and a qcow2 must have no backing
// file or external data file (Glance rejects those, and they would not be self-contained).
Expected<void> check_self_contained(const BuiltImage& image);

struct RegisterResult {
  std::string cloud; // openstack | ec2
  std::string region;
  std::string image_id;
  std::string snapshot_id; // ec2
  std::string endpoint;    // where (no credentials)
  bool reused = false;     // already registered: nothing uploaded
  std::uint64_t bytes_sent = 0;
  std::uint64_t blocks_sent = 0;    // ec2
  std::uint64_t blocks_skipped = 0; // ec2: all-zero blocks not sent
  double seconds = 0;
  double upload_seconds = 0;
};

// Registration events for the CLI: IDs as soon as they exist (also when a later step
// fails), and byte progress of uploads. Called from worker threads too.
struct RegisterEvents {
  std::function<void(const std::string& what, const std::string& id)> on_id;
  std::function<void(std::uint64_t done, std::uint64_t total)> on_progress;
  std::function<void(const std::string& line)> on_note;
  void id(const std::string& what, const std::string& value) const {
    if (on_id) {
      on_id(what, value);
    }
  }
  void progress(std::uint64_t done, std::uint64_t total) const {
    if (on_progress) {
      on_progress(done, total);
    }
  }
  void note(const std::string& line) const {
    if (on_note) {
      on_note(line);
    }
  }
};

// A terminal progress line "label  120.0 MiB / 1.2 GiB  85.3 MiB/s  ETA 12 s" on `fd`,
// redrawn at most 10 times a second; thread-safe. finish() ends the line.
class TransferProgress {
public:
  TransferProgress(int fd, std::string label);
  void update(std::uint64_t done, std::uint64_t total);
  void finish();

private:
  int m_fd;
  std::string m_label;
  std::mutex m_mutex;
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_last_draw{};
  bool m_drawn = false;
};

std::string format_rate(double bytes_per_second);

} // namespace bi::registration
