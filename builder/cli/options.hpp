#pragma once
// The command line's options (one table: parsing, help, did-you-mean) and the cartridge
// files a command names, loaded and planned.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cartridge/cartridge.hpp"
#include "plan/plan.hpp"
#include "util/expected.hpp"

namespace bi::cli {

namespace fs = std::filesystem;

struct Options {
  std::vector<std::string> given; // the long options on the command line, in order
  bool verbose = false;
  bool json = false;
  bool help = false;
  bool no_cache = false;
  unsigned jobs = 1;
  std::string since;
  std::optional<Mode> mode;
  OutputFormat format = OutputFormat::qcow2;
  fs::path output_dir = "images";
  fs::path cache_dir;
  std::string cache_url;                                      // shared remote layer cache (s3:// or http(s)://)
  std::string to, region;                                     // register
  bool do_register = false;                                   // build --register
  fs::path report;                                            // build/report --report FILE.html
  bool version = false;                                       // --version, -V
  std::optional<std::string> payload, timeout, broker;        // boot-test; checked there
  std::vector<std::string> forwards;                          // boot-test --forward (repeatable)
  std::optional<std::string> app_repo, expect_content, until; // boot-test (Stratos servers)
  bool no_stratos = false;                                    // boot-test --no-stratos
  std::optional<std::string> firmware;                        // boot-test --firmware
  std::optional<std::string> disk_bus, disk_size, ssh_key;    // boot-test: the instance's disk and login
  std::vector<std::string> args;
};

// Adding an option: one entry here (its commands, for per-command help, the man page and
// completion) and its assignment in parse_options.
struct OptionSpec {
  const char* name{};
  bool takes_value{};
  const char* help{};
  // The commands it applies to, space-separated; nullptr: every command.
  const char* commands = nullptr;
  // What completion offers for its value: "file", "dir", or the values, space-separated.
  const char* values = nullptr;
};

bool applies_to(const OptionSpec& spec, const std::string& command);
// Every option given applies to `command` (its OptionSpec::commands), else a usage error
// naming the option, the command and the commands it is for.
Expected<void> check_options_apply(const Options& options, const std::string& command);

const std::vector<OptionSpec>& option_specs();

// A usage problem (exit 2), printed without an object.
Error usage_error(const std::string& detail);

Expected<Options> parse_options(const std::vector<std::string>& argv);

// Loads every file; prints all diagnostics. Fails with exit 2 if any file has errors.
Expected<std::vector<Cartridge>> load_all(const Options& o);
Expected<std::vector<Plan>> plan_all(const Options& o);

} // namespace bi::cli
