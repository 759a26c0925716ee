#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Build the libFuzzer targets with clang and fuzz each one for a bounded time, starting from
# its seed corpus in tests/fuzz/corpus (new inputs go to a scratch copy, the seeds stay as
# committed). CI (.ci/run) runs this with 45 s per target after the test suite.
# A crash, leak, timeout or out-of-memory fails the run and prints the reproducer's path,
# BUILD/crash-<target>-{crash,leak,timeout,oom}-<sha1>. To keep it fixed for good, copy it to
# tests/fuzz/crashes/<target>-<short-name> (see tests/fuzz/README.md): the replay test
# fuzz_replay_<target> then runs it on every ctest, with or without libFuzzer.
# Usage: tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60, every target)
# Env: DNSD_FUZZ_BUILD, the build directory (default build/fuzz).
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if [ $# -gt 0 ]; then shift; fi
targets="${*:-query api config zone journal snapshot}"
build="${DNSD_FUZZ_BUILD:-build/fuzz}"
tools/install-deps.sh fuzz
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DDNSD_FUZZ=ON \
    -DDNSD_SANITIZE="address;undefined" >/dev/null
for t in $targets; do
    cmake --build "$build" -j"$(nproc)" --target "fuzz_$t" >/dev/null
done
status=0
for t in $targets; do
    work="$build/corpus-$t"
    log="$build/fuzz_$t.log"
    mkdir -p "$work"
    rm -f "$build/crash-$t-"*
    echo "fuzz_$t: ${seconds}s"
    if ! ASAN_OPTIONS=fast_unwind_on_malloc=0 \
        LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp" \
        "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$build/crash-$t-" \
        "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        echo "fuzz_$t FAILED; see $log:" >&2
        grep -E "ERROR|SUMMARY|invariant|Test unit written" "$log" | head -n 20 >&2
        for f in "$build/crash-$t-"*; do
            [ -e "$f" ] || continue
            echo "reproducer: $f" >&2
            echo "  run it again: $build/tests/fuzz/fuzz_$t $f" >&2
            echo "  keep as a regression test: cp $f tests/fuzz/crashes/$t-NAME" >&2
        done
        status=1
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" || true
done
exit $status
