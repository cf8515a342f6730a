#!/bin/sh
# The sanitizer and fuzz stage of scripts/run-tests (which runs it in the background, beside
# the suite): the ASan+UBSan build runs the tests that exercise our own code paths without
# VMs, then every libFuzzer target replays its corpus (seeds + regression inputs) and fuzzes
# for FUZZ_SECONDS (45), printing its execution count (ctest label "fuzz"). Lint runs first;
# the Release build of the tool and its packages (what a packager or user builds first:
# -O3, where GCC warns differently, warnings as errors) runs last.
# Usage: tests/harness/sanitizer-stage.sh RESULTS_DIR   (from the repository's root)
set -eu
results=$1
cores=$(nproc 2>/dev/null || echo 2)

# Style and static checks first (scripts/lint: clang-format on every file, clang-tidy on the
# files changed lately), on the suite's compile database (build/).
echo "== lint"
lint=0
scripts/lint all build || lint=$?

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DENABLE_SANITIZERS=ON -DWARNINGS_AS_ERRORS=ON >/dev/null
cmake --build build-asan -j"$cores" --target unit_tests cli_tests build-image
echo "== ASan+UBSan: unit and CLI tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build-asan -R '^(unit|cli)$' --output-on-failure --output-junit "$results/asan.xml"

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_FUZZING=ON \
  -DWARNINGS_AS_ERRORS=ON >/dev/null
cmake --build build-fuzz -j"$cores" --target fuzz_targets
echo "== libFuzzer: bounded runs"
ctest --test-dir build-fuzz -L fuzz --verbose --output-junit "$results/fuzz.xml"

echo "== Release build: build-image, the agent and build-image .debs"
launcher=""
command -v ccache >/dev/null 2>&1 && launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
# shellcheck disable=SC2086
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DWARNINGS_AS_ERRORS=ON -DBUILD_TESTING=OFF $launcher >/dev/null
cmake --build build-release -j"$cores" --target deb
[ "$lint" -eq 0 ] || { echo "sanitizer-stage: lint failed (scripts/lint all)" >&2; exit 1; }
