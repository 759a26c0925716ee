#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Build the libFuzzer targets with clang and fuzz each one for a bounded time, starting from
# its seed corpus in tests/fuzz/corpus (new inputs go to a scratch copy, the seeds stay as
# committed). A crash fails the run and leaves the input as build/fuzz/crash-<target>-*:
# save it as tests/fuzz/crashes/<target>-<name> so the replay test keeps it fixed.
# Usage: tools/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-60}"
tools/install-deps.sh fuzz
CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DDNSD_FUZZ=ON \
    -DDNSD_SANITIZE="address;undefined" >/dev/null
targets="query api config zone"
for t in $targets; do
    cmake --build build/fuzz -j"$(nproc)" --target "fuzz_$t" >/dev/null
done
status=0
for t in $targets; do
    work="build/fuzz/corpus-$t"
    mkdir -p "$work"
    echo "fuzz_$t: ${seconds}s"
    if ! ASAN_OPTIONS=fast_unwind_on_malloc=0 \
        LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp" \
        "build/fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="build/fuzz/crash-$t-" \
        "$work" "tests/fuzz/corpus/$t" >"build/fuzz/fuzz_$t.log" 2>&1; then
        echo "fuzz_$t FAILED; see build/fuzz/fuzz_$t.log:" >&2
        grep -E "ERROR|SUMMARY|invariant" "build/fuzz/fuzz_$t.log" | head -n 20 >&2
        status=1
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "build/fuzz/fuzz_$t.log" || true
done
exit $status
