#pragma once

#include "common.hpp"

#include <filesystem>
#include <string_view>

namespace cartridge_agent {

// The two statistics the Stratos agent reports, in percent.
struct HealthSample {
    double memory_consumption = 0.0;
    double load_average = 0.0;
};

// (MemTotal - MemAvailable) / MemTotal * 100, from the text of /proc/meminfo.
// Kernels older than 3.14 lack MemAvailable; MemFree + Buffers + Cached stands in.
Result<double> parse_memory_consumption(std::string_view meminfo);

// 1-minute load average / cpu_count * 100, from the text of /proc/loadavg.
Result<double> parse_load_average(std::string_view loadavg, unsigned cpu_count);

// Online CPUs, as psutil.cpu_count() reports them; at least 1.
unsigned online_cpu_count();

Result<HealthSample> read_health(const std::filesystem::path& proc_root = "/proc");

} // namespace cartridge_agent
