#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Run system tests with every dnsd they start under valgrind's memcheck, on a Debug build
# without sanitizers (the "valgrind" preset, build/valgrind). dnsdtest.py wraps dnsd in
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=97
# when DNSD_VALGRIND=1, scales its start and stop waits by 10, and fails a test when a
# valgrind log of one of its dnsd processes has "ERROR SUMMARY: [1-9]" (any memory error,
# or a definite or indirect leak at exit; dnsd then also exits 97). tools/valgrind.supp
# holds suppressions for third-party noise only.
#
# The subset (every system test still runs under ASan+UBSan in tools/test.sh), about 2 min
# with -j2 on 2 cores: basic records negative edns zones api regctl auth tls leases
# maintenance health checks watch signals metrics limits forward logs allowlist privileges
# config crash hostile. They cover the DNS answer paths, the API with its JSON, tokens and
# TLS, leases, health checks, watches, reload, limits, forwarding, privilege dropping,
# config errors, restart after a crash, and hostile traffic.
# Left out:
#   tcp, durability, rrl: timing-sensitive (answers written before an idle cut-off, the
#     lease grace left after a restart in ms, responses per second per client); they fail
#     or flake at memcheck's slowdown.
#   haproxy, resolvers: third-party clients with their own short timeouts.
#   glibc, diskfull, packaging: mount file systems or install a package.
#   manpages: compares documentation with --help and the config sample.
# Usage: tools/valgrind.sh [CTEST_ARGS...]
# Env: DNSD_VALGRIND_BUILD, the build directory (default build/valgrind).
set -eu
cd "$(dirname "$0")/.."
build="${DNSD_VALGRIND_BUILD:-build/valgrind}"
tests="basic records negative edns zones api regctl auth tls leases maintenance health checks
       watch signals metrics limits forward logs allowlist privileges config crash hostile workers"
tools/install-deps.sh valgrind
cmake --preset valgrind -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" --target dnsd regctl >/dev/null
regex="^system_($(echo $tests | tr ' ' '|'))\$"
DNSD_VALGRIND=1 DNSD_VALGRIND_SUPP="$PWD/tools/valgrind.supp" \
    ctest --test-dir "$build" -R "$regex" -j2 --output-on-failure "$@"
