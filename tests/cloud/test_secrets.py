#!/usr/bin/python3
"""Secret scan (ctest "secret_scan", label "cloud"): a build and registrations run with known
test credentials in their environment, then every place the tool writes is searched for them:
build-image's stdout/stderr (normal, --json and -v), the per-build log, manifests, the
catalog, the cartridge JSON, everything else in the output folder, and the image's whole
filesystem (read with e2fsprogs on the host, no appliance). Expected: zero hits. The scanner
is proved able to fail: planted markers in the output folder and in the image (a `files`
entry) must be found. Also: no option takes a secret on the command line (shown in `ps`).

Services: real Keystone + Glance (tests/harness/cloud-services.sh) and the strict EBS/EC2
fake (tests/fakes/fake_aws.py), on 127.0.0.1 only. The build uses the fixture's layer cache
(BUILD_IMAGE_CACHE) and its own output folder, so it only assembles (no layer is built).
Environment: BI_BINARY, BI_SOURCE_DIR, BUILD_IMAGE_CACHE.
"""
import glob
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_register import BIN, PY, SRC, Background, run  # noqa: E402

# Distinctive markers: unique per run, so a hit can only come from this run's credentials.
RUN = secrets.token_hex(6)
AWS_KEY_ID = "AKIDSCAN" + RUN.upper()
AWS_SECRET = f"bi-scan-aws-secret-{RUN}"
AWS_TOKEN = f"bi-scan-aws-session-token-{RUN}"
POSITIVE = f"bi-scan-positive-control-{RUN}"


def scan_bytes(data, markers):
    """The markers found in a byte string (each also searched for percent-encoded and JSON-escaped)."""
    hits = set()
    for m in markers:
        forms = {m, m.replace("/", "%2F").replace("+", "%2B"), json.dumps(m)[1:-1]}
        if any(f.encode() in data for f in forms):
            hits.add(m)
    return hits


def scan_tree(root, markers, skip=()):
    """{path: markers} for every regular file under root (names are scanned too)."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if path in skip or not os.path.isfile(path) or os.path.islink(path):
                continue
            with open(path, "rb") as f:
                hits = scan_bytes(f.read(), markers) | scan_bytes(path.encode(), markers)
            if hits:
                found[path] = hits
    return found


def scan_image(image, markers, work):
    """(files scanned, {path in the image: markers}, world-writable paths) over every
    filesystem of the image.

    No appliance: the image is converted to raw, each partition (from its MBR, read by
    sfdisk) is copied out and its whole tree extracted with debugfs `rdump` (e2fsprogs reads
    the ext4 as data), then every file and name is scanned on the host. A guestfish
    tar-out of the same tree took more than 9 minutes under TCG."""
    raw = os.path.join(work, "scan.raw")
    subprocess.run(["qemu-img", "convert", "-f", image_format(image), "-O", "raw", image, raw], check=True, timeout=600)
    table = json.loads(subprocess.run(["sfdisk", "-J", raw], check=True, capture_output=True, text=True).stdout)
    sector = table["partitiontable"].get("sectorsize", 512)
    files, found, world_writable = 0, {}, []
    for n, part in enumerate(table["partitiontable"]["partitions"], 1):
        fs_file = os.path.join(work, f"part{n}.img")
        with open(raw, "rb") as src, open(fs_file, "wb") as dst:
            src.seek(part["start"] * sector)
            left = part["size"] * sector
            while left > 0:
                chunk = src.read(min(left, 8 << 20))
                if not chunk:
                    break
                if chunk.count(0) == len(chunk):
                    dst.seek(len(chunk), os.SEEK_CUR)  # keep it sparse
                else:
                    dst.write(chunk)
                left -= len(chunk)
            dst.truncate()
        tree = os.path.join(work, f"part{n}")
        os.makedirs(tree)
        subprocess.run(["debugfs", "-R", f"rdump / {tree}", fs_file], check=True, capture_output=True, timeout=600)
        for dirpath, dirs, names in os.walk(tree):
            files += len(names)
            # Image security default: nothing world-writable but sticky directories (/tmp).
            # rdump drops the sticky bit, so candidates are checked with debugfs' own stat.
            for name in dirs + names:
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISLNK(st.st_mode) or not st.st_mode & stat.S_IWOTH:
                    continue
                inner = os.path.join(dirpath, name)[len(tree):]
                info = subprocess.run(["debugfs", "-R", f"stat {inner}", fs_file], capture_output=True, text=True,
                                      check=True).stdout
                mode = re.search(r"Mode:\s+0?([0-7]+)", info)
                if not mode or not int(mode.group(1), 8) & stat.S_ISVTX:
                    world_writable.append(("/boot" if n == 1 else "") + inner)
        for path, hits in scan_tree(tree, markers).items():
            found.setdefault(("/boot" if n == 1 else "") + path[len(tree):], set()).update(hits)
        shutil.rmtree(tree)
        os.unlink(fs_file)
    os.unlink(raw)
    return files, found, world_writable


def image_format(image):
    return {".qcow2": "qcow2", ".raw": "raw", ".vmdk": "vmdk"}[os.path.splitext(image)[1]]


class SecretScan(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="bi-secrets-")
        cls.svc = os.path.join(cls.work, "services")
        os.makedirs(cls.svc)
        harness = os.path.join(SRC, "tests/harness/cloud-services.sh")
        subprocess.run(["sh", harness, "start", cls.svc], check=True, timeout=600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "AWS_"))}
        with open(os.path.join(cls.svc, "env")) as f:
            for line in f:
                k, _, v = line.replace("export ", "").strip().partition("=")
                env[k] = v
        env.pop("GLANCE_URL", None)
        pf = os.path.join(cls.work, "aws.port")
        cls.fake = Background([PY, os.path.join(SRC, "tests/fakes/fake_aws.py"), "--port-file", pf,
                               "--data-dir", os.path.join(cls.work, "ebs")],
                              pf, dict(os.environ, FAKE_AWS_ACCESS_KEY_ID=AWS_KEY_ID,
                                       FAKE_AWS_SECRET_ACCESS_KEY=AWS_SECRET, FAKE_AWS_SESSION_TOKEN=AWS_TOKEN))
        os.makedirs(os.path.join(cls.work, "ebs"), exist_ok=True)
        home = os.path.join(cls.work, "home")
        os.makedirs(home)
        env.update({"HOME": home, "AWS_ENDPOINT_URL": cls.fake.url, "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
                    "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "AWS_SESSION_TOKEN": AWS_TOKEN})
        cls.env = env
        # Keystone's admin password (made by the harness) is the OpenStack secret.
        cls.markers = [env["OS_PASSWORD"], AWS_SECRET, AWS_TOKEN]
        # A cartridge with both clouds and a file carrying the positive control marker.
        cls.cart = os.path.join(cls.work, "cartridge")
        os.makedirs(os.path.join(cls.cart, "files"))
        with open(os.path.join(cls.cart, "files", "motd"), "w") as f:
            f.write(POSITIVE + "\n")
        with open(os.path.join(cls.cart, "tiny.yaml"), "w") as f:
            f.write("type: tiny\nmode: generic\nfiles:\n  - {source: files/motd, dest: /etc/motd}\n"
                    "iaas:\n  - {type: openstack, region: RegionOne}\n  - {type: ec2, region: us-east-1}\n")
        cls.out = os.path.join(cls.work, "images")
        cls.outputs = {}

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        subprocess.run(["sh", os.path.join(SRC, "tests/harness/cloud-services.sh"), "stop", cls.svc], check=False)
        shutil.rmtree(cls.work, ignore_errors=True)

    def record(self, name, p):
        self.outputs[name] = (p.stdout + "\n" + p.stderr).encode()

    def test_1_build_and_register_leak_nothing(self):
        p = run(["--output", self.out, "--json", "--register", os.path.join(self.cart, "tiny.yaml")], self.env, check=0)
        self.record("build --json --register", p)
        result = json.loads(p.stdout)
        self.assertTrue(result["ok"], p.stdout)
        image = result["images"][0]["image"]
        regs = result["images"][0]["registrations"]
        self.assertEqual(sorted(r["cloud"] for r in regs), ["ec2", "openstack"])
        name = result["images"][0]["name"]
        # Again, verbose (debug logs on stderr) and human-readable: idempotent, reuses both.
        self.record("-v register", run(["register", name, "-v", "--output", self.out], self.env, check=0))
        self.record("cartridge-json", run(["cartridge-json", name, "--output", self.out], self.env, check=0))
        # Failures print their request: a wrong password and a wrong secret key.
        bad = dict(self.env, OS_PASSWORD=self.env["OS_PASSWORD"] + "-wrong")
        self.record("register, wrong password",
                    run(["register", name, "-v", "--to", "openstack", "--output", self.out], bad, check=2))
        bad = dict(self.env, AWS_SECRET_ACCESS_KEY=AWS_SECRET + "-wrong")
        p = run(["register", name, "-v", "--to", "ec2", "--output", self.out], bad)
        self.assertNotEqual(p.returncode, 0)
        self.record("register, wrong secret key", p)
        self.__class__.image = image

        # The scanner must be able to fail: a planted marker in the output folder is found.
        planted = os.path.join(self.out, "planted.txt")
        with open(planted, "w") as f:
            f.write(f"x {AWS_SECRET} y\n")
        self.assertEqual(scan_tree(self.out, self.markers), {planted: {AWS_SECRET}})
        os.unlink(planted)

        hits = {k: scan_bytes(v, self.markers) for k, v in self.outputs.items()}
        self.assertEqual({k: v for k, v in hits.items() if v}, {}, "secrets in build-image's output")
        scanned = [p for p in glob.glob(os.path.join(self.out, "**"), recursive=True) if os.path.isfile(p)]
        # What is scanned: the per-build log, the manifest, the catalog, the cartridge JSON.
        for pattern in (r"\.log$", r"^tiny-generic-[0-9a-f]+\.json$", r"^catalog\.json$", r"\.cartridge\.json$"):
            self.assertTrue(any(re.search(pattern, os.path.basename(p)) for p in scanned), (pattern, scanned))
        self.assertEqual(scan_tree(self.out, self.markers), {}, "secrets in the output folder")
        print(f"secret scan: {len(self.outputs)} command outputs, {len(scanned)} files in the output folder: no hits",
              file=sys.stderr)

        # The image's filesystem: the positive control is found (so content is really read),
        # the credentials of the build's environment are not.
        files, found, world_writable = scan_image(image, self.markers + [POSITIVE], self.work)
        self.assertEqual(world_writable, [], "world-writable files or directories in the image")
        self.assertEqual(found, {"/etc/motd": {POSITIVE}})
        self.assertGreater(files, 1000)
        print(f"secret scan: {files} files in the image: no hits (positive control found in /etc/motd)",
              file=sys.stderr)

    def test_2_no_option_takes_a_secret(self):
        p = run(["help"], self.env, check=0)
        options = re.findall(r"^  (--[a-z-]+)", p.stdout, re.M)
        self.assertIn("--output", options)
        self.assertIn("--ssh-key", options)
        for o in options:
            if o == "--ssh-key":
                continue  # boot-test's FILE.pub: a path to a public key, not a secret
            self.assertNotRegex(o, r"pass|secret|token|credential|key", "an option that takes a secret on argv")
        for o in ("--password", "--os-password", "--secret-key", "--aws-secret-access-key", "--token"):
            p = run(["register", "x", o, "v"], self.env, check=2)
            self.assertIn(f"unknown option '{o}'", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
