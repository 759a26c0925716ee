/* SPDX-License-Identifier: BSD-2-Clause
 * DNS message parsing and rendering with ldns. Requests are walked record by record with
 * ldns_wire2dname/ldns_wire2rr so each defect gets its own reason; replies are written
 * record by record with ldns' compressing writers so the size limit is applied exactly.
 * A plain request for the hot path is read straight from its bytes instead, without ldns.
 * ldns_status is translated here and never returned. No I/O, no RCODE policy. */
#include "wire.h"

#include <string.h>

#include "dnsd/error.h"

void wire_query_init(struct wire_query *q)
{
    memset(q, 0, sizeof(*q));
}

void wire_query_clear(struct wire_query *q)
{
    ldns_rdf_deep_free(q->qname);
    wire_query_init(q);
}

/* Remember the most specific defect only: the first one set wins. */
static void set_defect(struct wire_query *q, enum wire_defect defect)
{
    if (q->defect == WIRE_DEFECT_NONE)
        q->defect = defect;
}

/* RFC 1035 §4.1.4: a pointer refers to a prior occurrence of a name. Each pointer must
 * point past the header and before the start of the labels it continues, so pointers go
 * strictly backwards and cannot loop; ldns_wire2dname also follows forward pointers and
 * pointers into the header, which would echo bytes the client never sent as a name. */
static bool pointers_go_back(const uint8_t *req, size_t len, size_t pos)
{
    size_t start = pos;
    while (pos < len) {
        uint8_t b = req[pos];
        if (b == 0)
            return true;
        if ((b & 0xc0U) == 0xc0U) {
            if (len - pos < 2)
                return false;
            size_t target = ((size_t)(b & 0x3fU) << 8) | req[pos + 1];
            if (target < WIRE_HEADER_SIZE || target >= start)
                return false;
            start = pos = target;
        } else if ((b & 0xc0U) != 0) {
            return false; /* extended label types (RFC 6891 §5) */
        } else {
            pos += 1 + (size_t)b;
        }
    }
    return false;
}

/* Read the question section; returns 0, DNSD_ENOMEM, or 1 when it is malformed. */
static int parse_questions(const uint8_t *req, size_t len, size_t *pos, struct wire_query *q)
{
    for (uint16_t i = 0; i < q->qdcount; i++) {
        ldns_rdf *name = NULL;
        if (!pointers_go_back(req, len, *pos))
            return 1;
        ldns_status st = ldns_wire2dname(&name, req, len, pos);
        if (st == LDNS_STATUS_MEM_ERR)
            return DNSD_ENOMEM;
        if (st != LDNS_STATUS_OK)
            return 1;
        if (len - *pos < 4) {
            ldns_rdf_deep_free(name);
            return 1;
        }
        ldns_rr_type type = (ldns_rr_type)ldns_read_uint16(req + *pos);
        ldns_rr_class class = (ldns_rr_class)ldns_read_uint16(req + *pos + 2);
        *pos += 4;
        if (q->qdcount == 1) {
            q->qname = name;
            q->qtype = type;
            q->qclass = class;
            q->has_question = true;
        } else {
            ldns_rdf_deep_free(name);
        }
    }
    return 0;
}

/* Take the EDNS fields from an OPT record (RFC 6891 §6.1.3). */
static void read_opt(const ldns_rr *rr, struct wire_query *q)
{
    uint32_t ttl = ldns_rr_ttl(rr);
    q->edns_udp_size = (uint16_t)ldns_rr_get_class(rr);
    q->edns_version = (uint8_t)(ttl >> 16);
    q->edns_do = (ttl & 0x8000U) != 0;
}

/* RDLENGTH of the OPT record that ldns has parsed from req at start: its owner is the root,
 * written as one zero byte or as a two-byte pointer to one. */
static size_t opt_rdlength(const uint8_t *req, size_t start)
{
    size_t fixed = start + (req[start] == 0 ? 1 : 2);
    return ldns_read_uint16(req + fixed + 8);
}

/* Do the options in rdata[0..len) exactly fill it, each a code, a length and that many
 * bytes (RFC 6891 §6.1.2)? Unknown option codes are fine: they are ignored (§6.1.2). */
static bool opt_options_are_framed(const uint8_t *rdata, size_t len)
{
    size_t off = 0;
    while (len - off >= 4) {
        size_t opt_len = ldns_read_uint16(rdata + off + 2);
        if (len - off - 4 < opt_len)
            return false;
        off += 4 + opt_len;
    }
    return off == len;
}

/* Classify one OPT record that ldns parsed from req at start; returns whether it is
 * well-formed (its fields are then in q). */
static bool check_opt(const uint8_t *req, size_t start, size_t end, const ldns_rr *rr,
                      ldns_pkt_section section, size_t n_opt, struct wire_query *q)
{
    enum wire_defect defect = WIRE_DEFECT_NONE;
    if (section != LDNS_SECTION_ADDITIONAL)
        defect = WIRE_DEFECT_OPT_SECTION;
    else if (n_opt > 1)
        defect = WIRE_DEFECT_OPT_MULTIPLE;
    else if (ldns_dname_label_count(ldns_rr_owner(rr)) != 0)
        defect = WIRE_DEFECT_OPT_OWNER;
    else if (!opt_options_are_framed(req + end - opt_rdlength(req, start),
                                     opt_rdlength(req, start)))
        defect = WIRE_DEFECT_OPT_OPTIONS;
    if (defect != WIRE_DEFECT_NONE) {
        set_defect(q, defect);
        return false;
    }
    read_opt(rr, q);
    return true;
}

/* Read the records after the question; returns 0, DNSD_ENOMEM, or 1 when one is malformed.
 * *opt_ok tells whether there is exactly one OPT and it is well-formed. */
static int parse_records(const uint8_t *req, size_t len, size_t *pos, struct wire_query *q,
                         bool *opt_ok)
{
    static const ldns_pkt_section sections[] = {LDNS_SECTION_ANSWER, LDNS_SECTION_AUTHORITY,
                                                LDNS_SECTION_ADDITIONAL};
    const uint16_t counts[] = {q->ancount, q->nscount, q->arcount};
    size_t n_opt = 0;
    bool all_ok = true;

    *opt_ok = false;
    for (size_t s = 0; s < 3; s++) {
        for (uint16_t i = 0; i < counts[s]; i++) {
            ldns_rr *rr = NULL;
            size_t start = *pos;
            ldns_status st = ldns_wire2rr(&rr, req, len, pos, sections[s]);
            if (st == LDNS_STATUS_MEM_ERR)
                return DNSD_ENOMEM;
            if (st != LDNS_STATUS_OK)
                return 1;
            if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_OPT)
                all_ok &= check_opt(req, start, *pos, rr, sections[s], ++n_opt, q);
            ldns_rr_free(rr);
        }
    }
    *opt_ok = n_opt == 1 && all_ok;
    return 0;
}

int wire_parse_query(const uint8_t *req, size_t len, struct wire_query *q)
{
    wire_query_clear(q);
    if (len < WIRE_HEADER_SIZE)
        return DNSD_EINVAL;

    q->id = LDNS_ID_WIRE(req);
    q->qr = LDNS_QR_WIRE(req) != 0;
    q->opcode = (uint8_t)LDNS_OPCODE_WIRE(req);
    q->rd = LDNS_RD_WIRE(req) != 0;
    q->cd = LDNS_CD_WIRE(req) != 0;
    q->qdcount = LDNS_QDCOUNT(req);
    q->ancount = LDNS_ANCOUNT(req);
    q->nscount = LDNS_NSCOUNT(req);
    q->arcount = LDNS_ARCOUNT(req);

    size_t pos = WIRE_HEADER_SIZE;
    if (q->qdcount != 1)
        set_defect(q, WIRE_DEFECT_QDCOUNT);
    int rc = parse_questions(req, len, &pos, q);
    if (rc < 0)
        goto fail;
    if (rc > 0) {
        set_defect(q, WIRE_DEFECT_QUESTION);
        return 0;
    }

    bool opt_ok = false;
    rc = parse_records(req, len, &pos, q, &opt_ok);
    if (rc < 0)
        goto fail;
    if (rc > 0)
        set_defect(q, WIRE_DEFECT_RECORD);
    if (q->ancount != 0 || q->nscount != 0)
        set_defect(q, WIRE_DEFECT_ANCOUNT);
    if (rc == 0 && pos != len)
        set_defect(q, WIRE_DEFECT_TRAILING);
    /* RFC 6891 §7: a malformed OPT gets FORMERR without one. */
    q->edns = rc == 0 && opt_ok;
    if (!q->edns) {
        q->edns_udp_size = 0;
        q->edns_version = 0;
        q->edns_do = false;
    }
    return 0;

fail:
    wire_query_clear(q);
    return DNSD_ENOMEM;
}

size_t wire_udp_limit(bool edns, uint16_t client_size, uint16_t our_max)
{
    if (!edns)
        return WIRE_UDP_MIN;
    size_t size = client_size < our_max ? client_size : our_max;
    return size < WIRE_UDP_MIN ? WIRE_UDP_MIN : size;
}

/* Free one compression-tree node: ldns stores a clone of the name as the key. */
static void free_compression_node(ldns_rbnode_t *node, void *arg)
{
    (void)arg;
    ldns_rdf_deep_free((ldns_rdf *)(uintptr_t)node->key);
    LDNS_FREE(node);
}

static void free_compression(ldns_rbtree_t *tree)
{
    if (!tree)
        return;
    ldns_traverse_postorder(tree, free_compression_node, NULL);
    ldns_rbtree_free(tree);
}

/* Write the records of list; stops once the message passes stop_at. Returns the number
 * written, or -1 when out of memory. */
static long write_list(ldns_buffer *out, const ldns_rr_list *list, int section, ldns_rbtree_t *tree,
                       size_t stop_at)
{
    size_t n = list ? ldns_rr_list_rr_count(list) : 0;
    long written = 0;
    for (size_t i = 0; i < n && ldns_buffer_position(out) <= stop_at; i++) {
        if (ldns_rr2buffer_wire_compress(out, ldns_rr_list_rr(list, i), section, tree) !=
            LDNS_STATUS_OK)
            return -1;
        written++;
    }
    return written;
}

/* Is b in the same RRset as a (owner, type, class)? */
static bool same_rrset(const ldns_rr *a, const ldns_rr *b)
{
    return ldns_rr_get_type(a) == ldns_rr_get_type(b) &&
           ldns_rr_get_class(a) == ldns_rr_get_class(b) &&
           ldns_dname_compare(ldns_rr_owner(a), ldns_rr_owner(b)) == 0;
}

/* Write as many whole additional RRsets as fit in limit; returns the count or -1. */
static long write_additional(ldns_buffer *out, const ldns_rr_list *list, ldns_rbtree_t *tree,
                             size_t limit)
{
    size_t n = list ? ldns_rr_list_rr_count(list) : 0;
    size_t set_start = ldns_buffer_position(out);
    long set_first = 0;
    for (size_t i = 0; i < n; i++) {
        const ldns_rr *rr = ldns_rr_list_rr(list, i);
        if (i == 0 || !same_rrset(ldns_rr_list_rr(list, i - 1), rr)) {
            set_start = ldns_buffer_position(out);
            set_first = (long)i;
        }
        if (ldns_rr2buffer_wire_compress(out, rr, LDNS_SECTION_ADDITIONAL, tree) != LDNS_STATUS_OK)
            return -1;
        if (ldns_buffer_position(out) > limit) {
            /* RFC 2181 §9: omit the whole RRset; later names are never written, so the
             * compression entries pointing past the cut are never used. */
            ldns_buffer_set_position(out, set_start);
            return set_first;
        }
    }
    return (long)n;
}

/* Append our OPT record (RFC 6891 §6.1.2): root owner, our payload size, the upper 8 bits
 * of the RCODE, version 0, the DO bit, no options. */
static int write_opt(ldns_buffer *out, const struct wire_reply *r)
{
    if (!ldns_buffer_reserve(out, WIRE_OPT_SIZE))
        return DNSD_ENOMEM;
    ldns_buffer_write_u8(out, 0);
    ldns_buffer_write_u16(out, LDNS_RR_TYPE_OPT);
    ldns_buffer_write_u16(out, r->edns_udp_size);
    ldns_buffer_write_u8(out, (uint8_t)(r->rcode >> 4));
    ldns_buffer_write_u8(out, 0);
    ldns_buffer_write_u16(out, r->edns_do ? 0x8000U : 0);
    ldns_buffer_write_u16(out, 0);
    return 0;
}

/* Fill in the header now that the counts are known. */
static void write_header(ldns_buffer *out, const struct wire_reply *r, bool tc, uint16_t qd,
                         uint16_t an, uint16_t ns, uint16_t ar)
{
    uint8_t *h = ldns_buffer_begin(out);
    memset(h, 0, WIRE_HEADER_SIZE);
    LDNS_ID_SET(h, r->id);
    LDNS_QR_SET(h);
    LDNS_OPCODE_SET(h, (uint8_t)(r->opcode & 0x0fU));
    if (r->aa)
        LDNS_AA_SET(h);
    if (tc)
        LDNS_TC_SET(h);
    if (r->rd)
        LDNS_RD_SET(h);
    LDNS_RCODE_SET(h, (uint8_t)(r->rcode & 0x0fU));
    ldns_write_uint16(h + LDNS_QDCOUNT_OFF, qd);
    ldns_write_uint16(h + LDNS_ANCOUNT_OFF, an);
    ldns_write_uint16(h + LDNS_NSCOUNT_OFF, ns);
    ldns_write_uint16(h + LDNS_ARCOUNT_OFF, ar);
}

int wire_render(const struct wire_reply *r, size_t limit, ldns_buffer *out, bool *truncated)
{
    int rc = DNSD_ENOMEM;
    size_t opt_len = r->edns ? WIRE_OPT_SIZE : 0;
    long an = 0, ns = 0, ar = 0;
    uint16_t qd = 0;
    bool tc = false;

    ldns_buffer_clear(out);
    ldns_rbtree_t *tree =
        ldns_rbtree_create((int (*)(const void *, const void *))ldns_dname_compare);
    if (!tree || !ldns_buffer_reserve(out, WIRE_HEADER_SIZE))
        goto fail;
    ldns_buffer_skip(out, WIRE_HEADER_SIZE);
    if (r->qname) {
        if (ldns_dname2buffer_wire_compress(out, r->qname, tree) != LDNS_STATUS_OK ||
            !ldns_buffer_reserve(out, 4))
            goto fail;
        ldns_buffer_write_u16(out, (uint16_t)r->qtype);
        ldns_buffer_write_u16(out, (uint16_t)r->qclass);
        qd = 1;
    }
    size_t base = ldns_buffer_position(out);
    if (limit < opt_len || base > limit - opt_len) {
        rc = DNSD_ERANGE;
        goto fail;
    }
    size_t room = limit - opt_len;

    an = write_list(out, r->answer, LDNS_SECTION_ANSWER, tree, room);
    if (an >= 0)
        ns = write_list(out, r->authority, LDNS_SECTION_AUTHORITY, tree, room);
    if (an < 0 || ns < 0)
        goto fail;
    size_t n_an = r->answer ? ldns_rr_list_rr_count(r->answer) : 0;
    size_t n_ns = r->authority ? ldns_rr_list_rr_count(r->authority) : 0;
    if (ldns_buffer_position(out) > room || (size_t)an != n_an || (size_t)ns != n_ns) {
        /* RFC 2181 §9 / RFC 1035 §4.1.1: required data does not fit: TC, no records. */
        ldns_buffer_set_position(out, base);
        an = ns = 0;
        tc = true;
    } else {
        ar = write_additional(out, r->additional, tree, room);
        if (ar < 0)
            goto fail;
    }
    if (r->edns) {
        if (write_opt(out, r) != 0)
            goto fail;
        ar++;
    }
    write_header(out, r, tc, qd, (uint16_t)an, (uint16_t)ns, (uint16_t)ar);
    free_compression(tree);
    if (truncated)
        *truncated = tc;
    return 0;

fail:
    free_compression(tree);
    ldns_buffer_clear(out);
    return rc;
}

/* The hot path's reader: no ldns, no allocation; every bound checked before a read. */
bool wire_parse_plain(const uint8_t *req, size_t len, struct wire_plain_query *out)
{
    if (len < WIRE_HEADER_SIZE || LDNS_OPCODE_WIRE(req) != LDNS_PACKET_QUERY ||
        LDNS_QDCOUNT(req) != 1 || LDNS_ANCOUNT(req) != 0 || LDNS_NSCOUNT(req) != 0 ||
        LDNS_ARCOUNT(req) > 1)
        return false;
    struct wire_plain_query q = {0}; /* *out is written only on success */
    size_t pos = WIRE_HEADER_SIZE;
    while (pos < len && req[pos] != 0) {
        if (req[pos] > LDNS_MAX_LABELLEN)
            return false; /* a pointer or an extended label type */
        pos += 1 + (size_t)req[pos];
    }
    if (pos >= len || pos + 1 - WIRE_HEADER_SIZE > LDNS_MAX_DOMAINLEN || len - pos - 1 < 4)
        return false;
    q.question = req + WIRE_HEADER_SIZE;
    q.qname_len = pos + 1 - WIRE_HEADER_SIZE;
    q.qtype = ldns_read_uint16(req + pos + 1);
    if (ldns_read_uint16(req + pos + 3) != LDNS_RR_CLASS_IN)
        return false;
    pos += 5;
    if (LDNS_ARCOUNT(req) == 1) {
        /* RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = payload size, TTL = extended
         * RCODE, VERSION, DO and Z, then RDLENGTH and options filling it exactly. */
        if (len - pos < WIRE_OPT_SIZE || req[pos] != 0 ||
            ldns_read_uint16(req + pos + 1) != LDNS_RR_TYPE_OPT || req[pos + 6] != 0)
            return false;
        q.edns = true;
        q.edns_udp_size = ldns_read_uint16(req + pos + 3);
        q.edns_do = (req[pos + 7] & 0x80U) != 0;
        size_t rdlen = ldns_read_uint16(req + pos + 9);
        pos += WIRE_OPT_SIZE;
        if (len - pos != rdlen)
            return false;
        size_t off = 0;
        while (rdlen - off >= 4) {
            size_t opt_len = ldns_read_uint16(req + pos + off + 2);
            if (rdlen - off - 4 < opt_len)
                return false;
            off += 4 + opt_len;
        }
        if (off != rdlen)
            return false;
        pos += rdlen;
    }
    if (pos != len)
        return false;
    *out = q;
    return true;
}
