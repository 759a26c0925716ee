/* SPDX-License-Identifier: BSD-2-Clause
 * Prepared answers: one snapshot per service of its answerable instances (sorted by id, TXT
 * strings already formatted), kept in a chained hash table keyed by the lower-case service
 * name so the query path finds a service in O(1). An update builds the new snapshot
 * completely before it replaces the old one, so a failed update leaves the old data
 * published; only a renewal's lease deadline is written in place. No I/O, no DNS wire
 * format. */
#include "answers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct answers_service *next;   /* owned: the next service in the hash chain */
    struct answers_instance inst[]; /* sorted by id */
};

struct answers {
    char *domain;                     /* owned */
    struct answers_service **buckets; /* owned array of owned chains */
    size_t n_buckets;                 /* a power of two */
    size_t n_services;
    size_t n_proto[2]; /* services with at least one instance of each proto */
    uint64_t serial;
    bool only_passing;
};

#define ANSWERS_MIN_BUCKETS 64

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

struct answers *answers_new(const char *domain, bool only_passing)
{
    struct answers *ans = calloc(1, sizeof(*ans));
    if (!ans)
        goto fail;
    ans->only_passing = only_passing;
    ans->domain = strdup(domain);
    ans->buckets = calloc(ANSWERS_MIN_BUCKETS, sizeof(*ans->buckets));
    if (!ans->domain || !ans->buckets)
        goto fail;
    ans->n_buckets = ANSWERS_MIN_BUCKETS;
    return ans;

fail:
    answers_free(ans);
    return NULL;
}

void answers_free(struct answers *ans)
{
    if (!ans)
        return;
    for (size_t b = 0; b < ans->n_buckets; b++) {
        struct answers_service *svc = ans->buckets[b];
        while (svc) {
            struct answers_service *next = svc->next;
            service_free(svc);
            svc = next;
        }
    }
    free(ans->buckets);
    free(ans->domain);
    free(ans);
}

uint64_t answers_serial(const struct answers *ans)
{
    return ans->serial;
}

const char *answers_domain(const struct answers *ans)
{
    return ans->domain;
}

size_t answers_service_count(const struct answers *ans)
{
    return ans->n_services;
}

bool answers_has_proto(const struct answers *ans, enum registry_proto proto)
{
    return ans->n_proto[proto == REGISTRY_PROTO_UDP] > 0;
}

/* The link that points at the service called name (or the chain's terminating NULL). */
static struct answers_service **find_link(const struct answers *ans, const char *name,
                                          uint64_t hash)
{
    struct answers_service **link = &ans->buckets[hash & (ans->n_buckets - 1)];
    while (*link && ((*link)->hash != hash || strcmp((*link)->name, name) != 0))
        link = &(*link)->next;
    return link;
}

const struct answers_service *answers_find_service(const struct answers *ans, const char *service)
{
    return *find_link(ans, service, hash_name(service));
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
    return inst->expires_ms;
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

/* Double the bucket array when the table is fuller than one service per bucket. */
static int maybe_grow(struct answers *ans)
{
    if (ans->n_services < ans->n_buckets)
        return 0;
    size_t n = ans->n_buckets * 2;
    struct answers_service **buckets = calloc(n, sizeof(*buckets));
    if (!buckets)
        return DNSD_ENOMEM;
    for (size_t b = 0; b < ans->n_buckets; b++) {
        struct answers_service *svc = ans->buckets[b];
        while (svc) {
            struct answers_service *next = svc->next;
            svc->next = buckets[svc->hash & (n - 1)];
            buckets[svc->hash & (n - 1)] = svc;
            svc = next;
        }
    }
    free(ans->buckets);
    ans->buckets = buckets;
    ans->n_buckets = n;
    return 0;
}

static void count_protos(struct answers *ans, const struct answers_service *svc, int sign)
{
    for (size_t p = 0; p < 2; p++) {
        if (svc->has_proto[p])
            ans->n_proto[p] = sign > 0 ? ans->n_proto[p] + 1 : ans->n_proto[p] - 1;
    }
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
    if (fresh && !*find_link(ans, service, hash) && maybe_grow(ans) != 0) {
        service_free(fresh);
        return DNSD_ENOMEM;
    }

    struct answers_service **link = find_link(ans, service, hash);
    struct answers_service *old = *link;
    if (old) {
        /* Nobody else reads concurrently yet; an RCU-style deferred free replaces this
         * once DNS loops run on their own threads. */
        *link = old->next;
        count_protos(ans, old, -1);
        ans->n_services--;
        service_free(old);
    }
    if (fresh) {
        fresh->next = ans->buckets[hash & (ans->n_buckets - 1)];
        ans->buckets[hash & (ans->n_buckets - 1)] = fresh;
        count_protos(ans, fresh, +1);
        ans->n_services++;
    }
    ans->serial = registry_serial(reg);
    return 0;
}

int answers_renew_instance(struct answers *ans, const struct registry *reg, const char *service,
                           const char *id)
{
    const struct registry_instance *src = registry_find_instance(reg, service, id);
    struct answers_service *svc = *find_link(ans, service, hash_name(service));
    /* answers_service_find_instance hands out const pointers; this module owns the data. */
    struct answers_instance *inst =
        svc ? (struct answers_instance *)answers_service_find_instance(svc, id) : NULL;
    if (!src || !inst)
        return DNSD_ENOENT;
    inst->expires_ms = src->expires_ms;
    ans->serial = registry_serial(reg);
    return 0;
}
