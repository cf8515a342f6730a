// boot-test without a VM: payload, hostname rule, event matching, domain XML, config
// drive and the private broker (a real mosquitto when installed).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <regex>
#include <thread>

#include "boot/boot_test.hpp"
#include "boot/broker.hpp"
#include "boot/config_drive.hpp"
#include "boot/libvirt_domain.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

using namespace bi;

namespace {

DefaultPayloadInput php_input() {
  return {"php", {80, 443}, "5b7c1e2a-0000-4000-8000-000000000001", "U4OYk2Pnu09TK34x"};
}

BrokerMessage message(const std::string& topic, const std::string& payload, std::chrono::steady_clock::time_point t) {
  return {topic, payload, t};
}

} // namespace

TEST_CASE("parse_payload splits one line on commas and several lines per line", "[boot]") {
  auto one = parse_payload(" A=1, B = two ,,C=x=y,NOEQUALS,A=3\n");
  CHECK(one.size() == 3);
  CHECK(one["A"] == "3"); // the last one wins, as in cartridge-init
  CHECK(one["B"] == "two");
  CHECK(one["C"] == "x=y");
  auto lines = parse_payload("A=1,2\nB=3\n\n");
  CHECK(lines["A"] == "1,2"); // one field per line: commas are data
  CHECK(lines["B"] == "3");
  CHECK(parse_payload("").empty());
}

TEST_CASE("parse_payload treats Stratos' unset values as absent, so boot-test adds its broker", "[boot]") {
  // A real Stratos payload: MB_IP=null (the broker is in agent.conf), empty lists.
  auto f = parse_payload("SERVICE_NAME=php,MB_IP=null,MB_PORT=,LB_CLUSTER_ID=null,MEMBER_ID=m1,DEPLOYMENT=default");
  CHECK(f.count("MB_IP") == 0);
  CHECK(f.count("MB_PORT") == 0);
  CHECK(f.count("LB_CLUSTER_ID") == 0);
  CHECK(f["MEMBER_ID"] == "m1");
  // A later unset value hides an earlier one ("the later value wins").
  CHECK(parse_payload("A=1,A=null").count("A") == 0);
  // Keys outside ^[A-Za-z_][A-Za-z0-9_]*$ are not fields; a byte order mark is not part of a key.
  auto k = parse_payload("\xEF\xBB\xBF"
                         "FIRST=1,mb.url=x,-X=1,9A=1,_OK=2");
  CHECK(k.size() == 2);
  CHECK(k["FIRST"] == "1");
  CHECK(k["_OK"] == "2");
}

TEST_CASE("the default payload is one Stratos line with the boot-test guest addresses", "[boot]") {
  const std::string p = make_default_payload(php_input());
  CHECK(p.find('\n') == std::string::npos);
  CHECK(p.rfind("APPLICATION_ID=boot-test,GROUP_NAME=null,SERVICE_NAME=php,", 0) == 0);
  auto f = parse_payload(p);
  CHECK(f["CLUSTER_ID"] == "boot-test.php.domain");
  // Stratos' generateMemberId: the cluster id and a UUID, no separator.
  CHECK(f["MEMBER_ID"] == "boot-test.php.domain5b7c1e2a-0000-4000-8000-000000000001");
  CHECK(f["CLUSTER_INSTANCE_ID"] == "boot-test-1");
  CHECK(f["NETWORK_PARTITION_ID"] == "np-1");
  CHECK(f["PARTITION_ID"] == "p-1");
  CHECK(f["PORTS"] == "80|443");
  CHECK(f["DEPLOYMENT"] == "default");
  CHECK(f["PUPPET_IP"] == "10.0.2.101");
  CHECK(f["PUPPET_HOSTNAME"] == "puppet.test");
  CHECK(f["PUPPET_DNS_AVAILABLE"] == "false");
  CHECK(f["MB_IP"] == "10.0.2.100");
  CHECK(f["MB_PORT"] == "1883");
  CHECK(f["CARTRIDGE_KEY"] == "U4OYk2Pnu09TK34x");
  // Stratos' order: identity first, then deployment, ports and Puppet, then the member.
  CHECK(p.find("CLUSTER_ID=") < p.find("DEPLOYMENT="));
  CHECK(p.find("PORTS=") < p.find("PUPPET_IP="));
  CHECK(p.find("PUPPET_DNS_AVAILABLE=") < p.find("MEMBER_ID="));

  auto no_ports = php_input();
  no_ports.ports.clear();
  CHECK(parse_payload(make_default_payload(no_ports)).count("PORTS") == 0);
}

TEST_CASE("the hostname must be <digits>.<DEPLOYMENT>.<SERVICE_NAME>.<PUPPET_HOSTNAME>", "[boot]") {
  const auto pattern = hostname_pattern(parse_payload(make_default_payload(php_input())));
  CHECK(pattern == "^[0-9]+\\.default\\.php\\.puppet\\.test$");
  CHECK(hostname_matches("194725112601.default.php.puppet.test", pattern));
  CHECK_FALSE(hostname_matches("localhost", pattern));
  CHECK_FALSE(hostname_matches("x1.default.php.puppet.test", pattern));
  CHECK_FALSE(hostname_matches("1.default.php.puppet.test.example", pattern));
  CHECK_FALSE(hostname_matches("1.default.phpXpuppet.test", pattern));

  // cartridge-init lower-cases; dots in names are not wildcards.
  auto upper = hostname_pattern(parse_payload("SERVICE_NAME=PHP,DEPLOYMENT=Prod,PUPPET_HOSTNAME=Puppet.Example.org"));
  CHECK(upper == "^[0-9]+\\.prod\\.php\\.puppet\\.example\\.org$");
  // No usable Puppet host name: the domain comes from the image, so any domain is allowed.
  auto by_ip = hostname_pattern(parse_payload("SERVICE_NAME=php,PUPPET_HOSTNAME=10.0.2.101"));
  CHECK(hostname_matches("42.default.php.localdomain", by_ip));
  CHECK(hostname_pattern(parse_payload("SERVICE_NAME=php,PUPPET_HOSTNAME=null")) == by_ip);
}

TEST_CASE("find_boot_failure sees an initramfs that cannot find / and a kernel panic", "[boot]") {
  CHECK(find_boot_failure("Begin: Running /scripts/local-block ... done.\r\nlogin: ").empty());
  CHECK(find_boot_failure("Gave up waiting for root file system device.\r\n"
                          "ALERT!  LABEL=rootfs does not exist.  Dropping to a shell!\r\n(initramfs) ") ==
        "ALERT!  LABEL=rootfs does not exist.  Dropping to a shell!");
  CHECK(find_boot_failure("[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n") ==
        "Kernel panic - not syncing: VFS: Unable to mount root fs");
  CHECK(find_boot_failure("ALERT!  half a line").empty()); // still being written
}

TEST_CASE("find_chosen_hostname reads cartridge-init's line from the serial log", "[boot]") {
  const std::string console =
      "[   41.18] cartridge-init[277]: cartridge-init: starting (full mode)\n"
      "localhost login: [   49.92] cartridge-init[277]: cartridge-init: launch-params: 22 keys\n"
      "[   54.70] cartridge-init[277]: cartridge-init: hostname longer than 64 characters: kernel hostname is 12\n"
      "[   54.76] cartridge-init[277]: cartridge-init: hostname 194725112601.default.php.puppet.test\r\n"
      "[   54.85] cartridge-init[277]: cartridge-init: hosts: 10.0.2.101 puppet.test\n";
  CHECK(find_chosen_hostname(console) == std::optional<std::string>("194725112601.default.php.puppet.test"));
  CHECK_FALSE(find_chosen_hostname("cartridge-init: already initialized: keeping hostname 1.a.b.c\n"));
  // A line still being written is not a hostname yet.
  CHECK_FALSE(find_chosen_hostname("cartridge-init: hostname 1.default.ph"));
  CHECK_FALSE(find_chosen_hostname(""));
}

TEST_CASE("status events are matched to the member by memberId", "[boot]") {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string member = "boot-test.php.domain5b7c";
  auto activated = decode_status_event(
      message("instance/status/InstanceActivatedEvent",
              R"({"clusterId": "boot-test.php.domain", "memberId": "boot-test.php.domain5b7c", "instanceId": null})",
              t0 + std::chrono::milliseconds(64300)),
      member, t0);
  CHECK(activated.name == "InstanceActivatedEvent");
  CHECK(activated.seconds == Approx(64.3));
  CHECK(activated.cluster_id == "boot-test.php.domain");
  CHECK(activated.for_member);
  CHECK(is_activation_of(activated));

  auto other = decode_status_event(
      message("instance/status/InstanceActivatedEvent", R"({"memberId": "boot-test.php.domain5b7cX"})", t0), member,
      t0);
  CHECK_FALSE(other.for_member);
  CHECK_FALSE(is_activation_of(other));

  auto started = decode_status_event(
      message("instance/status/InstanceStartedEvent", R"({"memberId": "boot-test.php.domain5b7c"})", t0), member, t0);
  CHECK(started.for_member);
  CHECK_FALSE(is_activation_of(started));

  auto garbage = decode_status_event(message("instance/status/InstanceActivatedEvent", "not json", t0), member, t0);
  CHECK(garbage.body.is_null());
  CHECK_FALSE(is_activation_of(garbage));
}

TEST_CASE("domain XML: TCG guest, overlay on an untouched image, config drive, serial file, passthrough NIC",
          "[boot]") {
  DomainSpec s;
  s.name = "build-image-boot-1234";
  s.uuid = "5b7c1e2a-0000-4000-8000-000000000001";
  s.disk = "/var/lib/libvirt/images/run/overlay.qcow2";
  s.backing_image = "/srv/images/R&D's image.qcow2";
  s.config_drive = "/var/lib/libvirt/images/run/config-2.iso";
  s.console_log = "/var/lib/libvirt/images/run/console.log";
  s.guestfwd = {"tcp:10.0.2.100:1883-tcp:127.0.0.1:18830"};
  const std::string x = render_domain_xml(s);
  CHECK(x.rfind("<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>", 0) == 0);
  CHECK(x.find("<name>build-image-boot-1234</name>") != std::string::npos);
  CHECK(x.find("<memory unit='MiB'>1024</memory>") != std::string::npos);
  CHECK(x.find("<vcpu>2</vcpu>") != std::string::npos);
  CHECK(x.find("<model fallback='allow'>qemu64</model>") != std::string::npos);
  CHECK(x.find("<on_poweroff>destroy</on_poweroff>") != std::string::npos);
  // The throwaway overlay ignores the guest's flushes.
  CHECK(x.find("<driver name='qemu' type='qcow2' cache='unsafe'/>\n      "
               "<source file='/var/lib/libvirt/images/run/overlay.qcow2'/>") != std::string::npos);
  // The user's image is the backing file and is never relabelled.
  CHECK(x.find(
            "<source file='/srv/images/R&amp;D&apos;s image.qcow2'>\n          <seclabel model='dac' relabel='no'/>") !=
        std::string::npos);
  CHECK(x.find("<source file='/var/lib/libvirt/images/run/config-2.iso'/>\n      <target dev='vdb' bus='virtio'/>\n"
               "      <readonly/>") != std::string::npos);
  CHECK(x.find("<serial type='file'>\n      <source path='/var/lib/libvirt/images/run/console.log'/>") !=
        std::string::npos);
  CHECK(x.find("<interface") == std::string::npos); // no libvirt NIC
  CHECK(x.find("<qemu:arg value='user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:1883-tcp:127.0.0.1:18830'/>") !=
        std::string::npos);
  CHECK(x.find("<qemu:arg value='virtio-net-pci,netdev=n0,bus=pci.0,addr=0x10'/>") != std::string::npos);

  s.kvm = true;
  s.config_drive.clear();
  const std::string k = render_domain_xml(s);
  CHECK(k.rfind("<domain type='kvm'", 0) == 0);
  CHECK(k.find("qemu64") == std::string::npos);
  CHECK(k.find("<tcg>") == std::string::npos);
  CHECK(k.find("vdb") == std::string::npos);
}

TEST_CASE("domain XML: UEFI on q35 with a per-run variable store; Secure Boot adds SMM and the secure code", "[boot]") {
  DomainSpec s;
  s.name = "b";
  s.disk = "/run/overlay.qcow2";
  s.console_log = "/run/console.log";
  s.nvram = "/run/OVMF_VARS.fd";
  const std::string bios = render_domain_xml(s);
  CHECK(bios.find("machine='pc'") != std::string::npos);
  CHECK(bios.find("<loader") == std::string::npos);
  s.firmware = "uefi";
  const std::string uefi = render_domain_xml(s);
  CHECK(uefi.find("<type arch='x86_64' machine='q35'>hvm</type>\n"
                  "    <loader readonly='yes' secure='no' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\n"
                  "    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/run/OVMF_VARS.fd</nvram>\n") !=
        std::string::npos);
  CHECK(uefi.find("<smm") == std::string::npos);
  CHECK(uefi.find("virtio-net-pci,netdev=n0,bus=pcie.0,addr=0x10") != std::string::npos); // q35's root bus
  s.firmware = "uefi-secure";
  const std::string sb = render_domain_xml(s);
  CHECK(sb.find("<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>\n"
                "    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>") != std::string::npos);
  CHECK(sb.find("<smm state='on'/>") != std::string::npos);
}

TEST_CASE("--firmware: the default follows the image, and what the image cannot boot is refused", "[boot]") {
  CHECK(*parse_boot_firmware("uefi-secure") == "uefi-secure");
  CHECK(parse_boot_firmware("efi").error().to_string() ==
        "invalid --firmware 'efi': expected bios, uefi or uefi-secure (did you mean 'uefi'?)");
  CHECK(parse_boot_firmware("efi").error().code == ExitCode::bad_input);
  CHECK(*choose_boot_firmware(std::nullopt, "hybrid", "i") == "bios");
  CHECK(*choose_boot_firmware(std::nullopt, "bios", "i") == "bios");
  CHECK(*choose_boot_firmware(std::nullopt, "uefi", "i") == "uefi");
  CHECK(*choose_boot_firmware(std::string("uefi"), "hybrid", "i") == "uefi");
  // Every EFI image carries the signed chain: Secure Boot needs no base.secure_boot.
  CHECK(*choose_boot_firmware(std::string("uefi-secure"), "hybrid", "i") == "uefi-secure");
  CHECK(*choose_boot_firmware(std::string("uefi-secure"), "uefi", "i") == "uefi-secure");
  const auto sb = choose_boot_firmware(std::string("uefi-secure"), "bios", "x.qcow2");
  CHECK(
      sb.error().to_string() ==
      "x.qcow2: --firmware uefi-secure cannot start an image built with base.firmware bios (no EFI system partition)");
  CHECK(sb.error().code == ExitCode::bad_input);
  CHECK(choose_boot_firmware(std::string("uefi"), "bios", "x").error().to_string() ==
        "x: --firmware uefi cannot start an image built with base.firmware bios (no EFI system partition)");
  CHECK(choose_boot_firmware(std::string("bios"), "uefi", "x").error().to_string() ==
        "x: --firmware bios cannot start an image built with base.firmware uefi (no BIOS boot code)");
}

TEST_CASE("the guest's Secure Boot state is read from its kernel's console lines", "[boot]") {
  CHECK(secure_boot_from_console("[    0.000000] secureboot: Secure boot enabled\n") == std::optional<bool>(true));
  CHECK(secure_boot_from_console("[    0.000000] secureboot: Secure boot disabled\n") == std::optional<bool>(false));
  CHECK_FALSE(secure_boot_from_console("localhost login:").has_value()); // BIOS: the kernel says nothing
}

TEST_CASE("disk buses: libvirt's virtio-scsi controller, NVMe passed to qemu with its own slot", "[boot]") {
  DomainSpec s;
  s.name = "n";
  s.disk = "/run/overlay.qcow2";
  s.backing_image = "/srv/image.qcow2";
  s.console_log = "/run/console.log";
  s.disk_bus = DiskBus::scsi;
  const std::string scsi = render_domain_xml(s);
  CHECK(scsi.find("<controller type='scsi' index='0' model='virtio-scsi'/>") != std::string::npos);
  CHECK(scsi.find("<source file='/run/overlay.qcow2'/>") != std::string::npos);
  CHECK(scsi.find("<target dev='sda' bus='scsi'/>") != std::string::npos);
  CHECK(scsi.find("bus='virtio'/>\n    </disk>") == std::string::npos);

  s.disk_bus = DiskBus::nvme;
  const std::string nvme = render_domain_xml(s);
  CHECK(nvme.find("<source file='/run/overlay.qcow2'/>") == std::string::npos); // not a libvirt disk
  CHECK(nvme.find("<qemu:arg value='file=/run/overlay.qcow2,format=qcow2,cache=unsafe,if=none,id=disk0'/>") !=
        std::string::npos);
  CHECK(nvme.find("<qemu:arg value='nvme,drive=disk0,serial=disk0,bootindex=0,bus=pci.0,addr=0x11'/>") !=
        std::string::npos);

  CHECK(qemu_disk_args(DiskBus::virtio, "file=a") == std::vector<std::string>{"-drive", "file=a,if=virtio"});
  CHECK(qemu_disk_args(DiskBus::scsi, "file=a") ==
        std::vector<std::string>{"-device", "virtio-scsi-pci,id=scsi0", "-drive", "file=a,if=none,id=disk0", "-device",
                                 "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=0"});
  CHECK(parse_disk_bus("nvme") == DiskBus::nvme);
  CHECK_FALSE(parse_disk_bus("ide"));
}

TEST_CASE("boot-test's SSH inputs: sizes, public keys, host key fingerprints", "[boot]") {
  CHECK(parse_disk_size("6G").value() == (6ull << 30));
  CHECK(parse_disk_size("6442450944").value() == (6ull << 30));
  CHECK(parse_disk_size("0").error().to_string() == "invalid --disk-size '0': expected a size like 6G or 8GiB");
  CHECK(parse_disk_size("3T").error().to_string() == "invalid --disk-size '3T': expected 1G to 2T");
  test::Scratch s;
  const auto pub = s.write("id.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7 me@host\n");
  CHECK(read_public_key(pub).value() == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7 me@host");
  const auto two = s.write("two.pub", "ssh-ed25519 AAAA a\nssh-ed25519 BBBB b\n");
  CHECK(read_public_key(two).error().to_string() ==
        two.string() + ": not one OpenSSH public key line (--ssh-key takes the .pub file)");
  const auto options = s.write("opt.pub", "command=\"x\" ssh-ed25519 AAAA a\n");
  CHECK_FALSE(read_public_key(options));
  CHECK(parse_fingerprints("256 SHA256:bbb [127.0.0.1]:2222 (ED25519)\n"
                           "3072 SHA256:aaa [127.0.0.1]:2222 (RSA)\n"
                           "256 SHA256:bbb [127.0.0.1]:2222 (ED25519)\n"
                           "garbage\n") == std::vector<std::string>{"SHA256:aaa (RSA)", "SHA256:bbb (ED25519)"});
}

TEST_CASE("parse_broker_address takes HOST:PORT", "[boot]") {
  auto a = parse_broker_address("127.0.0.1:1883");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 1883);
  CHECK(a->to_string() == "127.0.0.1:1883");
  CHECK(parse_broker_address("broker.test:65535"));
  CHECK(parse_broker_address("1883").error().to_string() == "1883: expected HOST:PORT");
  CHECK(parse_broker_address("h:0").error().to_string() == "h:0: port 0 is out of range (1-65535)");
  CHECK(parse_broker_address("h:x1").error().to_string() == "h:x1: port 'x1' is not a number");
  CHECK(parse_broker_address("a,b:1").error().code == ExitCode::bad_input);
  // The host ends up inside the quoted command of qemu's per-connection relay.
  CHECK(parse_broker_address("a'b:1").error().to_string() == "a'b:1: invalid host 'a'b'");
  CHECK(parse_broker_address("$(reboot):1").error().code == ExitCode::bad_input);
  CHECK(parse_broker_address(":1883").error().code == ExitCode::bad_input);
}

TEST_CASE("the broker is reached through a relay per guest connection, like --forward", "[boot]") {
  GuestForward broker;
  broker.guest_ip = "10.0.2.100";
  broker.guest_port = 1883;
  broker.host = "broker.test";
  broker.host_port = 11883;
  CHECK(broker.to_guestfwd() ==
        "tcp:10.0.2.100:1883-cmd:/bin/bash -c 'exec 3<>/dev/tcp/broker.test/11883; cat <&3 & cat >&3'");
}

TEST_CASE("the config drive is an ISO labelled config-2 with user_data and meta_data.json", "[boot]") {
  const std::string meta = render_meta_data({"secret", "5b7c1e2a-0000-4000-8000-000000000001", "boot-test-5b7c", {}});
  auto j = nlohmann::json::parse(meta);
  CHECK(j["uuid"] == "5b7c1e2a-0000-4000-8000-000000000001");
  CHECK(j["hostname"] == "boot-test-5b7c");
  CHECK_FALSE(j.contains("public_keys"));
  // --ssh-key: the key pair as Nova writes it, the value ending in a newline.
  const auto keyed = nlohmann::json::parse(
      render_meta_data({"", "u", "h", {{"boot-test", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB boot-test"}}}));
  CHECK(keyed["public_keys"] == nlohmann::json{{"boot-test", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB boot-test\n"}});
  if (!program_available("xorriso")) {
    WARN("xorriso not installed: ISO not checked");
    return;
  }
  test::Scratch s;
  const auto iso = s.path() / "config-2.iso";
  REQUIRE(make_config_drive(iso, {"A=1,TOKEN=secret", "5b7c", "h", {}}, s.path()));
  struct stat st {};
  REQUIRE(::stat(iso.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600); // the payload may hold secrets
  // Only the ISO is left: the staging tree with the plain payload is gone.
  CHECK(std::distance(fs::directory_iterator(s.path()), fs::directory_iterator()) == 1);
  auto label = run_process({"blkid", "-o", "value", "-s", "LABEL", iso.string()});
  REQUIRE(label);
  CHECK(label->output == "config-2\n");
  auto listing = run_process({"xorriso", "-indev", iso.string(), "-find", "/openstack", "-type", "f"});
  REQUIRE(listing);
  CHECK(listing->output.find("'/openstack/latest/user_data'") != std::string::npos);
  CHECK(listing->output.find("'/openstack/latest/meta_data.json'") != std::string::npos);
}

TEST_CASE("the private broker records instance/status messages with their arrival time", "[boot]") {
  CHECK(render_mosquitto_conf(18830).rfind("listener 18830 127.0.0.1\nallow_anonymous true\npersistence false\n", 0) ==
        0);
  if (!program_available("mosquitto") && !program_available("/usr/sbin/mosquitto")) {
    WARN("mosquitto not installed: broker not started");
    return;
  }
  if (!program_available("mosquitto_pub")) {
    WARN("mosquitto_pub not installed: nothing to publish with");
    return;
  }
  test::Scratch s;
  auto broker = MosquittoBroker::start(s.path());
  REQUIRE(broker);
  auto recorder = EventRecorder::connect(broker->address(), "instance/status/#", std::chrono::seconds(10));
  REQUIRE(recorder);
  const auto before = std::chrono::steady_clock::now();
  const std::string port = std::to_string(broker->port());
  REQUIRE(run_checked({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
                       "instance/status/InstanceStartedEvent", "-m", R"({"memberId": "m1"})"}));
  REQUIRE(run_checked({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "topology/Other", "-m", "x"}));
  REQUIRE(run_checked({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-t",
                       "instance/status/InstanceActivatedEvent", "-m", R"({"memberId": "m1"})"}));
  std::vector<BrokerMessage> got;
  for (int i = 0; i < 100 && got.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    got = (*recorder)->messages();
  }
  REQUIRE(got.size() == 2); // topology/Other is outside the filter
  CHECK(got[0].topic == "instance/status/InstanceStartedEvent");
  CHECK(got[1].topic == "instance/status/InstanceActivatedEvent");
  CHECK(got[0].received >= before);
  CHECK(got[1].received >= got[0].received);
  CHECK(is_activation_of(decode_status_event(got[1], "m1", before)));
}

TEST_CASE("--forward GUEST_IP:PORT=HOST_PORT becomes a guestfwd to loopback", "[boot]") {
  auto f = parse_guest_forward("10.0.2.101:8140=18140");
  REQUIRE(f);
  CHECK(f->guest_ip == "10.0.2.101");
  CHECK(f->guest_port == 8140);
  CHECK(f->host_port == 18140);
  CHECK(f->to_guestfwd() ==
        "tcp:10.0.2.101:8140-cmd:/bin/bash -c 'exec 3<>/dev/tcp/127.0.0.1/18140; cat <&3 & cat >&3'");
  for (const char* bad : {"10.0.2.101:8140", "10.0.2.101=18140", "10.0.2.300:80=8080", "10.0.2.102:0=8080",
                          "10.0.2.102:80=70000", "host:80=8080", "10.0.2.100:1883=1884", " 10.0.2.102:80=8080"}) {
    INFO(bad);
    CHECK_FALSE(parse_guest_forward(bad));
  }
}
