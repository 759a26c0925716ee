/* SPDX-License-Identifier: BSD-2-Clause
 * Shared by the journal and snapshot targets: a fuzzer mutating a payload almost never
 * keeps its CRC32C right, so the targets also run each input with every frame's CRC
 * recomputed, to reach the field decoder behind the CRC check. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "journal.h"

/* Rewrite the CRC of each whole frame from start on, stopping at the first bad length.
 * Returns: true when a CRC changed. */
static inline bool fuzz_fix_crcs(uint8_t *data, size_t size, size_t start)
{
    bool changed = false;
    size_t off = start;
    while (size - off >= JOURNAL_FRAME_LEN) {
        uint8_t *f = data + off;
        uint32_t n = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
        if (n < JOURNAL_MIN_PAYLOAD || n > JOURNAL_MAX_PAYLOAD ||
            n > size - off - JOURNAL_FRAME_LEN)
            break;
        uint32_t crc = journal_crc32c(0, f + JOURNAL_FRAME_LEN, n);
        uint8_t want[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8),
                           (uint8_t)crc};
        for (size_t i = 0; i < 4; i++) {
            changed |= f[4 + i] != want[i];
            f[4 + i] = want[i];
        }
        off += JOURNAL_FRAME_LEN + n;
    }
    return changed;
}

/* Run one input through run as it is, then again with every frame's CRC right (when that
 * changes anything), so that mutated payloads reach the field decoder. */
static inline void fuzz_run_with_fixed_crcs(const uint8_t *data, size_t size,
                                            void (*run)(const uint8_t *, size_t))
{
    run(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    fuzz_check(copy != NULL, "memory for a copy");
    memcpy(copy, data, size);
    if (fuzz_fix_crcs(copy, size, size >= JOURNAL_HEADER_LEN ? JOURNAL_HEADER_LEN : size))
        run(copy, size);
    free(copy);
}
