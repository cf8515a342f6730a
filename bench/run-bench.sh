#!/bin/bash
# Image build benchmark: build-image against the hand pipeline (mmdebstrap + guestfish +
# virt-customize + qemu-img), side by side in one run, N rounds, medians and ratios, and
# where the cold full php build spends its time (per phase, from the tool's --json).
#   bench/run-bench.sh [ROUNDS] [--quick]   (root; BI_BUILD_DIR=build; results in bench/results/)
#   --quick: the cold cases only (hand generic, build-image generic and full): a check that
#            the script works, not a figure for README.
# Fair to the baseline (issue 16): the hand pipeline's mmdebstrap gets the tool's speed-ups
# (eatmydata, no docs/man/locales, no Recommends) and its image the same zstd qcow2
# (bench/hand-pipeline.sh); tool and baseline take turns going first from round to round;
# every sample records the load average before and after it; the accelerator each side
# really used is read from its log, not assumed.
set -euo pipefail
rounds=${1:-3}
quick=false
[ "${2:-}" = --quick ] && quick=true
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BI_BUILD_DIR:-$top/build}
work=$(mktemp -d /var/tmp/bi-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Private copies: a rebuild of the tree during the run must not change what is measured.
cp "$build/build-image" "$work/build-image"
cp "$build"/packages/cartridge-agent_*.deb "$work/agent.deb"
bin=$work/build-image
export BUILD_IMAGE_AGENT_DEB=$work/agent.deb
results=$top/bench/results
mkdir -p "$results"
command -v virt-customize >/dev/null || { echo "bench: needs libguestfs-tools (scripts/install-deps bench)" >&2; exit 3; }

# A private copy of the repository content, so an init-script change can be simulated.
src=$work/src
mkdir -p "$src"
cp -a "$top/init-scripts" "$top/puppet" "$top/templates" "$src/"
export BUILD_IMAGE_SOURCE_DIR=$src

now() { date +%s.%N; }
load() { cut -d' ' -f1 /proc/loadavg; }
declare -A samples loads accel
record() { samples[$1]="${samples[$1]:-} $2"; echo "  $1: $2 s (load $3 -> $4)"; loads[$1]="${loads[$1]:-} $3->$4"; }
# timed NAME CMD...: stdout to NAME.out (the tool's --json), stderr to NAME.log.
timed() {
  local name=$1; shift
  local t0 l0; l0=$(load); t0=$(now)
  "$@" >"$work/$name.out" 2>"$work/$name.log" || { echo "bench: $name failed, see below" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
  record "$name" "$(echo "$(now) - $t0" | bc)" "$l0" "$(load)"
}
# What the tool's build really ran its appliance with, from its --json and build log.
tool_accel() {
  python3 - "$work/$1.out" <<'PY'
import json, re, sys
img = json.load(open(sys.argv[1]))["images"][0]
if img.get("appliance_launches", 0) == 0:
    print("none (no appliance launched)")
else:
    m = re.search(r"appliance with (KVM|TCG)", open(img["log"]).read()) if img.get("log") else None
    print(m.group(1) if m else "unknown")
PY
}
# Per-phase seconds of a tool build, recorded as samples "phase:<name>".
phases() {
  local line
  while read -r line; do
    samples["phase:${line%% *}"]="${samples["phase:${line%% *}"]:-} ${line#* }"
  done < <(python3 -c 'import json,sys; [print(p["name"], round(p["seconds"], 2)) for p in json.load(open(sys.argv[1]))["images"][0]["phases"]]' "$work/$1.out")
}
hand() { timed "$1" "$top/bench/hand-pipeline.sh" "$2" "$work/$1.qcow2" "$work/hand" "$src/init-scripts/sbin/cartridge-init"; }
tool() { local name=$1 cache=$2; shift 2; timed "$name" env BUILD_IMAGE_CACHE="$work/$cache" "$bin" --json --output "$work/out" "$@" "$src/templates/php.yaml"; }

# in_turn ROUND BASELINE TOOL: runs both functions, the baseline first in odd rounds and the
# tool first in even ones.
in_turn() { if [ $(($1 % 2)) -eq 1 ]; then "$2"; "$3"; else "$3"; "$2"; fi; }
hand_cold() { hand hand_cold_generic cold; }
tool_cold() { tool bi_cold_generic cache-g --mode generic; }
hand_warm() { hand hand_warm_customize warm; }
tool_warm() { tool bi_warm_full cache-f --mode full; }

for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds (load $(cut -d' ' -f1-3 /proc/loadavg))"
  rm -rf "$work/cache-g" "$work/cache-f" "$work/out" "$work/hand"
  # Cold: empty caches on both sides (one cache per mode, so both are really cold).
  in_turn "$r" hand_cold tool_cold
  tool bi_cold_full cache-f --mode full
  phases bi_cold_full
  accel[tool]=$(tool_accel bi_cold_generic)
  accel[hand]="TCG (hand-pipeline.sh sets force_tcg: KVM is unusable here)"
  $quick && continue
  # Warm: an init-script change, kept base/layers.
  echo "# bench round $r $(now)" >>"$src/init-scripts/sbin/cartridge-init"
  in_turn "$r" hand_warm tool_warm
  tool bi_warm_generic cache-g --mode generic
  tool bi_nochange_full cache-f --mode full
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { echo "${samples[$1]:-}" | median; }
ratio() { [ "$1" = - ] || [ "$2" = - ] && { echo -; return; }; printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
hand_cold=$(m hand_cold_generic); bi_cold=$(m bi_cold_generic); bi_full=$(m bi_cold_full)
hand_warm=$(m hand_warm_customize); bi_warm=$(m bi_warm_full); bi_warm_g=$(m bi_warm_generic); nochange=$(m bi_nochange_full)
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
{
  echo "Measured $(date -u +%Y-%m-%d) on: $machine; accelerator: build-image ${accel[tool]}, hand pipeline ${accel[hand]};"
  echo "$rounds round(s)$($quick && echo ' (--quick: cold cases only)'), medians in seconds; tool and baseline alternate going first; load average (1 min) before -> after each sample below."
  echo
  echo "| case | build-image | baseline (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| cold generic php | $bi_cold | hand pipeline $hand_cold | $(ratio "$bi_cold" "$hand_cold") | <= 0.6 |"
  echo "| cold full php | $bi_full | - | - | <= 60 s |"
  if ! $quick; then
    echo "| warm rebuild after an init-script change (full) | $bi_warm | virt-customize on kept base $hand_warm | $(ratio "$bi_warm" "$hand_warm") | <= 0.5 |"
    echo "| warm rebuild after an init-script change (generic) | $bi_warm_g | virt-customize on kept base $hand_warm | $(ratio "$bi_warm_g" "$hand_warm") | <= 0.5 |"
    echo "| no-change rebuild (full, up to date) | $nochange | - | - | - |"
  fi
  echo
  echo "Cold full php, per phase (median s; base-os and bootloader overlap: the bootloader starts with the build):"
  echo
  echo "| base-os | bootloader | system | assemble | convert | finalize |"
  echo "|---|---|---|---|---|---|"
  echo "| $(m phase:base-os) | $(m phase:bootloader) | $(m phase:system) | $(m phase:assemble) | $(m phase:convert) | $(m phase:finalize) |"
  echo
  echo "Samples (s, load before->after):"
  for k in $(printf '%s\n' "${!samples[@]}" | sort); do
    echo "- $k:${samples[$k]}${loads[$k]:+ | load${loads[$k]}}"
  done
} | tee "$results/latest.md"
