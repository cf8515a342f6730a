#include "cli/cli.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "cli/cmd_boot_test.hpp"
#include "cli/cmd_register.hpp"
#include "cli/commands.hpp"
#include "util/did_you_mean.hpp"
#include "util/log.hpp"
#include "util/process.hpp"

namespace bi {

namespace cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"build", "build FILE... [--mode M] [--format F]", "build images (the default command)", cmd_build, "yaml"},
      {"validate", "validate FILE...", "check cartridge files; report every error", cmd_validate, "yaml"},
      {"plan", "plan FILE... [--since REV] [--json]", "show layers, cache keys and what would be built", cmd_plan,
       "yaml"},
      {"list", "list [--json]", "show the image catalog", cmd_list, ""},
      {"inspect", "inspect IMAGE [--json]", "print an image's manifest", cmd_inspect},
      {"cache", "cache ls|verify|gc [FILE...]", "manage the layer cache", cmd_cache, "ls verify gc"},
      {"boot-test", "boot-test IMAGE [--payload F] [--timeout S] [--forward IP:PORT=HPORT] [--firmware F]",
       "boot under libvirt, wait for InstanceActivatedEvent",
       [](Options& o) {
         return cmd_boot_test({o.args, o.json, o.payload, o.timeout, o.broker, o.forwards, o.output_dir, o.cache_dir,
                               o.app_repo, o.expect_content, o.until, o.no_stratos, o.firmware, o.disk_bus, o.disk_size,
                               o.ssh_key});
       }},
      {"register", "register IMAGE... [--to CLOUD] [--region R]",
       "upload to Glance / EBS and register (openstack, ec2)",
       [](Options& o) {
         return cmd_register({o.args, o.output_dir, o.to, o.region, o.json});
       }},
      {"cartridge-json", "cartridge-json IMAGE", "print the Stratos cartridge definition with the image IDs",
       [](Options& o) {
         return cmd_cartridge_json({o.args, o.output_dir, o.to, o.region, o.json});
       }},
      {"report", "report IMAGE [--report FILE.html]", "write an image's HTML build report (default <image>.html)",
       cmd_report},
      {"init", "init [TYPE]", "write a commented starter cartridge TYPE.yaml here (default php)", cmd_init,
       "templates"},
      {"help", "help [COMMAND]", "show this help, or only one command's", cmd_help, "commands"},
      {"version", "version", "print the version", cmd_version, ""},
  };
  return table;
}

namespace {

int report(const Error& e) {
  std::cerr << "build-image: error: " << e.to_string() << "\n";
  return static_cast<int>(e.code);
}

// First signal: stop children and unwind (temp files removed). Second: leave now.
void on_signal(int) {
  if (interrupted()) {
    ::_exit(130);
  }
  interrupt_active_processes();
}

} // namespace

} // namespace cli

using namespace cli;

// Hidden: PID 1 of the chroot's PID namespace during `puppet apply`. Puppet's systemd
// provider only works when /proc/1/comm says "systemd"; without it Puppet silently
// falls back to update-rc.d and services end up not enabled (full-image-fastpath.md).
int pid1_shim(int argc, char** argv) {
  ::prctl(PR_SET_NAME, "systemd", 0, 0, 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::execvp(argv[0], argv);
    std::perror(argv[0]);
    ::_exit(127);
  }
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(-1, &status, 0);
    if (r == child) {
      break;
    }
    if (r < 0 && errno != EINTR) {
      return 1;
    }
  }
  (void)argc;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int build_image_main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "__pid1") {
    return pid1_shim(argc - 2, argv + 2);
  }
  if (argc == 2 && std::string(argv[1]) == "__man") {
    print_man_page(std::cout);
    return 0;
  }
  if (argc == 2 && std::string(argv[1]) == "__bash-completion") {
    print_bash_completion(std::cout);
    return 0;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  const Command* command = nullptr;
  if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
    for (const auto& c : commands()) {
      if (args[0] == c.name) {
        command = &c;
      }
    }
    if (command != nullptr) {
      args.erase(args.begin());
    } else if (args[0].find('.') == std::string::npos && args[0].find('/') == std::string::npos) {
      // Not a file name and not a command: most likely a typo.
      std::vector<std::string> names;
      for (const auto& c : commands()) {
        names.emplace_back(c.name);
      }
      const auto hint = did_you_mean_suffix(args[0], names);
      return report(usage_error(fmt::format("unknown command '{}'", args[0]) +
                                (hint.empty() ? " (see build-image help)" : hint)));
    }
  }
  const bool named_command = command != nullptr;
  if (command == nullptr) {
    command = &commands().front();
  }
  auto options = parse_options(args);
  if (!options) {
    return report(options.error());
  }
  if (options->version) {
    auto printed = cmd_version(*options);
    return printed ? *printed : 0;
  }
  if (options->help && named_command && std::string(command->name) != "help") {
    print_command_help(std::cout, *command);
    return 0;
  }
  if (options->help || (command == &commands().front() && options->args.empty() && args.empty())) {
    print_help(std::cout);
    return 0;
  }
  if (auto applies = check_options_apply(*options, command->name); !applies) {
    return report(applies.error());
  }
  setup_logging(options->verbose);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  try {
    auto rc = command->run(*options);
    if (!rc) {
      if (interrupted()) {
        std::cerr << "build-image: interrupted; temporary files removed\n";
        return 130;
      }
      return report(rc.error());
    }
    return *rc;
  } catch (const std::exception& e) {
    return report(make_error("internal error", e.what()));
  }
}

} // namespace bi
