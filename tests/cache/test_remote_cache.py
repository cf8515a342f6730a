#!/usr/bin/python3
"""The shared remote layer cache (`--cache-url`), end to end with the real binary.

Machine A builds tests/data/tiny.yaml with the image fixture's cache (ctest's
`build_images_*` built tiny's layers) and publishes its layers; machine B, with an empty
cache and the same --cache-url, must build the same image with no layer built locally
(asserted from --json: remote hits, layers_built, appliance launches) and get the same
image bytes. A corrupted remote archive is detected and rebuilt, never used; a remote that
is down or refuses us costs a warning, not the build.

S3: s3rver (npm, pinned by tests/fakes/s3rver/package-lock.json, installed by
`scripts/install-deps test`) on 127.0.0.1. s3rver checks the access key id of a SigV4
Authorization header but does NOT verify v4 signatures; the signer is checked by the
public test vectors (tests/unit/test_sigv4.cpp) and, for EC2/EBS, by the strict
tests/fakes/fake_aws.py. HTTP: tests/fakes/http_cache.py (GET/HEAD/PUT, strict).

Environment: BI_BINARY, BI_SOURCE_DIR, BUILD_IMAGE_CACHE (the fixture's cache), BI_WORK
(scratch folder), BI_S3RVER (the s3rver executable).
"""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from bound import die_with_parent  # noqa: E402

SRC = os.environ.get("BI_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("BI_BINARY", os.path.join(SRC, "build", "build-image"))
FIXTURE_CACHE = os.environ.get("BUILD_IMAGE_CACHE", "")
# Scratch: several layer caches, images and two object stores (~2.5 GB). On tmpfs when it
# has room: deleting that much from a disk mounted with `discard` takes minutes.
WORK = os.environ.get("BI_WORK", "/tmp/bi-remote-cache-test")
if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > (6 << 30):
    WORK = f"/dev/shm/bi-remote-cache-test-{os.getpid()}"
S3RVER = os.environ.get("BI_S3RVER", "/var/cache/build-image-test/s3rver/node_modules/.bin/s3rver")
TINY = "tests/data/tiny.yaml"
# Everything here talks to 127.0.0.1 only: never through a proxy from the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "BUILD_IMAGE_CACHE_URL"}
    env.update(extra)
    return env


def build(name, cache_dir, cache_url, env, extra=()):
    """Runs one build; returns (image json, stderr, seconds)."""
    out = os.path.join(WORK, "out-" + name)
    argv = [BIN, "--json", "--output", out, "--cache-dir", cache_dir, "--cache-url", cache_url, *extra, TINY]
    start = time.time()
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1500, cwd=SRC)
    seconds = time.time() - start
    print(f"  machine {name}: {seconds:.1f} s", flush=True)
    if p.returncode != 0:
        raise AssertionError(f"build {name} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    result = json.loads(p.stdout)
    assert result["ok"], p.stdout
    return result["images"][0], p.stderr, seconds


def note(image, phase):
    return next(p["note"] for p in image["phases"] if p["name"] == phase)


def cache_verify(cache_dir):
    p = subprocess.run([BIN, "cache", "verify", "--cache-dir", cache_dir], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout


def qemu_img_check(image):
    return subprocess.run(["qemu-img", "check", image], capture_output=True, text=True, timeout=300).returncode


def fresh_cache(name):
    d = os.path.join(WORK, "cache-" + name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    # The mirror's index digest, as machine A saw it: B plans the same keys even if the
    # Debian mirror publishes between the two builds.
    mi = os.path.join(FIXTURE_CACHE, "mirror-index")
    if os.path.isdir(mi):
        shutil.copytree(mi, os.path.join(d, "mirror-index"))
    return d


class RemoteCacheTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not FIXTURE_CACHE or not glob.glob(os.path.join(FIXTURE_CACHE, "layers", "base-*")):
            raise AssertionError(f"no fixture cache with layers at '{FIXTURE_CACHE}' (the 'images' fixture builds it)")
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        print(f"scratch: {WORK}", flush=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)

    def test_s3_share_layers_between_machines(self):
        if not os.access(S3RVER, os.X_OK):
            self.fail(f"s3rver not found at {S3RVER}: run scripts/install-deps test")
        port = free_port()
        data = os.path.join(WORK, "s3rver")
        os.makedirs(data)
        log = open(os.path.join(WORK, "s3rver.log"), "w")
        server = subprocess.Popen([S3RVER, "-d", data, "-a", "127.0.0.1", "-p", str(port), "--silent",
                                   "--no-vhost-buckets", "--configure-bucket", "ci-layers"],
                                  stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        try:
            wait_port(port, server, "s3rver")
            env = base_env(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER", AWS_REGION="us-east-1",
                           AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{port}", HOME=WORK)
            url = "s3://ci-layers/team/build-image"
            self._share_between_machines(url, env, corrupt=lambda kind: self._corrupt_s3_archive(data, kind))

            # Refused (an access key the server does not know): a warning, the build goes on.
            cache_b = os.path.join(WORK, "cache-B")
            bad = dict(env, AWS_ACCESS_KEY_ID="NOT-A-KEY")
            img, err, _ = build("refused", cache_b, url, bad)
            self.assertEqual(err.count("remote cache"), 1, err)
            self.assertIn("HTTP 403", err)
            self.assertNotIn("S3RVER", err)  # the secret is never printed
            self.assertFalse(img["remote_cache"]["available"])
            self.assertEqual(img["layers_built"], 0)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()

        # Down: nothing listens on the endpoint any more. Warned once, built locally.
        img, err, seconds = build("down", os.path.join(WORK, "cache-B"), url, env)
        self.assertEqual(err.count("unusable"), 1, err)
        self.assertIn("continuing with the local cache only", err)
        self.assertFalse(img["remote_cache"]["available"])
        self.assertEqual(img["remote_cache"]["hits"], 0)
        self.assertEqual(img["layers_built"], 0)
        self.assertLess(seconds, 120)

    def test_http_share_layers_between_machines(self):
        root = os.path.join(WORK, "http", "objects")
        port_file = os.path.join(WORK, "http", "port")
        os.makedirs(root)
        server = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/fakes/http_cache.py"), root, port_file],
                                  preexec_fn=die_with_parent)
        try:
            deadline = time.time() + 30
            while not os.path.exists(port_file) and time.time() < deadline:
                time.sleep(0.05)
            with open(port_file) as f:
                port = int(f.read())
            wait_port(port, server, "http_cache.py")
            url = f"http://127.0.0.1:{port}/shared/cache"
            a, _, _ = build("http-A", FIXTURE_CACHE, url, base_env())
            self.assertEqual(a["remote_cache"]["uploads"], 2)
            # Archive first, index last: a reader never finds an index without its archive.
            with open(os.path.join(WORK, "http", "requests.log")) as f:
                puts = [line.split()[1] for line in f if line.startswith("PUT")]
            for kind in ("base", "bootloader"):
                archive = [i for i, p in enumerate(puts) if p.startswith(f"/shared/cache/layers/{kind}-") and p.endswith(".tar.zst")]
                index = [i for i, p in enumerate(puts) if p.startswith(f"/shared/cache/layers/{kind}-") and p.endswith(".json")]
                self.assertEqual(len(archive), 1, puts)
                self.assertEqual(len(index), 1, puts)
                self.assertLess(archive[0], index[0], puts)

            b, _, _ = build("http-B", fresh_cache("http-B"), url, base_env())
            self.assertEqual(b["layers_built"], 0)
            self.assertEqual(b["appliance_launches"], 0)
            self.assertEqual(b["remote_cache"]["hits"], 2)
            self.assertEqual(b["sha256"], a["sha256"])
            rc, out = cache_verify(os.path.join(WORK, "cache-http-B"))
            self.assertEqual(rc, 0, out)

            # Concurrent writers: E and F both hold the layers and publish them to an empty
            # prefix at the same moment. Both succeed, and G (empty cache) gets good hits.
            url2 = f"http://127.0.0.1:{port}/shared/concurrent"
            procs = {}
            for name in ("E", "F"):
                cache = fresh_cache(name)
                os.makedirs(os.path.join(cache, "layers"))
                # B's cache holds both layers and is on the scratch filesystem: hard links.
                source = os.path.join(WORK, "cache-http-B", "layers")
                for layer in glob.glob(os.path.join(source, "base-*")) + glob.glob(os.path.join(source, "bootloader-*")):
                    subprocess.run(["cp", "-al", layer, os.path.join(cache, "layers", "")], check=True)
                argv = [BIN, "--json", "--output", os.path.join(WORK, "out-" + name), "--cache-dir", cache,
                        "--cache-url", url2, TINY]
                procs[name] = subprocess.Popen(argv, env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                               text=True, cwd=SRC)
            uploads = 0
            for name, proc in procs.items():
                out, err = proc.communicate(timeout=1500)
                self.assertEqual(proc.returncode, 0, f"{name}:\n{out}\n{err}")
                img = json.loads(out)["images"][0]
                self.assertEqual(img["layers_built"], 0, img)
                uploads += img["remote_cache"]["uploads"]
            self.assertGreaterEqual(uploads, 2)  # each layer published at least once
            g, _, _ = build("http-G", fresh_cache("http-G"), url2, base_env())
            self.assertEqual(g["layers_built"], 0, g)
            self.assertEqual(g["remote_cache"]["hits"], 2, g)
            self.assertEqual(g["remote_cache"]["corrupt"], 0, g)
            self.assertEqual(g["sha256"], a["sha256"])
        finally:
            server.terminate()
            server.wait(timeout=30)

    # --- helpers ---

    def _share_between_machines(self, url, env, corrupt):
        # A: the fixture's cache has tiny's layers; the empty remote gets both.
        a, _, _ = build("A", FIXTURE_CACHE, url, env)
        self.assertEqual(a["layers_built"], 0)
        self.assertEqual(a["remote_cache"]["uploads"], 2, a)

        # B: empty cache, everything from the remote, nothing built, same bytes.
        cache_b = fresh_cache("B")
        b, _, _ = build("B", cache_b, url, env)
        self.assertEqual(b["layers_built"], 0, b)
        self.assertEqual(b["appliance_launches"], 0)
        self.assertEqual(b["remote_cache"]["hits"], 2, b)
        self.assertEqual(b["remote_cache"]["misses"], 0)
        self.assertEqual(b["remote_cache"]["uploads"], 0)
        self.assertTrue(note(b, "base-os").startswith("remote "), b["phases"])
        self.assertEqual(note(b, "bootloader"), "remote")
        self.assertEqual(qemu_img_check(b["image"]), 0)
        self.assertEqual(b["sha256"], a["sha256"], "same layers (local vs downloaded) must give the same image")
        rc, out = cache_verify(cache_b)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.count(" ok"), 2, out)

        # C: the bootloader archive on the remote is damaged: detected, not used, rebuilt
        # here (a loop mount as root, else one appliance launch) and re-published; the base
        # still comes from the remote.
        corrupt("bootloader")
        cache_c = fresh_cache("C")
        c, err, _ = build("C", cache_c, url, env)
        self.assertIn("does not match its index", err)
        self.assertEqual(c["remote_cache"]["corrupt"], 1, c)
        self.assertEqual(c["remote_cache"]["hits"], 1)
        self.assertEqual(c["remote_cache"]["uploads"], 1)
        self.assertEqual(c["layers_built"], 1)
        if os.geteuid() == 0 and os.path.exists("/dev/loop-control"):
            self.assertEqual(c["appliance_launches"], 0)
            self.assertEqual(note(c, "bootloader"), "built (loop mount)")
        else:
            self.assertEqual(c["appliance_launches"], 1)
            self.assertEqual(note(c, "bootloader"), "built (libguestfs)")
        self.assertEqual(qemu_img_check(c["image"]), 0)
        rc, out = cache_verify(cache_c)
        self.assertEqual(rc, 0, out)

        # D: the re-published bootloader is good (base from B's cache, hard links).
        cache_d = fresh_cache("D")
        os.makedirs(os.path.join(cache_d, "layers"))
        for layer in glob.glob(os.path.join(cache_b, "layers", "base-*")):
            subprocess.run(["cp", "-al", layer, os.path.join(cache_d, "layers", "")], check=True)
        d, err, _ = build("D", cache_d, url, env)
        self.assertEqual(d["remote_cache"]["hits"], 1, d)
        self.assertEqual(d["remote_cache"]["corrupt"], 0, err)
        self.assertEqual(d["layers_built"], 0)
        self.assertEqual(note(d, "bootloader"), "remote")

    def _corrupt_s3_archive(self, data, kind):
        # s3rver keeps each object in a file named <key>._S3rver_object.
        found = glob.glob(os.path.join(data, "ci-layers", "team", "build-image", "layers", f"{kind}-*", "*.tar.zst._S3rver_object"))
        self.assertEqual(len(found), 1, found)
        with open(found[0], "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(size // 2)
            chunk = f.read(64)
            f.seek(size // 2)
            f.write(bytes(b ^ 0xFF for b in chunk))


if __name__ == "__main__":
    unittest.main(verbosity=2)
