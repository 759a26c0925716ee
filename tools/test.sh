#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install what the tests need, build with AddressSanitizer and UndefinedBehaviorSanitizer
# (the "dev" preset), and run every unit and system test under ctest.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh test
cmake --preset dev >/dev/null
cmake --build --preset dev -j"$(nproc)"
ctest --preset dev -j2 "$@"
