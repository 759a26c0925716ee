/* SPDX-License-Identifier: BSD-2-Clause
 * The authoritative answering rules: request checks (RFC 1035, RFC 6891), zone selection,
 * the RFC 1034 §4.3.2 lookup over static zones, the registry names of the service domain
 * (common naming: SERVICE.D, INSTANCE.SERVICE.D, _SERVICE._PROTO.D, _TAG._sub...), negative
 * answers with the SOA (RFC 2308) and minimal ANY (RFC 8482). Everything allocated for one
 * answer belongs to the query_ctx and is released by reset(). No I/O, no logging, no clock. */
#include "query.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <ldns/ldns.h>

#include "answers.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "render.h"
#include "wire.h"
#include "zonestore.h"

/* CNAME chains are followed inside one zone for at most this many steps. */
#define QUERY_MAX_CHAIN 8
/* Registry names have at most 4 labels below the service domain. */
#define QUERY_MAX_REG_LABELS 4

struct query_ctx {
    struct query_config cfg;  /* domain borrowed from the caller */
    ldns_rdf *domain;         /* owned: cfg.domain as a name */
    size_t domain_labels;     /* ldns_dname_label_count(domain) */
    ldns_buffer *out;         /* owned: the rendered response */
    struct wire_query q;      /* owned fields: the current request */
    ldns_rr_list *answer;     /* owned list; records borrowed from the zones or from owned */
    ldns_rr_list *authority;  /* owned list; records borrowed from the zones or from owned */
    ldns_rr_list *additional; /* owned list; records borrowed from the zones or from owned */
    ldns_rr_list *owned;      /* owned list of owned records made for the current answer */
    const struct answers_instance **match; /* owned array: instances matching a name */
    size_t match_cap;
    /* The snapshot match[] points into: the service may be replaced or removed by another
     * thread meanwhile, so a query never looks it up twice (answers.h). */
    const struct answers_service *match_svc;
    const struct registry_addr **addrs; /* owned array: addresses being deduplicated */
    size_t addrs_cap;
    uint64_t rotation;                  /* grows per query: rotates multi-record registry RRsets */
    uint8_t fallback[WIRE_HEADER_SIZE]; /* a SERVFAIL header when rendering fails */
    ldns_rdf *fast_qname;               /* owned shell (ldns_rdf_free); data is fast_name */
    uint8_t fast_name[LDNS_MAX_DOMAINLEN + 1]; /* the hot path's question name */
    uint8_t *fast_out;                         /* owned: WIRE_TCP_MAX bytes, the hot path's reply */
    bool last_fast;                            /* the last answer came from the hot path */
    bool outside_zones;                        /* REFUSED as outside every zone (IN) */
    struct query_outcome outcome;              /* of the last answer */
};

/* What a name resolves to inside its zone. */
enum outcome {
    OUTCOME_FOUND,    /* records in the answer section */
    OUTCOME_NODATA,   /* the name exists without the type */
    OUTCOME_NXDOMAIN, /* the name does not exist */
    OUTCOME_REFERRAL, /* the name is at or below a zone cut */
};

/* The state of answering one question inside one zone. */
struct lookup {
    struct query_ctx *ctx;
    const struct zonestore_zone *zone; /* borrowed from the store */
    const struct answers *ans;         /* borrowed; NULL when there is no registry */
    bool service_zone;                 /* the zone's origin is the service domain */
    ldns_rr_type qtype;
    uint64_t now_ms;
};

/* Kinds of registry name below the service domain D. */
enum reg_kind {
    REG_NONE,          /* not a registry name */
    REG_PROTO_ENT,     /* _PROTO.D */
    REG_SERVICE,       /* SERVICE.D: A/AAAA */
    REG_INSTANCE,      /* INSTANCE.SERVICE.D: A/AAAA/TXT */
    REG_SRV,           /* _SERVICE._PROTO.D: SRV */
    REG_SUB_ENT,       /* _sub.SERVICE.D */
    REG_TAG,           /* _TAG._sub.SERVICE.D: A/AAAA */
    REG_SUB_PROTO_ENT, /* _sub._SERVICE._PROTO.D */
    REG_TAG_SRV,       /* _TAG._sub._SERVICE._PROTO.D: SRV */
};

struct reg_name {
    enum reg_kind kind;
    char service[DNSD_LABEL_MAX + 1];
    char id[DNSD_LABEL_MAX + 1];
    char tag[DNSD_LABEL_MAX + 1];
    enum registry_proto proto;
    bool by_proto;    /* only instances of proto */
    bool need_tagged; /* only instances with some tag */
};

/* ---- lifecycle ---- */

struct query_ctx *query_ctx_new(const struct query_config *cfg)
{
    struct query_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        goto fail;
    ctx->cfg = *cfg;
    wire_query_init(&ctx->q);
    ctx->domain = ldns_dname_new_frm_str(cfg->domain);
    ctx->out = ldns_buffer_new(WIRE_UDP_MIN);
    ctx->answer = ldns_rr_list_new();
    ctx->authority = ldns_rr_list_new();
    ctx->additional = ldns_rr_list_new();
    ctx->owned = ldns_rr_list_new();
    ctx->fast_qname = ldns_rdf_new(LDNS_RDF_TYPE_DNAME, 1, ctx->fast_name);
    ctx->fast_out = malloc(WIRE_TCP_MAX);
    if (!ctx->domain || !ctx->out || !ctx->answer || !ctx->authority || !ctx->additional ||
        !ctx->owned || !ctx->fast_qname || !ctx->fast_out)
        goto fail;
    ctx->domain_labels = ldns_dname_label_count(ctx->domain);
    return ctx;

fail:
    query_ctx_free(ctx);
    return NULL;
}

/* Drop everything made for the previous answer. */
static void reset(struct query_ctx *ctx)
{
    ldns_rr_list_set_rr_count(ctx->answer, 0);
    ldns_rr_list_set_rr_count(ctx->authority, 0);
    ldns_rr_list_set_rr_count(ctx->additional, 0);
    for (size_t i = 0; i < ldns_rr_list_rr_count(ctx->owned); i++)
        ldns_rr_free(ldns_rr_list_rr(ctx->owned, i));
    ldns_rr_list_set_rr_count(ctx->owned, 0);
    wire_query_clear(&ctx->q);
}

void query_ctx_free(struct query_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->owned)
        reset(ctx);
    ldns_rr_list_free(ctx->answer);
    ldns_rr_list_free(ctx->authority);
    ldns_rr_list_free(ctx->additional);
    ldns_rr_list_free(ctx->owned);
    ldns_buffer_free(ctx->out);
    ldns_rdf_deep_free(ctx->domain);
    wire_query_clear(&ctx->q);
    free(ctx->match);
    free(ctx->addrs);
    if (ctx->fast_qname)
        ldns_rdf_free(ctx->fast_qname);
    free(ctx->fast_out);
    free(ctx);
}

/* ---- record helpers ---- */

/* Hand rr to the ctx (freed at reset); frees rr and fails when out of memory. */
static ldns_rr *own(struct query_ctx *ctx, ldns_rr *rr)
{
    if (rr && !ldns_rr_list_push_rr(ctx->owned, rr)) {
        ldns_rr_free(rr);
        return NULL;
    }
    return rr;
}

static int push(ldns_rr_list *list, const ldns_rr *rr)
{
    return rr && ldns_rr_list_push_rr(list, rr) ? 0 : DNSD_ENOMEM;
}

/* A new owned record with owner (cloned), type, class IN and ttl, without rdata. */
static ldns_rr *new_rr(struct query_ctx *ctx, const ldns_rdf *owner, ldns_rr_type type,
                       uint32_t ttl)
{
    ldns_rr *rr = ldns_rr_new();
    ldns_rdf *name = ldns_rdf_clone(owner);
    if (!rr || !name) {
        ldns_rr_free(rr);
        ldns_rdf_deep_free(name);
        return NULL;
    }
    ldns_rr_set_owner(rr, name);
    ldns_rr_set_type(rr, type);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, ttl);
    return own(ctx, rr);
}

/* Append rdf to rr; frees rdf on failure. */
static int add_rdf(ldns_rr *rr, ldns_rdf *rdf)
{
    if (!rdf || !ldns_rr_push_rdf(rr, rdf)) {
        ldns_rdf_deep_free(rdf);
        return DNSD_ENOMEM;
    }
    return 0;
}

/* Swap the records at i and j of list. */
static void swap_rrs(ldns_rr_list *list, size_t i, size_t j)
{
    ldns_rr *a = ldns_rr_list_rr(list, i);
    ldns_rr *b = ldns_rr_list_rr(list, j);
    ldns_rr_list_set_rr(list, b, i);
    ldns_rr_list_set_rr(list, a, j);
}

static void reverse_rrs(ldns_rr_list *list, size_t from, size_t to)
{
    while (from + 1 < to) {
        swap_rrs(list, from, to - 1);
        from++;
        to--;
    }
}

/* Rotate list[from, end) left by the ctx's rotation so repeated queries spread the load. */
static void rotate_rrs(struct query_ctx *ctx, ldns_rr_list *list, size_t from)
{
    size_t end = ldns_rr_list_rr_count(list);
    size_t n = end - from;
    if (n < 2)
        return;
    size_t k = (size_t)(ctx->rotation % n);
    if (k == 0)
        return;
    reverse_rrs(list, from, from + k);
    reverse_rrs(list, from + k, end);
    reverse_rrs(list, from, end);
}

/* ---- static zones ---- */

static bool in_zone(const struct lookup *lk, const ldns_rdf *name)
{
    const ldns_rdf *origin = zonestore_zone_origin(lk->zone);
    return ldns_dname_compare(name, origin) == 0 || ldns_dname_is_subdomain(name, origin);
}

/* The zone's SOA with the serial the service zone serves: base + registry serial (mod 2^32,
 * RFC 1982), so secondaries and caches see every registry change. */
static ldns_rr *zone_soa(const struct lookup *lk, bool negative)
{
    const ldns_rr *soa = zonestore_zone_soa(lk->zone);
    if (!lk->service_zone && !negative)
        return (ldns_rr *)soa;
    ldns_rr *copy = own(lk->ctx, ldns_rr_clone(soa));
    if (!copy)
        return NULL;
    if (lk->service_zone && lk->ans) {
        uint32_t serial =
            ldns_rdf2native_int32(ldns_rr_rdf(soa, 2)) + (uint32_t)answers_serial(lk->ans);
        ldns_rdf *rdf = ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, serial);
        if (!rdf)
            return NULL;
        ldns_rdf_deep_free(ldns_rr_set_rdf(copy, rdf, 2));
    }
    if (negative) {
        /* RFC 2308 §3: the negative TTL is the lesser of the SOA TTL and MINIMUM. */
        uint32_t minimum = ldns_rdf2native_int32(ldns_rr_rdf(soa, 6));
        if (minimum < ldns_rr_ttl(copy))
            ldns_rr_set_ttl(copy, minimum);
    }
    return copy;
}

/* Push one static record into list: SOA of the service zone gets its live serial, and a
 * wildcard record gets the query name as owner (RFC 4592 §3.4.1). */
static int push_static(struct lookup *lk, ldns_rr_list *list, const ldns_rr *rr,
                       const ldns_rdf *owner)
{
    ldns_rr *out = (ldns_rr *)rr;
    if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && lk->service_zone)
        out = zone_soa(lk, false);
    if (out && owner) {
        ldns_rdf *name = ldns_rdf_clone(owner);
        out = name ? own(lk->ctx, ldns_rr_clone(out)) : NULL;
        if (!out) {
            ldns_rdf_deep_free(name);
            return DNSD_ENOMEM;
        }
        ldns_rdf_deep_free(ldns_rr_owner(out));
        ldns_rr_set_owner(out, name);
    }
    return push(list, out);
}

static int push_static_set(struct lookup *lk, ldns_rr_list *list, const ldns_rr_list *set,
                           const ldns_rdf *owner)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(set); i++) {
        if (push_static(lk, list, ldns_rr_list_rr(set, i), owner) != 0)
            return DNSD_ENOMEM;
    }
    return 0;
}

/* The domain name an NS, MX or SRV record points at, or NULL. */
static const ldns_rdf *target_of(const ldns_rr *rr)
{
    switch (ldns_rr_get_type(rr)) {
    case LDNS_RR_TYPE_NS:
        return ldns_rr_rdf(rr, 0);
    case LDNS_RR_TYPE_MX:
        return ldns_rr_rdf(rr, 1);
    case LDNS_RR_TYPE_SRV:
        return ldns_rr_rdf(rr, 3);
    default:
        return NULL;
    }
}

/* Additional section: the in-zone addresses of the targets of the records in list[from..]
 * (RFC 1035 §3.3.9, §3.3.11; RFC 2782). */
static int add_target_addresses(struct lookup *lk, const ldns_rr_list *list, size_t from)
{
    static const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
    for (size_t i = from; i < ldns_rr_list_rr_count(list); i++) {
        const ldns_rdf *target = target_of(ldns_rr_list_rr(list, i));
        if (!target || ldns_rdf_get_type(target) != LDNS_RDF_TYPE_DNAME || !in_zone(lk, target))
            continue;
        for (size_t t = 0; t < 2; t++) {
            const ldns_rr_list *set = zonestore_find_rrset(lk->zone, target, types[t]);
            if (set && push_static_set(lk, lk->ctx->additional, set, NULL) != 0)
                return DNSD_ENOMEM;
        }
    }
    return 0;
}

/* RFC 8482 §4.2: answer ANY with one RRset, preferring the ones clients ask for. */
static const ldns_rr_list *pick_any_static(const struct zonestore_node *node)
{
    static const ldns_rr_type prefer[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_SRV,
                                          LDNS_RR_TYPE_TXT};
    for (size_t i = 0; i < sizeof(prefer) / sizeof(prefer[0]); i++) {
        const ldns_rr_list *set = zonestore_node_rrset(node, prefer[i]);
        if (set)
            return set;
    }
    const ldns_rr_list *all = zonestore_node_all(node);
    if (!all || ldns_rr_list_rr_count(all) == 0)
        return NULL;
    return zonestore_node_rrset(node, ldns_rr_get_type(ldns_rr_list_rr(all, 0)));
}

static int resolve(struct lookup *lk, const ldns_rdf *name, unsigned depth, enum outcome *out);

/* Is name already the owner of a CNAME in the answer? Then the chain has looped back on
 * itself (RFC 1034 §3.6.2: a loop ends the chain; every record is listed once). */
static bool chain_has_visited(const struct lookup *lk, const ldns_rdf *name)
{
    const ldns_rr_list *answer = lk->ctx->answer;
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(answer, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME &&
            ldns_dname_compare(ldns_rr_owner(rr), name) == 0)
            return true;
    }
    return false;
}

/* Answer from a static node (its own name, or a wildcard when owner is set). */
static int answer_static(struct lookup *lk, const struct zonestore_node *node,
                         const ldns_rdf *owner, unsigned depth, enum outcome *out)
{
    const ldns_rr_list *cname = zonestore_node_rrset(node, LDNS_RR_TYPE_CNAME);
    if (cname && lk->qtype != LDNS_RR_TYPE_CNAME && lk->qtype != LDNS_RR_TYPE_ANY) {
        /* RFC 1034 §4.3.2 step 3a: restart at the canonical name, within this zone. */
        if (push_static_set(lk, lk->ctx->answer, cname, owner) != 0)
            return DNSD_ENOMEM;
        const ldns_rdf *target = ldns_rr_rdf(ldns_rr_list_rr(cname, 0), 0);
        *out = OUTCOME_FOUND;
        if (depth + 1 >= QUERY_MAX_CHAIN || !in_zone(lk, target) || chain_has_visited(lk, target))
            return 0;
        int rc = resolve(lk, target, depth + 1, out);
        if (rc == 0 && *out == OUTCOME_REFERRAL)
            *out = OUTCOME_FOUND; /* the resolver follows the chain from here */
        return rc;
    }
    const ldns_rr_list *set = lk->qtype == LDNS_RR_TYPE_ANY ? pick_any_static(node)
                                                            : zonestore_node_rrset(node, lk->qtype);
    if (!set) {
        *out = OUTCOME_NODATA;
        return 0;
    }
    size_t from = ldns_rr_list_rr_count(lk->ctx->answer);
    if (push_static_set(lk, lk->ctx->answer, set, owner) != 0 ||
        add_target_addresses(lk, lk->ctx->answer, from) != 0)
        return DNSD_ENOMEM;
    *out = OUTCOME_FOUND;
    return 0;
}

/* A referral to the child zone at cut (RFC 1034 §4.3.2 step 3b): NS in authority and
 * in-zone glue in additional; not authoritative. */
static int answer_referral(struct lookup *lk, const struct zonestore_node *cut, enum outcome *out)
{
    const ldns_rr_list *ns = zonestore_node_rrset(cut, LDNS_RR_TYPE_NS);
    if (!ns) {
        *out = OUTCOME_NXDOMAIN;
        return 0;
    }
    if (push_static_set(lk, lk->ctx->authority, ns, NULL) != 0 ||
        add_target_addresses(lk, lk->ctx->authority, 0) != 0)
        return DNSD_ENOMEM;
    *out = OUTCOME_REFERRAL;
    return 0;
}

/* ---- registry names ---- */

/* Split the labels of name below the service domain; returns their number (more than
 * QUERY_MAX_REG_LABELS when there are too many). */
static size_t relative_labels(const struct query_ctx *ctx, const ldns_rdf *name,
                              const uint8_t *label[QUERY_MAX_REG_LABELS],
                              uint8_t len[QUERY_MAX_REG_LABELS])
{
    size_t n = ldns_dname_label_count(name) - ctx->domain_labels;
    if (n > QUERY_MAX_REG_LABELS)
        return n;
    const uint8_t *p = ldns_rdf_data(name);
    for (size_t i = 0; i < n; i++) {
        len[i] = p[0];
        label[i] = p + 1;
        p += 1 + p[0];
    }
    return n;
}

static bool label_is(const uint8_t *label, uint8_t len, const char *word)
{
    return strlen(word) == len && strncasecmp((const char *)label, word, len) == 0;
}

/* Copy a hostname label (after skip bytes, e.g. a leading '_') lower-cased into out;
 * false when it is not a valid service/id/tag label. */
static bool take_label(const uint8_t *label, uint8_t len, size_t skip, char out[DNSD_LABEL_MAX + 1])
{
    if (len <= skip || len - skip > DNSD_LABEL_MAX)
        return false;
    memcpy(out, label + skip, len - skip);
    out[len - skip] = '\0';
    if (!dnsd_label_is_valid(out))
        return false;
    dnsd_label_lower(out);
    return true;
}

/* "_tcp" or "_udp" as a proto. */
static bool take_proto(const uint8_t *label, uint8_t len, enum registry_proto *proto)
{
    if (label_is(label, len, "_tcp"))
        *proto = REGISTRY_PROTO_TCP;
    else if (label_is(label, len, "_udp"))
        *proto = REGISTRY_PROTO_UDP;
    else
        return false;
    return true;
}

/* Classify a name of the service zone by the naming in common.md. */
static void classify(const struct query_ctx *ctx, const ldns_rdf *name, struct reg_name *rn)
{
    const uint8_t *l[QUERY_MAX_REG_LABELS];
    uint8_t n[QUERY_MAX_REG_LABELS];
    memset(rn, 0, sizeof(*rn));
    size_t k = relative_labels(ctx, name, l, n);

    if (k == 1) {
        if (take_proto(l[0], n[0], &rn->proto))
            rn->kind = REG_PROTO_ENT;
        else if (take_label(l[0], n[0], 0, rn->service))
            rn->kind = REG_SERVICE;
    } else if (k == 2) {
        if (take_label(l[0], n[0], 0, rn->id) && take_label(l[1], n[1], 0, rn->service)) {
            rn->kind = REG_INSTANCE;
        } else if (label_is(l[0], n[0], "_sub") && take_label(l[1], n[1], 0, rn->service)) {
            rn->kind = REG_SUB_ENT;
            rn->need_tagged = true;
        } else if (l[0][0] == '_' && take_label(l[0], n[0], 1, rn->service) &&
                   take_proto(l[1], n[1], &rn->proto)) {
            rn->kind = REG_SRV;
            rn->by_proto = true;
        }
    } else if (k == 3) {
        if (l[0][0] == '_' && take_label(l[0], n[0], 1, rn->tag) && label_is(l[1], n[1], "_sub") &&
            take_label(l[2], n[2], 0, rn->service)) {
            rn->kind = REG_TAG;
        } else if (label_is(l[0], n[0], "_sub") && l[1][0] == '_' &&
                   take_label(l[1], n[1], 1, rn->service) && take_proto(l[2], n[2], &rn->proto)) {
            rn->kind = REG_SUB_PROTO_ENT;
            rn->by_proto = true;
            rn->need_tagged = true;
        }
    } else if (k == 4) {
        if (l[0][0] == '_' && take_label(l[0], n[0], 1, rn->tag) && label_is(l[1], n[1], "_sub") &&
            l[2][0] == '_' && take_label(l[2], n[2], 1, rn->service) &&
            take_proto(l[3], n[3], &rn->proto)) {
            rn->kind = REG_TAG_SRV;
            rn->by_proto = true;
        }
    }
    if (rn->kind == REG_NONE)
        memset(rn, 0, sizeof(*rn));
    /* A failed alternative may have filled a field this kind does not use. */
    if (rn->kind != REG_TAG && rn->kind != REG_TAG_SRV)
        rn->tag[0] = '\0';
    if (rn->kind != REG_INSTANCE)
        rn->id[0] = '\0';
}

/* Does inst count for rn? Health is not looked at here: answers publishes only the
 * instances the registry says are answerable. */
static bool instance_matches(const struct answers_instance *inst, const struct reg_name *rn)
{
    if (rn->by_proto && answers_instance_proto(inst) != rn->proto)
        return false;
    if (rn->tag[0] && !answers_instance_has_tag(inst, rn->tag))
        return false;
    if (rn->need_tagged && !answers_instance_is_tagged(inst))
        return false;
    return true;
}

/* Fill ctx->match with the instances rn names; returns their number or -1 (no memory). */
static long collect(struct lookup *lk, const struct reg_name *rn)
{
    struct query_ctx *ctx = lk->ctx;
    ctx->match_svc = NULL;
    if (!lk->ans || rn->kind == REG_NONE || rn->kind == REG_PROTO_ENT)
        return 0;
    const struct answers_service *svc = answers_find_service(lk->ans, rn->service);
    ctx->match_svc = svc;
    if (!svc)
        return 0;
    if (rn->kind == REG_INSTANCE) {
        const struct answers_instance *inst = answers_service_find_instance(svc, rn->id);
        if (!inst || !instance_matches(inst, rn))
            return 0;
        if (ctx->match_cap == 0) {
            ctx->match = malloc(8 * sizeof(*ctx->match));
            if (!ctx->match)
                return -1;
            ctx->match_cap = 8;
        }
        ctx->match[0] = inst;
        return 1;
    }
    size_t n = answers_service_instance_count(svc);
    if (n > ctx->match_cap) {
        const struct answers_instance **grown = realloc(ctx->match, n * sizeof(*grown));
        if (!grown)
            return -1;
        ctx->match = grown;
        ctx->match_cap = n;
    }
    long found = 0;
    for (size_t i = 0; i < n; i++) {
        const struct answers_instance *inst = answers_service_instance(svc, i);
        if (instance_matches(inst, rn))
            ctx->match[found++] = inst;
    }
    return found;
}

/* max(min_ttl, min(dns_ttl, whole seconds left on the lease)): a TTL never outlives a
 * lease, except up to the configured floor; a lapsed lease that self-preservation holds
 * counts as 0 seconds left. */
static uint32_t lease_ttl(const struct lookup *lk, const struct answers_instance *inst)
{
    uint64_t expires = answers_instance_expires_ms(inst);
    uint64_t left = expires > lk->now_ms ? (expires - lk->now_ms) / 1000 : 0;
    uint32_t ttl = left < lk->ctx->cfg.dns_ttl ? (uint32_t)left : lk->ctx->cfg.dns_ttl;
    return ttl > lk->ctx->cfg.min_ttl ? ttl : lk->ctx->cfg.min_ttl;
}

static int family_of(ldns_rr_type type)
{
    return type == LDNS_RR_TYPE_A ? AF_INET : AF_INET6;
}

static ldns_rr *address_rr(struct query_ctx *ctx, const ldns_rdf *owner,
                           const struct registry_addr *addr, uint32_t ttl)
{
    bool v4 = addr->family == AF_INET;
    ldns_rr *rr = new_rr(ctx, owner, v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, ttl);
    if (!rr || add_rdf(rr, ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                                 v4 ? 4 : 16, addr->bytes)) != 0)
        return NULL;
    return rr;
}

static int compare_addrs(const void *a, const void *b)
{
    const struct registry_addr *x = *(const struct registry_addr *const *)a;
    const struct registry_addr *y = *(const struct registry_addr *const *)b;
    return memcmp(x->bytes, y->bytes, x->family == AF_INET ? 4 : 16);
}

/* Make room for n address pointers in ctx->addrs. */
static int reserve_addrs(struct query_ctx *ctx, size_t n)
{
    if (n <= ctx->addrs_cap)
        return 0;
    const struct registry_addr **grown = realloc(ctx->addrs, n * sizeof(*grown));
    if (!grown)
        return DNSD_ENOMEM;
    ctx->addrs = grown;
    ctx->addrs_cap = n;
    return 0;
}

/* The A or AAAA RRset of the matched instances at owner: identical addresses once (sorted,
 * then rotated), one TTL for the whole RRset (RFC 2181 §5.2). Returns the number of
 * records or -1. */
static long answer_addresses(struct lookup *lk, size_t n_match, ldns_rr_type type,
                             const ldns_rdf *owner)
{
    struct query_ctx *ctx = lk->ctx;
    int family = family_of(type);
    uint32_t ttl = UINT32_MAX; /* lowered to the smallest contributing lease_ttl */
    size_t n_addrs = 0;
    if (reserve_addrs(ctx, n_match * REGISTRY_MAX_ADDRS) != 0)
        return -1;
    for (size_t i = 0; i < n_match; i++) {
        const struct answers_instance *inst = ctx->match[i];
        bool contributes = false;
        for (size_t a = 0; a < answers_instance_addr_count(inst); a++) {
            const struct registry_addr *addr = answers_instance_addr(inst, a);
            if (addr->family == family) {
                ctx->addrs[n_addrs++] = addr;
                contributes = true;
            }
        }
        if (contributes && lease_ttl(lk, inst) < ttl)
            ttl = lease_ttl(lk, inst);
    }
    qsort(ctx->addrs, n_addrs, sizeof(*ctx->addrs), compare_addrs);
    size_t from = ldns_rr_list_rr_count(ctx->answer);
    for (size_t i = 0; i < n_addrs; i++) {
        if (i > 0 && compare_addrs(&ctx->addrs[i - 1], &ctx->addrs[i]) == 0)
            continue;
        if (push(ctx->answer, address_rr(ctx, owner, ctx->addrs[i], ttl)) != 0)
            return -1;
    }
    rotate_rrs(ctx, ctx->answer, from);
    return (long)(ldns_rr_list_rr_count(ctx->answer) - from);
}

/* INSTANCE.SERVICE.D as a name. */
static ldns_rdf *target_name(const struct query_ctx *ctx, const char *service,
                             const struct answers_instance *inst)
{
    char text[2 * (DNSD_LABEL_MAX + 1) + LDNS_MAX_DOMAINLEN + 1];
    snprintf(text, sizeof(text), "%s.%s.%s", answers_instance_id(inst), service, ctx->cfg.domain);
    return ldns_dname_new_frm_str(text);
}

/* The SRV RRset of the matched instances (RFC 2782), rotated, with the targets' addresses
 * in the additional section in the same order. Returns the number of records or -1. */
static long answer_srv(struct lookup *lk, size_t n_match, const struct reg_name *rn,
                       const ldns_rdf *owner)
{
    struct query_ctx *ctx = lk->ctx;
    size_t from = ldns_rr_list_rr_count(ctx->answer);
    uint32_t ttl = UINT32_MAX; /* lowered to the smallest lease_ttl; n_match >= 1 */
    for (size_t i = 0; i < n_match; i++) {
        const struct answers_instance *inst = ctx->match[i];
        if (lease_ttl(lk, inst) < ttl)
            ttl = lease_ttl(lk, inst);
    }
    for (size_t i = 0; i < n_match; i++) {
        const struct answers_instance *inst = ctx->match[i];
        ldns_rr *rr = new_rr(ctx, owner, LDNS_RR_TYPE_SRV, ttl);
        if (!rr ||
            add_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16,
                                              answers_instance_priority(inst))) != 0 ||
            add_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16,
                                              answers_instance_weight(inst))) != 0 ||
            add_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, answers_instance_port(inst))) !=
                0 ||
            add_rdf(rr, target_name(ctx, rn->service, inst)) != 0 || push(ctx->answer, rr) != 0)
            return -1;
    }
    rotate_rrs(ctx, ctx->answer, from);
    /* Additional data: each target's own A/AAAA records, in the rotated order, so the
     * first targets' addresses are the ones that survive a size limit. */
    const struct answers_service *svc = ctx->match_svc;
    size_t end = ldns_rr_list_rr_count(ctx->answer);
    for (size_t i = from; i < end; i++) {
        const ldns_rr *srv = ldns_rr_list_rr(ctx->answer, i);
        const ldns_rdf *target = ldns_rr_rdf(srv, 3);
        char id[DNSD_LABEL_MAX + 1];
        const uint8_t *data = ldns_rdf_data(target);
        memcpy(id, data + 1, data[0]);
        id[data[0]] = '\0';
        const struct answers_instance *inst = answers_service_find_instance(svc, id);
        for (int pass = 0; pass < 2 && inst; pass++) {
            int family = pass == 0 ? AF_INET : AF_INET6;
            for (size_t a = 0; a < answers_instance_addr_count(inst); a++) {
                const struct registry_addr *addr = answers_instance_addr(inst, a);
                if (addr->family == family &&
                    push(ctx->additional, address_rr(ctx, target, addr, lease_ttl(lk, inst))) != 0)
                    return -1;
            }
        }
    }
    return (long)(end - from);
}

/* The instance's TXT record: its metadata strings (RFC 6763 §6). */
static long answer_txt(struct lookup *lk, const ldns_rdf *owner)
{
    const struct answers_instance *inst = lk->ctx->match[0];
    ldns_rr *rr = new_rr(lk->ctx, owner, LDNS_RR_TYPE_TXT, lease_ttl(lk, inst));
    if (!rr)
        return -1;
    for (size_t i = 0; i < answers_instance_txt_count(inst); i++) {
        const char *text = answers_instance_txt(inst, i);
        size_t len = strlen(text);
        uint8_t buf[REGISTRY_MAX_TXT_LEN + 1];
        if (len > REGISTRY_MAX_TXT_LEN)
            len = REGISTRY_MAX_TXT_LEN;
        buf[0] = (uint8_t)len;
        memcpy(buf + 1, text, len);
        if (add_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, len + 1, buf)) != 0)
            return -1;
    }
    return push(lk->ctx->answer, rr) == 0 ? 1 : -1;
}

/* Which RRset types a registry name owns. */
static bool reg_has_type(enum reg_kind kind, ldns_rr_type type)
{
    switch (kind) {
    case REG_SERVICE:
    case REG_TAG:
        return type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_AAAA;
    case REG_INSTANCE:
        return type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_AAAA || type == LDNS_RR_TYPE_TXT;
    case REG_SRV:
    case REG_TAG_SRV:
        return type == LDNS_RR_TYPE_SRV;
    default:
        return false;
    }
}

/* Build the RRset of type at a registry name; returns its size (0: none) or -1. */
static long answer_reg_type(struct lookup *lk, const struct reg_name *rn, size_t n_match,
                            ldns_rr_type type, const ldns_rdf *owner)
{
    if (!reg_has_type(rn->kind, type))
        return 0;
    switch (type) {
    case LDNS_RR_TYPE_A:
    case LDNS_RR_TYPE_AAAA:
        return answer_addresses(lk, n_match, type, owner);
    case LDNS_RR_TYPE_SRV:
        return answer_srv(lk, n_match, rn, owner);
    case LDNS_RR_TYPE_TXT:
        return answer_txt(lk, owner);
    default:
        return 0;
    }
}

/* Does name exist as a registry name right now? Sets *rn and *n_match; -1: no memory. */
static int reg_lookup(struct lookup *lk, const ldns_rdf *name, struct reg_name *rn, size_t *n_match,
                      bool *exists)
{
    classify(lk->ctx, name, rn);
    long n = collect(lk, rn);
    if (n < 0)
        return DNSD_ENOMEM;
    *n_match = (size_t)n;
    if (rn->kind == REG_PROTO_ENT)
        *exists = lk->ans && answers_has_proto(lk->ans, rn->proto);
    else
        *exists = n > 0;
    return 0;
}

/* Answer a registry name that exists. */
static int answer_registry(struct lookup *lk, const struct reg_name *rn, size_t n_match,
                           const ldns_rdf *owner, enum outcome *out)
{
    static const ldns_rr_type any_order[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_SRV,
                                             LDNS_RR_TYPE_TXT};
    long n = 0;
    if (lk->qtype == LDNS_RR_TYPE_ANY) {
        /* RFC 8482 §4.2: one RRset that exists at the name. */
        for (size_t i = 0; i < sizeof(any_order) / sizeof(any_order[0]) && n == 0; i++)
            n = answer_reg_type(lk, rn, n_match, any_order[i], owner);
    } else {
        n = answer_reg_type(lk, rn, n_match, lk->qtype, owner);
    }
    if (n < 0)
        return DNSD_ENOMEM;
    *out = n > 0 ? OUTCOME_FOUND : OUTCOME_NODATA;
    return 0;
}

/* Is some proper ancestor of name (below the service domain) a registry name? Then a
 * wildcard above it cannot apply (RFC 4592 §2.2.1: that ancestor is the closest encloser). */
static int registry_ancestor_exists(struct lookup *lk, const ldns_rdf *name, bool *exists)
{
    size_t labels = ldns_dname_label_count(name);
    size_t base = lk->ctx->domain_labels;
    *exists = false;
    for (size_t drop = 1; labels - drop > base && !*exists; drop++) {
        if (labels - drop - base > QUERY_MAX_REG_LABELS)
            continue;
        ldns_rdf *ancestor = ldns_dname_clone_from(name, (uint16_t)drop);
        if (!ancestor)
            return DNSD_ENOMEM;
        struct reg_name rn;
        size_t n;
        int rc = reg_lookup(lk, ancestor, &rn, &n, exists);
        ldns_rdf_deep_free(ancestor);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- one name in one zone ---- */

/* Resolve name (inside lk->zone): static data at the exact name or a cut first, then the
 * registry names of the service domain, then static empty non-terminals and wildcards. */
static int resolve(struct lookup *lk, const ldns_rdf *name, unsigned depth, enum outcome *out)
{
    struct zonestore_match m;
    zonestore_lookup(lk->zone, name, &m);
    if (m.kind == ZONESTORE_NAME)
        return answer_static(lk, m.node, NULL, depth, out);
    if (m.kind == ZONESTORE_DELEGATION) {
        /* DS belongs to the parent side of the cut (RFC 4035 §3.1.4.1): NODATA here. */
        if (lk->qtype == LDNS_RR_TYPE_DS &&
            ldns_dname_compare(zonestore_node_name(m.node), name) == 0) {
            *out = OUTCOME_NODATA;
            return 0;
        }
        if (depth > 0) {
            *out = OUTCOME_FOUND; /* a chain into a child zone: the resolver goes on */
            return 0;
        }
        return answer_referral(lk, m.node, out);
    }
    if (lk->service_zone) {
        struct reg_name rn;
        size_t n_match;
        bool exists;
        if (reg_lookup(lk, name, &rn, &n_match, &exists) != 0)
            return DNSD_ENOMEM;
        if (exists)
            return answer_registry(lk, &rn, n_match, name, out);
    }
    switch (m.kind) {
    case ZONESTORE_EMPTY_NONTERMINAL:
        *out = OUTCOME_NODATA; /* RFC 8020: an ENT is not NXDOMAIN */
        return 0;
    case ZONESTORE_WILDCARD:
        if (lk->service_zone) {
            bool below_registry;
            if (registry_ancestor_exists(lk, name, &below_registry) != 0)
                return DNSD_ENOMEM;
            if (below_registry) {
                *out = OUTCOME_NXDOMAIN;
                return 0;
            }
        }
        return answer_static(lk, m.node, name, depth, out);
    default:
        *out = OUTCOME_NXDOMAIN;
        return 0;
    }
}

/* ---- the hot path ---- */

/* The SRV targets of one answer, INSTANCE.SERVICE.D in wire form: SERVICE.D is written
 * once after room for the longest INSTANCE label, and each target is made by writing its
 * INSTANCE label just in front of it. */
struct fast_targets {
    uint8_t buf[1 + DNSD_LABEL_MAX + 1 + DNSD_LABEL_MAX + LDNS_MAX_DOMAINLEN];
    size_t suffix_len; /* SERVICE.D at buf + 1 + DNSD_LABEL_MAX */
};

static void fast_targets_init(const struct query_ctx *ctx, const char *service,
                              struct fast_targets *t)
{
    uint8_t *p = t->buf + 1 + DNSD_LABEL_MAX;
    size_t svc_len = strlen(service);
    p[0] = (uint8_t)svc_len;
    memcpy(p + 1, service, svc_len);
    memcpy(p + 1 + svc_len, ldns_rdf_data(ctx->domain), ldns_rdf_size(ctx->domain));
    t->suffix_len = 1 + svc_len + ldns_rdf_size(ctx->domain);
}

/* inst's target, borrowed from t until the next call; NULL when it is longer than a name
 * may be (RFC 1035 §2.3.4), which the full path answers. */
static const uint8_t *fast_target(struct fast_targets *t, const struct answers_instance *inst)
{
    const char *id = answers_instance_id(inst);
    size_t id_len = strlen(id);
    if (id_len > DNSD_LABEL_MAX || 1 + id_len + t->suffix_len > LDNS_MAX_DOMAINLEN)
        return NULL;
    uint8_t *p = t->buf + DNSD_LABEL_MAX - id_len;
    p[0] = (uint8_t)id_len;
    memcpy(p + 1, id, id_len);
    return p;
}

/* The A or AAAA RRset of the matched instances, as answer_addresses builds it; returns the
 * number of records written. */
static size_t fast_addresses(struct lookup *lk, size_t n_match, ldns_rr_type type,
                             struct render *rw, const uint8_t *owner)
{
    struct query_ctx *ctx = lk->ctx;
    int family = family_of(type);
    uint32_t ttl = UINT32_MAX;
    size_t n_addrs = 0;
    for (size_t i = 0; i < n_match; i++) {
        const struct answers_instance *inst = ctx->match[i];
        bool contributes = false;
        for (size_t a = 0; a < answers_instance_addr_count(inst); a++) {
            const struct registry_addr *addr = answers_instance_addr(inst, a);
            if (addr->family == family) {
                ctx->addrs[n_addrs++] = addr;
                contributes = true;
            }
        }
        uint32_t inst_ttl = contributes ? lease_ttl(lk, inst) : UINT32_MAX;
        if (inst_ttl < ttl)
            ttl = inst_ttl;
    }
    if (n_addrs > 1)
        qsort(ctx->addrs, n_addrs, sizeof(*ctx->addrs), compare_addrs);
    size_t n_unique = 0;
    for (size_t i = 0; i < n_addrs; i++) {
        if (i == 0 || compare_addrs(&ctx->addrs[n_unique - 1], &ctx->addrs[i]) != 0)
            ctx->addrs[n_unique++] = ctx->addrs[i];
    }
    size_t k = n_unique > 1 ? (size_t)(ctx->rotation % n_unique) : 0;
    size_t size = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n_unique; i++) {
        size_t start = render_rr_begin(rw, owner, (uint16_t)type, ttl);
        render_bytes(rw, ctx->addrs[(i + k) % n_unique]->bytes, size);
        render_rr_end(rw, start);
    }
    return n_unique;
}

/* inst's addresses of one family at owner (an additional RRset). */
static size_t fast_instance_addresses(struct lookup *lk, const struct answers_instance *inst,
                                      int family, struct render *rw, const uint8_t *owner)
{
    size_t n = 0;
    uint32_t ttl = lease_ttl(lk, inst);
    for (size_t a = 0; a < answers_instance_addr_count(inst); a++) {
        const struct registry_addr *addr = answers_instance_addr(inst, a);
        if (addr->family != family)
            continue;
        bool v4 = family == AF_INET;
        size_t start = render_rr_begin(rw, owner, v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, ttl);
        render_bytes(rw, addr->bytes, v4 ? 4 : 16);
        render_rr_end(rw, start);
        n++;
    }
    return n;
}

/* The SRV RRset as answer_srv builds it (rotated; targets uncompressed, RFC 2782); returns
 * the number of records written. */
static size_t fast_srv(struct lookup *lk, size_t n_match, const struct reg_name *rn,
                       struct render *rw, const uint8_t *owner)
{
    struct query_ctx *ctx = lk->ctx;
    uint32_t ttl = UINT32_MAX;
    for (size_t i = 0; i < n_match; i++) {
        uint32_t inst_ttl = lease_ttl(lk, ctx->match[i]);
        if (inst_ttl < ttl)
            ttl = inst_ttl;
    }
    size_t k = n_match > 1 ? (size_t)(ctx->rotation % n_match) : 0;
    struct fast_targets targets;
    fast_targets_init(ctx, rn->service, &targets);
    for (size_t i = 0; i < n_match; i++) {
        const struct answers_instance *inst = ctx->match[(i + k) % n_match];
        const uint8_t *target = fast_target(&targets, inst);
        if (target == NULL) {
            render_fail(rw);
            return 0;
        }
        size_t start = render_rr_begin(rw, owner, LDNS_RR_TYPE_SRV, ttl);
        render_u16(rw, answers_instance_priority(inst));
        render_u16(rw, answers_instance_weight(inst));
        render_u16(rw, answers_instance_port(inst));
        render_name(rw, target, false);
        render_rr_end(rw, start);
    }
    return n_match;
}

/* Additional section for an SRV answer: each target's A then AAAA RRset in answer order,
 * whole RRsets while they fit in room (RFC 2181 §9: the rest is dropped without TC).
 * Returns the number of records kept. */
static size_t fast_srv_additional(struct lookup *lk, size_t n_match, const struct reg_name *rn,
                                  struct render *rw, size_t room)
{
    struct query_ctx *ctx = lk->ctx;
    size_t k = n_match > 1 ? (size_t)(ctx->rotation % n_match) : 0;
    size_t kept = 0;
    struct fast_targets targets;
    fast_targets_init(ctx, rn->service, &targets);
    for (size_t i = 0; i < n_match; i++) {
        const struct answers_instance *inst = ctx->match[(i + k) % n_match];
        const uint8_t *target = fast_target(&targets, inst);
        if (target == NULL)
            return kept; /* fast_srv has already sent the whole answer to the full path */
        for (int pass = 0; pass < 2; pass++) {
            size_t set_start = rw->len;
            size_t n =
                fast_instance_addresses(lk, inst, pass == 0 ? AF_INET : AF_INET6, rw, target);
            if (rw->len > room) {
                render_cut(rw, set_start);
                return kept;
            }
            kept += n;
        }
    }
    return kept;
}

/* The instance's TXT record, as answer_txt builds it. */
static size_t fast_txt(struct lookup *lk, struct render *rw, const uint8_t *owner)
{
    const struct answers_instance *inst = lk->ctx->match[0];
    size_t start = render_rr_begin(rw, owner, LDNS_RR_TYPE_TXT, lease_ttl(lk, inst));
    for (size_t i = 0; i < answers_instance_txt_count(inst); i++) {
        const char *text = answers_instance_txt(inst, i);
        size_t len = strlen(text);
        if (len > REGISTRY_MAX_TXT_LEN)
            len = REGISTRY_MAX_TXT_LEN;
        render_u8(rw, (uint8_t)len);
        render_bytes(rw, text, len);
    }
    render_rr_end(rw, start);
    return 1;
}

/* The RRset of type at a registry name (0 records: none), as answer_reg_type chooses it. */
static size_t fast_reg_type(struct lookup *lk, const struct reg_name *rn, size_t n_match,
                            ldns_rr_type type, struct render *rw, const uint8_t *owner)
{
    if (!reg_has_type(rn->kind, type))
        return 0;
    switch (type) {
    case LDNS_RR_TYPE_A:
    case LDNS_RR_TYPE_AAAA:
        return fast_addresses(lk, n_match, type, rw, owner);
    case LDNS_RR_TYPE_SRV:
        return fast_srv(lk, n_match, rn, rw, owner);
    case LDNS_RR_TYPE_TXT:
        return fast_txt(lk, rw, owner);
    default:
        return 0;
    }
}

/* The service zone's SOA for a negative answer, as zone_soa(negative) makes it. */
static void fast_soa(const struct lookup *lk, struct render *rw)
{
    const ldns_rr *soa = zonestore_zone_soa(lk->zone);
    uint32_t minimum = ldns_rdf2native_int32(ldns_rr_rdf(soa, 6));
    uint32_t ttl = minimum < ldns_rr_ttl(soa) ? minimum : ldns_rr_ttl(soa);
    size_t start = render_rr_begin(rw, ldns_rdf_data(ldns_rr_owner(soa)), LDNS_RR_TYPE_SOA, ttl);
    render_name(rw, ldns_rdf_data(ldns_rr_rdf(soa, 0)), true);
    render_name(rw, ldns_rdf_data(ldns_rr_rdf(soa, 1)), true);
    render_u32(rw, ldns_rdf2native_int32(ldns_rr_rdf(soa, 2)) + (uint32_t)answers_serial(lk->ans));
    for (size_t i = 3; i < 7; i++)
        render_u32(rw, ldns_rdf2native_int32(ldns_rr_rdf(soa, i)));
    render_rr_end(rw, start);
}

/* Is zone's origin the service domain? The byte compare settles the usual case (both
 * spelled alike) without ldns_dname_compare's label walk. */
static bool is_service_zone(const struct query_ctx *ctx, const struct zonestore_zone *zone)
{
    const ldns_rdf *origin = zonestore_zone_origin(zone);
    if (ldns_rdf_size(origin) != ldns_rdf_size(ctx->domain))
        return false;
    return memcmp(ldns_rdf_data(origin), ldns_rdf_data(ctx->domain), ldns_rdf_size(origin)) == 0 ||
           ldns_dname_compare(origin, ctx->domain) == 0;
}

/* Is the zone's SOA one the hot path can copy (class IN, the usual seven fields)? */
static bool soa_is_plain(const ldns_rr *soa)
{
    return ldns_rr_get_class(soa) == LDNS_RR_CLASS_IN && ldns_rr_rd_count(soa) == 7 &&
           ldns_rdf_get_type(ldns_rr_rdf(soa, 0)) == LDNS_RDF_TYPE_DNAME &&
           ldns_rdf_get_type(ldns_rr_rdf(soa, 1)) == LDNS_RDF_TYPE_DNAME;
}

/* Answer a plain question for a name of the service domain that no static record, empty
 * non-terminal, wildcard or cut covers: the same reply as decide() and wire_render() would
 * make, written directly into ctx->fast_out. Returns false (nothing sent) for anything else,
 * which then takes the full path. */
static bool fast_answer(struct query_ctx *ctx, const struct zonestore *zs,
                        const struct answers *ans, const uint8_t *req, size_t req_len,
                        enum query_transport transport, uint64_t now_ms, const uint8_t **resp,
                        size_t *resp_len)
{
    static const ldns_rr_type any_order[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_SRV,
                                             LDNS_RR_TYPE_TXT};
    struct wire_plain_query fq;
    if (ctx->cfg.full_path_only || !zs || !ans || !wire_parse_plain(req, req_len, &fq))
        return false;
    if (fq.qtype != LDNS_RR_TYPE_A && fq.qtype != LDNS_RR_TYPE_AAAA &&
        fq.qtype != LDNS_RR_TYPE_SRV && fq.qtype != LDNS_RR_TYPE_TXT &&
        fq.qtype != LDNS_RR_TYPE_ANY)
        return false;
    memcpy(ctx->fast_name, fq.question, fq.qname_len);
    ldns_rdf_set_size(ctx->fast_qname, fq.qname_len);
    const struct zonestore_zone *zone = zonestore_find_zone(zs, ctx->fast_qname);
    if (!zone || !is_service_zone(ctx, zone) || !soa_is_plain(zonestore_zone_soa(zone)))
        return false;
    struct zonestore_match m;
    zonestore_lookup(zone, ctx->fast_qname, &m);
    if (m.kind != ZONESTORE_NXDOMAIN)
        return false;
    struct lookup lk = {
        .ctx = ctx,
        .zone = zone,
        .ans = ans,
        .service_zone = true,
        .qtype = fq.qtype,
        .now_ms = now_ms,
    };
    struct reg_name rn;
    size_t n_match;
    bool exists;
    if (reg_lookup(&lk, ctx->fast_qname, &rn, &n_match, &exists) != 0 ||
        reserve_addrs(ctx, n_match * REGISTRY_MAX_ADDRS) != 0)
        return false;

    size_t limit = transport == QUERY_TCP
                       ? WIRE_TCP_MAX
                       : wire_udp_limit(fq.edns, fq.edns_udp_size, ctx->cfg.udp_max_size);
    size_t opt_len = fq.edns ? WIRE_OPT_SIZE : 0;
    struct render rw;
    render_init(&rw, ctx->fast_out, WIRE_TCP_MAX);
    render_question(&rw, fq.question, fq.qname_len);
    size_t base = rw.len;
    if (limit < opt_len || base > limit - opt_len)
        return false;
    size_t room = limit - opt_len;

    const uint8_t *owner = fq.question; /* compresses to the question at offset 12 */
    size_t an = 0, ns = 0, ar = 0;
    ldns_rr_type found_type = 0;
    if (exists) {
        if (fq.qtype == LDNS_RR_TYPE_ANY) {
            /* RFC 8482 §4.2: one RRset that exists at the name. */
            for (size_t i = 0; i < sizeof(any_order) / sizeof(any_order[0]) && an == 0; i++) {
                an = fast_reg_type(&lk, &rn, n_match, any_order[i], &rw, owner);
                found_type = any_order[i];
            }
        } else {
            an = fast_reg_type(&lk, &rn, n_match, fq.qtype, &rw, owner);
            found_type = fq.qtype;
        }
    }
    uint8_t rcode = exists ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN;
    if (an == 0) {
        /* RFC 2308 §3: NODATA or NXDOMAIN with the SOA in authority. */
        fast_soa(&lk, &rw);
        ns = 1;
    }
    bool tc = false;
    if (rw.len > room) {
        /* RFC 2181 §9: the answer does not fit: TC and no records. */
        render_cut(&rw, base);
        an = ns = 0;
        tc = true;
    } else if (an > 0 && found_type == LDNS_RR_TYPE_SRV) {
        ar = fast_srv_additional(&lk, n_match, &rn, &rw, room);
    }
    if (fq.edns) {
        /* RFC 6891 §6.1.1: our own payload size; extended RCODE 0, version 0, DO copied. */
        render_u8(&rw, 0);
        render_u16(&rw, LDNS_RR_TYPE_OPT);
        render_u16(&rw, ctx->cfg.udp_max_size);
        render_u16(&rw, 0);
        render_u16(&rw, fq.edns_do ? 0x8000U : 0);
        render_u16(&rw, 0);
        ar++;
    }
    if (rw.overflow)
        return false;
    uint8_t *h = ctx->fast_out;
    LDNS_ID_SET(h, LDNS_ID_WIRE(req));
    LDNS_QR_SET(h);
    LDNS_AA_SET(h);
    if (tc)
        LDNS_TC_SET(h);
    if (LDNS_RD_WIRE(req))
        LDNS_RD_SET(h);
    LDNS_RCODE_SET(h, rcode);
    ldns_write_uint16(h + LDNS_QDCOUNT_OFF, 1);
    ldns_write_uint16(h + LDNS_ANCOUNT_OFF, (uint16_t)an);
    ldns_write_uint16(h + LDNS_NSCOUNT_OFF, (uint16_t)ns);
    ldns_write_uint16(h + LDNS_ARCOUNT_OFF, (uint16_t)ar);
    ctx->outcome = (struct query_outcome){.qtype = fq.qtype, .rcode = rcode, .truncated = tc};
    *resp = ctx->fast_out;
    *resp_len = rw.len;
    return true;
}

/* ---- the request ---- */

/* The reply skeleton for the parsed request: ID, opcode, RD copied; OPT when asked. */
static void reply_init(const struct query_ctx *ctx, struct wire_reply *r, uint16_t rcode)
{
    const struct wire_query *q = &ctx->q;
    memset(r, 0, sizeof(*r));
    r->id = q->id;
    r->opcode = q->opcode;
    r->rd = q->rd;
    r->rcode = rcode;
    if (q->has_question) {
        r->qname = q->qname;
        r->qtype = q->qtype;
        r->qclass = q->qclass;
    }
    /* RFC 6891 §6.1.1: a request with OPT gets OPT back, with our own payload size. */
    r->edns = q->edns;
    r->edns_udp_size = ctx->cfg.udp_max_size;
    r->edns_do = q->edns_do;
}

/* Answer a well-formed QUERY from the zones; fills r. */
static int answer_question(struct query_ctx *ctx, const struct zonestore *zs,
                           const struct answers *ans, uint64_t now_ms, struct wire_reply *r)
{
    const struct wire_query *q = &ctx->q;
    /* RFC 1035 §3.2.5: QCLASS * (ANY) matches our class IN data. */
    bool any_class = q->qclass == LDNS_RR_CLASS_ANY;
    if ((q->qclass != LDNS_RR_CLASS_IN && !any_class) || q->qtype == LDNS_RR_TYPE_AXFR ||
        q->qtype == LDNS_RR_TYPE_IXFR) {
        r->rcode = LDNS_RCODE_REFUSED;
        return 0;
    }
    const struct zonestore_zone *zone = zs ? zonestore_find_zone(zs, q->qname) : NULL;
    if (!zone) {
        /* Not ours, and no recursion: REFUSED without AA, unless the server forwards it. */
        r->rcode = LDNS_RCODE_REFUSED;
        ctx->outside_zones = q->qclass == LDNS_RR_CLASS_IN;
        return 0;
    }
    struct lookup lk = {
        .ctx = ctx,
        .zone = zone,
        .ans = ans,
        .service_zone = ldns_dname_compare(zonestore_zone_origin(zone), ctx->domain) == 0,
        .qtype = q->qtype,
        .now_ms = now_ms,
    };
    enum outcome outcome;
    int rc = resolve(&lk, q->qname, 0, &outcome);
    if (rc != 0)
        return rc;
    /* No server holds every class, so a QCLASS ANY answer is never authoritative (as in
     * NSD); its negative answers keep the SOA. */
    r->aa = outcome != OUTCOME_REFERRAL && !any_class;
    r->rcode = outcome == OUTCOME_NXDOMAIN ? LDNS_RCODE_NXDOMAIN : LDNS_RCODE_NOERROR;
    if (outcome == OUTCOME_NODATA || outcome == OUTCOME_NXDOMAIN) {
        /* RFC 2308 §3: the SOA in authority, for negative caching. */
        ldns_rr_list_set_rr_count(ctx->additional, 0);
        if (push(ctx->authority, zone_soa(&lk, true)) != 0)
            return DNSD_ENOMEM;
    }
    r->answer = ctx->answer;
    r->authority = ctx->authority;
    r->additional = ctx->additional;
    return 0;
}

/* The RCODE for a QTYPE that names no data (RFC 6895 §3.1): TYPE 0 and the meta-TYPEs
 * (OPT, TSIG and the unassigned 128..248) are never queried (FORMERR); TKEY, MAILA and
 * MAILB are QTYPEs this server does not implement (NOTIMP). NOERROR for every other QTYPE:
 * ANY, AXFR and IXFR have their own rules, data TYPEs are looked up. */
static uint16_t meta_qtype_rcode(ldns_rr_type qtype)
{
    switch (qtype) {
    case LDNS_RR_TYPE_ANY:
    case LDNS_RR_TYPE_AXFR:
    case LDNS_RR_TYPE_IXFR:
        return LDNS_RCODE_NOERROR;
    case LDNS_RR_TYPE_TKEY:
    case LDNS_RR_TYPE_MAILA:
    case LDNS_RR_TYPE_MAILB:
        return LDNS_RCODE_NOTIMPL;
    default:
        break;
    }
    if (qtype == 0 || qtype == LDNS_RR_TYPE_OPT || (qtype >= 128 && qtype <= 255))
        return LDNS_RCODE_FORMERR;
    return LDNS_RCODE_NOERROR;
}

/* Build the reply for the parsed request; rcode and sections in r. */
static int decide(struct query_ctx *ctx, const struct zonestore *zs, const struct answers *ans,
                  uint64_t now_ms, struct wire_reply *r)
{
    const struct wire_query *q = &ctx->q;
    if (q->opcode != LDNS_PACKET_QUERY) {
        reply_init(ctx, r, LDNS_RCODE_NOTIMPL);
        return 0;
    }
    if (q->defect != WIRE_DEFECT_NONE) {
        reply_init(ctx, r, LDNS_RCODE_FORMERR);
        return 0;
    }
    if (q->edns && q->edns_version > 0) {
        /* RFC 6891 §6.1.3: we speak version 0 only. */
        reply_init(ctx, r, WIRE_RCODE_BADVERS);
        return 0;
    }
    uint16_t meta = meta_qtype_rcode(q->qtype);
    if (meta != LDNS_RCODE_NOERROR) {
        reply_init(ctx, r, meta);
        return 0;
    }
    reply_init(ctx, r, LDNS_RCODE_NOERROR);
    return answer_question(ctx, zs, ans, now_ms, r);
}

/* Last resort when even rendering fails: a bare SERVFAIL header. */
static void fallback_servfail(struct query_ctx *ctx, const uint8_t *req, const uint8_t **resp,
                              size_t *resp_len)
{
    uint8_t *h = ctx->fallback;
    memset(h, 0, WIRE_HEADER_SIZE);
    LDNS_ID_SET(h, LDNS_ID_WIRE(req));
    LDNS_QR_SET(h);
    LDNS_OPCODE_SET(h, LDNS_OPCODE_WIRE(req));
    if (LDNS_RD_WIRE(req))
        LDNS_RD_SET(h);
    LDNS_RCODE_SET(h, LDNS_RCODE_SERVFAIL);
    ctx->outcome = (struct query_outcome){.rcode = LDNS_RCODE_SERVFAIL};
    *resp = h;
    *resp_len = WIRE_HEADER_SIZE;
}

int query_answer(struct query_ctx *ctx, const struct zonestore *zs, const struct answers *ans,
                 const uint8_t *req, size_t req_len, enum query_transport transport,
                 uint64_t now_ms, const uint8_t **resp, size_t *resp_len)
{
    reset(ctx);
    ctx->rotation++;
    ctx->last_fast = false;
    ctx->outside_zones = false;
    *resp = ldns_buffer_begin(ctx->out);
    *resp_len = 0;
    /* RFC 1035 §4.1.1: never answer a response (avoids loops) or a partial header. */
    if (req_len < WIRE_HEADER_SIZE || LDNS_QR_WIRE(req))
        return 0;
    ctx->last_fast = fast_answer(ctx, zs, ans, req, req_len, transport, now_ms, resp, resp_len);
    if (ctx->last_fast)
        return 0;

    struct wire_reply r;
    int rc = wire_parse_query(req, req_len, &ctx->q);
    if (rc == 0)
        rc = decide(ctx, zs, ans, now_ms, &r);
    if (rc != 0) {
        /* Internal failure: SERVFAIL with the question when we have it. */
        reset(ctx);
        if (wire_parse_query(req, req_len, &ctx->q) != 0) {
            fallback_servfail(ctx, req, resp, resp_len);
            return 0;
        }
        reply_init(ctx, &r, LDNS_RCODE_SERVFAIL);
    }

    size_t limit = transport == QUERY_TCP
                       ? WIRE_TCP_MAX
                       : wire_udp_limit(ctx->q.edns, ctx->q.edns_udp_size, ctx->cfg.udp_max_size);
    if (wire_render(&r, limit, ctx->out, NULL) != 0) {
        fallback_servfail(ctx, req, resp, resp_len);
        return 0;
    }
    *resp = ldns_buffer_begin(ctx->out);
    *resp_len = ldns_buffer_position(ctx->out);
    ctx->outcome = (struct query_outcome){
        .qtype = ctx->q.has_question ? ctx->q.qtype : 0,
        .rcode = r.rcode,
        .truncated = *resp_len >= WIRE_HEADER_SIZE && LDNS_TC_WIRE(*resp),
        .outside_zones = ctx->outside_zones && rc == 0,
        .udp_limit =
            (uint16_t)wire_udp_limit(ctx->q.edns, ctx->q.edns_udp_size, ctx->cfg.udp_max_size),
    };
    return 0;
}

bool query_last_was_fast(const struct query_ctx *ctx)
{
    return ctx->last_fast;
}

struct query_outcome query_last_outcome(const struct query_ctx *ctx)
{
    return ctx->outcome;
}
