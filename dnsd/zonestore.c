/* SPDX-License-Identifier: BSD-2-Clause
 * The zone store: reads the *.zone files of a directory with ldns, synthesises the service
 * domain's apex, and classifies names by the RFC 1034 §4.3.2 algorithm. Each zone keeps its
 * nodes in one array sorted in canonical order (RFC 4034 §6.1) by a byte key in which every
 * ancestor's key is a prefix, so a lookup is a few bisections with memcmp and never
 * allocates. Owns every ldns object it holds; nothing changes after zonestore_load returns.
 * No sockets. */
#include "zonestore.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dnsd/error.h"

#define ZONESTORE_DEFAULT_TTL 3600
#define ZONESTORE_SUFFIX ".zone"
/* A name of at most 255 octets has at most 127 labels plus the root. */
#define ZONESTORE_MAX_LABELS 128
/* A key takes at most two bytes per octet of a name; two more make a wildcard's key. */
#define ZONESTORE_KEY_BUF (2 * LDNS_MAX_DOMAINLEN + 2)

/* A name's canonical key (see key_make) and the key length of each of its ancestors. */
struct name_key {
    uint8_t buf[ZONESTORE_KEY_BUF];
    size_t ends[ZONESTORE_MAX_LABELS + 1]; /* ends[k]: key length of the k-label suffix */
    size_t n_labels;
};

struct rrset {
    ldns_rr_type type;
    ldns_rr_list *rrs; /* owned list; its records are borrowed from the zone's ldz */
};

struct zonestore_node {
    ldns_rdf *name;     /* owned; the owner name, lower-cased */
    const uint8_t *key; /* borrowed from zonestore_zone.keys */
    size_t key_len;
    struct rrset *sets; /* borrowed from zonestore_zone.sets; ordered by type */
    size_t n_sets;
    ldns_rr_list *all; /* owned when owns_all, else borrowed (sets[0].rrs); records
                          borrowed from the zone's ldz */
    bool owns_all;
    bool is_cut; /* owns NS below the apex: a zone cut (RFC 1034 §4.2.1) */
};

struct zonestore_zone {
    ldns_rdf *origin; /* owned; lower-cased */
    size_t origin_labels;
    uint8_t origin_key[ZONESTORE_KEY_BUF];
    size_t origin_key_len;
    uint8_t *keys;                /* owned; every record's owner key, back to back */
    ldns_zone *ldz;               /* owned: the SOA and every other record */
    struct zonestore_node *nodes; /* owned; canonical order of their names */
    size_t n_nodes;
    struct rrset *sets; /* owned; every node's RRsets, node after node */
    size_t n_sets;
    size_t n_rrs; /* records including the SOA */
    char *file;   /* owned; the zone file's path, NULL when synthetic */
    bool has_cuts;
    bool synthetic;
};

struct zonestore {
    struct zonestore_zone **zones; /* owned array of owned zones; canonical order of origins */
    size_t n_zones;
};

/* One record being sorted into nodes; idx keeps file order inside an RRset. */
struct sort_item {
    const uint8_t *key; /* borrowed from zonestore_zone.keys, set once it stops moving */
    size_t key_off;
    size_t key_len;
    ldns_rr *rr; /* borrowed from the zone's ldz */
    size_t idx;
};

__attribute__((format(printf, 4, 5))) static int set_err(char *err, size_t err_len, int code,
                                                         const char *fmt, ...)
{
    if (err && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Offsets of name's labels, leftmost first, with off[count] the root; returns count. */
static size_t label_offsets(const ldns_rdf *name, size_t off[ZONESTORE_MAX_LABELS + 1])
{
    const uint8_t *d = ldns_rdf_data(name);
    size_t size = ldns_rdf_size(name);
    size_t pos = 0;
    size_t n = 0;
    while (pos + (size_t)d[pos] + 1 < size && d[pos] != 0 && n < ZONESTORE_MAX_LABELS) {
        off[n++] = pos;
        pos += (size_t)d[pos] + 1;
    }
    off[n] = pos;
    return n;
}

/* Point view at the tail of name starting at offset (a label boundary); no copy. */
static void name_view(const ldns_rdf *name, size_t offset, ldns_rdf *view)
{
    ldns_rdf_set_type(view, LDNS_RDF_TYPE_DNAME);
    ldns_rdf_set_size(view, ldns_rdf_size(name) - offset);
    ldns_rdf_set_data(view, ldns_rdf_data(name) + offset);
}

/* Is name strictly below parent? Case-insensitive and allocation-free, unlike
 * ldns_dname_is_subdomain in ldns 1.8. */
static bool is_below(const ldns_rdf *name, const ldns_rdf *parent)
{
    size_t off[ZONESTORE_MAX_LABELS + 1];
    size_t n = label_offsets(name, off);
    size_t p = ldns_dname_label_count(parent);
    if (n <= p) {
        return false;
    }
    ldns_rdf view;
    name_view(name, off[n - p], &view);
    return ldns_dname_compare(&view, parent) == 0;
}

static bool is_within(const ldns_rdf *name, const ldns_rdf *parent)
{
    return ldns_dname_compare(name, parent) == 0 || is_below(name, parent);
}

/* Fill k with name's key: its labels right to left, ASCII letters lower-cased, each label
 * ended by 0x00, octets 0x00 and 0x01 written as 0x01 0x01 and 0x01 0x02. memcmp order of
 * keys is then canonical name order (RFC 4034 §6.1) and a name's key is a prefix of every
 * descendant's key: the bisections below need no ldns call and no allocation. */
static void key_make(const ldns_rdf *name, struct name_key *k)
{
    size_t off[ZONESTORE_MAX_LABELS + 1];
    const uint8_t *d = ldns_rdf_data(name);
    size_t n = label_offsets(name, off);
    size_t len = 0;
    k->ends[0] = 0;
    for (size_t i = 1; i <= n; i++) {
        const uint8_t *label = d + off[n - i];
        for (size_t j = 1; j <= label[0]; j++) {
            uint8_t c = label[j];
            if (c < 2) {
                k->buf[len++] = 1;
                k->buf[len++] = (uint8_t)(c + 1);
            } else {
                k->buf[len++] = c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
            }
        }
        k->buf[len++] = 0;
        k->ends[i] = len;
    }
    k->n_labels = n;
}

static int key_cmp(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c != 0) {
        return c;
    }
    return a_len < b_len ? -1 : a_len > b_len;
}

/* Is the name with key a (a_len) the name with key prefix, or below it? */
static bool key_is_within(const uint8_t *a, size_t a_len, const uint8_t *prefix, size_t len)
{
    return a_len >= len && memcmp(a, prefix, len) == 0;
}

/* Index of the first node whose key is not before key; *found says whether it is equal. */
static size_t node_lower_bound(const struct zonestore_zone *zone, const uint8_t *key, size_t len,
                               bool *found)
{
    size_t lo = 0;
    size_t hi = zone->n_nodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(zone->nodes[mid].key, zone->nodes[mid].key_len, key, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found =
        lo < zone->n_nodes && key_cmp(zone->nodes[lo].key, zone->nodes[lo].key_len, key, len) == 0;
    return lo;
}

static const struct zonestore_node *find_node(const struct zonestore_zone *zone, const uint8_t *key,
                                              size_t len)
{
    bool found;
    size_t pos = node_lower_bound(zone, key, len, &found);
    return found ? &zone->nodes[pos] : NULL;
}

static const struct zonestore_node *find_node_by_name(const struct zonestore_zone *zone,
                                                      const ldns_rdf *name)
{
    struct name_key k;
    key_make(name, &k);
    return find_node(zone, k.buf, k.ends[k.n_labels]);
}

static void zone_free(struct zonestore_zone *zone)
{
    if (!zone) {
        return;
    }
    for (size_t i = 0; i < zone->n_nodes; i++) {
        ldns_rdf_deep_free(zone->nodes[i].name);
        if (zone->nodes[i].owns_all) {
            ldns_rr_list_free(zone->nodes[i].all);
        }
    }
    for (size_t i = 0; i < zone->n_sets; i++) {
        if (zone->sets[i].rrs) {
            ldns_rr_list_free(zone->sets[i].rrs);
        }
    }
    free(zone->nodes);
    free(zone->sets);
    free(zone->keys);
    if (zone->ldz) {
        ldns_zone_deep_free(zone->ldz);
    }
    ldns_rdf_deep_free(zone->origin);
    free(zone->file);
    free(zone);
}

static int sort_item_cmp(const void *a, const void *b)
{
    const struct sort_item *x = a;
    const struct sort_item *y = b;
    int c = key_cmp(x->key, x->key_len, y->key, y->key_len);
    if (c != 0) {
        return c;
    }
    ldns_rr_type tx = ldns_rr_get_type(x->rr);
    ldns_rr_type ty = ldns_rr_get_type(y->rr);
    if (tx != ty) {
        return tx < ty ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Group the sorted records into nodes and RRsets. */
static int zone_index(struct zonestore_zone *zone, const struct sort_item *items, size_t n)
{
    size_t n_nodes = 0;
    size_t n_sets = 0;
    for (size_t i = 0; i < n; i++) {
        bool new_node = i == 0 || key_cmp(items[i - 1].key, items[i - 1].key_len, items[i].key,
                                          items[i].key_len) != 0;
        n_nodes += new_node;
        n_sets += new_node || ldns_rr_get_type(items[i - 1].rr) != ldns_rr_get_type(items[i].rr);
    }
    zone->nodes = calloc(n_nodes, sizeof *zone->nodes);
    zone->sets = calloc(n_sets, sizeof *zone->sets);
    if (!zone->nodes || !zone->sets) {
        return DNSD_ENOMEM;
    }
    zone->n_nodes = n_nodes;
    zone->n_sets = n_sets;

    struct zonestore_node *node = NULL;
    struct rrset *set = NULL;
    size_t node_start = 0;
    for (size_t i = 0; i < n; i++) {
        ldns_rr *rr = items[i].rr;
        if (!node || key_cmp(node->key, node->key_len, items[i].key, items[i].key_len) != 0) {
            node = node ? node + 1 : zone->nodes;
            node->key = items[i].key;
            node->key_len = items[i].key_len;
            node->name = ldns_rdf_clone(ldns_rr_owner(rr));
            if (!node->name) {
                return DNSD_ENOMEM;
            }
            ldns_dname2canonical(node->name);
            node->sets = set ? set + 1 : zone->sets;
            node_start = i;
            set = NULL;
        }
        if (!set || set->type != ldns_rr_get_type(rr)) {
            set = set ? set + 1 : node->sets;
            set->type = ldns_rr_get_type(rr);
            set->rrs = ldns_rr_list_new();
            if (!set->rrs) {
                return DNSD_ENOMEM;
            }
            node->n_sets++;
        }
        if (!ldns_rr_list_push_rr(set->rrs, rr)) {
            return DNSD_ENOMEM;
        }
        bool node_ends = i + 1 == n || key_cmp(node->key, node->key_len, items[i + 1].key,
                                               items[i + 1].key_len) != 0;
        if (!node_ends) {
            continue;
        }
        if (node->n_sets == 1) {
            node->all = node->sets[0].rrs;
        } else {
            node->all = ldns_rr_list_new();
            if (!node->all) {
                return DNSD_ENOMEM;
            }
            node->owns_all = true;
            for (size_t j = node_start; j <= i; j++) {
                if (!ldns_rr_list_push_rr(node->all, items[j].rr)) {
                    return DNSD_ENOMEM;
                }
            }
        }
        bool apex = node->key_len == zone->origin_key_len;
        node->is_cut = !apex && zonestore_node_rrset(node, LDNS_RR_TYPE_NS) != NULL;
        zone->has_cuts |= node->is_cut;
    }
    return 0;
}

/* Make a zone of ldz for origin, checking its SOA and that every owner is inside it.
 * Ownership: takes ldz, origin and file (file may be NULL), even on failure. */
static int zone_new(ldns_zone *ldz, ldns_rdf *origin, char *file, bool synthetic,
                    struct zonestore_zone **out, char *err, size_t err_len)
{
    struct sort_item *items = NULL;
    struct name_key *k = NULL;
    const char *what = file ? file : "apex";
    char *origin_str = NULL;
    char *owner_str = NULL;
    int rc = DNSD_ENOMEM;
    struct zonestore_zone *zone = calloc(1, sizeof *zone);
    if (!zone) {
        ldns_zone_deep_free(ldz);
        ldns_rdf_deep_free(origin);
        free(file);
        return DNSD_ENOMEM;
    }
    zone->ldz = ldz;
    zone->origin = origin;
    zone->file = file;
    zone->synthetic = synthetic;
    ldns_dname2canonical(origin);
    zone->origin_labels = ldns_dname_label_count(origin);
    k = malloc(sizeof *k);
    if (!k) {
        goto fail;
    }
    key_make(origin, k);
    zone->origin_key_len = k->ends[k->n_labels];
    memcpy(zone->origin_key, k->buf, zone->origin_key_len);

    const ldns_rr *soa = ldns_zone_soa(ldz);
    if (!soa || ldns_dname_compare(ldns_rr_owner(soa), origin) != 0) {
        origin_str = ldns_rdf2str(origin);
        rc = set_err(err, err_len, DNSD_EINVAL, "%s: no SOA record at origin %s", what,
                     origin_str ? origin_str : "?");
        goto fail;
    }
    const ldns_rr_list *rrs = ldns_zone_rrs(ldz);
    size_t n_rr = ldns_rr_list_rr_count(rrs);
    zone->n_rrs = n_rr + 1;
    items = malloc(zone->n_rrs * sizeof *items);
    size_t cap = 32 * zone->n_rrs; /* grows below; typical keys are shorter */
    size_t used = 0;
    zone->keys = malloc(cap);
    if (!items || !zone->keys) {
        goto fail;
    }
    for (size_t i = 0; i < zone->n_rrs; i++) {
        ldns_rr *rr = i == 0 ? ldns_zone_soa(ldz) : ldns_rr_list_rr(rrs, i - 1);
        key_make(ldns_rr_owner(rr), k);
        size_t len = k->ends[k->n_labels];
        if (!key_is_within(k->buf, len, zone->origin_key, zone->origin_key_len)) {
            origin_str = ldns_rdf2str(origin);
            owner_str = ldns_rdf2str(ldns_rr_owner(rr));
            rc = set_err(err, err_len, DNSD_EINVAL, "%s: record owner %s is outside the zone %s",
                         what, owner_str ? owner_str : "?", origin_str ? origin_str : "?");
            goto fail;
        }
        if (cap - used < len) {
            cap = 2 * cap + len;
            uint8_t *keys = realloc(zone->keys, cap);
            if (!keys) {
                goto fail;
            }
            zone->keys = keys;
        }
        memcpy(zone->keys + used, k->buf, len);
        items[i] = (struct sort_item){.key_off = used, .key_len = len, .rr = rr, .idx = i};
        used += len;
    }
    uint8_t *keys = realloc(zone->keys, used);
    if (keys) {
        zone->keys = keys;
    }
    for (size_t i = 0; i < zone->n_rrs; i++) {
        items[i].key = zone->keys + items[i].key_off;
    }
    qsort(items, zone->n_rrs, sizeof *items, sort_item_cmp);
    rc = zone_index(zone, items, zone->n_rrs);
    if (rc != 0) {
        goto fail;
    }
    free(items);
    free(k);
    *out = zone;
    return 0;
fail:
    free(items);
    free(k);
    free(origin_str);
    free(owner_str);
    zone_free(zone);
    return rc;
}

/* Parse an absolute domain name; NULL when str is not one. */
static ldns_rdf *absolute_name(const char *str)
{
    if (!str || !ldns_dname_str_absolute(str)) {
        return NULL;
    }
    return ldns_dname_new_frm_str(str);
}

/* A new record of owner (copied), type and ttl, class IN, taking the rdfs (even on failure).
 * Returns: the record, or NULL when out of memory. */
static ldns_rr *make_rr(const ldns_rdf *owner, ldns_rr_type type, uint32_t ttl, ldns_rdf **rdfs,
                        size_t n_rdfs)
{
    ldns_rr *rr = ldns_rr_new();
    ldns_rdf *owner_copy = ldns_rdf_clone(owner);
    if (!rr || !owner_copy) {
        goto fail;
    }
    ldns_rr_set_owner(rr, owner_copy);
    owner_copy = NULL;
    ldns_rr_set_type(rr, type);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, ttl);
    for (size_t i = 0; i < n_rdfs; i++) {
        if (!rdfs[i] || !ldns_rr_push_rdf(rr, rdfs[i])) {
            goto fail;
        }
        rdfs[i] = NULL;
    }
    return rr;
fail:
    for (size_t i = 0; i < n_rdfs; i++) {
        ldns_rdf_deep_free(rdfs[i]);
    }
    ldns_rdf_deep_free(owner_copy);
    ldns_rr_free(rr);
    return NULL;
}

/* Add rr to ldz, or free it. Returns: 0 or DNSD_ENOMEM. */
static int push_rr(ldns_zone *ldz, ldns_rr *rr)
{
    if (!rr) {
        return DNSD_ENOMEM;
    }
    if (!ldns_zone_push_rr(ldz, rr)) {
        ldns_rr_free(rr);
        return DNSD_ENOMEM;
    }
    return 0;
}

/* Synthesise the service domain's apex: SOA, NS and, when the NS host is inside the domain,
 * its addresses. */
static int synth_apex(const struct zonestore_apex *apex, struct zonestore_zone **out, char *err,
                      size_t err_len)
{
    ldns_zone *ldz = NULL;
    ldns_rdf *domain = absolute_name(apex->domain);
    ldns_rdf *ns = absolute_name(apex->ns_name);
    ldns_rdf *rname = absolute_name(apex->rname);
    int rc = DNSD_EINVAL;
    if (!domain || !ns || !rname) {
        const char *bad = !domain ? apex->domain : !ns ? apex->ns_name : apex->rname;
        rc = set_err(err, err_len, DNSD_EINVAL, "apex: %s is not an absolute domain name",
                     bad ? bad : "(null)");
        goto fail;
    }
    rc = DNSD_ENOMEM;
    ldz = ldns_zone_new();
    if (!ldz) {
        goto fail;
    }
    ldns_rdf *soa_rdata[] = {
        ldns_rdf_clone(ns),
        ldns_rdf_clone(rname),
        ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, apex->serial),
        ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, apex->refresh),
        ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, apex->retry),
        ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, apex->expire),
        ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, apex->minimum),
    };
    ldns_rr *soa = make_rr(domain, LDNS_RR_TYPE_SOA, apex->ttl, soa_rdata,
                           sizeof soa_rdata / sizeof soa_rdata[0]);
    if (!soa) {
        goto fail;
    }
    ldns_zone_set_soa(ldz, soa);
    ldns_rdf *ns_rdata[] = {ldns_rdf_clone(ns)};
    rc = push_rr(ldz, make_rr(domain, LDNS_RR_TYPE_NS, apex->ttl, ns_rdata, 1));
    if (rc != 0) {
        goto fail;
    }
    /* Glue only for an in-bailiwick NS host: outside the domain it is not our data. */
    for (size_t i = 0; is_within(ns, domain) && i < apex->n_ns_addresses; i++) {
        const char *addr = apex->ns_addresses[i];
        bool v6 = addr && strchr(addr, ':');
        ldns_rdf *rdata[] = {
            addr ? ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, addr) : NULL,
        };
        if (!rdata[0]) {
            rc = set_err(err, err_len, DNSD_EINVAL, "apex: %s is not an IPv4 or IPv6 address",
                         addr ? addr : "(null)");
            goto fail;
        }
        rc =
            push_rr(ldz, make_rr(ns, v6 ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A, apex->ttl, rdata, 1));
        if (rc != 0) {
            goto fail;
        }
    }
    ldns_rdf_deep_free(ns);
    ldns_rdf_deep_free(rname);
    return zone_new(ldz, domain, NULL, true, out, err, err_len);
fail:
    if (ldz) {
        ldns_zone_deep_free(ldz);
    }
    ldns_rdf_deep_free(domain);
    ldns_rdf_deep_free(ns);
    ldns_rdf_deep_free(rname);
    return rc;
}

/* Find the $ORIGIN that opens the file (before any record), if any; rewinds fp. */
static int scan_origin(FILE *fp, const char *path, ldns_rdf **origin, char *err, size_t err_len)
{
    char *line = NULL;
    size_t cap = 0;
    int line_nr = 0;
    int rc = 0;
    while (getline(&line, &cap, fp) >= 0) {
        line_nr++;
        char *p = line + strspn(line, " \t\r\n");
        if (*p == '\0' || *p == ';') {
            continue;
        }
        if (strncmp(p, "$TTL", 4) == 0) {
            continue;
        }
        if (strncmp(p, "$ORIGIN", 7) != 0 || !strchr(" \t", p[7])) {
            break;
        }
        p += 7 + strspn(p + 7, " \t");
        p[strcspn(p, " \t\r\n;")] = '\0';
        if (*p == '\0') {
            break; /* ldns reports the malformed directive with its line */
        }
        *origin = absolute_name(p);
        if (!*origin) {
            rc = set_err(err, err_len, DNSD_EPARSE,
                         "%s:%d: $ORIGIN %s is not an absolute domain name", path, line_nr, p);
        }
        break;
    }
    free(line);
    if (rc == 0 && (ferror(fp) || fseek(fp, 0, SEEK_SET) != 0)) {
        rc = set_err(err, err_len, DNSD_EIO, "%s: %s", path, strerror(errno));
    }
    return rc;
}

/* ldns counts newlines, so an error on a last line without one reads as the line before. */
static int error_line(FILE *fp, int line_nr)
{
    if (feof(fp) && fseek(fp, -1, SEEK_END) == 0 && fgetc(fp) != '\n') {
        return line_nr + 1;
    }
    return line_nr;
}

/* Parse fp record by record to find the first syntax error without the leak of
 * ldns_zone_new_frm_fp_l, whose error path frees the zone but not its records (ldns 1.8.3).
 * The records are kept until the end, as ldns_zone_new_frm_fp_l keeps them: freeing each
 * at once leaves the parser's large scratch buffers on top of the heap, and glibc then trims
 * and regrows the heap for every record (seconds for a big zone).
 * It also finds a second SOA record (*second_soa_line, else 0): ldns 1.8.3's zone reader
 * reads freed memory when a file has three, so such a file never reaches it.
 * Returns the status with *line_nr at the error; rewinds fp when all is well. */
static ldns_status check_syntax(FILE *fp, const ldns_rdf *origin, int *line_nr,
                                int *second_soa_line)
{
    size_t n_soa = 0;
    *second_soa_line = 0;
    uint32_t ttl = ZONESTORE_DEFAULT_TTL;
    ldns_rdf *cur_origin = ldns_rdf_clone(origin);
    ldns_rdf *prev = ldns_rdf_clone(origin);
    ldns_rr_list *seen = ldns_rr_list_new();
    ldns_status st = cur_origin && prev && seen ? LDNS_STATUS_OK : LDNS_STATUS_MEM_ERR;
    *line_nr = 0;
    while (st == LDNS_STATUS_OK && !feof(fp)) {
        ldns_rr *rr = NULL;
        st = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &cur_origin, &prev, line_nr);
        if (rr && ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ++n_soa == 2) {
            *second_soa_line = *line_nr;
        }
        if (rr && !ldns_rr_list_push_rr(seen, rr)) {
            ldns_rr_free(rr);
            st = LDNS_STATUS_MEM_ERR;
        }
        if (st == LDNS_STATUS_SYNTAX_EMPTY || st == LDNS_STATUS_SYNTAX_TTL ||
            st == LDNS_STATUS_SYNTAX_ORIGIN) {
            st = LDNS_STATUS_OK;
        } else if (st == LDNS_STATUS_SYNTAX_INCLUDE) {
            st = LDNS_STATUS_SYNTAX_INCLUDE_ERR_NOTIMPL; /* as ldns_zone_new_frm_fp_l */
        }
    }
    ldns_rr_list_deep_free(seen);
    ldns_rdf_deep_free(cur_origin);
    ldns_rdf_deep_free(prev);
    if (st == LDNS_STATUS_OK && fseek(fp, 0, SEEK_SET) != 0) {
        st = LDNS_STATUS_FILE_ERR;
    }
    return st;
}

/* Read one zone file; name is its file name, path the name joined to the directory. */
static int load_file(const char *path, const char *name, struct zonestore_zone **out, char *err,
                     size_t err_len)
{
    ldns_rdf *origin = NULL;
    ldns_zone *ldz = NULL;
    char *origin_str = NULL;
    char *file = NULL;
    int rc;
    FILE *fp = fopen(path, "re");
    if (!fp) {
        return set_err(err, err_len, errno == ENOMEM ? DNSD_ENOMEM : DNSD_EIO, "%s: %s", path,
                       strerror(errno));
    }
    rc = scan_origin(fp, path, &origin, err, err_len);
    if (rc != 0) {
        goto fail;
    }
    if (!origin) {
        size_t len = strlen(name) - strlen(ZONESTORE_SUFFIX);
        if (asprintf(&origin_str, "%.*s.", (int)len, name) < 0) {
            origin_str = NULL;
            rc = DNSD_ENOMEM;
            goto fail;
        }
        origin = ldns_dname_new_frm_str(origin_str);
        if (!origin) {
            rc = set_err(err, err_len, DNSD_EINVAL,
                         "%s: no $ORIGIN and the file name gives no valid origin (%s)", path,
                         origin_str);
            goto fail;
        }
    }
    int line_nr = 0;
    int second_soa_line;
    ldns_status st = check_syntax(fp, origin, &line_nr, &second_soa_line);
    if (st == LDNS_STATUS_OK && second_soa_line > 0) {
        rc = set_err(err, err_len, DNSD_EPARSE,
                     "%s:%d: a second SOA record; a zone has exactly one (RFC 1035 §5.2)", path,
                     second_soa_line);
        goto fail;
    }
    if (st == LDNS_STATUS_OK) {
        line_nr = 0;
        st = ldns_zone_new_frm_fp_l(&ldz, fp, origin, ZONESTORE_DEFAULT_TTL, LDNS_RR_CLASS_IN,
                                    &line_nr);
    }
    if (st == LDNS_STATUS_MEM_ERR) {
        rc = DNSD_ENOMEM;
        goto fail;
    }
    if (st != LDNS_STATUS_OK) {
        rc = set_err(err, err_len, DNSD_EPARSE, "%s:%d: %s", path, error_line(fp, line_nr),
                     ldns_get_errorstr_by_id(st));
        goto fail;
    }
    file = strdup(path);
    if (!file) {
        rc = DNSD_ENOMEM;
        goto fail;
    }
    fclose(fp);
    free(origin_str);
    return zone_new(ldz, origin, file, false, out, err, err_len);
fail:
    if (ldz) {
        ldns_zone_deep_free(ldz);
    }
    ldns_rdf_deep_free(origin);
    free(origin_str);
    fclose(fp);
    return rc;
}

/* scandir filter: visible files named *.zone. */
static int is_zone_file_name(const struct dirent *de)
{
    size_t len = strlen(de->d_name);
    size_t suffix = strlen(ZONESTORE_SUFFIX);
    return de->d_name[0] != '.' && len > suffix &&
           strcmp(de->d_name + len - suffix, ZONESTORE_SUFFIX) == 0;
}

/* scandir order: byte order of the names, whatever the locale. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int zone_ptr_cmp(const void *a, const void *b)
{
    const struct zonestore_zone *const *x = a;
    const struct zonestore_zone *const *y = b;
    return key_cmp((*x)->origin_key, (*x)->origin_key_len, (*y)->origin_key, (*y)->origin_key_len);
}

/* The zone whose origin key is key (len), by bisection of the sorted zones. */
static const struct zonestore_zone *zone_by_key(const struct zonestore *zs, const uint8_t *key,
                                                size_t len)
{
    size_t lo = 0;
    size_t hi = zs->n_zones;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct zonestore_zone *zone = zs->zones[mid];
        int c = key_cmp(zone->origin_key, zone->origin_key_len, key, len);
        if (c == 0) {
            return zone;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* Read every zone file of dir into zs (the zones stay in file name order). */
static int load_dir(struct zonestore *zs, const char *dir, char *err, size_t err_len)
{
    struct dirent **ents = NULL;
    char *path = NULL;
    char *origin_str = NULL;
    int rc = 0;
    int n = scandir(dir, &ents, is_zone_file_name, by_name);
    if (n < 0) {
        int e = errno;
        rc = e == ENOENT || e == ENOTDIR ? DNSD_ENOENT : e == ENOMEM ? DNSD_ENOMEM : DNSD_EIO;
        return set_err(err, err_len, rc, "zone directory %s: %s", dir, strerror(e));
    }
    zs->zones = calloc((size_t)n + 1, sizeof *zs->zones);
    if (!zs->zones) {
        rc = DNSD_ENOMEM;
        goto done;
    }
    size_t dir_len = strlen(dir);
    const char *sep = dir_len > 0 && dir[dir_len - 1] == '/' ? "" : "/";
    for (int i = 0; i < n; i++) {
        free(path);
        if (asprintf(&path, "%s%s%s", dir, sep, ents[i]->d_name) < 0) {
            path = NULL;
            rc = DNSD_ENOMEM;
            goto done;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = set_err(err, err_len, DNSD_EIO, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (!S_ISREG(st.st_mode)) {
            continue;
        }
        struct zonestore_zone *zone = NULL;
        rc = load_file(path, ents[i]->d_name, &zone, err, err_len);
        if (rc != 0) {
            goto done;
        }
        zs->zones[zs->n_zones++] = zone;
        for (size_t j = 0; j + 1 < zs->n_zones; j++) {
            if (ldns_dname_compare(zs->zones[j]->origin, zone->origin) == 0) {
                origin_str = ldns_rdf2str(zone->origin);
                rc = set_err(err, err_len, DNSD_EINVAL, "%s: origin %s was already loaded from %s",
                             path, origin_str ? origin_str : "?", zs->zones[j]->file);
                goto done;
            }
        }
    }
done:
    for (int i = 0; i < n; i++) {
        free(ents[i]);
    }
    free(ents);
    free(path);
    free(origin_str);
    return rc;
}

int zonestore_load(const char *dir, const struct zonestore_apex *apex, struct zonestore **out,
                   char *err, size_t err_len)
{
    int rc = DNSD_ENOMEM;
    ldns_rdf *domain = NULL;
    struct zonestore *zs = calloc(1, sizeof *zs);
    if (!zs) {
        return DNSD_ENOMEM;
    }
    if (dir) {
        rc = load_dir(zs, dir, err, err_len);
        if (rc != 0) {
            goto fail;
        }
    }
    if (apex) {
        domain = absolute_name(apex->domain);
        bool have = false;
        for (size_t i = 0; domain && i < zs->n_zones; i++) {
            have |= ldns_dname_compare(zs->zones[i]->origin, domain) == 0;
        }
        if (!have) {
            struct zonestore_zone **zones =
                realloc(zs->zones, (zs->n_zones + 1) * sizeof *zs->zones);
            if (!zones) {
                rc = DNSD_ENOMEM;
                goto fail;
            }
            zs->zones = zones;
            rc = synth_apex(apex, &zs->zones[zs->n_zones], err, err_len);
            if (rc != 0) {
                goto fail;
            }
            zs->n_zones++;
        }
    }
    if (zs->n_zones > 1) {
        qsort(zs->zones, zs->n_zones, sizeof *zs->zones, zone_ptr_cmp);
    }
    ldns_rdf_deep_free(domain);
    assert(zonestore_check(zs));
    *out = zs;
    return 0;
fail:
    ldns_rdf_deep_free(domain);
    zonestore_free(zs);
    return rc;
}

void zonestore_free(struct zonestore *zs)
{
    if (!zs) {
        return;
    }
    for (size_t i = 0; i < zs->n_zones; i++) {
        zone_free(zs->zones[i]);
    }
    free(zs->zones);
    free(zs);
}

/* Are a node's records consistent with its name, its zone and each other? */
static bool node_check(const struct zonestore_zone *zone, const struct zonestore_node *node)
{
    size_t total = 0;
    bool has_ns = false;
    for (size_t j = 0; j < node->n_sets; j++) {
        const ldns_rr_list *rrs = node->sets[j].rrs;
        if (j > 0 && node->sets[j - 1].type >= node->sets[j].type) {
            return false;
        }
        if (!rrs || ldns_rr_list_rr_count(rrs) == 0) {
            return false;
        }
        for (size_t k = 0; k < ldns_rr_list_rr_count(rrs); k++) {
            const ldns_rr *rr = ldns_rr_list_rr(rrs, k);
            if (ldns_rr_get_type(rr) != node->sets[j].type ||
                ldns_dname_compare(ldns_rr_owner(rr), node->name) != 0) {
                return false;
            }
        }
        total += ldns_rr_list_rr_count(rrs);
        has_ns |= node->sets[j].type == LDNS_RR_TYPE_NS;
    }
    bool apex = ldns_dname_compare(node->name, zone->origin) == 0;
    struct name_key k;
    key_make(node->name, &k);
    return node->n_sets > 0 && node->all && ldns_rr_list_rr_count(node->all) == total &&
           node->is_cut == (has_ns && !apex) && (apex || is_below(node->name, zone->origin)) &&
           key_cmp(k.buf, k.ends[k.n_labels], node->key, node->key_len) == 0;
}

bool zonestore_check(const struct zonestore *zs)
{
    for (size_t i = 0; i < zs->n_zones; i++) {
        const struct zonestore_zone *zone = zs->zones[i];
        if (i > 0 && ldns_dname_compare(zs->zones[i - 1]->origin, zone->origin) >= 0) {
            return false;
        }
        const ldns_rr *soa = ldns_zone_soa(zone->ldz);
        if (!soa || ldns_dname_compare(ldns_rr_owner(soa), zone->origin) != 0) {
            return false;
        }
        if (zone->synthetic != (zone->file == NULL)) {
            return false;
        }
        size_t total = 0;
        bool has_cuts = false;
        for (size_t j = 0; j < zone->n_nodes; j++) {
            const struct zonestore_node *node = &zone->nodes[j];
            if (j > 0 && ldns_dname_compare(zone->nodes[j - 1].name, node->name) >= 0) {
                return false;
            }
            if (!node_check(zone, node)) {
                return false;
            }
            total += ldns_rr_list_rr_count(node->all);
            has_cuts |= node->is_cut;
        }
        if (total != zone->n_rrs || has_cuts != zone->has_cuts ||
            find_node_by_name(zone, zone->origin) == NULL) {
            return false;
        }
    }
    return true;
}

size_t zonestore_zone_count(const struct zonestore *zs)
{
    return zs->n_zones;
}

const struct zonestore_zone *zonestore_zone_at(const struct zonestore *zs, size_t i)
{
    return i < zs->n_zones ? zs->zones[i] : NULL;
}

const struct zonestore_zone *zonestore_find_zone(const struct zonestore *zs, const ldns_rdf *qname)
{
    struct name_key k;
    key_make(qname, &k);
    /* Longest origin first: qname itself, then each ancestor up to the root. */
    for (size_t i = k.n_labels + 1; i-- > 0;) {
        const struct zonestore_zone *zone = zone_by_key(zs, k.buf, k.ends[i]);
        if (zone) {
            return zone;
        }
    }
    return NULL;
}

const struct zonestore_zone *zonestore_zone_by_origin(const struct zonestore *zs,
                                                      const ldns_rdf *name)
{
    struct name_key k;
    key_make(name, &k);
    return zone_by_key(zs, k.buf, k.ends[k.n_labels]);
}

const ldns_rdf *zonestore_zone_origin(const struct zonestore_zone *zone)
{
    return zone->origin;
}

const ldns_rr *zonestore_zone_soa(const struct zonestore_zone *zone)
{
    return ldns_zone_soa(zone->ldz);
}

bool zonestore_zone_is_synthetic(const struct zonestore_zone *zone)
{
    return zone->synthetic;
}

const char *zonestore_zone_file(const struct zonestore_zone *zone)
{
    return zone->file;
}

size_t zonestore_zone_rr_count(const struct zonestore_zone *zone)
{
    return zone->n_rrs;
}

void zonestore_lookup(const struct zonestore_zone *zone, const ldns_rdf *qname,
                      struct zonestore_match *out)
{
    struct name_key k;
    key_make(qname, &k);
    size_t n = k.n_labels;
    size_t apex = zone->origin_labels;
    size_t encloser = apex; /* labels of the closest encloser found so far */
    if (!key_is_within(k.buf, k.ends[n], zone->origin_key, zone->origin_key_len)) {
        *out = (struct zonestore_match){.kind = ZONESTORE_NXDOMAIN};
        return;
    }

    if (!zone->has_cuts) {
        /* Without cuts an exact match needs no walk. */
        const struct zonestore_node *node = find_node(zone, k.buf, k.ends[n]);
        if (node) {
            *out = (struct zonestore_match){.kind = ZONESTORE_NAME, .node = node};
            return;
        }
    }
    /* RFC 1034 §4.3.2 step 3: descend from the apex one label at a time; the first cut
     * wins, and the first name that does not exist ends the walk at its parent. */
    for (size_t i = apex; i <= n; i++) {
        bool found;
        size_t pos = node_lower_bound(zone, k.buf, k.ends[i], &found);
        if (found) {
            const struct zonestore_node *node = &zone->nodes[pos];
            if (node->is_cut) {
                *out = (struct zonestore_match){.kind = ZONESTORE_DELEGATION, .node = node};
                return;
            }
            if (i == n) {
                *out = (struct zonestore_match){.kind = ZONESTORE_NAME, .node = node};
                return;
            }
        } else if (pos < zone->n_nodes &&
                   key_is_within(zone->nodes[pos].key, zone->nodes[pos].key_len, k.buf,
                                 k.ends[i])) {
            /* Descendants sort right after a name (RFC 4034 §6.1): an empty non-terminal. */
            if (i == n) {
                *out = (struct zonestore_match){.kind = ZONESTORE_EMPTY_NONTERMINAL};
                return;
            }
        } else {
            break;
        }
        encloser = i;
    }
    /* RFC 4592 §3.3.1: only the closest encloser's own wildcard may match. The key buffer
     * has room for the two bytes of the '*' label. */
    size_t len = k.ends[encloser];
    k.buf[len] = '*';
    k.buf[len + 1] = 0;
    const struct zonestore_node *node = find_node(zone, k.buf, len + 2);
    if (node) {
        *out = (struct zonestore_match){.kind = ZONESTORE_WILDCARD, .node = node};
    } else {
        *out = (struct zonestore_match){.kind = ZONESTORE_NXDOMAIN};
    }
}

const ldns_rdf *zonestore_node_name(const struct zonestore_node *node)
{
    return node->name;
}

const ldns_rr_list *zonestore_node_rrset(const struct zonestore_node *node, ldns_rr_type type)
{
    for (size_t i = 0; i < node->n_sets; i++) {
        if (node->sets[i].type == type) {
            return node->sets[i].rrs;
        }
    }
    return NULL;
}

const ldns_rr_list *zonestore_node_all(const struct zonestore_node *node)
{
    return node->all;
}

const ldns_rr_list *zonestore_find_rrset(const struct zonestore_zone *zone, const ldns_rdf *name,
                                         ldns_rr_type type)
{
    const struct zonestore_node *node = find_node_by_name(zone, name);
    return node ? zonestore_node_rrset(node, type) : NULL;
}
