#include "pipeline/progress.hpp"

#include <unistd.h>

#include <spdlog/fmt/fmt.h>

namespace bi {

namespace {

class QuietProgress : public Progress {
public:
  void phase_start(const std::string&) override {}
  void detail(const std::string&) override {}
  void phase_end(const std::string&, double, const std::string&) override {}
};

class TerminalProgress : public Progress {
public:
  TerminalProgress(int fd, std::string prefix) : m_fd(fd), m_prefix(std::move(prefix)) {}

  void phase_start(const std::string& phase) override {
    std::lock_guard lock(m_mutex);
    m_phase = phase;
    m_start = std::chrono::steady_clock::now();
    draw("");
  }
  void detail(const std::string& line) override {
    std::lock_guard lock(m_mutex);
    const auto now = std::chrono::steady_clock::now();
    if (now - m_last_draw < std::chrono::milliseconds(100)) {
      return;
    }
    draw(line);
  }
  void phase_end(const std::string& phase, double seconds, const std::string& note) override {
    std::lock_guard lock(m_mutex);
    write(fmt::format("\r\033[K{}{:<12} {:6.1f} s  {}\n", m_prefix, phase, seconds, note));
  }

private:
  void draw(const std::string& line) {
    m_last_draw = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(m_last_draw - m_start).count();
    std::string text = fmt::format("{}{:<12} {:6.1f} s  {}", m_prefix, m_phase, elapsed, line);
    if (text.size() > 110) {
      text.resize(110);
    }
    write("\r\033[K" + text);
  }
  void write(const std::string& s) { (void)!::write(m_fd, s.data(), s.size()); }

  int m_fd;
  std::string m_prefix;
  std::string m_phase;
  std::chrono::steady_clock::time_point m_start{};
  std::chrono::steady_clock::time_point m_last_draw{};
  std::mutex m_mutex;
};

class LineProgress : public Progress {
public:
  LineProgress(int fd, std::string prefix) : m_fd(fd), m_prefix(std::move(prefix)) {}
  void phase_start(const std::string&) override {}
  void detail(const std::string&) override {}
  void phase_end(const std::string& phase, double seconds, const std::string& note) override {
    const std::string line = fmt::format("{}{:<12} {:6.1f} s  {}\n", m_prefix, phase, seconds, note);
    (void)!::write(m_fd, line.data(), line.size());
  }

private:
  int m_fd;
  std::string m_prefix;
};

} // namespace

std::unique_ptr<Progress> make_line_progress(int fd, std::string prefix) {
  return std::make_unique<LineProgress>(fd, std::move(prefix));
}

std::unique_ptr<Progress> make_quiet_progress() { return std::make_unique<QuietProgress>(); }
std::unique_ptr<Progress> make_terminal_progress(int fd, std::string prefix) {
  return std::make_unique<TerminalProgress>(fd, std::move(prefix));
}

} // namespace bi
