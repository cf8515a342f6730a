#!/usr/bin/python3
"""SIGINT/SIGTERM (ctest "signals"): an interrupted build-image cleans up after itself.
- A build interrupted while it builds layers (an empty cache of its own: mmdebstrap and the
  libguestfs appliance are running) exits 130 with "build-image: interrupted; temporary
  files removed", leaves no process of its own behind, no staging directory in the cache,
  no layer under a final name that does not verify, and nothing half-written in the output.
- boot-test interrupted while its libvirt domain runs exits 130, and the domain and its run
  directory are gone.
Environment: BI_BINARY, BI_SOURCE_DIR, BUILD_IMAGE_CACHE (its mirror index is reused),
BI_TEST_IMAGES (the fixture's images: tiny generic is booted). Root.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

SRC = os.environ.get("BI_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("BI_BINARY", os.path.join(SRC, "build", "build-image"))
TINY = os.path.join(SRC, "tests/data/tiny.yaml")


def processes_mentioning(text):
    """PIDs whose command line mentions text (not this test's own)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def domains():
    p = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"], capture_output=True, text=True)
    return {d for d in p.stdout.split() if d.startswith("build-image-boot-")}


class Signals(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="bi-signals-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def interrupt(self, argv, sig, ready, env=None):
        """Starts argv, waits until ready() (at most 300 s), sends sig; returns (rc, stderr)."""
        err_path = os.path.join(self.work, "stderr")
        with open(err_path, "w") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=SRC)
            deadline = time.time() + 300
            while not ready() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.5)
            self.assertIsNone(proc.poll(), "finished before it could be interrupted")
            self.assertTrue(ready(), "never reached the point to interrupt")
            started = time.time()
            proc.send_signal(sig)
            rc = proc.wait(timeout=120)
            print(f"  {os.path.basename(argv[0])} {argv[1]}: exited {rc} {time.time() - started:.1f} s after "
                  f"{signal.Signals(sig).name}", flush=True)
        with open(err_path) as f:
            return rc, f.read()

    def test_build_interrupted_while_building_layers(self):
        cache = os.path.join(self.work, "cache")
        out = os.path.join(self.work, "out")
        os.makedirs(cache)
        fixture = os.environ.get("BUILD_IMAGE_CACHE", "")
        if os.path.isdir(os.path.join(fixture, "mirror-index")):
            shutil.copytree(os.path.join(fixture, "mirror-index"), os.path.join(cache, "mirror-index"))
        staging = os.path.join(cache, "tmp")

        def building():  # a layer's staging directory exists and something runs in it
            return bool(glob.glob(os.path.join(staging, "*"))) and len(processes_mentioning(cache)) > 1

        rc, err = self.interrupt([BIN, "--output", out, "--cache-dir", cache, TINY], signal.SIGTERM, building)
        self.assertEqual(rc, 130, err)
        self.assertTrue(err.endswith("build-image: interrupted; temporary files removed\n"), err)
        # The build's children get SIGTERM from it and may need a moment to exit: wait for
        # that (bounded), rather than for a fixed time.
        deadline = time.time() + 10
        while processes_mentioning(cache) and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(processes_mentioning(cache), [], "processes left behind (10 s after the build exited)")
        self.assertEqual(os.listdir(staging) if os.path.isdir(staging) else [], [], "staging left in the cache")
        if os.path.isdir(os.path.join(cache, "layers")) and os.listdir(os.path.join(cache, "layers")):
            p = subprocess.run([BIN, "cache", "verify", "--cache-dir", cache], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        if os.path.isdir(out):
            self.assertEqual([n for n in os.listdir(out) if n.endswith((".qcow2", ".raw", ".vmdk")) or
                              n.startswith(".tmp-")], [])

    def test_boot_test_interrupted_removes_its_domain(self):
        images = os.environ["BI_TEST_IMAGES"]
        with open(os.path.join(images, "catalog.json")) as f:
            entries = [e for e in json.load(f)["images"] if e["cartridge"] == "tiny" and e["mode"] == "generic"]
        self.assertTrue(entries, "no tiny generic image in the fixture's catalog")
        image = os.path.join(images, max(entries, key=lambda e: e["created"])["file"])
        before = domains()

        def running():
            return bool(domains() - before)

        rc, err = self.interrupt([BIN, "boot-test", image, "--timeout", "600"], signal.SIGINT, running)
        self.assertEqual(rc, 130, err)
        new = domains() - before
        self.assertEqual(new, set(), "domain left behind")
        self.assertEqual(glob.glob("/var/lib/libvirt/images/build-image-boot-*"), [], "run directory left behind")


if __name__ == "__main__":
    unittest.main(verbosity=2)
