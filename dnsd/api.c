/* SPDX-License-Identifier: BSD-2-Clause
 * The registration API: routes one request (method, path, body) to the registry and
 * renders the JSON reply with jansson. A body is decoded strictly and completely
 * (apibody.c), and the reply rendered, before the registry is touched, so a rejected or
 * failed request changes nothing. Watches are decided here but parked by the HTTP layer.
 * No sockets, no HTTP library types, no clock: now_ms comes from the caller. */
#include "api.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>

#include "apibody.h"
#include "dnsd/duration.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "registry.h"

static const char *const heartbeat_fields[] = {"status", "note"};

static const char *const maintenance_fields[] = {"enabled", "reason"};

/* Reason of a check that has not reported yet, and of maintenance without a reason. */
#define REASON_CHECK_PENDING "check: awaiting first result"
#define REASON_MAINTENANCE "maintenance mode"

struct api {
    struct registry *reg; /* borrowed from the caller; outlives the api */
    struct api_config cfg;
    bool ready;
    struct api_persistence persist; /* all NULL: memory only */
};

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
static int reply_bad(struct api_response *out, int status, struct apibody_error *bad)
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

/* A JSON string, or null when s is NULL. */
static json_t *text_or_null(const char *s)
{
    return s ? text_json(s) : json_null();
}

static const char *check_kind_name(enum registry_check_kind kind)
{
    return kind == REGISTRY_CHECK_HTTP ? "http" : "tcp";
}

static json_t *duration_json(uint64_t ms)
{
    char buf[32];
    dnsd_duration_format(ms, buf, sizeof(buf));
    return json_string(buf);
}

/* The "check" member: the spec in its canonical form plus the check's own state. */
static json_t *check_json(const struct registry_instance *inst, uint64_t now_ms)
{
    const struct registry_check *c = &inst->check;
    json_t *o = json_object();
    const char *status =
        inst->check_pending ? "pending" : registry_health_name(inst->check_verdict);
    if (!o || !add(o, check_kind_name(c->kind), text_json(c->target)) ||
        !add(o, "interval", duration_json(c->interval_ms)) ||
        !add(o, "timeout", duration_json(c->timeout_ms)) ||
        !add(o, "success_before_passing", json_integer(c->success_before_passing)) ||
        !add(o, "failures_before_critical", json_integer(c->failures_before_critical)) ||
        !add(o, "status", json_string(status)) ||
        !add(o, "output", text_or_null(inst->check_pending ? NULL : inst->check_output)) ||
        !add(o, "last_run_ms_ago",
             inst->check_pending ? json_null() : ms_json(now_ms, inst->check_last_ms))) {
        json_decref(o);
        return NULL;
    }
    return o;
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
    const char *mreason = inst->maintenance_reason;
    if (!add(o, "ttl", json_integer(inst->ttl_s)) ||
        !add(o, "health", json_string(registry_health_name(inst->health))) ||
        !add(o, "reason", text_json(inst->reason ? inst->reason : "")) ||
        !add(o, "status", json_string(registry_health_name(inst->reported))) ||
        !add(o, "note", text_or_null(inst->note)) ||
        !add(o, "maintenance",
             json_pack("{s:b, s:o}", "enabled", inst->maintenance, "reason",
                       text_or_null(inst->maintenance && mreason && *mreason ? mreason : NULL))))
        goto fail;
    if (inst->check.kind != REGISTRY_CHECK_NONE && !add(o, "check", check_json(inst, now_ms)))
        goto fail;
    bool critical = inst->health == REGISTRY_HEALTH_CRITICAL;
    if (!add(o, "deregister_after", duration_json(inst->deregister_after_ms)) ||
        !add(o, "critical_for_ms",
             critical ? ms_json(now_ms, inst->critical_since_ms) : json_integer(0)) ||
        !add(o, "lease_remaining_ms", ms_json(inst->expires_ms, now_ms)) ||
        !add(o, "last_heartbeat_ms_ago", ms_json(now_ms, inst->heartbeat_ms)) ||
        !add(o, "registered_ms_ago", ms_json(now_ms, inst->registered_ms)))
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ---- predicted state ---- */

/* Longest text kept in a prediction: a note, reason or output with a prefix. */
#define PRED_TEXT_MAX (REGISTRY_MAX_NOTE_LEN + 64)

/* An instance as the registry will hold it after a mutation, computed before the mutation
 * so the reply can be rendered while failing is still harmless. inst's spec fields borrow
 * from the request or from the old instance and are read only before the mutation; its
 * state strings point into the buffers below, so they stay valid after it. */
struct prediction {
    struct registry_instance inst;
    char reason[PRED_TEXT_MAX];
    char note[PRED_TEXT_MAX];
    char mreason[PRED_TEXT_MAX];
    char output[PRED_TEXT_MAX];
};

/* Copy s (may be NULL) into buf, cut to PRED_TEXT_MAX - 1 bytes. Returns: buf or NULL. */
static char *keep(char buf[PRED_TEXT_MAX], const char *s)
{
    if (!s)
        return NULL;
    snprintf(buf, PRED_TEXT_MAX, "%s", s);
    return buf;
}

/* Set inst's lease state as registry_put or registry_heartbeat at now_ms will. */
static void renewed(struct registry_instance *inst, uint64_t now_ms)
{
    uint64_t len = (uint64_t)inst->ttl_s * 1000u;
    inst->heartbeat_ms = now_ms;
    inst->expires_ms = now_ms > UINT64_MAX - len ? UINT64_MAX : now_ms + len;
}

/* The reason a check gives: old's own when it showed one (it may carry threshold progress,
 * "check: HTTP 500 (failed 1 of 3)"), else rebuilt from the last output. */
static void check_reason(struct prediction *p, const struct registry_instance *old, char *buf)
{
    const struct registry_instance *i = &p->inst;
    if (i->check_pending)
        snprintf(buf, PRED_TEXT_MAX, "%s", REASON_CHECK_PENDING);
    else if (old && !old->check_pending && old->reason && strncmp(old->reason, "check: ", 7) == 0)
        snprintf(buf, PRED_TEXT_MAX, "%s", old->reason);
    else
        snprintf(buf, PRED_TEXT_MAX, "check: %s", i->check_output ? i->check_output : "");
}

/* Effective health and reason from the inputs, as the registry decides them
 * (health-design.md, "Health model"): maintenance, then a lapsed lease, then the worse of
 * the reported status and the check verdict. critical_since_ms carries over while the
 * instance stays critical. */
static void predict_health(struct prediction *p, const struct registry_instance *old, bool lapsed,
                           uint64_t now_ms)
{
    struct registry_instance *i = &p->inst;
    bool has_check = i->check.kind != REGISTRY_CHECK_NONE;
    enum registry_health h, verdict = REGISTRY_HEALTH_PASSING;
    if (has_check)
        verdict = i->check_pending ? REGISTRY_HEALTH_CRITICAL : i->check_verdict;
    if (i->maintenance) {
        h = REGISTRY_HEALTH_MAINTENANCE;
        snprintf(p->reason, sizeof(p->reason), "%s",
                 i->maintenance_reason ? i->maintenance_reason : REASON_MAINTENANCE);
    } else if (lapsed) {
        h = REGISTRY_HEALTH_CRITICAL;
        snprintf(p->reason, sizeof(p->reason), "lease expired");
    } else {
        h = i->reported > verdict ? i->reported : verdict;
        if (i->reported == h && i->note)
            snprintf(p->reason, sizeof(p->reason), "heartbeat: %s", i->note);
        else if (has_check && verdict == h && h != REGISTRY_HEALTH_PASSING)
            check_reason(p, old, p->reason);
        else if (i->reported != REGISTRY_HEALTH_PASSING)
            snprintf(p->reason, sizeof(p->reason), "heartbeat: %s",
                     registry_health_name(i->reported));
        else
            p->reason[0] = '\0';
    }
    i->health = h;
    i->reason = p->reason;
    bool was_critical = old && old->health == REGISTRY_HEALTH_CRITICAL;
    i->critical_since_ms = h != REGISTRY_HEALTH_CRITICAL ? 0
                           : was_critical                ? old->critical_since_ms
                                                         : now_ms;
}

/* Does the registry hold inst's lease as lapsed? Its reason says so, except under
 * maintenance, which hides it: then the deadline decides (self-preservation holds it). */
static bool lease_lapsed(struct api *api, const struct registry_instance *inst, uint64_t now_ms)
{
    if (!inst->maintenance)
        return inst->health == REGISTRY_HEALTH_CRITICAL && inst->reason &&
               strcmp(inst->reason, "lease expired") == 0;
    return inst->expires_ms <= now_ms && !registry_is_preserving(api->reg);
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Does the stored instance have the predicted state? */
static bool same_state(const struct registry_instance *got, const struct registry_instance *want)
{
    bool critical = want->health == REGISTRY_HEALTH_CRITICAL;
    return got->health == want->health && same_text(got->reason, want->reason) &&
           got->reported == want->reported && same_text(got->note, want->note) &&
           got->maintenance == want->maintenance &&
           same_text(got->maintenance_reason, want->maintenance_reason) &&
           got->check_pending == want->check_pending &&
           (want->check_pending || (got->check_verdict == want->check_verdict &&
                                    same_text(got->check_output, want->check_output) &&
                                    got->check_last_ms == want->check_last_ms)) &&
           (!critical || got->critical_since_ms == want->critical_since_ms) &&
           got->registered_ms == want->registered_ms && got->heartbeat_ms == want->heartbeat_ms &&
           got->expires_ms == want->expires_ms;
}

/* After a mutation: if the stored instance differs from the prediction the reply was
 * rendered from, render it again from the stored one; should that run out of memory, the
 * predicted reply stands, since the change is already applied. */
static void settle(struct api *api, const char *service, const char *id,
                   const struct registry_instance *want, uint64_t now_ms,
                   struct api_response *reply)
{
    const struct registry_instance *got = registry_find_instance(api->reg, service, id);
    if (!got || same_state(got, want))
        return;
    struct api_response fresh = {0};
    if (reply_json(&fresh, reply->status, instance_json(got, now_ms)) == 0) {
        api_response_clear(reply);
        *reply = fresh;
    }
}

static bool same_check(const struct registry_check *a, const struct registry_check *b)
{
    return a->kind == b->kind && same_text(a->target, b->target) &&
           a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
           a->success_before_passing == b->success_before_passing &&
           a->failures_before_critical == b->failures_before_critical;
}

/* Copy old's state strings (or clear them) into p's buffers. */
static void keep_state(struct prediction *p, const struct registry_instance *old)
{
    struct registry_instance *i = &p->inst;
    i->note = old ? keep(p->note, old->note) : NULL;
    i->maintenance_reason = old ? keep(p->mreason, old->maintenance_reason) : NULL;
    i->check_output = old ? keep(p->output, old->check_output) : NULL;
}

/* The state registry_put gives inst (see registry.h): a replacement keeps registered_ms,
 * maintenance and, for an unchanged check spec, the check's state. */
static void predict_put(struct prediction *p, const struct registry_instance *inst,
                        const struct registry_instance *old, uint64_t now_ms)
{
    struct registry_instance *i = &p->inst;
    *i = *inst;
    keep_state(p, old);
    i->registered_ms = old ? old->registered_ms : now_ms;
    renewed(i, now_ms);
    i->reported = REGISTRY_HEALTH_PASSING;
    i->note = NULL;
    i->maintenance = old && old->maintenance;
    if (!i->maintenance)
        i->maintenance_reason = NULL;
    if (inst->check.kind != REGISTRY_CHECK_NONE && old && same_check(&old->check, &inst->check)) {
        i->check_pending = old->check_pending;
        i->check_verdict = old->check_verdict;
        i->check_last_ms = old->check_last_ms;
        i->check_successes = old->check_successes;
        i->check_failures = old->check_failures;
    } else {
        i->check_pending = inst->check.kind != REGISTRY_CHECK_NONE;
        i->check_verdict = REGISTRY_HEALTH_PASSING;
        i->check_output = NULL;
        i->check_last_ms = 0;
        i->check_successes = i->check_failures = 0;
    }
    predict_health(p, old, false, now_ms);
}

/* ---- handlers ---- */

/* Reply to a registry refusal of a put. A full service is the caller's own quota, which
 * it can free by deregistering its instances: 429, the status Google's API guide gives
 * RESOURCE_EXHAUSTED quota errors. A full registry is the server's capacity, which no
 * client can fix alone: 503, a condition the operator must resolve (and clients may retry
 * later, as leases expire). Neither names a field: the request itself is valid.
 * Returns: what reply_bad returns, or err when it is no refusal (out of memory). */
static int put_refused(const struct api *api, int err, const char *field, const char *service,
                       struct api_response *out)
{
    const struct registry_options *lim = registry_options(api->reg);
    struct apibody_error bad;
    switch (err) {
    case DNSD_EINVAL:
        apibody_reject(&bad, field, "invalid %s", field ? field : "instance");
        return reply_bad(out, 400, &bad);
    case DNSD_ERANGE:
        apibody_reject(&bad, "meta", "meta: its \"key=value\" strings exceed %zu bytes in all",
                       lim->max_meta_bytes);
        return reply_bad(out, 400, &bad);
    case DNSD_ENOSPC:
        if (field) {
            apibody_reject(&bad, NULL, "service %s is full: at most %zu instances per service",
                           service, lim->max_instances_per_service);
            return reply_bad(out, 429, &bad);
        }
        apibody_reject(&bad, NULL, "registry full: at most %zu instances", lim->max_instances);
        return reply_bad(out, 503, &bad);
    default:
        return err;
    }
}

static int handle_put(struct api *api, const char *service, const char *id, const char *body,
                      size_t body_len, uint64_t now_ms, struct api_response *out)
{
    struct registry_instance inst = {0};
    struct apibody_error bad = {0};
    json_t *root = NULL;
    int err = apibody_load(body, body_len, false, &root, &bad);
    if (err == APIBODY_REJECTED)
        return reply_bad(out, 400, &bad);
    if (err)
        return err;
    inst.service = strdup(service);
    inst.id = strdup(id);
    if (!inst.service || !inst.id) {
        err = DNSD_ENOMEM;
        goto done;
    }
    err = apibody_decode_put(&api->cfg, root, &inst, &bad);
    if (err == APIBODY_REJECTED) {
        err = reply_bad(out, 400, &bad);
        goto done;
    }
    if (err)
        goto done;
    if (!apibody_addresses_allowed(&api->cfg, &inst, &bad)) {
        err = reply_bad(out, 403, &bad);
        goto done;
    }

    /* Render the reply from what will be stored before storing it, so that no failure can
     * come after the registry has changed. */
    const struct registry_instance *old = registry_find_instance(api->reg, service, id);
    struct prediction p;
    predict_put(&p, &inst, old, now_ms);
    struct api_response ok = {0};
    err = reply_json(&ok, old ? 200 : 201, instance_json(&p.inst, now_ms));
    if (err)
        goto done;
    const char *field = NULL;
    err = registry_put(api->reg, &inst, now_ms, &field);
    if (err) {
        api_response_clear(&ok);
        err = put_refused(api, err, field, service, out);
        goto done;
    }
    settle(api, service, id, &p.inst, now_ms, &ok);
    *out = ok;
done:
    registry_instance_clear(&inst);
    json_decref(root);
    return err;
}

static int not_registered(const char *service, const char *id, struct api_response *out)
{
    struct apibody_error bad;
    apibody_reject(&bad, "id", "instance %s/%s is not registered", service, id);
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

/* Reply to a registry refusal of a heartbeat or maintenance change (after decoding, so only
 * a registry rule stricter than ours gets here). Returns: what reply_bad returns, or err. */
static int refused(int err, const char *field, struct api_response *out)
{
    struct apibody_error bad;
    if (err != DNSD_EINVAL)
        return err;
    apibody_reject(&bad, field, "invalid %s", field ? field : "request");
    return reply_bad(out, 400, &bad);
}

/* Body {"status": "passing|warning|critical", "note": "..."}, all optional; an empty body
 * is a plain passing heartbeat. */
static int handle_heartbeat(struct api *api, const char *service, const char *id, const char *body,
                            size_t body_len, uint64_t now_ms, struct api_response *out)
{
    const struct registry_instance *inst = registry_find_instance(api->reg, service, id);
    if (!inst)
        return not_registered(service, id, out);
    struct apibody_error bad = {0};
    json_t *root = NULL;
    int err = apibody_load(body, body_len, true, &root, &bad);
    if (err == APIBODY_REJECTED)
        return reply_bad(out, 400, &bad);
    if (err)
        return err;
    enum registry_health status = REGISTRY_HEALTH_PASSING;
    const char *note = NULL;
    if (root) {
        json_t *sv = json_object_get(root, "status");
        if (!apibody_only_known(root, heartbeat_fields, 2, "", NULL, &bad))
            goto rejected;
        if (sv &&
            (!json_is_string(sv) || registry_health_parse(json_string_value(sv), &status) != 0 ||
             status == REGISTRY_HEALTH_MAINTENANCE)) {
            apibody_reject(&bad, "status",
                           "status: must be \"passing\", \"warning\" or \"critical\"");
            goto rejected;
        }
        if (!apibody_text(root, "note", &note, &bad))
            goto rejected;
    }

    struct prediction p;
    p.inst = *inst;
    keep_state(&p, inst);
    renewed(&p.inst, now_ms);
    p.inst.reported = status;
    p.inst.note = keep(p.note, note);
    predict_health(&p, inst, false, now_ms);
    struct api_response ok = {0};
    err = reply_json(&ok, 200, instance_json(&p.inst, now_ms));
    if (err)
        goto done;
    const char *field = NULL;
    err = registry_heartbeat(api->reg, service, id, status, note, now_ms, &field);
    if (err) {
        api_response_clear(&ok);
        err = refused(err, field, out);
        goto done;
    }
    settle(api, service, id, &p.inst, now_ms, &ok);
    *out = ok;
    goto done;
rejected:
    err = reply_bad(out, 400, &bad);
done:
    json_decref(root);
    return err;
}

/* Body {"enabled": bool, "reason": "..."}; reason is optional and kept only when enabled. */
static int handle_maintenance(struct api *api, const char *service, const char *id,
                              const char *body, size_t body_len, uint64_t now_ms,
                              struct api_response *out)
{
    const struct registry_instance *inst = registry_find_instance(api->reg, service, id);
    if (!inst)
        return not_registered(service, id, out);
    struct apibody_error bad = {0};
    json_t *root = NULL;
    int err = apibody_load(body, body_len, false, &root, &bad);
    if (err == APIBODY_REJECTED)
        return reply_bad(out, 400, &bad);
    if (err)
        return err;
    json_t *ev = json_object_get(root, "enabled");
    const char *reason = NULL;
    if (!apibody_only_known(root, maintenance_fields, 2, "", NULL, &bad) ||
        !apibody_text(root, "reason", &reason, &bad)) {
        err = reply_bad(out, 400, &bad);
        goto done;
    }
    if (!json_is_boolean(ev)) {
        apibody_reject(&bad, "enabled",
                       ev ? "enabled: must be true or false" : "enabled: required");
        err = reply_bad(out, 400, &bad);
        goto done;
    }
    bool enabled = json_is_true(ev);

    struct prediction p;
    p.inst = *inst;
    keep_state(&p, inst);
    p.inst.maintenance = enabled;
    p.inst.maintenance_reason = enabled && reason && *reason ? keep(p.mreason, reason) : NULL;
    predict_health(&p, inst, lease_lapsed(api, inst, now_ms), now_ms);
    struct api_response ok = {0};
    err = reply_json(&ok, 200, instance_json(&p.inst, now_ms));
    if (err)
        goto done;
    const char *field = NULL;
    err = registry_set_maintenance(api->reg, service, id, enabled, reason, now_ms, &field);
    if (err) {
        api_response_clear(&ok);
        err = refused(err, field, out);
        goto done;
    }
    settle(api, service, id, &p.inst, now_ms, &ok);
    *out = ok;
done:
    json_decref(root);
    return err;
}

/* A watch's query: index=N (unsigned decimal) and wait=D (duration, at most
 * API_WATCH_MAX_MS); other keys are ignored. */
struct watch_query {
    bool has_index;
    uint64_t index;
    uint64_t wait_ms;
};

/* Parse the query string (without the '?'; may be NULL).
 * Returns: true, or false with bad filled in (field "index" or "wait"). */
static bool parse_watch_query(const char *query, struct watch_query *w, struct apibody_error *bad)
{
    char q[APIBODY_QUOTE_MAX + 4], maxs[32];
    bool seen_wait = false;
    w->has_index = false;
    w->index = 0;
    w->wait_ms = API_WATCH_DEFAULT_MS;
    for (const char *p = query; p && *p;) {
        size_t len = strcspn(p, "&");
        size_t klen = strcspn(p, "=&");
        const char *val = p + klen + (klen < len);
        size_t vlen = len - (size_t)(val - p);
        bool is_index = klen == 5 && memcmp(p, "index", 5) == 0;
        bool is_wait = klen == 4 && memcmp(p, "wait", 4) == 0;
        if ((is_index && w->has_index) || (is_wait && seen_wait)) {
            apibody_reject(bad, is_index ? "index" : "wait", "%s: given more than once",
                           is_index ? "index" : "wait");
            return false;
        }
        if (is_index) {
            uint64_t n = 0;
            size_t i = 0;
            for (; i < vlen && val[i] >= '0' && val[i] <= '9'; i++) {
                uint64_t d = (uint64_t)(val[i] - '0');
                if (n > (UINT64_MAX - d) / 10)
                    break;
                n = n * 10 + d;
            }
            if (vlen == 0 || i != vlen) {
                apibody_reject(bad, "index", "index: \"%s\" is not an unsigned decimal integer",
                               apibody_quote(val, vlen, q));
                return false;
            }
            w->has_index = true;
            w->index = n;
        } else if (is_wait) {
            char text[32];
            uint64_t ms = 0;
            snprintf(text, sizeof(text), "%.*s", (int)(vlen < 31 ? vlen : 31), val);
            dnsd_duration_format(API_WATCH_MAX_MS, maxs, sizeof(maxs));
            if (vlen > 31 || dnsd_duration_parse(text, &ms) != 0 || ms > API_WATCH_MAX_MS) {
                apibody_reject(bad, "wait", "wait: \"%s\" is not a duration from 0s to %s",
                               apibody_quote(val, vlen, q), maxs);
                return false;
            }
            seen_wait = true;
            w->wait_ms = ms;
        }
        p += len + (p[len] == '&');
    }
    return true;
}

/* GET /v1/services/{service}, possibly a blocking query (Consul style): with index=N it is
 * parked until the service's index passes N, unless flags has API_FINAL. */
static int handle_get_service(struct api *api, const char *service, const char *query,
                              unsigned flags, uint64_t now_ms, struct api_response *out)
{
    struct watch_query w;
    struct apibody_error bad;
    if (!parse_watch_query(query, &w, &bad))
        return reply_bad(out, 400, &bad);
    uint64_t index = registry_service_index(api->reg, service);
    /* An index past the registry's serial comes from an earlier run of dnsd: answer at once
     * so the client learns the current index. */
    bool current = w.has_index && index <= w.index && w.index <= registry_serial(api->reg);
    if (current && w.wait_ms > 0 && !(flags & API_FINAL)) {
        memset(out, 0, sizeof(*out));
        out->has_index = true;
        out->index = index;
        snprintf(out->watch_service, sizeof(out->watch_service), "%s", service);
        out->watch_deadline_ms = now_ms > UINT64_MAX - w.wait_ms ? UINT64_MAX : now_ms + w.wait_ms;
        return 0;
    }
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
    int err = reply_json(out, 200, json_pack("{s:s, s:o}", "service", service, "instances", list));
    if (!err) {
        out->has_index = true;
        out->index = index;
    }
    return err;
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
    int err = reply_json(out, 200, json_pack("{s:o}", "services", list));
    if (!err) {
        out->has_index = true;
        out->index = registry_serial(api->reg);
    }
    return err;
}

/* The "persistence" object of the health report. */
static json_t *persistence_json(struct api *api)
{
    struct api_persist_status st = {.last_snapshot_ms_ago = -1};
    api->persist.status(api->persist.user, &st);
    return json_pack("{s:s, s:s, s:I, s:o, s:o}", "data_dir", st.data_dir ? st.data_dir : "",
                     "fsync", st.fsync ? st.fsync : "", "journal_bytes",
                     (json_int_t)st.journal_bytes, "last_snapshot_ms_ago",
                     st.last_snapshot_ms_ago < 0 ? json_null()
                                                 : json_integer(st.last_snapshot_ms_ago),
                     "last_sync_error", text_or_null(st.last_sync_error));
}

static int handle_health(struct api *api, struct api_response *out)
{
    if (!api->ready)
        return reply_json(out, 503, json_pack("{s:s}", "status", "starting"));
    json_t *root = json_pack("{s:s, s:I, s:I, s:b}", "status", "ok", "services",
                             (json_int_t)registry_service_count(api->reg), "instances",
                             (json_int_t)registry_instance_count(api->reg), "preserving",
                             registry_is_preserving(api->reg));
    if (root && api->persist.status && !add(root, "persistence", persistence_json(api))) {
        json_decref(root);
        root = NULL;
    }
    return reply_json(out, 200, root);
}

/* 503 {"error": "cannot persist: REASON"} (no single field is at fault). */
static int cannot_persist(const char *reason, struct api_response *out)
{
    struct apibody_error bad;
    apibody_reject(&bad, NULL, "cannot persist: %s", reason);
    return reply_bad(out, 503, &bad);
}

static int handle_snapshot(struct api *api, struct api_response *out)
{
    struct apibody_error bad;
    if (!api->persist.snapshot) {
        apibody_reject(&bad, NULL, "persistence is off: dnsd runs without a data_dir");
        return reply_bad(out, 400, &bad);
    }
    char why[256] = "";
    uint64_t gen = 0, count = 0;
    int rc = api->persist.snapshot(api->persist.user, &gen, &count, why, sizeof(why));
    if (rc != 0) {
        apibody_reject(&bad, NULL, "snapshot failed: %s", why[0] ? why : dnsd_strerror(rc));
        return reply_bad(out, 503, &bad);
    }
    return reply_json(out, 200,
                      json_pack("{s:b, s:I, s:I}", "snapshot", 1, "generation", (json_int_t)gen,
                                "instances", (json_int_t)count));
}

/* Run a write handler: refused with 503 while persistence refuses, and journaled once the
 * registry applied it (a 2xx reply). */
static int persisted_write(struct api *api, enum api_write what, const char *service,
                           const char *id, int err, struct api_response *out)
{
    if (err || out->status < 200 || out->status >= 300 || !api->persist.written)
        return err;
    int rc = api->persist.written(api->persist.user, what, service, id);
    if (rc == 1) {
        out->durable_wait = true;
    } else if (rc < 0) {
        /* Applied in memory but not journaled: say so instead of acknowledging it. */
        api_response_clear(out);
        return cannot_persist(dnsd_strerror(rc), out);
    }
    return 0;
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
                       struct apibody_error *bad)
{
    char q[APIBODY_QUOTE_MAX + 4];
    size_t len = strlen(seg);
    if (len >= 1 && len <= DNSD_LABEL_MAX) {
        memcpy(buf, seg, len + 1);
        dnsd_label_lower(buf);
        if (dnsd_label_is_valid(buf))
            return true;
    }
    apibody_reject(bad, field,
                   "%s: \"%s\" is not a label (letters, digits, inner hyphens, 1 to 63 characters)",
                   field, apibody_quote(seg, len, q));
    return false;
}

static int method_not_allowed(const char *method, const char *path, const char *allow,
                              struct api_response *out)
{
    char q[APIBODY_QUOTE_MAX + 4], q2[APIBODY_QUOTE_MAX + 4];
    struct apibody_error bad;
    apibody_reject(&bad, NULL, "method %s is not allowed on %s (allowed: %s)",
                   apibody_quote(method, strlen(method), q), apibody_quote(path, strlen(path), q2),
                   allow);
    int err = reply_bad(out, 405, &bad);
    if (!err)
        out->allow = allow;
    return err;
}

/* One request as api_handle received it; path without its query string. */
struct request {
    const char *method;
    const char *path;
    const char *query; /* after the '?', or NULL */
    const char *body;
    size_t body_len;
    unsigned flags;
    uint64_t now_ms;
};

static int dispatch(struct api *api, const struct request *req, char *segs_buf,
                    struct api_response *out)
{
    const char *method = req->method, *path = req->path, *body = req->body;
    size_t body_len = req->body_len;
    uint64_t now_ms = req->now_ms;
    struct route r;
    struct apibody_error bad;
    char service[DNSD_LABEL_MAX + 1], id[DNSD_LABEL_MAX + 1];
    /* RFC 9110 §9.3.2: HEAD is GET without the body (which the HTTP layer drops). */
    bool is_get = is(method, "GET") || is(method, "HEAD"), is_put = is(method, "PUT");

    if (!split_path(segs_buf, &r) || !is(r.seg[0], "v1"))
        goto not_found;
    if (r.n == 2 && is(r.seg[1], "snapshot")) {
        if (!is(method, "POST") && !is_put)
            return method_not_allowed(method, path, "POST, PUT", out);
        return handle_snapshot(api, out);
    }
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
        return handle_get_service(api, service, req->query, req->flags, now_ms, out);
    }
    if (!is(r.seg[3], "instances") || r.n == 4)
        goto not_found;
    if (r.n == 5) {
        if (!is_put && !is(method, "DELETE"))
            return method_not_allowed(method, path, "PUT, DELETE", out);
    } else if (is(r.seg[5], "heartbeat") || is(r.seg[5], "maintenance")) {
        if (!is_put)
            return method_not_allowed(method, path, "PUT", out);
    } else {
        goto not_found;
    }
    if (!path_label(r.seg[2], "service", service, &bad) || !path_label(r.seg[4], "id", id, &bad))
        return reply_bad(out, 400, &bad);
    const char *refusal = api->persist.refusal ? api->persist.refusal(api->persist.user) : NULL;
    if (refusal)
        return cannot_persist(refusal, out);
    if (r.n == 6 && is(r.seg[5], "heartbeat"))
        return persisted_write(api, API_WRITE_HEARTBEAT, service, id,
                               handle_heartbeat(api, service, id, body, body_len, now_ms, out),
                               out);
    if (r.n == 6)
        return persisted_write(api, API_WRITE_MAINTENANCE, service, id,
                               handle_maintenance(api, service, id, body, body_len, now_ms, out),
                               out);
    if (is_put)
        return persisted_write(api, API_WRITE_PUT, service, id,
                               handle_put(api, service, id, body, body_len, now_ms, out), out);
    return persisted_write(api, API_WRITE_REMOVE, service, id, handle_delete(api, service, id, out),
                           out);

not_found:;
    char q[APIBODY_QUOTE_MAX + 4];
    apibody_reject(&bad, NULL, "no such endpoint: %s", apibody_quote(path, strlen(path), q));
    return reply_bad(out, 404, &bad);
}

int api_handle(struct api *api, const char *method, const char *path, const char *body,
               size_t body_len, unsigned flags, uint64_t now_ms, struct api_response *out)
{
    struct api_response resp = {0};
    if (!method)
        method = "";
    if (!path)
        path = "";
    /* The query string is not part of any route; only a watch reads it. */
    size_t path_len = strcspn(path, "?");
    char *clean = strndup(path, path_len);
    char *segs = clean ? strdup(clean) : NULL;
    struct request req = {
        .method = method,
        .path = clean,
        .query = path[path_len] == '?' ? path + path_len + 1 : NULL,
        .body = body,
        .body_len = body_len,
        .flags = flags,
        .now_ms = now_ms,
    };
    int err = DNSD_ENOMEM;
    if (segs)
        err = dispatch(api, &req, segs, &resp);
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

void api_set_persistence(struct api *api, const struct api_persistence *hooks)
{
    if (hooks)
        api->persist = *hooks;
    else
        memset(&api->persist, 0, sizeof(api->persist));
}

void api_set_ready(struct api *api, bool ready)
{
    api->ready = ready;
}
