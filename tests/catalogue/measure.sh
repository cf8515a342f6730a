#!/bin/bash
# Measures the catalogue for docs/catalogue.md: build times and image sizes of every
# template, full and generic, cold and warm, with one cache.
# Usage (as root, from the repository): tests/catalogue/measure.sh CACHE_DIR OUT_DIR [TYPE...]
#   CACHE_DIR  a build-image cache; use an empty one for cold numbers
#   OUT_DIR    where the images go (emptied first)
# First tests/data/tiny.yaml is built (generic): that builds the layers every image shares
# (base OS, bootloader), timed on their own. Then per template, one build at a time:
#   cold  = full, then generic, into OUT_DIR/cold: the template's system layer is built;
#   warm  = the same again into OUT_DIR/warm: every layer cached, the image is assembled.
# Prints a Markdown table (sizes are the compressed qcow2 files, manifest `file_size`;
# times are the manifests' `build_seconds`; "*": the system layer was found in the cache).
set -eu -o pipefail
[ $# -ge 2 ] || { echo "usage: $0 CACHE_DIR OUT_DIR [TYPE...]" >&2; exit 2; }
cache=$1 out=$2
shift 2
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(php tomcat mysql wordpress ruby)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BI=${BUILD_IMAGE:-$REPO/build/build-image}
rm -rf "$out"
mkdir -p "$out/cold" "$out/warm" "$out/shared"

# build DIR MODE YAML: builds, prints "seconds bytes" from the image's manifest; seconds
# get a "*" when the system layer was already in the cache (shared with an earlier build).
build() {
    local json manifest
    json=$(BUILD_IMAGE_CACHE=$cache "$BI" --json --output "$1" --mode "$2" "$3")
    manifest=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["manifest"])')
    python3 -c 'import json,sys
m = json.load(open(sys.argv[1]))
cached = any(p["name"] == "system" and p["note"].startswith("cached") for p in m["phases"])
print("%.0f%s %d" % (m["build_seconds"], "*" if cached else "", m["file_size"]))' "$manifest"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
secs() { if [[ $1 == *'*' ]]; then echo "${1%'*'} s*"; else echo "$1 s"; fi; }

read -r s _ < <(build "$out/shared" generic "$REPO/tests/data/tiny.yaml")
echo "shared layers (base OS + bootloader, built once per cache): ${s} s" >&2

echo "| template | ports | dependent apps | server apps | image full | image generic | full cold | full warm | generic cold | generic warm |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for t in "${types[@]}"; do
    yaml=$REPO/templates/$t.yaml
    read -r fc fsize < <(build "$out/cold" full "$yaml")
    read -r gc gsize < <(build "$out/cold" generic "$yaml")
    read -r fw _ < <(build "$out/warm" full "$yaml")
    read -r gw _ < <(build "$out/warm" generic "$yaml")
    info=$(ruby -ryaml -e 'y = YAML.safe_load(File.read(ARGV[0]))
        ports = y["ports"].map { |p| "#{p["port"]}/#{p["protocol"] || "http"}" }.join(", ")
        deps = Array(y["dependent_apps"]).join(", ")
        puts [ports, deps.empty? ? "-" : deps, Array(y["server_apps"]).join(", ")].join("|")' "$yaml")
    echo "| $t | ${info//|/ | } | $(mib "$fsize") | $(mib "$gsize") | $(secs "$fc") | $(secs "$fw") | $(secs "$gc") | $(secs "$gw") |"
done
