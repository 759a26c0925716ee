/* SPDX-License-Identifier: BSD-2-Clause
 * The registration API: routes one request (method, path, body) to the registry and
 * renders the JSON reply with jansson. A PUT body is decoded strictly and completely before
 * the registry is touched, so a rejected request changes nothing.
 * No sockets, no HTTP library types, no clock: now_ms comes from the caller. */
#include "api.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>

#include "dnsd/error.h"
#include "dnsd/names.h"
#include "registry.h"

struct api {
    struct registry *reg; /* borrowed from the caller; outlives the api */
    struct api_config cfg;
    bool ready;
};

/* Longest piece of client input quoted back in an error message. */
#define QUOTE_MAX 64

/* A rejected request: the field at fault (NULL for none) and a message. */
struct bad {
    const char *field; /* static, or borrowed from the request for the reply's rendering */
    char msg[512];
};

/* decode_put's result when the body was rejected (bad is filled in). */
#define DECODE_REJECTED 1

static const char *const put_fields[] = {
    "addresses", "port", "proto", "ttl", "priority", "weight", "tags", "meta",
};

/* Copy client text into buf for an error message: printable ASCII kept, other bytes shown
 * as '?', cut at QUOTE_MAX with "...". */
static const char *quote(const char *s, size_t len, char buf[QUOTE_MAX + 4])
{
    size_t n = 0;
    for (; n < len && n < QUOTE_MAX; n++) {
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

static void reject(struct bad *bad, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(struct bad *bad, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bad->msg, sizeof(bad->msg), fmt, ap);
    va_end(ap);
    bad->field = field;
}

/* ---- replies ---- */

/* A JSON string for text that may not be valid UTF-8 (a message from the HTTP layer, or a
 * value stored by a caller other than this API); such bytes are shown as '?'. */
static json_t *text_json(const char *s)
{
    json_t *j = json_string(s);
    if (j || !s)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++) {
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    }
    j = json_string(copy);
    free(copy);
    return j;
}

/* Render root (consumed) as the reply body with status. */
static int reply_json(struct api_response *out, int status, json_t *root)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    if (!root)
        return DNSD_ENOMEM;
    size_t len = json_dumpb(root, NULL, 0, flags);
    char *body = len ? malloc(len + 2) : NULL;
    if (!body || json_dumpb(root, body, len, flags) != len) {
        free(body);
        json_decref(root);
        return DNSD_ENOMEM;
    }
    json_decref(root);
    body[len] = '\n';
    body[len + 1] = '\0';
    out->status = status;
    out->body = body;
    out->body_len = len + 1;
    out->allow = NULL;
    return 0;
}

int api_error_response(int status, const char *message, const char *field, struct api_response *out)
{
    json_t *root = json_object();
    if (!root || json_object_set_new(root, "error", text_json(message ? message : "")))
        goto fail;
    if (field && json_object_set_new(root, "field", json_string(field)))
        goto fail;
    struct api_response resp = {0};
    int err = reply_json(&resp, status, root);
    if (err)
        return err;
    *out = resp;
    return 0;
fail:
    json_decref(root);
    return DNSD_ENOMEM;
}

/* Messages quote client input already cut to ASCII, except jansson's parse errors, which
 * may echo raw bytes "near" the error; those become '?' here so the reply stays UTF-8. */
static int reply_bad(struct api_response *out, int status, struct bad *bad)
{
    for (char *p = bad->msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    }
    return api_error_response(status, bad->msg, bad->field, out);
}

void api_response_clear(struct api_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

/* ---- instance JSON ---- */

/* a - b, or 0 when b is later; capped to fit a JSON integer. */
static json_t *ms_json(uint64_t a, uint64_t b)
{
    uint64_t d = a > b ? a - b : 0;
    return json_integer(d > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)d);
}

/* Set key to v (consumed, even on failure) in o.
 * Returns: v, borrowed from o, or NULL when out of memory. */
static json_t *add(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) == 0 ? v : NULL;
}

static json_t *instance_json(const struct registry_instance *inst, uint64_t now_ms)
{
    json_t *o = json_object();
    if (!o || !add(o, "service", json_string(inst->service)) ||
        !add(o, "id", json_string(inst->id)))
        goto fail;
    json_t *addrs = add(o, "addresses", json_array());
    if (!addrs)
        goto fail;
    for (size_t i = 0; i < inst->n_addrs; i++) {
        char buf[INET6_ADDRSTRLEN];
        if (!inet_ntop(inst->addrs[i].family, inst->addrs[i].bytes, buf, sizeof(buf)))
            goto fail;
        if (json_array_append_new(addrs, json_string(buf)))
            goto fail;
    }
    if (!add(o, "port", json_integer(inst->port)) ||
        !add(o, "proto", json_string(inst->proto == REGISTRY_PROTO_UDP ? "udp" : "tcp")) ||
        !add(o, "priority", json_integer(inst->priority)) ||
        !add(o, "weight", json_integer(inst->weight)))
        goto fail;
    json_t *tags = add(o, "tags", json_array());
    if (!tags)
        goto fail;
    for (size_t i = 0; i < inst->n_tags; i++) {
        if (json_array_append_new(tags, json_string(inst->tags[i])))
            goto fail;
    }
    json_t *meta = add(o, "meta", json_object());
    if (!meta)
        goto fail;
    for (size_t i = 0; i < inst->n_meta; i++) {
        if (!add(meta, inst->meta[i].key, text_json(inst->meta[i].value)))
            goto fail;
    }
    if (!add(o, "ttl", json_integer(inst->ttl_s)) || !add(o, "health", json_string("passing")) ||
        !add(o, "lease_remaining_ms", ms_json(inst->expires_ms, now_ms)) ||
        !add(o, "last_heartbeat_ms_ago", ms_json(now_ms, inst->heartbeat_ms)) ||
        !add(o, "registered_ms_ago", ms_json(now_ms, inst->registered_ms)))
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ---- PUT body decoding ---- */

/* An integer member in [lo, hi]; absent leaves *out alone. Returns false when rejected. */
static bool decode_int(json_t *root, const char *name, json_int_t lo, json_int_t hi,
                       json_int_t *out, struct bad *bad)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        reject(bad, name, "%s: must be an integer from %lld to %lld", name, (long long)lo,
               (long long)hi);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool decode_addresses(json_t *root, struct registry_instance *inst, struct bad *bad)
{
    json_t *arr = json_object_get(root, "addresses");
    char q[QUOTE_MAX + 4];
    if (!arr) {
        reject(bad, "addresses", "addresses: required");
        return false;
    }
    if (!json_is_array(arr) || json_array_size(arr) < 1 ||
        json_array_size(arr) > REGISTRY_MAX_ADDRS) {
        reject(bad, "addresses", "addresses: must be an array of 1 to %d IP addresses",
               REGISTRY_MAX_ADDRS);
        return false;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        struct registry_addr *a = &inst->addrs[i];
        memset(a, 0, sizeof(*a));
        if (!json_is_string(v)) {
            reject(bad, "addresses", "addresses[%zu]: must be a string", i);
            return false;
        }
        const char *s = json_string_value(v);
        if (inet_pton(AF_INET, s, a->bytes) == 1) {
            a->family = AF_INET;
        } else if (inet_pton(AF_INET6, s, a->bytes) == 1) {
            a->family = AF_INET6;
        } else {
            reject(bad, "addresses", "addresses[%zu]: \"%s\" is not an IPv4 or IPv6 address", i,
                   quote(s, json_string_length(v), q));
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (inst->addrs[j].family == a->family &&
                memcmp(inst->addrs[j].bytes, a->bytes, a->family == AF_INET ? 4 : 16) == 0) {
                reject(bad, "addresses", "addresses[%zu]: \"%s\" duplicates addresses[%zu]", i,
                       quote(s, json_string_length(v), q), j);
                return false;
            }
        }
        inst->n_addrs = i + 1;
    }
    return true;
}

static bool decode_proto(json_t *root, struct registry_instance *inst, struct bad *bad)
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
    reject(bad, "proto", "proto: must be \"tcp\" or \"udp\"");
    return false;
}

/* Returns: 0, DECODE_REJECTED, DNSD_ENOMEM. */
static int decode_tags(json_t *root, struct registry_instance *inst, struct bad *bad)
{
    json_t *arr = json_object_get(root, "tags");
    char q[QUOTE_MAX + 4];
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > REGISTRY_MAX_TAGS) {
        reject(bad, "tags", "tags: must be an array of at most %d labels", REGISTRY_MAX_TAGS);
        return DECODE_REJECTED;
    }
    if (json_array_size(arr) == 0)
        return 0;
    inst->tags = calloc(json_array_size(arr), sizeof(*inst->tags));
    if (!inst->tags)
        return DNSD_ENOMEM;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v)) {
            reject(bad, "tags", "tags[%zu]: must be a string", i);
            return DECODE_REJECTED;
        }
        const char *s = json_string_value(v);
        if (!dnsd_label_is_valid(s)) {
            reject(bad, "tags",
                   "tags[%zu]: \"%s\" is not a label (letters, digits, inner hyphens, 1 to "
                   "63 characters)",
                   i, quote(s, json_string_length(v), q));
            return DECODE_REJECTED;
        }
        char *tag = strdup(s);
        if (!tag)
            return DNSD_ENOMEM;
        dnsd_label_lower(tag);
        inst->tags[inst->n_tags++] = tag;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(inst->tags[j], tag) == 0) {
                reject(bad, "tags", "tags[%zu]: \"%s\" duplicates tags[%zu]", i,
                       quote(tag, strlen(tag), q), j);
                return DECODE_REJECTED;
            }
        }
    }
    return 0;
}

/* RFC 6763 §6.4: printable US-ASCII without '=' (we also exclude space). */
static bool meta_key_ok(const char *key)
{
    size_t len = strlen(key);
    if (len < 1 || len > REGISTRY_MAX_META_KEY_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e || c == '=')
            return false;
    }
    return true;
}

/* Returns: 0, DECODE_REJECTED, DNSD_ENOMEM. */
static int decode_meta(json_t *root, struct registry_instance *inst, struct bad *bad)
{
    json_t *obj = json_object_get(root, "meta");
    char q[QUOTE_MAX + 4], q2[QUOTE_MAX + 4];
    if (!obj)
        return 0;
    if (!json_is_object(obj) || json_object_size(obj) > REGISTRY_MAX_META) {
        reject(bad, "meta", "meta: must be an object of at most %d string values",
               REGISTRY_MAX_META);
        return DECODE_REJECTED;
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
        if (!meta_key_ok(key)) {
            reject(bad, "meta",
                   "meta: key \"%s\" must be 1 to %d printable ASCII characters without '=' "
                   "or spaces",
                   quote(key, strlen(key), q), REGISTRY_MAX_META_KEY_LEN);
            return DECODE_REJECTED;
        }
        if (!json_is_string(v)) {
            reject(bad, "meta", "meta: value of \"%s\" must be a string", key);
            return DECODE_REJECTED;
        }
        const char *value = json_string_value(v);
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if (*p < 0x20) {
                reject(bad, "meta", "meta: value of \"%s\" contains a control character", key);
                return DECODE_REJECTED;
            }
        }
        /* RFC 6763 §6.1: "key=value" must fit one 255-byte character-string. */
        if (strlen(key) + 1 + strlen(value) > REGISTRY_MAX_TXT_LEN) {
            reject(bad, "meta", "meta: \"%s=%s\" is longer than %d bytes",
                   quote(key, strlen(key), q), quote(value, strlen(value), q2),
                   REGISTRY_MAX_TXT_LEN);
            return DECODE_REJECTED;
        }
        /* RFC 6763 §6.4: keys are case-insensitive. */
        for (size_t j = 0; j < inst->n_meta; j++) {
            if (strcasecmp(inst->meta[j].key, key) == 0) {
                reject(bad, "meta",
                       "meta: key \"%s\" duplicates \"%s\" (keys are case-insensitive)", key,
                       inst->meta[j].key);
                return DECODE_REJECTED;
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

/* Decode a PUT body object into inst (service and id already set).
 * Returns: 0, DECODE_REJECTED (bad filled in), DNSD_ENOMEM. */
static int decode_put(const struct api *api, json_t *root, struct registry_instance *inst,
                      struct bad *bad)
{
    char q[QUOTE_MAX + 4];
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(put_fields) / sizeof(put_fields[0]); i++)
            known = known || strcmp(key, put_fields[i]) == 0;
        if (!known) {
            /* bad->field points into root, which outlives the reply's rendering. */
            reject(bad, key, "unknown field \"%s\"", quote(key, strlen(key), q));
            return DECODE_REJECTED;
        }
    }
    if (!decode_addresses(root, inst, bad))
        return DECODE_REJECTED;

    json_int_t port = 0, ttl = api->cfg.lease_default_s, priority = 0, weight = 1;
    if (!json_object_get(root, "port")) {
        reject(bad, "port", "port: required");
        return DECODE_REJECTED;
    }
    if (!decode_int(root, "port", 1, 65535, &port, bad) || !decode_proto(root, inst, bad) ||
        !decode_int(root, "ttl", 1, INT64_MAX, &ttl, bad) ||
        !decode_int(root, "priority", 0, 65535, &priority, bad) ||
        !decode_int(root, "weight", 0, 65535, &weight, bad))
        return DECODE_REJECTED;
    /* The granted lease is clamped into the configured range and echoed back. */
    if (ttl < (json_int_t)api->cfg.lease_min_s)
        ttl = api->cfg.lease_min_s;
    if (ttl > (json_int_t)api->cfg.lease_max_s)
        ttl = api->cfg.lease_max_s;
    inst->port = (uint16_t)port;
    inst->ttl_s = (uint32_t)ttl;
    inst->priority = (uint16_t)priority;
    inst->weight = (uint16_t)weight;

    int err = decode_tags(root, inst, bad);
    if (err)
        return err;
    return decode_meta(root, inst, bad);
}

/* ---- handlers ---- */

/* Set inst's lease state as registry_put or registry_renew at now_ms will. */
static void renewed(struct registry_instance *inst, uint64_t now_ms)
{
    uint64_t len = (uint64_t)inst->ttl_s * 1000u;
    inst->heartbeat_ms = now_ms;
    inst->expires_ms = now_ms > UINT64_MAX - len ? UINT64_MAX : now_ms + len;
}

static int handle_put(struct api *api, const char *service, const char *id, const char *body,
                      size_t body_len, uint64_t now_ms, struct api_response *out)
{
    struct registry_instance inst = {0};
    struct bad bad = {0};
    json_error_t jerr;
    int err = 0;
    json_t *root = json_loadb(body ? body : "", body ? body_len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return DNSD_ENOMEM;
        reject(&bad, "body", "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
               jerr.column);
        return reply_bad(out, 400, &bad);
    }
    if (!json_is_object(root)) {
        reject(&bad, "body", "body must be a JSON object");
        err = reply_bad(out, 400, &bad);
        goto done;
    }
    inst.service = strdup(service);
    inst.id = strdup(id);
    if (!inst.service || !inst.id) {
        err = DNSD_ENOMEM;
        goto done;
    }
    err = decode_put(api, root, &inst, &bad);
    if (err == DECODE_REJECTED) {
        err = reply_bad(out, 400, &bad);
        goto done;
    }
    if (err)
        goto done;

    /* Render the reply from what will be stored before storing it, so that no failure can
     * come after the registry has changed. */
    const struct registry_instance *old = registry_find_instance(api->reg, service, id);
    inst.registered_ms = old ? old->registered_ms : now_ms;
    renewed(&inst, now_ms);
    struct api_response ok = {0};
    err = reply_json(&ok, old ? 200 : 201, instance_json(&inst, now_ms));
    if (err)
        goto done;
    const char *field = NULL;
    err = registry_put(api->reg, &inst, now_ms, &field);
    if (err) {
        api_response_clear(&ok);
        if (err == DNSD_EINVAL) {
            reject(&bad, field, "invalid %s", field ? field : "instance");
            err = reply_bad(out, 400, &bad);
        }
        goto done;
    }
    *out = ok;
done:
    registry_instance_clear(&inst);
    json_decref(root);
    return err;
}

static int not_registered(const char *service, const char *id, struct api_response *out)
{
    struct bad bad;
    reject(&bad, "id", "instance %s/%s is not registered", service, id);
    return reply_bad(out, 404, &bad);
}

static int handle_delete(struct api *api, const char *service, const char *id,
                         struct api_response *out)
{
    if (!registry_find_instance(api->reg, service, id))
        return not_registered(service, id, out);
    int err = reply_json(
        out, 200, json_pack("{s:s, s:s, s:b}", "service", service, "id", id, "deregistered", 1));
    if (!err)
        err = registry_remove(api->reg, service, id);
    return err;
}

static int handle_heartbeat(struct api *api, const char *service, const char *id, uint64_t now_ms,
                            struct api_response *out)
{
    const struct registry_instance *inst = registry_find_instance(api->reg, service, id);
    if (!inst)
        return not_registered(service, id, out);
    struct registry_instance after = *inst; /* shallow: borrows inst's strings */
    renewed(&after, now_ms);
    int err = reply_json(out, 200, instance_json(&after, now_ms));
    if (!err)
        err = registry_renew(api->reg, service, id, now_ms);
    return err;
}

static int handle_get_service(struct api *api, const char *service, uint64_t now_ms,
                              struct api_response *out)
{
    json_t *list = json_array();
    if (!list)
        return DNSD_ENOMEM;
    const struct registry_service *svc = registry_find_service(api->reg, service);
    size_t n = svc ? registry_service_instance_count(svc) : 0;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(list, instance_json(registry_service_instance(svc, i), now_ms))) {
            json_decref(list);
            return DNSD_ENOMEM;
        }
    }
    return reply_json(out, 200, json_pack("{s:s, s:o}", "service", service, "instances", list));
}

/* foreach visitor: append {"name": ..., "instances": N}; stops (and drops the list) on OOM. */
static bool add_service(const struct registry_service *svc, void *user)
{
    json_t **list = user;
    json_t *item = json_pack("{s:s, s:I}", "name", registry_service_name(svc), "instances",
                             (json_int_t)registry_service_instance_count(svc));
    if (json_array_append_new(*list, item) == 0)
        return true;
    json_decref(*list);
    *list = NULL;
    return false;
}

static int handle_list_services(struct api *api, struct api_response *out)
{
    json_t *list = json_array();
    if (!list)
        return DNSD_ENOMEM;
    registry_foreach_service(api->reg, add_service, &list);
    if (!list)
        return DNSD_ENOMEM;
    return reply_json(out, 200, json_pack("{s:o}", "services", list));
}

static int handle_health(struct api *api, struct api_response *out)
{
    if (!api->ready)
        return reply_json(out, 503, json_pack("{s:s}", "status", "starting"));
    return reply_json(out, 200,
                      json_pack("{s:s, s:I, s:I}", "status", "ok", "services",
                                (json_int_t)registry_service_count(api->reg), "instances",
                                (json_int_t)registry_instance_count(api->reg)));
}

/* ---- routing ---- */

#define MAX_SEGMENTS 6

struct route {
    const char *seg[MAX_SEGMENTS]; /* borrowed from the path copy */
    size_t n;
};

/* Split path (a writable copy without the query string) on '/'; false if it does not start
 * with '/' or has too many segments to be any route. Empty segments are kept. */
static bool split_path(char *path, struct route *r)
{
    if (path[0] != '/')
        return false;
    r->n = 0;
    char *p = path + 1;
    for (;;) {
        if (r->n == MAX_SEGMENTS)
            return false;
        r->seg[r->n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            return true;
        *slash = '\0';
        p = slash + 1;
    }
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Lower-case seg into buf as a service name or instance id.
 * Returns: true when it is a valid label; otherwise fills bad. */
static bool path_label(const char *seg, const char *field, char buf[DNSD_LABEL_MAX + 1],
                       struct bad *bad)
{
    char q[QUOTE_MAX + 4];
    size_t len = strlen(seg);
    if (len >= 1 && len <= DNSD_LABEL_MAX) {
        memcpy(buf, seg, len + 1);
        dnsd_label_lower(buf);
        if (dnsd_label_is_valid(buf))
            return true;
    }
    reject(bad, field,
           "%s: \"%s\" is not a label (letters, digits, inner hyphens, 1 to 63 characters)", field,
           quote(seg, len, q));
    return false;
}

static int method_not_allowed(const char *method, const char *path, const char *allow,
                              struct api_response *out)
{
    char q[QUOTE_MAX + 4], q2[QUOTE_MAX + 4];
    struct bad bad;
    reject(&bad, NULL, "method %s is not allowed on %s (allowed: %s)",
           quote(method, strlen(method), q), quote(path, strlen(path), q2), allow);
    int err = reply_bad(out, 405, &bad);
    if (!err)
        out->allow = allow;
    return err;
}

static int dispatch(struct api *api, const char *method, const char *path, char *segs_buf,
                    const char *body, size_t body_len, uint64_t now_ms, struct api_response *out)
{
    struct route r;
    struct bad bad;
    char service[DNSD_LABEL_MAX + 1], id[DNSD_LABEL_MAX + 1];
    /* RFC 9110 §9.3.2: HEAD is GET without the body (which the HTTP layer drops). */
    bool is_get = is(method, "GET") || is(method, "HEAD"), is_put = is(method, "PUT");

    if (!split_path(segs_buf, &r) || !is(r.seg[0], "v1"))
        goto not_found;
    if (r.n == 2 && is(r.seg[1], "health")) {
        if (!is_get)
            return method_not_allowed(method, path, "GET, HEAD", out);
        return handle_health(api, out);
    }
    if (r.n < 2 || !is(r.seg[1], "services"))
        goto not_found;
    if (r.n == 2) {
        if (!is_get)
            return method_not_allowed(method, path, "GET, HEAD", out);
        return handle_list_services(api, out);
    }
    if (r.n == 3) {
        if (!is_get)
            return method_not_allowed(method, path, "GET, HEAD", out);
        if (!path_label(r.seg[2], "service", service, &bad))
            return reply_bad(out, 400, &bad);
        return handle_get_service(api, service, now_ms, out);
    }
    if (!is(r.seg[3], "instances") || r.n == 4)
        goto not_found;
    if (r.n == 5) {
        if (!is_put && !is(method, "DELETE"))
            return method_not_allowed(method, path, "PUT, DELETE", out);
    } else if (is(r.seg[5], "heartbeat")) {
        if (!is_put)
            return method_not_allowed(method, path, "PUT", out);
    } else {
        goto not_found;
    }
    if (!path_label(r.seg[2], "service", service, &bad) || !path_label(r.seg[4], "id", id, &bad))
        return reply_bad(out, 400, &bad);
    if (r.n == 6)
        return handle_heartbeat(api, service, id, now_ms, out);
    if (is_put)
        return handle_put(api, service, id, body, body_len, now_ms, out);
    return handle_delete(api, service, id, out);

not_found:;
    char q[QUOTE_MAX + 4];
    reject(&bad, NULL, "no such endpoint: %s", quote(path, strlen(path), q));
    return reply_bad(out, 404, &bad);
}

int api_handle(struct api *api, const char *method, const char *path, const char *body,
               size_t body_len, uint64_t now_ms, struct api_response *out)
{
    struct api_response resp = {0};
    if (!method)
        method = "";
    if (!path)
        path = "";
    /* The query string is not part of any route. */
    char *clean = strndup(path, strcspn(path, "?"));
    char *segs = clean ? strdup(clean) : NULL;
    int err = DNSD_ENOMEM;
    if (segs)
        err = dispatch(api, method, clean, segs, body, body_len, now_ms, &resp);
    free(clean);
    free(segs);
    if (err) {
        api_response_clear(&resp);
        return err;
    }
    *out = resp;
    return 0;
}

/* ---- lifecycle ---- */

struct api *api_new(struct registry *reg, const struct api_config *cfg)
{
    struct api *api = calloc(1, sizeof(*api));
    if (!api)
        return NULL;
    api->reg = reg;
    api->cfg = *cfg;
    return api;
}

void api_free(struct api *api)
{
    free(api);
}

void api_set_ready(struct api *api, bool ready)
{
    api->ready = ready;
}
