#!/bin/bash
# One bounded fuzz run (ctest label "fuzz"): replays every input of the seed corpus (the
# realistic seeds and each regression input kept from a crash), then fuzzes for SECONDS
# with a scratch corpus seeded from it, and prints the number of executions.
# Usage: run-fuzz.sh FUZZER CORPUS_DIR SECONDS
# A crash fails the test; the input is saved under $FUZZ_ARTIFACTS (default: a temp dir
# that is kept and printed) to be added to CORPUS_DIR with the fix.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=$3
name=$(basename "$fuzzer")
[ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] || { echo "$name: empty seed corpus $corpus" >&2; exit 1; }
work=$(mktemp -d "/tmp/$name-XXXXXX")
artifacts=${FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$work/corpus" "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
opts=(-rss_limit_mb=2048 -timeout=20 -max_len=65536 -print_final_stats=1 "-artifact_prefix=$artifacts/")
dict=$(dirname "$0")/$name.dict
[ -f "$dict" ] && opts+=("-dict=$dict")

inputs=$(find "$corpus" -type f | wc -l)
echo "== $name: replaying $inputs seed and regression inputs from $corpus"
# Every input, one process: a crash on any of them fails here.
if ! "$fuzzer" "${opts[@]}" -runs=0 "$corpus" >"$work/replay.log" 2>&1; then
  tail -n 40 "$work/replay.log"
  echo "$name: a corpus input crashes (log: $work/replay.log)" >&2
  exit 1
fi

echo "== $name: fuzzing for $seconds s"
status=0
"$fuzzer" "${opts[@]}" -max_total_time="$seconds" "$work/corpus" "$corpus" >"$work/fuzz.log" 2>&1 || status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$work/fuzz.log" | tail -n 1 | cut -d' ' -f2)
new=$(find "$work/corpus" -type f | wc -l)
if [ "$status" -ne 0 ]; then
  grep -v '^#[0-9]' "$work/fuzz.log" | tail -n 60
  echo "$name: CRASH after ${execs:-?} executions; inputs kept in $artifacts:" >&2
  ls -l "$artifacts" >&2
  exit 1
fi
echo "$name: ${execs:-0} executions in $seconds s, coverage ${cov:-?} edges, corpus $inputs -> $new inputs, no crash"
rm -rf "$work"
