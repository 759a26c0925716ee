/* SPDX-License-Identifier: BSD-2-Clause
 * Logging: one line per event on stderr, "2026-11-26T03:45:01.123Z info module: message"
 * or one JSON object per line. Each line is built in a local buffer and written with a
 * single write(2), so lines from different threads never interleave. The level, the format
 * and the query log settings are the only state, set once at start-up. */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dnsd/error.h"

#define LOG_LINE_MAX 4096
/* A JSON line: every message byte may grow to six ("\u001f"), plus the other fields. */
#define LOG_JSON_MAX (LOG_LINE_MAX * 2)

static atomic_int log_level = LOG_LEVEL_INFO;
static atomic_int log_format = LOG_FORMAT_TEXT;
static atomic_uint query_sample = 0; /* 0: query log off */
static atomic_uint query_count = 0;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"text", "json"};

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

int log_parse_format(const char *text, enum log_format *out)
{
    for (int i = LOG_FORMAT_TEXT; text && i <= LOG_FORMAT_JSON; i++) {
        if (strcasecmp(text, format_names[i]) == 0) {
            *out = (enum log_format)i;
            return 0;
        }
    }
    return DNSD_EINVAL;
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void log_set_format(enum log_format format)
{
    atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

void log_set_query_log(bool enabled, uint32_t sample)
{
    atomic_store_explicit(&query_sample, enabled ? sample : 0, memory_order_relaxed);
    atomic_store_explicit(&query_count, 0, memory_order_relaxed);
}

bool log_is_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

bool log_query_sampled(void)
{
    unsigned sample = atomic_load_explicit(&query_sample, memory_order_relaxed);
    if (sample == 0 || !log_is_enabled(LOG_LEVEL_INFO))
        return false;
    return atomic_fetch_add_explicit(&query_count, 1, memory_order_relaxed) % sample == 0;
}

/* A buffer that a line is appended to; full: later appends are dropped. */
struct line {
    char *buf;
    size_t len, cap; /* cap leaves room for the final '\n' */
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 if there is none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0; /* overlong, surrogate or past U+10FFFF (RFC 3629 §4) */
    return len;
}

/* s as a JSON string with its quotes (RFC 8259 §7); bytes that are not UTF-8 become '?'.
 * It stops early (ending in "...") to leave reserve bytes of the line free, or when cut. */
static void put_json_string(struct line *l, const char *s, size_t reserve, bool cut)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t end = l->cap > reserve + 8 ? l->cap - reserve - 8 : 0;
    puts_(l, "\"");
    for (size_t i = 0; i < n; i++) {
        if (l->len + 6 > end) {
            cut = true;
            break;
        }
        char esc[8];
        if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)p[i];
            put(l, esc, 2);
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
            put(l, esc, 6);
        } else if (p[i] < 0x80) {
            put(l, (const char *)p + i, 1);
        } else {
            size_t k = utf8_len(p + i, n - i);
            if (k == 0) {
                puts_(l, "?");
            } else {
                put(l, (const char *)p + i, k);
                i += k - 1;
            }
        }
    }
    puts_(l, cut ? "...\"" : "\"");
}

/* "2026-11-26T03:45:01.123Z" into out (at least 32 bytes). */
static void timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void write_line(char *buf, size_t len)
{
    buf[len++] = '\n';
    ssize_t w;
    do {
        w = write(STDERR_FILENO, buf, len);
    } while (w < 0 && errno == EINTR);
}

/* One event: msg as formatted (may hold control characters), q the query log fields. */
static void emit(enum log_level level, const char *module, const char *msg, bool truncated,
                 const struct log_query *q)
{
    char ts[40];
    timestamp(ts, sizeof(ts));
    module = module ? module : "dnsd";
    if (atomic_load_explicit(&log_format, memory_order_relaxed) == LOG_FORMAT_JSON) {
        char buf[LOG_JSON_MAX];
        struct line l = {buf, 0, sizeof(buf) - 1};
        puts_(&l, "{\"ts\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, level_names[level]);
        puts_(&l, "\",\"module\":");
        put_json_string(&l, module, LOG_JSON_MAX / 2, false);
        puts_(&l, ",\"msg\":");
        /* Keep room for the query fields: the message is what gets cut. */
        put_json_string(&l, msg, q ? 1024 : 2, truncated);
        if (q) {
            char num[64];
            const char *keys[] = {"client", "transport", "qname", "qtype", "rcode"};
            const char *vals[] = {q->client, q->transport, q->qname, q->qtype, q->rcode};
            for (size_t i = 0; i < 5; i++) {
                puts_(&l, ",\"");
                puts_(&l, keys[i]);
                puts_(&l, "\":");
                put_json_string(&l, vals[i] ? vals[i] : "", 64, false);
            }
            snprintf(num, sizeof(num), ",\"answers\":%u,\"duration_us\":%" PRIu64, q->answers,
                     q->duration_us);
            puts_(&l, num);
        }
        puts_(&l, "}");
        write_line(buf, l.len);
        return;
    }

    char line[LOG_LINE_MAX];
    int n = snprintf(line, sizeof(line) - 1, "%s %s %s: ", ts, level_names[level], module);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > sizeof(line) / 2)
        len = sizeof(line) / 2; /* an absurd module name: keep room for the message */
    size_t start = len;
    size_t room = sizeof(line) - 1 - len;
    size_t mlen = strlen(msg);
    if (mlen > room) {
        mlen = room;
        truncated = true;
    }
    memcpy(line + len, msg, mlen);
    len += mlen;
    /* Messages may quote outside input: keep one event on one line. */
    for (size_t i = start; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    if (truncated) {
        len = len >= start + 3 ? len - 3 : start;
        memcpy(line + len, "...", 3);
        len += 3;
    }
    write_line(line, len);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    if ((unsigned)level > LOG_LEVEL_DEBUG || !log_is_enabled(level))
        return;
    int saved_errno = errno; /* callers may log and then inspect errno */
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    emit(level, module, msg, n >= 0 && (size_t)n >= sizeof(msg), NULL);
    errno = saved_errno;
}

void log_query(const struct log_query *q)
{
    if (!log_is_enabled(LOG_LEVEL_INFO))
        return;
    int saved_errno = errno;
    char msg[LOG_LINE_MAX];
    snprintf(msg, sizeof(msg),
             "client=%s transport=%s qname=%s qtype=%s rcode=%s answers=%u duration_us=%" PRIu64,
             q->client ? q->client : "", q->transport ? q->transport : "", q->qname ? q->qname : "",
             q->qtype ? q->qtype : "", q->rcode ? q->rcode : "", q->answers, q->duration_us);
    emit(LOG_LEVEL_INFO, "query", msg, false,
         atomic_load_explicit(&log_format, memory_order_relaxed) == LOG_FORMAT_JSON ? q : NULL);
    errno = saved_errno;
}
