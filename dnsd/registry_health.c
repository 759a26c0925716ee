/* SPDX-License-Identifier: BSD-2-Clause
 * The registry's health half: the effective health of each instance from its lease, reported
 * status, active check and maintenance; heartbeats, check results and maintenance; the
 * time-driven changes (lease lapses, removal after deregister_after) and self-preservation,
 * which holds lapsing leases when a large share of the fleet goes silent at once.
 * Storage and the timer heap are in registry.c. No DNS, no I/O, no clock. */
#include "registry.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/error.h"
#include "registry_internal.h"

/* Reasons that need no allocation. */
static const char REASON_NONE[] = "";
static const char REASON_MAINTENANCE[] = "maintenance mode";
static const char REASON_LEASE[] = "lease expired";
static const char REASON_AWAITING[] = "check: awaiting first result";

/* ---- text ---- */

/* Length of the well-formed UTF-8 sequence at p (at most left bytes), or 0 if there is
 * none (RFC 3629 §4: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    if (p[0] < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        if (p[0] == 0xe0)
            lo = 0xa0;
        else if (p[0] == 0xed)
            hi = 0x9f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        if (p[0] == 0xf0)
            lo = 0x90;
        else if (p[0] == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (len > left)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* A heartbeat note or maintenance reason: at most REGISTRY_MAX_NOTE_LEN bytes of UTF-8
 * without control characters. NULL is fine (no note). */
static bool note_valid(const char *note)
{
    if (!note)
        return true;
    size_t len = strlen(note);
    if (len > REGISTRY_MAX_NOTE_LEN)
        return false;
    const unsigned char *p = (const unsigned char *)note;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0 || (n == 1 && is_control(p[i])))
            return false;
        i += n;
    }
    return true;
}

/* Copy text into out (REGISTRY_MAX_NOTE_LEN + 1 bytes) cut to REGISTRY_MAX_NOTE_LEN bytes
 * on a character boundary, with control characters and broken UTF-8 replaced by '?'. */
static void sanitize(const char *text, char *out)
{
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    size_t len = strlen((const char *)p), o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0 || (n == 1 && is_control(p[i]))) {
            if (o + 1 > REGISTRY_MAX_NOTE_LEN)
                break;
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n > REGISTRY_MAX_NOTE_LEN)
            break;
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
}

static const char *const health_names[] = {
    [REGISTRY_HEALTH_PASSING] = "passing",
    [REGISTRY_HEALTH_WARNING] = "warning",
    [REGISTRY_HEALTH_CRITICAL] = "critical",
    [REGISTRY_HEALTH_MAINTENANCE] = "maintenance",
};

const char *registry_health_name(enum registry_health health)
{
    if ((unsigned)health >= sizeof(health_names) / sizeof(health_names[0]))
        return "unknown";
    return health_names[health];
}

int registry_health_parse(const char *text, enum registry_health *out)
{
    if (!text)
        return DNSD_EINVAL;
    for (size_t i = 0; i < sizeof(health_names) / sizeof(health_names[0]); i++) {
        if (strcmp(text, health_names[i]) == 0) {
            *out = (enum registry_health)i;
            return 0;
        }
    }
    return DNSD_EINVAL;
}

/* ---- health ---- */

static enum registry_health worst(enum registry_health a, enum registry_health b)
{
    return a > b ? a : b;
}

/* The effective health of e and the reason for it (health-design.md): maintenance, then a
 * lapsed lease, then the worse of the reported status and the check verdict. */
static void evaluate(const struct entry *e, enum registry_health *health, const char **reason)
{
    const struct registry_instance *in = &e->inst;
    if (in->maintenance) {
        *health = REGISTRY_HEALTH_MAINTENANCE;
        *reason = in->maintenance_reason ? in->maintenance_reason : REASON_MAINTENANCE;
        return;
    }
    if (e->lease == LEASE_LAPSED) {
        *health = REGISTRY_HEALTH_CRITICAL;
        *reason = REASON_LEASE;
        return;
    }
    bool has_check = in->check.kind != REGISTRY_CHECK_NONE;
    enum registry_health verdict = REGISTRY_HEALTH_PASSING;
    if (has_check)
        verdict = in->check_pending ? REGISTRY_HEALTH_CRITICAL : in->check_verdict;
    enum registry_health h = worst(in->reported, verdict);
    *health = h;
    if (in->reported == h && e->note_reason)
        *reason = e->note_reason;
    else if (has_check && verdict == h && h != REGISTRY_HEALTH_PASSING)
        *reason = in->check_pending ? REASON_AWAITING : e->check_reason;
    else if (in->reported == REGISTRY_HEALTH_WARNING && h == REGISTRY_HEALTH_WARNING)
        *reason = "heartbeat: warning";
    else if (in->reported == REGISTRY_HEALTH_CRITICAL)
        *reason = "heartbeat: critical";
    else
        *reason = REASON_NONE;
}

/* When e turns overdue: 80% of its lease after its last heartbeat. RFC 9664 has clients
 * refresh a lease at about 80% of its length, so a healthy instance is never overdue, and an
 * overdue one lapses within the remaining 20% unless it heartbeats. */
static uint64_t overdue_at(const struct registry_instance *in)
{
    return registry_sat_add(in->heartbeat_ms, (uint64_t)in->ttl_s * 800u);
}

uint64_t registry_lease_deadline(uint64_t now_ms, uint32_t ttl_s)
{
    return registry_sat_add(now_ms, (uint64_t)ttl_s * 1000u);
}

/* The next moment time alone changes e, and what happens then: it turns overdue (only
 * counted with self-preservation on), its lease lapses, or it is removed after
 * deregister_after critical; UINT64_MAX for none. */
static uint64_t next_event(const struct registry *reg, const struct entry *e,
                           enum registry_event *kind)
{
    uint64_t key = UINT64_MAX;
    *kind = REGISTRY_EVENT_REMOVE;
    if (e->lease == LEASE_LIVE && reg->opts.preservation_enabled && !e->overdue) {
        key = overdue_at(&e->inst);
        *kind = REGISTRY_EVENT_OVERDUE;
    } else if (e->lease == LEASE_LIVE) {
        key = e->inst.expires_ms;
        *kind = REGISTRY_EVENT_LAPSE;
    }
    if (e->inst.health == REGISTRY_HEALTH_CRITICAL && e->inst.deregister_after_ms > 0) {
        uint64_t gone = registry_sat_add(e->inst.critical_since_ms, e->inst.deregister_after_ms);
        if (gone < key) {
            key = gone;
            *kind = REGISTRY_EVENT_REMOVE;
        }
    }
    return key;
}

void registry_entry_key(const struct registry *reg, struct entry *e)
{
    e->key = next_event(reg, e, &e->kind);
}

void registry_rekey(struct registry *reg, struct entry *e)
{
    registry_entry_key(reg, e);
    registry_heap_fix(reg, e);
}

bool registry_reassess(struct entry *e, enum registry_health old_health, const char *old_reason,
                       uint64_t t)
{
    enum registry_health h;
    const char *r;
    evaluate(e, &h, &r);
    e->inst.health = h;
    e->inst.reason = (char *)r;
    if (h != REGISTRY_HEALTH_CRITICAL)
        e->inst.critical_since_ms = 0;
    else if (old_health != REGISTRY_HEALTH_CRITICAL)
        e->inst.critical_since_ms = t;
    return h != old_health || strcmp(old_reason, r) != 0;
}

/* ---- self-preservation ---- */

static void held_add(struct registry *reg, struct entry *e)
{
    e->held_prev = NULL;
    e->held_next = reg->held;
    if (reg->held)
        reg->held->held_prev = e;
    reg->held = e;
}

static void held_del(struct registry *reg, struct entry *e)
{
    if (e->held_prev)
        e->held_prev->held_next = e->held_next;
    else
        reg->held = e->held_next;
    if (e->held_next)
        e->held_next->held_prev = e->held_prev;
    e->held_prev = NULL;
    e->held_next = NULL;
}

static void overdue_clear(struct registry *reg, struct entry *e)
{
    if (e->overdue) {
        e->overdue = false;
        reg->n_overdue--;
    }
}

/* Are more than threshold of all instances overdue (held ones included)? */
static bool over_threshold(const struct registry *reg)
{
    return (double)reg->n_overdue > reg->opts.preservation_threshold * (double)reg->n_heap;
}

void registry_lease_renew(struct registry *reg, struct entry *e, uint64_t now_ms)
{
    if (e->lease == LEASE_HELD)
        held_del(reg, e);
    overdue_clear(reg, e);
    e->lease = LEASE_LIVE;
    e->inst.heartbeat_ms = now_ms;
    e->inst.expires_ms = registry_lease_deadline(now_ms, e->inst.ttl_s);
}

void registry_lease_forget(struct registry *reg, struct entry *e)
{
    if (e->lease == LEASE_HELD)
        held_del(reg, e);
    overdue_clear(reg, e);
}

/* e's lease lapses at t. When more than threshold of a large enough fleet is overdue (e
 * included), the cause is likely a partition or a stall of dnsd rather than the services:
 * enter self-preservation before this lapse takes effect, so that e and every later lapse
 * are held. Returns whether self-preservation was entered. */
static bool lease_lapse(struct registry *reg, struct entry *e, uint64_t t)
{
    bool entered = false;
    if (reg->opts.preservation_enabled && !reg->preserving &&
        reg->n_heap >= reg->opts.preservation_min_instances && over_threshold(reg)) {
        reg->preserving = true;
        reg->preserve_since = t;
        entered = true;
    }
    if (reg->preserving) {
        assert(e->overdue); /* its overdue point came before its deadline */
        e->lease = LEASE_HELD;
        held_add(reg, e);
    } else {
        e->lease = LEASE_LAPSED;
        overdue_clear(reg, e);
    }
    return entered;
}

/* When self-preservation ends at the latest; UINT64_MAX when not preserving. */
static uint64_t preservation_end(const struct registry *reg)
{
    if (!reg->preserving)
        return UINT64_MAX;
    return registry_sat_add(reg->preserve_since, reg->opts.preservation_max_ms);
}

/* Leave self-preservation at t: every held lease lapses now; the registry counts as
 * preserving until the held list is empty, so that it stays consistent for the callbacks.
 * Returns the number of instances whose health changed. */
static size_t preservation_leave(struct registry *reg, uint64_t t)
{
    size_t changed = 0;
    while (reg->held) {
        struct entry *e = reg->held;
        held_del(reg, e);
        e->lease = LEASE_LAPSED;
        overdue_clear(reg, e);
        bool health_changed = registry_reassess(e, e->inst.health, e->inst.reason, t);
        registry_rekey(reg, e);
        if (health_changed) {
            changed++;
            registry_notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
        }
    }
    reg->preserving = false;
    registry_notify(reg, REGISTRY_CHANGE_PRESERVATION, NULL, NULL, NULL);
    return changed;
}

size_t registry_preservation_review(struct registry *reg, uint64_t t)
{
    if (!reg->preserving || over_threshold(reg))
        return 0;
    return preservation_leave(reg, t);
}

bool registry_is_preserving(const struct registry *reg)
{
    return reg->preserving;
}

size_t registry_overdue_count(const struct registry *reg)
{
    return reg->n_overdue;
}

uint64_t registry_next_deadline(const struct registry *reg)
{
    uint64_t top = reg->n_heap ? reg->heap[0]->key : UINT64_MAX;
    uint64_t end = preservation_end(reg);
    return end < top ? end : top;
}

/* ---- time ---- */

/* Apply e's event due at t (e is the heap's top). Returns the number of instances whose
 * health changed or that were removed. */
static size_t apply_event(struct registry *reg, struct entry *e, uint64_t t)
{
    switch (e->kind) {
    case REGISTRY_EVENT_OVERDUE:
        /* Nothing visible changes: it only counts towards self-preservation. */
        e->overdue = true;
        reg->n_overdue++;
        registry_rekey(reg, e);
        return 0;
    case REGISTRY_EVENT_LAPSE: {
        enum registry_health old_health = e->inst.health;
        const char *old_reason = e->inst.reason;
        bool entered = lease_lapse(reg, e, t);
        bool health_changed = registry_reassess(e, old_health, old_reason, t);
        registry_rekey(reg, e);
        if (entered)
            registry_notify(reg, REGISTRY_CHANGE_PRESERVATION, NULL, NULL, NULL);
        if (health_changed)
            registry_notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
        return health_changed;
    }
    case REGISTRY_EVENT_REMOVE:
    default:
        /* deregister_after: critical for that long. */
        registry_entry_unlink(reg, e, REGISTRY_CHANGE_EXPIRE);
        return 1;
    }
}

size_t registry_advance(struct registry *reg, uint64_t now_ms)
{
    registry_tick(reg, now_ms);
    size_t changed = 0;
    for (;;) {
        uint64_t end = preservation_end(reg);
        uint64_t top = reg->n_heap ? reg->heap[0]->key : UINT64_MAX;
        uint64_t t = end < top ? end : top;
        if (t == UINT64_MAX || t > now_ms)
            break;
        if (end <= top)
            changed += preservation_leave(reg, t);
        else
            changed += apply_event(reg, reg->heap[0], t);
        /* Once a moment is over, removals in it may have brought the overdue share back
         * down; judging it then keeps the outcome independent of their order. */
        if (registry_next_deadline(reg) > t)
            changed += registry_preservation_review(reg, t);
    }
    return changed;
}

/* ---- checks and re-registration ---- */

static bool check_spec_equal(const struct registry_check *a, const struct registry_check *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == REGISTRY_CHECK_NONE)
        return true;
    return strcmp(a->target, b->target) == 0 && a->interval_ms == b->interval_ms &&
           a->timeout_ms == b->timeout_ms &&
           a->success_before_passing == b->success_before_passing &&
           a->failures_before_critical == b->failures_before_critical;
}

void registry_check_state_start(struct registry_instance *inst)
{
    inst->check_pending = inst->check.kind != REGISTRY_CHECK_NONE;
    inst->check_verdict = inst->check_pending ? REGISTRY_HEALTH_CRITICAL : REGISTRY_HEALTH_PASSING;
    inst->check_output = NULL;
    inst->check_last_ms = 0;
    inst->check_successes = 0;
    inst->check_failures = 0;
}

void registry_check_state_clear(struct entry *e)
{
    free(e->inst.check_output);
    free(e->check_reason);
    e->inst.check_output = NULL;
    e->check_reason = NULL;
}

void registry_entry_replace(struct registry *reg, struct entry *existing,
                            struct registry_instance *fresh, uint64_t now_ms)
{
    struct registry_instance old = existing->inst;
    char *old_note_reason = existing->note_reason;
    char *old_check_reason = existing->check_reason;
    bool same_check = check_spec_equal(&old.check, &fresh->check);

    struct registry_instance *in = &existing->inst;
    *in = *fresh;
    memset(fresh, 0, sizeof(*fresh));
    in->registered_ms = old.registered_ms;
    /* Operators set maintenance; a redeploying instance must not silently leave it. */
    in->maintenance = old.maintenance;
    in->maintenance_reason = old.maintenance_reason;
    in->reported = REGISTRY_HEALTH_PASSING;
    in->note = NULL;
    existing->note_reason = NULL;
    if (same_check) {
        in->check_pending = old.check_pending;
        in->check_verdict = old.check_verdict;
        in->check_output = old.check_output;
        in->check_last_ms = old.check_last_ms;
        in->check_successes = old.check_successes;
        in->check_failures = old.check_failures;
        old.check_output = NULL;
        old_check_reason = NULL;
    } else {
        registry_check_state_start(in);
        existing->check_reason = NULL;
    }
    in->health = old.health;
    in->critical_since_ms = old.critical_since_ms;
    registry_lease_renew(reg, existing, now_ms);
    registry_reassess(existing, old.health, old.reason, now_ms);
    registry_rekey(reg, existing);

    registry_stored_clear(&old);
    free(old.note);
    free(old.check_output);
    free(old_note_reason);
    free(old_check_reason);
}

/* ---- mutations ---- */

/* "prefix" + text in a fresh string (text at most REGISTRY_MAX_NOTE_LEN bytes), via strdup
 * so that every allocation of a state string goes one way. */
static char *prefixed(const char *prefix, const char *text, const char *suffix)
{
    char buf[REGISTRY_MAX_NOTE_LEN + 64];
    snprintf(buf, sizeof(buf), "%s%s%s", prefix, text, suffix);
    return strdup(buf);
}

int registry_heartbeat(struct registry *reg, const char *service, const char *id,
                       enum registry_health status, const char *note, uint64_t now_ms,
                       const char **field)
{
    struct entry *e = registry_entry_find(reg, service, id);
    if (!e)
        return DNSD_ENOENT;
    registry_tick(reg, now_ms);
    const char *bad = NULL;
    if (status != REGISTRY_HEALTH_PASSING && status != REGISTRY_HEALTH_WARNING &&
        status != REGISTRY_HEALTH_CRITICAL)
        bad = "status";
    else if (!note_valid(note))
        bad = "note";
    if (bad) {
        if (field)
            *field = bad;
        return DNSD_EINVAL;
    }
    char *new_note = NULL, *new_reason = NULL;
    if (note && note[0]) {
        new_note = strdup(note);
        new_reason = new_note ? prefixed("heartbeat: ", note, "") : NULL;
        if (!new_reason) {
            free(new_note);
            return DNSD_ENOMEM;
        }
    }
    enum registry_health old_health = e->inst.health;
    const char *old_reason = e->inst.reason;
    char *old_note = e->inst.note, *old_note_reason = e->note_reason;
    e->inst.note = new_note;
    e->note_reason = new_reason;
    e->inst.reported = status;
    registry_lease_renew(reg, e, now_ms);
    bool changed = registry_reassess(e, old_health, old_reason, now_ms);
    registry_rekey(reg, e);
    free(old_note);
    free(old_note_reason);
    registry_notify_entry(reg, changed ? REGISTRY_CHANGE_HEALTH : REGISTRY_CHANGE_RENEW, e);
    /* The instance is back: the overdue share may be at or below the threshold again. */
    registry_preservation_review(reg, now_ms);
    return 0;
}

int registry_set_maintenance(struct registry *reg, const char *service, const char *id,
                             bool enabled, const char *reason, uint64_t now_ms, const char **field)
{
    struct entry *e = registry_entry_find(reg, service, id);
    if (!e)
        return DNSD_ENOENT;
    registry_tick(reg, now_ms);
    if (enabled && !note_valid(reason)) {
        if (field)
            *field = "reason";
        return DNSD_EINVAL;
    }
    char *new_reason = NULL;
    if (enabled && reason && reason[0]) {
        new_reason = strdup(reason);
        if (!new_reason)
            return DNSD_ENOMEM;
    }
    enum registry_health old_health = e->inst.health;
    const char *old_reason = e->inst.reason;
    char *old_mreason = e->inst.maintenance_reason;
    e->inst.maintenance = enabled;
    e->inst.maintenance_reason = new_reason;
    bool changed = registry_reassess(e, old_health, old_reason, now_ms);
    registry_rekey(reg, e);
    free(old_mreason);
    if (changed)
        registry_notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
    return 0;
}

int registry_check_result(struct registry *reg, const char *service, const char *id,
                          enum registry_check_outcome outcome, const char *output, uint64_t now_ms)
{
    struct entry *e = registry_entry_find(reg, service, id);
    if (!e || e->inst.check.kind == REGISTRY_CHECK_NONE)
        return DNSD_ENOENT;
    registry_tick(reg, now_ms);
    const struct registry_instance *in = &e->inst;
    uint32_t successes = in->check_successes, failures = in->check_failures;
    enum registry_health verdict = in->check_pending ? REGISTRY_HEALTH_CRITICAL : in->check_verdict;
    const char *word;
    switch (outcome) {
    case REGISTRY_CHECK_PASS:
        successes += successes < UINT32_MAX;
        failures = 0;
        if (successes >= in->check.success_before_passing)
            verdict = REGISTRY_HEALTH_PASSING;
        word = "passed";
        break;
    case REGISTRY_CHECK_WARN:
        /* Consul: a warning result takes effect at once and counts for neither side. */
        verdict = REGISTRY_HEALTH_WARNING;
        word = "warning";
        break;
    case REGISTRY_CHECK_FAIL:
    default: /* not an outcome: the caller's bug, counted as a failure */
        failures += failures < UINT32_MAX;
        successes = 0;
        if (failures >= in->check.failures_before_critical)
            verdict = REGISTRY_HEALTH_CRITICAL;
        word = "failed";
        break;
    }
    char out[REGISTRY_MAX_NOTE_LEN + 1];
    sanitize(output, out);
    /* Say how far a threshold has got when the verdict does not follow this result yet. */
    char progress[48] = "";
    if (outcome == REGISTRY_CHECK_PASS && verdict != REGISTRY_HEALTH_PASSING)
        snprintf(progress, sizeof(progress), " (passed %u of %u)", (unsigned)successes,
                 (unsigned)in->check.success_before_passing);
    else if (outcome == REGISTRY_CHECK_FAIL && verdict != REGISTRY_HEALTH_CRITICAL)
        snprintf(progress, sizeof(progress), " (failed %u of %u)", (unsigned)failures,
                 (unsigned)in->check.failures_before_critical);
    char *new_output = strdup(out);
    char *new_reason = new_output ? prefixed("check: ", out[0] ? out : word, progress) : NULL;
    if (!new_reason) {
        free(new_output);
        return DNSD_ENOMEM;
    }
    enum registry_health old_health = e->inst.health;
    const char *old_reason = e->inst.reason;
    char *old_output = e->inst.check_output, *old_check_reason = e->check_reason;
    e->inst.check_output = new_output;
    e->check_reason = new_reason;
    e->inst.check_pending = false;
    e->inst.check_verdict = verdict;
    e->inst.check_last_ms = now_ms;
    e->inst.check_successes = successes;
    e->inst.check_failures = failures;
    bool changed = registry_reassess(e, old_health, old_reason, now_ms);
    registry_rekey(reg, e);
    free(old_output);
    free(old_check_reason);
    if (changed)
        registry_notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
    return 0;
}

/* ---- invariants ---- */

bool registry_entry_consistent(const struct registry *reg, const struct entry *e)
{
    const struct registry_instance *in = &e->inst;
    if (e->heap_idx >= reg->n_heap || reg->heap[e->heap_idx] != e)
        return false;
    if (in->expires_ms != registry_lease_deadline(in->heartbeat_ms, in->ttl_s))
        return false;
    if (registry_validate(in, NULL) != 0)
        return false;
    if (in->reported != REGISTRY_HEALTH_PASSING && in->reported != REGISTRY_HEALTH_WARNING &&
        in->reported != REGISTRY_HEALTH_CRITICAL)
        return false;
    if ((in->note == NULL) != (e->note_reason == NULL))
        return false;
    if (in->maintenance_reason && (!in->maintenance || !in->maintenance_reason[0]))
        return false;
    if (in->check.kind == REGISTRY_CHECK_NONE) {
        if (in->check_pending || in->check_output || e->check_reason || in->check.target)
            return false;
    } else if (in->check_pending != (in->check_output == NULL) ||
               in->check_pending != (e->check_reason == NULL)) {
        return false;
    }
    if (e->lease == LEASE_HELD && (!reg->preserving || !e->overdue))
        return false;
    if (e->overdue && (e->lease == LEASE_LAPSED || !reg->opts.preservation_enabled))
        return false;
    enum registry_health h;
    const char *r;
    evaluate(e, &h, &r);
    if (in->health != h || in->reason != r)
        return false;
    if (h != REGISTRY_HEALTH_CRITICAL && in->critical_since_ms != 0)
        return false;
    enum registry_event kind;
    return e->key == next_event(reg, e, &kind) && e->kind == kind;
}

bool registry_preservation_consistent(const struct registry *reg, size_t held, size_t overdue)
{
    size_t n = 0;
    const struct entry *prev = NULL;
    for (const struct entry *e = reg->held; e; e = e->held_next) {
        if (e->held_prev != prev || e->lease != LEASE_HELD || n > reg->n_heap)
            return false;
        prev = e;
        n++;
    }
    if (n != held || overdue != reg->n_overdue)
        return false;
    if (!reg->opts.preservation_enabled)
        return !reg->preserving && reg->n_overdue == 0;
    return reg->preserving || held == 0;
}
