/* SPDX-License-Identifier: BSD-2-Clause
 * Logging: one line per event to stderr, "2026-11-26T03:45:01.123Z info module: message"
 * (UTC, milliseconds, level in lower case), written with one write(2) so that lines from
 * different threads never interleave. The level is set once at start-up by main.c; lower
 * layers return codes and leave logging to the deciding caller. */
#pragma once

#include <stdbool.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
};

/* Parse "error", "warn", "info" or "debug" (case-insensitive).
 * Returns: 0 and *out, DNSD_EINVAL for anything else. */
int log_parse_level(const char *text, enum log_level *out);

/* Set the most verbose level that is written. Loop: main thread, before any loop runs. */
void log_set_level(enum log_level level);

/* Would a message at level be written? The default level is LOG_LEVEL_INFO.
 * Loop: any thread. */
bool log_is_enabled(enum log_level level);

/* Write one line, prefixed with the time, the level and the module name. Control characters
 * in the message become '?' and a message too long for 4 KiB ends in "...". errno is kept.
 * Loop: any thread. */
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(module, ...) log_msg(LOG_LEVEL_ERROR, module, __VA_ARGS__)
#define log_warn(module, ...) log_msg(LOG_LEVEL_WARN, module, __VA_ARGS__)
#define log_info(module, ...) log_msg(LOG_LEVEL_INFO, module, __VA_ARGS__)
#define log_debug(module, ...) log_msg(LOG_LEVEL_DEBUG, module, __VA_ARGS__)
