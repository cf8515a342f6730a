#include "cli/options.hpp"

#include <cstdlib>
#include <iostream>

#include <spdlog/fmt/fmt.h>

#include "cartridge/loader.hpp"
#include "net/object_store.hpp"
#include "pipeline/layer_store.hpp"
#include "util/did_you_mean.hpp"

namespace bi::cli {

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"--mode", true, "generic | full (overrides the YAML's mode)", "build validate plan", "generic full"},
      {"--output", true, "output folder for images, manifests and catalog.json (default: images)",
       "build list inspect boot-test register cartridge-json report", "dir"},
      {"--format", true, "qcow2 (zstd-compressed, default) | raw | vmdk", "build plan", "qcow2 raw vmdk"},
      {"--cache-dir", true, "layer cache (default: $BUILD_IMAGE_CACHE or ~/.cache/build-image)",
       "build plan cache boot-test", "dir"},
      {"--cache-url", true,
       "shared remote layer cache: s3://BUCKET/PREFIX or http(s)://HOST[:PORT]/PREFIX "
       "(default: $BUILD_IMAGE_CACHE_URL)",
       "build"},
      {"--no-cache", false, "rebuild every layer of this build", "build"},
      {"--since", true, "plan: only images affected by changes since this git revision (CI job matrix)", "plan"},
      {"--jobs", true, "build up to N images at once; shared layers are still built once (default 1)", "build"},
      {"--payload", true, "boot-test: the instance payload file (default: generated for the image)", "boot-test",
       "file"},
      {"--timeout", true, "boot-test: seconds to wait for InstanceActivatedEvent (default 600)", "boot-test"},
      {"--broker", true, "boot-test: use this MQTT broker HOST:PORT instead of a private mosquitto", "boot-test"},
      {"--forward", true, "boot-test: GUEST_IP:PORT=HOST_PORT, guest address to a loopback port (repeatable)",
       "boot-test"},
      {"--app-repo", true, "boot-test: a local git repository sent to the agent in an ArtifactUpdatedEvent",
       "boot-test", "dir"},
      {"--expect-content", true, "boot-test: fail unless the guest's web root (GET /) contains this text", "boot-test"},
      {"--no-stratos", false, "boot-test: do not play the Stratos servers, only watch the broker", "boot-test"},
      {"--until", true,
       "boot-test: login | activated | shutdown (after the cleanup handshake; default when playing the servers)",
       "boot-test", "login activated shutdown"},
      {"--firmware", true,
       "boot-test: bios | uefi | uefi-secure (Secure Boot enforced; default: uefi for uefi images, else bios)",
       "boot-test", "bios uefi uefi-secure"},
      {"--disk-bus", true, "boot-test: virtio (default) | scsi | nvme, the bus of the guest's disk", "boot-test",
       "virtio scsi nvme"},
      {"--disk-size", true, "boot-test: the guest's disk size, e.g. 6G (default: the image's); / must grow to it",
       "boot-test"},
      {"--ssh-key", true, "boot-test: FILE.pub as the key pair on the config drive; logs in with FILE over SSH",
       "boot-test", "file"},
      {"--to", true, "register: openstack | ec2 (default: every iaas target of the cartridge)",
       "register cartridge-json", "openstack ec2"},
      {"--region", true, "register: the cloud region (default: the cartridge's iaas entry)", "register cartridge-json"},
      {"--register", false, "after building, register with every iaas target of the cartridge", "build"},
      {"--report", true, "build, report: write the HTML build report to this file (one image)", "build report", "file"},
      {"--version", false, "print the version (also -V)"},
      {"--json", false, "print one machine-readable JSON result on stdout"},
      {"--verbose", false, "debug logs on stderr (also -v)"},
      {"--help", false, "show help (also -h)"},
  };
  return specs;
}

bool applies_to(const OptionSpec& spec, const std::string& command) {
  if (spec.commands == nullptr) {
    return true;
  }
  const std::string list = std::string(" ") + spec.commands + " ";
  return list.find(" " + command + " ") != std::string::npos;
}

Expected<void> check_options_apply(const Options& options, const std::string& command) {
  for (const auto& name : options.given) {
    for (const auto& spec : option_specs()) {
      if (name == spec.name && !applies_to(spec, command)) {
        std::string list;
        for (const char* c = spec.commands; *c != '\0'; ++c) {
          list += *c == ' ' ? std::string(", ") : std::string(1, *c);
        }
        return Unexpected{
            usage_error(fmt::format("option '{}' does not apply to '{}' (it is for: {})", name, command, list))};
      }
    }
  }
  return {};
}

Error usage_error(const std::string& detail) { return make_error("", detail, ExitCode::bad_input); }

Expected<Options> parse_options(const std::vector<std::string>& argv) {
  Options o;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "-v") {
      o.verbose = true;
      continue;
    }
    if (a == "-h") {
      o.help = true;
      continue;
    }
    if (a == "-V") {
      o.version = true;
      continue;
    }
    if (a == "--") {
      o.args.insert(o.args.end(), argv.begin() + static_cast<long>(i) + 1, argv.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      o.args.push_back(a);
      continue;
    }
    std::string name = a;
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    }
    const OptionSpec* spec = nullptr;
    std::vector<std::string> names;
    for (const auto& s : option_specs()) {
      names.emplace_back(s.name);
      if (name == s.name) {
        spec = &s;
      }
    }
    if (spec == nullptr) {
      return Unexpected{usage_error(fmt::format("unknown option '{}'", name) + did_you_mean_suffix(name, names))};
    }
    o.given.push_back(name);
    if (spec->takes_value && !value) {
      if (i + 1 >= argv.size()) {
        return Unexpected{usage_error(fmt::format("option '{}' needs a value", name))};
      }
      value = argv[++i];
    }
    if (!spec->takes_value && value) {
      return Unexpected{usage_error(fmt::format("option '{}' takes no value", name))};
    }
    if (name == "--mode") {
      if (*value == "generic") {
        o.mode = Mode::generic;
      } else if (*value == "full") {
        o.mode = Mode::full;
      } else {
        return Unexpected{usage_error(fmt::format("invalid --mode '{}': expected generic or full", *value))};
      }
    } else if (name == "--output") {
      o.output_dir = *value;
    } else if (name == "--format") {
      auto f = parse_output_format(*value);
      if (!f) {
        return Unexpected{usage_error(fmt::format("invalid --format '{}': expected qcow2, raw or vmdk", *value))};
      }
      o.format = *f;
    } else if (name == "--cache-dir") {
      o.cache_dir = *value;
    } else if (name == "--cache-url") {
      o.cache_url = *value;
    } else if (name == "--since") {
      o.since = *value;
    } else if (name == "--jobs") {
      const std::string& v = *value;
      if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos || std::stoi(v) < 1) {
        return Unexpected{usage_error(fmt::format("invalid --jobs '{}': expected a number from 1 to 999", v))};
      }
      o.jobs = static_cast<unsigned>(std::stoi(v));
    } else if (name == "--payload") {
      o.payload = *value;
    } else if (name == "--timeout") {
      o.timeout = *value;
    } else if (name == "--broker") {
      o.broker = *value;
    } else if (name == "--forward") {
      o.forwards.push_back(*value);
    } else if (name == "--app-repo") {
      o.app_repo = *value;
    } else if (name == "--expect-content") {
      o.expect_content = *value;
    } else if (name == "--until") {
      o.until = *value;
    } else if (name == "--firmware") {
      o.firmware = *value;
    } else if (name == "--disk-bus") {
      o.disk_bus = *value;
    } else if (name == "--disk-size") {
      o.disk_size = *value;
    } else if (name == "--ssh-key") {
      o.ssh_key = *value;
    } else if (name == "--no-stratos") {
      o.no_stratos = true;
    } else if (name == "--no-cache") {
      o.no_cache = true;
    } else if (name == "--to") {
      o.to = *value;
    } else if (name == "--region") {
      o.region = *value;
    } else if (name == "--register") {
      o.do_register = true;
    } else if (name == "--json") {
      o.json = true;
    } else if (name == "--verbose") {
      o.verbose = true;
    } else if (name == "--report") {
      if (value->empty()) {
        return Unexpected{usage_error("invalid --report '': expected a file name")};
      }
      o.report = *value;
    } else if (name == "--version") {
      o.version = true;
    } else if (name == "--help") {
      o.help = true;
    }
  }
  if (o.cache_dir.empty()) {
    o.cache_dir = default_cache_dir();
  }
  if (o.cache_url.empty()) {
    if (const char* u = std::getenv("BUILD_IMAGE_CACHE_URL"); u != nullptr) {
      o.cache_url = u;
    }
  }
  if (!o.cache_url.empty()) {
    if (auto url = net::parse_cache_url(o.cache_url); !url) {
      return Unexpected{url.error()};
    }
  }
  return o;
}

Expected<std::vector<Cartridge>> load_all(const Options& o) {
  if (o.args.empty()) {
    return Unexpected{usage_error("no cartridge file given (try: build-image templates/php.yaml)")};
  }
  const Resources res = Resources::discover();
  LoadOptions lo;
  std::error_code ec;
  if (fs::is_directory(res.puppet_dir / "modules", ec)) {
    lo.puppet_modules = res.puppet_dir / "modules";
  }
  std::vector<Cartridge> out;
  size_t errors = 0;
  std::string first_bad;
  for (const auto& file : o.args) {
    auto r = load_cartridge(file, lo);
    if (!r.diagnostics.empty()) {
      std::cerr << format_diagnostics(file, r.diagnostics);
      errors += r.diagnostics.size();
      if (first_bad.empty()) {
        first_bad = file;
      }
      continue;
    }
    out.push_back(*r.cartridge);
  }
  if (errors > 0) {
    return fail(first_bad,
                fmt::format("{} error{} in the cartridge definition{}", errors, errors == 1 ? "" : "s",
                            o.args.size() > 1 ? "s" : ""),
                ExitCode::bad_input);
  }
  return out;
}

Expected<std::vector<Plan>> plan_all(const Options& o) {
  BI_TRY_ASSIGN(std::vector<Cartridge> cartridges, load_all(o));
  Resources res = Resources::discover();
  if (res.index_cache_dir.empty()) {
    res.index_cache_dir = o.cache_dir / "mirror-index";
  }
  std::vector<Plan> plans;
  for (const auto& c : cartridges) {
    BI_TRY_ASSIGN(Plan p, make_plan(c, o.mode.value_or(c.mode), o.format, res));
    plans.push_back(std::move(p));
  }
  return plans;
}

} // namespace bi::cli
