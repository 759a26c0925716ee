/* SPDX-License-Identifier: BSD-2-Clause
 * DNS message parsing and building on top of ldns: a request becomes header fields, the
 * question and its EDNS information (with the exact reason when it is malformed); a reply
 * is rendered within a size limit (TC when the answer does not fit, additional records
 * dropped silently). ldns_status never leaves this module. No I/O, no policy: which RCODE
 * to send is query's decision.
 * Loop: any thread; no shared state. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

/* The size of a DNS header (RFC 1035 §4.1.1). */
#define WIRE_HEADER_SIZE 12
/* Without EDNS a UDP message carries at most 512 bytes (RFC 1035 §4.2.1). */
#define WIRE_UDP_MIN 512
/* Over TCP a message carries at most 65535 bytes (RFC 7766 §8). */
#define WIRE_TCP_MAX 65535
/* The OPT record we send: root owner, no options (RFC 6891 §6.1.2). */
#define WIRE_OPT_SIZE 11
/* Extended RCODE BADVERS (RFC 6891 §9): upper 8 bits go in the OPT record. */
#define WIRE_RCODE_BADVERS 16

/* Why a request is malformed. When there are several, the most specific is reported:
 * QDCOUNT, then QUESTION, then a record-level defect (RECORD, OPT_*), then ANCOUNT, then
 * TRAILING. */
enum wire_defect {
    WIRE_DEFECT_NONE = 0,
    WIRE_DEFECT_QDCOUNT,      /* QDCOUNT is not 1 */
    WIRE_DEFECT_QUESTION,     /* the question's name is malformed (including a compression
                                 pointer that does not point back to an earlier name, RFC 1035
                                 §4.1.4) or the question truncated */
    WIRE_DEFECT_ANCOUNT,      /* answer or authority section not empty */
    WIRE_DEFECT_RECORD,       /* a record after the question is malformed or truncated */
    WIRE_DEFECT_OPT_MULTIPLE, /* more than one OPT record (RFC 6891 §6.1.1) */
    WIRE_DEFECT_OPT_OWNER,    /* OPT owner is not the root (RFC 6891 §6.1.2) */
    WIRE_DEFECT_OPT_SECTION,  /* OPT outside the additional section (RFC 6891 §6.1.1) */
    WIRE_DEFECT_OPT_OPTIONS,  /* OPT options do not exactly fill its RDATA (RFC 6891 §6.1.2) */
    WIRE_DEFECT_TRAILING,     /* bytes left after the last record */
};

/* A parsed request. Storage is the caller's: wire_query_init, then wire_parse_query (any
 * number of times), then wire_query_clear. */
struct wire_query {
    /* header (always valid after a successful parse) */
    uint16_t id;
    uint8_t opcode; /* 0..15; LDNS_PACKET_QUERY is 0 */
    bool qr, rd, cd;
    uint16_t qdcount, ancount, nscount, arcount;
    enum wire_defect defect;
    /* question: valid when has_question (QDCOUNT is 1 and the question parsed) */
    bool has_question;
    ldns_rdf *qname; /* owned; spelled exactly as sent; NULL unless has_question */
    ldns_rr_type qtype;
    ldns_rr_class qclass;
    /* EDNS: valid when edns (exactly one well-formed OPT in the additional section) */
    bool edns;
    uint16_t edns_udp_size; /* the requestor's payload size, as sent */
    uint8_t edns_version;
    bool edns_do;
};

void wire_query_init(struct wire_query *q);
/* Free what q owns and reset it to the initial state. */
void wire_query_clear(struct wire_query *q);

/* Read the request in req[0..len) into q (cleared first). A malformed message still
 * succeeds: q->defect says what is wrong and the header fields are set; the question is
 * kept (has_question) whenever QDCOUNT is 1 and the question itself parsed.
 * Returns: 0, DNSD_EINVAL (shorter than a header; q is only cleared), DNSD_ENOMEM. */
int wire_parse_query(const uint8_t *req, size_t len, struct wire_query *q);

/* A reply to render. */
struct wire_reply {
    uint16_t id;
    uint8_t opcode;
    uint16_t rcode; /* 12-bit: low 4 bits in the header, upper 8 bits in OPT (if edns) */
    bool aa, rd;
    const ldns_rdf *qname; /* borrowed; NULL: no question section (header-only reply) */
    ldns_rr_type qtype;
    ldns_rr_class qclass;
    bool edns;                      /* add an OPT record */
    uint16_t edns_udp_size;         /* our payload size, announced in OPT */
    bool edns_do;                   /* DO bit copied from the request (RFC 3225 §3) */
    const ldns_rr_list *answer;     /* borrowed; NULL = empty */
    const ldns_rr_list *authority;  /* borrowed; NULL = empty */
    const ldns_rr_list *additional; /* borrowed; NULL = empty; OPT is added by the renderer */
};

/* Render r into out (cleared first) in at most limit bytes (limit >= WIRE_HEADER_SIZE +
 * question + OPT). When answer plus authority do not fit, the reply is sent with TC set and
 * empty answer, authority and additional sections (RFC 2181 §9); additional RRsets that do
 * not fit are dropped whole from the end, without TC. Names are compressed (case-insensitive,
 * so an owner equal to the question points at the question's spelling).
 * Returns: 0 with the message in ldns_buffer_begin(out), ldns_buffer_position(out) bytes,
 * and *truncated (if non-NULL) telling whether TC was set; DNSD_ERANGE (header, question and
 * OPT alone exceed limit), DNSD_ENOMEM. out is left empty on failure. */
int wire_render(const struct wire_reply *r, size_t limit, ldns_buffer *out, bool *truncated);

/* The UDP payload limit for a reply: 512 without EDNS, else the requestor's size clamped
 * to [512, our_max] (RFC 6891 §6.2.5). */
size_t wire_udp_limit(bool edns, uint16_t client_size, uint16_t our_max);

/* A plain request, read straight from its bytes for query.c's hot path. */
struct wire_plain_query {
    const uint8_t *question; /* borrowed from the request: name, type, class */
    size_t qname_len;        /* uncompressed, root byte included */
    uint16_t qtype;
    bool edns;
    uint16_t edns_udp_size;
    bool edns_do;
};

/* Read req as a plain request: QUERY, one question with an uncompressed name of class IN,
 * empty answer and authority sections, at most one well-formed version-0 OPT as the only
 * additional record, and nothing after it. Anything else, including every malformed
 * request, gives false: wire_parse_query judges those.
 * Returns: true and *out filled (pointing into req). */
bool wire_parse_plain(const uint8_t *req, size_t len, struct wire_plain_query *out);
