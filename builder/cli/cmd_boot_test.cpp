#include "cli/cmd_boot_test.hpp"

#include <iostream>

#include <nlohmann/json.hpp>

#include "boot/boot_test.hpp"

namespace bi {

namespace {

Error usage(const std::string& detail) { return make_error("", detail, ExitCode::bad_input); }

Expected<std::chrono::seconds> parse_timeout(const std::string& text) {
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos) {
    return Unexpected{usage("invalid --timeout '" + text + "': expected whole seconds")};
  }
  const long v = std::stol(text);
  if (v < 1 || v > 86400) {
    return Unexpected{usage("invalid --timeout '" + text + "': expected 1 to 86400 seconds")};
  }
  return std::chrono::seconds(v);
}

Expected<BootTestOptions> make_options(const BootTestCommand& c) {
  if (c.args.size() != 1) {
    return Unexpected{usage("boot-test takes one image (a path, or a name from the catalog)")};
  }
  BootTestOptions o;
  o.image = c.args[0];
  o.output_dir = c.output_dir;
  o.cache_dir = c.cache_dir;
  if (c.payload) {
    o.payload_file = *c.payload;
  }
  if (c.timeout) {
    BI_TRY_ASSIGN(o.timeout, parse_timeout(*c.timeout));
  }
  if (c.broker) {
    BI_TRY_ASSIGN(BrokerAddress a, parse_broker_address(*c.broker));
    o.broker = a;
  }
  for (const auto& f : c.forwards) {
    BI_TRY_ASSIGN(GuestForward g, parse_guest_forward(f));
    o.forwards.push_back(g);
  }
  // ---- Stratos servers
  o.stratos = !c.no_stratos;
  if (c.until) {
    BI_TRY_ASSIGN(o.until, parse_until(*c.until));
  }
  if (c.app_repo) {
    if (c.no_stratos) {
      return Unexpected{
          usage("--app-repo needs boot-test to play the Stratos servers: it cannot go with --no-stratos")};
    }
    std::error_code ec;
    const std::filesystem::path repo = *c.app_repo;
    if (!std::filesystem::is_directory(repo / ".git", ec) && !std::filesystem::is_regular_file(repo / "HEAD", ec)) {
      return fail(repo.string(), "not a git repository (--app-repo)", ExitCode::bad_input);
    }
    o.app_repo = repo;
  }
  if (c.firmware) {
    BI_TRY_ASSIGN(o.firmware, parse_boot_firmware(*c.firmware));
  }
  if (c.disk_bus) {
    auto bus = parse_disk_bus(*c.disk_bus);
    if (!bus) {
      return Unexpected{usage("invalid --disk-bus '" + *c.disk_bus + "': expected virtio, scsi or nvme")};
    }
    o.disk_bus = *bus;
  }
  if (c.disk_size) {
    BI_TRY_ASSIGN(o.disk_bytes, parse_disk_size(*c.disk_size));
  }
  if (c.ssh_key) {
    BI_TRY(read_public_key(*c.ssh_key));
    o.ssh_key = std::filesystem::path(*c.ssh_key);
  }
  if (c.expect_content) {
    if (c.expect_content->empty()) {
      return Unexpected{usage("invalid --expect-content '': expected some text")};
    }
    o.expect_content = *c.expect_content;
  }
  return o;
}

} // namespace

Expected<int> cmd_boot_test(const BootTestCommand& c) {
  BI_TRY_ASSIGN(BootTestOptions options, make_options(c));
  auto result = run_boot_test(options);
  if (!result) {
    // Scripts reading --json get an answer on stdout too; the error itself goes to stderr.
    if (c.json) {
      std::cout << nlohmann::json{{"passed", false}, {"error", true}, {"reason", result.error().to_string()}}.dump(2)
                << "\n";
    }
    return Unexpected{result.error()};
  }
  if (c.json) {
    std::cout << result->to_json().dump(2) << "\n";
  } else {
    std::cout << result->to_text();
  }
  return result->passed ? 0 : 1;
}

} // namespace bi
