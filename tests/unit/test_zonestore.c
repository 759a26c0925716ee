/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the zone store: loading zone directories (tests/data/zones/ and
 * tests/data/zonestore/<case>/, where a ".invalid" case must fail), the synthesised apex,
 * and every kind of lookup result. Scratch zones are written under /tmp and removed. */
#include "zonestore.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dnsd/error.h"

#define POOL_MAX 64

static struct zonestore *zs;
static char err[1024];
static char tmpdir[PATH_MAX];     /* a scratch directory under /tmp, "" when unused */
static ldns_rdf *names[POOL_MAX]; /* owned; freed in teardown */
static size_t n_names;
static char *strs[POOL_MAX]; /* owned; freed in teardown */
static size_t n_strs;

static const char *const apex_addrs[] = {"192.0.2.1", "2001:db8::1"};

static const struct zonestore_apex test_apex = {
    .domain = "service.internal.",
    .ns_name = "ns.service.internal.",
    .ns_addresses = apex_addrs,
    .n_ns_addresses = 2,
    .rname = "hostmaster.service.internal.",
    .serial = 1000,
    .refresh = 3600,
    .retry = 600,
    .expire = 86400,
    .minimum = 30,
    .ttl = 60,
};

static void teardown(void)
{
    zonestore_free(zs);
    zs = NULL;
    for (size_t i = 0; i < n_names; i++) {
        ldns_rdf_deep_free(names[i]);
    }
    n_names = 0;
    for (size_t i = 0; i < n_strs; i++) {
        free(strs[i]);
    }
    n_strs = 0;
    if (tmpdir[0]) {
        DIR *d = opendir(tmpdir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            char path[PATH_MAX + 256];
            if (de->d_name[0] != '.') {
                snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
                unlink(path);
            }
        }
        if (d) {
            closedir(d);
        }
        rmdir(tmpdir);
        tmpdir[0] = '\0';
    }
}

TestSuite(zonestore, .fini = teardown);

static const char *keep_str(char *s)
{
    cr_assert_not_null(s);
    cr_assert_lt(n_strs, POOL_MAX);
    strs[n_strs++] = s;
    return s;
}

static const char *data_path(const char *rel)
{
    const char *base = getenv("DNSD_TEST_DATA");
    char *path = NULL;
    cr_assert_geq(asprintf(&path, "%s/%s", base && *base ? base : "tests/data", rel), 0);
    return keep_str(path);
}

static const ldns_rdf *dname(const char *s)
{
    ldns_rdf *rdf = ldns_dname_new_frm_str(s);
    cr_assert_not_null(rdf, "bad test name %s", s);
    cr_assert_lt(n_names, POOL_MAX);
    names[n_names++] = rdf;
    return rdf;
}

static const char *name_str(const ldns_rdf *rdf)
{
    return keep_str(ldns_rdf2str(rdf));
}

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test_zonestore.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void load_ok(const char *dir, const struct zonestore_apex *apex)
{
    int rc = zonestore_load(dir, apex, &zs, err, sizeof err);
    cr_assert_eq(rc, 0, "load %s: %s (%s)", dir ? dir : "(null)", err, dnsd_strerror(rc));
    cr_assert(zonestore_check(zs));
}

/* Load a failing case: returns the code; the store pointer must stay untouched. */
static int load_fails(const char *dir, const struct zonestore_apex *apex)
{
    struct zonestore *sentinel = (struct zonestore *)&sentinel;
    struct zonestore *out = sentinel;
    err[0] = '\0';
    int rc = zonestore_load(dir, apex, &out, err, sizeof err);
    cr_assert_neq(rc, 0, "load of %s succeeded", dir);
    cr_assert_eq(out, sentinel, "*out written on failure");
    return rc;
}

static const struct zonestore_zone *zone_of(const char *origin)
{
    const struct zonestore_zone *zone = zonestore_zone_by_origin(zs, dname(origin));
    cr_assert_not_null(zone, "no zone %s", origin);
    return zone;
}

static struct zonestore_match lookup(const struct zonestore_zone *zone, const char *qname)
{
    struct zonestore_match m;
    memset(&m, 0xA5, sizeof m);
    zonestore_lookup(zone, dname(qname), &m);
    return m;
}

/* The text of rdata field f of the i-th record of list. */
static const char *rdata(const ldns_rr_list *list, size_t i, size_t f)
{
    cr_assert_not_null(list);
    cr_assert_lt(i, ldns_rr_list_rr_count(list));
    return keep_str(ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(list, i), f)));
}

static void assert_kind(const struct zonestore_zone *zone, const char *qname,
                        enum zonestore_kind kind, const char *node_name)
{
    struct zonestore_match m = lookup(zone, qname);
    cr_assert_eq(m.kind, kind, "%s: kind %d, want %d", qname, (int)m.kind, (int)kind);
    if (node_name) {
        cr_assert_not_null(m.node, "%s: no node", qname);
        cr_assert_str_eq(name_str(zonestore_node_name(m.node)), node_name, "%s", qname);
    } else {
        cr_assert_null(m.node, "%s: unexpected node", qname);
    }
}

Test(zonestore, loads_only_visible_zone_files)
{
    load_ok(data_path("zonestore/nested"), NULL);
    /* .hidden.zone, dir.zone/, notes.zone.bak and README would all fail to parse. */
    cr_assert_eq(zonestore_zone_count(zs), 3);
    const struct zonestore_zone *zone = zone_of("sub.example.internal.");
    cr_assert_not(zonestore_zone_is_synthetic(zone));
    cr_assert_str_eq(zonestore_zone_file(zone),
                     data_path("zonestore/nested/sub.example.internal.zone"));
    cr_assert_eq(zonestore_zone_rr_count(zone), 4);
}

Test(zonestore, zones_are_listed_in_canonical_order)
{
    load_ok(data_path("zonestore/nested"), &test_apex);
    const char *want[] = {"example.internal.", "sub.example.internal.", "service.internal.",
                          "other.test."};
    cr_assert_eq(zonestore_zone_count(zs), 4);
    for (size_t i = 0; i < 4; i++) {
        const struct zonestore_zone *zone = zonestore_zone_at(zs, i);
        cr_assert_not_null(zone);
        cr_assert_str_eq(name_str(zonestore_zone_origin(zone)), want[i]);
    }
    cr_assert_null(zonestore_zone_at(zs, 4));
}

Test(zonestore, origin_comes_from_dollar_origin_else_file_name)
{
    load_ok(data_path("zonestore/nested"), NULL);
    /* other.zone says $ORIGIN Other.Test.; example.internal.zone has no $ORIGIN. */
    cr_assert_null(zonestore_zone_by_origin(zs, dname("other.")));
    const struct zonestore_zone *other = zone_of("other.test.");
    cr_assert_str_eq(name_str(zonestore_zone_origin(other)), "other.test.");
    cr_assert_eq(ldns_rr_get_type(zonestore_zone_soa(other)), LDNS_RR_TYPE_SOA);
    const struct zonestore_zone *example = zone_of("example.internal.");
    cr_assert_str_eq(
        rdata(zonestore_find_rrset(example, dname("ns.example.internal."), LDNS_RR_TYPE_A), 0, 0),
        "192.0.2.1");
}

Test(zonestore, shipped_example_zone_loads)
{
    /* zones/ at the top of the tree, two levels above tests/data. */
    load_ok(data_path("../../zones"), &test_apex);
    cr_assert_eq(zonestore_zone_count(zs), 2);
    const struct zonestore_zone *zone = zone_of("example.internal.");
    const ldns_rr_list *srv =
        zonestore_find_rrset(zone, dname("_billing._tcp.example.internal."), LDNS_RR_TYPE_SRV);
    cr_assert_str_eq(rdata(srv, 0, 3), "legacy.example.internal.");
    cr_assert_not_null(
        zonestore_find_rrset(zone, dname("legacy.example.internal."), LDNS_RR_TYPE_AAAA));
}

Test(zonestore, exact_name_is_name)
{
    load_ok(data_path("zones"), &test_apex);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    struct zonestore_match m = lookup(zone, "static.service.internal.");
    cr_assert_eq(m.kind, ZONESTORE_NAME);
    const ldns_rr_list *a = zonestore_node_rrset(m.node, LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_rr_list_rr_count(a), 1);
    cr_assert_str_eq(rdata(a, 0, 0), "192.0.2.53");
    cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(a, 0)), 300);
    cr_assert_null(zonestore_node_rrset(m.node, LDNS_RR_TYPE_AAAA));
    struct zonestore_match cname = lookup(zone, "www.service.internal.");
    cr_assert_eq(cname.kind, ZONESTORE_NAME);
    cr_assert_str_eq(rdata(zonestore_node_rrset(cname.node, LDNS_RR_TYPE_CNAME), 0, 0),
                     "static.service.internal.");
}

Test(zonestore, lookup_ignores_case)
{
    load_ok(data_path("zonestore/nested"), NULL);
    const struct zonestore_zone *other = zonestore_find_zone(zs, dname("WwW.oThEr.TeSt."));
    cr_assert_eq(other, zone_of("other.test."));
    assert_kind(other, "www.other.test.", ZONESTORE_NAME, "www.other.test.");
    struct zonestore_match m = lookup(other, "WWW.OTHER.TEST.");
    cr_assert_eq(m.kind, ZONESTORE_NAME);
    /* Records keep the owner as written in the file. */
    const ldns_rr_list *a = zonestore_node_rrset(m.node, LDNS_RR_TYPE_A);
    cr_assert_str_eq(name_str(ldns_rr_owner(ldns_rr_list_rr(a, 0))), "WWW.Other.Test.");
    cr_assert_not_null(zonestore_find_rrset(other, dname("Ns.Other.TEST."), LDNS_RR_TYPE_A));
}

Test(zonestore, apex_is_name_not_delegation)
{
    load_ok(data_path("zones"), NULL);
    const struct zonestore_zone *zone = zone_of("example.internal.");
    struct zonestore_match m = lookup(zone, "example.internal.");
    cr_assert_eq(m.kind, ZONESTORE_NAME);
    cr_assert_eq(ldns_rr_list_rr_count(zonestore_node_rrset(m.node, LDNS_RR_TYPE_NS)), 2);
    cr_assert_not_null(zonestore_node_rrset(m.node, LDNS_RR_TYPE_SOA));
}

Test(zonestore, node_all_lists_every_record_of_the_name)
{
    load_ok(data_path("zones"), NULL);
    const struct zonestore_zone *zone = zone_of("example.internal.");
    struct zonestore_match m = lookup(zone, "example.internal.");
    /* SOA, two NS, MX and TXT. */
    cr_assert_eq(ldns_rr_list_rr_count(zonestore_node_all(m.node)), 5);
    /* An RRset keeps file order. */
    const ldns_rr_list *ns = zonestore_node_rrset(m.node, LDNS_RR_TYPE_NS);
    cr_assert_str_eq(rdata(ns, 0, 0), "ns1.example.internal.");
    cr_assert_str_eq(rdata(ns, 1, 0), "ns2.example.internal.");
    struct zonestore_match srv = lookup(zone, "_ldap._tcp.example.internal.");
    cr_assert_eq(srv.kind, ZONESTORE_NAME);
    cr_assert_str_eq(rdata(zonestore_node_rrset(srv.node, LDNS_RR_TYPE_SRV), 0, 3),
                     "db.example.internal.");
    cr_assert_eq(ldns_rr_list_rr_count(zonestore_node_all(srv.node)), 1);
}

Test(zonestore, name_with_only_descendants_is_empty_nonterminal)
{
    load_ok(data_path("zones"), &test_apex);
    assert_kind(zone_of("example.internal."), "ent.example.internal.", ZONESTORE_EMPTY_NONTERMINAL,
                NULL);
    assert_kind(zone_of("example.internal."), "ENT.example.internal.", ZONESTORE_EMPTY_NONTERMINAL,
                NULL);
    assert_kind(zone_of("example.internal."), "_tcp.example.internal.", ZONESTORE_EMPTY_NONTERMINAL,
                NULL);
    /* The wildcard's parent exists only because of the wildcard. */
    assert_kind(zone_of("service.internal."), "wild.service.internal.", ZONESTORE_EMPTY_NONTERMINAL,
                NULL);
}

Test(zonestore, wildcard_covers_missing_names_below_its_parent)
{
    load_ok(data_path("zones"), &test_apex);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    struct zonestore_match m = lookup(zone, "anything.wild.service.internal.");
    cr_assert_eq(m.kind, ZONESTORE_WILDCARD);
    cr_assert_str_eq(name_str(zonestore_node_name(m.node)), "*.wild.service.internal.");
    cr_assert_str_eq(rdata(zonestore_node_rrset(m.node, LDNS_RR_TYPE_TXT), 0, 0), "\"wild\"");
    /* More than one label below the closest encloser (RFC 4592 §2.2.1). */
    assert_kind(zone, "a.b.WILD.service.internal.", ZONESTORE_WILDCARD, "*.wild.service.internal.");
    /* The wildcard name itself is an ordinary name. */
    assert_kind(zone, "*.wild.service.internal.", ZONESTORE_NAME, "*.wild.service.internal.");
}

Test(zonestore, missing_name_without_wildcard_is_nxdomain)
{
    load_ok(data_path("zones"), &test_apex);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    /* The closest encloser is the apex, which has no wildcard. */
    assert_kind(zone, "nosuch.service.internal.", ZONESTORE_NXDOMAIN, NULL);
    /* static.service.internal. exists; *.static does not: no wildcard from elsewhere. */
    assert_kind(zone, "x.static.service.internal.", ZONESTORE_NXDOMAIN, NULL);
    assert_kind(zone_of("example.internal."), "x.host.ent.example.internal.", ZONESTORE_NXDOMAIN,
                NULL);
}

Test(zonestore, names_at_and_below_a_cut_are_delegation)
{
    load_ok(data_path("zones"), &test_apex);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    assert_kind(zone, "sub.service.internal.", ZONESTORE_DELEGATION, "sub.service.internal.");
    /* Glue is below the cut: not authoritative, so still the delegation. */
    assert_kind(zone, "ns.sub.service.internal.", ZONESTORE_DELEGATION, "sub.service.internal.");
    assert_kind(zone, "a.b.Sub.service.internal.", ZONESTORE_DELEGATION, "sub.service.internal.");
    struct zonestore_match m = lookup(zone, "sub.service.internal.");
    cr_assert_str_eq(rdata(zonestore_node_rrset(m.node, LDNS_RR_TYPE_NS), 0, 0),
                     "ns.sub.service.internal.");
}

Test(zonestore, find_rrset_is_exact_and_reaches_glue)
{
    load_ok(data_path("zones"), &test_apex);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    cr_assert_str_eq(
        rdata(zonestore_find_rrset(zone, dname("ns.sub.service.internal."), LDNS_RR_TYPE_A), 0, 0),
        "192.0.2.54");
    cr_assert_null(
        zonestore_find_rrset(zone, dname("ns.sub.service.internal."), LDNS_RR_TYPE_AAAA));
    /* No wildcard synthesis and no ENT records. */
    cr_assert_null(zonestore_find_rrset(zone, dname("x.wild.service.internal."), LDNS_RR_TYPE_TXT));
    cr_assert_null(zonestore_find_rrset(zone, dname("wild.service.internal."), LDNS_RR_TYPE_TXT));
}

Test(zonestore, find_zone_takes_the_longest_origin)
{
    load_ok(data_path("zonestore/nested"), &test_apex);
    const struct zonestore_zone *parent = zone_of("example.internal.");
    const struct zonestore_zone *child = zone_of("sub.example.internal.");
    cr_assert_eq(zonestore_find_zone(zs, dname("www.sub.example.internal.")), child);
    cr_assert_eq(zonestore_find_zone(zs, dname("sub.example.internal.")), child);
    cr_assert_eq(zonestore_find_zone(zs, dname("a.b.c.SUB.example.internal.")), child);
    cr_assert_eq(zonestore_find_zone(zs, dname("ns.example.internal.")), parent);
    cr_assert_eq(zonestore_find_zone(zs, dname("example.internal.")), parent);
    cr_assert_eq(zonestore_find_zone(zs, dname("x.service.internal.")),
                 zone_of("service.internal."));
    cr_assert_null(zonestore_find_zone(zs, dname("internal.")));
    cr_assert_null(zonestore_find_zone(zs, dname("xexample.internal.")));
    cr_assert_null(zonestore_find_zone(zs, dname(".")));
}

Test(zonestore, zone_by_origin_matches_exactly)
{
    load_ok(data_path("zonestore/nested"), NULL);
    cr_assert_null(zonestore_zone_by_origin(zs, dname("www.sub.example.internal.")));
    cr_assert_null(zonestore_zone_by_origin(zs, dname("internal.")));
    cr_assert_not_null(zonestore_zone_by_origin(zs, dname("SUB.Example.Internal.")));
}

Test(zonestore, parent_zone_delegates_to_nested_child)
{
    load_ok(data_path("zonestore/nested"), NULL);
    assert_kind(zone_of("example.internal."), "www.sub.example.internal.", ZONESTORE_DELEGATION,
                "sub.example.internal.");
    assert_kind(zone_of("sub.example.internal."), "www.sub.example.internal.", ZONESTORE_NAME,
                "www.sub.example.internal.");
    /* The child's apex owns NS but is its own apex, not a cut. */
    assert_kind(zone_of("sub.example.internal."), "sub.example.internal.", ZONESTORE_NAME,
                "sub.example.internal.");
}

Test(zonestore, synthetic_apex_has_the_configured_soa)
{
    load_ok(NULL, &test_apex);
    cr_assert_eq(zonestore_zone_count(zs), 1);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    cr_assert(zonestore_zone_is_synthetic(zone));
    cr_assert_null(zonestore_zone_file(zone));
    const ldns_rr *soa = zonestore_zone_soa(zone);
    cr_assert_str_eq(name_str(ldns_rr_owner(soa)), "service.internal.");
    cr_assert_eq(ldns_rr_get_class(soa), LDNS_RR_CLASS_IN);
    cr_assert_eq(ldns_rr_ttl(soa), 60);
    cr_assert_str_eq(name_str(ldns_rr_rdf(soa, 0)), "ns.service.internal.");
    cr_assert_str_eq(name_str(ldns_rr_rdf(soa, 1)), "hostmaster.service.internal.");
    uint32_t want[] = {1000, 3600, 600, 86400, 30};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(ldns_rdf2native_int32(ldns_rr_rdf(soa, 2 + i)), want[i], "field %zu", i);
    }
    /* The SOA is also the apex node's SOA RRset. */
    struct zonestore_match m = lookup(zone, "service.internal.");
    cr_assert_eq(ldns_rr_list_rr(zonestore_node_rrset(m.node, LDNS_RR_TYPE_SOA), 0), soa);
}

Test(zonestore, synthetic_apex_has_ns_and_in_bailiwick_addresses)
{
    load_ok(NULL, &test_apex);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    cr_assert_eq(zonestore_zone_rr_count(zone), 4);
    const ldns_rr_list *ns =
        zonestore_find_rrset(zone, dname("service.internal."), LDNS_RR_TYPE_NS);
    cr_assert_eq(ldns_rr_list_rr_count(ns), 1);
    cr_assert_str_eq(rdata(ns, 0, 0), "ns.service.internal.");
    cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ns, 0)), 60);
    const ldns_rdf *host = dname("ns.service.internal.");
    cr_assert_str_eq(rdata(zonestore_find_rrset(zone, host, LDNS_RR_TYPE_A), 0, 0), "192.0.2.1");
    cr_assert_str_eq(rdata(zonestore_find_rrset(zone, host, LDNS_RR_TYPE_AAAA), 0, 0),
                     "2001:db8::1");
    assert_kind(zone, "ns.service.internal.", ZONESTORE_NAME, "ns.service.internal.");
}

Test(zonestore, synthetic_apex_has_no_addresses_for_an_outside_ns)
{
    struct zonestore_apex apex = test_apex;
    apex.ns_name = "ns1.example.net.";
    load_ok(NULL, &apex);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    /* SOA and NS only: the addresses of an out-of-bailiwick host are not ours. */
    cr_assert_eq(zonestore_zone_rr_count(zone), 2);
    cr_assert_str_eq(
        rdata(zonestore_find_rrset(zone, dname("service.internal."), LDNS_RR_TYPE_NS), 0, 0),
        "ns1.example.net.");
    cr_assert_str_eq(name_str(ldns_rr_rdf(zonestore_zone_soa(zone), 0)), "ns1.example.net.");
}

Test(zonestore, zone_file_at_the_apex_suppresses_synthesis)
{
    load_ok(data_path("zones"), &test_apex);
    cr_assert_eq(zonestore_zone_count(zs), 2);
    const struct zonestore_zone *zone = zone_of("service.internal.");
    cr_assert_not(zonestore_zone_is_synthetic(zone));
    cr_assert_eq(ldns_rdf2native_int32(ldns_rr_rdf(zonestore_zone_soa(zone), 2)), 2024010101);
    cr_assert_eq(zonestore_zone_rr_count(zone), 9);
}

Test(zonestore, apex_is_synthesised_beside_zone_files)
{
    load_ok(data_path("zonestore/nested"), &test_apex);
    cr_assert_eq(zonestore_zone_count(zs), 4);
    cr_assert(zonestore_zone_is_synthetic(zone_of("service.internal.")));
    cr_assert_not(zonestore_zone_is_synthetic(zone_of("example.internal.")));
}

Test(zonestore, null_apex_synthesises_nothing)
{
    load_ok(data_path("zonestore/nested"), NULL);
    cr_assert_null(zonestore_zone_by_origin(zs, dname("service.internal.")));
    zonestore_free(zs);
    zs = NULL;
    load_ok(NULL, NULL);
    cr_assert_eq(zonestore_zone_count(zs), 0);
    cr_assert_null(zonestore_find_zone(zs, dname("service.internal.")));
}

Test(zonestore, empty_dir_gives_the_apex_only)
{
    make_tmpdir();
    load_ok(tmpdir, &test_apex);
    cr_assert_eq(zonestore_zone_count(zs), 1);
    cr_assert(zonestore_zone_is_synthetic(zone_of("service.internal.")));
}

Test(zonestore, omitted_ttls_follow_the_master_file_rules)
{
    load_ok(data_path("zonestore/ttl"), NULL);
    const struct zonestore_zone *zone = zone_of("ttl.test.");
    const char *owners[] = {"a.ttl.test.", "b.ttl.test.", "c.ttl.test.", "d.ttl.test."};
    uint32_t want[] = {60, 60, 100, 300};
    for (size_t i = 0; i < 4; i++) {
        const ldns_rr_list *a = zonestore_find_rrset(zone, dname(owners[i]), LDNS_RR_TYPE_A);
        cr_assert_not_null(a, "%s", owners[i]);
        for (size_t j = 0; j < ldns_rr_list_rr_count(a); j++) {
            cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(a, j)), want[i], "%s", owners[i]);
        }
    }
    cr_assert_eq(
        ldns_rr_list_rr_count(zonestore_find_rrset(zone, dname("c.ttl.test."), LDNS_RR_TYPE_A)), 2);
}

Test(zonestore, name_outside_the_zone_is_nxdomain)
{
    load_ok(data_path("zones"), NULL);
    assert_kind(zone_of("example.internal."), "www.other.test.", ZONESTORE_NXDOMAIN, NULL);
    assert_kind(zone_of("example.internal."), "internal.", ZONESTORE_NXDOMAIN, NULL);
}

Test(zonestore, free_null_does_nothing)
{
    zonestore_free(NULL);
    cr_assert_null(zs);
}

/* err must read exactly as fmt formats. */
__attribute__((format(printf, 1, 2))) static void assert_err(const char *fmt, ...)
{
    char *want = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&want, fmt, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    keep_str(want);
    cr_assert_str_eq(err, want);
}

Test(zonestore, syntax_error_names_file_and_line)
{
    const char *dir = data_path("zonestore/bad_syntax.invalid");
    cr_assert_eq(load_fails(dir, &test_apex), DNSD_EPARSE);
    assert_err("%s/bad.test.zone:7: %s", dir,
               ldns_get_errorstr_by_id(LDNS_STATUS_SYNTAX_RDATA_ERR));
}

Test(zonestore, syntax_error_on_a_last_line_without_newline_names_it)
{
    const char *dir = data_path("zonestore/no_final_newline.invalid");
    cr_assert_eq(load_fails(dir, NULL), DNSD_EPARSE);
    assert_err("%s/last.test.zone:4: %s", dir,
               ldns_get_errorstr_by_id(LDNS_STATUS_SYNTAX_RDATA_ERR));
}

Test(zonestore, include_is_a_syntax_error)
{
    const char *dir = data_path("zonestore/include.invalid");
    cr_assert_eq(load_fails(dir, NULL), DNSD_EPARSE);
    assert_err("%s/inc.test.zone:4: %s", dir,
               ldns_get_errorstr_by_id(LDNS_STATUS_SYNTAX_INCLUDE_ERR_NOTIMPL));
}

Test(zonestore, relative_origin_is_a_syntax_error)
{
    const char *dir = data_path("zonestore/relative_origin.invalid");
    cr_assert_eq(load_fails(dir, NULL), DNSD_EPARSE);
    assert_err("%s/rel.test.zone:3: $ORIGIN rel is not an absolute domain name", dir);
}

Test(zonestore, zone_without_soa_is_rejected)
{
    const char *dir = data_path("zonestore/missing_soa.invalid");
    cr_assert_eq(load_fails(dir, &test_apex), DNSD_EINVAL);
    assert_err("%s/nosoa.test.zone: no SOA record at origin nosoa.test.", dir);
}

/* ldns 1.8.3 reads freed memory on a file with three SOAs (found by fuzz_zone). */
Test(zonestore, second_soa_is_rejected_with_its_line)
{
    const char *dir = data_path("zonestore/second_soa.invalid");
    cr_assert_eq(load_fails(dir, NULL), DNSD_EPARSE);
    assert_err("%s/dup.test.zone:5: a second SOA record; a zone has exactly one (RFC 1035 §5.2)",
               dir);
}

Test(zonestore, soa_away_from_the_origin_is_rejected)
{
    const char *dir = data_path("zonestore/soa_elsewhere.invalid");
    cr_assert_eq(load_fails(dir, NULL), DNSD_EINVAL);
    assert_err("%s/elsewhere.test.zone: no SOA record at origin elsewhere.test.", dir);
}

Test(zonestore, record_outside_the_zone_is_rejected)
{
    const char *dir = data_path("zonestore/out_of_zone.invalid");
    cr_assert_eq(load_fails(dir, NULL), DNSD_EINVAL);
    assert_err("%s/outside.test.zone: record owner www.elsewhere.test. is outside the zone "
               "outside.test.",
               dir);
}

Test(zonestore, two_files_with_one_origin_are_rejected)
{
    const char *dir = data_path("zonestore/duplicate_origin.invalid");
    cr_assert_eq(load_fails(dir, NULL), DNSD_EINVAL);
    assert_err("%s/dup.test.zone: origin dup.test. was already loaded from %s/a.zone", dir, dir);
}

Test(zonestore, file_name_that_is_no_domain_name_is_rejected)
{
    const char *dir = data_path("zonestore/bad_file_name.invalid");
    char label[64];
    memset(label, 'a', 63);
    label[63] = '\0';
    cr_assert_eq(load_fails(dir, NULL), DNSD_EINVAL);
    assert_err("%s/%sa.zone: no $ORIGIN and the file name gives no valid origin (%sa.)", dir, label,
               label);
}

Test(zonestore, missing_dir_is_enoent)
{
    cr_assert_eq(load_fails("/nonexistent/dnsd-zones", &test_apex), DNSD_ENOENT);
    cr_assert_str_eq(err, "zone directory /nonexistent/dnsd-zones: No such file or directory");
    /* A file where the directory should be is just as missing. */
    const char *file = data_path("zones/example.internal.zone");
    cr_assert_eq(load_fails(file, NULL), DNSD_ENOENT);
    assert_err("zone directory %s: Not a directory", file);
}

Test(zonestore, unreadable_zone_entry_is_eio)
{
    make_tmpdir();
    char link[PATH_MAX + 32];
    snprintf(link, sizeof link, "%s/dangling.zone", tmpdir);
    cr_assert_eq(symlink("/nonexistent/dnsd.zone", link), 0);
    cr_assert_eq(load_fails(tmpdir, NULL), DNSD_EIO);
    assert_err("%s: No such file or directory", link);
}

Test(zonestore, apex_with_a_relative_name_is_rejected)
{
    struct zonestore_apex apex = test_apex;
    apex.rname = "hostmaster.service.internal";
    cr_assert_eq(load_fails(NULL, &apex), DNSD_EINVAL);
    cr_assert_str_eq(err, "apex: hostmaster.service.internal is not an absolute domain name");
}

Test(zonestore, apex_with_a_bad_address_is_rejected)
{
    const char *addrs[] = {"192.0.2.1", "192.0.2"};
    struct zonestore_apex apex = test_apex;
    apex.ns_addresses = addrs;
    apex.n_ns_addresses = 2;
    cr_assert_eq(load_fails(NULL, &apex), DNSD_EINVAL);
    cr_assert_str_eq(err, "apex: 192.0.2 is not an IPv4 or IPv6 address");
}

Test(zonestore, error_text_is_optional_and_truncated_to_fit)
{
    cr_assert_eq(load_fails("/nonexistent/dnsd-zones", NULL), DNSD_ENOENT);
    struct zonestore *out = NULL;
    cr_assert_eq(zonestore_load("/nonexistent/dnsd-zones", NULL, &out, NULL, 0), DNSD_ENOENT);
    char small[8];
    cr_assert_eq(zonestore_load("/nonexistent/dnsd-zones", NULL, &out, small, sizeof small),
                 DNSD_ENOENT);
    cr_assert_str_eq(small, "zone di");
    cr_assert_null(out);
}

/* Write a zone of n_hosts A records (and an AAAA for every tenth host, far from its A so
 * the loader must group them) under hNNN.gMM.big.test. */
static void write_big_zone(size_t n_hosts)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/big.test.zone", tmpdir);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fprintf(fp, "$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\n");
    for (size_t i = n_hosts; i-- > 0;) {
        fprintf(fp, "h%zu.g%zu A 10.%zu.%zu.%zu\n", i, i % 100, (i >> 16) & 255, (i >> 8) & 255,
                i & 255);
    }
    for (size_t i = 0; i < n_hosts; i += 10) {
        fprintf(fp, "H%zu.G%zu AAAA 2001:db8::%zx\n", i, i % 100, i);
    }
    cr_assert_eq(fclose(fp), 0);
}

Test(zonestore, large_zone_loads_every_record)
{
    const size_t n_hosts = 20000;
    make_tmpdir();
    write_big_zone(n_hosts);
    load_ok(tmpdir, NULL);

    const struct zonestore_zone *zone = zone_of("big.test.");
    cr_assert_eq(zonestore_zone_rr_count(zone), 3 + n_hosts + n_hosts / 10);
    for (size_t i = 0; i < n_hosts; i += 997) {
        char name[64];
        char want[32];
        snprintf(name, sizeof name, "h%zu.g%zu.big.test.", i, i % 100);
        snprintf(want, sizeof want, "10.%zu.%zu.%zu", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct zonestore_match m = lookup(zone, name);
        cr_assert_eq(m.kind, ZONESTORE_NAME, "%s", name);
        cr_assert_str_eq(rdata(zonestore_node_rrset(m.node, LDNS_RR_TYPE_A), 0, 0), want);
        size_t n_all = ldns_rr_list_rr_count(zonestore_node_all(m.node));
        cr_assert_eq(n_all, i % 10 == 0 ? 2 : 1, "%s has %zu records", name, n_all);
    }
    assert_kind(zone, "g42.big.test.", ZONESTORE_EMPTY_NONTERMINAL, NULL);
    assert_kind(zone, "h42.g43.big.test.", ZONESTORE_NXDOMAIN, NULL);
    assert_kind(zone, "g100.big.test.", ZONESTORE_NXDOMAIN, NULL);
}
