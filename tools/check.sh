#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Checks beyond the test suite: the optimised builds are warning-free under -Werror (gcc's
# "release" preset, which the quick start uses, and clang: -O2 finds warnings -O0 cannot),
# and every C file is formatted as .clang-format says.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh fuzz
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" >/dev/null
echo "gcc release build: ok"
CC=clang cmake -S . -B build/clang -DCMAKE_BUILD_TYPE=Release -DDNSD_WERROR=ON >/dev/null
cmake --build build/clang -j"$(nproc)" >/dev/null
echo "clang build: ok"
unformatted=""
for f in $(git ls-files '*.c' '*.h'); do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || unformatted="$unformatted $f"
done
if [ -n "$unformatted" ]; then
    echo "not formatted per .clang-format:$unformatted" >&2
    exit 1
fi
echo "format: ok"
