/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for forward.c's pure core: forwarder parsing, the allow list,
 * the order of tries, reply matching, truncation and SERVFAIL. No sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <ldns/ldns.h>

#include "dnsd/error.h"
#include "forward.h"

/* Wire bytes of a query for name/type with the given ID (caller frees). */
static uint8_t *make_query(const char *name, ldns_rr_type type, uint16_t id, size_t *len)
{
    ldns_pkt *pkt = NULL;
    cr_assert_eq(ldns_pkt_query_new_frm_str(&pkt, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
                 LDNS_STATUS_OK);
    ldns_pkt_set_id(pkt, id);
    uint8_t *wire = NULL;
    cr_assert_eq(ldns_pkt2wire(&wire, pkt, len), LDNS_STATUS_OK);
    ldns_pkt_free(pkt);
    return wire;
}

/* A reply to make_query's query with one A record in the answer. */
static uint8_t *make_reply(const char *name, ldns_rr_type type, uint16_t id, size_t *len)
{
    ldns_pkt *pkt = NULL;
    cr_assert_eq(ldns_pkt_query_new_frm_str(&pkt, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
                 LDNS_STATUS_OK);
    ldns_pkt_set_id(pkt, id);
    ldns_pkt_set_qr(pkt, true);
    ldns_rr *rr = NULL;
    cr_assert_eq(ldns_rr_new_frm_str(&rr, "example.com. 1234 IN A 192.0.2.1", 0, NULL, NULL),
                 LDNS_STATUS_OK);
    ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
    uint8_t *wire = NULL;
    cr_assert_eq(ldns_pkt2wire(&wire, pkt, len), LDNS_STATUS_OK);
    ldns_pkt_free(pkt);
    return wire;
}

static struct sockaddr_storage sa(const char *host)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, host, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, host, &a->sin_addr), 1);
    }
    return ss;
}

Test(forward, server_with_port_and_default_port)
{
    struct forward_server s;
    cr_assert_eq(forward_parse_server("127.0.0.1:5353", &s), 0);
    const struct sockaddr_in *a = (const struct sockaddr_in *)&s.addr;
    cr_assert_eq(a->sin_family, AF_INET);
    cr_assert_eq(ntohs(a->sin_port), 5353);
    cr_assert_eq(ntohl(a->sin_addr.s_addr), 0x7f000001U);
    cr_assert_eq(forward_parse_server("192.0.2.7", &s), 0);
    cr_assert_eq(ntohs(a->sin_port), 53);
}

Test(forward, server_ipv6_with_and_without_brackets)
{
    struct forward_server s;
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s.addr;
    cr_assert_eq(forward_parse_server("[::1]:5300", &s), 0);
    cr_assert_eq(a->sin6_family, AF_INET6);
    cr_assert_eq(ntohs(a->sin6_port), 5300);
    cr_assert(IN6_IS_ADDR_LOOPBACK(&a->sin6_addr));
    cr_assert_eq(forward_parse_server("[2001:db8::1]", &s), 0);
    cr_assert_eq(ntohs(a->sin6_port), 53);
    cr_assert_eq(forward_parse_server("2001:db8::2", &s), 0);
    cr_assert_eq(a->sin6_family, AF_INET6);
    cr_assert_eq(ntohs(a->sin6_port), 53);
}

Test(forward, bad_servers_are_rejected)
{
    struct forward_server s;
    const char *bad[] = {"",           "dns.example:53", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:", "[::1",           "[::1]x",      "[127.0.0.1]:53",
                         "300.1.1.1",  "127.0.0.1:5x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(forward_parse_server(bad[i], &s), DNSD_EINVAL, "%s", bad[i]);
    cr_assert_eq(forward_parse_server(NULL, &s), DNSD_EINVAL);
}

Test(forward, default_allow_is_loopback_only)
{
    struct forward_config cfg;
    forward_config_init(&cfg);
    cr_assert_eq(cfg.n_servers, 0);
    cr_assert_eq(cfg.timeout_ms, 1500);
    cr_assert_eq(cfg.retries, 1);
    struct sockaddr_storage a = sa("127.0.0.1"), b = sa("127.9.8.7"), c = sa("::1"),
                            d = sa("10.0.0.1"), e = sa("2001:db8::1"), f = sa("::ffff:127.0.0.1");
    cr_assert(forward_is_allowed(&cfg, (struct sockaddr *)&a));
    cr_assert(forward_is_allowed(&cfg, (struct sockaddr *)&b));
    cr_assert(forward_is_allowed(&cfg, (struct sockaddr *)&c));
    cr_assert_not(forward_is_allowed(&cfg, (struct sockaddr *)&d));
    cr_assert_not(forward_is_allowed(&cfg, (struct sockaddr *)&e));
    cr_assert(forward_is_allowed(&cfg, (struct sockaddr *)&f), "IPv4-mapped counts as IPv4");
}

Test(forward, allow_prefix_boundaries)
{
    struct forward_config cfg;
    forward_config_init(&cfg);
    cfg.n_allow = 1;
    cr_assert_eq(netlist_parse("192.0.2.128/25", &cfg.allow[0]), 0);
    struct sockaddr_storage in = sa("192.0.2.200"), out = sa("192.0.2.127");
    cr_assert(forward_is_allowed(&cfg, (struct sockaddr *)&in));
    cr_assert_not(forward_is_allowed(&cfg, (struct sockaddr *)&out));
    cfg.n_allow = 0;
    cr_assert_not(forward_is_allowed(&cfg, (struct sockaddr *)&in), "empty allow: nobody");
}

Test(forward, sequential_tries_each_forwarder_then_goes_round)
{
    struct forward_config cfg;
    forward_config_init(&cfg);
    cfg.n_servers = 3;
    cfg.retries = 1;
    int want[] = {0, 1, 2, 0, 1, 2};
    for (uint32_t i = 0; i < 6; i++)
        cr_assert_eq(forward_pick(&cfg, 0, i), want[i], "attempt %u", i);
    cr_assert_eq(forward_pick(&cfg, 0, 6), -1, "every try used up");
    cfg.retries = 0;
    cr_assert_eq(forward_pick(&cfg, 0, 3), -1);
}

Test(forward, random_start_still_tries_every_forwarder)
{
    struct forward_config cfg;
    forward_config_init(&cfg);
    cfg.n_servers = 3;
    cfg.retries = 0;
    cr_assert_eq(forward_pick(&cfg, 2, 0), 2);
    cr_assert_eq(forward_pick(&cfg, 2, 1), 0);
    cr_assert_eq(forward_pick(&cfg, 2, 2), 1);
    cr_assert_eq(forward_pick(&cfg, 2, 3), -1);
    cfg.n_servers = 0;
    cr_assert_eq(forward_pick(&cfg, 0, 0), -1, "no forwarders");
}

Test(forward, reply_matches_id_and_question)
{
    size_t ql, rl;
    uint8_t *q = make_query("example.com.", LDNS_RR_TYPE_A, 4242, &ql);
    uint8_t *r = make_reply("EXAMPLE.com.", LDNS_RR_TYPE_A, 4242, &rl);
    cr_assert(forward_reply_matches(q, ql, r, rl), "case-insensitive name");
    free(r);
    r = make_reply("example.com.", LDNS_RR_TYPE_A, 4243, &rl);
    cr_assert_not(forward_reply_matches(q, ql, r, rl), "other ID");
    free(r);
    r = make_reply("example.org.", LDNS_RR_TYPE_A, 4242, &rl);
    cr_assert_not(forward_reply_matches(q, ql, r, rl), "other name");
    free(r);
    r = make_reply("example.com.", LDNS_RR_TYPE_AAAA, 4242, &rl);
    cr_assert_not(forward_reply_matches(q, ql, r, rl), "other type");
    free(r);
    cr_assert_not(forward_reply_matches(q, ql, q, ql), "a query is not a reply");
    r = make_reply("example.com.", LDNS_RR_TYPE_A, 4242, &rl);
    cr_assert_not(forward_reply_matches(q, ql, r, 20), "question cut short");
    free(r);
    free(q);
}

Test(forward, truncate_keeps_header_and_question)
{
    size_t ql, rl;
    uint8_t *q = make_query("example.com.", LDNS_RR_TYPE_A, 7, &ql);
    uint8_t *r = make_reply("example.com.", LDNS_RR_TYPE_A, 7, &rl);
    cr_assert_gt(rl, ql);
    size_t n = forward_truncate(r, rl);
    cr_assert_eq(n, ql, "header + question");
    cr_assert(LDNS_TC_WIRE(r));
    cr_assert(LDNS_QR_WIRE(r));
    cr_assert_eq(LDNS_ANCOUNT(r), 0);
    cr_assert_eq(LDNS_QDCOUNT(r), 1);
    cr_assert(forward_reply_matches(q, ql, r, n));
    cr_assert_eq(forward_truncate(r, 13), 0, "no whole question");
    free(r);
    free(q);
}

Test(forward, servfail_echoes_id_rd_and_question)
{
    size_t ql;
    uint8_t *q = make_query("www.example.com.", LDNS_RR_TYPE_AAAA, 999, &ql);
    uint8_t out[512];
    size_t n = forward_servfail(q, ql, out, sizeof(out));
    cr_assert_eq(n, ql);
    cr_assert_eq(LDNS_ID_WIRE(out), 999);
    cr_assert(LDNS_QR_WIRE(out));
    cr_assert(LDNS_RD_WIRE(out));
    cr_assert_not(LDNS_AA_WIRE(out));
    cr_assert_eq(LDNS_RCODE_WIRE(out), LDNS_RCODE_SERVFAIL);
    cr_assert_eq(memcmp(out + 12, q + 12, ql - 12), 0);
    cr_assert_eq(forward_servfail(q, 11, out, sizeof(out)), 0, "shorter than a header");
    n = forward_servfail(q, 12, out, sizeof(out));
    cr_assert_eq(n, 12);
    cr_assert_eq(LDNS_QDCOUNT(out), 0, "no question to echo");
    free(q);
}

Test(forward, truncate_keeps_the_opt_record)
{
    /* A reply to an EDNS query (payload 1232, DO), its OPT after an answer whose owner
     * name is compressed: the cut reply keeps the OPT, without options (RFC 6891 §7). */
    ldns_pkt *pkt = NULL;
    cr_assert_eq(
        ldns_pkt_query_new_frm_str(&pkt, "example.com.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD),
        LDNS_STATUS_OK);
    ldns_pkt_set_id(pkt, 77);
    ldns_pkt_set_qr(pkt, true);
    ldns_rr *rr = NULL;
    cr_assert_eq(ldns_rr_new_frm_str(&rr, "example.com. 60 IN A 192.0.2.1", 0, NULL, NULL),
                 LDNS_STATUS_OK);
    ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
    ldns_pkt_set_edns_udp_size(pkt, 1232);
    ldns_pkt_set_edns_do(pkt, true);
    uint8_t *wire = NULL;
    size_t len = 0;
    cr_assert_eq(ldns_pkt2wire(&wire, pkt, &len), LDNS_STATUS_OK);
    ldns_pkt_free(pkt);

    uint8_t small[20];
    cr_assert_eq(forward_truncate_copy(wire, len, small, sizeof(small)), 0, "out too small");
    size_t n = forward_truncate(wire, len);
    size_t question_end = 12 + 13 + 4; /* example.com. is 13 bytes */
    cr_assert_eq(n, question_end + 11);
    cr_assert_eq(LDNS_ARCOUNT(wire), 1);
    ldns_pkt *cut = NULL;
    cr_assert_eq(ldns_wire2pkt(&cut, wire, n), LDNS_STATUS_OK);
    cr_assert(ldns_pkt_tc(cut));
    cr_assert_eq(ldns_pkt_ancount(cut), 0);
    cr_assert_eq(ldns_pkt_edns_udp_size(cut), 1232);
    cr_assert(ldns_pkt_edns_do(cut));
    ldns_pkt_free(cut);
    free(wire);
}
