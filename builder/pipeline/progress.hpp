#pragma once
// How the pipeline reports progress. Nothing below the CLI prints to the terminal; it
// calls a Progress, so tests and --json output stay clean.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace bi {

class Progress {
public:
  virtual ~Progress() = default;
  virtual void phase_start(const std::string& phase) = 0;
  virtual void detail(const std::string& line) = 0;
  virtual void phase_end(const std::string& phase, double seconds, const std::string& note) = 0;
};

// Silent (not a TTY, or --json): phases still go to the log.
std::unique_ptr<Progress> make_quiet_progress();
// One line per finished phase, prefixed (parallel builds on a terminal: readable interleaving).
std::unique_ptr<Progress> make_line_progress(int fd, std::string prefix);
// One updating status line per phase on a terminal, then a summary line when it ends.
std::unique_ptr<Progress> make_terminal_progress(int fd, std::string prefix = "");

} // namespace bi
