#!/usr/bin/python3
"""Starved host (ctest "starved_host"): each missing or failing piece of the host gives
`build-image: error: <object>: <detail>` naming the cause, exit 3, and leaves nothing
half-written (no image or temp file under the output folder, the catalog absent or valid).
Cheap paths only: every case fails within seconds; the builds use the fixture's layer cache
(BUILD_IMAGE_CACHE) and their own output folders. Needs root (tmpfs mounts, unshare -m).
Environment: BI_BINARY, BI_SOURCE_DIR, BUILD_IMAGE_CACHE.
"""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

SRC = os.environ.get("BI_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("BI_BINARY", os.path.join(SRC, "build", "build-image"))
TINY = os.path.join(SRC, "tests/data/tiny.yaml")


def path_without(work, names):
    """A PATH folder with every program of the usual folders but those matching `names`."""
    farm = os.path.join(work, "bin-" + "-".join(n.strip("*") for n in names))
    os.makedirs(farm)
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if any(re.fullmatch(n.replace("*", ".*"), name) for n in names):
                continue
            dst = os.path.join(farm, name)
            if not os.path.lexists(dst):
                os.symlink(os.path.join(d, name), dst)
    return farm


class StarvedHost(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="bi-starved-")
        self.out = os.path.join(self.work, "out")
        self.env = dict(os.environ)
        self.mounts = []

    def tearDown(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", m], check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    def run_bi(self, args, env=None, prefix=()):
        return subprocess.run(list(prefix) + [BIN] + args, env=env or self.env, capture_output=True, text=True,
                              timeout=600, cwd=SRC)

    def assert_error(self, p, pattern):
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertRegex(p.stderr, r"\A(build-image: warning: [^\n]*\n)*" + pattern + r"\n\n?\Z")

    def assert_nothing_half_written(self):
        if not os.path.isdir(self.out):
            return
        names = os.listdir(self.out)
        self.assertEqual([n for n in names if n.startswith(".tmp-")], [], names)
        self.assertEqual([n for n in names if re.search(r"\.(qcow2|raw|vmdk)$", n)], [], names)
        if "catalog.json" in names:
            with open(os.path.join(self.out, "catalog.json")) as f:
                self.assertIsInstance(json.load(f)["images"], list)

    def test_unreachable_mirror(self):
        # A port that is bound but not listening: connections are refused at once.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        try:
            yaml = os.path.join(self.work, "m.yaml")
            with open(yaml, "w") as f:
                f.write(f'type: tiny\nmode: generic\nbase: {{os: debian-12, mirror: "http://127.0.0.1:{port}/debian"}}\n')
            env = dict(self.env, BUILD_IMAGE_CACHE=os.path.join(self.work, "cache"))
            p = self.run_bi(["--output", self.out, yaml], env)
        finally:
            s.close()
        url = f"http://127.0.0.1:{port}/debian/dists/bookworm/InRelease"
        self.assert_error(p, re.escape(f"build-image: error: {url}: cannot read the mirror's index (needed for cache keys): "
                                       f"cannot fetch: curl: (7) Failed to connect to 127.0.0.1 port {port} after ")
                          + r"\d+ ms: Couldn't connect to server")
        self.assertFalse(os.path.exists(self.out))

    def test_qemu_missing(self):
        env = dict(self.env, PATH=path_without(self.work, ["qemu*"]))
        p = self.run_bi(["--output", self.out, TINY], env)
        self.assert_error(p, re.escape("build-image: error: qemu-img: program not found in PATH "
                                       "(install it, see scripts/install-deps)"))
        self.assert_nothing_half_written()
        image = os.path.join(self.work, "x.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "1G"], check=True)
        payload = os.path.join(self.work, "payload")
        with open(payload, "w") as f:
            f.write("SERVICE_NAME=tiny\nMEMBER_ID=m1\nPORTS=80\n")
        p = self.run_bi(["boot-test", image, "--payload", payload], env)
        self.assert_error(p, re.escape("build-image: error: qemu-img: not installed (see scripts/install-deps)"))

    def test_output_disk_full(self):
        os.makedirs(self.out)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", self.out], check=True)
        self.mounts.append(self.out)
        p = self.run_bi(["--output", self.out, TINY])
        self.assert_error(p, re.escape(f"build-image: error: {self.out}/.tmp-") + r"tiny-generic-[0-9a-f]+\.qcow2"
                          + re.escape(": no space left on the output device: qemu-img: error while writing at byte ")
                          + r"\d+: No space left on device")
        self.assert_nothing_half_written()

    def test_cache_disk_full(self):
        # An empty cache on a 2 MiB filesystem (the mirror's index digest copied in, so the
        # plan needs no download): the first layer to build is refused before it starts.
        cache = os.path.join(self.work, "cache")
        os.makedirs(cache)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", cache], check=True)
        self.mounts.append(cache)
        fixture = os.environ.get("BUILD_IMAGE_CACHE", "")
        if os.path.isdir(os.path.join(fixture, "mirror-index")):
            shutil.copytree(os.path.join(fixture, "mirror-index"), os.path.join(cache, "mirror-index"))
        p = self.run_bi(["--output", self.out, "--cache-dir", cache, TINY])
        self.assert_error(p, re.escape(f"build-image: error: {cache}: no space to build the ")
                          + r"(base|bootloader) layer: \d+ MiB free in the cache, at least (1024|128) MiB needed")
        self.assert_nothing_half_written()
        self.assertEqual(glob.glob(os.path.join(cache, "layers", "*")), [])

    def boot_test_with_fake_daemons(self, virtlogd_starts):
        """boot-test with libvirt's sockets hidden in a private mount namespace (an empty
        /run/libvirt) and stand-ins for the daemons on PATH: libvirtd always fails to start;
        virtlogd fails too, or (virtlogd_starts) starts: a process in its own session that
        listens on /run/libvirt/virtlogd-sock, as the real one does, recording its PID."""
        fake = os.path.join(self.work, "fake-daemons")
        os.makedirs(fake)
        failing = "#!/bin/sh\necho '{0}: error: simulated start failure' >&2\nexit 1\n"
        with open(os.path.join(fake, "libvirtd"), "w") as f:
            f.write(failing.format("libvirtd"))
        self.holder_pid = os.path.join(self.work, "virtlogd.pid")
        with open(os.path.join(fake, "virtlogd"), "w") as f:
            if virtlogd_starts:
                # Listening and the PID file are done before `-d` returns, as the real one.
                f.write("#!/bin/sh\nexec /usr/bin/python3 -c '\n"
                        "import os, socket, sys\n"
                        "s = socket.socket(socket.AF_UNIX)\n"
                        "s.bind(\"/run/libvirt/virtlogd-sock\")\n"
                        "s.listen(8)\n"
                        "child = os.fork()\n"
                        "if child:\n"
                        f"    open(\"{self.holder_pid}\", \"w\").write(str(child))\n"
                        "    sys.exit(0)\n"
                        "os.setsid()\n"
                        "while True: s.accept()[0].close()\n"
                        "' </dev/null >/dev/null 2>&1\n")
            else:
                f.write(failing.format("virtlogd"))
        for d in ("virtlogd", "libvirtd"):
            os.chmod(os.path.join(fake, d), 0o755)
        empty = os.path.join(self.work, "empty-run")
        os.makedirs(empty)
        image = os.path.join(self.work, "x.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "1G"], check=True)
        payload = os.path.join(self.work, "payload")
        with open(payload, "w") as f:
            f.write("SERVICE_NAME=tiny\nMEMBER_ID=m1\nPORTS=80\n")
        env = dict(self.env, PATH=fake + ":" + self.env.get("PATH", "/usr/bin:/bin"))
        script = f'mkdir -p /run/libvirt && mount --bind {empty} /run/libvirt && exec "$@"'
        return self.run_bi(["boot-test", image, "--payload", payload, "--timeout", "30"], env,
                           prefix=["unshare", "-m", "sh", "-c", script, "sh"])

    def stop_holder(self):
        if os.path.exists(self.holder_pid):
            with open(self.holder_pid) as f:
                os.kill(int(f.read()), signal.SIGTERM)
            return True
        return False

    def test_virtlogd_failing(self):
        p = self.boot_test_with_fake_daemons(virtlogd_starts=False)
        self.assert_error(p, re.escape("build-image: error: virtlogd: cannot start: virtlogd: exited with status 1: "
                                       "virtlogd -d\nvirtlogd: error: simulated start failure"))

    def test_libvirtd_failing(self):
        # virtlogd starts and answers on its socket: the error must be libvirtd's own.
        try:
            p = self.boot_test_with_fake_daemons(virtlogd_starts=True)
        finally:
            started = self.stop_holder()
        self.assertTrue(started, "virtlogd was not started (its stand-in recorded no PID)")
        self.assert_error(p, re.escape("build-image: error: libvirtd: cannot start: libvirtd: exited with status 1: "
                                       "libvirtd -d\nlibvirtd: error: simulated start failure"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
