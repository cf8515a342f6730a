#!/bin/bash
# Image build benchmark: build-image against the hand pipeline (mmdebstrap + guestfish +
# virt-customize + qemu-img), side by side in one run, N rounds, medians and ratios.
#   bench/run-bench.sh [ROUNDS]      (root; results in bench/results/)
set -euo pipefail
rounds=${1:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /var/tmp/bi-bench.XXXXXX)
# Private copies: a rebuild of the tree during the run must not change what is measured.
cp "$top/build/build-image" "$work/build-image"
cp "$top"/build/packages/cartridge-agent_*.deb "$work/agent.deb"
bin=$work/build-image
export BUILD_IMAGE_AGENT_DEB=$work/agent.deb
results=$top/bench/results
mkdir -p "$results"
trap 'rm -rf "$work"' EXIT
command -v virt-customize >/dev/null || { echo "bench: needs libguestfs-tools (scripts/install-deps bench)" >&2; exit 3; }

# A private copy of the repository content, so an init-script change can be simulated.
src=$work/src
mkdir -p "$src"
cp -a "$top/init-scripts" "$top/puppet" "$top/templates" "$src/"
export BUILD_IMAGE_SOURCE_DIR=$src

now() { date +%s.%N; }
declare -A samples
record() { samples[$1]="${samples[$1]:-} $2"; echo "  $1: $2 s"; }
timed() { local name=$1; shift; local t0; t0=$(now); "$@" >"$work/$name.log" 2>&1 || { echo "bench: $name failed, see below" >&2; tail -20 "$work/$name.log" >&2; exit 1; }; record "$name" "$(echo "$(now) - $t0" | bc)"; }

for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds"
  rm -rf "$work/cache-g" "$work/cache-f" "$work/out" "$work/hand"
  # Cold: empty caches on both sides (one cache per mode, so both are really cold).
  timed hand_cold_generic "$top/bench/hand-pipeline.sh" cold "$work/hand-generic.qcow2" "$work/hand" "$src/init-scripts/sbin/cartridge-init"
  timed bi_cold_generic env BUILD_IMAGE_CACHE="$work/cache-g" "$bin" --mode generic --output "$work/out" "$src/templates/php.yaml"
  timed bi_cold_full env BUILD_IMAGE_CACHE="$work/cache-f" "$bin" --mode full --output "$work/out" "$src/templates/php.yaml"
  # Warm: an init-script change, kept base/layers.
  echo "# bench round $r $(now)" >> "$src/init-scripts/sbin/cartridge-init"
  timed hand_warm_customize "$top/bench/hand-pipeline.sh" warm "$work/hand-warm.qcow2" "$work/hand" "$src/init-scripts/sbin/cartridge-init"
  timed bi_warm_full env BUILD_IMAGE_CACHE="$work/cache-f" "$bin" --mode full --output "$work/out" "$src/templates/php.yaml"
  timed bi_warm_generic env BUILD_IMAGE_CACHE="$work/cache-g" "$bin" --mode generic --output "$work/out" "$src/templates/php.yaml"
  timed bi_nochange_full env BUILD_IMAGE_CACHE="$work/cache-f" "$bin" --mode full --output "$work/out" "$src/templates/php.yaml"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { echo "${samples[$1]}" | median; }
hand_cold=$(m hand_cold_generic); bi_cold=$(m bi_cold_generic); bi_full=$(m bi_cold_full)
hand_warm=$(m hand_warm_customize); bi_warm=$(m bi_warm_full); bi_warm_g=$(m bi_warm_generic); nochange=$(m bi_nochange_full)
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), TCG (no usable KVM)"
{
  echo "Measured $(date -u +%Y-%m-%d) on: $machine; $rounds rounds, medians in seconds; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| case | build-image | baseline (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| cold generic php | $bi_cold | hand pipeline $hand_cold | $(ratio "$bi_cold" "$hand_cold") | <= 0.6 |"
  echo "| cold full php | $bi_full | - | - | < 120 s |"
  echo "| warm rebuild after an init-script change (full) | $bi_warm | virt-customize on kept base $hand_warm | $(ratio "$bi_warm" "$hand_warm") | <= 0.5 |"
  echo "| warm rebuild after an init-script change (generic) | $bi_warm_g | virt-customize on kept base $hand_warm | $(ratio "$bi_warm_g" "$hand_warm") | <= 0.5 |"
  echo "| no-change rebuild (full, up to date) | $nochange | - | - | - |"
  echo
  echo "Samples: $(for k in "${!samples[@]}"; do echo -n "$k:${samples[$k]}; "; done)"
} | tee "$results/latest.md"
