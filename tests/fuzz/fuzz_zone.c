/* SPDX-License-Identifier: BSD-2-Clause
 * Fuzz target: the zone loader. Input byte 0 picks the file name (and so the default
 * origin, or whether the file replaces the synthesised service.internal. apex); the rest is
 * written as that *.zone file, alone in a temporary directory, and loaded with
 * zonestore_load. Aborts unless a failure comes with a message and a success passes
 * zonestore_check and answers consistent lookups for each zone's names. */
#include "fuzz.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "dnsd/error.h"
#include "zonestore.h"

static const char *const file_names[4] = {"fuzz.zone", "service.internal.zone",
                                          "example.internal.zone", "0.zone"};

static const char *const apex_addrs[] = {"192.0.2.1", "2001:db8::1"};
static const struct zonestore_apex apex = {.domain = "service.internal.",
                                           .ns_name = "ns.service.internal.",
                                           .ns_addresses = apex_addrs,
                                           .n_ns_addresses = 2,
                                           .rname = "hostmaster.service.internal.",
                                           .serial = 100,
                                           .refresh = 3600,
                                           .retry = 600,
                                           .expire = 86400,
                                           .minimum = 30,
                                           .ttl = 300};

static char dir[64];
static char files[4][128];

static void remove_dir(void)
{
    for (size_t i = 0; i < 4; i++)
        unlink(files[i]);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_temp_dir(dir, sizeof(dir));
    for (size_t i = 0; i < 4; i++)
        snprintf(files[i], sizeof(files[i]), "%s/%s", dir, file_names[i]);
    atexit(remove_dir);
    return 0;
}

/* Every record of a node must be found again by its owner and type. */
static void check_node(const struct zonestore_zone *zone, const struct zonestore_node *node)
{
    const ldns_rr_list *all = zonestore_node_all(node);
    fuzz_check(all != NULL, "a node lists its records");
    for (size_t i = 0; i < ldns_rr_list_rr_count(all); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(all, i);
        fuzz_check(ldns_dname_compare(ldns_rr_owner(rr), zonestore_node_name(node)) == 0,
                   "a node's records are owned by its name");
        const ldns_rr_list *set = zonestore_node_rrset(node, ldns_rr_get_type(rr));
        fuzz_check(set && ldns_rr_list_rr_count(set) > 0, "a node's record is in its RRset");
        fuzz_check(zonestore_find_rrset(zone, ldns_rr_owner(rr), ldns_rr_get_type(rr)) != NULL,
                   "an owner's RRset is found by name");
    }
}

/* Look name up (when it is a domain name) in the store; the match must be consistent. */
static void lookup(const struct zonestore *zs, const ldns_rdf *name)
{
    if (!name || ldns_rdf_get_type(name) != LDNS_RDF_TYPE_DNAME)
        return;
    const struct zonestore_zone *zone = zonestore_find_zone(zs, name);
    if (!zone)
        return;
    fuzz_check(ldns_dname_is_subdomain(name, zonestore_zone_origin(zone)) ||
                   ldns_dname_compare(name, zonestore_zone_origin(zone)) == 0,
               "find_zone returns an enclosing zone");
    struct zonestore_match m;
    zonestore_lookup(zone, name, &m);
    bool has_node =
        m.kind == ZONESTORE_NAME || m.kind == ZONESTORE_WILDCARD || m.kind == ZONESTORE_DELEGATION;
    fuzz_check(has_node == (m.node != NULL), "a node exactly for NAME, WILDCARD and DELEGATION");
    if (m.node)
        check_node(zone, m.node);
}

/* Look up prefix + origin, when that is a name. */
static void lookup_below(const struct zonestore *zs, const char *prefix, const ldns_rdf *origin)
{
    ldns_rdf *name = ldns_dname_new_frm_str(prefix);
    if (!name)
        return;
    if (ldns_dname_cat(name, origin) == LDNS_STATUS_OK)
        lookup(zs, name);
    ldns_rdf_deep_free(name);
}

static void check_store(const struct zonestore *zs)
{
    fuzz_check(zonestore_check(zs), "zonestore_check after a successful load");
    size_t n = zonestore_zone_count(zs);
    fuzz_check(n >= 1 && n <= 2, "one zone from the file, and the apex unless the file has it");
    fuzz_check(zonestore_zone_at(zs, n) == NULL, "no zone past the count");
    for (size_t i = 0; i < n; i++) {
        const struct zonestore_zone *zone = zonestore_zone_at(zs, i);
        const ldns_rdf *origin = zonestore_zone_origin(zone);
        fuzz_check(zonestore_zone_by_origin(zs, origin) == zone, "a zone is found by its origin");
        fuzz_check(zonestore_find_zone(zs, origin) == zone,
                   "the longest enclosing zone of an origin");
        const ldns_rr *soa = zonestore_zone_soa(zone);
        fuzz_check(soa && ldns_rr_get_type(soa) == LDNS_RR_TYPE_SOA &&
                       ldns_dname_compare(ldns_rr_owner(soa), origin) == 0,
                   "the SOA sits at the origin");
        fuzz_check(zonestore_zone_rr_count(zone) >= 1, "a zone counts its SOA");
        struct zonestore_match m;
        zonestore_lookup(zone, origin, &m);
        fuzz_check(m.kind == ZONESTORE_NAME && m.node, "the origin is a name");
        fuzz_check(zonestore_node_rrset(m.node, LDNS_RR_TYPE_SOA) != NULL,
                   "the origin has the SOA");
        check_node(zone, m.node);
        /* Names the zone's own data points at, and a few made-up ones. */
        const ldns_rr_list *ns = zonestore_node_rrset(m.node, LDNS_RR_TYPE_NS);
        for (size_t j = 0; ns && j < ldns_rr_list_rr_count(ns); j++)
            lookup(zs, ldns_rr_rdf(ldns_rr_list_rr(ns, j), 0));
        lookup(zs, ldns_rr_rdf(soa, 0));
        lookup(zs, ldns_rr_rdf(soa, 1));
        static const char *const prefixes[] = {"www", "*", "a.b.c", "ns", "x.*", "_tcp"};
        for (size_t j = 0; j < sizeof(prefixes) / sizeof(prefixes[0]); j++)
            lookup_below(zs, prefixes[j], origin);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *file = files[data[0] & 3];
    for (size_t i = 0; i < 4; i++)
        unlink(files[i]);
    FILE *fp = fopen(file, "wb");
    if (!fp || fwrite(data + 1, 1, size - 1, fp) != size - 1 || fclose(fp) != 0)
        abort();

    struct zonestore *zs = NULL;
    char err[512];
    memset(err, 0x5a, sizeof(err));
    int rc = zonestore_load(dir, &apex, &zs, err, sizeof(err));
    if (rc == 0) {
        fuzz_check(zs != NULL, "a store on success");
        check_store(zs);
        zonestore_free(zs);
    } else {
        fuzz_check(zs == NULL, "no store on failure");
        fuzz_check(rc == DNSD_EPARSE || rc == DNSD_EINVAL || rc == DNSD_EIO || rc == DNSD_ENOMEM,
                   "a failure is EPARSE, EINVAL, EIO or ENOMEM");
        fuzz_check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0',
                   "an error message is given");
    }
    return 0;
}
