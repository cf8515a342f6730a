#pragma once
// Logging setup. Every build writes its own log file; with parallel builds (--jobs) each
// thread's messages are routed to the log of the build it works for.

#include <memory>
#include <string>

namespace spdlog::sinks {
class sink;
}

namespace bi {

// The default logger: stderr (warnings, or debug with -v) plus routing to build logs.
void setup_logging(bool verbose);

using SinkPtr = std::shared_ptr<spdlog::sinks::sink>;

// The build log of the calling thread (may be null). Threads started on behalf of a build
// copy their parent's value.
SinkPtr current_build_log();
void set_current_build_log(SinkPtr sink);

// Opens `path` as the calling thread's build log for the object's lifetime.
class ScopedBuildLog {
public:
  explicit ScopedBuildLog(const std::string& path);
  ~ScopedBuildLog();
  ScopedBuildLog(const ScopedBuildLog&) = delete;
  ScopedBuildLog& operator=(const ScopedBuildLog&) = delete;

private:
  SinkPtr m_previous;
  SinkPtr m_sink;
};

} // namespace bi
