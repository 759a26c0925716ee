/* SPDX-License-Identifier: BSD-2-Clause
 * The registry's storage: services kept in a name-sorted array, each holding its instances
 * in an id-sorted array (binary search, O(log n) lookup), one binary min-heap keyed by each
 * instance's next time-driven event for O(log n) timers, validation, put and remove, and the
 * per-service change indexes (with tombstones) for watches. It owns deep copies of what it
 * holds. Health, leases and self-preservation live in registry_health.c.
 * No DNS, no I/O, no clock: now_ms always comes from the caller. */
#include "registry.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "dnsd/duration.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "registry_internal.h"

#define TOMB_BUCKETS 16384

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

/* ---- heap ---- */

/* Does a's event come before b's? At one moment: by kind (enum registry_event). */
static bool earlier(const struct entry *a, const struct entry *b)
{
    return a->key < b->key || (a->key == b->key && a->kind < b->kind);
}

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
        if (!earlier(e, reg->heap[parent]))
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
        if (child + 1 < reg->n_heap && earlier(reg->heap[child + 1], reg->heap[child]))
            child++;
        if (!earlier(reg->heap[child], e))
            break;
        heap_set(reg, i, reg->heap[child]);
        i = child;
    }
    heap_set(reg, i, e);
}

void registry_heap_fix(struct registry *reg, struct entry *e)
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
        registry_heap_fix(reg, last);
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

struct entry *registry_entry_find(const struct registry *reg, const char *service, const char *id)
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
    registry_stored_clear(&e->inst);
    free(e->inst.note);
    free(e->inst.maintenance_reason);
    free(e->note_reason);
    registry_check_state_clear(e);
    free(e);
}

/* ---- tombstones ---- */

static size_t tomb_hash(const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return (size_t)(h % TOMB_BUCKETS);
}

/* The tombstone of name, with *link pointing at the chain pointer that holds it. */
static struct tomb *tomb_find(const struct registry *reg, const char *name, struct tomb ***link)
{
    if (!reg->tombs)
        return NULL;
    struct tomb **l = &reg->tombs[tomb_hash(name)];
    for (; *l; l = &(*l)->chain) {
        if (strcmp((*l)->name, name) == 0) {
            if (link)
                *link = l;
            return *l;
        }
    }
    return NULL;
}

/* Unlink and free the tombstone *link points at. */
static void tomb_drop(struct registry *reg, struct tomb **link)
{
    struct tomb *t = *link;
    *link = t->chain;
    if (t->older)
        t->older->newer = t->newer;
    else
        reg->tomb_oldest = t->newer;
    if (t->newer)
        t->newer->older = t->older;
    else
        reg->tomb_newest = t->older;
    reg->n_tombs--;
    free(t->name);
    free(t);
}

static void tomb_forget(struct registry *reg, const char *name)
{
    struct tomb **link;
    if (tomb_find(reg, name, &link))
        tomb_drop(reg, link);
}

/* Remember a removed service's last index; when memory runs out it is simply forgotten
 * (watchers of it then see the current serial). */
static void tomb_add(struct registry *reg, const char *name, uint64_t index)
{
    tomb_forget(reg, name);
    if (!reg->tombs)
        reg->tombs = calloc(TOMB_BUCKETS, sizeof(*reg->tombs));
    struct tomb *t = reg->tombs ? calloc(1, sizeof(*t)) : NULL;
    char *copy = t ? strdup(name) : NULL;
    if (!copy) {
        free(t);
        reg->tombs_evicted = true;
        return;
    }
    t->name = copy;
    t->index = index;
    struct tomb **head = &reg->tombs[tomb_hash(name)];
    t->chain = *head;
    *head = t;
    t->older = reg->tomb_newest;
    if (reg->tomb_newest)
        reg->tomb_newest->newer = t;
    else
        reg->tomb_oldest = t;
    reg->tomb_newest = t;
    reg->n_tombs++;
    while (reg->n_tombs > REGISTRY_MAX_TOMBSTONES) {
        struct tomb **link = NULL;
        struct tomb *old = tomb_find(reg, reg->tomb_oldest->name, &link);
        assert(old == reg->tomb_oldest);
        (void)old;
        tomb_drop(reg, link);
        reg->tombs_evicted = true;
    }
}

static void tombs_free(struct registry *reg)
{
    while (reg->tomb_oldest) {
        struct tomb **link = NULL;
        tomb_find(reg, reg->tomb_oldest->name, &link);
        tomb_drop(reg, link);
    }
    free(reg->tombs);
    reg->tombs = NULL;
}

/* ---- instance copies ---- */

/* Forget the configuration pointers of inst, already freed. */
static void forget_config(struct registry_instance *inst)
{
    inst->service = NULL;
    inst->id = NULL;
    inst->addrs = NULL;
    inst->n_addrs = 0;
    inst->tags = NULL;
    inst->n_tags = 0;
    inst->meta = NULL;
    inst->n_meta = 0;
    inst->check.target = NULL;
}

void registry_instance_clear(struct registry_instance *inst)
{
    if (!inst)
        return;
    free(inst->service);
    free(inst->id);
    free(inst->addrs);
    for (size_t i = 0; inst->tags && i < inst->n_tags; i++)
        free(inst->tags[i]);
    free(inst->tags);
    for (size_t i = 0; inst->meta && i < inst->n_meta; i++) {
        free(inst->meta[i].key);
        free(inst->meta[i].value);
    }
    free(inst->meta);
    free(inst->check.target);
    forget_config(inst);
}

void registry_stored_clear(struct registry_instance *inst)
{
    free(inst->service); /* the start of the single allocation */
    forget_config(inst);
}

/* Round n up to a multiple of the alignment of pointers. */
static size_t align_ptr(size_t n)
{
    size_t a = _Alignof(void *);
    return (n + a - 1) / a * a;
}

/* Append s to the blob at *pos. Returns: the copy. */
static char *blob_str(char *blob, size_t *pos, const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = memcpy(blob + *pos, s, len);
    *pos += len;
    return copy;
}

/* Deep-copy the configuration fields of src into dst (zeroed state fields), as one
 * allocation laid out: service, id, padding, tags[], meta[], addrs[], the other strings. */
static int instance_copy(struct registry_instance *dst, const struct registry_instance *src)
{
    memset(dst, 0, sizeof(*dst));
    bool check = src->check.kind != REGISTRY_CHECK_NONE;
    size_t names = strlen(src->service) + 1 + strlen(src->id) + 1;
    size_t arrays = align_ptr(names);
    size_t strings = arrays + src->n_tags * sizeof(*dst->tags) + src->n_meta * sizeof(*dst->meta) +
                     src->n_addrs * sizeof(*dst->addrs);
    size_t total = strings + (check ? strlen(src->check.target) + 1 : 0);
    for (size_t i = 0; i < src->n_tags; i++)
        total += strlen(src->tags[i]) + 1;
    for (size_t i = 0; i < src->n_meta; i++)
        total += strlen(src->meta[i].key) + 1 + strlen(src->meta[i].value) + 1;
    char *blob = malloc(total);
    if (!blob)
        return DNSD_ENOMEM;
    size_t pos = 0;
    dst->service = blob_str(blob, &pos, src->service);
    dst->id = blob_str(blob, &pos, src->id);
    dst->tags = src->n_tags ? (char **)(void *)(blob + arrays) : NULL;
    dst->meta = src->n_meta
                    ? (struct registry_meta *)(void *)(blob + arrays + src->n_tags * sizeof(char *))
                    : NULL;
    dst->addrs =
        (struct registry_addr *)(void *)(blob + strings - src->n_addrs * sizeof(*dst->addrs));
    memcpy(dst->addrs, src->addrs, src->n_addrs * sizeof(*dst->addrs));
    dst->n_addrs = src->n_addrs;
    pos = strings;
    for (size_t i = 0; i < src->n_tags; i++)
        dst->tags[i] = blob_str(blob, &pos, src->tags[i]);
    dst->n_tags = src->n_tags;
    for (size_t i = 0; i < src->n_meta; i++) {
        dst->meta[i].key = blob_str(blob, &pos, src->meta[i].key);
        dst->meta[i].value = blob_str(blob, &pos, src->meta[i].value);
    }
    dst->n_meta = src->n_meta;
    if (check) {
        dst->check = src->check;
        dst->check.target = blob_str(blob, &pos, src->check.target);
    }
    dst->port = src->port;
    dst->proto = src->proto;
    dst->priority = src->priority;
    dst->weight = src->weight;
    dst->ttl_s = src->ttl_s;
    dst->deregister_after_ms = src->deregister_after_ms;
    return 0;
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

bool registry_meta_key_is_valid(const char *key)
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
        if (!m->key || !m->value || !registry_meta_key_is_valid(m->key) ||
            !meta_value_valid(m->value))
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

static bool check_valid(const struct registry_check *c)
{
    if (c->kind == REGISTRY_CHECK_NONE)
        return true;
    if (c->kind != REGISTRY_CHECK_TCP && c->kind != REGISTRY_CHECK_HTTP)
        return false;
    if (!c->target || !c->target[0] || strlen(c->target) > REGISTRY_MAX_CHECK_TARGET)
        return false;
    for (const unsigned char *p = (const unsigned char *)c->target; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    }
    if (c->interval_ms < REGISTRY_CHECK_MIN_INTERVAL_MS ||
        c->interval_ms > REGISTRY_CHECK_MAX_INTERVAL_MS)
        return false;
    if (c->timeout_ms < 1 || c->timeout_ms >= c->interval_ms)
        return false;
    if (c->success_before_passing < 1 || c->success_before_passing > REGISTRY_CHECK_MAX_THRESHOLD)
        return false;
    if (c->failures_before_critical < 1 ||
        c->failures_before_critical > REGISTRY_CHECK_MAX_THRESHOLD)
        return false;
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
    else if (!check_valid(&inst->check))
        bad = "check";
    else if (inst->deregister_after_ms > DNSD_DURATION_MAX_MS)
        bad = "deregister_after";
    if (!bad)
        return 0;
    if (field)
        *field = bad;
    return DNSD_EINVAL;
}

/* ---- lifecycle and queries ---- */

struct registry *registry_new(const struct registry_options *opts, registry_change_cb *on_change,
                              void *user)
{
    struct registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        goto fail;
    reg->on_change = on_change;
    reg->user = user;
    if (opts)
        reg->opts = *opts;
    return reg;
fail:
    free(reg);
    return NULL;
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
    tombs_free(reg);
    free(reg);
}

const struct registry_options *registry_options(const struct registry *reg)
{
    return &reg->opts;
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

uint64_t registry_service_index(const struct registry *reg, const char *service)
{
    size_t pos;
    if (!service)
        return 0;
    const struct registry_service *svc = svc_search(reg, service, &pos);
    if (svc)
        return svc->index;
    const struct tomb *t = tomb_find(reg, service, NULL);
    if (t)
        return t->index;
    /* A forgotten service may have been seen: the current serial is never too old. */
    return reg->tombs_evicted ? reg->serial : 0;
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
    registry_foreach_service_after(reg, NULL, visit, user);
}

void registry_foreach_service_after(const struct registry *reg, const char *after,
                                    bool (*visit)(const struct registry_service *svc, void *user),
                                    void *user)
{
    size_t start = 0;
    if (after && after[0] && svc_search(reg, after, &start))
        start++;
    for (size_t i = start; i < reg->n_svcs; i++) {
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
    struct entry *e = registry_entry_find(reg, service, id);
    return e ? &e->inst : NULL;
}

/* ---- mutations ---- */

void registry_tick(struct registry *reg, uint64_t now_ms)
{
    if (now_ms > reg->clock)
        reg->clock = now_ms;
}

void registry_notify(struct registry *reg, enum registry_change change,
                     struct registry_service *svc, const char *service, const char *id)
{
    reg->serial++;
    if (svc && change != REGISTRY_CHANGE_RENEW)
        svc->index = reg->serial;
    if (reg->on_change)
        reg->on_change(reg->user, change, service, id);
}

void registry_notify_entry(struct registry *reg, enum registry_change change, struct entry *e)
{
    registry_notify(reg, change, e->svc, e->inst.service, e->inst.id);
}

/* Bytes of inst's meta as TXT "key=value" strings, without their length octets. */
static size_t meta_bytes(const struct registry_instance *inst)
{
    size_t n = 0;
    for (size_t i = 0; i < inst->n_meta; i++)
        n += strlen(inst->meta[i].key) + 1 + strlen(inst->meta[i].value);
    return n;
}

/* Which capacity limit a put of inst would exceed. Returns: 0, DNSD_ERANGE or
 * DNSD_ENOSPC with *field as registry_put describes. */
static int over_limit(const struct registry *reg, const struct registry_instance *inst,
                      const char **field)
{
    const struct registry_options *o = &reg->opts;
    if (o->max_meta_bytes && meta_bytes(inst) > o->max_meta_bytes) {
        if (field)
            *field = "meta";
        return DNSD_ERANGE;
    }
    size_t pos;
    const struct registry_service *svc = svc_search(reg, inst->service, &pos);
    if (svc && item_search(svc, inst->id, &pos))
        return 0; /* a replacement takes no new room */
    if (o->max_instances_per_service && svc && svc->n_items >= o->max_instances_per_service) {
        if (field)
            *field = "service";
        return DNSD_ENOSPC;
    }
    if (o->max_instances && reg->n_heap >= o->max_instances) {
        if (field)
            *field = NULL;
        return DNSD_ENOSPC;
    }
    return 0;
}

/* registry_put, with the capacity limits checked when limited. */
static int put(struct registry *reg, const struct registry_instance *inst, uint64_t now_ms,
               const char **field, bool limited)
{
    int err = registry_validate(inst, field);
    if (err)
        return err;
    if (limited && (err = over_limit(reg, inst, field)) != 0)
        return err;

    struct registry_instance fresh;
    err = instance_copy(&fresh, inst);
    if (err)
        return err;

    size_t svc_pos, item_pos;
    struct registry_service *svc = svc_search(reg, fresh.service, &svc_pos);
    struct entry *existing = svc ? item_search(svc, fresh.id, &item_pos) : NULL;
    if (existing) {
        registry_tick(reg, now_ms);
        registry_entry_replace(reg, existing, &fresh, now_ms);
        registry_notify_entry(reg, REGISTRY_CHANGE_PUT, existing);
        registry_preservation_review(reg, now_ms);
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
        tomb_forget(reg, new_svc->name);
    }
    registry_tick(reg, now_ms);
    e->inst = fresh;
    e->inst.registered_ms = now_ms;
    e->inst.reported = REGISTRY_HEALTH_PASSING;
    registry_check_state_start(&e->inst);
    e->lease = LEASE_LIVE;
    registry_lease_renew(reg, e, now_ms);
    registry_reassess(e, REGISTRY_HEALTH_PASSING, "", now_ms);
    registry_entry_key(reg, e);
    e->svc = svc;
    memmove(&svc->items[item_pos + 1], &svc->items[item_pos],
            (svc->n_items - item_pos) * sizeof(*svc->items));
    svc->items[item_pos] = e;
    svc->n_items++;
    heap_push(reg, e);
    registry_notify_entry(reg, REGISTRY_CHANGE_PUT, e);
    /* A larger fleet may bring the overdue share back under the threshold. */
    registry_preservation_review(reg, now_ms);
    return 0;

fail:
    service_free(new_svc);
    free(e);
    registry_stored_clear(&fresh);
    return DNSD_ENOMEM;
}

int registry_put(struct registry *reg, const struct registry_instance *inst, uint64_t now_ms,
                 const char **field)
{
    return put(reg, inst, now_ms, field, true);
}

int registry_restore(struct registry *reg, const struct registry_instance *inst, const char **field)
{
    int err = put(reg, inst, inst->heartbeat_ms, field, false);
    if (err)
        return err;
    struct entry *e = registry_entry_find(reg, inst->service, inst->id);
    assert(e != NULL);
    e->inst.registered_ms = inst->registered_ms;
    if (inst->reported != REGISTRY_HEALTH_PASSING || (inst->note && inst->note[0]))
        err = registry_heartbeat(reg, inst->service, inst->id, inst->reported, inst->note,
                                 inst->heartbeat_ms, field);
    /* A replacement keeps maintenance; the saved state says what it was. */
    if (!err && (inst->maintenance || e->inst.maintenance))
        err = registry_set_maintenance(reg, inst->service, inst->id, inst->maintenance,
                                       inst->maintenance_reason, inst->heartbeat_ms, field);
    return err;
}

void registry_entry_unlink(struct registry *reg, struct entry *e, enum registry_change change)
{
    /* Out of the heap, the held list and the index (dropping its service if now empty,
     * remembering its index), then report and free. */
    struct registry_service *svc = e->svc;
    size_t pos;
    struct entry *found = item_search(svc, e->inst.id, &pos);
    assert(found == e);
    (void)found;
    registry_lease_forget(reg, e);
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
        tomb_add(reg, svc->name, reg->serial + 1); /* the serial notify is about to give */
        service_free(svc);
        svc = NULL;
    }
    e->svc = NULL;
    registry_notify(reg, change, svc, e->inst.service, e->inst.id);
    entry_free(e);
}

int registry_remove(struct registry *reg, const char *service, const char *id)
{
    struct entry *e = registry_entry_find(reg, service, id);
    if (!e)
        return DNSD_ENOENT;
    registry_entry_unlink(reg, e, REGISTRY_CHANGE_REMOVE);
    /* A smaller fleet may take the overdue share back under the threshold. No time comes
     * with a removal: the latest one the registry was given stands in for it. */
    registry_preservation_review(reg, reg->clock);
    return 0;
}

/* ---- invariants ---- */

static bool tombs_consistent(const struct registry *reg)
{
    size_t n = 0;
    const struct tomb *prev = NULL;
    for (const struct tomb *t = reg->tomb_oldest; t; t = t->newer) {
        size_t pos;
        if (t->older != prev || t->index > reg->serial || tomb_find(reg, t->name, NULL) != t ||
            svc_search(reg, t->name, &pos))
            return false;
        prev = t;
        n++;
    }
    return prev == reg->tomb_newest && n == reg->n_tombs && n <= REGISTRY_MAX_TOMBSTONES;
}

bool registry_check(const struct registry *reg)
{
    size_t total = 0, held = 0, overdue = 0;
    for (size_t i = 0; i < reg->n_svcs; i++) {
        const struct registry_service *svc = reg->svcs[i];
        if (!svc || !svc->name || svc->n_items == 0 || svc->n_items > svc->cap_items)
            return false;
        if (i > 0 && strcmp(reg->svcs[i - 1]->name, svc->name) >= 0)
            return false;
        if (svc->index == 0 || svc->index > reg->serial)
            return false;
        for (size_t j = 0; j < svc->n_items; j++) {
            const struct entry *e = svc->items[j];
            if (!e || e->svc != svc || strcmp(e->inst.service, svc->name) != 0)
                return false;
            if (j > 0 && strcmp(svc->items[j - 1]->inst.id, e->inst.id) >= 0)
                return false;
            if (!registry_entry_consistent(reg, e))
                return false;
            held += e->lease == LEASE_HELD;
            overdue += e->overdue;
        }
        total += svc->n_items;
    }
    if (total != reg->n_heap || reg->n_heap > reg->cap_heap)
        return false;
    for (size_t i = 1; i < reg->n_heap; i++) {
        if (earlier(reg->heap[i], reg->heap[(i - 1) / 2]))
            return false;
    }
    return registry_preservation_consistent(reg, held, overdue) && tombs_consistent(reg);
}
