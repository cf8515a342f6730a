#!/bin/bash
# Boots the full image of each given catalogue cartridge, one after the other, with
# `build-image boot-test` (libvirt, TCG when KVM is unusable, a private mosquitto, a
# generated Stratos payload on a config drive). Each must reach the cartridge agent's
# InstanceActivatedEvent, which the agent sends only once the cartridge's ports answer
# inside the guest: so this proves the service is up on its port after a real boot.
# For wordpress the console must also show the first-boot unit creating the database.
# Usage: boot-all.sh BUILD_IMAGE IMAGES_DIR TYPE...
#   IMAGES_DIR holds catalog.json (the newest full image of each TYPE is booted).
set -u -o pipefail
[ $# -ge 3 ] || { echo "usage: $0 BUILD_IMAGE IMAGES_DIR TYPE..." >&2; exit 2; }
bi=$1 images=$2
shift 2
status=0
for type in "$@"; do
    image=$(python3 - "$images/catalog.json" "$type" <<'PY'
import json, os, sys
entries = [e for e in json.load(open(sys.argv[1]))["images"] if e["cartridge"] == sys.argv[2] and e["mode"] == "full"]
if entries:
    print(os.path.join(os.path.dirname(sys.argv[1]), max(entries, key=lambda e: e["created"])["file"]))
PY
    )
    if [ -z "$image" ] || [ ! -f "$image" ]; then
        echo "FAIL $type: no full image in $images/catalog.json (run the catalogue_$type test first)"
        status=1
        continue
    fi
    # 600 s per image (full images activate in 1-2 min under TCG): four of them fit in the
    # ctest TIMEOUT (3600 s) with boot-test's own setup and teardown.
    out=$("$bi" boot-test "$image" --timeout 600 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed "s/^/  $type | /"
    if [ "$rc" != 0 ]; then
        echo "FAIL $type: boot-test exited $rc"
        status=1
        continue
    fi
    if [ "$type" = wordpress ]; then
        console=${image%.qcow2}.boot-test.log
        if grep -q 'wordpress-db-init: local database wordpress and user wordpress ready (password generated)' "$console" &&
            grep -q 'wordpress-db-init: wrote /etc/wordpress/config-default.php' "$console"; then
            echo "ok wordpress: first-boot database setup on the console"
        else
            echo "FAIL wordpress: no wordpress-db-init lines in $console"
            status=1
        fi
    fi
    echo "ok $type: activated"
done
exit $status
