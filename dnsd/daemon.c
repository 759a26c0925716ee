/* SPDX-License-Identifier: BSD-2-Clause
 * Wiring of the running server: the registry's change callback rebuilds the service's
 * prepared answers, wakes the API watches on that service, keeps the active checks in step
 * with the registrations, logs the change once and re-arms the deadline timer; the
 * deadline timer applies time-driven health changes (registry_advance); check results go
 * back into the registry. Zone reloads build a new store and swap it in whole. DNS worker
 * threads (workers.h) answer UDP beside the main loop from the same answers and zones. */
#include "daemon.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <urcu/urcu-memb.h>

#include "dnsd/duration.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "answers.h"
#include "api.h"
#include "apiserver.h"
#include "checks.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "netlist.h"
#include "persist.h"
#include "registry.h"
#include "rrl.h"
#include "server.h"
#include "workers.h"
#include "zonestore.h"

/* What the daemon remembers of one registered instance, so that a change can be logged as
 * "passing -> critical" and a re-registration with the same check leaves its probe
 * schedule alone (the registry keeps only the new state). */
struct memo {
    struct memo *next; /* owned: the next entry in the hash chain */
    uint64_t hash;
    enum registry_health health;
    enum registry_check_kind kind; /* REGISTRY_CHECK_NONE: no active check */
    uint32_t interval_ms, timeout_ms;
    uint64_t deregister_after_ms;
    char *target; /* owned; NULL without a check */
    char key[];   /* "service/id" */
};

struct memos {
    struct memo **buckets; /* owned array of owned chains */
    size_t n_buckets;      /* a power of two */
    size_t count;
};

struct daemon {
    uv_loop_t *loop;         /* borrowed */
    struct dnsd_config cfg;  /* copy */
    struct registry *reg;    /* owned */
    struct answers *ans;     /* owned */
    struct zonestore *zs;    /* owned; the server borrows it */
    struct api *api;         /* owned */
    struct checks *checks;   /* owned until checks_stop */
    struct server *dns;      /* owned until server_stop */
    struct workers *workers; /* owned until workers_stop; NULL: one DNS thread */
    struct rrl *rrl;         /* owned, shared by every DNS loop; NULL: RRL off */
    /* Every DNS loop's counters, for GET /metrics: the main server's, then the workers'. */
    const struct metrics_dns *dns_stats[1 + 64];
    struct apiserver *http;          /* owned until apiserver_stop */
    struct memos memos;              /* owned */
    struct persist *persist;         /* owned until daemon_stop; NULL without a data_dir */
    bool restoring;                  /* registry changes come from the data directory: quiet */
    struct metrics_registry changes; /* registry changes, for GET /metrics */
    uv_timer_t deadline_timer;
    bool deadline_timer_open;
    uint32_t serial_base; /* SOA serial of the synthesised apex at start-up */
    char ns_name[sizeof("hostmaster.") + sizeof(((struct dnsd_config *)0)->domain)];
    char rname[sizeof("hostmaster.") + sizeof(((struct dnsd_config *)0)->domain)];
};

#define MEMO_MIN_BUCKETS 1024

/* ---- instance memos ------------------------------------------------------------------------ */

/* FNV-1a over "service/id". */
static uint64_t hash_key(const char *service, const char *id)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)service; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static bool key_is(const struct memo *m, const char *service, const char *id)
{
    size_t n = strlen(service);
    return strncmp(m->key, service, n) == 0 && m->key[n] == '/' && strcmp(m->key + n + 1, id) == 0;
}

/* The link pointing at the memo of service/id (or the chain's terminating NULL). */
static struct memo **memo_link(struct memos *ms, const char *service, const char *id, uint64_t hash)
{
    struct memo **link = &ms->buckets[hash & (ms->n_buckets - 1)];
    while (*link && ((*link)->hash != hash || !key_is(*link, service, id)))
        link = &(*link)->next;
    return link;
}

static struct memo *memo_find(struct memos *ms, const char *service, const char *id)
{
    return ms->buckets ? *memo_link(ms, service, id, hash_key(service, id)) : NULL;
}

static void memo_free(struct memo *m)
{
    if (m) {
        free(m->target);
        free(m);
    }
}

static void memos_clear(struct memos *ms)
{
    for (size_t b = 0; b < ms->n_buckets; b++) {
        while (ms->buckets[b]) {
            struct memo *next = ms->buckets[b]->next;
            memo_free(ms->buckets[b]);
            ms->buckets[b] = next;
        }
    }
    free(ms->buckets);
    memset(ms, 0, sizeof(*ms));
}

/* Double the bucket array when there are more memos than buckets (failure just keeps the
 * chains longer). */
static void memos_grow(struct memos *ms)
{
    size_t n = ms->n_buckets ? ms->n_buckets * 2 : MEMO_MIN_BUCKETS;
    struct memo **buckets = calloc(n, sizeof(*buckets));
    if (!buckets)
        return;
    for (size_t b = 0; b < ms->n_buckets; b++) {
        struct memo *m = ms->buckets[b];
        while (m) {
            struct memo *next = m->next;
            m->next = buckets[m->hash & (n - 1)];
            buckets[m->hash & (n - 1)] = m;
            m = next;
        }
    }
    free(ms->buckets);
    ms->buckets = buckets;
    ms->n_buckets = n;
}

/* Record inst (replacing an earlier memo of it). Returns 0 or DNSD_ENOMEM. */
static int memo_put(struct memos *ms, const struct registry_instance *inst)
{
    if (ms->count >= ms->n_buckets)
        memos_grow(ms);
    if (!ms->buckets)
        return DNSD_ENOMEM;
    size_t klen = strlen(inst->service) + 1 + strlen(inst->id);
    struct memo *m = calloc(1, sizeof(*m) + klen + 1);
    if (!m)
        return DNSD_ENOMEM;
    snprintf(m->key, klen + 1, "%s/%s", inst->service, inst->id);
    m->hash = hash_key(inst->service, inst->id);
    m->health = inst->health;
    m->deregister_after_ms = inst->deregister_after_ms;
    if (inst->check.kind != REGISTRY_CHECK_NONE) {
        m->target = strdup(inst->check.target);
        if (!m->target) {
            free(m);
            return DNSD_ENOMEM;
        }
        m->kind = inst->check.kind;
        m->interval_ms = inst->check.interval_ms;
        m->timeout_ms = inst->check.timeout_ms;
    }
    struct memo **link = memo_link(ms, inst->service, inst->id, m->hash);
    if (*link) {
        m->next = (*link)->next;
        memo_free(*link);
    } else {
        m->next = NULL;
        ms->count++;
    }
    *link = m;
    return 0;
}

static void memo_remove(struct memos *ms, const char *service, const char *id)
{
    if (!ms->buckets)
        return;
    struct memo **link = memo_link(ms, service, id, hash_key(service, id));
    struct memo *m = *link;
    if (m) {
        *link = m->next;
        memo_free(m);
        ms->count--;
    }
}

/* Does the memo hold the check inst registers now (what the probes need: kind, target,
 * interval, timeout; thresholds are the registry's business)? */
static bool same_check(const struct memo *m, const struct registry_check *c)
{
    return m && m->kind == c->kind && m->interval_ms == c->interval_ms &&
           m->timeout_ms == c->timeout_ms && m->target && c->target &&
           strcmp(m->target, c->target) == 0;
}

/* ---- registry changes ---------------------------------------------------------------------- */

static void arm_deadline_timer(struct daemon *d);

/* Start, replace or stop the probes of inst after a registration (old: its memo before). */
static void sync_check(struct daemon *d, const struct memo *old,
                       const struct registry_instance *inst)
{
    if (!d->checks)
        return;
    if (inst->check.kind == REGISTRY_CHECK_NONE) {
        if (old && old->kind != REGISTRY_CHECK_NONE)
            checks_remove(d->checks, inst->service, inst->id);
        return;
    }
    if (same_check(old, &inst->check))
        return;
    struct checks_spec spec = {
        .kind = inst->check.kind == REGISTRY_CHECK_HTTP ? CHECKS_HTTP : CHECKS_TCP,
        .target = inst->check.target,
        .interval_ms = inst->check.interval_ms,
        .timeout_ms = inst->check.timeout_ms,
    };
    int rc = checks_add(d->checks, inst->service, inst->id, &spec);
    if (rc != 0)
        log_error("checks", "%s/%s: cannot schedule the %s check: %s", inst->service, inst->id,
                  inst->check.target, dnsd_strerror(rc));
}

/* " (reason)" or "" when there is none. */
static const char *paren(const char *reason, char *buf, size_t len)
{
    if (!reason || !reason[0])
        return "";
    snprintf(buf, len, " (%s)", reason);
    return buf;
}

static void on_put(struct daemon *d, const char *service, const char *id)
{
    const struct registry_instance *inst = registry_find_instance(d->reg, service, id);
    if (!inst)
        return;
    struct memo *old = memo_find(&d->memos, service, id);
    char why[REGISTRY_MAX_NOTE_LEN + 16];
    if (!old)
        log_info("registry", "%s/%s registered: %s%s", service, id,
                 registry_health_name(inst->health), paren(inst->reason, why, sizeof(why)));
    else if (old->health != inst->health)
        log_info("registry", "%s/%s re-registered: %s -> %s%s", service, id,
                 registry_health_name(old->health), registry_health_name(inst->health),
                 paren(inst->reason, why, sizeof(why)));
    else
        log_debug("registry", "%s/%s re-registered", service, id);
    sync_check(d, old, inst);
    if (memo_put(&d->memos, inst) != 0)
        log_error("registry", "%s/%s: out of memory remembering the instance", service, id);
}

static void on_health(struct daemon *d, const char *service, const char *id)
{
    const struct registry_instance *inst = registry_find_instance(d->reg, service, id);
    if (!inst)
        return;
    struct memo *m = memo_find(&d->memos, service, id);
    char why[REGISTRY_MAX_NOTE_LEN + 16];
    if (m && m->health != inst->health)
        log_info("health", "%s/%s %s -> %s%s", service, id, registry_health_name(m->health),
                 registry_health_name(inst->health), paren(inst->reason, why, sizeof(why)));
    else
        log_info("health", "%s/%s %s%s", service, id, registry_health_name(inst->health),
                 paren(inst->reason, why, sizeof(why)));
    if (m)
        m->health = inst->health;
}

static void on_gone(struct daemon *d, enum registry_change change, const char *service,
                    const char *id)
{
    struct memo *m = memo_find(&d->memos, service, id);
    if (change == REGISTRY_CHANGE_EXPIRE) {
        char after[32] = "deregister_after";
        if (m)
            dnsd_duration_format(m->deregister_after_ms, after, sizeof(after));
        log_info("registry", "%s/%s removed after %s critical", service, id, after);
    } else {
        log_info("registry", "%s/%s deregistered", service, id);
    }
    if (d->checks && (!m || m->kind != REGISTRY_CHECK_NONE))
        checks_remove(d->checks, service, id);
    memo_remove(&d->memos, service, id);
}

struct lapse_count {
    uint64_t from_ms, to_ms; /* count leases that lapsed in (from, to] */
    size_t n;
};

static bool count_lapsed(const struct registry_service *svc, void *user)
{
    struct lapse_count *c = user;
    for (size_t i = 0; i < registry_service_instance_count(svc); i++) {
        uint64_t e = registry_service_instance(svc, i)->expires_ms;
        c->n += e > c->from_ms && e <= c->to_ms;
    }
    return true;
}

/* Entering or leaving self-preservation: one loud line each (O(n) scan, rare). */
static void on_preservation(struct daemon *d)
{
    uint64_t now = uv_now(d->loop);
    char hold[32];
    dnsd_duration_format(d->cfg.preservation_max_ms, hold, sizeof(hold));
    if (registry_is_preserving(d->reg)) {
        log_warn("health",
                 "self-preservation ON: %zu of %zu instances are overdue at once (no heartbeat "
                 "for 80%% of their lease): likely a partition or a stall, not failures; holding "
                 "their last health for up to %s",
                 registry_overdue_count(d->reg), registry_instance_count(d->reg), hold);
    } else {
        struct lapse_count c = {.from_ms = 0, .to_ms = now};
        registry_foreach_service(d->reg, count_lapsed, &c);
        log_warn("health",
                 "self-preservation OFF: %zu of %zu instances still have lapsed leases and are "
                 "critical now",
                 c.n, registry_instance_count(d->reg));
    }
}

static void on_registry_change(void *user, enum registry_change change, const char *service,
                               const char *id)
{
    struct daemon *d = user;
    if (d->restoring)
        return;
    /* A removal after deregister_after is the registry's own decision: journal it here
     * (the API journals its own writes). */
    if (change == REGISTRY_CHANGE_EXPIRE && d->persist) {
        int rc = persist_record(d->persist, JOURNAL_REMOVE, service, id);
        if (rc < 0)
            log_error("persist", "%s/%s: cannot journal the removal: %s", service, id,
                      journal_strerror(rc));
    }
    static const int kinds[] = {
        [REGISTRY_CHANGE_PUT] = METRICS_REG_REGISTER,
        [REGISTRY_CHANGE_RENEW] = METRICS_REG_HEARTBEAT,
        [REGISTRY_CHANGE_HEALTH] = METRICS_REG_HEALTH,
        [REGISTRY_CHANGE_REMOVE] = METRICS_REG_DEREGISTER,
        [REGISTRY_CHANGE_EXPIRE] = METRICS_REG_EXPIRE,
        [REGISTRY_CHANGE_PRESERVATION] = -1,
    };
    if ((size_t)change < sizeof(kinds) / sizeof(kinds[0]) && kinds[change] >= 0)
        d->changes.changes[kinds[change]]++;
    switch (change) {
    case REGISTRY_CHANGE_PRESERVATION:
        on_preservation(d);
        arm_deadline_timer(d);
        return;
    case REGISTRY_CHANGE_RENEW:
        /* Only the lease moved: patch the published deadline (TTL cap) in place. */
        if (log_is_enabled(LOG_LEVEL_DEBUG))
            log_debug("registry", "%s/%s renewed", service, id);
        answers_renew_instance(d->ans, d->reg, service, id);
        arm_deadline_timer(d);
        return;
    case REGISTRY_CHANGE_PUT:
        on_put(d, service, id);
        break;
    case REGISTRY_CHANGE_HEALTH:
        on_health(d, service, id);
        break;
    case REGISTRY_CHANGE_REMOVE:
    case REGISTRY_CHANGE_EXPIRE:
        on_gone(d, change, service, id);
        break;
    }
    if (answers_update_service(d->ans, d->reg, service) != 0)
        log_error("registry", "%s: out of memory rebuilding answers; serving the old ones",
                  service);
    apiserver_notify_service(d->http, service);
    arm_deadline_timer(d);
}

static void on_check_result(void *user, const char *service, const char *id,
                            enum checks_outcome outcome, const char *output)
{
    struct daemon *d = user;
    enum registry_check_outcome o = outcome == CHECKS_PASS   ? REGISTRY_CHECK_PASS
                                    : outcome == CHECKS_WARN ? REGISTRY_CHECK_WARN
                                                             : REGISTRY_CHECK_FAIL;
    int rc = registry_check_result(d->reg, service, id, o, output, uv_now(d->loop));
    if (rc == DNSD_ENOMEM)
        log_error("checks", "%s/%s: out of memory recording a check result", service, id);
    else if (rc != 0)
        log_debug("checks", "%s/%s: result for an instance without a check: %s", service, id,
                  dnsd_strerror(rc));
}

/* ---- persistence ---------------------------------------------------------------------------- */

static const char *persist_refusal_hook(void *user)
{
    struct daemon *d = user;
    return d->persist ? persist_refusal(d->persist) : "dnsd is stopping";
}

static int persist_written_hook(void *user, enum api_write what, const char *service,
                                const char *id)
{
    struct daemon *d = user;
    static const enum journal_type types[] = {
        [API_WRITE_PUT] = JOURNAL_PUT,
        [API_WRITE_REMOVE] = JOURNAL_REMOVE,
        [API_WRITE_HEARTBEAT] = JOURNAL_HEARTBEAT,
        [API_WRITE_MAINTENANCE] = JOURNAL_MAINTENANCE,
    };
    if (!d->persist)
        return DNSD_EIO;
    return persist_record(d->persist, types[what], service, id);
}

static void persist_status_hook(void *user, struct api_persist_status *out)
{
    struct daemon *d = user;
    struct persist_status st;
    if (!d->persist)
        return;
    persist_status(d->persist, &st);
    out->data_dir = st.data_dir;
    out->fsync = st.fsync;
    out->journal_bytes = st.journal_bytes;
    out->last_snapshot_ms_ago = st.last_snapshot_ms_ago;
    out->last_sync_error = st.last_sync_error;
}

static int persist_snapshot_hook(void *user, uint64_t *generation, uint64_t *instances, char *err,
                                 size_t err_len)
{
    struct daemon *d = user;
    int rc = d->persist ? persist_snapshot(d->persist, generation, instances) : DNSD_EIO;
    if (rc != 0)
        snprintf(err, err_len, "%s", d->persist ? journal_strerror(rc) : "dnsd is stopping");
    return rc;
}

/* The journal's write-out is done: answer the durable writes waiting for it. */
static void on_persist_synced(void *user, int err, const char *reason)
{
    struct daemon *d = user;
    apiserver_commit_done(d->http, err, reason);
}

/* After a restore: publish every service's answers, start the checks, remember the
 * instances (the registry's change callback was quiet meanwhile). */
static bool publish_restored(const struct registry_service *svc, void *user)
{
    struct daemon *d = user;
    const char *name = registry_service_name(svc);
    if (answers_update_service(d->ans, d->reg, name) != 0)
        log_error("registry", "%s: out of memory building answers", name);
    for (size_t i = 0; i < registry_service_instance_count(svc); i++) {
        const struct registry_instance *inst = registry_service_instance(svc, i);
        sync_check(d, NULL, inst);
        if (memo_put(&d->memos, inst) != 0)
            log_error("registry", "%s/%s: out of memory remembering the instance", name, inst->id);
    }
    return true;
}

/* Restored instances that claim an address outside allowed_addresses, which may have been
 * narrowed since they registered. */
struct disallowed {
    const struct dnsd_config *cfg;
    struct disallowed_instance {
        char service[DNSD_LABEL_MAX + 1], id[DNSD_LABEL_MAX + 1];
        char addr[INET6_ADDRSTRLEN];
    } * v;
    size_t n, cap;
    bool out_of_memory;
};

static bool find_disallowed(const struct registry_service *svc, void *user)
{
    struct disallowed *l = user;
    for (size_t i = 0; i < registry_service_instance_count(svc); i++) {
        const struct registry_instance *inst = registry_service_instance(svc, i);
        for (size_t a = 0; a < inst->n_addrs; a++) {
            const struct registry_addr *addr = &inst->addrs[a];
            if (netlist_contains_addr(l->cfg->allowed_addresses, l->cfg->n_allowed_addresses,
                                      addr->family, addr->bytes))
                continue;
            if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                struct disallowed_instance *v = realloc(l->v, cap * sizeof(*v));
                if (v == NULL) {
                    l->out_of_memory = true;
                    return false;
                }
                l->v = v;
                l->cap = cap;
            }
            struct disallowed_instance *e = &l->v[l->n++];
            snprintf(e->service, sizeof(e->service), "%s", inst->service);
            snprintf(e->id, sizeof(e->id), "%s", inst->id);
            if (!inet_ntop(addr->family, addr->bytes, e->addr, sizeof(e->addr)))
                snprintf(e->addr, sizeof(e->addr), "?");
            break;
        }
    }
    return true;
}

/* A registration made now with an address outside allowed_addresses gets 403, so one
 * restored from the data directory is not served either: it is removed (and the removal
 * journaled) with a warning, as if it had deregistered. */
static int drop_disallowed(struct daemon *d, char *err, size_t err_len)
{
    struct disallowed l = {.cfg = &d->cfg};
    registry_foreach_service(d->reg, find_disallowed, &l);
    if (l.out_of_memory) {
        free(l.v);
        snprintf(err, err_len, "out of memory checking restored addresses");
        return DNSD_ENOMEM;
    }
    for (size_t i = 0; i < l.n; i++) {
        /* Still restoring: the change callback stays quiet, so the removal is journaled
         * here (as the API journals its own) and logged once, as this warning. */
        if (registry_remove(d->reg, l.v[i].service, l.v[i].id) == 0) {
            log_warn("registry",
                     "%s/%s removed at start-up: it claims %s, outside allowed_addresses",
                     l.v[i].service, l.v[i].id, l.v[i].addr);
            int rc = persist_record(d->persist, JOURNAL_REMOVE, l.v[i].service, l.v[i].id);
            if (rc < 0)
                log_error("persist", "%s/%s: cannot journal the removal: %s", l.v[i].service,
                          l.v[i].id, journal_strerror(rc));
        }
    }
    free(l.v);
    return 0;
}

static int start_persistence(struct daemon *d, enum daemon_failure *why, char *err, size_t err_len)
{
    const struct dnsd_config *cfg = &d->cfg;
    struct persist_config pc = {
        .data_dir = cfg->data_dir,
        .fsync = cfg->persist_fsync,
        .fsync_interval_ms = cfg->persist_fsync_interval_ms,
        .snapshot_every = cfg->persist_snapshot_every,
        .restart_grace_ms = cfg->persist_restart_grace_ms,
        .repair = cfg->persist_repair,
    };
    struct persist_restore_report rep;
    d->restoring = true;
    int rc =
        persist_open(d->loop, &pc, d->reg, on_persist_synced, d, &d->persist, &rep, err, err_len);
    if (rc != 0) {
        d->restoring = false;
        /* A lock held by another dnsd or an unusable directory is the environment; damaged
         * or unreadable files need the operator. */
        *why = rc <= JOURNAL_ETRUNCATED && rc >= JOURNAL_ECORRUPT ? DAEMON_FAILED_DATA
                                                                  : DAEMON_FAILED_RUNTIME;
        return rc;
    }
    /* Before anything is built from the restored instances (answers, checks, memos). */
    rc = drop_disallowed(d, err, err_len);
    d->restoring = false;
    if (rc != 0) {
        *why = DAEMON_FAILED_RUNTIME;
        return rc;
    }
    registry_foreach_service(d->reg, publish_restored, d);
    if (rep.had_snapshot)
        log_info("persist",
                 "restored %zu instances from snapshot %" PRIu64 " + %" PRIu64
                 " journal records (%s, fsync %s)",
                 rep.instances, rep.snapshot_generation, rep.journal_records, cfg->data_dir,
                 config_fsync_name(cfg->persist_fsync));
    else
        log_info("persist",
                 "restored %zu instances from no snapshot + %" PRIu64
                 " journal records (%s, fsync %s)",
                 rep.instances, rep.journal_records, cfg->data_dir,
                 config_fsync_name(cfg->persist_fsync));
    struct api_persistence hooks = {
        .refusal = persist_refusal_hook,
        .written = persist_written_hook,
        .status = persist_status_hook,
        .snapshot = persist_snapshot_hook,
        .user = d,
    };
    api_set_persistence(d->api, &hooks);
    return 0;
}

static void on_deadline_timer(uv_timer_t *timer)
{
    struct daemon *d = timer->data;
    registry_advance(d->reg, uv_now(d->loop));
    arm_deadline_timer(d);
}

static void arm_deadline_timer(struct daemon *d)
{
    if (!d->deadline_timer_open)
        return;
    uint64_t next = registry_next_deadline(d->reg);
    if (next == UINT64_MAX) {
        uv_timer_stop(&d->deadline_timer);
        return;
    }
    uint64_t now = uv_now(d->loop);
    uv_timer_start(&d->deadline_timer, on_deadline_timer, next > now ? next - now : 0, 0);
}

/* Addresses the synthesised NS name resolves to: the specific listen addresses (a wildcard
 * such as 0.0.0.0 names no host). */
static size_t ns_addresses(const struct dnsd_config *cfg, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const char *host = cfg->listen[i].host;
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen = seen || strcmp(out[j], host) == 0;
        if (!seen)
            out[n++] = host;
    }
    return n;
}

static int load_zones(struct daemon *d, struct zonestore **out, char *err, size_t err_len)
{
    const struct dnsd_config *cfg = &d->cfg;
    const char *addrs[CONFIG_MAX_LISTEN];
    struct zonestore_apex apex = {
        .domain = cfg->domain,
        .ns_name = d->ns_name,
        .ns_addresses = addrs,
        .n_ns_addresses = ns_addresses(cfg, addrs),
        .rname = d->rname,
        .serial = d->serial_base,
        .refresh = cfg->soa_refresh,
        .retry = cfg->soa_retry,
        .expire = cfg->soa_expire,
        .minimum = cfg->soa_minimum,
        .ttl = cfg->soa_ttl,
    };
    /* The default zones directory is optional; one the operator named must exist. */
    struct stat st;
    const char *dir = cfg->zones_dir;
    if (!cfg->zones_dir_set && stat(dir, &st) != 0) {
        log_info("zones", "no zones directory %s; serving the service domain only", dir);
        dir = NULL;
    }
    return zonestore_load(dir, &apex, out, err, err_len);
}

int daemon_start(uv_loop_t *loop, const struct dnsd_config *cfg, struct daemon **out,
                 enum daemon_failure *why, char *err, size_t err_len)
{
    int rc = DNSD_ENOMEM;
    *why = DAEMON_FAILED_RUNTIME;
    struct daemon *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return DNSD_ENOMEM;
    d->loop = loop;
    d->cfg = *cfg;
    /* A fresh start must not go back in serial numbers: seconds since the epoch grow. */
    d->serial_base = (uint32_t)time(NULL);
    if (cfg->ns_name[0])
        snprintf(d->ns_name, sizeof(d->ns_name), "%s", cfg->ns_name);
    else
        snprintf(d->ns_name, sizeof(d->ns_name), "ns.%s", cfg->domain);
    if (cfg->rname[0])
        snprintf(d->rname, sizeof(d->rname), "%s", cfg->rname);
    else
        snprintf(d->rname, sizeof(d->rname), "hostmaster.%s", cfg->domain);

    rc = load_zones(d, &d->zs, err, err_len);
    if (rc != 0) {
        *why = DAEMON_FAILED_CONFIG;
        goto fail;
    }
    rc = DNSD_ENOMEM;
    struct registry_options reg_opts = {
        .preservation_enabled = cfg->preservation_enabled,
        .preservation_threshold = cfg->preservation_threshold,
        .preservation_min_instances = cfg->preservation_min_instances,
        .preservation_max_ms = cfg->preservation_max_ms,
        .max_instances = cfg->limits_max_instances,
        .max_instances_per_service = cfg->limits_max_instances_per_service,
        .max_meta_bytes = cfg->limits_max_meta_bytes,
    };
    d->reg = registry_new(&reg_opts, on_registry_change, d);
    d->ans = answers_new(d->cfg.domain, cfg->health_only_passing);
    struct api_config api_cfg = {
        .lease_default_s = cfg->lease_default_s,
        .lease_min_s = cfg->lease_min_s,
        .lease_max_s = cfg->lease_max_s,
        .deregister_after_default_ms = cfg->health_deregister_after_ms,
        .allowed = d->cfg.allowed_addresses, /* d->cfg outlives the api */
        .n_allowed = d->cfg.n_allowed_addresses,
    };
    d->api = d->reg ? api_new(d->reg, &api_cfg) : NULL;
    if (d->reg == NULL || d->ans == NULL || d->api == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    uv_timer_init(loop, &d->deadline_timer);
    d->deadline_timer.data = d;
    d->deadline_timer_open = true;
    rc = checks_new(loop, on_check_result, d, &d->checks);
    if (rc != 0) {
        snprintf(err, err_len, "cannot start the active checks: %s", dnsd_strerror(rc));
        goto fail;
    }
    /* Restored before any listener opens, so DNS answers the registry from the start. */
    if (cfg->data_dir[0] && (rc = start_persistence(d, why, err, err_len)) != 0)
        goto fail;

    if (cfg->rrl.enabled) {
        /* A secret hash seed, so that no one can aim prefixes at one window of the table. */
        uint64_t seed = uv_hrtime();
        (void)uv_random(NULL, NULL, &seed, sizeof(seed), 0, NULL);
        rc = rrl_new(&cfg->rrl, seed, &d->rrl);
        if (rc != 0) {
            snprintf(err, err_len, "dns.rrl: %s", dnsd_strerror(rc));
            goto fail;
        }
    }
    size_t n_threads = cfg->dns_workers ? cfg->dns_workers : uv_available_parallelism();
    if (n_threads > sizeof(d->dns_stats) / sizeof(d->dns_stats[0]))
        n_threads = sizeof(d->dns_stats) / sizeof(d->dns_stats[0]);
    struct server_config dns_cfg = {
        .listen = cfg->listen,
        .n_listen = cfg->n_listen,
        .tcp_idle_timeout_ms = cfg->tcp_idle_timeout_ms,
        .tcp_max_connections = cfg->tcp_max_connections,
        .tcp_max_connection_ms = cfg->tcp_max_connection_ms,
        .udp_rcvbuf = cfg->udp_rcvbuf,
        .forward = &cfg->forward,
        .rrl = d->rrl,
        .udp_sharing = n_threads > 1 ? SERVER_UDP_OPEN : SERVER_UDP_OWN,
        .query = {.domain = d->cfg.domain,
                  .dns_ttl = cfg->dns_ttl,
                  .min_ttl = cfg->dns_min_ttl,
                  .udp_max_size = cfg->udp_max_size},
    };
    rc = server_start(loop, &dns_cfg, d->zs, d->ans, &d->dns, err, err_len);
    if (rc != 0)
        goto fail;
    if (n_threads > 1) {
        rc = workers_start(n_threads - 1, &dns_cfg, d->dns, d->zs, d->ans, &d->workers, err,
                           err_len);
        if (rc != 0)
            goto fail;
    }
    size_t n_dns = 0;
    d->dns_stats[n_dns++] = server_metrics(d->dns);
    for (size_t i = 0; i < workers_count(d->workers); i++)
        d->dns_stats[n_dns++] = workers_metrics(d->workers, i);
    struct apiserver_config http_cfg = {
        .endpoints = cfg->api,
        .n_endpoints = cfg->n_api,
        .socket_mode = cfg->api_socket_mode,
        .max_body = cfg->api_max_body,
        .max_connections = cfg->api_max_connections,
        .timeout_s = cfg->api_timeout_s,
        .max_header = cfg->api_max_header,
        .socket_group = cfg->api_socket_group,
        .tls_cert = cfg->api_tls_cert,
        .tls_key = cfg->api_tls_key,
        .tokens = d->cfg.tokens,
        .n_tokens = d->cfg.n_tokens,
    };
    rc = apiserver_start(loop, &http_cfg, d->api, &d->http, err, err_len);
    if (rc != 0)
        goto fail;
    struct metrics_sources metrics = {.reg = d->reg,
                                      .dns = d->dns_stats,
                                      .n_dns = n_dns,
                                      .checks = checks_metrics(d->checks),
                                      .changes = &d->changes};
    apiserver_set_metrics(d->http, &metrics);

    for (size_t i = 0; i < cfg->n_listen; i++) {
        const struct config_listen *l = &cfg->listen[i];
        log_info("dns",
                 l->family == AF_INET6 ? "listening on [%s]:%u (udp, tcp)"
                                       : "listening on %s:%u (udp, tcp)",
                 l->host, l->port);
    }
    log_info("dns", "authoritative for %s and %zu zone(s) in all; %zu thread(s) answer UDP",
             d->cfg.domain, zonestore_zone_count(d->zs), n_dns);
    if (cfg->preservation_enabled) {
        char hold[32];
        dnsd_duration_format(cfg->preservation_max_ms, hold, sizeof(hold));
        log_info("health",
                 "self-preservation armed: when more than %g of %" PRIu32
                 "+ instances are overdue at once, lapsed ones keep their health for up to %s",
                 cfg->preservation_threshold, cfg->preservation_min_instances, hold);
    }
    api_set_ready(d->api, true);
    *out = d;
    return 0;

fail:
    daemon_stop(d);
    return rc;
}

int daemon_reload(struct daemon *d, char *err, size_t err_len)
{
    struct zonestore *fresh;
    int rc = load_zones(d, &fresh, err, err_len);
    if (rc != 0)
        return rc;
    server_set_zonestore(d->dns, fresh);
    workers_set_zonestore(d->workers, fresh);
    /* A worker may be answering from the old store: free it once none can be. */
    if (d->workers)
        urcu_memb_synchronize_rcu();
    zonestore_free(d->zs);
    d->zs = fresh;
    log_info("zones", "reloaded: %zu zone(s)", zonestore_zone_count(fresh));
    return 0;
}

static void daemon_free(struct daemon *d)
{
    api_free(d->api);
    registry_free(d->reg);
    answers_free(d->ans);
    zonestore_free(d->zs);
    rrl_free(d->rrl);
    memos_clear(&d->memos);
    free(d);
}

static void deadline_timer_closed(uv_handle_t *handle)
{
    daemon_free(handle->data);
}

void daemon_stop(struct daemon *d)
{
    /* The last write-out answers the durable writes still waiting, before the API closes. */
    persist_close(d->persist);
    d->persist = NULL;
    if (d->http)
        apiserver_stop(d->http);
    /* The workers' threads end here, before anything they read is freed. */
    workers_stop(d->workers);
    if (d->dns)
        server_stop(d->dns);
    d->http = NULL;
    d->workers = NULL;
    d->dns = NULL;
    /* No probe result may reach the registry from here on. */
    checks_stop(d->checks);
    d->checks = NULL;
    if (d->deadline_timer_open) {
        /* The daemon holds the timer handle, so it is freed only in the close callback. */
        d->deadline_timer_open = false;
        uv_close((uv_handle_t *)&d->deadline_timer, deadline_timer_closed);
        return;
    }
    daemon_free(d);
}
