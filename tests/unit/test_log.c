/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for log: level and format parsing, level filtering, the text and JSON line
 * formats (every JSON line parsed back with jansson), the query log and its sampling. stderr
 * is captured by pointing fd 2 at a temporary file for the duration of each write. */
#include "log.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "dnsd/error.h"

static int saved_stderr = -1;
static FILE *capture;

/* Send fd 2 to a fresh temporary file. */
static void capture_start(void)
{
    fflush(stderr);
    capture = tmpfile();
    cr_assert_not_null(capture);
    saved_stderr = dup(STDERR_FILENO);
    cr_assert_geq(saved_stderr, 0);
    cr_assert_geq(dup2(fileno(capture), STDERR_FILENO), 0);
}

/* Restore fd 2 and return what was written (caller frees). */
static char *capture_stop(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    off_t len = lseek(fileno(capture), 0, SEEK_END);
    cr_assert_geq(len, 0);
    char *text = calloc(1, (size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(pread(fileno(capture), text, (size_t)len, 0), len);
    fclose(capture);
    return text;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void reset_level(void)
{
    log_set_level(LOG_LEVEL_INFO);
    log_set_format(LOG_FORMAT_TEXT);
    log_set_query_log(false, 1);
}

/* Parse each line of text as a JSON object; returns an array of them (caller decrefs). */
static json_t *json_lines(const char *text)
{
    json_t *arr = json_array();
    cr_assert_not_null(arr);
    while (*text) {
        const char *nl = strchr(text, '\n');
        cr_assert_not_null(nl, "unterminated line: %s", text);
        json_error_t err;
        json_t *obj = json_loadb(text, (size_t)(nl - text), 0, &err);
        cr_assert_not_null(obj, "not JSON (%s): %.*s", err.text, (int)(nl - text), text);
        cr_assert(json_is_object(obj));
        json_array_append_new(arr, obj);
        text = nl + 1;
    }
    return arr;
}

static const char *field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_string(v), "field %s missing or not a string", key);
    return json_string_value(v);
}

TestSuite(log, .init = reset_level);

Test(log, parse_level_accepts_the_four_names)
{
    static const struct {
        const char *text;
        enum log_level level;
    } cases[] = {
        {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},   {"info", LOG_LEVEL_INFO},
        {"debug", LOG_LEVEL_DEBUG}, {"DEBUG", LOG_LEVEL_DEBUG}, {"Warn", LOG_LEVEL_WARN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum log_level level = (enum log_level)99;
        cr_assert_eq(log_parse_level(cases[i].text, &level), 0, "%s", cases[i].text);
        cr_assert_eq(level, cases[i].level, "%s", cases[i].text);
    }
}

Test(log, parse_level_rejects_other_text)
{
    static const char *const bad[] = {"", "warning", "verbose", "info ", "err", "3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum log_level level = LOG_LEVEL_WARN;
        cr_assert_eq(log_parse_level(bad[i], &level), DNSD_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(level, LOG_LEVEL_WARN, "'%s': out written on failure", bad[i]);
    }
    enum log_level level;
    cr_assert_eq(log_parse_level(NULL, &level), DNSD_EINVAL);
}

/* A suite without the init above: each test runs in a fresh process, so this sees the
 * built-in level. */
Test(log_default, level_is_info)
{
    cr_assert(log_is_enabled(LOG_LEVEL_INFO));
    cr_assert_not(log_is_enabled(LOG_LEVEL_DEBUG));
}

Test(log, set_level_controls_is_enabled)
{
    log_set_level(LOG_LEVEL_ERROR);
    cr_assert(log_is_enabled(LOG_LEVEL_ERROR));
    cr_assert_not(log_is_enabled(LOG_LEVEL_WARN));
    log_set_level(LOG_LEVEL_DEBUG);
    cr_assert(log_is_enabled(LOG_LEVEL_WARN));
    cr_assert(log_is_enabled(LOG_LEVEL_DEBUG));
}

Test(log, messages_above_the_level_are_not_written)
{
    log_set_level(LOG_LEVEL_WARN);
    capture_start();
    log_debug("test", "debug %d", 1);
    log_info("test", "info %d", 2);
    log_warn("test", "warn %d", 3);
    log_error("test", "error %d", 4);
    char *out = capture_stop();

    cr_assert_eq(count_lines(out), 2, "got: %s", out);
    cr_assert_null(strstr(out, "debug 1"));
    cr_assert_null(strstr(out, "info 2"));
    cr_assert_not_null(strstr(out, " warn test: warn 3\n"));
    cr_assert_not_null(strstr(out, " error test: error 4\n"));
    free(out);
}

Test(log, line_has_utc_time_level_module_and_message)
{
    log_set_level(LOG_LEVEL_DEBUG);
    time_t before = time(NULL);
    capture_start();
    log_info("server", "listening on %s:%d", "127.0.0.1", 8053);
    log_debug("api", "x");
    char *out = capture_stop();
    time_t after = time(NULL);

    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                         "info server: listening on 127\\.0\\.0\\.1:8053\n"
                         "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z debug api: x\n$",
                         REG_EXTENDED),
                 0);
    int m = regexec(&re, out, 0, NULL, 0);
    regfree(&re);
    cr_assert_eq(m, 0, "unexpected format: %s", out);

    /* The timestamp is now, in UTC. */
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    cr_assert_not_null(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t stamp = timegm(&tm);
    cr_assert(stamp >= before && stamp <= after, "stamp %lld not in [%lld, %lld]", (long long)stamp,
              (long long)before, (long long)after);
    free(out);
}

Test(log, control_characters_stay_on_one_line)
{
    capture_start();
    log_warn("api", "bad name '%s'", "evil\nforged line\r\x1b[31m");
    char *out = capture_stop();
    cr_assert_eq(count_lines(out), 1, "got: %s", out);
    cr_assert_not_null(strstr(out, "warn api: bad name 'evil?forged line??[31m'\n"));
    free(out);
}

Test(log, long_message_is_truncated_to_one_line)
{
    size_t big = 10000;
    char *msg = malloc(big + 1);
    cr_assert_not_null(msg);
    memset(msg, 'm', big);
    msg[big] = '\0';
    capture_start();
    log_error("test", "%s", msg);
    char *out = capture_stop();
    free(msg);

    size_t len = strlen(out);
    cr_assert_eq(count_lines(out), 1);
    cr_assert_lt(len, 4097);
    cr_assert_gt(len, 4000);
    cr_assert_eq(strcmp(out + len - 5, "m...\n"), 0, "tail: %s", out + len - 5);
    free(out);
}

Test(log, errno_is_preserved)
{
    capture_start();
    errno = ENOENT;
    log_info("test", "keep errno");
    int e = errno;
    char *out = capture_stop();
    cr_assert_eq(e, ENOENT);
    cr_assert_not_null(strstr(out, "keep errno"));
    free(out);
}

Test(log, null_module_is_written_as_dnsd)
{
    capture_start();
    log_info(NULL, "hello");
    char *out = capture_stop();
    cr_assert_not_null(strstr(out, "Z info dnsd: hello\n"), "got: %s", out);
    free(out);
}

Test(log, parse_format_accepts_text_and_json_only)
{
    enum log_format f = LOG_FORMAT_TEXT;
    cr_assert_eq(log_parse_format("json", &f), 0);
    cr_assert_eq(f, LOG_FORMAT_JSON);
    cr_assert_eq(log_parse_format("TEXT", &f), 0);
    cr_assert_eq(f, LOG_FORMAT_TEXT);
    static const char *const bad[] = {"", "jsonl", "plain", "json "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = LOG_FORMAT_JSON;
        cr_assert_eq(log_parse_format(bad[i], &f), DNSD_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(f, LOG_FORMAT_JSON, "'%s': out written on failure", bad[i]);
    }
    cr_assert_eq(log_parse_format(NULL, &f), DNSD_EINVAL);
}

Test(log, json_lines_have_ts_level_module_and_msg)
{
    log_set_format(LOG_FORMAT_JSON);
    log_set_level(LOG_LEVEL_DEBUG);
    time_t before = time(NULL);
    capture_start();
    log_info("registry", "web/%s registered", "w1");
    log_debug("api", "x");
    log_error(NULL, "boom");
    char *out = capture_stop();
    time_t after = time(NULL);

    json_t *lines = json_lines(out);
    cr_assert_eq(json_array_size(lines), 3, "got: %s", out);
    json_t *first = json_array_get(lines, 0);
    cr_assert_eq(json_object_size(first), 4, "got: %s", out);
    cr_assert_str_eq(field(first, "level"), "info");
    cr_assert_str_eq(field(first, "module"), "registry");
    cr_assert_str_eq(field(first, "msg"), "web/w1 registered");
    cr_assert_str_eq(field(json_array_get(lines, 1), "level"), "debug");
    cr_assert_str_eq(field(json_array_get(lines, 1), "module"), "api");
    cr_assert_str_eq(field(json_array_get(lines, 2), "level"), "error");
    cr_assert_str_eq(field(json_array_get(lines, 2), "module"), "dnsd");

    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                         REG_EXTENDED),
                 0);
    int m = regexec(&re, field(first, "ts"), 0, NULL, 0);
    regfree(&re);
    cr_assert_eq(m, 0, "ts: %s", field(first, "ts"));
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    cr_assert_not_null(strptime(field(first, "ts"), "%Y-%m-%dT%H:%M:%S", &tm));
    time_t stamp = timegm(&tm);
    cr_assert(stamp >= before && stamp <= after);
    json_decref(lines);
    free(out);
}

Test(log, json_escapes_quotes_backslashes_and_control_characters)
{
    log_set_format(LOG_FORMAT_JSON);
    const char *nasty = "say \"hi\" \\ path\nforged\r\t\x1b[31m\x7f caf\xc3\xa9";
    capture_start();
    log_warn("api\"x", "%s", nasty);
    char *out = capture_stop();
    cr_assert_eq(count_lines(out), 1, "got: %s", out);
    json_t *lines = json_lines(out);
    cr_assert_str_eq(field(json_array_get(lines, 0), "msg"), nasty);
    cr_assert_str_eq(field(json_array_get(lines, 0), "module"), "api\"x");
    json_decref(lines);
    free(out);
}

Test(log, json_replaces_invalid_utf8)
{
    log_set_format(LOG_FORMAT_JSON);
    capture_start();
    log_info("test", "bad \xff\xc3 end \xed\xa0\x80!");
    char *out = capture_stop();
    json_t *lines = json_lines(out);
    cr_assert_str_eq(field(json_array_get(lines, 0), "msg"), "bad ?"
                                                             "? end ?"
                                                             "?"
                                                             "?!");
    json_decref(lines);
    free(out);
}

Test(log, json_long_message_is_cut_and_still_parses)
{
    log_set_format(LOG_FORMAT_JSON);
    size_t big = 10000;
    char *msg = malloc(big + 1);
    cr_assert_not_null(msg);
    memset(msg, '"', big); /* every byte doubles when escaped */
    msg[big] = '\0';
    capture_start();
    log_error("test", "%s", msg);
    char *out = capture_stop();
    free(msg);
    cr_assert_eq(count_lines(out), 1);
    json_t *lines = json_lines(out);
    const char *got = field(json_array_get(lines, 0), "msg");
    size_t len = strlen(got);
    cr_assert_gt(len, 3000);
    cr_assert_str_eq(got + len - 4, "\"...");
    json_decref(lines);
    free(out);
}

static const struct log_query sample_query = {
    .client = "192.0.2.7#5353",
    .transport = "udp",
    .qname = "web.service.internal.",
    .qtype = "SRV",
    .rcode = "NOERROR",
    .answers = 3,
    .duration_us = 42,
};

Test(log, query_line_in_text)
{
    capture_start();
    log_query(&sample_query);
    char *out = capture_stop();
    cr_assert_not_null(strstr(out, "Z info query: client=192.0.2.7#5353 transport=udp "
                                   "qname=web.service.internal. qtype=SRV rcode=NOERROR "
                                   "answers=3 duration_us=42\n"),
                       "got: %s", out);
    free(out);
}

Test(log, query_line_in_json_has_its_fields)
{
    log_set_format(LOG_FORMAT_JSON);
    capture_start();
    log_query(&sample_query);
    char *out = capture_stop();
    json_t *lines = json_lines(out);
    cr_assert_eq(json_array_size(lines), 1);
    json_t *q = json_array_get(lines, 0);
    cr_assert_str_eq(field(q, "module"), "query");
    cr_assert_str_eq(field(q, "level"), "info");
    cr_assert_str_eq(field(q, "client"), "192.0.2.7#5353");
    cr_assert_str_eq(field(q, "transport"), "udp");
    cr_assert_str_eq(field(q, "qname"), "web.service.internal.");
    cr_assert_str_eq(field(q, "qtype"), "SRV");
    cr_assert_str_eq(field(q, "rcode"), "NOERROR");
    cr_assert_eq(json_integer_value(json_object_get(q, "answers")), 3);
    cr_assert_eq(json_integer_value(json_object_get(q, "duration_us")), 42);
    json_decref(lines);
    free(out);
}

Test(log, query_line_is_not_written_below_info)
{
    log_set_level(LOG_LEVEL_WARN);
    log_set_query_log(true, 1);
    cr_assert_not(log_query_sampled());
    capture_start();
    log_query(&sample_query);
    char *out = capture_stop();
    cr_assert_str_eq(out, "");
    free(out);
}

Test(log, query_log_off_samples_nothing)
{
    for (int i = 0; i < 5; i++)
        cr_assert_not(log_query_sampled());
    log_set_query_log(false, 1);
    cr_assert_not(log_query_sampled());
}

Test(log, query_log_samples_one_in_n)
{
    log_set_query_log(true, 3);
    size_t hits = 0;
    bool first = log_query_sampled();
    hits += first;
    for (int i = 1; i < 30; i++)
        hits += log_query_sampled();
    cr_assert(first, "the first query is logged");
    cr_assert_eq(hits, 10);
    log_set_query_log(true, 1);
    for (int i = 0; i < 4; i++)
        cr_assert(log_query_sampled());
}
