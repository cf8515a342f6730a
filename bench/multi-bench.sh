#!/bin/bash
# Many cartridges: the four full cartridges tomcat, mysql, wordpress and ruby built together
# with --jobs 2 on a cache that holds the base layers (base-os + bootloader), against each
# built alone on the same cache state; then a no-change rebuild of every template (all up
# to date, nothing built, no appliance). N rounds, medians.
#   bench/multi-bench.sh [ROUNDS]   (root; BI_BUILD_DIR=build; results in bench/results/multi.md)
# Target (issue 6): together <= the base-less cost of one cartridge + 0.5x for each further
# one, i.e. <= 2.5 x the mean single build (0.625 x their sum); no-change rebuild < 5 s.
set -euo pipefail
rounds=${1:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BI_BUILD_DIR:-$top/build}
work=$(mktemp -d /var/tmp/bi-multi.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Private copies: a rebuild of the tree during the run must not change what is measured.
cp "$build/build-image" "$work/build-image"
cp "$build"/packages/cartridge-agent_*.deb "$work/agent.deb"
bin=$work/build-image
export BUILD_IMAGE_AGENT_DEB=$work/agent.deb
src=$work/src
mkdir -p "$src"
cp -a "$top/init-scripts" "$top/puppet" "$top/templates" "$src/"
cp "$top/tests/data/tiny.yaml" "$src/tiny.yaml"
export BUILD_IMAGE_SOURCE_DIR=$src
results=$top/bench/results
mkdir -p "$results"
four="tomcat mysql wordpress ruby"

now() { date +%s.%N; }
declare -A samples
record() { samples[$1]="${samples[$1]:-} $2"; echo "  $1: $2 s"; }
timed() { local name=$1; shift; local t0; t0=$(now); "$@" >"$work/$name.log" 2>&1 || { echo "bench: $name failed, see below" >&2; tail -20 "$work/$name.log" >&2; exit 1; }; record "$name" "$(echo "$(now) - $t0" | bc)"; }
# A cache holding only the base layers; hard links (cached layers are never modified).
fresh() { rm -rf "$work/cache-$1"; cp -al "$work/base-cache" "$work/cache-$1"; }

echo "preparing the base layers (tiny.yaml: base-os + bootloader)"
BUILD_IMAGE_CACHE=$work/base-cache "$bin" --output "$work/prep" "$src/tiny.yaml" >"$work/prep.log" 2>&1 \
  || { tail -20 "$work/prep.log" >&2; exit 1; }

for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds"
  for t in $four; do
    fresh "alone-$t"
    timed "alone_$t" env BUILD_IMAGE_CACHE="$work/cache-alone-$t" "$bin" --output "$work/out-alone-$r" "$src/templates/$t.yaml"
    rm -rf "$work/cache-alone-$t"
  done
  fresh together
  args=(); for t in $four; do args+=("$src/templates/$t.yaml"); done
  timed together_jobs2 env BUILD_IMAGE_CACHE="$work/cache-together" "$bin" --jobs 2 --output "$work/out-together-$r" "${args[@]}"
  # Every template once (php is new), then the measured no-change rebuild of all of them.
  env BUILD_IMAGE_CACHE="$work/cache-together" "$bin" --jobs 2 --output "$work/out-together-$r" "$src"/templates/*.yaml >"$work/all.log" 2>&1
  timed nochange_all env BUILD_IMAGE_CACHE="$work/cache-together" "$bin" --jobs 2 --output "$work/out-together-$r" "$src"/templates/*.yaml
  grep -c "(up to date)" "$work/nochange_all.log" | grep -qx 5 || { echo "bench: the no-change rebuild built something" >&2; cat "$work/nochange_all.log" >&2; exit 1; }
  rm -rf "$work/cache-together" "$work/out-alone-$r" "$work/out-together-$r"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { echo "${samples[$1]}" | median; }
sum=0; alone_cells=""
for t in $four; do v=$(m "alone_$t"); sum=$(echo "$sum + $v" | bc); alone_cells="$alone_cells $t $v;"; done
together=$(m together_jobs2); nochange=$(m nochange_all)
target=$(echo "scale=1; $sum * 0.625 / 1" | bc)
ratio=$(printf '%.2f' "$(echo "scale=4; $together / $sum" | bc)")
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), TCG (no usable KVM)"
{
  echo "Measured $(date -u +%Y-%m-%d) on: $machine; $rounds round(s), medians in seconds; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| case | build-image | baseline (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| tomcat+mysql+wordpress+ruby full, together, --jobs 2, base cached | $together | each alone, summed: $sum (${alone_cells# }) | $ratio | <= 0.625 (<= $target s) |"
  echo "| no-change rebuild of all 5 templates (up to date) | $nochange | - | - | < 5 s |"
  echo
  echo "Samples: $(for k in "${!samples[@]}"; do echo -n "$k:${samples[$k]}; "; done)"
} | tee "$results/multi.md"
