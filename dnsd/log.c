/* SPDX-License-Identifier: BSD-2-Clause
 * Logging: one line per event on stderr, "2026-11-26T03:45:01.123Z info module: message".
 * Each line is built in a local buffer and written with a single write(2), so lines from
 * different threads never interleave. The level is the only state, set once by main.c. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dnsd/error.h"

#define LOG_LINE_MAX 4096

static atomic_int log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *text, enum log_level *out)
{
    for (int i = LOG_LEVEL_ERROR; text && i <= LOG_LEVEL_DEBUG; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return DNSD_EINVAL;
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

bool log_is_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    if ((unsigned)level > LOG_LEVEL_DEBUG || !log_is_enabled(level))
        return;
    int saved_errno = errno; /* callers may log and then inspect errno */

    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    len +=
        (size_t)snprintf(line + len, sizeof(line) - len, ".%03ldZ %s %s: ", ts.tv_nsec / 1000000L,
                         level_names[level], module ? module : "dnsd");
    if (len > sizeof(line) / 2)
        len = sizeof(line) / 2; /* an absurd module name: keep room for the message */

    size_t start = len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    bool truncated = (size_t)n >= sizeof(line) - len;
    len = truncated ? sizeof(line) - 1 : len + (size_t)n;
    /* Messages may quote outside input: keep one event on one line. */
    for (size_t i = start; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    if (truncated) {
        len -= 3;
        memcpy(line + len, "...", 3);
        len += 3;
    }
    line[len++] = '\n';

    ssize_t w;
    do {
        w = write(STDERR_FILENO, line, len);
    } while (w < 0 && errno == EINTR);
    errno = saved_errno;
}
