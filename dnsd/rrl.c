/* SPDX-License-Identifier: BSD-2-Clause
 * Response rate limiting after BIND's RRL: token buckets per client prefix in one fixed,
 * open-addressed table. It limits what a spoofed source can make dnsd reflect, and slips
 * some answers as TC so real clients fall back to TCP, which cannot be spoofed.
 * Owns the table; no I/O, no clock, no allocation after rrl_new. */
#include "rrl.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/error.h"

/* Slots searched from a prefix's home slot: a match, a free slot or a victim is found in
 * this window, so a lookup costs at most this many probes however full the table is. */
#define RRL_WINDOW 8

/* One bucket; family 0 marks a free slot. */
struct bucket {
    uint8_t key[16];  /* the client address masked to the prefix (IPv4: the first 4 bytes) */
    uint64_t last_ms; /* when the credits were last brought up to date */
    uint32_t credits; /* RRL_CREDIT per answer, at most responses_per_second * RRL_CREDIT */
    uint8_t family;   /* 0 (free), 4 or 6 */
    uint8_t limited;  /* limited answers since the last slip, 0..slip-1 */
};
/* dnsd.conf.5 documents table_size's memory as 32 bytes a bucket. */
_Static_assert(sizeof(struct bucket) == 32, "a bucket is 32 bytes");

/* Every DNS thread shares one table, so a prefix's rate is its rate at the server whichever
 * thread's socket its datagrams reach. The table is split into RRL_STRIPES stripes of
 * consecutive slots, each with its own lock and its own share of the counters, so threads
 * answering different networks rarely wait for each other; a lookup's window covers at
 * most two stripes. Exempt clients take no lock at all. */
#define RRL_STRIPES 64

struct stripe {
    pthread_mutex_t lock;
    size_t used;                /* buckets with a family in this stripe */
    uint64_t dropped;           /* since the last summary */
    uint64_t slipped;           /* since the last summary */
    uint64_t last_ms;           /* when this stripe last limited an answer */
    uint8_t last_family;        /* of the client it limited last (0: none) */
    uint8_t last_key[16];       /* of the client it limited last */
} __attribute__((aligned(64))); /* one cache line each: no false sharing between threads */

struct rrl {
    struct rrl_config cfg;
    uint64_t seed;
    uint32_t max_credits; /* one second's worth: the burst */
    struct bucket *table; /* owned: cfg.table_size buckets; NULL when disabled */
    size_t stripe_span;   /* slots per stripe (the last takes the rest): >= RRL_WINDOW */
    struct stripe stripes[RRL_STRIPES];
    pthread_mutex_t summary_lock;
    uint64_t next_summary_ms; /* atomic: no summary is due before it */
    bool summarised;          /* a summary has been given (summary_lock) */
    uint64_t summary_ms;      /* when the last summary was given (summary_lock) */
};

void rrl_config_init(struct rrl_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = true;
    /* High on purpose: stub resolvers such as glibc's do not cache, so one busy application
     * host asks once per connection it opens. Loopback is exempt (local caches, HAProxy). */
    cfg->responses_per_second = 1000;
    cfg->slip = 2;
    cfg->ipv4_prefix = 24;
    cfg->ipv6_prefix = 56;
    cfg->table_size = 65536;
    int rc = netlist_parse("127.0.0.0/8", &cfg->exempt[0]);
    rc |= netlist_parse("::1/128", &cfg->exempt[1]);
    (void)rc; /* constant input: cannot fail */
    cfg->n_exempt = 2;
}

int rrl_new(const struct rrl_config *cfg, uint64_t hash_seed, struct rrl **out)
{
    if (cfg->responses_per_second < 1 || cfg->responses_per_second > 1000000 || cfg->slip > 10 ||
        cfg->ipv4_prefix < 8 || cfg->ipv4_prefix > 32 || cfg->ipv6_prefix < 16 ||
        cfg->ipv6_prefix > 128 || cfg->table_size < 1 || cfg->table_size > 16777216 ||
        cfg->n_exempt > RRL_MAX_EXEMPT)
        return DNSD_EINVAL;
    struct rrl *rrl = aligned_alloc(_Alignof(struct rrl), sizeof(*rrl));
    if (rrl == NULL)
        return DNSD_ENOMEM;
    memset(rrl, 0, sizeof(*rrl));
    for (size_t i = 0; i < RRL_STRIPES; i++)
        pthread_mutex_init(&rrl->stripes[i].lock, NULL);
    pthread_mutex_init(&rrl->summary_lock, NULL);
    /* A small table is one stripe, so that a window never spans more than two. */
    size_t n = cfg->table_size;
    rrl->stripe_span = n >= RRL_STRIPES * RRL_WINDOW ? n / RRL_STRIPES : n;
    rrl->cfg = *cfg;
    rrl->seed = hash_seed;
    rrl->max_credits = cfg->responses_per_second * RRL_CREDIT;
    if (cfg->enabled) {
        rrl->table = calloc(cfg->table_size, sizeof(*rrl->table));
        if (rrl->table == NULL)
            goto fail;
    }
    *out = rrl;
    return 0;

fail:
    rrl_free(rrl);
    return DNSD_ENOMEM;
}

void rrl_free(struct rrl *rrl)
{
    if (rrl == NULL)
        return;
    for (size_t i = 0; i < RRL_STRIPES; i++)
        pthread_mutex_destroy(&rrl->stripes[i].lock);
    pthread_mutex_destroy(&rrl->summary_lock);
    free(rrl->table);
    free(rrl);
}

size_t rrl_count(const struct rrl *rrl)
{
    size_t used = 0;
    for (size_t i = 0; i < RRL_STRIPES; i++)
        used += rrl->stripes[i].used;
    return used;
}

size_t rrl_capacity(const struct rrl *rrl)
{
    return rrl->table ? rrl->cfg.table_size : 0;
}

/* The stripe a slot is in. Rounding the span down makes the last stripe the largest, so
 * every stripe has at least RRL_WINDOW slots and a window never covers three. */
static struct stripe *stripe_of(struct rrl *rrl, size_t slot)
{
    size_t i = slot / rrl->stripe_span;
    return &rrl->stripes[i < RRL_STRIPES ? i : RRL_STRIPES - 1];
}

/* Keep the first prefix bits of key (len bytes), zero the rest. */
static void mask(uint8_t *key, size_t len, unsigned prefix)
{
    for (size_t i = 0; i < len; i++) {
        unsigned bits = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;
        key[i] &= bits >= 8 ? 0xFF : (uint8_t)(0xFF00U >> bits);
    }
}

bool rrl_check(const struct rrl *rrl)
{
    size_t used = 0;
    for (size_t i = 0; rrl->table && i < rrl->cfg.table_size; i++) {
        const struct bucket *b = &rrl->table[i];
        if (b->family == 0)
            continue;
        used++;
        uint8_t key[16];
        memcpy(key, b->key, sizeof(key));
        if (b->family == 4)
            mask(key, 4, rrl->cfg.ipv4_prefix);
        else
            mask(key, 16, rrl->cfg.ipv6_prefix);
        if ((b->family != 4 && b->family != 6) || memcmp(key, b->key, sizeof(key)) != 0 ||
            (b->family == 4 && memcmp(key + 4, "\0\0\0\0\0\0\0\0\0\0\0\0", 12) != 0) ||
            b->credits > rrl->max_credits || (rrl->cfg.slip > 0 && b->limited >= rrl->cfg.slip))
            return false;
    }
    return used == rrl_count(rrl) && used <= rrl_capacity(rrl);
}

/* The client's bucket key; IPv4-mapped IPv6 counts as IPv4. Returns: false for another
 * address family. */
static bool client_key(const struct rrl *rrl, const struct sockaddr *sa, uint8_t *family,
                       uint8_t key[16])
{
    int af = netlist_address(sa, key);
    if (af == 0)
        return false;
    *family = af == AF_INET ? 4 : 6;
    if (*family == 4)
        mask(key, 4, rrl->cfg.ipv4_prefix);
    else
        mask(key, 16, rrl->cfg.ipv6_prefix);
    return true;
}

/* splitmix64's finaliser: every input bit moves about half the output bits. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* The home slot of a key: a seeded hash mapped onto 0..table_size-1 by multiply-shift. */
static size_t home_slot(const struct rrl *rrl, uint8_t family, const uint8_t key[16])
{
    uint64_t lo, hi;
    memcpy(&lo, key, 8);
    memcpy(&hi, key + 8, 8);
    uint64_t h = mix(rrl->seed ^ mix(lo ^ family) ^ mix(hi + UINT64_C(0x9e3779b97f4a7c15)));
    return (size_t)(((h >> 32) * (uint64_t)rrl->cfg.table_size) >> 32);
}

/* Bring a bucket's credits up to now_ms: responses_per_second credits per ms is RRL_CREDIT
 * per answer at the configured rate. */
static uint32_t credits_at(const struct rrl *rrl, const struct bucket *b, uint64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return b->credits;
    uint64_t elapsed = now_ms - b->last_ms;
    if (elapsed >= 1000)
        return rrl->max_credits;
    uint64_t credits = b->credits + elapsed * rrl->cfg.responses_per_second;
    return credits > rrl->max_credits ? rrl->max_credits : (uint32_t)credits;
}

/* The key's bucket, found or taken in its window. With no free slot the victim is the
 * bucket with the most credits as of now (the least recently used among equals): a new
 * bucket starts full, so forgetting that one hands its prefix the fewest extra answers; one
 * idle for a second has refilled and loses nothing, and a prefix being limited (no credits)
 * keeps its bucket while the window holds any other. */
static struct bucket *find_bucket(struct rrl *rrl, uint8_t family, const uint8_t key[16],
                                  size_t slot, uint64_t now_ms)
{
    size_t n = rrl->cfg.table_size;
    struct bucket *free_slot = NULL, *victim = NULL;
    uint32_t victim_credits = 0;
    for (size_t i = 0; i < RRL_WINDOW && i < n; i++) {
        struct bucket *b = &rrl->table[(slot + i) % n];
        if (b->family == 0) {
            if (free_slot == NULL)
                free_slot = b;
            continue;
        }
        if (b->family == family && memcmp(b->key, key, 16) == 0)
            return b;
        uint32_t c = credits_at(rrl, b, now_ms);
        if (victim == NULL || c > victim_credits ||
            (c == victim_credits && b->last_ms < victim->last_ms)) {
            victim = b;
            victim_credits = c;
        }
    }
    struct bucket *b = free_slot ? free_slot : victim;
    if (b->family == 0)
        stripe_of(rrl, (size_t)(b - rrl->table))->used++;
    memcpy(b->key, key, 16);
    b->family = family;
    b->last_ms = now_ms;
    b->credits = rrl->max_credits;
    b->limited = 0;
    return b;
}

enum rrl_verdict rrl_decide(struct rrl *rrl, const struct sockaddr *client, uint64_t now_ms)
{
    uint8_t family, key[16];
    if (rrl->table == NULL || netlist_contains(rrl->cfg.exempt, rrl->cfg.n_exempt, client) ||
        !client_key(rrl, client, &family, key))
        return RRL_SEND;
    /* The stripes the key's window touches, locked in index order (no deadlock). */
    size_t home = home_slot(rrl, family, key);
    size_t span = RRL_WINDOW < rrl->cfg.table_size ? RRL_WINDOW : rrl->cfg.table_size;
    struct stripe *first = stripe_of(rrl, home);
    struct stripe *last = stripe_of(rrl, (home + span - 1) % rrl->cfg.table_size);
    struct stripe *lo = first < last ? first : last, *hi = first < last ? last : first;
    pthread_mutex_lock(&lo->lock);
    if (hi != lo)
        pthread_mutex_lock(&hi->lock);
    enum rrl_verdict v = RRL_DROP;
    /* Loops' clocks differ by a few ms: credits_at treats a clock behind last_ms as now. */
    struct bucket *b = find_bucket(rrl, family, key, home, now_ms);
    b->credits = credits_at(rrl, b, now_ms);
    if (now_ms > b->last_ms)
        b->last_ms = now_ms;
    if (b->credits >= RRL_CREDIT) {
        b->credits -= RRL_CREDIT;
        v = RRL_SEND;
        goto out;
    }
    first->last_ms = now_ms;
    first->last_family = family;
    memcpy(first->last_key, key, sizeof(first->last_key));
    /* BIND's slip: of every slip limited answers, the last goes out truncated. */
    if (rrl->cfg.slip > 0 && ++b->limited >= rrl->cfg.slip) {
        b->limited = 0;
        first->slipped++;
        v = RRL_SLIP;
        goto out;
    }
    first->dropped++;
out:
    if (hi != lo)
        pthread_mutex_unlock(&hi->lock);
    pthread_mutex_unlock(&lo->lock);
    return v;
}

bool rrl_summary_due(struct rrl *rrl, uint64_t now_ms, struct rrl_summary *out)
{
    /* Called after every limited answer: the common case is one relaxed load. */
    if (now_ms < __atomic_load_n(&rrl->next_summary_ms, __ATOMIC_RELAXED) ||
        pthread_mutex_trylock(&rrl->summary_lock) != 0)
        return false;
    uint64_t dropped = 0, slipped = 0, last_ms = 0;
    uint8_t last_family = 0, last_key[16] = {0};
    for (size_t i = 0; i < RRL_STRIPES; i++) {
        struct stripe *st = &rrl->stripes[i];
        pthread_mutex_lock(&st->lock);
        dropped += st->dropped;
        slipped += st->slipped;
        if (st->last_family && st->last_ms >= last_ms) {
            last_ms = st->last_ms;
            last_family = st->last_family;
            memcpy(last_key, st->last_key, sizeof(last_key));
        }
        st->dropped = st->slipped = 0;
        pthread_mutex_unlock(&st->lock);
    }
    bool due = dropped + slipped > 0;
    if (due) {
        struct netlist_net net;
        memset(&net, 0, sizeof(net));
        net.family = last_family == 4 ? AF_INET : AF_INET6;
        memcpy(net.addr, last_key, sizeof(net.addr));
        net.prefix = (uint8_t)(last_family == 4 ? rrl->cfg.ipv4_prefix : rrl->cfg.ipv6_prefix);
        out->dropped = dropped;
        out->slipped = slipped;
        out->interval_ms =
            rrl->summarised && now_ms >= rrl->summary_ms ? now_ms - rrl->summary_ms : 0;
        netlist_format(&net, out->last_prefix, sizeof(out->last_prefix));
        rrl->summarised = true;
        rrl->summary_ms = now_ms;
        __atomic_store_n(&rrl->next_summary_ms, now_ms + RRL_SUMMARY_INTERVAL_MS, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&rrl->summary_lock);
    return due;
}
