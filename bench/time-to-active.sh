#!/bin/bash
# Time to active: the seed's reason for full images. Boots the php FULL image (everything
# installed at build time) and the php GENERIC image (configured at boot by a real Puppet
# master, packages from a local apt repository) with `build-image boot-test`, ROUNDS times
# each, and reports medians of power-on -> login prompt and power-on ->
# InstanceActivatedEvent, with the generic/full ratio. Same machine, same run.
#   bench/time-to-active.sh [ROUNDS] [CACHE_DIR]     (root; results in bench/results/)
# CACHE_DIR (default build/test-cache, the test suite's) makes the two builds warm; the
# builds are not what is measured here.
set -euo pipefail
rounds=${1:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${2:-$top/build/test-cache}
work=$(mktemp -d /var/tmp/bi-tta.XXXXXX)
cp "$top/build/build-image" "$work/build-image"
agent_deb=$(find "$top/build/packages" -name "cartridge-agent_*.deb" | head -n 1)
cp "$agent_deb" "$work/agent.deb"
bin=$work/build-image
export BUILD_IMAGE_AGENT_DEB=$work/agent.deb
results=$top/bench/results
mkdir -p "$results"

cleanup() {
  bash "$top/tests/harness/puppet-master.sh" stop "$work/master" >/dev/null 2>&1 || true
  bash "$top/tests/harness/package-repo.sh" stop "$work/repo" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "building php full and generic (cache $cache)"
for mode in full generic; do
  BUILD_IMAGE_CACHE=$cache "$bin" build --mode "$mode" --output "$work/out" "$top/templates/php.yaml" >"$work/build-$mode.log" 2>&1 ||
    { tail -20 "$work/build-$mode.log" >&2; exit 1; }
done
full_image=$(find "$work/out" -name "php-full-*.qcow2")
generic_image=$(find "$work/out" -name "php-generic-*.qcow2")

# Generic mode needs the master and the repository (full mode ignores both).
repo_port=$(free_port)
master_port=$(free_port)
bash "$top/tests/harness/package-repo.sh" start "$work/repo" "$repo_port" "$cache" "$work/agent.deb" >/dev/null
bash "$top/tests/harness/puppet-master.sh" start "$work/master" "$master_port" >/dev/null

declare -A samples
record() { samples[$1]="${samples[$1]:-} $2"; echo "  $1: $2 s"; }

# boot MODE IMAGE ROUND: one boot-test; records login and activated seconds.
boot() {
  local mode=$1 image=$2 round=$3 member payload out
  member="bench.php.domain$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  payload=$work/payload-$mode-$round
  cat >"$payload" <<EOF
APPLICATION_ID=bench
SERVICE_NAME=php
CLUSTER_ID=bench.php.domain
DEPLOYMENT=default
PORTS=80
PUPPET_IP=10.0.2.101
PUPPET_HOSTNAME=puppet.test
PUPPET_PORT=8140
PUPPET_DNS_AVAILABLE=false
PACKAGE_REPO=deb [trusted=yes] http://10.0.2.102/ ./
MEMBER_ID=$member
CLUSTER_INSTANCE_ID=bench-1
NETWORK_PARTITION_ID=np-1
PARTITION_ID=p-1
MB_IP=10.0.2.100
MB_PORT=1883
EOF
  out=$work/boot-$mode-$round.json
  if ! "$bin" boot-test --json --timeout 1800 --payload "$payload" \
      --forward "10.0.2.101:8140=$master_port" --forward "10.0.2.102:80=$repo_port" "$image" >"$out" 2>"$out.err"; then
    echo "bench: boot-test of the $mode image failed:" >&2
    tail -c 2000 "$out" >&2
    exit 1
  fi
  record "${mode}_login" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["boot_to_login_seconds"])' "$out")"
  record "${mode}_activated" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["boot_to_activated_seconds"])' "$out")"
}

for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds"
  boot full "$full_image" "$r"
  boot generic "$generic_image" "$r"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.1f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { echo "${samples[$1]}" | median; }
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
full_login=$(m full_login); full_active=$(m full_activated)
generic_login=$(m generic_login); generic_active=$(m generic_activated)
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), TCG (no usable KVM), guest 2 vCPUs / 1 GiB"
{
  echo "Measured $(date -u +%Y-%m-%d) on: $machine; $rounds rounds, medians in seconds since power-on; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| php image | to login prompt | to InstanceActivatedEvent | activated / full activated | activated / own login |"
  echo "|---|---|---|---|---|"
  echo "| full (configured at build time) | $full_login | $full_active | 1.00 | $(ratio "$full_active" "$full_login") (target <= 1.5) |"
  echo "| generic (Puppet master at boot) | $generic_login | $generic_active | $(ratio "$generic_active" "$full_active") | $(ratio "$generic_active" "$generic_login") |"
  echo
  echo "Samples: $(for k in "${!samples[@]}"; do echo -n "$k:${samples[$k]}; "; done)"
} | tee "$results/time-to-active.md"
