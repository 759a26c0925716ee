/* SPDX-License-Identifier: BSD-2-Clause
 * Prepared answers: one snapshot per service of its answerable instances (sorted by id, TXT
 * strings already formatted), kept in an open-addressing hash table keyed by the lower-case
 * service name so the query path finds a service in O(1). An update builds the new snapshot
 * completely before it replaces the old one, so a failed update leaves the old data
 * published; only a renewal's lease deadline is written in place.
 *
 * Readers on other threads never lock: every pointer they follow is published with a
 * release store after what it points to is complete, a removed service leaves a tombstone
 * (so no probe sequence is ever cut short), a full table is copied into a new one that
 * replaces it whole, and what a reader may still hold (old snapshots, old tables) is freed
 * by liburcu's call_rcu once every reader has left its read-side critical section. No I/O,
 * no DNS wire format. */
#include "answers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/compiler.h>
#include <urcu/urcu-memb.h>

#include "dnsd/error.h"

/* Compact, because there is one per answerable instance (issue #4: at most 1 KiB of RSS per
 * instance in all): everything variable-sized lives in one allocation, blob, except the
 * first address, so that an A or AAAA answer reads no memory beyond the service's own. */
struct answers_instance {
    void *blob;                  /* owned: tags[], txt[], addrs[], then the strings */
    const char *id;              /* in blob */
    const char **tags;           /* in blob */
    const char **txt;            /* in blob; n_txt >= 1 */
    struct registry_addr *addrs; /* in blob: the addresses after the first */
    struct registry_addr addr0;  /* the first address */
    uint64_t expires_ms;
    uint16_t port, priority, weight;
    uint8_t n_addrs, n_tags, n_txt; /* the registry's limits are 16, 32 and 64 */
    uint8_t proto;                  /* enum registry_proto */
};

/* One allocation: this header, inst[], then the name, so a lookup and an answer touch
 * contiguous memory (at 100,000 services every separate block is a cache miss). */
struct answers_service {
    uint64_t hash;
    const char *name; /* after inst[] */
    size_t n_inst;
    bool has_proto[2];
    struct rcu_head rcu;            /* for the deferred free once it is replaced */
    struct answers_instance inst[]; /* sorted by id */
};

/* A slot is NULL (never used: a probe stops here), TOMBSTONE (a removed service: a probe
 * goes on) or a published service. */
struct answers_table {
    struct rcu_head rcu; /* for the deferred free once a larger copy replaces it */
    size_t mask;         /* slots - 1; slots is a power of two */
    struct answers_service *slot[];
};

struct answers {
    char *domain;                /* owned */
    struct answers_table *table; /* owned; read by other threads (release/acquire) */
    size_t n_used;               /* slots not NULL: services + tombstones */
    size_t n_services;           /* the counters below are read by other threads (relaxed) */
    size_t n_proto[2];           /* services with at least one instance of each proto */
    uint64_t serial;
    bool only_passing;
};

#define ANSWERS_MIN_SLOTS 64
/* A distinct address that is never a service. */
static struct answers_service tombstone_service;
#define TOMBSTONE (&tombstone_service)

/* FNV-1a over the name. */
static uint64_t hash_name(const char *name)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static void instance_clear(struct answers_instance *inst)
{
    free(inst->blob);
}

static void service_free(struct answers_service *svc)
{
    if (!svc)
        return;
    for (size_t i = 0; i < svc->n_inst; i++)
        instance_clear(&svc->inst[i]);
    free(svc);
}

static void service_free_deferred(struct rcu_head *head)
{
    service_free(caa_container_of(head, struct answers_service, rcu));
}

static void table_free_deferred(struct rcu_head *head)
{
    free(caa_container_of(head, struct answers_table, rcu));
}

static struct answers_table *table_new(size_t slots)
{
    struct answers_table *t = calloc(1, sizeof(*t) + slots * sizeof(t->slot[0]));
    if (t)
        t->mask = slots - 1;
    return t;
}

struct answers *answers_new(const char *domain, bool only_passing)
{
    struct answers *ans = calloc(1, sizeof(*ans));
    if (!ans)
        goto fail;
    ans->only_passing = only_passing;
    ans->domain = strdup(domain);
    ans->table = table_new(ANSWERS_MIN_SLOTS);
    if (!ans->domain || !ans->table)
        goto fail;
    return ans;

fail:
    answers_free(ans);
    return NULL;
}

void answers_free(struct answers *ans)
{
    if (!ans)
        return;
    /* Snapshots and tables replaced earlier may still wait for their grace period. */
    urcu_memb_barrier();
    for (size_t i = 0; ans->table && i <= ans->table->mask; i++) {
        if (ans->table->slot[i] != TOMBSTONE)
            service_free(ans->table->slot[i]);
    }
    free(ans->table);
    free(ans->domain);
    free(ans);
}

uint64_t answers_serial(const struct answers *ans)
{
    return __atomic_load_n(&ans->serial, __ATOMIC_RELAXED);
}

const char *answers_domain(const struct answers *ans)
{
    return ans->domain;
}

size_t answers_service_count(const struct answers *ans)
{
    return __atomic_load_n(&ans->n_services, __ATOMIC_RELAXED);
}

bool answers_has_proto(const struct answers *ans, enum registry_proto proto)
{
    return __atomic_load_n(&ans->n_proto[proto == REGISTRY_PROTO_UDP], __ATOMIC_RELAXED) > 0;
}

/* The service called name in t and its slot index (*at), or NULL. Linear probing; a table
 * always has a NULL slot (it is at most half used), so the probe ends. Each slot is read
 * once: on a reader's thread the writer may replace it at any moment. */
static struct answers_service *find_slot(const struct answers_table *t, const char *name,
                                         uint64_t hash, size_t *at)
{
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        struct answers_service *svc = __atomic_load_n(&t->slot[i], __ATOMIC_ACQUIRE);
        if (svc == NULL)
            return NULL;
        if (svc != TOMBSTONE && svc->hash == hash && strcmp(svc->name, name) == 0) {
            *at = i;
            return svc;
        }
    }
}

const struct answers_service *answers_find_service(const struct answers *ans, const char *service)
{
    size_t at;
    return find_slot(__atomic_load_n(&ans->table, __ATOMIC_ACQUIRE), service, hash_name(service),
                     &at);
}

const char *answers_service_name(const struct answers_service *svc)
{
    return svc->name;
}

size_t answers_service_instance_count(const struct answers_service *svc)
{
    return svc->n_inst;
}

const struct answers_instance *answers_service_instance(const struct answers_service *svc, size_t i)
{
    return &svc->inst[i];
}

const struct answers_instance *answers_service_find_instance(const struct answers_service *svc,
                                                             const char *id)
{
    size_t lo = 0, hi = svc->n_inst;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(svc->inst[mid].id, id);
        if (cmp == 0)
            return &svc->inst[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *answers_instance_id(const struct answers_instance *inst)
{
    return inst->id;
}

size_t answers_instance_addr_count(const struct answers_instance *inst)
{
    return inst->n_addrs;
}

const struct registry_addr *answers_instance_addr(const struct answers_instance *inst, size_t i)
{
    return i == 0 ? &inst->addr0 : &inst->addrs[i - 1];
}

uint16_t answers_instance_port(const struct answers_instance *inst)
{
    return inst->port;
}

enum registry_proto answers_instance_proto(const struct answers_instance *inst)
{
    return (enum registry_proto)inst->proto;
}

uint16_t answers_instance_priority(const struct answers_instance *inst)
{
    return inst->priority;
}

uint16_t answers_instance_weight(const struct answers_instance *inst)
{
    return inst->weight;
}

uint64_t answers_instance_expires_ms(const struct answers_instance *inst)
{
    return __atomic_load_n(&inst->expires_ms, __ATOMIC_RELAXED);
}

bool answers_instance_is_tagged(const struct answers_instance *inst)
{
    return inst->n_tags > 0;
}

bool answers_instance_has_tag(const struct answers_instance *inst, const char *tag)
{
    for (size_t i = 0; i < inst->n_tags; i++) {
        if (strcmp(inst->tags[i], tag) == 0)
            return true;
    }
    return false;
}

size_t answers_instance_txt_count(const struct answers_instance *inst)
{
    return inst->n_txt;
}

const char *answers_instance_txt(const struct answers_instance *inst, size_t i)
{
    return inst->txt[i];
}

/* Copy one registry instance into snapshot form: one allocation for all its parts. */
static int instance_copy(struct answers_instance *dst, const struct registry_instance *src)
{
    memset(dst, 0, sizeof(*dst));
    size_t n_addrs = src->n_addrs < REGISTRY_MAX_ADDRS ? src->n_addrs : REGISTRY_MAX_ADDRS;
    size_t n_tags = src->n_tags < REGISTRY_MAX_TAGS ? src->n_tags : REGISTRY_MAX_TAGS;
    size_t n_meta = src->n_meta < REGISTRY_MAX_META ? src->n_meta : REGISTRY_MAX_META;
    /* RFC 6763 §6.1: a TXT record always holds at least one (possibly empty) string. */
    size_t n_txt = n_meta ? n_meta : 1;
    size_t strings = strlen(src->id) + 1 + (n_meta ? 0 : 1);
    for (size_t i = 0; i < n_tags; i++)
        strings += strlen(src->tags[i]) + 1;
    for (size_t i = 0; i < n_meta; i++)
        strings += strlen(src->meta[i].key) + 1 + strlen(src->meta[i].value) + 1;
    size_t n_more = n_addrs ? n_addrs - 1 : 0; /* addresses after the first */
    size_t head = (n_tags + n_txt) * sizeof(char *) + n_more * sizeof(struct registry_addr);
    char *blob = malloc(head + strings);
    if (!blob)
        return DNSD_ENOMEM;
    /* Pointer arrays first, so that every part is aligned for its type. */
    dst->blob = blob;
    dst->tags = (const char **)(void *)blob;
    dst->txt = dst->tags + n_tags;
    dst->addrs = (struct registry_addr *)(void *)(dst->txt + n_txt);
    char *str = (char *)(dst->addrs + n_more);
    if (n_addrs) {
        dst->addr0 = src->addrs[0];
        memcpy(dst->addrs, src->addrs + 1, n_more * sizeof(dst->addrs[0]));
    }
    dst->id = str;
    str = stpcpy(str, src->id) + 1;
    for (size_t i = 0; i < n_tags; i++) {
        dst->tags[i] = str;
        str = stpcpy(str, src->tags[i]) + 1;
    }
    for (size_t i = 0; i < n_meta; i++) {
        dst->txt[i] = str;
        str = stpcpy(stpcpy(stpcpy(str, src->meta[i].key), "="), src->meta[i].value) + 1;
    }
    if (!n_meta) {
        *str = '\0';
        dst->txt[0] = str;
    }
    dst->n_addrs = (uint8_t)n_addrs;
    dst->n_tags = (uint8_t)n_tags;
    dst->n_txt = (uint8_t)n_txt;
    dst->port = src->port;
    dst->proto = (uint8_t)src->proto;
    dst->priority = src->priority;
    dst->weight = src->weight;
    dst->expires_ms = src->expires_ms;
    return 0;
}

static int compare_instances(const void *a, const void *b)
{
    return strcmp(((const struct answers_instance *)a)->id,
                  ((const struct answers_instance *)b)->id);
}

/* Does DNS answer an instance in this health? (health-design.md: never critical or
 * maintenance.) */
static bool is_answerable(const struct answers *ans, enum registry_health health)
{
    return health == REGISTRY_HEALTH_PASSING ||
           (health == REGISTRY_HEALTH_WARNING && !ans->only_passing);
}

/* Build the snapshot of a registry service's answerable instances; NULL when out of memory
 * (*empty false) or when none is answerable (*empty true). */
static struct answers_service *
snapshot(const struct answers *ans, const struct registry_service *rsvc, uint64_t hash, bool *empty)
{
    size_t n = registry_service_instance_count(rsvc);
    size_t n_answerable = 0;
    for (size_t i = 0; i < n; i++)
        n_answerable += is_answerable(ans, registry_service_instance(rsvc, i)->health);
    *empty = n_answerable == 0;
    if (*empty)
        return NULL;
    const char *name = registry_service_name(rsvc);
    size_t name_size = strlen(name) + 1;
    size_t insts = n_answerable * sizeof(struct answers_instance);
    struct answers_service *svc = calloc(1, sizeof(*svc) + insts + name_size);
    if (!svc)
        return NULL;
    svc->hash = hash;
    svc->name = memcpy((char *)svc->inst + insts, name, name_size);
    for (size_t i = 0; i < n; i++) {
        const struct registry_instance *src = registry_service_instance(rsvc, i);
        if (!is_answerable(ans, src->health))
            continue;
        struct answers_instance *inst = &svc->inst[svc->n_inst];
        if (instance_copy(inst, src) != 0)
            goto fail;
        svc->n_inst++;
        svc->has_proto[inst->proto == REGISTRY_PROTO_UDP] = true;
    }
    qsort(svc->inst, svc->n_inst, sizeof(*svc->inst), compare_instances);
    return svc;

fail:
    service_free(svc);
    return NULL;
}

/* Copy the live services into a new table at most a quarter full when this one would pass
 * half full (services and tombstones), publish it, and free the old one after a grace
 * period. Tombstones are dropped by the copy. */
static int maybe_grow(struct answers *ans)
{
    struct answers_table *old = ans->table;
    if ((ans->n_used + 1) * 2 <= old->mask + 1)
        return 0;
    size_t slots = ANSWERS_MIN_SLOTS;
    while (slots < (ans->n_services + 1) * 4)
        slots *= 2;
    struct answers_table *t = table_new(slots);
    if (!t)
        return DNSD_ENOMEM;
    for (size_t i = 0; i <= old->mask; i++) {
        struct answers_service *svc = old->slot[i];
        if (svc == NULL || svc == TOMBSTONE)
            continue;
        size_t j = svc->hash & t->mask;
        while (t->slot[j])
            j = (j + 1) & t->mask;
        t->slot[j] = svc;
    }
    ans->n_used = ans->n_services;
    __atomic_store_n(&ans->table, t, __ATOMIC_RELEASE);
    urcu_memb_call_rcu(&old->rcu, table_free_deferred);
    return 0;
}

static void count_protos(struct answers *ans, const struct answers_service *svc, int sign)
{
    for (size_t p = 0; p < 2; p++) {
        if (svc->has_proto[p])
            __atomic_store_n(&ans->n_proto[p], sign > 0 ? ans->n_proto[p] + 1 : ans->n_proto[p] - 1,
                             __ATOMIC_RELAXED);
    }
}

/* Put fresh in the first free (NULL or tombstone) slot of its probe sequence; the caller
 * has made sure it is absent and that the table has room. */
static void insert(struct answers *ans, struct answers_service *fresh)
{
    struct answers_table *t = ans->table;
    size_t i = fresh->hash & t->mask;
    while (t->slot[i] != NULL && t->slot[i] != TOMBSTONE)
        i = (i + 1) & t->mask;
    if (t->slot[i] == NULL)
        ans->n_used++;
    __atomic_store_n(&t->slot[i], fresh, __ATOMIC_RELEASE);
}

int answers_update_service(struct answers *ans, const struct registry *reg, const char *service)
{
    uint64_t hash = hash_name(service);
    const struct registry_service *rsvc = registry_find_service(reg, service);
    struct answers_service *fresh = NULL;

    if (rsvc && registry_service_instance_count(rsvc) > 0) {
        bool empty;
        fresh = snapshot(ans, rsvc, hash, &empty);
        if (!fresh && !empty)
            return DNSD_ENOMEM;
    }
    size_t at = 0;
    struct answers_service *old = find_slot(ans->table, service, hash, &at);
    if (fresh && !old && maybe_grow(ans) != 0) {
        service_free(fresh);
        return DNSD_ENOMEM;
    }
    if (old) {
        /* Readers see the old snapshot or the new one (or none), never a half-built one. */
        __atomic_store_n(&ans->table->slot[at], fresh ? fresh : TOMBSTONE, __ATOMIC_RELEASE);
        count_protos(ans, old, -1);
        __atomic_store_n(&ans->n_services, ans->n_services - 1, __ATOMIC_RELAXED);
        urcu_memb_call_rcu(&old->rcu, service_free_deferred);
    } else if (fresh) {
        insert(ans, fresh);
    }
    if (fresh) {
        count_protos(ans, fresh, +1);
        __atomic_store_n(&ans->n_services, ans->n_services + 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&ans->serial, registry_serial(reg), __ATOMIC_RELAXED);
    return 0;
}

int answers_renew_instance(struct answers *ans, const struct registry *reg, const char *service,
                           const char *id)
{
    const struct registry_instance *src = registry_find_instance(reg, service, id);
    size_t at;
    struct answers_service *svc = find_slot(ans->table, service, hash_name(service), &at);
    /* answers_service_find_instance hands out const pointers; this module owns the data. */
    struct answers_instance *inst =
        svc ? (struct answers_instance *)answers_service_find_instance(svc, id) : NULL;
    if (!src || !inst)
        return DNSD_ENOENT;
    /* Readers on other threads may be reading it: one whole 64-bit store. */
    __atomic_store_n(&inst->expires_ms, src->expires_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&ans->serial, registry_serial(reg), __ATOMIC_RELAXED);
    return 0;
}
