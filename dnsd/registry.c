/* SPDX-License-Identifier: BSD-2-Clause
 * The registry: services kept in a name-sorted array, each holding its instances in an
 * id-sorted array (binary search, O(log n) lookup), plus one binary min-heap of lease
 * deadlines for O(log n) expiry. It owns deep copies of every instance it holds.
 * No DNS, no I/O, no clock: now_ms always comes from the caller. */
#include "registry.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dnsd/error.h"
#include "dnsd/names.h"

/* One stored instance: the public struct plus its place in the heap and index. */
struct entry {
    struct registry_instance inst; /* owned fields: service, id, tags, meta */
    struct registry_service *svc;  /* borrowed from the registry's service array */
    size_t heap_idx;               /* position in reg->heap */
};

struct registry_service {
    char *name;           /* owned */
    struct entry **items; /* owned array of owned entries, sorted by id */
    size_t n_items;
    size_t cap_items;
};

struct registry {
    struct registry_service **svcs; /* owned array of owned services, sorted by name */
    size_t n_svcs;
    size_t cap_svcs;
    struct entry **heap; /* owned array; entries borrowed from the services */
    size_t n_heap;
    size_t cap_heap;
    uint64_t serial;
    registry_change_cb *on_change; /* may be NULL */
    void *user;                    /* borrowed; passed to on_change */
};

/* Grow *arr (of elem-size items) so that it holds at least need items. */
static int reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return DNSD_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Lease deadline for a heartbeat at now_ms, saturating instead of wrapping. */
static uint64_t deadline(uint64_t now_ms, uint32_t ttl_s)
{
    uint64_t len = (uint64_t)ttl_s * 1000u;
    return now_ms > UINT64_MAX - len ? UINT64_MAX : now_ms + len;
}

/* ---- heap ---- */

static void heap_set(struct registry *reg, size_t i, struct entry *e)
{
    reg->heap[i] = e;
    e->heap_idx = i;
}

static void heap_up(struct registry *reg, size_t i)
{
    struct entry *e = reg->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (reg->heap[parent]->inst.expires_ms <= e->inst.expires_ms)
            break;
        heap_set(reg, i, reg->heap[parent]);
        i = parent;
    }
    heap_set(reg, i, e);
}

static void heap_down(struct registry *reg, size_t i)
{
    struct entry *e = reg->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= reg->n_heap)
            break;
        if (child + 1 < reg->n_heap &&
            reg->heap[child + 1]->inst.expires_ms < reg->heap[child]->inst.expires_ms)
            child++;
        if (e->inst.expires_ms <= reg->heap[child]->inst.expires_ms)
            break;
        heap_set(reg, i, reg->heap[child]);
        i = child;
    }
    heap_set(reg, i, e);
}

/* Restore heap order after entry e's deadline changed. */
static void heap_fix(struct registry *reg, struct entry *e)
{
    heap_up(reg, e->heap_idx);
    heap_down(reg, e->heap_idx);
}

/* Append e; the caller has reserved room. */
static void heap_push(struct registry *reg, struct entry *e)
{
    assert(reg->n_heap < reg->cap_heap);
    heap_set(reg, reg->n_heap++, e);
    heap_up(reg, e->heap_idx);
}

static void heap_remove(struct registry *reg, struct entry *e)
{
    size_t i = e->heap_idx;
    assert(i < reg->n_heap && reg->heap[i] == e);
    struct entry *last = reg->heap[--reg->n_heap];
    if (last != e) {
        heap_set(reg, i, last);
        heap_fix(reg, last);
    }
}

/* ---- sorted index ---- */

/* Binary search for name in the service array; *pos receives the insertion point. */
static struct registry_service *svc_search(const struct registry *reg, const char *name,
                                           size_t *pos)
{
    size_t lo = 0, hi = reg->n_svcs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->svcs[mid]->name, name);
        if (c == 0) {
            *pos = mid;
            return reg->svcs[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

/* Binary search for id in a service's instances; *pos receives the insertion point. */
static struct entry *item_search(const struct registry_service *svc, const char *id, size_t *pos)
{
    size_t lo = 0, hi = svc->n_items;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(svc->items[mid]->inst.id, id);
        if (c == 0) {
            *pos = mid;
            return svc->items[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

static struct entry *entry_find(const struct registry *reg, const char *service, const char *id)
{
    size_t pos;
    if (!service || !id)
        return NULL;
    struct registry_service *svc = svc_search(reg, service, &pos);
    return svc ? item_search(svc, id, &pos) : NULL;
}

static void service_free(struct registry_service *svc)
{
    if (!svc)
        return;
    free(svc->name);
    free(svc->items);
    free(svc);
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    registry_instance_clear(&e->inst);
    free(e);
}

/* ---- instance copies ---- */

void registry_instance_clear(struct registry_instance *inst)
{
    if (!inst)
        return;
    free(inst->service);
    free(inst->id);
    for (size_t i = 0; inst->tags && i < inst->n_tags; i++)
        free(inst->tags[i]);
    free(inst->tags);
    for (size_t i = 0; inst->meta && i < inst->n_meta; i++) {
        free(inst->meta[i].key);
        free(inst->meta[i].value);
    }
    free(inst->meta);
    inst->service = NULL;
    inst->id = NULL;
    inst->tags = NULL;
    inst->n_tags = 0;
    inst->meta = NULL;
    inst->n_meta = 0;
}

/* Deep-copy the configuration fields of src into dst (zeroed state fields). */
static int instance_copy(struct registry_instance *dst, const struct registry_instance *src)
{
    memset(dst, 0, sizeof(*dst));
    memcpy(dst->addrs, src->addrs, sizeof(dst->addrs));
    dst->n_addrs = src->n_addrs;
    dst->port = src->port;
    dst->proto = src->proto;
    dst->priority = src->priority;
    dst->weight = src->weight;
    dst->ttl_s = src->ttl_s;
    dst->service = strdup(src->service);
    dst->id = strdup(src->id);
    if (!dst->service || !dst->id)
        goto fail;
    if (src->n_tags) {
        dst->tags = calloc(src->n_tags, sizeof(*dst->tags));
        if (!dst->tags)
            goto fail;
        dst->n_tags = src->n_tags;
        for (size_t i = 0; i < src->n_tags; i++) {
            dst->tags[i] = strdup(src->tags[i]);
            if (!dst->tags[i])
                goto fail;
        }
    }
    if (src->n_meta) {
        dst->meta = calloc(src->n_meta, sizeof(*dst->meta));
        if (!dst->meta)
            goto fail;
        dst->n_meta = src->n_meta;
        for (size_t i = 0; i < src->n_meta; i++) {
            dst->meta[i].key = strdup(src->meta[i].key);
            dst->meta[i].value = strdup(src->meta[i].value);
            if (!dst->meta[i].key || !dst->meta[i].value)
                goto fail;
        }
    }
    return 0;
fail:
    registry_instance_clear(dst);
    return DNSD_ENOMEM;
}

/* ---- validation ---- */

/* A valid hostname label with no upper-case letters. */
static bool is_lower_label(const char *s)
{
    if (!dnsd_label_is_valid(s))
        return false;
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            return false;
    }
    return true;
}

static bool addrs_valid(const struct registry_instance *inst)
{
    if (inst->n_addrs < 1 || inst->n_addrs > REGISTRY_MAX_ADDRS)
        return false;
    for (size_t i = 0; i < inst->n_addrs; i++) {
        const struct registry_addr *a = &inst->addrs[i];
        if (a->family != AF_INET && a->family != AF_INET6)
            return false;
        size_t len = a->family == AF_INET ? 4 : 16;
        for (size_t j = 0; j < i; j++) {
            const struct registry_addr *b = &inst->addrs[j];
            if (a->family == b->family && memcmp(a->bytes, b->bytes, len) == 0)
                return false;
        }
    }
    return true;
}

static bool tags_valid(const struct registry_instance *inst)
{
    if (inst->n_tags > REGISTRY_MAX_TAGS || (inst->n_tags && !inst->tags))
        return false;
    for (size_t i = 0; i < inst->n_tags; i++) {
        if (!inst->tags[i] || !is_lower_label(inst->tags[i]))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(inst->tags[i], inst->tags[j]) == 0)
                return false;
        }
    }
    return true;
}

/* RFC 6763 §6.4: keys are printable US-ASCII (0x20..0x7E) excluding '='; we also exclude
 * space so that keys stay single tokens. */
static bool meta_key_valid(const char *key)
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

static bool meta_value_valid(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p < 0x20)
            return false;
    }
    return true;
}

static bool meta_valid(const struct registry_instance *inst)
{
    if (inst->n_meta > REGISTRY_MAX_META || (inst->n_meta && !inst->meta))
        return false;
    for (size_t i = 0; i < inst->n_meta; i++) {
        const struct registry_meta *m = &inst->meta[i];
        if (!m->key || !m->value || !meta_key_valid(m->key) || !meta_value_valid(m->value))
            return false;
        /* RFC 6763 §6.1: one "key=value" character-string is at most 255 bytes. */
        if (strlen(m->key) + 1 + strlen(m->value) > REGISTRY_MAX_TXT_LEN)
            return false;
        /* RFC 6763 §6.4: keys compare case-insensitively. */
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(m->key, inst->meta[j].key) == 0)
                return false;
        }
    }
    return true;
}

int registry_validate(const struct registry_instance *inst, const char **field)
{
    const char *bad = NULL;
    if (!inst->service || !is_lower_label(inst->service))
        bad = "service";
    else if (!inst->id || !is_lower_label(inst->id))
        bad = "id";
    else if (!addrs_valid(inst))
        bad = "addresses";
    else if (inst->port == 0)
        bad = "port";
    else if (inst->proto != REGISTRY_PROTO_TCP && inst->proto != REGISTRY_PROTO_UDP)
        bad = "proto";
    else if (inst->ttl_s < 1)
        bad = "ttl";
    else if (!tags_valid(inst))
        bad = "tags";
    else if (!meta_valid(inst))
        bad = "meta";
    if (!bad)
        return 0;
    if (field)
        *field = bad;
    return DNSD_EINVAL;
}

/* ---- lifecycle and queries ---- */

struct registry *registry_new(registry_change_cb *on_change, void *user)
{
    struct registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    reg->on_change = on_change;
    reg->user = user;
    return reg;
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_svcs; i++) {
        struct registry_service *svc = reg->svcs[i];
        for (size_t j = 0; j < svc->n_items; j++)
            entry_free(svc->items[j]);
        service_free(svc);
    }
    free(reg->svcs);
    free(reg->heap);
    free(reg);
}

size_t registry_service_count(const struct registry *reg)
{
    return reg->n_svcs;
}

size_t registry_instance_count(const struct registry *reg)
{
    return reg->n_heap;
}

uint64_t registry_serial(const struct registry *reg)
{
    return reg->serial;
}

const struct registry_service *registry_find_service(const struct registry *reg,
                                                     const char *service)
{
    size_t pos;
    return service ? svc_search(reg, service, &pos) : NULL;
}

void registry_foreach_service(const struct registry *reg,
                              bool (*visit)(const struct registry_service *svc, void *user),
                              void *user)
{
    for (size_t i = 0; i < reg->n_svcs; i++) {
        if (!visit(reg->svcs[i], user))
            return;
    }
}

const char *registry_service_name(const struct registry_service *svc)
{
    return svc->name;
}

size_t registry_service_instance_count(const struct registry_service *svc)
{
    return svc->n_items;
}

const struct registry_instance *registry_service_instance(const struct registry_service *svc,
                                                          size_t i)
{
    return i < svc->n_items ? &svc->items[i]->inst : NULL;
}

const struct registry_instance *registry_find_instance(const struct registry *reg,
                                                       const char *service, const char *id)
{
    struct entry *e = entry_find(reg, service, id);
    return e ? &e->inst : NULL;
}

uint64_t registry_next_expiry(const struct registry *reg)
{
    return reg->n_heap ? reg->heap[0]->inst.expires_ms : UINT64_MAX;
}

/* ---- mutations ---- */

static void notify(struct registry *reg, enum registry_change change, const char *service,
                   const char *id)
{
    reg->serial++;
    if (reg->on_change)
        reg->on_change(reg->user, change, service, id);
}

/* Replace existing's configuration with the fresh copy in fresh (which is consumed). */
static void entry_replace(struct registry *reg, struct entry *existing,
                          struct registry_instance *fresh, uint64_t now_ms)
{
    uint64_t registered = existing->inst.registered_ms;
    registry_instance_clear(&existing->inst);
    existing->inst = *fresh;
    existing->inst.registered_ms = registered;
    existing->inst.heartbeat_ms = now_ms;
    existing->inst.expires_ms = deadline(now_ms, fresh->ttl_s);
    memset(fresh, 0, sizeof(*fresh));
    heap_fix(reg, existing);
}

int registry_put(struct registry *reg, const struct registry_instance *inst, uint64_t now_ms,
                 const char **field)
{
    int err = registry_validate(inst, field);
    if (err)
        return err;

    struct registry_instance fresh;
    err = instance_copy(&fresh, inst);
    if (err)
        return err;

    size_t svc_pos, item_pos;
    struct registry_service *svc = svc_search(reg, fresh.service, &svc_pos);
    struct entry *existing = svc ? item_search(svc, fresh.id, &item_pos) : NULL;
    if (existing) {
        entry_replace(reg, existing, &fresh, now_ms);
        notify(reg, REGISTRY_CHANGE_PUT, existing->inst.service, existing->inst.id);
        return 0;
    }

    /* A new instance: allocate everything before linking anything, so that a failure
     * leaves the registry untouched. */
    struct registry_service *new_svc = NULL;
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        goto fail;
    if (reserve((void **)&reg->heap, &reg->cap_heap, reg->n_heap + 1, sizeof(*reg->heap)))
        goto fail;
    if (!svc) {
        if (reserve((void **)&reg->svcs, &reg->cap_svcs, reg->n_svcs + 1, sizeof(*reg->svcs)))
            goto fail;
        new_svc = calloc(1, sizeof(*new_svc));
        if (!new_svc)
            goto fail;
        new_svc->name = strdup(fresh.service);
        if (!new_svc->name)
            goto fail;
        svc = new_svc;
        item_pos = 0;
    }
    if (reserve((void **)&svc->items, &svc->cap_items, svc->n_items + 1, sizeof(*svc->items)))
        goto fail;

    if (new_svc) {
        memmove(&reg->svcs[svc_pos + 1], &reg->svcs[svc_pos],
                (reg->n_svcs - svc_pos) * sizeof(*reg->svcs));
        reg->svcs[svc_pos] = new_svc;
        reg->n_svcs++;
    }
    e->inst = fresh;
    e->inst.registered_ms = now_ms;
    e->inst.heartbeat_ms = now_ms;
    e->inst.expires_ms = deadline(now_ms, fresh.ttl_s);
    e->svc = svc;
    memmove(&svc->items[item_pos + 1], &svc->items[item_pos],
            (svc->n_items - item_pos) * sizeof(*svc->items));
    svc->items[item_pos] = e;
    svc->n_items++;
    heap_push(reg, e);
    notify(reg, REGISTRY_CHANGE_PUT, e->inst.service, e->inst.id);
    return 0;

fail:
    service_free(new_svc);
    free(e);
    registry_instance_clear(&fresh);
    return DNSD_ENOMEM;
}

int registry_renew(struct registry *reg, const char *service, const char *id, uint64_t now_ms)
{
    struct entry *e = entry_find(reg, service, id);
    if (!e)
        return DNSD_ENOENT;
    e->inst.heartbeat_ms = now_ms;
    e->inst.expires_ms = deadline(now_ms, e->inst.ttl_s);
    heap_fix(reg, e);
    notify(reg, REGISTRY_CHANGE_RENEW, e->inst.service, e->inst.id);
    return 0;
}

/* Take e out of the heap and the index (dropping its service if now empty), then report
 * the change and free it. */
static void entry_unlink(struct registry *reg, struct entry *e, enum registry_change change)
{
    struct registry_service *svc = e->svc;
    size_t pos;
    struct entry *found = item_search(svc, e->inst.id, &pos);
    assert(found == e);
    (void)found;
    heap_remove(reg, e);
    memmove(&svc->items[pos], &svc->items[pos + 1], (svc->n_items - pos - 1) * sizeof(*svc->items));
    svc->n_items--;
    if (svc->n_items == 0) {
        size_t spos;
        struct registry_service *s = svc_search(reg, svc->name, &spos);
        assert(s == svc);
        (void)s;
        memmove(&reg->svcs[spos], &reg->svcs[spos + 1],
                (reg->n_svcs - spos - 1) * sizeof(*reg->svcs));
        reg->n_svcs--;
        service_free(svc);
    }
    e->svc = NULL;
    notify(reg, change, e->inst.service, e->inst.id);
    entry_free(e);
}

int registry_remove(struct registry *reg, const char *service, const char *id)
{
    struct entry *e = entry_find(reg, service, id);
    if (!e)
        return DNSD_ENOENT;
    entry_unlink(reg, e, REGISTRY_CHANGE_REMOVE);
    return 0;
}

size_t registry_expire(struct registry *reg, uint64_t now_ms)
{
    size_t n = 0;
    while (reg->n_heap && reg->heap[0]->inst.expires_ms <= now_ms) {
        entry_unlink(reg, reg->heap[0], REGISTRY_CHANGE_EXPIRE);
        n++;
    }
    return n;
}

bool registry_check(const struct registry *reg)
{
    size_t total = 0;
    for (size_t i = 0; i < reg->n_svcs; i++) {
        const struct registry_service *svc = reg->svcs[i];
        if (!svc || !svc->name || svc->n_items == 0 || svc->n_items > svc->cap_items)
            return false;
        if (i > 0 && strcmp(reg->svcs[i - 1]->name, svc->name) >= 0)
            return false;
        for (size_t j = 0; j < svc->n_items; j++) {
            const struct entry *e = svc->items[j];
            if (!e || e->svc != svc || strcmp(e->inst.service, svc->name) != 0)
                return false;
            if (j > 0 && strcmp(svc->items[j - 1]->inst.id, e->inst.id) >= 0)
                return false;
            if (e->heap_idx >= reg->n_heap || reg->heap[e->heap_idx] != e)
                return false;
            if (e->inst.expires_ms != deadline(e->inst.heartbeat_ms, e->inst.ttl_s))
                return false;
            if (registry_validate(&e->inst, NULL) != 0)
                return false;
        }
        total += svc->n_items;
    }
    if (total != reg->n_heap || reg->n_heap > reg->cap_heap)
        return false;
    for (size_t i = 1; i < reg->n_heap; i++) {
        if (reg->heap[(i - 1) / 2]->inst.expires_ms > reg->heap[i]->inst.expires_ms)
            return false;
    }
    return true;
}
