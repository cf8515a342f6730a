#!/usr/bin/python3
"""Integration tests of `build-image register` and `cartridge-json` (ctest label "cloud"):
against REAL Keystone + Glance from Debian's packages (tests/harness/cloud-services.sh, on
loopback) and against the strict fake EBS + EC2 endpoint (tests/fakes/fake_aws.py), with
the fault proxy (tests/fakes/fault_proxy.py) for damaged Glance uploads.

Environment: BI_BINARY (the build-image binary), BI_SOURCE_DIR, and either BI_TEST_IMAGE
(a built image) or BI_TEST_IMAGES (the ctest image fixture folder; tiny-generic-* is used).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from bound import die_with_parent  # noqa: E402

SRC = os.environ.get("BI_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("BI_BINARY", os.path.join(SRC, "build", "build-image"))
PY = "/usr/bin/python3"
# Everything here talks to 127.0.0.1 only: never through a proxy from the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def find_image():
    if os.environ.get("BI_TEST_IMAGE"):
        return os.environ["BI_TEST_IMAGE"]
    d = os.environ.get("BI_TEST_IMAGES", os.path.join(SRC, "build", "test-images"))
    # The newest one in the catalog: a folder reused across runs also holds older tiny images
    # (a BIOS-only one sorted first by name once, and BootMode was checked against it).
    try:
        with open(os.path.join(d, "catalog.json")) as f:
            entries = [e for e in json.load(f)["images"] if e["cartridge"] == "tiny" and e["mode"] == "generic"]
    except FileNotFoundError:
        entries = []
    if not entries:
        raise unittest.SkipTest(f"no tiny generic image in {d}/catalog.json (the 'images' fixture builds it)")
    # max() keeps the first of equal keys; the later entry wins a tie in `created`.
    newest = max(reversed(entries), key=lambda e: e.get("created", ""))
    return os.path.join(d, newest["file"])


def http_json(url, headers=None, method="GET", data=None):
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
        return json.loads(body) if body else {}


class Scratch:
    """A private output folder holding variants of the fixture image (hard link + manifest)."""

    def __init__(self, image):
        self.dir = tempfile.mkdtemp(prefix="bi-cloud-")
        self.image = image
        with open(os.path.splitext(image)[0] + ".json") as f:
            self.manifest = json.load(f)

    def variant(self, tag, stratos=None):
        """Same bytes, a different name and inputs key (so idempotency does not short-circuit)."""
        m = json.loads(json.dumps(self.manifest))
        m.pop("registrations", None)
        key = hashlib.sha256((m["inputs_key"] + tag).encode()).hexdigest()
        name = f"{m['cartridge']}-{m['mode']}-{tag}-{key[:8]}"
        m["inputs_key"], m["name"], m["file"] = key, name, name + "." + m["format"]
        plan = m.setdefault("plan", {})
        plan["ports"] = (stratos or {}).get("ports", plan.get("ports", []))
        plan["stratos"] = (stratos or {}).get("stratos", plan.get("stratos", {
            "display_name": "", "description": "", "version": "", "category": "framework", "provider": "",
            "host": "", "multi_tenant": False, "iaas": []}))
        dst = os.path.join(self.dir, m["file"])
        try:
            os.link(self.image, dst)
        except OSError:
            shutil.copyfile(self.image, dst)
        mp = os.path.join(self.dir, name + ".json")
        with open(mp, "w") as f:
            json.dump(m, f, indent=2)
        # A catalog entry, so registration updates are checked there too.
        cat_path = os.path.join(self.dir, "catalog.json")
        cat = {"images": []}
        if os.path.exists(cat_path):
            with open(cat_path) as f:
                cat = json.load(f)
        cat["images"].append({"name": name, "file": m["file"], "manifest": name + ".json"})
        with open(cat_path, "w") as f:
            json.dump(cat, f)
        return dst, m

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run(args, env, check=None):
    p = subprocess.run([BIN] + args, env=env, capture_output=True, text=True, timeout=900, cwd=SRC)
    if check is not None and p.returncode != check:
        raise AssertionError(f"build-image {' '.join(args)} exited {p.returncode}, expected {check}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


class Background:
    def __init__(self, argv, port_file, env=None):
        self.port_file = port_file
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=die_with_parent)
        for _ in range(200):
            if os.path.exists(port_file):
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[1]} exited with {self.proc.returncode}")
            time.sleep(0.05)
        with open(port_file) as f:
            self.url = f"http://127.0.0.1:{f.read().strip()}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- OpenStack
class GlanceTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = Scratch(find_image())
        cls.svc = tempfile.mkdtemp(prefix="bi-glance-")
        h = os.path.join(SRC, "tests/harness/cloud-services.sh")
        subprocess.run(["sh", h, "start", cls.svc], check=True, timeout=600)
        cls.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "AWS_"))}
        with open(os.path.join(cls.svc, "env")) as f:
            for line in f:
                k, _, v = line.replace("export ", "").strip().partition("=")
                cls.env[k] = v
        cls.glance = cls.env.pop("GLANCE_URL")
        cls.env["HOME"] = cls.scratch.dir

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["sh", os.path.join(SRC, "tests/harness/cloud-services.sh"), "stop", cls.svc], check=False)
        shutil.rmtree(cls.svc, ignore_errors=True)
        cls.scratch.cleanup()

    def token(self):
        body = json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.env["OS_PASSWORD"]}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}).encode()
        req = urllib.request.Request(self.env["OS_AUTH_URL"] + "/auth/tokens", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.headers["X-Subject-Token"]

    def images(self, **filters):
        q = "&".join(f"{k}={v}" for k, v in filters.items())
        return http_json(f"{self.glance}/v2/images?{q}", {"X-Auth-Token": self.token()})["images"]

    def test_register_verifies_hash_records_ids_and_is_idempotent(self):
        path, m = self.scratch.variant("os1")
        p = run(["register", path, "--to", "openstack", "--json"], self.env, check=0)
        out = json.loads(p.stdout)
        reg = out["images"][0]["registrations"][0]
        self.assertEqual(reg["region"], "RegionOne")
        self.assertFalse(reg["reused"])
        self.assertEqual(reg["bytes_sent"], os.path.getsize(path))
        self.assertIn(reg["image_id"], p.stderr)  # printed as soon as it exists
        imgs = self.images(build_image_inputs_key=m["inputs_key"])
        self.assertEqual(len(imgs), 1)
        g = imgs[0]
        self.assertEqual(g["id"], reg["image_id"])
        self.assertEqual(g["status"], "active")
        self.assertEqual(g["os_hash_algo"], "sha512")
        self.assertEqual(g["os_hash_value"], m["sha512"])
        self.assertEqual((g["disk_format"], g["container_format"]), ("qcow2", "bare"))
        self.assertEqual(g["min_disk"], (m["virtual_size"] + (1 << 30) - 1) >> 30)
        # No hw_disk_bus: the image boots from virtio-blk, virtio-scsi and NVMe alike.
        self.assertNotIn("hw_disk_bus", g)
        self.assertNotIn("hw_scsi_model", g)
        for k, v in {"os_distro": "debian", "os_version": "12", "hw_vif_model": "virtio",
                     "cartridge_type": m["cartridge"], "cartridge_mode": m["mode"],
                     "build_image_sha256": m["sha256"]}.items():
            self.assertEqual(g.get(k), v, k)
        self.assertNotIn("hw_firmware_type", g)  # hybrid: Nova's default (BIOS) boots it
        # Recorded in the manifest and the catalog.
        with open(os.path.splitext(path)[0] + ".json") as f:
            self.assertEqual(json.load(f)["registrations"]["openstack"]["RegionOne"]["image_id"], g["id"])
        with open(os.path.join(self.scratch.dir, "catalog.json")) as f:
            entry = [e for e in json.load(f)["images"] if e["name"] == m["name"]][0]
        self.assertEqual(entry["registrations"]["openstack"]["RegionOne"]["image_id"], g["id"])
        # Second time: same id, nothing uploaded, still one image.
        p2 = run(["register", path, "--to", "openstack", "--json"], self.env, check=0)
        reg2 = json.loads(p2.stdout)["images"][0]["registrations"][0]
        self.assertEqual(reg2["image_id"], g["id"])
        self.assertTrue(reg2["reused"])
        self.assertEqual(reg2["bytes_sent"], 0)
        self.assertEqual(len(self.images(build_image_inputs_key=m["inputs_key"])), 1)
        # No secret in anything we print.
        for text in (p.stdout, p.stderr, p2.stdout, p2.stderr):
            self.assertNotIn(self.env["OS_PASSWORD"], text)

    def _with_proxy(self, mode, tag):
        path, m = self.scratch.variant(tag)
        pf = os.path.join(self.scratch.dir, f"proxy-{tag}.port")
        proxy = Background([PY, os.path.join(SRC, "tests/fakes/fault_proxy.py"), "--upstream", self.glance,
                            "--port-file", pf, "--mode", mode, "--abort-after", str(16 << 20)], pf)
        try:
            env = dict(self.env, OS_IMAGE_URL=proxy.url)
            return run(["register", path, "--to", "openstack"], env), m
        finally:
            proxy.stop()

    def assert_nothing_left(self, m):
        self.assertEqual(self.images(build_image_inputs_key=m["inputs_key"]), [])
        for status in ("queued", "saving", "killed", "uploading", "importing"):
            self.assertEqual(self.images(status=status), [], status)

    def test_corrupted_upload_is_detected_and_deleted(self):
        p, m = self._with_proxy("corrupt", "corrupt")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("hash mismatch", p.stderr)
        self.assert_nothing_left(m)

    def test_upload_dying_halfway_leaves_nothing(self):
        p, m = self._with_proxy("abort", "abort")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("PUT http://127.0.0.1:", p.stderr)
        self.assert_nothing_left(m)

    def test_server_that_stops_answering_is_given_up_on(self):
        # Glance stops reading halfway through the upload: the upload's stall timeout (120 s
        # below 1 byte/s) ends it, the half-made image is deleted, the error names the PUT.
        started = time.time()
        p, m = self._with_proxy("stall", "stall")
        print(f"  stalled upload given up after {time.time() - started:.0f} s", flush=True)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("PUT http://127.0.0.1:", p.stderr)
        self.assert_nothing_left(m)

    def test_qcow2_with_backing_file_is_refused(self):
        d = tempfile.mkdtemp(dir=self.scratch.dir)
        base = os.path.join(d, "base.qcow2")
        top = os.path.join(d, "top.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "64M"], check=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top], check=True)
        m = json.loads(json.dumps(self.scratch.manifest))
        m.update({"name": "top", "file": "top.qcow2", "file_size": os.path.getsize(top), "virtual_size": 64 << 20})
        with open(os.path.join(d, "top.json"), "w") as f:
            json.dump(m, f)
        p = run(["register", top, "--to", "openstack"], self.env, check=2)
        self.assertIn("backing file", p.stderr)

    def test_bad_password_is_a_clear_error_without_the_secret(self):
        path, _ = self.scratch.variant("badpw")
        env = dict(self.env, OS_PASSWORD="wrong-password-123")
        p = run(["register", path, "--to", "openstack"], env, check=2)
        self.assertIn("Keystone refused the credentials", p.stderr)
        self.assertNotIn("wrong-password-123", p.stderr + p.stdout)


# --------------------------------------------------------------------------- EC2
class Ec2Tests(unittest.TestCase):
    KEY, SECRET, TOKEN = "AKIDBUILDIMAGETEST", "test-secret-key-0123", "session-token-xyz"

    @classmethod
    def setUpClass(cls):
        cls.scratch = Scratch(find_image())
        cls.data = tempfile.mkdtemp(prefix="bi-ebs-", dir=cls.scratch.dir)
        pf = os.path.join(cls.scratch.dir, "aws.port")
        fenv = dict(os.environ, FAKE_AWS_ACCESS_KEY_ID=cls.KEY, FAKE_AWS_SECRET_ACCESS_KEY=cls.SECRET,
                    FAKE_AWS_SESSION_TOKEN=cls.TOKEN)
        cls.fake = Background([PY, os.path.join(SRC, "tests/fakes/fake_aws.py"), "--port-file", pf,
                               "--data-dir", cls.data], pf, fenv)
        cls.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "AWS_"))}
        cls.env.update({"HOME": cls.scratch.dir, "AWS_ENDPOINT_URL": cls.fake.url, "AWS_REGION": "ap-southeast-1"})
        # Credentials from a profile in ~/.aws/credentials (the env path is unit-tested).
        os.makedirs(os.path.join(cls.scratch.dir, ".aws"))
        with open(os.path.join(cls.scratch.dir, ".aws/credentials"), "w") as f:
            f.write(f"[ci]\naws_access_key_id = {cls.KEY}\naws_secret_access_key = {cls.SECRET}\n"
                    f"aws_session_token = {cls.TOKEN}\n")
        cls.env["AWS_PROFILE"] = "ci"

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.scratch.cleanup()

    def state(self):
        return http_json(self.fake.url + "/_state")

    def control(self, **body):
        http_json(self.fake.url + "/_control", method="POST", data=json.dumps(body).encode())

    def tearDown(self):
        self.control(faults=[], start_lag=0)

    def raw_regions_equal(self, raw_a, raw_b, size):
        """Compares two sparse files over [0, size), reading only their data extents."""
        def extents(path):
            out = []
            fd = os.open(path, os.O_RDONLY)
            try:
                end = os.fstat(fd).st_size
                off = 0
                while off < end:
                    try:
                        d = os.lseek(fd, off, os.SEEK_DATA)
                    except OSError:
                        break
                    h = os.lseek(fd, d, os.SEEK_HOLE)
                    out.append((d, h))
                    off = h
            finally:
                os.close(fd)
            return out

        def read(f, off, n):
            f.seek(off)
            b = f.read(n)
            return b + bytes(n - len(b))

        ranges = sorted(extents(raw_a) + extents(raw_b))
        with open(raw_a, "rb") as fa, open(raw_b, "rb") as fb:
            for start, end in ranges:
                end = min(end, size)
                off = start
                while off < end:
                    n = min(8 << 20, end - off)
                    if read(fa, off, n) != read(fb, off, n):
                        return False
                    off += n
        return True

    def test_register_uploads_only_data_blocks_and_is_idempotent(self):
        path, m = self.scratch.variant("ec2a")
        before = self.state()
        p = run(["register", path, "--to", "ec2", "--json"], self.env, check=0)
        reg = json.loads(p.stdout)["images"][0]["registrations"][0]
        self.assertTrue(reg["image_id"].startswith("ami-"))
        self.assertTrue(reg["snapshot_id"].startswith("snap-"))
        self.assertIn(reg["snapshot_id"], p.stderr)
        st = self.state()
        self.assertEqual(st["errors"], [])  # every signature, checksum and parameter was right
        snap = st["snapshots"][reg["snapshot_id"]]
        self.assertEqual(snap["status"], "completed")
        self.assertEqual(snap["volume_size"], (m["virtual_size"] + (1 << 30) - 1) >> 30)
        self.assertEqual(reg["blocks_sent"], len(snap["blocks"]))
        self.assertEqual(st["block_bytes"] - before["block_bytes"], reg["bytes_sent"])
        # Bytes sent <= the image's allocated data rounded up to whole 512 KiB blocks.
        mp = json.loads(subprocess.run(["qemu-img", "map", "--output=json", "-f", m["format"], path],
                                       capture_output=True, text=True, check=True).stdout)
        blocks = set()
        for e in mp:
            if e["data"] and not e.get("zero"):
                blocks.update(range(e["start"] // 524288, (e["start"] + e["length"] - 1) // 524288 + 1))
        self.assertLessEqual(reg["bytes_sent"], len(blocks) * 524288)
        # The snapshot holds exactly the image's virtual disk.
        raw = os.path.join(self.scratch.dir, "expected.raw")
        subprocess.run(["qemu-img", "convert", "-O", "raw", "-f", m["format"], path, raw], check=True)
        self.assertTrue(self.raw_regions_equal(raw, os.path.join(self.data, reg["snapshot_id"] + ".raw"),
                                               m["virtual_size"]))
        os.unlink(raw)
        img = st["images"][reg["image_id"]]
        for k, v in {"Name": m["name"], "RootDeviceName": "/dev/xvda", "BlockDeviceMapping.1.DeviceName": "/dev/xvda",
                     "BlockDeviceMapping.1.Ebs.SnapshotId": reg["snapshot_id"], "VirtualizationType": "hvm",
                     "EnaSupport": "true", "ImdsSupport": "v2.0", "SriovNetSupport": "simple",
                     "BootMode": "uefi-preferred"}.items():
            self.assertEqual(img["params"].get(k), v, k)
        # The fixture's tiny is hybrid without Secure Boot: EC2 may choose UEFI, no NitroTPM asked.
        self.assertEqual(m["plan"]["layers"]["base"]["firmware"], "hybrid")
        self.assertNotIn("TpmSupport", img["params"])
        # Second time: found by name, nothing sent.
        p2 = run(["register", path, "--to", "ec2", "--json"], self.env, check=0)
        reg2 = json.loads(p2.stdout)["images"][0]["registrations"][0]
        self.assertEqual(reg2["image_id"], reg["image_id"])
        self.assertTrue(reg2["reused"])
        self.assertEqual(self.state()["block_puts"], st["block_puts"])
        for text in (p.stdout, p.stderr, p2.stdout, p2.stderr):
            self.assertNotIn(self.SECRET, text)
            self.assertNotIn(self.TOKEN, text)

    def test_secure_boot_image_is_registered_uefi_and_says_ec2_leaves_secure_boot_off(self):
        # The same bytes with a manifest of a base.firmware uefi, base.secure_boot image.
        path, m = self.scratch.variant("ec2sb")
        m["plan"]["layers"]["base"].update({"firmware": "uefi", "secure_boot": True})
        with open(os.path.splitext(path)[0] + ".json", "w") as f:
            json.dump(m, f, indent=2)
        p = run(["register", path, "--to", "ec2", "--json"], self.env, check=0)
        reg = json.loads(p.stdout)["images"][0]["registrations"][0]
        st = self.state()
        self.assertEqual(st["errors"], [])
        params = st["images"][reg["image_id"]]["params"]
        self.assertEqual(params.get("BootMode"), "uefi")  # never uefi-preferred: no BIOS start
        self.assertEqual(params.get("TpmSupport"), "v2.0")
        # No variable store is sent (README "What registration says about firmware"), and the
        # operator is told what that means on EC2.
        self.assertNotIn("UefiData", params)
        self.assertIn(f"build-image: warning: ec2: {m['name']}: registered without UefiData (no Secure Boot keys): "
                      "EC2 starts its instances with Secure Boot off; the image boots either way\n", p.stderr)

    def test_register_through_the_ebs_start_lag(self):
        # Right after StartSnapshot, EBS can deny the snapshot exists for a while (coldsnap
        # users saw up to ~2 minutes): the fake hides each new snapshot for 5 s. Registration
        # must wait it out (bounded by BUILD_IMAGE_EBS_LAG_SECONDS) and succeed.
        path, m = self.scratch.variant("ec2lag")
        self.control(start_lag=5)
        hits = self.state()["lag_hits"]
        try:
            p = run(["register", path, "--to", "ec2", "--json"], dict(self.env, BUILD_IMAGE_EBS_LAG_SECONDS="60"))
            st = self.state()
        finally:
            # A failed run can leave a snapshot pending (its DeleteSnapshot also met the
            # lag): not the other tests' business.
            self.control(reset=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        reg = json.loads(p.stdout)["images"][0]["registrations"][0]
        self.assertGreater(st["lag_hits"], hits)  # the lag was really met, not slept past
        self.assertEqual([sid for sid, s in st["snapshots"].items() if s["status"] == "pending"], [])
        self.assertEqual(st["errors"], [])
        self.assertEqual(st["snapshots"][reg["snapshot_id"]]["status"], "completed")
        self.assertEqual(st["images"][reg["image_id"]]["name"], m["name"])
        self.assertEqual(reg["blocks_sent"], len(st["snapshots"][reg["snapshot_id"]]["blocks"]))

    def test_server_error_halfway_leaves_no_pending_snapshot(self):
        path, m = self.scratch.variant("ec2fail")
        self.control(faults=[{"method": "PUT", "path": "/blocks/", "after": 100, "times": 100000, "status": 500}])
        p = run(["register", path, "--to", "ec2"], dict(self.env, BUILD_IMAGE_EBS_WORKERS="4"), check=1)
        self.assertIn("snapshot snap-", p.stderr)  # the ID was printed when it was created
        self.assertIn("HTTP 500", p.stderr)
        st = self.state()
        self.assertEqual([s for s in st["snapshots"].values() if s["status"] == "pending"], [])
        self.assertEqual([i for i in st["images"].values() if i["name"] == m["name"]], [])
        self.assertEqual(st["errors"], [])

    def test_throttling_is_retried(self):
        path, m = self.scratch.variant("ec2throttle")
        fired = self.state()["faults_fired"]
        self.control(faults=[
            {"method": "PUT", "path": "/blocks/", "after": 10, "times": 3, "status": 503, "code": "SlowDown"},
            {"method": "PUT", "path": "/blocks/", "after": 20, "times": 2, "status": 429,
             "code": "RequestThrottledException"},
            {"action": "RegisterImage", "times": 1, "status": 503, "code": "RequestLimitExceeded"}])
        p = run(["register", path, "--to", "ec2", "--json"], self.env, check=0)
        reg = json.loads(p.stdout)["images"][0]["registrations"][0]
        st = self.state()
        self.assertEqual(st["faults_fired"] - fired, 6)
        self.assertEqual(st["snapshots"][reg["snapshot_id"]]["status"], "completed")
        self.assertEqual(st["errors"], [])

    def test_register_failure_keeps_the_completed_snapshot_and_resumes(self):
        path, m = self.scratch.variant("ec2resume")
        self.control(faults=[{"action": "RegisterImage", "times": 1000, "status": 400,
                              "code": "InvalidParameterValue"}])
        p = run(["register", path, "--to", "ec2"], self.env, check=1)
        self.assertIn("is complete and kept", p.stderr)
        st = self.state()
        kept = [sid for sid, s in st["snapshots"].items() if s["tags"].get("build-image:inputs-key") == m["inputs_key"]]
        self.assertEqual(len(kept), 1)
        self.control(faults=[])
        p2 = run(["register", path, "--to", "ec2", "--json"], self.env, check=0)
        reg = json.loads(p2.stdout)["images"][0]["registrations"][0]
        self.assertEqual(reg["snapshot_id"], kept[0])
        self.assertEqual(reg["bytes_sent"], 0)
        self.assertEqual(self.state()["block_puts"], st["block_puts"])

    def test_wrong_secret_is_rejected_by_the_signature_check(self):
        path, _ = self.scratch.variant("ec2badkey")
        env = dict(self.env, AWS_ACCESS_KEY_ID=self.KEY, AWS_SECRET_ACCESS_KEY="not-the-secret",
                   AWS_SESSION_TOKEN=self.TOKEN)
        env.pop("AWS_PROFILE")
        p = run(["register", path, "--to", "ec2"], env, check=1)
        self.assertIn("SignatureDoesNotMatch", p.stderr)
        self.assertNotIn("not-the-secret", p.stderr + p.stdout)
        self.control(reset=True)


# --------------------------------------------------------------------------- both + cartridge JSON
class CartridgeJsonTests(unittest.TestCase):
    def test_cartridge_json_after_registering_with_both_clouds(self):
        scratch = Scratch(find_image())
        stratos = {"ports": [{"name": "http-80", "protocol": "http", "port": 80, "proxy_port": 8280}],
                   "stratos": {"display_name": "Tiny", "description": "tiny test cartridge", "version": "1.0",
                               "category": "framework", "provider": "apache", "host": "tiny.example.org",
                               "multi_tenant": False,
                               "iaas": [{"type": "openstack", "region": "RegionOne",
                                         "properties": {"instanceType": "RegionOne/2"}},
                                        {"type": "ec2", "region": "ap-southeast-1",
                                         "properties": {"instanceType": "ap-southeast-1/t3.small"}}]}}
        path, m = scratch.variant("cj", stratos)
        svc = tempfile.mkdtemp(prefix="bi-glance-")
        h = os.path.join(SRC, "tests/harness/cloud-services.sh")
        pf = os.path.join(scratch.dir, "aws.port")
        fake = None
        try:
            # Not registered yet: a clear error.
            p0 = run(["cartridge-json", path], dict(os.environ), check=2)
            self.assertIn("not registered", p0.stderr)
            subprocess.run(["sh", h, "start", svc], check=True, timeout=600)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "AWS_"))}
            with open(os.path.join(svc, "env")) as f:
                for line in f:
                    k, _, v = line.replace("export ", "").strip().partition("=")
                    env[k] = v
            fake = Background([PY, os.path.join(SRC, "tests/fakes/fake_aws.py"), "--port-file", pf], pf,
                              dict(os.environ, FAKE_AWS_ACCESS_KEY_ID="AKIDX", FAKE_AWS_SECRET_ACCESS_KEY="sx"))
            env.update({"HOME": scratch.dir, "AWS_ENDPOINT_URL": fake.url, "AWS_ACCESS_KEY_ID": "AKIDX",
                        "AWS_SECRET_ACCESS_KEY": "sx"})
            # No --to: every iaas target of the cartridge, each in its own region.
            p = run(["register", path, "--json"], env, check=0)
            regs = {r["cloud"]: r for r in json.loads(p.stdout)["images"][0]["registrations"]}
            self.assertEqual(regs["openstack"]["region"], "RegionOne")
            self.assertEqual(regs["ec2"]["region"], "ap-southeast-1")
            out = run(["cartridge-json", path], env, check=0)
            expected = {
                "type": m["cartridge"], "provider": "apache", "category": "framework", "host": "tiny.example.org",
                "displayName": "Tiny", "description": "tiny test cartridge", "version": "1.0", "multiTenant": False,
                "portMapping": [{"name": "http-80", "protocol": "http", "port": 80, "proxyPort": 8280}],
                "iaasProvider": [
                    {"type": "openstack", "imageId": "RegionOne/" + regs["openstack"]["image_id"],
                     "property": [{"name": "instanceType", "value": "RegionOne/2"}]},
                    {"type": "ec2", "imageId": "ap-southeast-1/" + regs["ec2"]["image_id"],
                     "property": [{"name": "instanceType", "value": "ap-southeast-1/t3.small"}]}]}
            self.assertEqual(json.loads(out.stdout), expected)
            # Also written beside the manifest by register.
            with open(os.path.splitext(path)[0] + ".cartridge.json") as f:
                self.assertEqual(json.load(f), expected)
        finally:
            if fake:
                fake.stop()
            subprocess.run(["sh", h, "stop", svc], check=False)
            shutil.rmtree(svc, ignore_errors=True)
            scratch.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
