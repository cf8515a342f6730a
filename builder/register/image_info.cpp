#include "register/image_info.hpp"

#include <unistd.h>

#include <spdlog/fmt/fmt.h>

#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi::registration {

Expected<void> check_self_contained(const BuiltImage& image) {
  RunOptions ro;
  ro.timeout = std::chrono::seconds(60);
  BI_TRY_ASSIGN(RunResult r,
                run_checked({"qemu-img", "info", "--output=json", "--force-share", image.image.string()}, ro));
  nlohmann::json j;
  try {
    const auto brace = r.output.find('{');
    j = nlohmann::json::parse(r.output.substr(brace == std::string::npos ? 0 : brace));
  } catch (const std::exception& e) {
    return fail(image.image.string(), std::string("cannot parse qemu-img info: ") + e.what());
  }
  const std::string format = j.value("format", "");
  if (format != image.manifest.format) {
    return fail(image.image.string(),
                fmt::format("qemu-img sees format '{}' but the manifest says '{}'", format, image.manifest.format),
                ExitCode::bad_input);
  }
  if (j.contains("backing-filename") || j.contains("full-backing-filename")) {
    return fail(image.image.string(),
                fmt::format("has a backing file ({}); refusing to upload an image that is not self-contained",
                            j.value("backing-filename", j.value("full-backing-filename", "?"))),
                ExitCode::bad_input);
  }
  if (j.contains("format-specific") && j["format-specific"].contains("data") &&
      j["format-specific"]["data"].contains("data-file")) {
    return fail(image.image.string(), "has an external data file; refusing to upload it", ExitCode::bad_input);
  }
  return Ok{};
}

std::string format_rate(double bytes_per_second) {
  return human_bytes(static_cast<std::uint64_t>(bytes_per_second)) + "/s";
}

TransferProgress::TransferProgress(int fd, std::string label)
    : m_fd(fd), m_label(std::move(label)), m_start(std::chrono::steady_clock::now()) {}

void TransferProgress::update(std::uint64_t done, std::uint64_t total) {
  std::lock_guard lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (m_drawn && now - m_last_draw < std::chrono::milliseconds(100) && done < total) {
    return;
  }
  m_last_draw = now;
  m_drawn = true;
  const double secs = std::chrono::duration<double>(now - m_start).count();
  const double rate = secs > 0.2 ? static_cast<double>(done) / secs : 0;
  std::string eta = "";
  if (rate > 0 && total > done) {
    eta = fmt::format("  ETA {:.0f} s", static_cast<double>(total - done) / rate);
  }
  const std::string line = fmt::format("\r\033[K{}  {} / {}  {}{}", m_label, human_bytes(done), human_bytes(total),
                                       rate > 0 ? format_rate(rate) : "", eta);
  [[maybe_unused]] auto n = ::write(m_fd, line.data(), line.size());
}

void TransferProgress::finish() {
  std::lock_guard lock(m_mutex);
  if (m_drawn) {
    [[maybe_unused]] auto n = ::write(m_fd, "\r\033[K", 4);
  }
  m_drawn = false;
}

} // namespace bi::registration
