#include "guest/accel.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include <spdlog/spdlog.h>

#include "util/fs.hpp"
#include "util/process.hpp"

namespace bi {

namespace {

std::string host_kernel_image() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/boot", ec)) {
    if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) {
      return e.path().string();
    }
  }
  return {};
}

} // namespace

Accelerator detect_accelerator(const fs::path& cache_dir) {
  // Parallel phases ask at the same time; probe once.
  static std::mutex probe_mutex;
  std::lock_guard lock(probe_mutex);
  if (const char* forced = std::getenv("BUILD_IMAGE_ACCEL")) {
    const std::string f = forced;
    if (f == "kvm" || f == "tcg") {
      return {f == "kvm", "forced by BUILD_IMAGE_ACCEL"};
    }
  }
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return {false, "/dev/kvm is not usable"};
  }
  ::close(fd);

  struct utsname u {};
  ::uname(&u);
  std::error_code ec;
  const auto qemu = fs::path("/usr/bin/qemu-system-x86_64");
  const auto stamp = std::to_string(fs::last_write_time(qemu, ec).time_since_epoch().count());
  const std::string probe_id = std::string(u.release) + " " + u.version + " " + stamp;
  const fs::path verdict_file = cache_dir / "kvm-probe";
  if (auto cached = read_file(verdict_file); cached && cached->rfind(probe_id + "\n", 0) == 0) {
    const bool kvm = cached->find("\nkvm") != std::string::npos;
    return {kvm, kvm ? "KVM works (cached probe)" : "KVM is present but unusable (cached probe)"};
  }

  const std::string kernel = host_kernel_image();
  if (kernel.empty()) {
    return {false, "no host kernel to probe KVM with"};
  }
  // A kernel without a root device panics within a second under working KVM; broken
  // nested KVM hangs or aborts instead.
  RunOptions opts;
  opts.timeout = std::chrono::seconds(15);
  auto r = run_process({"qemu-system-x86_64",
                        "-accel",
                        "kvm",
                        "-machine",
                        "pc",
                        "-cpu",
                        "host",
                        "-m",
                        "128",
                        "-nodefaults",
                        "-display",
                        "none",
                        "-no-reboot",
                        "-serial",
                        "stdio",
                        "-monitor",
                        "none",
                        "-kernel",
                        kernel,
                        "-append",
                        "console=ttyS0 panic=-1 root=/dev/nonexistent"},
                       opts);
  const bool kvm = r && !r->timed_out && r->exit_code == 0 && r->output.find("Linux version") != std::string::npos;
  fs::create_directories(cache_dir, ec);
  (void)write_file_atomic(verdict_file, probe_id + "\n" + (kvm ? "kvm" : "tcg") + "\n");
  return {kvm, kvm ? "KVM works" : "KVM is present but unusable (probe guest hung or aborted)"};
}

} // namespace bi
