#include "util/log.hpp"

#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace bi {

namespace {

thread_local SinkPtr t_build_log;

// Forwards each message to the calling thread's build log, if it has one.
class RoutingSink : public spdlog::sinks::sink {
public:
  void log(const spdlog::details::log_msg& msg) override {
    if (auto s = t_build_log) {
      s->log(msg);
    }
  }
  void flush() override {
    if (auto s = t_build_log) {
      s->flush();
    }
  }
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}
};

} // namespace

void setup_logging(bool verbose) {
  auto console = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  console->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
  console->set_pattern(verbose ? "[%T.%e] %l: %v" : "build-image: %l: %v");
  auto routing = std::make_shared<RoutingSink>();
  auto logger = std::make_shared<spdlog::logger>("build-image", spdlog::sinks_init_list{console, routing});
  logger->set_level(spdlog::level::debug);
  console->set_pattern(verbose ? "[%T.%e] %l: %v" : "build-image: %l: %v");
  spdlog::set_default_logger(logger);
}

SinkPtr current_build_log() { return t_build_log; }
void set_current_build_log(SinkPtr sink) { t_build_log = std::move(sink); }

ScopedBuildLog::ScopedBuildLog(const std::string& path) : m_previous(t_build_log) {
  try {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, true);
    file->set_pattern("[%Y-%m-%d %T.%e] %l: %v");
    m_sink = file;
    t_build_log = m_sink;
  } catch (const std::exception&) {
    // A missing log file must not fail the build; errors still reach stderr.
  }
}

ScopedBuildLog::~ScopedBuildLog() {
  if (m_sink) {
    m_sink->flush();
  }
  t_build_log = m_previous;
}

} // namespace bi
