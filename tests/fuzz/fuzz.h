/* SPDX-License-Identifier: BSD-2-Clause
 * The libFuzzer entry points, declared once so that every target and replay_main.c compile
 * with -Wmissing-prototypes. A target defines LLVMFuzzerTestOneInput and may define
 * LLVMFuzzerInitialize; it aborts when an invariant fails so the fuzzer reports the input. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
