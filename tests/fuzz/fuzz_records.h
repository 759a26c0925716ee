/* SPDX-License-Identifier: BSD-2-Clause
 * Shared by the journal and snapshot targets: a fuzzer mutating a payload almost never
 * keeps its CRC32C right, so the targets also run each input with every frame's CRC
 * recomputed, to reach the field decoder behind the CRC check. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
