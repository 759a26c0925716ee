/* SPDX-License-Identifier: BSD-2-Clause
 * Logging: one line per event to stderr, "2026-11-26T03:45:01.123Z info module: message"
 * (UTC, milliseconds, level in lower case) or, in JSON format, one object per line
 * {"ts":"...","level":"info","module":"...","msg":"..."}, written with one write(2) so that
 * lines from different threads never interleave. The level, the format and the query log
 * settings are set once at start-up; lower layers return codes and leave logging to the
 * deciding caller. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
};

enum log_format {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON = 1,
};

/* One answered query for the query log (log_query). Every pointer is borrowed for the call. */
struct log_query {
    const char *client;    /* "192.0.2.1#53124" */
    const char *transport; /* "udp" or "tcp" */
    const char *qname;     /* presentation format, "." when there was no question */
    const char *qtype;     /* "A", "TYPE65534" */
    const char *rcode;     /* "NOERROR" */
    unsigned answers;      /* ANCOUNT of the response */
    uint64_t duration_us;
};

/* Parse "error", "warn", "info" or "debug" (case-insensitive).
 * Returns: 0 and *out, DNSD_EINVAL for anything else. */
int log_parse_level(const char *text, enum log_level *out);

/* Set the most verbose level that is written. Loop: main thread, before any loop runs. */
void log_set_level(enum log_level level);

/* Parse "text" or "json" (case-insensitive).
 * Returns: 0 and *out, DNSD_EINVAL for anything else. */
int log_parse_format(const char *text, enum log_format *out);

/* Set the line format (default LOG_FORMAT_TEXT). Loop: main thread, before any loop runs. */
void log_set_format(enum log_format format);

/* Turn the query log on with 1 in sample queries logged (sample 0 or enabled false: off).
 * Loop: main thread, before any loop runs. */
void log_set_query_log(bool enabled, uint32_t sample);

/* Should the query now being answered be logged? Counts the query: true for the first and
 * then every sample-th query, false when the query log is off or info is not enabled.
 * Loop: any thread. */
bool log_query_sampled(void);

/* Write one info line for q, module "query": in text "client=... transport=... qname=...
 * qtype=... rcode=... answers=N duration_us=N"; in JSON the same fields as keys of their
 * own (answers and duration_us as numbers) next to ts, level, module and msg.
 * Loop: any thread. */
void log_query(const struct log_query *q);

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
