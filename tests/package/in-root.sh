#!/bin/sh
# mmdebstrap customize hook of tests/package/test_package.py, run on the host with the new
# Debian 12 root as $1: installs build-image's .deb there as a user would (apt-get install
# ./build-image_*.deb, dependencies from the mirror; the host's downloaded packages are
# lent as apt's cache to spare the download) and runs the INSTALLED tool with no source tree
# and no build tree in that root. Every command's stdout, stderr and exit code is kept in
# /results for the test to check exactly.
# With BI_PACKAGE_CACHE (the images fixture's layer cache) and BI_PACKAGE_CARTRIDGE (a
# cartridge file, the test's tiny one), it also builds that cartridge with the installed
# tool, from the fixture's layers (hard links; a layer not found there is built in the root).
set -eu
root=$1
deb=$BI_PACKAGE_DEB
mkdir -p "$root/var/cache/apt/archives" "$root/results"
# Hard links (same file system) or copies; apt checks every file's hash before using it.
for f in /var/cache/apt/archives/*.deb; do
  [ -e "$f" ] || continue
  ln "$f" "$root/var/cache/apt/archives/" 2>/dev/null || cp "$f" "$root/var/cache/apt/archives/"
done
cp "$deb" "$root/tmp/"
# No daemons started by postinst scripts inside the test root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# Recommends (boot-test, registration) are left out to keep the test within its budget;
# Depends must be enough for validate, plan and build.
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "/tmp/$(basename "$deb")" >"$root/results/apt.log" 2>&1 || {
  tail -40 "$root/results/apt.log" >&2
  exit 1
}
rm -f "$root"/var/cache/apt/archives/*.deb "$root/tmp/$(basename "$deb")"

# The run's one view of the mirror (scripts/run-tests pins the InRelease digests), so the
# keys here are the fixture's.
index_env=""
if [ -n "${BUILD_IMAGE_MIRROR_INDEX_DIR:-}" ] && [ -d "$BUILD_IMAGE_MIRROR_INDEX_DIR" ]; then
  cp -r "$BUILD_IMAGE_MIRROR_INDEX_DIR" "$root/root/mirror-index"
  index_env="BUILD_IMAGE_MIRROR_INDEX_DIR=/root/mirror-index"
fi
run() { # NAME COMMAND...: run in the root from /root, no checkout anywhere
  name=$1
  shift
  rc=0
  # shellcheck disable=SC2086
  chroot "$root" env -u BUILD_IMAGE_SOURCE_DIR -u BUILD_IMAGE_AGENT_DEB -u BUILD_IMAGE_CACHE HOME=/root \
    BUILD_IMAGE_APT_SOURCES="$sources" $index_env sh -c 'cd /root && exec "$@"' sh "$@" \
    >"$root/results/$name.out" 2>"$root/results/$name.err" || rc=$?
  echo "$rc" >"$root/results/$name.rc"
}
# The deb822 file mmdebstrap wrote from the host's (0000<name>.sources): plan reads it.
sources=/etc/apt/sources.list
for f in "$root"/etc/apt/sources.list.d/*.sources; do
  [ -e "$f" ] && sources=/etc/apt/sources.list.d/$(basename "$f") && break
done
run version build-image --version
run validate build-image validate /usr/share/build-image/templates/php.yaml /usr/share/build-image/templates/mysql.yaml
run plan build-image plan --json /usr/share/build-image/templates/php.yaml
run which sh -c 'command -v build-image; ls /usr/share/build-image'

if [ -n "${BI_PACKAGE_CACHE:-}" ] && [ -n "${BI_PACKAGE_CARTRIDGE:-}" ]; then
  cp "$BI_PACKAGE_CARTRIDGE" "$root/root/cartridge.yaml"
  run plan-cartridge build-image plan --json /root/cartridge.yaml
  cache=$root/root/.cache/build-image
  mkdir -p "$cache/layers"
  layers=$(/usr/bin/python3 -c 'import json, sys
p = json.load(open(sys.argv[1]))["plans"][0]
print(" ".join(s["layer"] + "-" + s["key"] for s in p["steps"] if s["layer"] and not s["same_as"]))' \
    "$root/results/plan-cartridge.out")
  for layer in $layers; do
    if [ -d "$BI_PACKAGE_CACHE/layers/$layer" ]; then
      cp -al "$BI_PACKAGE_CACHE/layers/$layer" "$cache/layers/"
      echo "$layer" >>"$root/results/seeded"
    fi
  done
  # The fixture's KVM verdict: no probe guest needed again.
  [ -f "$BI_PACKAGE_CACHE/kvm-probe" ] && cp "$BI_PACKAGE_CACHE/kvm-probe" "$cache/"
  run build build-image --output /root/images --json /root/cartridge.yaml
fi
