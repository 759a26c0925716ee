/* SPDX-License-Identifier: BSD-2-Clause
 * Tests for render (the hot path's message writer) and for the hot path it serves: the
 * writer's compression is checked on its own, and query_answer's hot path is compared with
 * the full ldns path (query_config.full_path_only) on the same registry, the same requests
 * and the same rotation counter: both replies are parsed with ldns and compared section by
 * section, and must also be byte for byte the same. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ldns/ldns.h>
#include <urcu/urcu-memb.h>

#include "answers.h"
#include "query_fixture.h"
#include "query.h"
#include "registry.h"
#include "render.h"
#include "zonestore.h"

#define NOW 1000000

/* ---- the writer ---- */

static const uint8_t qname_web[] = "\x03web\x07service\x08internal";

Test(render, question_is_copied_with_its_spelling)
{
    uint8_t buf[512];
    const uint8_t q[] = "\x03WeB\x07SERVICE\x08internal\x00\x00\x01\x00\x01";
    struct render r;
    render_init(&r, buf, sizeof(buf));
    render_question(&r, q, 22);
    cr_assert_eq(r.len, 12 + 22 + 4);
    cr_assert_eq(memcmp(buf + 12, q, 26), 0);
    cr_assert_not(r.overflow);
}

Test(render, name_equal_to_question_points_at_it_case_insensitively)
{
    uint8_t buf[512];
    const uint8_t q[] = "\x03WeB\x07SERVICE\x08internal\x00\x00\x01\x00\x01";
    struct render r;
    render_init(&r, buf, sizeof(buf));
    render_question(&r, q, 22);
    size_t at = r.len;
    render_name(&r, qname_web, true);
    cr_assert_eq(r.len, at + 2);
    cr_assert_eq(buf[at], 0xc0);
    cr_assert_eq(buf[at + 1], 12);
}

Test(render, longest_written_suffix_is_used)
{
    uint8_t buf[512];
    struct render r;
    render_init(&r, buf, sizeof(buf));
    render_question(
        &r, (const uint8_t *)"\x04_web\x04_tcp\x07service\x08internal\x00\x00\x21\x00\x01", 28);
    size_t at = r.len;
    render_name(&r, (const uint8_t *)"\x02i1\x03web\x07service\x08internal", true);
    /* i1, web, then a pointer to service.internal. at 12 + 5 + 5 */
    cr_assert_eq(r.len, at + 3 + 4 + 2);
    cr_assert_eq(buf[at + 7], 0xc0);
    cr_assert_eq(buf[at + 8], 22);
    size_t again = r.len;
    render_name(&r, (const uint8_t *)"\x02i2\x03web\x07service\x08internal", true);
    /* i2, then a pointer to web.service.internal. written just before */
    cr_assert_eq(r.len, again + 3 + 2);
    cr_assert_eq(buf[again + 4], at + 3);
}

Test(render, uncompressed_name_is_written_whole_and_not_remembered)
{
    uint8_t buf[512];
    struct render r;
    render_init(&r, buf, sizeof(buf));
    render_question(&r, (const uint8_t *)"\x08internal\x00\x00\x01\x00\x01", 10);
    size_t at = r.len;
    render_name(&r, (const uint8_t *)"\x02i1\x08internal", false);
    cr_assert_eq(r.len, at + 13);
    cr_assert_eq(memcmp(buf + at, "\x02i1\x08internal", 13), 0);
    size_t next = r.len;
    render_name(&r, (const uint8_t *)"\x02i1\x08internal", true);
    cr_assert_eq(r.len, next + 3 + 2, "i1.internal. was not remembered, internal. was");
}

Test(render, overflow_is_reported)
{
    uint8_t buf[20];
    struct render r;
    render_init(&r, buf, sizeof(buf));
    render_u32(&r, 1);
    cr_assert_not(r.overflow);
    render_u32(&r, 2);
    cr_assert_not(r.overflow, "exactly full");
    render_u8(&r, 3);
    cr_assert(r.overflow);
}

Test(render, fail_makes_the_message_unusable)
{
    uint8_t buf[512];
    struct render r;
    render_init(&r, buf, sizeof(buf));
    render_u16(&r, 1);
    cr_assert_not(r.overflow);
    render_fail(&r);
    cr_assert(r.overflow);
    render_u16(&r, 2);
    cr_assert(r.overflow, "a later write that fits does not make it usable again");
    cr_assert_eq(r.len, 14, "nothing is written after the failure");
}

Test(render, rr_length_is_filled_in)
{
    uint8_t buf[512];
    struct render r;
    render_init(&r, buf, sizeof(buf));
    size_t start = render_rr_begin(&r, (const uint8_t *)"\x01x\x00", LDNS_RR_TYPE_A, 30);
    render_u32(&r, 0x0a000001);
    render_rr_end(&r, start);
    cr_assert_eq(buf[start - 2], 0);
    cr_assert_eq(buf[start - 1], 4);
    cr_assert_eq(r.len, start + 4);
}

Test(render, cut_forgets_names_past_it)
{
    uint8_t buf[512];
    struct render r;
    render_init(&r, buf, sizeof(buf));
    size_t at = r.len;
    render_name(&r, (const uint8_t *)"\x01x\x01y", true);
    render_cut(&r, at);
    render_name(&r, (const uint8_t *)"\x01z\x01y", true);
    cr_assert_eq(r.len, at + 5, "y. must be written again after the cut");
}

/* ---- the hot path against the ldns path ---- */

static struct zonestore *zs;
static struct query_ctx *fast, *full;

static const struct query_config fast_config = {
    .domain = "service.internal.", .dns_ttl = 30, .min_ttl = 2, .udp_max_size = 1232};

static const char *data_dir(void)
{
    const char *d = getenv("DNSD_TEST_DATA");
    return d && d[0] ? d : "tests/data";
}

struct spec {
    const char *service, *id;
    const char *addrs[3];
    enum registry_proto proto;
    const char *tags[2];
    const char *meta_key, *meta_value;
    uint32_t ttl_s;
    uint16_t priority;
};

static void put(const struct spec *s)
{
    struct registry_instance inst;
    memset(&inst, 0, sizeof(inst));
    char *tags[2] = {(char *)s->tags[0], (char *)s->tags[1]};
    struct registry_meta meta = {(char *)s->meta_key, (char *)s->meta_value};
    inst.service = (char *)s->service;
    inst.id = (char *)s->id;
    struct registry_addr addrs[3] = {0};
    inst.addrs = addrs;
    for (size_t i = 0; i < 3 && s->addrs[i]; i++) {
        struct registry_addr *a = &inst.addrs[inst.n_addrs++];
        a->family = strchr(s->addrs[i], ':') ? AF_INET6 : AF_INET;
        cr_assert_eq(inet_pton(a->family, s->addrs[i], a->bytes), 1);
    }
    inst.port = 8080;
    inst.proto = s->proto;
    inst.priority = s->priority;
    inst.weight = 1;
    inst.tags = tags;
    inst.n_tags = s->tags[1] ? 2 : s->tags[0] ? 1 : 0;
    inst.meta = s->meta_key ? &meta : NULL;
    inst.n_meta = s->meta_key ? 1 : 0;
    inst.ttl_s = s->ttl_s ? s->ttl_s : 30;
    const char *field = NULL;
    cr_assert_eq(registry_put(reg, &inst, NOW, &field), 0, "put %s/%s", s->service, s->id);
}

static void setup(void)
{
    /* answers' writer is a registered RCU thread (call_rcu), as dnsd's main thread is. */
    urcu_memb_register_thread();
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof(dir), "%s/zones", data_dir());
    cr_assert_eq(zonestore_load(dir, &apex, &zs, err, sizeof(err)), 0, "%s", err);
    ans = answers_new(fast_config.domain, false);
    reg = registry_new(NULL, on_change, NULL);
    struct query_config full_config = fast_config;
    full_config.full_path_only = true;
    fast = query_ctx_new(&fast_config);
    full = query_ctx_new(&full_config);
    cr_assert(ans && reg && fast && full);

    put(&(struct spec){.service = "web",
                       .id = "web-1",
                       .addrs = {"192.0.2.10", "2001:db8::10"},
                       .tags = {"primary"}});
    put(&(struct spec){.service = "web",
                       .id = "web-2",
                       .addrs = {"192.0.2.11"},
                       .meta_key = "version",
                       .meta_value = "1.4",
                       .ttl_s = 12,
                       .priority = 5});
    put(&(struct spec){.service = "web",
                       .id = "web-3",
                       .addrs = {"192.0.2.10", "2001:db8::13", "192.0.2.13"},
                       .tags = {"canary", "primary"},
                       .ttl_s = 100});
    put(&(struct spec){
        .service = "dns", .id = "ns-a", .addrs = {"192.0.2.53"}, .proto = REGISTRY_PROTO_UDP});
    put(&(struct spec){.service = "v6", .id = "only", .addrs = {"2001:db8::6"}});
    put(&(struct spec){.service = "lapsing", .id = "soon", .addrs = {"192.0.2.99"}, .ttl_s = 1});
    for (int i = 1; i <= 70; i++) {
        char id[16], addr[32], addr6[48];
        snprintf(id, sizeof(id), "big-%02d", i);
        snprintf(addr, sizeof(addr), "10.1.0.%d", i);
        snprintf(addr6, sizeof(addr6), "2001:db8:1::%x", i);
        put(&(struct spec){.service = "big",
                           .id = id,
                           .addrs = {addr, i % 3 == 0 ? addr6 : NULL},
                           .tags = {i % 2 ? "odd" : NULL}});
    }
}

static void teardown(void)
{
    query_ctx_free(fast);
    query_ctx_free(full);
    registry_free(reg);
    answers_free(ans);
    zonestore_free(zs);
    urcu_memb_unregister_thread();
}

TestSuite(hot_path, .init = setup, .fini = teardown);

/* A request as a client writes it: name (in the given case), type, RD, optional OPT. */
struct request {
    const char *name;
    uint16_t type;
    uint16_t edns; /* 0: no OPT */
    bool dnssec_ok;
    bool rd;
};

static size_t make_request(const struct request *q, uint16_t id, uint8_t *out)
{
    size_t n = 0;
    memset(out, 0, 12);
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    out[2] = q->rd ? 0x01 : 0;
    out[5] = 1;
    out[11] = q->edns ? 1 : 0;
    n = 12;
    for (const char *p = q->name; *p;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        out[n++] = (uint8_t)len;
        memcpy(out + n, p, len);
        n += len;
        p += len + (dot ? 1 : 0);
    }
    out[n++] = 0;
    out[n++] = (uint8_t)(q->type >> 8);
    out[n++] = (uint8_t)q->type;
    out[n++] = 0;
    out[n++] = 1;
    if (q->edns) {
        const uint8_t opt[11] = {
            0, 0, 41, (uint8_t)(q->edns >> 8), (uint8_t)q->edns, 0, 0, q->dnssec_ok ? 0x80 : 0,
            0, 0, 0};
        memcpy(out + n, opt, sizeof(opt));
        n += sizeof(opt);
    }
    return n;
}

/* Are the two sections the same records in the same order (owner spelling, type, class,
 * TTL, RDATA)? */
static void assert_same_section(const ldns_rr_list *a, const ldns_rr_list *b, const char *what,
                                const char *label)
{
    cr_assert_eq(ldns_rr_list_rr_count(a), ldns_rr_list_rr_count(b), "%s: %s count", label, what);
    for (size_t i = 0; i < ldns_rr_list_rr_count(a); i++) {
        const ldns_rr *x = ldns_rr_list_rr(a, i);
        const ldns_rr *y = ldns_rr_list_rr(b, i);
        const ldns_rdf *ox = ldns_rr_owner(x), *oy = ldns_rr_owner(y);
        cr_assert(ldns_rdf_size(ox) == ldns_rdf_size(oy) &&
                      memcmp(ldns_rdf_data(ox), ldns_rdf_data(oy), ldns_rdf_size(ox)) == 0,
                  "%s: %s[%zu] owner", label, what, i);
        cr_assert_eq(ldns_rr_get_type(x), ldns_rr_get_type(y), "%s: %s[%zu] type", label, what, i);
        cr_assert_eq(ldns_rr_get_class(x), ldns_rr_get_class(y), "%s: %s[%zu] class", label, what,
                     i);
        cr_assert_eq(ldns_rr_ttl(x), ldns_rr_ttl(y), "%s: %s[%zu] ttl", label, what, i);
        cr_assert_eq(ldns_rr_compare(x, y), 0, "%s: %s[%zu] rdata", label, what, i);
    }
}

/* Replies the hot path wrote, so the comparisons are known to exercise it. */
static size_t n_hot;

/* Ask both contexts the same request and compare the replies; returns the hot path's
 * reply size. */
static size_t compare(const struct request *q, enum query_transport transport, uint64_t now_ms)
{
    uint8_t req[512];
    size_t len = make_request(q, 0x4d2, req);
    char label[160];
    snprintf(label, sizeof(label), "%s/%u edns %u do %d rd %d %s", q->name, q->type, q->edns,
             q->dnssec_ok, q->rd, transport == QUERY_TCP ? "tcp" : "udp");
    const uint8_t *r1 = NULL, *r2 = NULL;
    size_t n1 = 0, n2 = 0;
    cr_assert_eq(query_answer(fast, zs, ans, req, len, transport, now_ms, &r1, &n1), 0);
    n_hot += query_last_was_fast(fast) ? 1 : 0;
    uint8_t copy[65535];
    memcpy(copy, r1, n1);
    cr_assert_eq(query_answer(full, zs, ans, req, len, transport, now_ms, &r2, &n2), 0);
    cr_assert_not(query_last_was_fast(full), "%s: full_path_only took the hot path", label);
    ldns_pkt *a = NULL, *b = NULL;
    cr_assert_eq(ldns_wire2pkt(&a, copy, n1), LDNS_STATUS_OK, "%s: hot path reply", label);
    cr_assert_eq(ldns_wire2pkt(&b, r2, n2), LDNS_STATUS_OK, "%s: ldns path reply", label);
    cr_assert_eq(ldns_pkt_get_rcode(a), ldns_pkt_get_rcode(b), "%s: rcode", label);
    cr_assert_eq(ldns_pkt_id(a), ldns_pkt_id(b), "%s: id", label);
    cr_assert_eq(ldns_pkt_aa(a), ldns_pkt_aa(b), "%s: AA", label);
    cr_assert_eq(ldns_pkt_tc(a), ldns_pkt_tc(b), "%s: TC", label);
    cr_assert_eq(ldns_pkt_rd(a), ldns_pkt_rd(b), "%s: RD", label);
    cr_assert_eq(ldns_pkt_edns(a), ldns_pkt_edns(b), "%s: EDNS", label);
    cr_assert_eq(ldns_pkt_edns_udp_size(a), ldns_pkt_edns_udp_size(b), "%s: EDNS size", label);
    cr_assert_eq(ldns_pkt_edns_do(a), ldns_pkt_edns_do(b), "%s: DO", label);
    assert_same_section(ldns_pkt_question(a), ldns_pkt_question(b), "question", label);
    assert_same_section(ldns_pkt_answer(a), ldns_pkt_answer(b), "answer", label);
    assert_same_section(ldns_pkt_authority(a), ldns_pkt_authority(b), "authority", label);
    assert_same_section(ldns_pkt_additional(a), ldns_pkt_additional(b), "additional", label);
    /* Same compression choices too. */
    cr_assert_eq(n1, n2, "%s: size", label);
    cr_assert_eq(memcmp(copy, r2, n1), 0, "%s: bytes", label);
    ldns_pkt_free(a);
    ldns_pkt_free(b);
    return n1;
}

static const char *const names[] = {
    "web.service.internal",
    "WeB.SeRvIcE.iNtErNaL",
    "_web._tcp.service.internal",
    "_WEB._TCP.service.internal",
    "_web._udp.service.internal",
    "_dns._udp.service.internal",
    "_primary._sub.web.service.internal",
    "_Primary._Sub._Web._Tcp.Service.Internal",
    "_canary._sub._web._tcp.service.internal",
    "_nosuch._sub.web.service.internal",
    "_sub.web.service.internal",
    "_sub._web._tcp.service.internal",
    "_tcp.service.internal",
    "_udp.service.internal",
    "web-1.web.service.internal",
    "WEB-2.web.service.internal",
    "web-3.web.service.internal",
    "web-9.web.service.internal",
    "v6.service.internal",
    "only.v6.service.internal",
    "lapsing.service.internal",
    "big.service.internal",
    "_big._tcp.service.internal",
    "_odd._sub.big.service.internal",
    "_odd._sub._big._tcp.service.internal",
    "nosuch.service.internal",
    "a.b.c.d.e.service.internal",
    "-bad.service.internal",
    "ns.service.internal",
    "service.internal",
    "x.wild.service.internal",
    "www.example.internal",
    "example.org",
};

static const uint16_t types[] = {LDNS_RR_TYPE_A,   LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_SRV,
                                 LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_ANY,  LDNS_RR_TYPE_MX};

static const struct {
    uint16_t edns;
    bool dnssec_ok;
} ednses[] = {{0, false}, {100, false}, {512, true}, {1232, false}, {4096, true}};

Test(hot_path, replies_match_the_ldns_path)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            for (size_t e = 0; e < sizeof(ednses) / sizeof(ednses[0]); e++) {
                struct request q = {names[i], types[t], ednses[e].edns, ednses[e].dnssec_ok,
                                    (i + e) % 2 == 0};
                /* Twice over UDP and once over TCP: the rotation counter moves each time. */
                compare(&q, QUERY_UDP, NOW);
                compare(&q, QUERY_UDP, NOW + 7500);
                compare(&q, QUERY_TCP, NOW + 29500);
                n += 3;
            }
        }
    }
    /* Registry names, negative answers and truncation: most of the cases, not static names. */
    cr_assert_gt(n_hot, n / 2, "%zu of %zu replies from the hot path", n_hot, n);
    cr_assert_lt(n_hot, n);
}

Test(hot_path, truncation_matches_the_ldns_path)
{
    struct request srv = {"_big._tcp.service.internal", LDNS_RR_TYPE_SRV, 0, false, true};
    size_t small = compare(&srv, QUERY_UDP, NOW);
    cr_assert(query_last_was_fast(fast));
    cr_assert_leq(small, 512);
    srv.edns = 1232;
    size_t mid = compare(&srv, QUERY_UDP, NOW);
    cr_assert_leq(mid, 1232);
    cr_assert_gt(compare(&srv, QUERY_TCP, NOW), 1232, "TCP carries the whole answer");
    struct request a = {"big.service.internal", LDNS_RR_TYPE_A, 0, false, false};
    compare(&a, QUERY_UDP, NOW);
    a.edns = 600;
    compare(&a, QUERY_UDP, NOW);
}

Test(hot_path, registry_changes_are_seen_by_both_paths)
{
    struct request q = {"web.service.internal", LDNS_RR_TYPE_A, 1232, false, true};
    compare(&q, QUERY_UDP, NOW);
    cr_assert_eq(registry_remove(reg, "web", "web-3"), 0);
    compare(&q, QUERY_UDP, NOW);
    struct request soa = {"gone.service.internal", LDNS_RR_TYPE_A, 0, false, true};
    compare(&soa, QUERY_UDP, NOW);
}

Test(hot_path, unusual_requests_take_the_ldns_path)
{
    uint8_t req[512];
    struct request q = {"web.service.internal", LDNS_RR_TYPE_A, 1232, false, true};
    size_t len = make_request(&q, 7, req);
    const uint8_t *r1, *r2;
    size_t n1, n2;
    uint8_t copy[4096];
    /* EDNS version 1 (BADVERS), a trailing byte (FORMERR), class CH (REFUSED). */
    uint8_t v1[512], trailing[513], ch[512];
    memcpy(v1, req, len);
    v1[len - 5] = 1;
    memcpy(trailing, req, len);
    trailing[len] = 0;
    memcpy(ch, req, len);
    ch[len - 11 - 1] = 3;
    const struct {
        const uint8_t *bytes;
        size_t len;
        uint8_t rcode;
    } cases[] = {
        {v1, len, 0}, {trailing, len + 1, LDNS_RCODE_FORMERR}, {ch, len, LDNS_RCODE_REFUSED}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(
            query_answer(fast, zs, ans, cases[i].bytes, cases[i].len, QUERY_UDP, NOW, &r1, &n1), 0);
        memcpy(copy, r1, n1);
        cr_assert_eq(
            query_answer(full, zs, ans, cases[i].bytes, cases[i].len, QUERY_UDP, NOW, &r2, &n2), 0);
        cr_assert_not(query_last_was_fast(fast), "case %zu", i);
        cr_assert_eq(n1, n2, "case %zu", i);
        cr_assert_eq(memcmp(copy, r2, n1), 0, "case %zu", i);
        cr_assert_eq(LDNS_RCODE_WIRE(copy), cases[i].rcode, "case %zu", i);
    }
}
