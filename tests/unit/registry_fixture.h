/* SPDX-License-Identifier: BSD-2-Clause
 * Shared fixture of the registry unit tests (test_registry.c, test_registry_health.c): valid
 * instances, a strdup that can be told to fail, and a change recorder. Each test binary
 * includes it exactly once, from its one .c file. */
#pragma once

#include "registry.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "dnsd/error.h"

/* ---- allocation failure ---- */

/* strdup calls that may still succeed before the next one fails; -1: no limit. The test
 * binary's strdup takes the place of libc's for the registry's copies, which makes the
 * out-of-memory paths reachable. */
static long strdups_left = -1;

char *strdup(const char *s)
{
    if (strdups_left == 0) {
        strdups_left = -1;
        return NULL;
    }
    if (strdups_left > 0)
        strdups_left--;
    size_t len = strlen(s) + 1;
    char *p = malloc(len);
    if (p)
        memcpy(p, s, len);
    return p;
}

/* ---- helpers ---- */

static inline char *xstrdup(const char *s)
{
    char *p = strdup(s);
    cr_assert_not_null(p);
    return p;
}

/* A valid instance: service/id as given, one IPv4 address, port 8080, tcp, ttl_s. */
static inline void inst_init(struct registry_instance *inst, const char *service, const char *id,
                             uint32_t ttl_s)
{
    memset(inst, 0, sizeof(*inst));
    inst->service = xstrdup(service);
    inst->id = xstrdup(id);
    /* Room for every address inst_add_addr may add; registry_instance_clear frees it. */
    inst->addrs = calloc(REGISTRY_MAX_ADDRS, sizeof(*inst->addrs));
    cr_assert_not_null(inst->addrs);
    inst->n_addrs = 1;
    inst->addrs[0].family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, "192.0.2.10", inst->addrs[0].bytes), 1);
    inst->port = 8080;
    inst->proto = REGISTRY_PROTO_TCP;
    inst->weight = 1;
    inst->ttl_s = ttl_s;
}

static inline void inst_add_tag(struct registry_instance *inst, const char *tag)
{
    char **tags = realloc(inst->tags, (inst->n_tags + 1) * sizeof(*tags));
    cr_assert_not_null(tags);
    inst->tags = tags;
    inst->tags[inst->n_tags++] = xstrdup(tag);
}

static inline void inst_add_meta(struct registry_instance *inst, const char *key, const char *value)
{
    struct registry_meta *meta = realloc(inst->meta, (inst->n_meta + 1) * sizeof(*meta));
    cr_assert_not_null(meta);
    inst->meta = meta;
    inst->meta[inst->n_meta].key = xstrdup(key);
    inst->meta[inst->n_meta].value = xstrdup(value);
    inst->n_meta++;
}

static inline void inst_add_addr(struct registry_instance *inst, int family, const char *text)
{
    cr_assert_lt(inst->n_addrs, REGISTRY_MAX_ADDRS);
    inst->addrs[inst->n_addrs].family = family;
    cr_assert_eq(inet_pton(family, text, inst->addrs[inst->n_addrs].bytes), 1);
    inst->n_addrs++;
}

/* Expect registry_validate to reject inst naming want_field, then free inst. */
static inline void expect_invalid(struct registry_instance *inst, const char *want_field)
{
    const char *field = NULL;
    cr_assert_eq(registry_validate(inst, &field), DNSD_EINVAL);
    cr_assert_not_null(field);
    cr_assert_str_eq(field, want_field);
    registry_instance_clear(inst);
}

static inline void expect_valid(struct registry_instance *inst)
{
    const char *field = NULL;
    cr_assert_eq(registry_validate(inst, &field), 0, "rejected field %s", field ? field : "-");
    registry_instance_clear(inst);
}

/* Put a fresh valid instance; fails the test on error. */
static inline void put(struct registry *reg, const char *service, const char *id, uint32_t ttl_s,
                       uint64_t now_ms)
{
    struct registry_instance inst;
    inst_init(&inst, service, id, ttl_s);
    cr_assert_eq(registry_put(reg, &inst, now_ms, NULL), 0);
    registry_instance_clear(&inst);
}

/* Heartbeat with status passing and no note. */
static inline int renew(struct registry *reg, const char *service, const char *id, uint64_t now_ms)
{
    return registry_heartbeat(reg, service, id, REGISTRY_HEALTH_PASSING, NULL, now_ms, NULL);
}

/* Put a fresh valid instance with deregister_after_ms set; fails the test on error. */
static inline void put_dereg(struct registry *reg, const char *service, const char *id,
                             uint32_t ttl_s, uint64_t dereg_ms, uint64_t now_ms)
{
    struct registry_instance inst;
    inst_init(&inst, service, id, ttl_s);
    inst.deregister_after_ms = dereg_ms;
    cr_assert_eq(registry_put(reg, &inst, now_ms, NULL), 0);
    registry_instance_clear(&inst);
}

/* Give inst a TCP check with the given thresholds. */
static inline void inst_set_check(struct registry_instance *inst, uint16_t success,
                                  uint16_t failures)
{
    free(inst->check.target);
    inst->check.kind = REGISTRY_CHECK_TCP;
    inst->check.target = xstrdup("192.0.2.10:8080");
    inst->check.interval_ms = 10000;
    inst->check.timeout_ms = 2000;
    inst->check.success_before_passing = success;
    inst->check.failures_before_critical = failures;
}

/* Put an instance with a TCP check; fails the test on error. */
static inline void put_checked(struct registry *reg, const char *service, const char *id,
                               uint32_t ttl_s, uint16_t success, uint16_t failures, uint64_t now_ms)
{
    struct registry_instance inst;
    inst_init(&inst, service, id, ttl_s);
    inst_set_check(&inst, success, failures);
    cr_assert_eq(registry_put(reg, &inst, now_ms, NULL), 0);
    registry_instance_clear(&inst);
}

static inline const struct registry_instance *find(struct registry *reg, const char *service,
                                                   const char *id)
{
    const struct registry_instance *got = registry_find_instance(reg, service, id);
    cr_assert_not_null(got, "%s/%s is registered", service, id);
    return got;
}

/* Assert the effective health and reason of service/id. */
static inline void expect_health(struct registry *reg, const char *service, const char *id,
                                 enum registry_health health, const char *reason)
{
    const struct registry_instance *got = find(reg, service, id);
    cr_assert_eq(got->health, health, "%s/%s is %s, want %s", service, id,
                 registry_health_name(got->health), registry_health_name(health));
    cr_assert_not_null(got->reason);
    cr_assert_str_eq(got->reason, reason);
}

/* ---- change recorder ---- */

struct event {
    enum registry_change change;
    char service[64];
    char id[64];
    uint64_t serial;     /* registry_serial() seen inside the callback */
    bool present;        /* registry_find_instance() non-NULL inside the callback */
    uint64_t expires_ms; /* the stored deadline seen inside the callback, when present */
};

struct recorder {
    struct registry *reg;
    struct event events[64]; /* the first 64 since n was last reset */
    size_t n;                /* every event, also those past the first 64 */
    bool preserving;         /* registry_is_preserving() seen by the last PRESERVATION event */
    bool unchecked;          /* skip registry_check() inside the callback (large tests) */
};

static inline void record(void *user, enum registry_change change, const char *service,
                          const char *id)
{
    struct recorder *rec = user;
    if (change == REGISTRY_CHANGE_PRESERVATION) {
        cr_assert_null(service);
        cr_assert_null(id);
        rec->preserving = registry_is_preserving(rec->reg);
    } else {
        cr_assert_not_null(service);
        cr_assert_not_null(id);
    }
    if (!rec->unchecked)
        cr_assert(registry_check(rec->reg), "consistent inside the callback");
    if (rec->n++ >= 64)
        return;
    struct event *ev = &rec->events[rec->n - 1];
    ev->change = change;
    snprintf(ev->service, sizeof(ev->service), "%s", service ? service : "-");
    snprintf(ev->id, sizeof(ev->id), "%s", id ? id : "-");
    ev->serial = registry_serial(rec->reg);
    const struct registry_instance *inst = registry_find_instance(rec->reg, service, id);
    ev->present = inst != NULL;
    ev->expires_ms = inst ? inst->expires_ms : 0;
}

static inline struct registry *new_recorded_opts(struct recorder *rec,
                                                 const struct registry_options *opts)
{
    memset(rec, 0, sizeof(*rec));
    rec->reg = registry_new(opts, record, rec);
    cr_assert_not_null(rec->reg);
    return rec->reg;
}

static inline struct registry *new_recorded(struct recorder *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->reg = registry_new(NULL, record, rec);
    cr_assert_not_null(rec->reg);
    return rec->reg;
}

/* Put inst with the k-th strdup failing, for every k until it succeeds; every failure must
 * be DNSD_ENOMEM and leave the registry exactly as it was. The registry copies an instance
 * into one malloc'd block, which strdup cannot make fail: only a new service's name does,
 * so a put that creates no service may see no failure at all. */
static inline void put_despite_oom(struct recorder *rec, struct registry_instance *inst,
                                   uint64_t now, int min_failures)
{
    int failures = 0;
    for (long k = 0;; k++) {
        uint64_t serial = registry_serial(rec->reg);
        size_t count = registry_instance_count(rec->reg), events = rec->n;
        strdups_left = k;
        int rc = registry_put(rec->reg, inst, now, NULL);
        strdups_left = -1;
        if (rc == 0)
            break;
        cr_assert_eq(rc, DNSD_ENOMEM);
        cr_assert_eq(registry_serial(rec->reg), serial);
        cr_assert_eq(registry_instance_count(rec->reg), count);
        cr_assert_eq(rec->n, events, "no callback for a failed put");
        cr_assert(registry_check(rec->reg));
        failures++;
    }
    cr_assert_geq(failures, min_failures);
}
