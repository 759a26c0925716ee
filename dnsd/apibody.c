/* SPDX-License-Identifier: BSD-2-Clause
 * The registration API's request bodies, decoded strictly with jansson: a PUT body into a
 * registry instance, and the parts of heartbeat and maintenance bodies. Every rejection
 * names the field at fault and quotes the client's input safely. No registry, no I/O. */
#include "apibody.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "checks.h"
#include "dnsd/duration.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "netlist.h"

static const char *const put_fields[] = {
    "addresses", "port", "proto", "ttl",   "priority",
    "weight",    "tags", "meta",  "check", "deregister_after",
};

static const char *const check_fields[] = {
    "tcp", "http", "interval", "timeout", "success_before_passing", "failures_before_critical",
};

/* Check defaults (health-design.md): probe every 10 s, give up after 2 s. */
#define CHECK_DEFAULT_INTERVAL_MS 10000u
#define CHECK_DEFAULT_TIMEOUT_MS 2000u

/* Copy client text into buf for an error message: printable ASCII kept, other bytes shown
 * as '?', cut at APIBODY_QUOTE_MAX with "...". */
const char *apibody_quote(const char *s, size_t len, char buf[APIBODY_QUOTE_MAX + 4])
{
    size_t n = 0;
    for (; n < len && n < APIBODY_QUOTE_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

void apibody_reject(struct apibody_error *bad, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bad->msg, sizeof(bad->msg), fmt, ap);
    va_end(ap);
    bad->field = field;
}

/* ---- PUT body decoding ---- */

/* An integer member in [lo, hi]; absent leaves *out alone. Returns false when rejected. */
static bool decode_int(json_t *root, const char *name, json_int_t lo, json_int_t hi,
                       json_int_t *out, struct apibody_error *bad)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        apibody_reject(bad, name, "%s: must be an integer from %lld to %lld", name, (long long)lo,
                       (long long)hi);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* Returns: 0, APIBODY_REJECTED (bad filled in), DNSD_ENOMEM. */
static int decode_addresses(json_t *root, struct registry_instance *inst, struct apibody_error *bad)
{
    json_t *arr = json_object_get(root, "addresses");
    char q[APIBODY_QUOTE_MAX + 4];
    if (!arr) {
        apibody_reject(bad, "addresses", "addresses: required");
        return APIBODY_REJECTED;
    }
    if (!json_is_array(arr) || json_array_size(arr) < 1 ||
        json_array_size(arr) > REGISTRY_MAX_ADDRS) {
        apibody_reject(bad, "addresses", "addresses: must be an array of 1 to %d IP addresses",
                       REGISTRY_MAX_ADDRS);
        return APIBODY_REJECTED;
    }
    inst->addrs = calloc(json_array_size(arr), sizeof(*inst->addrs));
    if (!inst->addrs)
        return DNSD_ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        struct registry_addr *a = &inst->addrs[i];
        memset(a, 0, sizeof(*a));
        if (!json_is_string(v)) {
            apibody_reject(bad, "addresses", "addresses[%zu]: must be a string", i);
            return APIBODY_REJECTED;
        }
        const char *s = json_string_value(v);
        if (inet_pton(AF_INET, s, a->bytes) == 1) {
            a->family = AF_INET;
        } else if (inet_pton(AF_INET6, s, a->bytes) == 1) {
            a->family = AF_INET6;
        } else {
            apibody_reject(bad, "addresses",
                           "addresses[%zu]: \"%s\" is not an IPv4 or IPv6 address", i,
                           apibody_quote(s, json_string_length(v), q));
            return APIBODY_REJECTED;
        }
        for (size_t j = 0; j < i; j++) {
            if (inst->addrs[j].family == a->family &&
                memcmp(inst->addrs[j].bytes, a->bytes, a->family == AF_INET ? 4 : 16) == 0) {
                apibody_reject(bad, "addresses", "addresses[%zu]: \"%s\" duplicates addresses[%zu]",
                               i, apibody_quote(s, json_string_length(v), q), j);
                return APIBODY_REJECTED;
            }
        }
        inst->n_addrs = i + 1;
    }
    return 0;
}

/* Are all of inst's addresses inside the allowed networks (issue 6: a compromised service
 * must not point others at an arbitrary host)? */
bool apibody_addresses_allowed(const struct api_config *cfg, const struct registry_instance *inst,
                               struct apibody_error *bad)
{
    if (cfg->n_allowed == 0)
        return true;
    for (size_t i = 0; i < inst->n_addrs; i++) {
        const struct registry_addr *a = &inst->addrs[i];
        if (!netlist_contains_addr(cfg->allowed, cfg->n_allowed, a->family, a->bytes)) {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(a->family, a->bytes, text, sizeof(text));
            apibody_reject(bad, "addresses", "address %s is not in allowed_addresses", text);
            return false;
        }
    }
    return true;
}

static bool decode_proto(json_t *root, struct registry_instance *inst, struct apibody_error *bad)
{
    json_t *v = json_object_get(root, "proto");
    inst->proto = REGISTRY_PROTO_TCP;
    if (!v)
        return true;
    if (json_is_string(v) && strcmp(json_string_value(v), "tcp") == 0)
        return true;
    if (json_is_string(v) && strcmp(json_string_value(v), "udp") == 0) {
        inst->proto = REGISTRY_PROTO_UDP;
        return true;
    }
    apibody_reject(bad, "proto", "proto: must be \"tcp\" or \"udp\"");
    return false;
}

/* Returns: 0, APIBODY_REJECTED, DNSD_ENOMEM. */
static int decode_tags(json_t *root, struct registry_instance *inst, struct apibody_error *bad)
{
    json_t *arr = json_object_get(root, "tags");
    char q[APIBODY_QUOTE_MAX + 4];
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > REGISTRY_MAX_TAGS) {
        apibody_reject(bad, "tags", "tags: must be an array of at most %d labels",
                       REGISTRY_MAX_TAGS);
        return APIBODY_REJECTED;
    }
    if (json_array_size(arr) == 0)
        return 0;
    inst->tags = calloc(json_array_size(arr), sizeof(*inst->tags));
    if (!inst->tags)
        return DNSD_ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v)) {
            apibody_reject(bad, "tags", "tags[%zu]: must be a string", i);
            return APIBODY_REJECTED;
        }
        const char *s = json_string_value(v);
        if (!dnsd_label_is_valid(s)) {
            apibody_reject(bad, "tags",
                           "tags[%zu]: \"%s\" is not a label (letters, digits, inner hyphens, 1 to "
                           "63 characters)",
                           i, apibody_quote(s, json_string_length(v), q));
            return APIBODY_REJECTED;
        }
        char *tag = strdup(s);
        if (!tag)
            return DNSD_ENOMEM;
        dnsd_label_lower(tag);
        inst->tags[inst->n_tags++] = tag;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(inst->tags[j], tag) == 0) {
                apibody_reject(bad, "tags", "tags[%zu]: \"%s\" duplicates tags[%zu]", i,
                               apibody_quote(tag, strlen(tag), q), j);
                return APIBODY_REJECTED;
            }
        }
    }
    return 0;
}

/* Returns: 0, APIBODY_REJECTED, DNSD_ENOMEM. */
static int decode_meta(json_t *root, struct registry_instance *inst, struct apibody_error *bad)
{
    json_t *obj = json_object_get(root, "meta");
    char q[APIBODY_QUOTE_MAX + 4], q2[APIBODY_QUOTE_MAX + 4];
    if (!obj)
        return 0;
    if (!json_is_object(obj) || json_object_size(obj) > REGISTRY_MAX_META) {
        apibody_reject(bad, "meta", "meta: must be an object of at most %d string values",
                       REGISTRY_MAX_META);
        return APIBODY_REJECTED;
    }
    if (json_object_size(obj) == 0)
        return 0;
    inst->meta = calloc(json_object_size(obj), sizeof(*inst->meta));
    if (!inst->meta)
        return DNSD_ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!registry_meta_key_is_valid(key)) {
            apibody_reject(
                bad, "meta",
                "meta: key \"%s\" must be 1 to %d printable ASCII characters without '=' "
                "or spaces",
                apibody_quote(key, strlen(key), q), REGISTRY_MAX_META_KEY_LEN);
            return APIBODY_REJECTED;
        }
        if (!json_is_string(v)) {
            apibody_reject(bad, "meta", "meta: value of \"%s\" must be a string", key);
            return APIBODY_REJECTED;
        }
        const char *value = json_string_value(v);
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if (*p < 0x20) {
                apibody_reject(bad, "meta", "meta: value of \"%s\" contains a control character",
                               key);
                return APIBODY_REJECTED;
            }
        }
        /* RFC 6763 §6.1: "key=value" must fit one 255-byte character-string. */
        if (strlen(key) + 1 + strlen(value) > REGISTRY_MAX_TXT_LEN) {
            apibody_reject(bad, "meta", "meta: \"%s=%s\" is longer than %d bytes",
                           apibody_quote(key, strlen(key), q),
                           apibody_quote(value, strlen(value), q2), REGISTRY_MAX_TXT_LEN);
            return APIBODY_REJECTED;
        }
        /* RFC 6763 §6.4: keys are case-insensitive. */
        for (size_t j = 0; j < inst->n_meta; j++) {
            if (strcasecmp(inst->meta[j].key, key) == 0) {
                apibody_reject(bad, "meta",
                               "meta: key \"%s\" duplicates \"%s\" (keys are case-insensitive)",
                               key, inst->meta[j].key);
                return APIBODY_REJECTED;
            }
        }
        struct registry_meta *m = &inst->meta[inst->n_meta];
        m->key = strdup(key);
        m->value = strdup(value);
        if (!m->key || !m->value) {
            free(m->key);
            free(m->value);
            m->key = m->value = NULL;
            return DNSD_ENOMEM;
        }
        inst->n_meta++;
    }
    return 0;
}

/* Reject the first member of obj not named in fields; prefix names the object in the
 * message ("" for the body). The field at fault is field, or the member's own name when
 * field is NULL (bad->field then points into obj, which outlives the reply's rendering). */
bool apibody_only_known(json_t *obj, const char *const *fields, size_t n, const char *prefix,
                        const char *field, struct apibody_error *bad)
{
    char q[APIBODY_QUOTE_MAX + 4];
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < n; i++)
            known = known || strcmp(key, fields[i]) == 0;
        if (!known) {
            apibody_reject(bad, field ? field : key, "%sunknown field \"%s\"", prefix,
                           apibody_quote(key, strlen(key), q));
            return false;
        }
    }
    return true;
}

/* A duration string member of obj in [lo, hi] ms; absent leaves *out alone. name is the
 * member, label its name in messages, field the field reported. */
static bool decode_duration(json_t *obj, const char *name, const char *label, const char *field,
                            uint64_t lo, uint64_t hi, uint64_t *out, struct apibody_error *bad)
{
    json_t *v = json_object_get(obj, name);
    char q[APIBODY_QUOTE_MAX + 4], los[32], his[32];
    uint64_t ms = 0;
    if (!v)
        return true;
    dnsd_duration_format(lo, los, sizeof(los));
    dnsd_duration_format(hi, his, sizeof(his));
    if (!json_is_string(v)) {
        apibody_reject(bad, field, "%s: must be a duration string such as \"10s\" or \"500ms\"",
                       label);
        return false;
    }
    int err = dnsd_duration_parse(json_string_value(v), &ms);
    if (err == DNSD_EINVAL) {
        apibody_reject(bad, field,
                       "%s: \"%s\" is not a duration (an integer and a unit: ms, s, m or h, "
                       "e.g. \"10s\")",
                       label, apibody_quote(json_string_value(v), json_string_length(v), q));
        return false;
    }
    if (err || ms < lo || ms > hi) {
        apibody_reject(bad, field, "%s: must be from %s to %s", label, los, his);
        return false;
    }
    *out = ms;
    return true;
}

/* A check threshold member in 1..REGISTRY_CHECK_MAX_THRESHOLD; absent leaves *out alone. */
static bool decode_threshold(json_t *check, const char *name, uint16_t *out,
                             struct apibody_error *bad)
{
    json_t *v = json_object_get(check, name);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > REGISTRY_CHECK_MAX_THRESHOLD) {
        apibody_reject(bad, "check", "check.%s: must be an integer from 1 to %d", name,
                       REGISTRY_CHECK_MAX_THRESHOLD);
        return false;
    }
    *out = (uint16_t)json_integer_value(v);
    return true;
}

/* Is the target's host one of the instance's registered addresses (family and bytes)? */
static bool target_is_own_address(const struct checks_target *t,
                                  const struct registry_instance *inst)
{
    size_t len = t->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < inst->n_addrs; i++) {
        if (inst->addrs[i].family == t->family && memcmp(inst->addrs[i].bytes, t->addr, len) == 0)
            return true;
    }
    return false;
}

/* Decode the "check" member (addresses already decoded) into inst->check, its target in
 * canonical form. A probe may only reach the instance's own addresses (issue 3).
 * Returns: 0, APIBODY_REJECTED, DNSD_ENOMEM. */
static int decode_check(json_t *root, struct registry_instance *inst, struct apibody_error *bad)
{
    json_t *c = json_object_get(root, "check");
    char q[APIBODY_QUOTE_MAX + 4];
    if (!c)
        return 0;
    if (!json_is_object(c)) {
        apibody_reject(bad, "check", "check: must be an object with \"tcp\" or \"http\"");
        return APIBODY_REJECTED;
    }
    if (!apibody_only_known(c, check_fields, sizeof(check_fields) / sizeof(check_fields[0]),
                            "check: ", "check", bad))
        return APIBODY_REJECTED;
    json_t *tcp = json_object_get(c, "tcp"), *http = json_object_get(c, "http");
    if (!tcp == !http) {
        apibody_reject(bad, "check", "check: must have exactly one of \"tcp\" and \"http\"");
        return APIBODY_REJECTED;
    }
    enum checks_kind kind = tcp ? CHECKS_TCP : CHECKS_HTTP;
    const char *kname = tcp ? "tcp" : "http";
    json_t *tv = tcp ? tcp : http;
    if (!json_is_string(tv)) {
        apibody_reject(bad, "check", "check.%s: must be a string", kname);
        return APIBODY_REJECTED;
    }
    const char *text = json_string_value(tv);
    struct checks_target target;
    if (checks_parse_target(kind, text, &target) != 0) {
        apibody_reject(
            bad, "check",
            kind == CHECKS_TCP
                ? "check.tcp: \"%s\" is not HOST:PORT with HOST an IPv4 address or a "
                  "bracketed IPv6 address"
                : "check.http: \"%s\" is not an http://HOST[:PORT][/path] URL with HOST an "
                  "IPv4 address or a bracketed IPv6 address",
            apibody_quote(text, json_string_length(tv), q));
        return APIBODY_REJECTED;
    }
    if (!target_is_own_address(&target, inst)) {
        apibody_reject(
            bad, "check",
            "check.%s: \"%s\" is not one of the instance's addresses; the probe may only "
            "reach the instance's own addresses",
            kname, apibody_quote(text, json_string_length(tv), q));
        return APIBODY_REJECTED;
    }
    uint64_t interval = CHECK_DEFAULT_INTERVAL_MS, timeout;
    if (!decode_duration(c, "interval", "check.interval", "check", REGISTRY_CHECK_MIN_INTERVAL_MS,
                         REGISTRY_CHECK_MAX_INTERVAL_MS, &interval, bad))
        return APIBODY_REJECTED;
    /* A short interval without a timeout gets half the interval, not an error. */
    timeout = interval > CHECK_DEFAULT_TIMEOUT_MS ? CHECK_DEFAULT_TIMEOUT_MS : interval / 2;
    if (!decode_duration(c, "timeout", "check.timeout", "check", 1, REGISTRY_CHECK_MAX_INTERVAL_MS,
                         &timeout, bad))
        return APIBODY_REJECTED;
    if (timeout >= interval) {
        char is[32];
        dnsd_duration_format(interval, is, sizeof(is));
        apibody_reject(bad, "check", "check.timeout: must be shorter than the interval (%s)", is);
        return APIBODY_REJECTED;
    }
    struct registry_check spec = {
        .kind = kind == CHECKS_TCP ? REGISTRY_CHECK_TCP : REGISTRY_CHECK_HTTP,
        .interval_ms = (uint32_t)interval,
        .timeout_ms = (uint32_t)timeout,
        .success_before_passing = 1,
        .failures_before_critical = 1,
    };
    if (!decode_threshold(c, "success_before_passing", &spec.success_before_passing, bad) ||
        !decode_threshold(c, "failures_before_critical", &spec.failures_before_critical, bad))
        return APIBODY_REJECTED;
    char canon[CHECKS_MAX_TARGET + 64];
    if (checks_format_target(kind, &target, canon, sizeof(canon)) != 0) {
        apibody_reject(bad, "check", "check.%s: longer than %d bytes", kname, CHECKS_MAX_TARGET);
        return APIBODY_REJECTED;
    }
    spec.target = strdup(canon);
    if (!spec.target)
        return DNSD_ENOMEM;
    inst->check = spec;
    return 0;
}

/* Decode a PUT body object into inst (service and id already set).
 * Returns: 0, APIBODY_REJECTED (bad filled in), DNSD_ENOMEM. */
int apibody_decode_put(const struct api_config *cfg, json_t *root, struct registry_instance *inst,
                       struct apibody_error *bad)
{
    if (!apibody_only_known(root, put_fields, sizeof(put_fields) / sizeof(put_fields[0]), "", NULL,
                            bad))
        return APIBODY_REJECTED;
    int err = decode_addresses(root, inst, bad);
    if (err)
        return err;

    json_int_t port = 0, ttl = cfg->lease_default_s, priority = 0, weight = 1;
    if (!json_object_get(root, "port")) {
        apibody_reject(bad, "port", "port: required");
        return APIBODY_REJECTED;
    }
    if (!decode_int(root, "port", 1, 65535, &port, bad) || !decode_proto(root, inst, bad) ||
        !decode_int(root, "ttl", 1, INT64_MAX, &ttl, bad) ||
        !decode_int(root, "priority", 0, 65535, &priority, bad) ||
        !decode_int(root, "weight", 0, 65535, &weight, bad))
        return APIBODY_REJECTED;
    /* The granted lease is clamped into the configured range and echoed back. */
    if (ttl < (json_int_t)cfg->lease_min_s)
        ttl = cfg->lease_min_s;
    if (ttl > (json_int_t)cfg->lease_max_s)
        ttl = cfg->lease_max_s;
    inst->port = (uint16_t)port;
    inst->ttl_s = (uint32_t)ttl;
    inst->priority = (uint16_t)priority;
    inst->weight = (uint16_t)weight;

    inst->deregister_after_ms = cfg->deregister_after_default_ms;
    if (!decode_duration(root, "deregister_after", "deregister_after", "deregister_after", 0,
                         DNSD_DURATION_MAX_MS, &inst->deregister_after_ms, bad))
        return APIBODY_REJECTED;

    err = decode_tags(root, inst, bad);
    if (!err)
        err = decode_meta(root, inst, bad);
    if (!err)
        err = decode_check(root, inst, bad);
    return err;
}

/* ---- request bodies ---- */

/* Parse body as a JSON object into *root; an empty (or all-blank) body gives *root = NULL
 * when empty_ok.
 * Returns: 0, APIBODY_REJECTED (bad filled in, field "body"), DNSD_ENOMEM. */
int apibody_load(const char *body, size_t body_len, bool empty_ok, json_t **root,
                 struct apibody_error *bad)
{
    json_error_t jerr;
    if (!body)
        body_len = 0;
    /* body is length-delimited, not NUL-terminated: scan only body_len bytes. */
    size_t blank = 0;
    while (blank < body_len && memchr(" \t\r\n", body[blank], 4))
        blank++;
    if (empty_ok && blank == body_len) {
        *root = NULL;
        return 0;
    }
    json_t *j = json_loadb(body ? body : "", body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return DNSD_ENOMEM;
        apibody_reject(bad, "body", "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                       jerr.column);
        return APIBODY_REJECTED;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        apibody_reject(bad, "body", "body must be a JSON object");
        return APIBODY_REJECTED;
    }
    *root = j;
    return 0;
}

/* A short free text member (heartbeat note, maintenance reason): a string of at most
 * REGISTRY_MAX_NOTE_LEN bytes without control characters; absent leaves *out NULL. */
bool apibody_text(json_t *root, const char *name, const char **out, struct apibody_error *bad)
{
    json_t *v = json_object_get(root, name);
    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v)) {
        apibody_reject(bad, name, "%s: must be a string", name);
        return false;
    }
    if (json_string_length(v) > REGISTRY_MAX_NOTE_LEN) {
        apibody_reject(bad, name, "%s: longer than %d bytes", name, REGISTRY_MAX_NOTE_LEN);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)json_string_value(v); *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            apibody_reject(bad, name, "%s: contains a control character", name);
            return false;
        }
    }
    *out = json_string_value(v);
    return true;
}
