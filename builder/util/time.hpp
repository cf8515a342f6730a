#pragma once
// UTC time formatting, thread-safe (gmtime_r): builds run in parallel threads (--jobs) and
// std::gmtime returns a pointer to one static buffer.

#include <chrono>
#include <string>

namespace bi {

// strftime `format` of `t` in UTC (the compiler checks `format` at each call).
std::string format_utc(std::chrono::system_clock::time_point t, const char* format)
    __attribute__((format(strftime, 2, 0)));
// ISO 8601 with seconds, "2026-01-31T12:00:00Z": manifests, catalog, cache metadata.
std::string utc_timestamp(std::chrono::system_clock::time_point t = std::chrono::system_clock::now());

} // namespace bi
