#!/bin/bash
# Registration benchmark, all on loopback, in one run:
#  1. Glance: `build-image register --to openstack` upload throughput (streamed PUT with
#     SHA-512 on the fly) against `curl -T` of the same file to the same Glance (create +
#     PUT /file), alternating order, ROUNDS times each; medians and the ratio (goal >= 0.8).
#  2. EBS: `register --to ec2` against the fake EBS/EC2 endpoint with a per-request latency
#     (like a network round trip): bytes sent vs the image's allocated data, blocks skipped,
#     and the peak number of parallel requests the endpoint saw (vs the workers).
#
#   bench/register-bench.sh [IMAGE] [ROUNDS]
# IMAGE: a built image with its manifest (default: build/test-images/tiny-generic-*.qcow2).
# Needs: scripts/install-deps test (glance-api, keystone, uwsgi), a built build/build-image
# (or BI_BINARY=...).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${BI_BINARY:-$here/build/build-image}
image=${1:-$(find "$here/build/test-images" -maxdepth 1 -name 'tiny-generic-*.qcow2' 2>/dev/null | sort | head -1)}
rounds=${2:-3}
latency_ms=${EBS_LATENCY_MS:-20}
if [ -z "$image" ] || [ ! -f "$image" ]; then echo "register-bench: no image (give IMAGE)" >&2; exit 2; fi
[ -x "$bin" ] || { echo "register-bench: no binary at $bin (build first or set BI_BINARY)" >&2; exit 2; }

export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
work=$(mktemp -d /tmp/register-bench.XXXXXX)
svc=$work/services
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  "$here/tests/harness/cloud-services.sh" stop "$svc" || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "register-bench: starting Keystone + Glance on loopback..." >&2
"$here/tests/harness/cloud-services.sh" start "$svc"
# shellcheck disable=SC1091
. "$svc/env"
export HOME=$work
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
size=$(stat -c %s "$image")
manifest=${image%.*}.json

# A copy of the manifest with another inputs key (same bytes), so every round uploads.
variant() {  # tag -> path of the variant image
  /usr/bin/python3 - "$manifest" "$image" "$work" "$1" <<'EOF'
import hashlib, json, os, sys
src, img, work, tag = sys.argv[1:]
m = json.load(open(src))
m.pop("registrations", None)
key = hashlib.sha256((m["inputs_key"] + tag).encode()).hexdigest()
m["inputs_key"] = key
m["name"] = f"{m['cartridge']}-{m['mode']}-{tag}-{key[:8]}"
m["file"] = m["name"] + "." + m["format"]
dst = os.path.join(work, m["file"])
os.link(img, dst) if os.stat(img).st_dev == os.stat(work).st_dev else __import__("shutil").copyfile(img, dst)
json.dump(m, open(os.path.join(work, m["name"] + ".json"), "w"))
print(dst)
EOF
}

token() {
  printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' "$OS_PASSWORD" |
    curl -s -D - -o /dev/null -H 'Content-Type: application/json' --data-binary @- "$OS_AUTH_URL/auth/tokens" |
    awk 'tolower($1)=="x-subject-token:" {print $2}' | tr -d '\r'
}
tok=$(token)
gdelete() { curl -s -o /dev/null -X DELETE -H "X-Auth-Token: $tok" "$GLANCE_URL/v2/images/$1"; }

ours=()
theirs=()
run_ours() {
  local v out
  v=$(variant "bench$1")
  out=$("$bin" register "$v" --to openstack --json)
  /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["images"][0]["registrations"][0]; print(r["upload_seconds"], r["image_id"])' <<<"$out"
}
run_curl() {
  local id t
  id=$(curl -s -H "X-Auth-Token: $tok" -H 'Content-Type: application/json' \
    -d "{\"name\":\"curl-$1\",\"disk_format\":\"qcow2\",\"container_format\":\"bare\"}" "$GLANCE_URL/v2/images" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  t=$(curl -s -o /dev/null -w '%{time_total}' -X PUT -H "X-Auth-Token: $tok" \
    -H 'Content-Type: application/octet-stream' -T "$image" "$GLANCE_URL/v2/images/$id/file")
  echo "$t $id"
}
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    read -r a ida < <(run_ours "$r"); read -r b idb < <(run_curl "$r")
  else
    read -r b idb < <(run_curl "$r"); read -r a ida < <(run_ours "$r")
  fi
  ours+=("$a"); theirs+=("$b")
  gdelete "$ida"; gdelete "$idb"
  echo "round $r: build-image ${a} s, curl -T ${b} s" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mo=$(median "${ours[@]}")
mc=$(median "${theirs[@]}")

# ---- EBS against the fake, with latency per request
mkdir -p "$work/ebs"
FAKE_AWS_ACCESS_KEY_ID=AKIDBENCH FAKE_AWS_SECRET_ACCESS_KEY=bench-secret \
  /usr/bin/python3 "$here/tests/fakes/fake_aws.py" --port-file "$work/aws.port" --latency-ms "$latency_ms" \
  >/dev/null 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -f "$work/aws.port" ] && break; sleep 0.05; done
aws_url=http://127.0.0.1:$(cat "$work/aws.port")
workers=${BUILD_IMAGE_EBS_WORKERS:-8}
v=$(variant ebs)
ebs_json=$(AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=$aws_url \
  AWS_REGION=ap-southeast-1 BUILD_IMAGE_EBS_WORKERS=$workers "$bin" register "$v" --to ec2 --json)
state=$(curl -s "$aws_url/_state")
format=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["format"])' "$manifest")
qemu-img map --output=json -f "$format" "$image" > "$work/map.json"

/usr/bin/python3 - "$mo" "$mc" "$size" "$rounds" "$work/map.json" "$workers" "$latency_ms" <<EOF
import json, sys
mo, mc, size, rounds, mapf, workers, lat = sys.argv[1:]
mo, mc, size, workers = float(mo), float(mc), int(size), int(workers)
mib = 1 << 20
print(f"Glance upload of {size / mib:.1f} MiB, {rounds} rounds each, medians:")
print(f"  build-image register  {mo:7.2f} s  {size / mib / mo:7.1f} MiB/s  (streamed, SHA-512 while sending, verified)")
print(f"  curl -T               {mc:7.2f} s  {size / mib / mc:7.1f} MiB/s")
print(f"  ratio (ours / curl throughput): {mc / mo:.2f}  (goal >= 0.80)")
r = json.loads('''$ebs_json''')["images"][0]["registrations"][0]
st = json.loads('''$state''')
m = json.load(open(mapf))
alloc = sum(e["length"] for e in m if e["data"] and not e.get("zero"))
blocks = set()
for e in m:
    if e["data"] and not e.get("zero"):
        blocks.update(range(e["start"] // 524288, (e["start"] + e["length"] - 1) // 524288 + 1))
print(f"EBS direct upload to the fake endpoint ({lat} ms per request, {workers} workers):")
print(f"  bytes sent {r['bytes_sent'] / mib:.1f} MiB; allocated data {alloc / mib:.1f} MiB, "
      f"= {len(blocks) * 524288 / mib:.1f} MiB in whole 512 KiB blocks; sent <= allocated blocks: "
      f"{r['bytes_sent'] <= len(blocks) * 524288}")
print(f"  blocks sent {r['blocks_sent']}, zero blocks skipped {r['blocks_skipped']}, "
      f"upload {r['upload_seconds']:.1f} s ({r['bytes_sent'] / mib / max(r['upload_seconds'], 1e-9):.1f} MiB/s), "
      f"peak parallel requests at the endpoint {st['max_inflight']} (workers {workers}), "
      f"endpoint strictness errors {len(st['errors'])}")
EOF
