/* SPDX-License-Identifier: BSD-2-Clause
 * Parsing and formatting of "10s"-style durations (see include/dnsd/duration.h). */
#include "dnsd/duration.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dnsd/error.h"

struct unit {
    const char *suffix;
    uint64_t ms;
};

/* Longest suffix first, so "ms" is not read as "m" followed by junk. */
static const struct unit units[] = {
    {"ms", 1},
    {"h", 3600 * 1000},
    {"m", 60 * 1000},
    {"s", 1000},
};

int dnsd_duration_parse(const char *text, uint64_t *out_ms)
{
    if (text == NULL)
        return DNSD_EINVAL;
    uint64_t value = 0;
    size_t i = 0;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        value = value * 10 + (uint64_t)(text[i] - '0');
        if (value > DNSD_DURATION_MAX_MS)
            return DNSD_ERANGE;
    }
    if (i == 0)
        return DNSD_EINVAL;
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strcmp(text + i, units[u].suffix) != 0)
            continue;
        if (value > DNSD_DURATION_MAX_MS / units[u].ms)
            return DNSD_ERANGE;
        *out_ms = value * units[u].ms;
        return 0;
    }
    return DNSD_EINVAL;
}

void dnsd_duration_format(uint64_t ms, char *buf, size_t len)
{
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    /* units[] minus "ms", largest first; fall back to milliseconds. */
    for (size_t u = 1; u < sizeof(units) / sizeof(units[0]); u++) {
        if (ms % units[u].ms == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", ms / units[u].ms, units[u].suffix);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64 "ms", ms);
}
