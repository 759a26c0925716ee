/* SPDX-License-Identifier: BSD-2-Clause
 * The registry: services kept in a name-sorted array, each holding its instances in an
 * id-sorted array (binary search, O(log n) lookup), plus one binary min-heap keyed by each
 * instance's next time-driven event (lease lapse or removal after deregister_after) for
 * O(log n) timers. It decides every instance's effective health, runs self-preservation and
 * remembers per-service change indexes for watches. It owns deep copies of what it holds.
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

/* Where an instance's lease stands. */
enum lease_state {
    LEASE_LIVE,   /* renewed; lapses at expires_ms */
    LEASE_HELD,   /* lapsed during self-preservation: ignored for health until it ends */
    LEASE_LAPSED, /* lapsed: the instance is critical */
};

/* Reasons that need no allocation. */
static const char REASON_NONE[] = "";
static const char REASON_MAINTENANCE[] = "maintenance mode";
static const char REASON_LEASE[] = "lease expired";
static const char REASON_AWAITING[] = "check: awaiting first result";

/* One stored instance: the public struct plus its place in the heap and index. */
struct entry {
    struct registry_instance inst; /* owned fields: service, id, tags, meta, check.target,
                                      note, maintenance_reason, check_output; inst.reason
                                      is borrowed from a static string or from one of
                                      maintenance_reason, note_reason, check_reason */
    struct registry_service *svc;  /* borrowed from the registry's service array */
    size_t heap_idx;               /* position in reg->heap */
    uint64_t key;                  /* next time-driven event, UINT64_MAX for none */
    enum lease_state lease;
    struct entry *held_prev;                  /* borrowed: neighbours in reg's held list */
    struct entry *held_next;                  /* borrowed */
    enum registry_check_outcome last_outcome; /* of the last check result */
    char *note_reason;                        /* owned: "heartbeat: NOTE" or NULL */
    char *check_reason;                       /* owned: "check: OUTPUT..." or NULL */
};

struct registry_service {
    char *name;           /* owned */
    struct entry **items; /* owned array of owned entries, sorted by id */
    size_t n_items;
    size_t cap_items;
    uint64_t index; /* serial of the last change to this service */
};

/* A removed service's last index, in a hash chain and in an age-ordered list. */
struct tomb {
    char *name; /* owned */
    uint64_t index;
    struct tomb *chain; /* borrowed: next in the hash bucket */
    struct tomb *older; /* borrowed: age list */
    struct tomb *newer; /* borrowed */
};

#define TOMB_BUCKETS 16384

/* Lease lapses at one moment, for the self-preservation window. */
struct lapse {
    uint64_t t;
    size_t n;
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
    struct registry_options opts;  /* preservation_enabled false when opts was NULL */
    /* self-preservation */
    bool preserving;
    uint64_t preserve_since; /* when it was entered */
    uint64_t last_lapse;     /* last lease lapse (held or not) */
    struct lapse *lapses;    /* owned ring of recent lapses, oldest at lapse_head */
    size_t lapse_cap;
    size_t lapse_head;
    size_t n_lapses;    /* ring entries in use */
    size_t lapse_total; /* sum of their n */
    struct entry *held; /* borrowed: list of LEASE_HELD entries */
    /* tombstones */
    struct tomb **tombs;      /* owned array of TOMB_BUCKETS chains of owned tombs */
    struct tomb *tomb_oldest; /* borrowed */
    struct tomb *tomb_newest; /* borrowed */
    size_t n_tombs;
    bool tombs_evicted; /* some removed service was forgotten */
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

/* a + b, saturating at UINT64_MAX. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Lease deadline for a heartbeat at now_ms, saturating instead of wrapping. */
static uint64_t deadline(uint64_t now_ms, uint32_t ttl_s)
{
    return sat_add(now_ms, (uint64_t)ttl_s * 1000u);
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
        if (reg->heap[parent]->key <= e->key)
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
        if (child + 1 < reg->n_heap && reg->heap[child + 1]->key < reg->heap[child]->key)
            child++;
        if (e->key <= reg->heap[child]->key)
            break;
        heap_set(reg, i, reg->heap[child]);
        i = child;
    }
    heap_set(reg, i, e);
}

/* Restore heap order after entry e's key changed. */
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

/* Free the state strings the registry keeps for a check's results. */
static void check_state_clear(struct entry *e)
{
    free(e->inst.check_output);
    free(e->check_reason);
    e->inst.check_output = NULL;
    e->check_reason = NULL;
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    registry_instance_clear(&e->inst);
    free(e->inst.note);
    free(e->inst.maintenance_reason);
    free(e->note_reason);
    check_state_clear(e);
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
    free(inst->check.target);
    inst->service = NULL;
    inst->id = NULL;
    inst->tags = NULL;
    inst->n_tags = 0;
    inst->meta = NULL;
    inst->n_meta = 0;
    inst->check.target = NULL;
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
    dst->check = src->check;
    dst->check.target = NULL;
    dst->deregister_after_ms = src->deregister_after_ms;
    dst->service = strdup(src->service);
    dst->id = strdup(src->id);
    if (!dst->service || !dst->id)
        goto fail;
    if (src->check.kind != REGISTRY_CHECK_NONE) {
        dst->check.target = strdup(src->check.target);
        if (!dst->check.target)
            goto fail;
    } else {
        memset(&dst->check, 0, sizeof(dst->check));
    }
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

/* The next moment time alone changes e: its lease lapse, or its removal after
 * deregister_after critical; UINT64_MAX for none. */
static uint64_t next_event(const struct entry *e)
{
    uint64_t key = UINT64_MAX;
    if (e->lease == LEASE_LIVE)
        key = e->inst.expires_ms;
    if (e->inst.health == REGISTRY_HEALTH_CRITICAL && e->inst.deregister_after_ms > 0) {
        uint64_t gone = sat_add(e->inst.critical_since_ms, e->inst.deregister_after_ms);
        if (gone < key)
            key = gone;
    }
    return key;
}

/* Recompute e's health and reason after its inputs changed at time t, keeping
 * critical_since_ms; the caller re-keys e. Returns whether health or reason changed from
 * old_health/old_reason (which must still be readable). */
static bool reassess(struct entry *e, enum registry_health old_health, const char *old_reason,
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

/* Move e in the heap to its recomputed next event. */
static void rekey(struct registry *reg, struct entry *e)
{
    e->key = next_event(e);
    heap_fix(reg, e);
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

/* Renew e's lease from now_ms, taking it out of the held list if it was there. */
static void lease_renew(struct registry *reg, struct entry *e, uint64_t now_ms)
{
    if (e->lease == LEASE_HELD)
        held_del(reg, e);
    e->lease = LEASE_LIVE;
    e->inst.heartbeat_ms = now_ms;
    e->inst.expires_ms = deadline(now_ms, e->inst.ttl_s);
}

static struct lapse *lapse_at(const struct registry *reg, size_t i)
{
    return &reg->lapses[(reg->lapse_head + i) % reg->lapse_cap];
}

/* Count one lease lapse at t in the window, dropping those that left it. */
static void lapse_record(struct registry *reg, uint64_t t)
{
    while (reg->n_lapses && t - lapse_at(reg, 0)->t >= reg->opts.preservation_window_ms) {
        reg->lapse_total -= lapse_at(reg, 0)->n;
        reg->lapse_head = (reg->lapse_head + 1) % reg->lapse_cap;
        reg->n_lapses--;
    }
    reg->lapse_total++;
    if (reg->n_lapses && lapse_at(reg, reg->n_lapses - 1)->t == t) {
        lapse_at(reg, reg->n_lapses - 1)->n++;
        return;
    }
    if (reg->n_lapses == reg->lapse_cap) {
        size_t ncap = reg->lapse_cap * 2;
        struct lapse *ring = malloc(ncap * sizeof(*ring));
        if (!ring) {
            /* Out of memory: count it with the newest moment, which keeps the total exact
             * and lets it leave the window a little early. */
            lapse_at(reg, reg->n_lapses - 1)->n++;
            return;
        }
        for (size_t i = 0; i < reg->n_lapses; i++)
            ring[i] = *lapse_at(reg, i);
        free(reg->lapses);
        reg->lapses = ring;
        reg->lapse_cap = ncap;
        reg->lapse_head = 0;
    }
    *lapse_at(reg, reg->n_lapses) = (struct lapse){.t = t, .n = 1};
    reg->n_lapses++;
}

/* e's lease lapsed at t: count it, maybe enter self-preservation, and hold or lapse it.
 * Returns whether self-preservation was entered. */
static bool lease_lapse(struct registry *reg, struct entry *e, uint64_t t)
{
    bool entered = false;
    if (reg->opts.preservation_enabled) {
        if (reg->n_lapses && t < lapse_at(reg, reg->n_lapses - 1)->t)
            t = lapse_at(reg, reg->n_lapses - 1)->t; /* the window needs order */
        lapse_record(reg, t);
        reg->last_lapse = t;
        size_t n = reg->n_heap;
        if (!reg->preserving && n >= reg->opts.preservation_min_instances &&
            (double)reg->lapse_total > reg->opts.preservation_threshold * (double)n) {
            reg->preserving = true;
            reg->preserve_since = t;
            entered = true;
        }
    }
    if (reg->preserving) {
        e->lease = LEASE_HELD;
        held_add(reg, e);
    } else {
        e->lease = LEASE_LAPSED;
    }
    return entered;
}

/* When self-preservation ends unless another lapse comes first; UINT64_MAX when off. */
static uint64_t preservation_end(const struct registry *reg)
{
    if (!reg->preserving)
        return UINT64_MAX;
    uint64_t quiet = sat_add(reg->last_lapse, reg->opts.preservation_window_ms);
    uint64_t max = sat_add(reg->preserve_since, reg->opts.preservation_max_ms);
    return quiet < max ? quiet : max;
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
    if (opts && opts->preservation_enabled) {
        reg->opts = *opts;
        reg->lapse_cap = 64;
        reg->lapses = malloc(reg->lapse_cap * sizeof(*reg->lapses));
        if (!reg->lapses)
            goto fail;
    }
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
    free(reg->lapses);
    tombs_free(reg);
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

bool registry_is_preserving(const struct registry *reg)
{
    return reg->preserving;
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

uint64_t registry_next_deadline(const struct registry *reg)
{
    uint64_t top = reg->n_heap ? reg->heap[0]->key : UINT64_MAX;
    uint64_t end = preservation_end(reg);
    return end < top ? end : top;
}

/* ---- mutations ---- */

/* Count a change, move the index of svc (may be NULL) unless it is a plain renewal, and
 * report it. */
static void notify(struct registry *reg, enum registry_change change, struct registry_service *svc,
                   const char *service, const char *id)
{
    reg->serial++;
    if (svc && change != REGISTRY_CHANGE_RENEW)
        svc->index = reg->serial;
    if (reg->on_change)
        reg->on_change(reg->user, change, service, id);
}

static void notify_entry(struct registry *reg, enum registry_change change, struct entry *e)
{
    notify(reg, change, e->svc, e->inst.service, e->inst.id);
}

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

/* Start inst's check state afresh: pending when it has a check. */
static void check_state_start(struct registry_instance *inst)
{
    inst->check_pending = inst->check.kind != REGISTRY_CHECK_NONE;
    inst->check_verdict = inst->check_pending ? REGISTRY_HEALTH_CRITICAL : REGISTRY_HEALTH_PASSING;
    inst->check_output = NULL;
    inst->check_last_ms = 0;
    inst->check_successes = 0;
    inst->check_failures = 0;
}

/* Replace existing's configuration with fresh (consumed) as a re-registration at now_ms. */
static void entry_replace(struct registry *reg, struct entry *existing,
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
        check_state_start(in);
        existing->check_reason = NULL;
    }
    in->health = old.health;
    in->critical_since_ms = old.critical_since_ms;
    lease_renew(reg, existing, now_ms);
    reassess(existing, old.health, old.reason, now_ms);
    rekey(reg, existing);

    registry_instance_clear(&old);
    free(old.note);
    free(old.check_output);
    free(old_note_reason);
    free(old_check_reason);
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
        notify_entry(reg, REGISTRY_CHANGE_PUT, existing);
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
    e->inst = fresh;
    e->inst.registered_ms = now_ms;
    e->inst.reported = REGISTRY_HEALTH_PASSING;
    check_state_start(&e->inst);
    e->lease = LEASE_LIVE;
    lease_renew(reg, e, now_ms);
    reassess(e, REGISTRY_HEALTH_PASSING, REASON_NONE, now_ms);
    e->key = next_event(e);
    e->svc = svc;
    memmove(&svc->items[item_pos + 1], &svc->items[item_pos],
            (svc->n_items - item_pos) * sizeof(*svc->items));
    svc->items[item_pos] = e;
    svc->n_items++;
    heap_push(reg, e);
    notify_entry(reg, REGISTRY_CHANGE_PUT, e);
    return 0;

fail:
    service_free(new_svc);
    free(e);
    registry_instance_clear(&fresh);
    return DNSD_ENOMEM;
}

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
    struct entry *e = entry_find(reg, service, id);
    if (!e)
        return DNSD_ENOENT;
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
    lease_renew(reg, e, now_ms);
    bool changed = reassess(e, old_health, old_reason, now_ms);
    rekey(reg, e);
    free(old_note);
    free(old_note_reason);
    notify_entry(reg, changed ? REGISTRY_CHANGE_HEALTH : REGISTRY_CHANGE_RENEW, e);
    return 0;
}

int registry_set_maintenance(struct registry *reg, const char *service, const char *id,
                             bool enabled, const char *reason, uint64_t now_ms, const char **field)
{
    struct entry *e = entry_find(reg, service, id);
    if (!e)
        return DNSD_ENOENT;
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
    bool changed = reassess(e, old_health, old_reason, now_ms);
    rekey(reg, e);
    free(old_mreason);
    if (changed)
        notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
    return 0;
}

int registry_check_result(struct registry *reg, const char *service, const char *id,
                          enum registry_check_outcome outcome, const char *output, uint64_t now_ms)
{
    struct entry *e = entry_find(reg, service, id);
    if (!e || e->inst.check.kind == REGISTRY_CHECK_NONE)
        return DNSD_ENOENT;
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
    bool changed = reassess(e, old_health, old_reason, now_ms);
    rekey(reg, e);
    free(old_output);
    free(old_check_reason);
    if (changed)
        notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
    return 0;
}

/* Take e out of the heap, the held list and the index (dropping its service if now empty,
 * remembering its index), then report the change and free it. */
static void entry_unlink(struct registry *reg, struct entry *e, enum registry_change change)
{
    struct registry_service *svc = e->svc;
    size_t pos;
    struct entry *found = item_search(svc, e->inst.id, &pos);
    assert(found == e);
    (void)found;
    if (e->lease == LEASE_HELD)
        held_del(reg, e);
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
    notify(reg, change, svc, e->inst.service, e->inst.id);
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
        bool health_changed = reassess(e, e->inst.health, e->inst.reason, t);
        rekey(reg, e);
        if (health_changed) {
            changed++;
            notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
        }
    }
    reg->preserving = false;
    /* Forget the burst that caused it: only a new one may start it again. */
    reg->n_lapses = 0;
    reg->lapse_head = 0;
    reg->lapse_total = 0;
    notify(reg, REGISTRY_CHANGE_PRESERVATION, NULL, NULL, NULL);
    return changed;
}

size_t registry_advance(struct registry *reg, uint64_t now_ms)
{
    size_t changed = 0;
    for (;;) {
        uint64_t end = preservation_end(reg);
        uint64_t top = reg->n_heap ? reg->heap[0]->key : UINT64_MAX;
        uint64_t t = end < top ? end : top;
        if (t == UINT64_MAX || t > now_ms)
            break;
        if (end <= top) {
            changed += preservation_leave(reg, t);
            continue;
        }
        struct entry *e = reg->heap[0];
        if (e->lease == LEASE_LIVE && e->inst.expires_ms <= t) {
            enum registry_health old_health = e->inst.health;
            const char *old_reason = e->inst.reason;
            bool entered = lease_lapse(reg, e, t);
            bool health_changed = reassess(e, old_health, old_reason, t);
            rekey(reg, e);
            if (entered)
                notify(reg, REGISTRY_CHANGE_PRESERVATION, NULL, NULL, NULL);
            if (health_changed) {
                changed++;
                notify_entry(reg, REGISTRY_CHANGE_HEALTH, e);
            }
        } else {
            /* deregister_after: critical for that long. */
            entry_unlink(reg, e, REGISTRY_CHANGE_EXPIRE);
            changed++;
        }
    }
    return changed;
}

/* ---- invariants ---- */

/* The health and timer invariants of one entry. */
static bool entry_consistent(const struct registry *reg, const struct entry *e)
{
    const struct registry_instance *in = &e->inst;
    if (e->heap_idx >= reg->n_heap || reg->heap[e->heap_idx] != e)
        return false;
    if (in->expires_ms != deadline(in->heartbeat_ms, in->ttl_s))
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
    if (e->lease == LEASE_HELD && !reg->preserving)
        return false;
    enum registry_health h;
    const char *r;
    evaluate(e, &h, &r);
    if (in->health != h || in->reason != r)
        return false;
    if (h != REGISTRY_HEALTH_CRITICAL && in->critical_since_ms != 0)
        return false;
    return e->key == next_event(e);
}

/* The held list links exactly the LEASE_HELD entries; *count receives their number. */
static bool held_consistent(const struct registry *reg, size_t *count)
{
    size_t n = 0;
    const struct entry *prev = NULL;
    for (const struct entry *e = reg->held; e; e = e->held_next) {
        if (e->held_prev != prev || e->lease != LEASE_HELD || n > reg->n_heap)
            return false;
        prev = e;
        n++;
    }
    *count = n;
    return true;
}

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

static bool lapses_consistent(const struct registry *reg)
{
    if (!reg->opts.preservation_enabled)
        return !reg->preserving && reg->n_lapses == 0 && reg->held == NULL;
    size_t total = 0;
    for (size_t i = 0; i < reg->n_lapses; i++) {
        if (i > 0 && lapse_at(reg, i - 1)->t >= lapse_at(reg, i)->t)
            return false;
        total += lapse_at(reg, i)->n;
    }
    return reg->n_lapses <= reg->lapse_cap && total == reg->lapse_total;
}

bool registry_check(const struct registry *reg)
{
    size_t total = 0, held = 0;
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
            if (!entry_consistent(reg, e))
                return false;
            held += e->lease == LEASE_HELD;
        }
        total += svc->n_items;
    }
    if (total != reg->n_heap || reg->n_heap > reg->cap_heap)
        return false;
    for (size_t i = 1; i < reg->n_heap; i++) {
        if (reg->heap[(i - 1) / 2]->key > reg->heap[i]->key)
            return false;
    }
    size_t listed;
    if (!held_consistent(reg, &listed) || listed != held)
        return false;
    return tombs_consistent(reg) && lapses_consistent(reg);
}
