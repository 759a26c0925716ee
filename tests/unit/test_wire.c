/* SPDX-License-Identifier: BSD-2-Clause
 * Tests for wire: request parsing with defect classification, and reply rendering within a
 * size limit (TC, dropped additional RRsets, OPT and extended RCODE, compression). */
#include <criterion/criterion.h>

#include <string.h>

#include <ldns/ldns.h>

#include "dnsd/error.h"
#include "wire.h"

/* Render a query for name/type with ldns; EDNS when udp_size != 0. Caller frees *out. */
static size_t make_query(const char *name, ldns_rr_type type, uint16_t udp_size, bool dnssec_ok,
                         uint8_t **out)
{
    ldns_rdf *qname = ldns_dname_new_frm_str(name);
    cr_assert_not_null(qname);
    ldns_pkt *pkt = ldns_pkt_query_new(qname, type, LDNS_RR_CLASS_IN, LDNS_RD);
    cr_assert_not_null(pkt);
    ldns_pkt_set_id(pkt, 0x1234);
    if (udp_size) {
        ldns_pkt_set_edns_udp_size(pkt, udp_size);
        ldns_pkt_set_edns_do(pkt, dnssec_ok);
    }
    size_t len = 0;
    cr_assert_eq(ldns_pkt2wire(out, pkt, &len), LDNS_STATUS_OK);
    ldns_pkt_free(pkt);
    return len;
}

/* Append bytes to a heap message and bump the counter at count_off. */
static size_t append(uint8_t **msg, size_t len, const uint8_t *extra, size_t n, size_t count_off)
{
    uint8_t *grown = realloc(*msg, len + n);
    cr_assert_not_null(grown);
    memcpy(grown + len, extra, n);
    ldns_write_uint16(grown + count_off, (uint16_t)(ldns_read_uint16(grown + count_off) + 1));
    *msg = grown;
    return len + n;
}

static const uint8_t opt_rr[] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};

Test(wire, parses_header_question_and_edns)
{
    uint8_t *msg = NULL;
    size_t len = make_query("Web.Service.Internal.", LDNS_RR_TYPE_SRV, 1400, true, &msg);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.id, 0x1234);
    cr_assert_eq(q.opcode, LDNS_PACKET_QUERY);
    cr_assert(q.rd);
    cr_assert_not(q.qr);
    cr_assert_eq(q.defect, WIRE_DEFECT_NONE);
    cr_assert(q.has_question);
    char *text = ldns_rdf2str(q.qname);
    cr_assert_str_eq(text, "Web.Service.Internal.");
    free(text);
    cr_assert_eq(q.qtype, LDNS_RR_TYPE_SRV);
    cr_assert_eq(q.qclass, LDNS_RR_CLASS_IN);
    cr_assert(q.edns);
    cr_assert_eq(q.edns_udp_size, 1400);
    cr_assert_eq(q.edns_version, 0);
    cr_assert(q.edns_do);
    wire_query_clear(&q);
    cr_assert_null(q.qname);
    free(msg);
}

Test(wire, query_without_opt_has_no_edns)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_not(q.edns);
    cr_assert_eq(q.defect, WIRE_DEFECT_NONE);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, short_request_is_rejected)
{
    uint8_t msg[11] = {0};
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, sizeof(msg), &q), DNSD_EINVAL);
    cr_assert_not(q.has_question);
}

Test(wire, response_bit_is_reported)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    LDNS_QR_SET(msg);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert(q.qr);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, qdcount_zero_is_defect)
{
    uint8_t msg[12] = {0xab, 0xcd, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, sizeof(msg), &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QDCOUNT);
    cr_assert_not(q.has_question);
    cr_assert_eq(q.id, 0xabcd);
    cr_assert(q.rd);
}

Test(wire, qdcount_two_is_defect_without_question)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    size_t qlen = len - WIRE_HEADER_SIZE;
    uint8_t *question = malloc(qlen);
    cr_assert_not_null(question);
    memcpy(question, msg + WIRE_HEADER_SIZE, qlen);
    len = append(&msg, len, question, qlen, LDNS_QDCOUNT_OFF);
    free(question);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.qdcount, 2);
    cr_assert_eq(q.defect, WIRE_DEFECT_QDCOUNT);
    cr_assert_not(q.has_question);
    cr_assert_null(q.qname);
    free(msg);
}

Test(wire, truncated_name_is_question_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("abcdef.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, WIRE_HEADER_SIZE + 4, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QUESTION);
    cr_assert_not(q.has_question);
    /* name complete but type/class cut */
    cr_assert_eq(wire_parse_query(msg, len - 2, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QUESTION);
    cr_assert_not(q.has_question);
    free(msg);
}

Test(wire, compression_loop_is_question_defect)
{
    /* the question name is a pointer to itself */
    const uint8_t msg[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, sizeof(msg), &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QUESTION);
    cr_assert_not(q.has_question);
}

Test(wire, answer_record_is_ancount_defect_with_question)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    /* a.example. A 192.0.2.1 owner as a pointer to the question */
    const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
    len = append(&msg, len, rr, sizeof(rr), LDNS_ANCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_ANCOUNT);
    cr_assert(q.has_question);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, two_opt_records_are_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 1232, false, &msg);
    len = append(&msg, len, opt_rr, sizeof(opt_rr), LDNS_ARCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_OPT_MULTIPLE);
    cr_assert_not(q.edns);
    cr_assert(q.has_question);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, opt_with_nonroot_owner_is_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    const uint8_t rr[] = {1, 'x', 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
    len = append(&msg, len, rr, sizeof(rr), LDNS_ARCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_OPT_OWNER);
    cr_assert_not(q.edns);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, opt_outside_additional_is_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    len = append(&msg, len, opt_rr, sizeof(opt_rr), LDNS_NSCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_OPT_SECTION);
    cr_assert_not(q.edns);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, truncated_record_is_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 1232, false, &msg);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len - 3, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_RECORD);
    cr_assert_not(q.edns);
    cr_assert(q.has_question);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, trailing_bytes_are_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    uint8_t *grown = realloc(msg, len + 3);
    cr_assert_not_null(grown);
    memset(grown + len, 0xee, 3);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(grown, len + 3, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_TRAILING);
    cr_assert(q.has_question);
    wire_query_clear(&q);
    free(grown);
}

Test(wire, edns_version_is_read)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    const uint8_t rr[] = {0, 0, 41, 0x02, 0x00, 0, 1, 0, 0, 0, 0};
    len = append(&msg, len, rr, sizeof(rr), LDNS_ARCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_NONE);
    cr_assert(q.edns);
    cr_assert_eq(q.edns_version, 1);
    cr_assert_eq(q.edns_udp_size, 512);
    cr_assert_not(q.edns_do);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, opt_with_options_is_accepted)
{
    /* dig sends a client COOKIE (RFC 7873) option by default */
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    const uint8_t rr[] = {0,  0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0,
                          10, 0, 8,  1,    2,    3, 4, 5, 6, 7, 8};
    len = append(&msg, len, rr, sizeof(rr), LDNS_ARCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_NONE);
    cr_assert(q.edns);
    cr_assert_eq(q.edns_udp_size, 1232);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, udp_limit_follows_rfc6891)
{
    cr_assert_eq(wire_udp_limit(false, 4096, 1232), 512);
    cr_assert_eq(wire_udp_limit(true, 4096, 1232), 1232);
    cr_assert_eq(wire_udp_limit(true, 1000, 1232), 1000);
    cr_assert_eq(wire_udp_limit(true, 100, 1232), 512);
}

/* Parse a rendered reply back with ldns. */
static ldns_pkt *parse_reply(ldns_buffer *buf)
{
    ldns_pkt *pkt = NULL;
    cr_assert_eq(ldns_wire2pkt(&pkt, ldns_buffer_begin(buf), ldns_buffer_position(buf)),
                 LDNS_STATUS_OK);
    return pkt;
}

static ldns_rr *rr_from(const char *text)
{
    ldns_rr *rr = NULL;
    cr_assert_eq(ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL), LDNS_STATUS_OK, "%s", text);
    return rr;
}

Test(wire, renders_header_only_reply)
{
    ldns_buffer *buf = ldns_buffer_new(512);
    struct wire_reply r = {
        .id = 0xbeef, .opcode = LDNS_PACKET_QUERY, .rcode = LDNS_RCODE_FORMERR, .rd = true};
    bool tc = true;
    cr_assert_eq(wire_render(&r, 512, buf, &tc), 0);
    cr_assert_not(tc);
    cr_assert_eq(ldns_buffer_position(buf), WIRE_HEADER_SIZE);
    const uint8_t *h = ldns_buffer_begin(buf);
    cr_assert_eq(LDNS_ID_WIRE(h), 0xbeef);
    cr_assert(LDNS_QR_WIRE(h));
    cr_assert(LDNS_RD_WIRE(h));
    cr_assert_not(LDNS_AA_WIRE(h));
    cr_assert_eq(LDNS_RCODE_WIRE(h), LDNS_RCODE_FORMERR);
    cr_assert_eq(LDNS_QDCOUNT(h) + LDNS_ANCOUNT(h) + LDNS_NSCOUNT(h) + LDNS_ARCOUNT(h), 0);
    ldns_buffer_free(buf);
}

Test(wire, renders_sections_and_compresses_owner_to_question)
{
    ldns_buffer *buf = ldns_buffer_new(512);
    ldns_rdf *qname = ldns_dname_new_frm_str("WEB.example.");
    ldns_rr_list *answer = ldns_rr_list_new();
    ldns_rr_list_push_rr(answer, rr_from("web.example. 30 IN A 192.0.2.1"));
    ldns_rr_list *authority = ldns_rr_list_new();
    ldns_rr_list_push_rr(authority, rr_from("example. 60 IN NS ns.example."));
    ldns_rr_list *additional = ldns_rr_list_new();
    ldns_rr_list_push_rr(additional, rr_from("ns.example. 60 IN A 192.0.2.53"));
    struct wire_reply r = {.id = 7,
                           .rcode = LDNS_RCODE_NOERROR,
                           .aa = true,
                           .qname = qname,
                           .qtype = LDNS_RR_TYPE_A,
                           .qclass = LDNS_RR_CLASS_IN,
                           .answer = answer,
                           .authority = authority,
                           .additional = additional};
    cr_assert_eq(wire_render(&r, 512, buf, NULL), 0);
    /* the answer's owner is a pointer to the question name at offset 12 */
    const uint8_t *msg = ldns_buffer_begin(buf);
    size_t answer_at = WIRE_HEADER_SIZE + ldns_rdf_size(qname) + 4;
    cr_assert_eq(msg[answer_at], 0xc0);
    cr_assert_eq(msg[answer_at + 1], 12);
    ldns_pkt *pkt = parse_reply(buf);
    cr_assert(ldns_pkt_aa(pkt));
    cr_assert(ldns_pkt_qr(pkt));
    cr_assert_eq(ldns_pkt_ancount(pkt), 1);
    cr_assert_eq(ldns_pkt_nscount(pkt), 1);
    cr_assert_eq(ldns_pkt_arcount(pkt), 1);
    cr_assert_eq(
        ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(pkt), 0)), qname), 0);
    cr_assert_eq(
        ldns_rr_compare(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0), ldns_rr_list_rr(answer, 0)), 0);
    ldns_pkt_free(pkt);
    ldns_rr_list_deep_free(answer);
    ldns_rr_list_deep_free(authority);
    ldns_rr_list_deep_free(additional);
    ldns_rdf_deep_free(qname);
    ldns_buffer_free(buf);
}

Test(wire, answer_too_large_sets_tc_and_keeps_question_and_opt)
{
    ldns_buffer *buf = ldns_buffer_new(512);
    ldns_rdf *qname = ldns_dname_new_frm_str("many.example.");
    ldns_rr_list *answer = ldns_rr_list_new();
    for (int i = 0; i < 60; i++) {
        char text[128];
        snprintf(text, sizeof(text), "many.example. 30 IN TXT \"record number %02d of many\"", i);
        ldns_rr_list_push_rr(answer, rr_from(text));
    }
    struct wire_reply r = {.id = 9,
                           .aa = true,
                           .qname = qname,
                           .qtype = LDNS_RR_TYPE_TXT,
                           .qclass = LDNS_RR_CLASS_IN,
                           .edns = true,
                           .edns_udp_size = 1232,
                           .answer = answer};
    bool tc = false;
    cr_assert_eq(wire_render(&r, 512, buf, &tc), 0);
    cr_assert(tc);
    cr_assert_leq(ldns_buffer_position(buf), 512);
    ldns_pkt *pkt = parse_reply(buf);
    cr_assert(ldns_pkt_tc(pkt));
    cr_assert_eq(ldns_pkt_qdcount(pkt), 1);
    cr_assert_eq(ldns_pkt_ancount(pkt), 0);
    cr_assert(ldns_pkt_edns(pkt));
    cr_assert_eq(ldns_pkt_edns_udp_size(pkt), 1232);
    ldns_pkt_free(pkt);
    /* the same reply fits in a TCP-sized limit */
    cr_assert_eq(wire_render(&r, WIRE_TCP_MAX, buf, &tc), 0);
    cr_assert_not(tc);
    pkt = parse_reply(buf);
    cr_assert_eq(ldns_pkt_ancount(pkt), 60);
    ldns_pkt_free(pkt);
    ldns_rr_list_deep_free(answer);
    ldns_rdf_deep_free(qname);
    ldns_buffer_free(buf);
}

Test(wire, additional_rrsets_are_dropped_whole_without_tc)
{
    ldns_buffer *buf = ldns_buffer_new(512);
    ldns_rdf *qname = ldns_dname_new_frm_str("_x._tcp.example.");
    ldns_rr_list *answer = ldns_rr_list_new();
    ldns_rr_list *additional = ldns_rr_list_new();
    for (int i = 0; i < 8; i++) {
        char text[160];
        snprintf(text, sizeof(text), "_x._tcp.example. 30 IN SRV 0 1 80 host-%d.example.", i);
        ldns_rr_list_push_rr(answer, rr_from(text));
        for (int j = 0; j < 2; j++) {
            snprintf(text, sizeof(text), "host-%d.example. 30 IN AAAA 2001:db8::%d:%d", i, i, j);
            ldns_rr_list_push_rr(additional, rr_from(text));
        }
    }
    struct wire_reply r = {.qname = qname,
                           .qtype = LDNS_RR_TYPE_SRV,
                           .qclass = LDNS_RR_CLASS_IN,
                           .answer = answer,
                           .additional = additional};
    bool tc = true;
    cr_assert_eq(wire_render(&r, 512, buf, &tc), 0);
    cr_assert_not(tc);
    cr_assert_leq(ldns_buffer_position(buf), 512);
    ldns_pkt *pkt = parse_reply(buf);
    cr_assert_eq(ldns_pkt_ancount(pkt), 8);
    size_t ar = ldns_pkt_arcount(pkt);
    cr_assert_gt(ar, 0);
    cr_assert_lt(ar, 16);
    cr_assert_eq(ar % 2, 0, "RRsets are kept whole, got %zu records", ar);
    for (size_t i = 0; i < ar; i++)
        cr_assert_eq(ldns_rr_compare(ldns_rr_list_rr(ldns_pkt_additional(pkt), i),
                                     ldns_rr_list_rr(additional, i)),
                     0);
    ldns_pkt_free(pkt);
    ldns_rr_list_deep_free(answer);
    ldns_rr_list_deep_free(additional);
    ldns_rdf_deep_free(qname);
    ldns_buffer_free(buf);
}

Test(wire, extended_rcode_goes_into_opt)
{
    ldns_buffer *buf = ldns_buffer_new(512);
    struct wire_reply r = {
        .rcode = WIRE_RCODE_BADVERS, .edns = true, .edns_udp_size = 1232, .edns_do = true};
    cr_assert_eq(wire_render(&r, 512, buf, NULL), 0);
    cr_assert_eq(ldns_buffer_position(buf), WIRE_HEADER_SIZE + WIRE_OPT_SIZE);
    ldns_pkt *pkt = parse_reply(buf);
    cr_assert_eq(ldns_pkt_get_rcode(pkt), 0);
    cr_assert_eq(ldns_pkt_edns_extended_rcode(pkt), 1);
    cr_assert_eq(ldns_pkt_edns_version(pkt), 0);
    cr_assert(ldns_pkt_edns_do(pkt));
    ldns_pkt_free(pkt);
    ldns_buffer_free(buf);
}

Test(wire, limit_below_question_is_range_error)
{
    ldns_buffer *buf = ldns_buffer_new(64);
    ldns_rdf *qname = ldns_dname_new_frm_str("a.example.");
    struct wire_reply r = {.qname = qname, .qtype = LDNS_RR_TYPE_A, .qclass = LDNS_RR_CLASS_IN};
    cr_assert_eq(wire_render(&r, 20, buf, NULL), DNSD_ERANGE);
    cr_assert_eq(ldns_buffer_position(buf), 0);
    ldns_rdf_deep_free(qname);
    ldns_buffer_free(buf);
}

Test(wire, forward_compression_pointer_is_question_defect)
{
    /* the question name points forward to "www" after the question (RFC 1035 §4.1.4: a
     * pointer refers to a prior occurrence) */
    const uint8_t msg[] = {0,    1,  0, 0, 0, 1, 0, 0,   0,   0,   0, 0,
                           0xc0, 18, 0, 1, 0, 1, 3, 'w', 'w', 'w', 0};
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, sizeof(msg), &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QUESTION);
    cr_assert_not(q.has_question);
    cr_assert_null(q.qname);
}

Test(wire, compression_pointer_into_header_is_question_defect)
{
    /* offset 4 holds QDCOUNT (0, 1): it would read as a one-byte label of the header */
    const uint8_t msg[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 4, 0, 1, 0, 1};
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, sizeof(msg), &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QUESTION);
    cr_assert_not(q.has_question);
}

Test(wire, backward_compression_pointer_is_accepted)
{
    /* two questions, the second one compressed against the first: legal compression, so
     * the only defect is the question count */
    const uint8_t msg[] = {0, 1,   0, 0,   0,   2,    0,   0,   0,   0,   0, 0,
                           1, 'a', 7, 'e', 'x', 'a',  'm', 'p', 'l', 'e', 0, 0,
                           1, 0,   1, 1,   'b', 0xc0, 14,  0,   1,   0,   1};
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, sizeof(msg), &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QDCOUNT);
}

Test(wire, overlong_opt_option_is_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    /* RDLENGTH 4 holds one option header claiming 20 bytes of data */
    const uint8_t rr[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 20};
    len = append(&msg, len, rr, sizeof(rr), LDNS_ARCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_OPT_OPTIONS);
    cr_assert_not(q.edns);
    cr_assert(q.has_question);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, partial_opt_option_header_is_defect)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    /* one complete empty option, then two stray bytes */
    const uint8_t rr[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 6, 0xfd, 0xe9, 0, 0, 1, 2};
    len = append(&msg, len, rr, sizeof(rr), LDNS_ARCOUNT_OFF);
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, len, &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_OPT_OPTIONS);
    cr_assert_not(q.edns);
    wire_query_clear(&q);
    free(msg);
}

Test(wire, malformed_opt_after_earlier_defect_gives_no_edns)
{
    /* no question (the first defect, QDCOUNT), then an OPT whose option overruns it */
    const uint8_t msg[] = {0,  1,    0,    0, 0, 0, 0, 0, 0, 0, 0,  1, 0, 0,
                           41, 0x04, 0xd0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 20};
    struct wire_query q;
    wire_query_init(&q);
    cr_assert_eq(wire_parse_query(msg, sizeof(msg), &q), 0);
    cr_assert_eq(q.defect, WIRE_DEFECT_QDCOUNT);
    cr_assert_not(q.edns);
    cr_assert_eq(q.edns_udp_size, 0);
}

/* ---- wire_parse_plain: the hot path's reader ---- */

Test(wire, plain_query_is_read_in_place)
{
    uint8_t *msg = NULL;
    size_t len = make_query("web.service.internal.", LDNS_RR_TYPE_SRV, 1232, true, &msg);
    struct wire_plain_query q;
    cr_assert(wire_parse_plain(msg, len, &q));
    cr_assert_eq(q.question, msg + WIRE_HEADER_SIZE, "points into the request");
    cr_assert_eq(q.qname_len, 22, "web.service.internal. with its root byte");
    cr_assert_eq(q.qtype, LDNS_RR_TYPE_SRV);
    cr_assert(q.edns);
    cr_assert_eq(q.edns_udp_size, 1232);
    cr_assert(q.edns_do);
    free(msg);
    len = make_query("web.service.internal.", LDNS_RR_TYPE_A, 0, false, &msg);
    cr_assert(wire_parse_plain(msg, len, &q));
    cr_assert_not(q.edns);
    free(msg);
}

Test(wire, plain_reader_leaves_everything_else_to_the_full_parser)
{
    uint8_t *msg = NULL;
    size_t len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    struct wire_plain_query q;
    cr_assert_not(wire_parse_plain(msg, 11, &q), "shorter than a header");
    cr_assert_not(wire_parse_plain(msg, len - 1, &q), "question cut short");
    /* EDNS version 1: BADVERS is the full path's answer. */
    const uint8_t v1[] = {0, 0, 41, 0x02, 0x00, 0, 1, 0, 0, 0, 0};
    uint8_t *with_v1 = malloc(len);
    cr_assert_not_null(with_v1);
    memcpy(with_v1, msg, len);
    size_t len_v1 = append(&with_v1, len, v1, sizeof(v1), LDNS_ARCOUNT_OFF);
    cr_assert_not(wire_parse_plain(with_v1, len_v1, &q), "EDNS version 1");
    free(with_v1);
    /* An OPT whose RDLENGTH runs past the end. */
    const uint8_t bad_opt[] = {0, 0, 41, 0x02, 0x00, 0, 0, 0, 0, 0, 8, 0, 10};
    len = append(&msg, len, bad_opt, sizeof(bad_opt), LDNS_ARCOUNT_OFF);
    cr_assert_not(wire_parse_plain(msg, len, &q), "OPT options cut short");
    free(msg);
    /* A compression pointer in the question, and trailing bytes. */
    len = make_query("a.example.", LDNS_RR_TYPE_A, 0, false, &msg);
    uint8_t ptr[] = {0xc0, 0x0c};
    uint8_t *comp = malloc(WIRE_HEADER_SIZE + sizeof(ptr) + 4);
    cr_assert_not_null(comp);
    memcpy(comp, msg, WIRE_HEADER_SIZE);
    memcpy(comp + WIRE_HEADER_SIZE, ptr, sizeof(ptr));
    memcpy(comp + WIRE_HEADER_SIZE + sizeof(ptr), msg + len - 4, 4);
    cr_assert_not(wire_parse_plain(comp, WIRE_HEADER_SIZE + sizeof(ptr) + 4, &q),
                  "compressed question name");
    free(comp);
    uint8_t *longer = realloc(msg, len + 1);
    cr_assert_not_null(longer);
    longer[len] = 0;
    cr_assert_not(wire_parse_plain(longer, len + 1, &q), "a trailing byte");
    free(longer);
}
