#include "health.hpp"

#include "config.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include <unistd.h>

namespace cartridge_agent {
namespace {

// Two decimals are more than the Stratos dashboards show and keep messages short.
double round_percent(double value) { return std::round(value * 100.0) / 100.0; }

// Finds "<name>:   <number> kB" at the start of a line.
std::optional<std::uint64_t> meminfo_field(std::string_view meminfo, std::string_view name) {
    std::size_t line_start = 0;
    while (line_start < meminfo.size()) {
        auto line_end = meminfo.find('\n', line_start);
        if (line_end == std::string_view::npos) {
            line_end = meminfo.size();
        }
        const auto line = meminfo.substr(line_start, line_end - line_start);
        line_start = line_end + 1;
        if (!line.starts_with(name) || line.size() <= name.size() || line[name.size()] != ':') {
            continue;
        }
        auto rest = line.substr(name.size() + 1);
        const auto digits = rest.find_first_not_of(" \t");
        if (digits == std::string_view::npos) {
            return std::nullopt;
        }
        rest.remove_prefix(digits);
        std::uint64_t value = 0;
        const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
        if (ec != std::errc{} || ptr == rest.data()) {
            return std::nullopt;
        }
        return value;
    }
    return std::nullopt;
}

} // namespace

Result<double> parse_memory_consumption(std::string_view meminfo) {
    const auto total = meminfo_field(meminfo, "MemTotal");
    if (!total || *total == 0) {
        return Error{"meminfo: no usable MemTotal"};
    }
    auto available = meminfo_field(meminfo, "MemAvailable");
    if (!available) {
        const auto free = meminfo_field(meminfo, "MemFree");
        const auto buffers = meminfo_field(meminfo, "Buffers");
        const auto cached = meminfo_field(meminfo, "Cached");
        if (!free || !buffers || !cached) {
            return Error{"meminfo: neither MemAvailable nor MemFree, Buffers and Cached"};
        }
        available = *free + *buffers + *cached;
    }
    if (*available > *total) {
        available = total;
    }
    const auto used = static_cast<double>(*total - *available);
    return round_percent(used / static_cast<double>(*total) * 100.0);
}

Result<double> parse_load_average(std::string_view loadavg, unsigned cpu_count) {
    if (cpu_count == 0) {
        return Error{"loadavg: CPU count is 0"};
    }
    const auto first = loadavg.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return Error{"loadavg: empty"};
    }
    const auto field = loadavg.substr(first, loadavg.find_first_of(" \t\n", first) - first);
    double load = 0.0;
    const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), load);
    if (ec != std::errc{} || ptr != field.data() + field.size() || load < 0.0 || !std::isfinite(load)) {
        return Error{"loadavg: cannot parse '" + std::string(field) + "' as a load average"};
    }
    return round_percent(load / cpu_count * 100.0);
}

unsigned online_cpu_count() {
    const long count = ::sysconf(_SC_NPROCESSORS_ONLN);
    return count > 0 ? static_cast<unsigned>(count) : 1U;
}

Result<HealthSample> read_health(const std::filesystem::path& proc_root) {
    const auto meminfo = read_text_file(proc_root / "meminfo");
    if (!meminfo) {
        return meminfo.error();
    }
    const auto loadavg = read_text_file(proc_root / "loadavg");
    if (!loadavg) {
        return loadavg.error();
    }
    const auto memory = parse_memory_consumption(meminfo.value());
    if (!memory) {
        return memory.error();
    }
    const auto load = parse_load_average(loadavg.value(), online_cpu_count());
    if (!load) {
        return load.error();
    }
    return HealthSample{memory.value(), load.value()};
}

} // namespace cartridge_agent
