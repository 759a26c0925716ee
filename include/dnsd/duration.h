/* SPDX-License-Identifier: BSD-2-Clause
 * Durations as people write them in the API, the config file and on regctl's command line:
 * an integer and a unit, "500ms", "10s", "5m", "1h". Shared by dnsd and regctl. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The longest duration accepted anywhere: 7 days. */
#define DNSD_DURATION_MAX_MS (7ULL * 24 * 3600 * 1000)

/* Parse "<digits><unit>" with unit ms, s, m or h (lower case, no spaces, no sign).
 * Returns: 0 and *out_ms, DNSD_EINVAL (no digits, unknown or missing unit, trailing text),
 * DNSD_ERANGE (longer than DNSD_DURATION_MAX_MS). */
int dnsd_duration_parse(const char *text, uint64_t *out_ms);

/* Write ms in the largest unit that states it exactly ("2m", "90s", "1500ms", "0s").
 * The output is always accepted by dnsd_duration_parse. */
void dnsd_duration_format(uint64_t ms, char *buf, size_t len);
