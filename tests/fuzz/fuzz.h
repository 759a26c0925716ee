/* SPDX-License-Identifier: BSD-2-Clause
 * The libFuzzer entry points, declared once so that every target and replay_main.c compile
 * with -Wmissing-prototypes. A target defines LLVMFuzzerTestOneInput and may define
 * LLVMFuzzerInitialize; it aborts when an invariant fails so the fuzzer reports the input. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Run once before any input; may read argv. Returns: 0. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Run one input; data is only valid for the call.
 * Returns: 0 (anything else is reserved by libFuzzer). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/data: $DNSD_TEST_DATA when set, else the source tree's, compiled in by CMake. */
static inline const char *fuzz_data_dir(void)
{
#ifdef DNSD_FUZZ_DATA
    const char *fallback = DNSD_FUZZ_DATA;
#else
    const char *fallback = "tests/data";
#endif
    const char *d = getenv("DNSD_TEST_DATA");
    return d && d[0] ? d : fallback;
}

/* Abort, so that the fuzzer keeps the input, when an invariant fails; the message names the
 * binary (fuzz_X or replay_X) and the invariant, which the replay tests look for. */
static inline void fuzz_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s: invariant violated: %s\n", program_invocation_short_name, what);
        abort();
    }
}

/* Make a private directory for a target's files in dir (len bytes): on tmpfs when there is
 * one, since writers fsync. Aborts when it cannot. */
static inline void fuzz_temp_dir(char *dir, size_t len)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, len, "%s/dnsd-%s-XXXXXX", base, program_invocation_short_name);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
}
