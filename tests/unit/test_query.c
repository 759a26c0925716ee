/* SPDX-License-Identifier: BSD-2-Clause
 * Tests for query: request bytes in, response bytes out, in-process. The zones come from
 * tests/data/zones (service.internal. with static names, a CNAME, a delegation and a
 * wildcard; example.internal.), the registry is real and feeds answers through its change
 * callback, and every response is parsed back with ldns and checked section by section. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <urcu/urcu-memb.h>

#include "answers.h"
#include "query_fixture.h"
#include "wire.h"
#include "dnsd/error.h"
#include "query.h"
#include "registry.h"
#include "zonestore.h"

#define NOW 1000000
#define ZONE_SERIAL 2024010101U

static struct zonestore *zs;
static struct query_ctx *ctx;

static const struct query_config config = {
    .domain = "service.internal.", .dns_ttl = 30, .udp_max_size = 1232};

/* tests/data, from $DNSD_TEST_DATA (set by CTest) or relative to the source tree. */
static const char *data_dir(void)
{
    const char *d = getenv("DNSD_TEST_DATA");
    return d && d[0] ? d : "tests/data";
}

static void setup(void)
{
    /* answers' writer is a registered RCU thread (call_rcu), as dnsd's main thread is. */
    urcu_memb_register_thread();
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof(dir), "%s/zones", data_dir());
    cr_assert_eq(zonestore_load(dir, &apex, &zs, err, sizeof(err)), 0, "%s", err);
    ans = answers_new(config.domain, false);
    reg = registry_new(NULL, on_change, NULL);
    ctx = query_ctx_new(&config);
    cr_assert(ans && reg && ctx);
}

static void teardown(void)
{
    query_ctx_free(ctx);
    registry_free(reg);
    answers_free(ans);
    zonestore_free(zs);
    urcu_memb_unregister_thread();
}

TestSuite(query, .init = setup, .fini = teardown);

/* ---- registry helpers ---- */

struct spec {
    const char *service, *id;
    const char *addrs[3];
    uint16_t port;
    enum registry_proto proto;
    const char *tag;
    const char *meta_key, *meta_value;
    uint32_t ttl_s;
};

static void put_at(const struct spec *s, uint64_t now_ms)
{
    struct registry_instance inst;
    memset(&inst, 0, sizeof(inst));
    char *tags[1] = {(char *)s->tag};
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
    inst.port = s->port ? s->port : 8080;
    inst.proto = s->proto;
    inst.weight = 1;
    inst.tags = s->tag ? tags : NULL;
    inst.n_tags = s->tag ? 1 : 0;
    inst.meta = s->meta_key ? &meta : NULL;
    inst.n_meta = s->meta_key ? 1 : 0;
    inst.ttl_s = s->ttl_s ? s->ttl_s : 30;
    const char *field = NULL;
    cr_assert_eq(registry_put(reg, &inst, now_ms, &field), 0, "put %s/%s: %s", s->service, s->id,
                 field ? field : "");
}

static void put(const struct spec *s)
{
    put_at(s, NOW);
}

/* n instances web-01.. of service with addresses 10.0.0.1.. */
static void put_many(const char *service, int n)
{
    for (int i = 1; i <= n; i++) {
        char id[16], addr[32];
        snprintf(id, sizeof(id), "%s-%02d", service, i);
        snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 200, i % 200 + 1);
        put(&(struct spec){.service = service, .id = id, .addrs = {addr}});
    }
}

/* ---- query helpers ---- */

struct ask {
    const char *name;
    ldns_rr_type type;
    ldns_rr_class class; /* 0: IN */
    uint16_t edns;       /* 0: no OPT */
    uint8_t version;
    bool dnssec_ok;
    enum query_transport transport;
    uint64_t now_ms; /* 0: NOW */
};

static size_t make_request(const struct ask *a, uint8_t **out)
{
    ldns_rdf *qname = ldns_dname_new_frm_str(a->name);
    cr_assert_not_null(qname, "bad name %s", a->name);
    ldns_pkt *pkt =
        ldns_pkt_query_new(qname, a->type, a->class ? a->class : LDNS_RR_CLASS_IN, LDNS_RD);
    cr_assert_not_null(pkt);
    ldns_pkt_set_id(pkt, 0x5a5a);
    if (a->edns) {
        ldns_pkt_set_edns_udp_size(pkt, a->edns);
        ldns_pkt_set_edns_version(pkt, a->version);
        ldns_pkt_set_edns_do(pkt, a->dnssec_ok);
    }
    size_t len = 0;
    cr_assert_eq(ldns_pkt2wire(out, pkt, &len), LDNS_STATUS_OK);
    ldns_pkt_free(pkt);
    return len;
}

/* Run raw bytes through query_answer; returns the response bytes (borrowed from ctx). */
static const uint8_t *run(const uint8_t *req, size_t len, enum query_transport transport,
                          uint64_t now_ms, size_t *resp_len)
{
    const uint8_t *resp = NULL;
    cr_assert_eq(
        query_answer(ctx, zs, ans, req, len, transport, now_ms ? now_ms : NOW, &resp, resp_len), 0);
    cr_assert_not_null(resp);
    return resp;
}

static ldns_pkt *parse(const uint8_t *resp, size_t len)
{
    ldns_pkt *pkt = NULL;
    cr_assert_gt(len, 0, "no response");
    cr_assert_eq(ldns_wire2pkt(&pkt, resp, len), LDNS_STATUS_OK);
    cr_assert(ldns_pkt_qr(pkt));
    cr_assert_eq(ldns_pkt_id(pkt), LDNS_ID_WIRE(resp));
    return pkt;
}

/* Ask and parse; *resp_len (if non-NULL) gets the response size. */
static ldns_pkt *ask_full(const struct ask *a, size_t *resp_len)
{
    uint8_t *req = NULL;
    size_t len = make_request(a, &req);
    size_t n = 0;
    const uint8_t *resp = run(req, len, a->transport, a->now_ms, &n);
    free(req);
    if (resp_len)
        *resp_len = n;
    ldns_pkt *pkt = parse(resp, n);
    cr_assert_eq(ldns_pkt_id(pkt), 0x5a5a);
    cr_assert(ldns_pkt_rd(pkt));
    cr_assert_not(ldns_pkt_ra(pkt));
    return pkt;
}

static ldns_pkt *ask(const char *name, ldns_rr_type type)
{
    return ask_full(&(struct ask){.name = name, .type = type}, NULL);
}

static size_t count_type(const ldns_rr_list *list, ldns_rr_type type)
{
    size_t n = 0;
    for (size_t i = 0; i < ldns_rr_list_rr_count(list); i++)
        n += ldns_rr_get_type(ldns_rr_list_rr(list, i)) == type;
    return n;
}

/* Does list hold a record whose text form (owner type rdata, without TTL) is text? */
static bool has_rr(const ldns_rr_list *list, const char *text)
{
    ldns_rr *want = NULL;
    cr_assert_eq(ldns_rr_new_frm_str(&want, text, 0, NULL, NULL), LDNS_STATUS_OK, "%s", text);
    bool found = false;
    for (size_t i = 0; i < ldns_rr_list_rr_count(list) && !found; i++) {
        ldns_rr *have = ldns_rr_list_rr(list, i);
        ldns_rr_set_ttl(want, ldns_rr_ttl(have));
        found = ldns_rr_compare(have, want) == 0;
    }
    ldns_rr_free(want);
    return found;
}

static void assert_rcode(const ldns_pkt *pkt, ldns_pkt_rcode rcode)
{
    cr_assert_eq(ldns_pkt_get_rcode(pkt), rcode, "rcode %d, want %d", ldns_pkt_get_rcode(pkt),
                 rcode);
}

/* A negative answer: no answer records, the zone's SOA in authority with the RFC 2308 TTL. */
static const ldns_rr *assert_negative(const ldns_pkt *pkt, ldns_pkt_rcode rcode, const char *zone,
                                      uint32_t ttl)
{
    assert_rcode(pkt, rcode);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 0);
    cr_assert_eq(ldns_pkt_nscount(pkt), 1);
    const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(pkt), 0);
    cr_assert_eq(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
    ldns_rdf *origin = ldns_dname_new_frm_str(zone);
    cr_assert_eq(ldns_dname_compare(ldns_rr_owner(soa), origin), 0);
    ldns_rdf_deep_free(origin);
    cr_assert_eq(ldns_rr_ttl(soa), ttl);
    return soa;
}

static uint32_t soa_serial(const ldns_rr *soa)
{
    return ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
}

/* ---- registry names ---- */

Test(query, service_a_lists_instances)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11", "2001:db8::11"}});
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 2);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN A 192.0.2.10"));
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN A 192.0.2.11"));
    cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0)), 30);
    ldns_pkt_free(pkt);
}

Test(query, service_aaaa_lists_ipv6)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11", "2001:db8::11"}});
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_AAAA);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN AAAA 2001:db8::11"));
    ldns_pkt_free(pkt);
}

Test(query, identical_addresses_are_listed_once)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.10"}, .port = 80});
    put(&(struct spec){.service = "web", .id = "b", .addrs = {"192.0.2.10"}, .port = 81});
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    ldns_pkt_free(pkt);
}

Test(query, aaaa_for_ipv4_only_service_is_nodata)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_AAAA);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, srv_and_txt_at_service_name_are_nodata)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_SRV);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
    pkt = ask("web.service.internal.", LDNS_RR_TYPE_TXT);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, srv_lists_instances_with_target_addresses)
{
    put(&(struct spec){
        .service = "web", .id = "web-1", .addrs = {"192.0.2.10", "2001:db8::10"}, .port = 8443});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}, .port = 8080});
    ldns_pkt *pkt = ask("_web._tcp.service.internal.", LDNS_RR_TYPE_SRV);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 2);
    cr_assert(has_rr(ldns_pkt_answer(pkt),
                     "_web._tcp.service.internal. IN SRV 0 1 8443 web-1.web.service.internal."));
    cr_assert(has_rr(ldns_pkt_answer(pkt),
                     "_web._tcp.service.internal. IN SRV 0 1 8080 web-2.web.service.internal."));
    const ldns_rr_list *add = ldns_pkt_additional(pkt);
    cr_assert_eq(ldns_rr_list_rr_count(add), 3);
    cr_assert(has_rr(add, "web-1.web.service.internal. IN A 192.0.2.10"));
    cr_assert(has_rr(add, "web-1.web.service.internal. IN AAAA 2001:db8::10"));
    cr_assert(has_rr(add, "web-2.web.service.internal. IN A 192.0.2.11"));
    ldns_pkt_free(pkt);
}

Test(query, srv_follows_registered_proto)
{
    put(&(struct spec){.service = "dns",
                       .id = "a",
                       .addrs = {"192.0.2.53"},
                       .port = 53,
                       .proto = REGISTRY_PROTO_UDP});
    ldns_pkt *pkt = ask("_dns._udp.service.internal.", LDNS_RR_TYPE_SRV);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    ldns_pkt_free(pkt);
    pkt = ask("_dns._tcp.service.internal.", LDNS_RR_TYPE_SRV);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, instance_name_has_addresses_and_txt)
{
    put(&(struct spec){.service = "web",
                       .id = "web-1",
                       .addrs = {"192.0.2.10"},
                       .meta_key = "version",
                       .meta_value = "1.4"});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}});
    ldns_pkt *pkt = ask("web-1.web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web-1.web.service.internal. IN A 192.0.2.10"));
    ldns_pkt_free(pkt);
    pkt = ask("web-1.web.service.internal.", LDNS_RR_TYPE_TXT);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web-1.web.service.internal. IN TXT \"version=1.4\""));
    ldns_pkt_free(pkt);
    /* RFC 6763 §6.1: no metadata is a TXT with one empty string */
    pkt = ask("web-2.web.service.internal.", LDNS_RR_TYPE_TXT);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    const ldns_rr *txt = ldns_rr_list_rr(ldns_pkt_answer(pkt), 0);
    cr_assert_eq(ldns_rr_rd_count(txt), 1);
    cr_assert_eq(ldns_rdf_size(ldns_rr_rdf(txt, 0)), 1);
    ldns_pkt_free(pkt);
    pkt = ask("web-3.web.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, tag_filters_addresses)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}, .tag = "primary"});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}, .tag = "backup"});
    put(&(struct spec){.service = "web", .id = "web-3", .addrs = {"192.0.2.12"}});
    ldns_pkt *pkt = ask("_primary._sub.web.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "_primary._sub.web.service.internal. IN A 192.0.2.10"));
    ldns_pkt_free(pkt);
    pkt = ask("_other._sub.web.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, tag_filters_srv)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}, .tag = "primary"});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}});
    ldns_pkt *pkt = ask("_primary._sub._web._tcp.service.internal.", LDNS_RR_TYPE_SRV);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "_primary._sub._web._tcp.service.internal. IN SRV 0 1 "
                                           "8080 web-1.web.service.internal."));
    cr_assert_eq(ldns_pkt_arcount(pkt), 1);
    ldns_pkt_free(pkt);
}

Test(query, empty_non_terminals_are_nodata)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}, .tag = "primary"});
    const char *ents[] = {"_tcp.service.internal.", "_sub.web.service.internal.",
                          "_sub._web._tcp.service.internal."};
    for (size_t i = 0; i < 3; i++) {
        ldns_pkt *pkt = ask(ents[i], LDNS_RR_TYPE_A);
        assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
        ldns_pkt_free(pkt);
    }
    ldns_pkt *pkt = ask("_udp.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, untagged_service_has_no_sub_name)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    ldns_pkt *pkt = ask("_sub.web.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, unknown_service_is_nxdomain_with_soa)
{
    ldns_pkt *pkt = ask("nosuch.service.internal.", LDNS_RR_TYPE_A);
    const ldns_rr *soa = assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    cr_assert_eq(soa_serial(soa), ZONE_SERIAL);
    ldns_pkt_free(pkt);
}

Test(query, serial_grows_with_registry_changes)
{
    ldns_pkt *pkt = ask("service.internal.", LDNS_RR_TYPE_SOA);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    uint32_t before = soa_serial(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0));
    cr_assert_eq(before, ZONE_SERIAL);
    cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0)), 300);
    ldns_pkt_free(pkt);
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}});
    pkt = ask("service.internal.", LDNS_RR_TYPE_SOA);
    uint32_t after = soa_serial(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0));
    cr_assert_eq(after, ZONE_SERIAL + (uint32_t)registry_serial(reg));
    cr_assert_gt(after, before);
    ldns_pkt_free(pkt);
    /* negative answers carry the same serial */
    pkt = ask("nosuch.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(soa_serial(ldns_rr_list_rr(ldns_pkt_authority(pkt), 0)), after);
    ldns_pkt_free(pkt);
}

Test(query, synthesised_apex_serves_soa_and_ns)
{
    zonestore_free(zs);
    char err[256] = "";
    cr_assert_eq(zonestore_load(NULL, &apex, &zs, err, sizeof(err)), 0, "%s", err);
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    ldns_pkt *pkt = ask("service.internal.", LDNS_RR_TYPE_SOA);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_eq(soa_serial(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0)),
                 100 + (uint32_t)registry_serial(reg));
    ldns_pkt_free(pkt);
    pkt = ask("service.internal.", LDNS_RR_TYPE_NS);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "service.internal. IN NS ns.service.internal."));
    cr_assert(has_rr(ldns_pkt_additional(pkt), "ns.service.internal. IN A 192.0.2.1"));
    ldns_pkt_free(pkt);
    pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    ldns_pkt_free(pkt);
    pkt = ask("nosuch.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 30);
    ldns_pkt_free(pkt);
}

Test(query, ttl_is_capped_by_remaining_lease)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}, .ttl_s = 10});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}, .ttl_s = 60});
    ldns_pkt *pkt = ask_full(&(struct ask){.name = "web.service.internal.",
                                           .type = LDNS_RR_TYPE_A,
                                           .now_ms = NOW + 4500},
                             NULL);
    cr_assert_eq(ldns_pkt_ancount(pkt), 2);
    /* one TTL for the RRset: floor(5500 ms / 1000) from the shorter lease */
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(pkt), i)), 5);
    ldns_pkt_free(pkt);
}

Test(query, lapsed_instance_is_not_served)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}, .ttl_s = 10});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}, .ttl_s = 60});
    /* The registry turns the lapsed instance critical; answers stops publishing it. */
    registry_advance(reg, NOW + 10000);
    ldns_pkt *pkt = ask_full(&(struct ask){.name = "web.service.internal.",
                                           .type = LDNS_RR_TYPE_A,
                                           .now_ms = NOW + 10000},
                             NULL);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN A 192.0.2.11"));
    ldns_pkt_free(pkt);
    pkt = ask_full(&(struct ask){.name = "web-1.web.service.internal.",
                                 .type = LDNS_RR_TYPE_A,
                                 .now_ms = NOW + 10000},
                   NULL);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
    registry_advance(reg, NOW + 60000);
    pkt = ask_full(&(struct ask){.name = "web.service.internal.",
                                 .type = LDNS_RR_TYPE_A,
                                 .now_ms = NOW + 60000},
                   NULL);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

/* Replace the suite's query context with one whose TTL floor is min_ttl. */
static void use_min_ttl(uint32_t min_ttl)
{
    struct query_config cfg = config;
    cfg.min_ttl = min_ttl;
    query_ctx_free(ctx);
    ctx = query_ctx_new(&cfg);
    cr_assert_not_null(ctx);
}

static uint32_t first_answer_ttl(const char *name, ldns_rr_type type, uint64_t now_ms)
{
    ldns_pkt *pkt = ask_full(&(struct ask){.name = name, .type = type, .now_ms = now_ms}, NULL);
    cr_assert_gt(ldns_pkt_ancount(pkt), 0, "%s: no answer", name);
    uint32_t ttl = ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0));
    ldns_pkt_free(pkt);
    return ttl;
}

Test(query, min_ttl_is_the_floor_of_the_lease_cap)
{
    use_min_ttl(3);
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}, .ttl_s = 10});
    /* 9 s left: min(30, 9) is above the floor */
    cr_assert_eq(first_answer_ttl("web.service.internal.", LDNS_RR_TYPE_A, NOW + 1000), 9);
    /* 1.5 s left: min(30, 1) = 1 is raised to the floor, for every record type */
    cr_assert_eq(first_answer_ttl("web.service.internal.", LDNS_RR_TYPE_A, NOW + 8500), 3);
    cr_assert_eq(first_answer_ttl("_web._tcp.service.internal.", LDNS_RR_TYPE_SRV, NOW + 8500), 3);
    cr_assert_eq(first_answer_ttl("web-1.web.service.internal.", LDNS_RR_TYPE_TXT, NOW + 8500), 3);
    /* a long lease is still capped by dns_ttl */
    put(&(struct spec){.service = "db", .id = "db-1", .addrs = {"192.0.2.20"}, .ttl_s = 600});
    cr_assert_eq(first_answer_ttl("db.service.internal.", LDNS_RR_TYPE_A, NOW), 30);
}

Test(query, zero_min_ttl_lets_the_ttl_reach_zero)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}, .ttl_s = 10});
    cr_assert_eq(first_answer_ttl("web.service.internal.", LDNS_RR_TYPE_A, NOW + 9500), 0);
}

Test(query, critical_heartbeat_hides_instance)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}});
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "disk full",
                                    NOW + 1000, NULL),
                 0);
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN A 192.0.2.11"));
    ldns_pkt_free(pkt);
    pkt = ask("_web._tcp.service.internal.", LDNS_RR_TYPE_SRV);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    ldns_pkt_free(pkt);
    pkt = ask("web-1.web.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
    /* a passing heartbeat brings it back */
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, NULL, NOW + 2000, NULL),
        0);
    pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 2);
    ldns_pkt_free(pkt);
}

Test(query, maintenance_hides_instance)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, "deploy", NOW, NULL), 0);
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", false, NULL, NOW, NULL), 0);
    pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    ldns_pkt_free(pkt);
}

Test(query, warning_is_served_unless_only_passing)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.11"}});
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "slow", NOW + 1000, NULL),
        0);
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 2, "warning instances are answered by default");
    ldns_pkt_free(pkt);

    /* The same registry published with health.only_passing. */
    answers_free(ans);
    ans = answers_new(config.domain, true);
    cr_assert_not_null(ans);
    cr_assert_eq(answers_update_service(ans, reg, "web"), 0);
    pkt = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN A 192.0.2.11"));
    ldns_pkt_free(pkt);
    pkt = ask("web-1.web.service.internal.", LDNS_RR_TYPE_TXT);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, service_without_answerable_instances_is_nxdomain)
{
    put(&(struct spec){
        .service = "dns", .id = "dns-1", .addrs = {"192.0.2.53"}, .proto = REGISTRY_PROTO_UDP});
    ldns_pkt *pkt = ask("_udp.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
    cr_assert_eq(registry_heartbeat(reg, "dns", "dns-1", REGISTRY_HEALTH_CRITICAL, NULL, NOW, NULL),
                 0);
    pkt = ask("dns.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
    /* no answerable udp instance left anywhere: _udp.D is gone too */
    pkt = ask("_udp.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, lapsed_instance_held_by_self_preservation_is_served_with_min_ttl)
{
    /* A registry that preserves once more than half of >= 4 instances lapse in a window. */
    const struct registry_options opts = {
        .preservation_enabled = true,
        .preservation_threshold = 0.5,
        .preservation_min_instances = 4,
        .preservation_max_ms = 300000,
    };
    registry_free(reg);
    reg = registry_new(&opts, on_change, NULL);
    cr_assert_not_null(reg);
    use_min_ttl(2);
    put_many("web", 8);
    /* Every lease (30 s) lapses at once: a partition, not eight failures. */
    registry_advance(reg, NOW + 30000);
    cr_assert(registry_is_preserving(reg));
    ldns_pkt *pkt = ask_full(&(struct ask){.name = "web.service.internal.",
                                           .type = LDNS_RR_TYPE_A,
                                           .now_ms = NOW + 31000},
                             NULL);
    cr_assert_gt(ldns_pkt_ancount(pkt), 0, "held instances are still answered");
    for (size_t i = 0; i < ldns_pkt_ancount(pkt); i++)
        cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(pkt), i)), 2,
                     "a lapsed lease counts as 0 s left, raised to min_ttl");
    ldns_pkt_free(pkt);
}

Test(query, rotation_changes_order_between_queries)
{
    put_many("web", 3);
    ldns_pkt *first = ask("web.service.internal.", LDNS_RR_TYPE_A);
    ldns_pkt *second = ask("web.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(first), 3);
    cr_assert_eq(ldns_pkt_ancount(second), 3);
    cr_assert_neq(ldns_rr_compare(ldns_rr_list_rr(ldns_pkt_answer(first), 0),
                                  ldns_rr_list_rr(ldns_pkt_answer(second), 0)),
                  0);
    /* the same set, only the order differs */
    for (size_t i = 0; i < 3; i++) {
        ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(first), i);
        cr_assert(ldns_rr_list_contains_rr(ldns_pkt_answer(second), rr));
    }
    ldns_pkt_free(first);
    ldns_pkt_free(second);
    /* SRV too, with the additional addresses following the new order */
    first = ask("_web._tcp.service.internal.", LDNS_RR_TYPE_SRV);
    second = ask("_web._tcp.service.internal.", LDNS_RR_TYPE_SRV);
    const ldns_rdf *t1 = ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(first), 0), 3);
    const ldns_rdf *t2 = ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(second), 0), 3);
    cr_assert_neq(ldns_dname_compare(t1, t2), 0);
    cr_assert_eq(
        ldns_dname_compare(t2, ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_additional(second), 0))), 0);
    ldns_pkt_free(first);
    ldns_pkt_free(second);
}

Test(query, any_returns_one_rrset)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10", "2001:db8::1"}});
    ldns_pkt *pkt = ask("web.service.internal.", LDNS_RR_TYPE_ANY);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert_eq(count_type(ldns_pkt_answer(pkt), LDNS_RR_TYPE_A), 1);
    ldns_pkt_free(pkt);
    pkt = ask("example.internal.", LDNS_RR_TYPE_ANY);
    const ldns_rr_list *an = ldns_pkt_answer(pkt);
    cr_assert_gt(ldns_rr_list_rr_count(an), 0);
    cr_assert_eq(count_type(an, ldns_rr_get_type(ldns_rr_list_rr(an, 0))),
                 ldns_rr_list_rr_count(an));
    ldns_pkt_free(pkt);
    pkt = ask("nosuch.service.internal.", LDNS_RR_TYPE_ANY);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, question_case_is_echoed)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    uint8_t *req = NULL;
    size_t len =
        make_request(&(struct ask){.name = "WeB.SeRvIcE.iNtErNaL.", .type = LDNS_RR_TYPE_A}, &req);
    size_t n = 0;
    const uint8_t *resp = run(req, len, QUERY_UDP, 0, &n);
    size_t qlen = len - 12; /* no OPT: the rest of the request is the question */
    cr_assert_geq(n, 12 + qlen);
    cr_assert_eq(memcmp(resp + 12, req + 12, qlen), 0);
    ldns_pkt *pkt = parse(resp, n);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    char *owner = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0)));
    cr_assert_str_eq(owner, "WeB.SeRvIcE.iNtErNaL.");
    free(owner);
    ldns_pkt_free(pkt);
    free(req);
}

/* ---- sizes ---- */

Test(query, large_answer_is_truncated_over_udp_and_complete_over_tcp)
{
    put_many("web", 60);
    size_t n = 0;
    ldns_pkt *pkt = ask_full(
        &(struct ask){.name = "_web._tcp.service.internal.", .type = LDNS_RR_TYPE_SRV}, &n);
    cr_assert_leq(n, 512);
    cr_assert(ldns_pkt_tc(pkt));
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    cr_assert_eq(ldns_pkt_ancount(pkt) + ldns_pkt_nscount(pkt) + ldns_pkt_arcount(pkt), 0);
    ldns_pkt_free(pkt);
    pkt = ask_full(&(struct ask){.name = "_web._tcp.service.internal.",
                                 .type = LDNS_RR_TYPE_SRV,
                                 .transport = QUERY_TCP},
                   &n);
    cr_assert_gt(n, 1232);
    cr_assert_not(ldns_pkt_tc(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 60);
    cr_assert_eq(ldns_pkt_arcount(pkt), 60);
    ldns_pkt_free(pkt);
}

Test(query, without_edns_udp_limit_is_512)
{
    put_many("web", 60); /* 60 A records: about 1 kB */
    size_t n = 0;
    ldns_pkt *pkt =
        ask_full(&(struct ask){.name = "web.service.internal.", .type = LDNS_RR_TYPE_A}, &n);
    cr_assert_leq(n, 512);
    cr_assert(ldns_pkt_tc(pkt));
    cr_assert_not(ldns_pkt_edns(pkt));
    ldns_pkt_free(pkt);
}

Test(query, edns_size_is_clamped_and_opt_echoed)
{
    put_many("web", 60);
    size_t n = 0;
    ldns_pkt *pkt = ask_full(&(struct ask){.name = "web.service.internal.",
                                           .type = LDNS_RR_TYPE_A,
                                           .edns = 4096,
                                           .dnssec_ok = true},
                             &n);
    cr_assert_gt(n, 512);
    cr_assert_leq(n, 1232);
    cr_assert_not(ldns_pkt_tc(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 60);
    cr_assert(ldns_pkt_edns(pkt));
    cr_assert_eq(ldns_pkt_edns_udp_size(pkt), 1232);
    cr_assert_eq(ldns_pkt_edns_version(pkt), 0);
    cr_assert(ldns_pkt_edns_do(pkt));
    ldns_pkt_free(pkt);
    /* the client's smaller size wins over ours */
    pkt = ask_full(
        &(struct ask){.name = "web.service.internal.", .type = LDNS_RR_TYPE_A, .edns = 700}, &n);
    cr_assert_leq(n, 700);
    cr_assert(ldns_pkt_tc(pkt));
    cr_assert(ldns_pkt_edns(pkt));
    ldns_pkt_free(pkt);
}

Test(query, additional_is_dropped_without_tc)
{
    put_many("web", 8);
    size_t n = 0;
    ldns_pkt *pkt = ask_full(
        &(struct ask){.name = "_web._tcp.service.internal.", .type = LDNS_RR_TYPE_SRV}, &n);
    cr_assert_leq(n, 512);
    cr_assert_not(ldns_pkt_tc(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 8);
    cr_assert_lt(ldns_pkt_arcount(pkt), 8);
    /* the addresses kept are those of the first targets, in answer order */
    for (size_t i = 0; i < ldns_pkt_arcount(pkt); i++) {
        const ldns_rr *srv = ldns_rr_list_rr(ldns_pkt_answer(pkt), i);
        const ldns_rr *a = ldns_rr_list_rr(ldns_pkt_additional(pkt), i);
        cr_assert_eq(ldns_dname_compare(ldns_rr_rdf(srv, 3), ldns_rr_owner(a)), 0);
    }
    ldns_pkt_free(pkt);
}

/* ---- static zones ---- */

Test(query, static_records_with_additional_targets)
{
    ldns_pkt *pkt = ask("example.internal.", LDNS_RR_TYPE_MX);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert(has_rr(ldns_pkt_answer(pkt), "example.internal. IN MX 10 mail.example.internal."));
    cr_assert(has_rr(ldns_pkt_additional(pkt), "mail.example.internal. IN A 192.0.2.25"));
    cr_assert(has_rr(ldns_pkt_additional(pkt), "mail.example.internal. IN AAAA 2001:db8::25"));
    ldns_pkt_free(pkt);
    pkt = ask("db.example.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "db.example.internal. IN A 192.0.2.10"));
    cr_assert_eq(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0)), 3600);
    ldns_pkt_free(pkt);
}

Test(query, static_negative_answers_use_zone_soa)
{
    ldns_pkt *pkt = ask("nosuch.example.internal.", LDNS_RR_TYPE_A);
    const ldns_rr *soa = assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "example.internal.", 300);
    cr_assert_eq(soa_serial(soa), ZONE_SERIAL); /* no registry serial outside D */
    ldns_pkt_free(pkt);
    pkt = ask("db.example.internal.", LDNS_RR_TYPE_TXT);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "example.internal.", 300);
    ldns_pkt_free(pkt);
    /* RFC 8020: an empty non-terminal exists */
    pkt = ask("ent.example.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "example.internal.", 300);
    ldns_pkt_free(pkt);
}

Test(query, cname_is_followed_in_zone)
{
    ldns_pkt *pkt = ask("www.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 2);
    const ldns_rr_list *an = ldns_pkt_answer(pkt);
    cr_assert_eq(ldns_rr_get_type(ldns_rr_list_rr(an, 0)), LDNS_RR_TYPE_CNAME);
    cr_assert(has_rr(an, "www.service.internal. IN CNAME static.service.internal."));
    cr_assert(has_rr(an, "static.service.internal. IN A 192.0.2.53"));
    ldns_pkt_free(pkt);
    /* asking for the CNAME itself does not follow it */
    pkt = ask("www.service.internal.", LDNS_RR_TYPE_CNAME);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    ldns_pkt_free(pkt);
}

Test(query, delegation_is_a_referral_with_glue)
{
    ldns_pkt *pkt = ask("host.sub.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_not(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 0);
    cr_assert(
        has_rr(ldns_pkt_authority(pkt), "sub.service.internal. IN NS ns.sub.service.internal."));
    cr_assert_eq(ldns_pkt_nscount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_additional(pkt), "ns.sub.service.internal. IN A 192.0.2.54"));
    ldns_pkt_free(pkt);
}

Test(query, wildcard_is_synthesised_with_query_name)
{
    ldns_pkt *pkt = ask("anything.wild.service.internal.", LDNS_RR_TYPE_TXT);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "anything.wild.service.internal. IN TXT \"wild\""));
    ldns_pkt_free(pkt);
    pkt = ask("anything.wild.service.internal.", LDNS_RR_TYPE_A);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, static_name_shadows_registry_name)
{
    put(&(struct spec){.service = "static", .id = "s-1", .addrs = {"198.51.100.1"}});
    ldns_pkt *pkt = ask("static.service.internal.", LDNS_RR_TYPE_A);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "static.service.internal. IN A 192.0.2.53"));
    ldns_pkt_free(pkt);
    /* the service's other names are still served from the registry */
    pkt = ask("_static._tcp.service.internal.", LDNS_RR_TYPE_SRV);
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    ldns_pkt_free(pkt);
}

/* ---- refusals and errors ---- */

Test(query, names_outside_zones_are_refused)
{
    ldns_pkt *pkt = ask("www.example.com.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_REFUSED);
    cr_assert_not(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    cr_assert_eq(ldns_pkt_ancount(pkt), 0);
    ldns_pkt_free(pkt);
}

Test(query, class_ch_is_refused)
{
    ldns_pkt *pkt = ask_full(
        &(struct ask){.name = "version.bind.", .type = LDNS_RR_TYPE_TXT, .class = LDNS_RR_CLASS_CH},
        NULL);
    assert_rcode(pkt, LDNS_RCODE_REFUSED);
    ldns_pkt_free(pkt);
    pkt = ask_full(&(struct ask){.name = "web.service.internal.",
                                 .type = LDNS_RR_TYPE_A,
                                 .class = LDNS_RR_CLASS_CH},
                   NULL);
    assert_rcode(pkt, LDNS_RCODE_REFUSED);
    ldns_pkt_free(pkt);
}

Test(query, zone_transfer_is_refused)
{
    ldns_pkt *pkt = ask_full(&(struct ask){.name = "service.internal.",
                                           .type = LDNS_RR_TYPE_AXFR,
                                           .transport = QUERY_TCP},
                             NULL);
    assert_rcode(pkt, LDNS_RCODE_REFUSED);
    ldns_pkt_free(pkt);
}

Test(query, other_opcode_is_notimp)
{
    ldns_rdf *qname = ldns_dname_new_frm_str("service.internal.");
    ldns_pkt *req = ldns_pkt_query_new(qname, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, 0);
    ldns_pkt_set_opcode(req, LDNS_PACKET_NOTIFY);
    ldns_pkt_set_id(req, 77);
    uint8_t *wire = NULL;
    size_t len = 0;
    cr_assert_eq(ldns_pkt2wire(&wire, req, &len), LDNS_STATUS_OK);
    ldns_pkt_free(req);
    size_t n = 0;
    const uint8_t *resp = run(wire, len, QUERY_UDP, 0, &n);
    ldns_pkt *pkt = parse(resp, n);
    assert_rcode(pkt, LDNS_RCODE_NOTIMPL);
    cr_assert_eq(ldns_pkt_get_opcode(pkt), LDNS_PACKET_NOTIFY);
    cr_assert_eq(ldns_pkt_id(pkt), 77);
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    ldns_pkt_free(pkt);
    free(wire);
}

/* Expect a 12-byte FORMERR header for id. */
static void assert_formerr_header(const uint8_t *resp, size_t n, uint16_t id)
{
    cr_assert_eq(n, 12);
    cr_assert_eq(LDNS_ID_WIRE(resp), id);
    cr_assert(LDNS_QR_WIRE(resp));
    cr_assert_eq(LDNS_RCODE_WIRE(resp), LDNS_RCODE_FORMERR);
    cr_assert_eq(LDNS_QDCOUNT(resp) + LDNS_ANCOUNT(resp) + LDNS_NSCOUNT(resp) + LDNS_ARCOUNT(resp),
                 0);
}

Test(query, no_question_is_formerr)
{
    const uint8_t req[12] = {0x12, 0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t n = 0;
    const uint8_t *resp = run(req, sizeof(req), QUERY_UDP, 0, &n);
    assert_formerr_header(resp, n, 0x1234);
    cr_assert(LDNS_RD_WIRE(resp));
}

Test(query, two_questions_are_formerr)
{
    uint8_t *req = NULL;
    size_t len = make_request(&(struct ask){.name = "a.service.internal.", .type = 1}, &req);
    uint8_t *twice = malloc(2 * len - 12);
    cr_assert_not_null(twice);
    memcpy(twice, req, len);
    memcpy(twice + len, req + 12, len - 12);
    ldns_write_uint16(twice + LDNS_QDCOUNT_OFF, 2);
    size_t n = 0;
    const uint8_t *resp = run(twice, 2 * len - 12, QUERY_UDP, 0, &n);
    assert_formerr_header(resp, n, 0x5a5a);
    free(twice);
    free(req);
}

Test(query, truncated_name_is_formerr)
{
    uint8_t *req = NULL;
    size_t len = make_request(&(struct ask){.name = "abcdefgh.service.internal.", .type = 1}, &req);
    cr_assert_gt(len, 20);
    size_t n = 0;
    const uint8_t *resp = run(req, 20, QUERY_UDP, 0, &n);
    assert_formerr_header(resp, n, 0x5a5a);
    free(req);
}

Test(query, garbage_is_formerr)
{
    uint8_t req[64];
    memset(req, 0xff, sizeof(req));
    req[0] = 0x42;
    req[1] = 0x43;
    req[2] = 0x00; /* QR=0, QUERY */
    req[3] = 0x00;
    size_t n = 0;
    const uint8_t *resp = run(req, sizeof(req), QUERY_UDP, 0, &n);
    assert_formerr_header(resp, n, 0x4243);
}

Test(query, two_opt_records_are_formerr)
{
    uint8_t *req = NULL;
    size_t len = make_request(
        &(struct ask){.name = "web.service.internal.", .type = LDNS_RR_TYPE_A, .edns = 1232}, &req);
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    uint8_t *grown = realloc(req, len + sizeof(opt));
    cr_assert_not_null(grown);
    memcpy(grown + len, opt, sizeof(opt));
    ldns_write_uint16(grown + LDNS_ARCOUNT_OFF, 2);
    size_t n = 0;
    const uint8_t *resp = run(grown, len + sizeof(opt), QUERY_UDP, 0, &n);
    ldns_pkt *pkt = parse(resp, n);
    assert_rcode(pkt, LDNS_RCODE_FORMERR);
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    cr_assert_not(ldns_pkt_edns(pkt));
    cr_assert_eq(ldns_pkt_arcount(pkt), 0);
    ldns_pkt_free(pkt);
    free(grown);
}

Test(query, responses_and_short_packets_get_no_reply)
{
    uint8_t *req = NULL;
    size_t len = make_request(&(struct ask){.name = "web.service.internal.", .type = 1}, &req);
    LDNS_QR_SET(req);
    size_t n = 99;
    run(req, len, QUERY_UDP, 0, &n);
    cr_assert_eq(n, 0);
    LDNS_QR_CLR(req);
    n = 99;
    run(req, 11, QUERY_UDP, 0, &n);
    cr_assert_eq(n, 0);
    free(req);
}

Test(query, unknown_edns_version_is_badvers)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    ldns_pkt *pkt = ask_full(
        &(struct ask){
            .name = "web.service.internal.", .type = LDNS_RR_TYPE_A, .edns = 1232, .version = 1},
        NULL);
    cr_assert_eq(ldns_pkt_get_rcode(pkt), 0);
    cr_assert(ldns_pkt_edns(pkt));
    cr_assert_eq(ldns_pkt_edns_extended_rcode(pkt), 1); /* BADVERS = 16 */
    cr_assert_eq(ldns_pkt_edns_version(pkt), 0);
    cr_assert_eq(ldns_pkt_ancount(pkt), 0);
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    ldns_pkt_free(pkt);
}

Test(query, context_survives_many_queries)
{
    put_many("web", 5);
    for (int i = 0; i < 50; i++) {
        ldns_pkt *pkt = ask(i % 2 ? "_web._tcp.service.internal." : "web.service.internal.",
                            i % 2 ? LDNS_RR_TYPE_SRV : LDNS_RR_TYPE_A);
        cr_assert_eq(ldns_pkt_ancount(pkt), 5);
        ldns_pkt_free(pkt);
    }
}

/* ---- static data mixed with registry names (tests/data/query/zones) ---- */

/* Runs after the suite's setup: swap in the mixed zones. */
static void setup_mixed(void)
{
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof(dir), "%s/query/zones", data_dir());
    zonestore_free(zs);
    zs = NULL;
    cr_assert_eq(zonestore_load(dir, &apex, &zs, err, sizeof(err)), 0, "%s", err);
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
}

Test(query, wildcard_does_not_cover_registry_names, .init = setup_mixed)
{
    ldns_pkt *pkt = ask("unknown.service.internal.", LDNS_RR_TYPE_TXT);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "unknown.service.internal. IN TXT \"any\""));
    ldns_pkt_free(pkt);
    /* the registry name exists, so the wildcard does not apply to it: NODATA */
    pkt = ask("web.service.internal.", LDNS_RR_TYPE_TXT);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
    /* nor below it: web.service.internal. is the closest encloser */
    pkt = ask("nosuch.web.service.internal.", LDNS_RR_TYPE_TXT);
    assert_negative(pkt, LDNS_RCODE_NXDOMAIN, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, cname_leads_into_registry_name, .init = setup_mixed)
{
    ldns_pkt *pkt = ask("api.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_eq(ldns_pkt_ancount(pkt), 2);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "api.service.internal. IN CNAME web.service.internal."));
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN A 192.0.2.10"));
    ldns_pkt_free(pkt);
}

Test(query, cname_loop_is_bounded, .init = setup_mixed)
{
    ldns_pkt *pkt = ask("loop1.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_gt(ldns_pkt_ancount(pkt), 1);
    cr_assert_leq(ldns_pkt_ancount(pkt), 8);
    cr_assert_eq(count_type(ldns_pkt_answer(pkt), LDNS_RR_TYPE_CNAME), ldns_pkt_ancount(pkt));
    ldns_pkt_free(pkt);
}

Test(query, cname_into_delegation_stops_at_cut, .init = setup_mixed)
{
    ldns_pkt *pkt = ask("alias-sub.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert_eq(ldns_pkt_nscount(pkt), 0);
    ldns_pkt_free(pkt);
}

Test(query, cname_to_missing_name_is_nxdomain, .init = setup_mixed)
{
    ldns_pkt *pkt = ask("gone.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NXDOMAIN);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert_eq(count_type(ldns_pkt_authority(pkt), LDNS_RR_TYPE_SOA), 1);
    ldns_pkt_free(pkt);
}

Test(query, ds_at_cut_is_answered_by_parent, .init = setup_mixed)
{
    ldns_pkt *pkt = ask("sub.service.internal.", LDNS_RR_TYPE_DS);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, cname_loop_lists_each_record_once, .init = setup_mixed)
{
    /* RFC 1034 §3.6.2: the loop ends the chain; each CNAME appears once */
    ldns_pkt *pkt = ask("loop1.service.internal.", LDNS_RR_TYPE_A);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_eq(ldns_pkt_ancount(pkt), 2);
    cr_assert(
        has_rr(ldns_pkt_answer(pkt), "loop1.service.internal. IN CNAME loop2.service.internal."));
    cr_assert(
        has_rr(ldns_pkt_answer(pkt), "loop2.service.internal. IN CNAME loop1.service.internal."));
    ldns_pkt_free(pkt);
}

/* Ask web.service.internal. for type (written into the wire: ldns turns a QTYPE of 0 into
 * A) with EDNS; expect rcode without AA, the question, no records and the OPT. */
static void assert_refused_type(uint16_t type, ldns_pkt_rcode rcode)
{
    uint8_t *req = NULL;
    size_t len = make_request(
        &(struct ask){.name = "web.service.internal.", .type = LDNS_RR_TYPE_A, .edns = 1232}, &req);
    /* the question ends just before the 11-byte OPT record */
    ldns_write_uint16(req + len - 11 - 4, type);
    size_t n = 0;
    const uint8_t *resp = run(req, len, QUERY_UDP, 0, &n);
    free(req);
    ldns_pkt *pkt = parse(resp, n);
    cr_assert_eq(ldns_pkt_get_rcode(pkt), rcode, "QTYPE %u: rcode %d, want %d", type,
                 ldns_pkt_get_rcode(pkt), rcode);
    cr_assert_not(ldns_pkt_aa(pkt));
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    cr_assert_eq(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(pkt), 0)), type);
    cr_assert_eq(ldns_pkt_ancount(pkt) + ldns_pkt_nscount(pkt), 0);
    cr_assert(ldns_pkt_edns(pkt), "the request's OPT was fine: OPT in the reply");
    ldns_pkt_free(pkt);
}

Test(query, meta_qtypes_are_formerr)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    /* RFC 6895 §3.1: TYPE 0, OPT, TSIG and unassigned meta-TYPEs are never queried */
    assert_refused_type(0, LDNS_RCODE_FORMERR);
    assert_refused_type(LDNS_RR_TYPE_OPT, LDNS_RCODE_FORMERR);
    assert_refused_type(LDNS_RR_TYPE_TSIG, LDNS_RCODE_FORMERR);
    assert_refused_type(128, LDNS_RCODE_FORMERR);
    assert_refused_type(248, LDNS_RCODE_FORMERR);
}

Test(query, unimplemented_qtypes_are_notimp)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    assert_refused_type(LDNS_RR_TYPE_TKEY, LDNS_RCODE_NOTIMPL);
    assert_refused_type(LDNS_RR_TYPE_MAILA, LDNS_RCODE_NOTIMPL);
    assert_refused_type(LDNS_RR_TYPE_MAILB, LDNS_RCODE_NOTIMPL);
}

Test(query, data_types_next_to_meta_range_are_looked_up)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    /* 127 and 256 (URI) are data TYPEs: NODATA, not an error */
    ldns_pkt *pkt = ask("web.service.internal.", (ldns_rr_type)127);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
    pkt = ask("web.service.internal.", (ldns_rr_type)256);
    assert_negative(pkt, LDNS_RCODE_NOERROR, "service.internal.", 60);
    ldns_pkt_free(pkt);
}

Test(query, qclass_any_is_answered_without_aa)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    ldns_pkt *pkt = ask_full(&(struct ask){.name = "web.service.internal.",
                                           .type = LDNS_RR_TYPE_A,
                                           .class = LDNS_RR_CLASS_ANY},
                             NULL);
    assert_rcode(pkt, LDNS_RCODE_NOERROR);
    cr_assert_not(ldns_pkt_aa(pkt), "nobody is authoritative for every class");
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert(has_rr(ldns_pkt_answer(pkt), "web.service.internal. IN A 192.0.2.10"));
    ldns_pkt_free(pkt);
    pkt = ask_full(&(struct ask){.name = "nosuch.service.internal.",
                                 .type = LDNS_RR_TYPE_A,
                                 .class = LDNS_RR_CLASS_ANY},
                   NULL);
    assert_rcode(pkt, LDNS_RCODE_NXDOMAIN);
    cr_assert_not(ldns_pkt_aa(pkt));
    cr_assert_eq(count_type(ldns_pkt_authority(pkt), LDNS_RR_TYPE_SOA), 1);
    ldns_pkt_free(pkt);
    /* still not a way to ask for a zone transfer, nor for names outside our zones */
    pkt = ask_full(&(struct ask){.name = "service.internal.",
                                 .type = LDNS_RR_TYPE_AXFR,
                                 .class = LDNS_RR_CLASS_ANY,
                                 .transport = QUERY_TCP},
                   NULL);
    assert_rcode(pkt, LDNS_RCODE_REFUSED);
    ldns_pkt_free(pkt);
    pkt = ask_full(&(struct ask){.name = "www.example.com.",
                                 .type = LDNS_RR_TYPE_A,
                                 .class = LDNS_RR_CLASS_ANY},
                   NULL);
    assert_rcode(pkt, LDNS_RCODE_REFUSED);
    ldns_pkt_free(pkt);
}

Test(query, malformed_opt_options_are_formerr_without_opt)
{
    uint8_t *req = NULL;
    size_t len = make_request(&(struct ask){.name = "web.service.internal.", .type = 1}, &req);
    /* RFC 6891 §7: an OPT whose option overruns its RDATA is malformed */
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 20};
    uint8_t *grown = realloc(req, len + sizeof(opt));
    cr_assert_not_null(grown);
    memcpy(grown + len, opt, sizeof(opt));
    ldns_write_uint16(grown + LDNS_ARCOUNT_OFF, 1);
    size_t n = 0;
    const uint8_t *resp = run(grown, len + sizeof(opt), QUERY_UDP, 0, &n);
    ldns_pkt *pkt = parse(resp, n);
    assert_rcode(pkt, LDNS_RCODE_FORMERR);
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    cr_assert_not(ldns_pkt_edns(pkt));
    cr_assert_eq(ldns_pkt_arcount(pkt), 0);
    ldns_pkt_free(pkt);
    free(grown);
}

Test(query, forward_pointer_question_is_formerr)
{
    /* the question name points forward (RFC 1035 §4.1.4): never echoed as a name */
    const uint8_t req[] = {0x12, 0x34, 0x01, 0, 0, 1, 0, 0,   0,   0,   0, 0,
                           0xc0, 18,   0,    1, 0, 1, 3, 'w', 'e', 'b', 0};
    size_t n = 0;
    const uint8_t *resp = run(req, sizeof(req), QUERY_UDP, 0, &n);
    assert_formerr_header(resp, n, 0x1234);
}

/* ---- outcome, for metrics ---- */

/* Ask and return the outcome query_answer recorded. */
static struct query_outcome outcome_of(const struct ask *a)
{
    ldns_pkt *pkt = ask_full(a, NULL);
    struct query_outcome o = query_last_outcome(ctx);
    cr_assert_eq(o.truncated, ldns_pkt_tc(pkt));
    ldns_pkt_free(pkt);
    return o;
}

Test(query, outcome_of_hot_path_answers)
{
    put_many("web", 60);
    struct query_outcome o =
        outcome_of(&(struct ask){.name = "web.service.internal.", .type = LDNS_RR_TYPE_AAAA});
    cr_assert(query_last_was_fast(ctx));
    cr_assert_eq(o.qtype, LDNS_RR_TYPE_AAAA);
    cr_assert_eq(o.rcode, LDNS_RCODE_NOERROR);
    cr_assert_not(o.truncated);
    o = outcome_of(&(struct ask){.name = "nope.service.internal.", .type = LDNS_RR_TYPE_A});
    cr_assert(query_last_was_fast(ctx));
    cr_assert_eq(o.rcode, LDNS_RCODE_NXDOMAIN);
    o = outcome_of(&(struct ask){.name = "_web._tcp.service.internal.", .type = LDNS_RR_TYPE_SRV});
    cr_assert(query_last_was_fast(ctx));
    cr_assert_eq(o.qtype, LDNS_RR_TYPE_SRV);
    cr_assert(o.truncated);
}

Test(query, outcome_of_full_path_answers)
{
    put(&(struct spec){.service = "web", .id = "web-1", .addrs = {"192.0.2.10"}});
    struct query_outcome o =
        outcome_of(&(struct ask){.name = "service.internal.", .type = LDNS_RR_TYPE_SOA});
    cr_assert_not(query_last_was_fast(ctx));
    cr_assert_eq(o.qtype, LDNS_RR_TYPE_SOA);
    cr_assert_eq(o.rcode, LDNS_RCODE_NOERROR);
    o = outcome_of(&(struct ask){.name = "example.org.", .type = LDNS_RR_TYPE_MX});
    cr_assert_eq(o.qtype, LDNS_RR_TYPE_MX);
    cr_assert_eq(o.rcode, LDNS_RCODE_REFUSED);
    o = outcome_of(&(struct ask){
        .name = "web.service.internal.", .type = LDNS_RR_TYPE_A, .edns = 1232, .version = 1});
    cr_assert_not(query_last_was_fast(ctx));
    cr_assert_eq(o.rcode, WIRE_RCODE_BADVERS);
}

Test(query, outcome_of_unparsable_request_has_no_type)
{
    uint8_t req[WIRE_HEADER_SIZE + 3] = {0x12, 0x34, 0, 0, 0, 1}; /* QDCOUNT 1, no question */
    size_t n = 0;
    const uint8_t *resp = run(req, sizeof(req), QUERY_UDP, 0, &n);
    ldns_pkt *pkt = parse(resp, n);
    struct query_outcome o = query_last_outcome(ctx);
    cr_assert_eq(o.qtype, 0);
    cr_assert_eq(o.rcode, LDNS_RCODE_FORMERR);
    cr_assert_eq(ldns_pkt_get_rcode(pkt), LDNS_RCODE_FORMERR);
    cr_assert_not(o.truncated);
    ldns_pkt_free(pkt);
}

/* The registry's change callback for a test with answers of its own (user). */
static void on_long_change(void *user, enum registry_change change, const char *service,
                           const char *id)
{
    (void)id;
    if (change != REGISTRY_CHANGE_PRESERVATION)
        cr_assert_eq(answers_update_service(user, reg, service), 0);
}

/* Ask name SRV on the hot path (full false) or the full path, in domain; returns the
 * RCODE and sets *an. */
static ldns_pkt_rcode ask_srv_in(const char *domain, const struct zonestore *z,
                                 const struct answers *a, const char *name, bool full, size_t *an)
{
    struct query_config cfg = config;
    cfg.domain = domain;
    cfg.full_path_only = full;
    struct query_ctx *c = query_ctx_new(&cfg);
    cr_assert_not_null(c);
    uint8_t *req = NULL;
    size_t req_len = make_request(&(struct ask){.name = name, .type = LDNS_RR_TYPE_SRV}, &req);
    const uint8_t *resp = NULL;
    size_t n = 0;
    cr_assert_eq(query_answer(c, z, a, req, req_len, QUERY_UDP, NOW, &resp, &n), 0);
    ldns_pkt *pkt = parse(resp, n);
    ldns_pkt_rcode rcode = ldns_pkt_get_rcode(pkt);
    *an = ldns_pkt_ancount(pkt);
    ldns_pkt_free(pkt);
    free(req);
    query_ctx_free(c);
    return rcode;
}

/* A service domain of 202 bytes (wire form): INSTANCE.web.D fits with a short instance id
 * but not with a 63-byte one (270 bytes, RFC 1035 §2.3.4 allows 255). */
Test(query, srv_target_longer_than_a_name_is_servfail_on_both_paths)
{
    char domain[256] = "", dir[] = "/tmp/dnsd-test-query-XXXXXX", err[512] = "";
    for (int i = 0; i < 3; i++)
        strcat(domain, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."); /* 63 */
    strcat(domain, "internal.");
    char ns[300], rname[300], name[300];
    snprintf(ns, sizeof(ns), "ns.%s", domain);
    snprintf(rname, sizeof(rname), "hostmaster.%s", domain);
    snprintf(name, sizeof(name), "_web._tcp.%s", domain);
    struct zonestore_apex long_apex = apex;
    long_apex.domain = domain;
    long_apex.ns_name = ns;
    long_apex.rname = rname;
    cr_assert_not_null(mkdtemp(dir));
    struct zonestore *long_zs = NULL;
    cr_assert_eq(zonestore_load(dir, &long_apex, &long_zs, err, sizeof(err)), 0, "%s", err);
    struct answers *long_ans = answers_new(domain, false);
    registry_free(reg);
    reg = registry_new(NULL, on_long_change, long_ans);
    cr_assert(long_ans && reg);
    size_t an = 0;
    put(&(struct spec){.service = "web", .id = "w1", .addrs = {"192.0.2.10"}});
    for (int full = 0; full < 2; full++) {
        cr_assert_eq(ask_srv_in(domain, long_zs, long_ans, name, full, &an), LDNS_RCODE_NOERROR);
        cr_assert_eq(an, 1);
    }
    put(&(struct spec){.service = "web",
                       .id = "w123456789012345678901234567890123456789012345678901234567890ab",
                       .addrs = {"192.0.2.11"}});
    for (int full = 0; full < 2; full++) {
        cr_assert_eq(ask_srv_in(domain, long_zs, long_ans, name, full, &an), LDNS_RCODE_SERVFAIL,
                     "full path: %d", full);
        cr_assert_eq(an, 0);
    }
    registry_free(reg);
    reg = NULL;
    answers_free(long_ans);
    zonestore_free(long_zs);
    rmdir(dir);
}
