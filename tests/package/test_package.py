#!/usr/bin/python3
"""The build-image .deb (ctest label "package"): made by the `deb` target, reproducible, its
control fields derived from what the builder runs, and installed with apt-get into a clean
Debian 12 root (mmdebstrap, the host's apt sources) where the INSTALLED tool runs with no
source or build tree: --version, validate and plan of the installed templates.

Then, when the images fixture's cache is there (BUILD_IMAGE_CACHE), the installed tool builds
the tiny cartridge in that root from the fixture's layers: assembly, conversion and the
catalog run with the installed init scripts and the packaged tools, and the image has the
same bytes as the fixture's tiny-generic image built from the checkout (BI_TEST_IMAGES).

Environment: BI_BINARY_DIR (the CMake build folder), BI_SOURCE_DIR, BI_CMAKE (cmake),
BUILD_IMAGE_CACHE and BI_TEST_IMAGES (optional: the fixture's). Runs as root
(mmdebstrap --mode=root, chroot).
"""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ["BI_SOURCE_DIR"]
BUILD = os.environ["BI_BINARY_DIR"]
CMAKE = os.environ.get("BI_CMAKE", "cmake")
HERE = os.path.dirname(os.path.abspath(__file__))

# Programs the builder names that run INSIDE the image being built (in its chroot), not on
# the host: the image's own packages provide them.
IN_IMAGE = {"apt-get", "systemctl", "puppet", "mkinitramfs", "linux-update-symlinks"}
# String literals that open a brace list like an argv but are JSON keys or values, step,
# command or provider names (the convert step, the init command, the openstack provider,
# the plan's "time" section),
# and happen to name a program of this host.
NOT_PROGRAMS = {"file", "id", "type", "test", "hostname", "convert", "init", "openstack", "time"}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_deb():
    subprocess.run([CMAKE, "--build", BUILD, "--target", "deb"], check=True, stdout=subprocess.DEVNULL)
    debs = glob.glob(os.path.join(BUILD, "packages", "build-image_*_amd64.deb"))
    assert len(debs) == 1, debs
    return debs[0]


def control_field(deb, field):
    return subprocess.run(["dpkg-deb", "-f", deb, field], check=True, capture_output=True, text=True).stdout.strip()


def alternatives(field_value):
    """'a (>= 1), b | c' -> [{'a'}, {'b', 'c'}]"""
    out = []
    for clause in filter(None, (c.strip() for c in field_value.split(","))):
        out.append({re.sub(r"\s*\(.*\)|:any", "", alt).strip() for alt in clause.split("|")})
    return out


def host_programs():
    """Every program the builder's sources start on the host: the first string of a brace
    list (an argv vector for the runner), where that names an executable here."""
    found = set()
    for path in glob.glob(os.path.join(SRC, "builder", "**", "*.cpp"), recursive=True):
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r'\{\s*"([a-z][a-z0-9._+-]*)"\s*,', text):
            found.add(m.group(1))
        for m in re.finditer(r'program_available\("(?:/usr/sbin/)?([a-z][a-z0-9._+-]*)"', text):
            found.add(m.group(1))
    return {p for p in found - IN_IMAGE - NOT_PROGRAMS if shutil.which(p)}


def owning_package(program):
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        r = subprocess.run(["dpkg", "-S", f"{d}/{program}"], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def essential(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Essential}", package], capture_output=True, text=True)
    return r.stdout.strip() == "yes"


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.deb = make_deb()

    def test_reproducible(self):
        first = sha256(self.deb)
        os.remove(self.deb)
        shutil.rmtree(os.path.join(BUILD, "packaging", "deb-stage"), ignore_errors=True)
        again = make_deb()
        self.assertEqual(sha256(again), first, "the same tree packaged twice gave different bytes")

    def test_contents(self):
        listing = subprocess.run(["dpkg-deb", "-c", self.deb], check=True, capture_output=True, text=True).stdout
        paths = {line.split()[-1] for line in listing.splitlines()}
        for p in ("./usr/bin/build-image", "./usr/share/build-image/templates/php.yaml",
                  "./usr/share/build-image/puppet/modules/php/manifests/init.pp",
                  "./usr/share/build-image/init-scripts/sbin/cartridge-init"):
            self.assertIn(p, paths)
        self.assertTrue(any(re.match(r"\./usr/share/build-image/cartridge-agent_.*_amd64\.deb$", p) for p in paths))
        # Nothing of the agent's own package, nothing from the build machine's paths.
        self.assertFalse([p for p in paths if p.startswith(("./etc/", "./usr/sbin/", "./work/", "./lib/"))])

    def test_depends_cover_what_the_builder_runs(self):
        depends = alternatives(control_field(self.deb, "Depends"))
        recommends = alternatives(control_field(self.deb, "Recommends"))
        named = set().union(*depends, *recommends)
        # shlibdeps: the libraries build-image links.
        for lib in ("libguestfs0", "libvirt0", "libcurl4", "libc6"):
            self.assertIn(lib, set().union(*depends), f"Depends lacks {lib} (shlibdeps)")
        programs = host_programs()
        self.assertTrue({"mmdebstrap", "qemu-img", "mke2fs", "xorriso"} <= programs, programs)
        missing = []
        for prog in sorted(programs):
            pkg = owning_package(prog)
            self.assertIsNotNone(pkg, f"{prog}: no package owns it on this host")
            if not essential(pkg) and pkg not in named:
                missing.append(f"{prog} ({pkg})")
        self.assertEqual(missing, [], "programs the builder runs whose package is neither Essential nor "
                         "in Depends/Recommends")
        # Boot-test's and registration's tools are Recommends, not Depends.
        for pkg in ("libvirt-daemon-system", "mosquitto", "git"):
            self.assertIn(pkg, set().union(*recommends))
            self.assertNotIn(pkg, set().union(*depends))

    def test_installs_and_runs_in_a_clean_debian_12_root(self):
        work = tempfile.mkdtemp(prefix="bi-package-", dir=os.path.join(BUILD))
        root = os.path.join(work, "root")
        try:
            env = dict(os.environ, BI_PACKAGE_DEB=self.deb)
            cache = os.environ.get("BUILD_IMAGE_CACHE", "")
            build_tiny = bool(cache) and os.path.isdir(os.path.join(cache, "layers"))
            if build_tiny:
                env.update(BI_PACKAGE_CACHE=cache, BI_PACKAGE_CARTRIDGE=os.path.join(SRC, "tests", "data", "tiny.yaml"))
            else:
                print("note: no fixture cache (BUILD_IMAGE_CACHE): the tiny build in the root is not run")
            r = subprocess.run(
                ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory", "--quiet",
                 "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",
                 "--customize-hook=" + os.path.join(HERE, "in-root.sh"),
                 "bookworm", root, "/etc/apt/sources.list.d/debian.sources"],
                env=env, capture_output=True, text=True, timeout=900)
            self.assertEqual(r.returncode, 0, r.stderr[-4000:])
            res = os.path.join(root, "results")

            def result(name):
                with open(os.path.join(res, name + ".out")) as o, open(os.path.join(res, name + ".err")) as e, \
                        open(os.path.join(res, name + ".rc")) as c:
                    return int(c.read()), o.read(), e.read()

            rc, out, err = result("which")
            self.assertEqual(rc, 0, err)
            self.assertTrue(out.startswith("/usr/bin/build-image\n"), out)
            self.assertFalse(os.path.exists(os.path.join(root, SRC.lstrip("/"))), "a source tree in the root")

            rc, out, err = result("version")
            self.assertEqual((rc, err), (0, ""))
            self.assertRegex(out, r"^build-image \S+\n$")

            rc, out, err = result("validate")
            self.assertEqual((rc, err), (0, ""))
            self.assertEqual(out, "/usr/share/build-image/templates/php.yaml: ok (php, full)\n"
                                  "/usr/share/build-image/templates/mysql.yaml: ok (mysql, full)\n")

            rc, out, err = result("plan")
            self.assertEqual(rc, 0, err)
            plan = json.loads(out)["plans"][0]
            self.assertEqual(plan["cartridge"], "php")
            self.assertEqual(len(plan["layers"]["system"]["key"]), 64)

            if build_tiny:
                rc, out, err = result("build")
                self.assertEqual(rc, 0, err[-4000:])
                built = json.loads(out)["images"][0]
                self.assertTrue(built["ok"])
                image = os.path.join(root, built["image"].lstrip("/"))
                self.assertTrue(built["image"].startswith("/root/images/tiny-generic-"), built["image"])
                info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", image], check=True,
                                                 capture_output=True, text=True).stdout)
                self.assertEqual(info["format"], "qcow2")
                self.assertEqual(sha256(image), built["sha256"])
                with open(os.path.join(res, "seeded")) as f:
                    print("layers from the fixture:", f.read().split())
                # The checkout's tool plans the same image (same inputs, so the same name)...
                tree_plan = json.loads(subprocess.run(
                    [os.path.join(BUILD, "build-image"), "plan", "--json", "tests/data/tiny.yaml"], cwd=SRC,
                    check=True, capture_output=True, text=True).stdout)["plans"][0]
                self.assertEqual(os.path.basename(image), tree_plan["image_name"] + ".qcow2",
                                 "the installed data differs from the checkout's")
                # ...and the fixture built it from the checkout: the same bytes.
                if os.environ.get("BI_TEST_IMAGES"):
                    fixture = os.path.join(os.environ["BI_TEST_IMAGES"], os.path.basename(image))
                    self.assertTrue(os.path.isfile(fixture), f"{fixture}: the fixture's image is missing")
                    self.assertEqual(sha256(image), sha256(fixture),
                                     "the installed tool built other bytes than the checkout's build")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
