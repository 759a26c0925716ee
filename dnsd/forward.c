/* SPDX-License-Identifier: BSD-2-Clause
 * Forwarding to upstream servers. The pure core parses forwarders and client networks,
 * matches replies to queries and orders the tries; the libuv shell sends each query with a
 * fresh random ID over an unconnected UDP socket, retries over TCP on TC (RFC 7766 §5) and
 * moves to the next forwarder on timeout. Owns its sockets, timers and in-flight queries. */
#include "forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>
#include <uv.h>

#include "dnsd/error.h"
#include "log.h"
#include "wire.h"

#define HEADER 12

/* ---- pure core ---- */

void forward_config_init(struct forward_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->strategy = FORWARD_SEQUENTIAL;
    cfg->timeout_ms = 1500;
    cfg->retries = 1;
    netlist_parse("127.0.0.0/8", &cfg->allow[0]);
    netlist_parse("::1/128", &cfg->allow[1]);
    cfg->n_allow = 2;
}

/* Parse a decimal port 1..65535. */
static int parse_port(const char *text, uint16_t *port)
{
    char *end;
    if (*text < '0' || *text > '9')
        return DNSD_EINVAL;
    unsigned long v = strtoul(text, &end, 10);
    if (*end != '\0' || v == 0 || v > 65535)
        return DNSD_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int forward_parse_server(const char *text, struct forward_server *out)
{
    char host[64];
    uint16_t port = FORWARD_DEFAULT_PORT;
    const char *port_text = NULL;
    if (text == NULL)
        return DNSD_EINVAL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || (size_t)(close - text - 1) >= sizeof(host))
            return DNSD_EINVAL;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        if (close[1] == ':')
            port_text = close + 2;
        else if (close[1] != '\0')
            return DNSD_EINVAL;
    } else {
        const char *colon = strchr(text, ':');
        bool v6 = colon && strchr(colon + 1, ':'); /* bare IPv6: no port */
        size_t n = colon && !v6 ? (size_t)(colon - text) : strlen(text);
        if (n >= sizeof(host))
            return DNSD_EINVAL;
        memcpy(host, text, n);
        host[n] = '\0';
        if (colon && !v6)
            port_text = colon + 1;
    }
    if (port_text && parse_port(port_text, &port) != 0)
        return DNSD_EINVAL;
    struct forward_server s;
    memset(&s, 0, sizeof(s));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&s.addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s.addr;
    if (text[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
    } else {
        return DNSD_EINVAL;
    }
    *out = s;
    return 0;
}

bool forward_is_allowed(const struct forward_config *cfg, const struct sockaddr *sa)
{
    return netlist_contains(cfg->allow, cfg->n_allow, sa);
}

int forward_pick(const struct forward_config *cfg, uint32_t start, uint32_t attempt)
{
    size_t n = cfg->n_servers;
    if (n == 0 || (uint64_t)attempt >= (uint64_t)n * ((uint64_t)cfg->retries + 1))
        return -1;
    return (int)((start + attempt) % n);
}

/* The single question's name (caller frees), type and class. */
static bool read_question(const uint8_t *msg, size_t len, ldns_rdf **name, uint16_t *type,
                          uint16_t *cls)
{
    if (len < HEADER || LDNS_QDCOUNT(msg) != 1)
        return false;
    size_t pos = HEADER;
    if (ldns_wire2dname(name, msg, len, &pos) != LDNS_STATUS_OK)
        return false;
    if (len - pos < 4) {
        ldns_rdf_deep_free(*name);
        return false;
    }
    *type = ldns_read_uint16(msg + pos);
    *cls = ldns_read_uint16(msg + pos + 2);
    return true;
}

bool forward_reply_matches(const uint8_t *query, size_t query_len, const uint8_t *reply,
                           size_t reply_len)
{
    if (query_len < HEADER || reply_len < HEADER || !LDNS_QR_WIRE(reply) ||
        LDNS_ID_WIRE(query) != LDNS_ID_WIRE(reply))
        return false;
    ldns_rdf *qn, *rn;
    uint16_t qt, qc, rt, rc;
    if (!read_question(query, query_len, &qn, &qt, &qc))
        return false;
    if (!read_question(reply, reply_len, &rn, &rt, &rc)) {
        ldns_rdf_deep_free(qn);
        return false;
    }
    bool same = qt == rt && qc == rc && ldns_dname_compare(qn, rn) == 0;
    ldns_rdf_deep_free(qn);
    ldns_rdf_deep_free(rn);
    return same;
}

/* Offset just past the single question, or 0 when there is none. */
static size_t question_end(const uint8_t *msg, size_t len)
{
    if (len < HEADER || LDNS_QDCOUNT(msg) != 1)
        return 0;
    size_t pos = HEADER;
    ldns_rdf *name;
    if (ldns_wire2dname(&name, msg, len, &pos) != LDNS_STATUS_OK)
        return 0;
    ldns_rdf_deep_free(name);
    return len - pos < 4 ? 0 : pos + 4;
}

/* Offset just past the (possibly compressed) name at pos, or 0 when it runs past len. A
 * compression pointer ends a name; it is not followed. */
static size_t skip_name(const uint8_t *msg, size_t len, size_t pos)
{
    while (pos < len) {
        uint8_t b = msg[pos];
        if ((b & 0xC0) == 0xC0)
            return pos + 2 <= len ? pos + 2 : 0;
        if (b & 0xC0)
            return 0; /* an extended label type */
        if (b == 0)
            return pos + 1;
        pos += 1 + (size_t)b;
    }
    return 0;
}

/* Find the OPT record among msg's records after the question (which ends at pos) and
 * write its fixed part, RDLENGTH 0, into opt[]: its payload size, extended RCODE, version
 * and flags, without options. Returns: whether there is one. */
static bool find_opt(const uint8_t *msg, size_t len, size_t pos, uint8_t opt[WIRE_OPT_SIZE])
{
    size_t n = (size_t)LDNS_ANCOUNT(msg) + LDNS_NSCOUNT(msg) + LDNS_ARCOUNT(msg);
    for (size_t i = 0; i < n; i++) {
        pos = skip_name(msg, len, pos);
        if (pos == 0 || len - pos < 10)
            return false;
        uint16_t type = ldns_read_uint16(msg + pos);
        size_t rdlen = ldns_read_uint16(msg + pos + 8);
        if (type == LDNS_RR_TYPE_OPT) {
            opt[0] = 0; /* the root */
            memcpy(opt + 1, msg + pos, 8);
            opt[9] = opt[10] = 0;
            return true;
        }
        if (len - pos - 10 < rdlen)
            return false;
        pos += 10 + rdlen;
    }
    return false;
}

size_t forward_truncate_copy(const uint8_t *reply, size_t reply_len, uint8_t *out, size_t out_len)
{
    size_t end = question_end(reply, reply_len);
    /* RFC 6891 §7: a response to a query with OPT carries OPT, so a truncated one keeps
     * it (without its options). */
    uint8_t opt[WIRE_OPT_SIZE];
    bool has_opt = end > 0 && find_opt(reply, reply_len, end, opt);
    size_t n = end + (has_opt ? sizeof(opt) : 0);
    if (end == 0 || n > out_len)
        return 0;
    memmove(out, reply, end); /* out may be reply itself */
    LDNS_TC_SET(out);
    ldns_write_uint16(out + LDNS_ANCOUNT_OFF, 0);
    ldns_write_uint16(out + LDNS_NSCOUNT_OFF, 0);
    ldns_write_uint16(out + LDNS_ARCOUNT_OFF, has_opt ? 1 : 0);
    if (has_opt)
        memcpy(out + end, opt, sizeof(opt));
    return n;
}

size_t forward_truncate(uint8_t *reply, size_t reply_len)
{
    return forward_truncate_copy(reply, reply_len, reply, reply_len);
}

size_t forward_servfail(const uint8_t *req, size_t req_len, uint8_t *out, size_t out_len)
{
    if (req_len < HEADER || out_len < HEADER)
        return 0;
    size_t end = question_end(req, req_len);
    if (end > out_len)
        end = 0;
    size_t n = end ? end : HEADER;
    memcpy(out, req, n);
    memset(out + 2, 0, HEADER - 2);
    LDNS_QR_SET(out);
    LDNS_OPCODE_SET(out, LDNS_OPCODE_WIRE(req));
    if (LDNS_RD_WIRE(req))
        LDNS_RD_SET(out);
    LDNS_RCODE_SET(out, LDNS_RCODE_SERVFAIL);
    ldns_write_uint16(out + LDNS_QDCOUNT_OFF, end ? 1 : 0);
    return n;
}

/* ---- libuv shell ---- */

struct fwd_req;

struct fwd_tcp {
    uv_tcp_t handle;
    uv_connect_t connect;
    uv_write_t write;
    struct forward *fw;  /* borrowed: the owner */
    struct fwd_req *req; /* borrowed; NULL once the query no longer waits for it */
    uint8_t prefix[2];
    uint8_t *buf; /* owned: bytes read */
    size_t len, cap;
};

struct fwd_req {
    uv_timer_t timer;
    struct forward *fw; /* borrowed: the owner */
    uint8_t *query;     /* owned: the query as sent upstream (our ID) */
    size_t len;
    struct fwd_tcp *tcp; /* owned until detached (closing) */
    forward_done_cb *cb;
    void *arg; /* borrowed: the caller's */
    uint16_t id, client_id;
    uint32_t start, attempt;
    int server;
};

struct forward {
    uv_loop_t *loop; /* borrowed */
    struct forward_config cfg;
    uv_udp_t udp[2]; /* IPv4, IPv6 */
    bool udp_open[2];
    struct fwd_req **by_id; /* owned array of 65536; the requests are owned too */
    size_t inflight;
    unsigned open_handles;
    bool stopping;
    void (*closed)(void *arg);
    void *closed_arg; /* borrowed */
    uint8_t recv_buf[65536];
};

static void maybe_free(struct forward *fw)
{
    if (!fw->stopping || fw->open_handles > 0)
        return;
    void (*closed)(void *) = fw->closed;
    void *arg = fw->closed_arg;
    free(fw->by_id);
    free(fw);
    if (closed)
        closed(arg);
}

static void handle_closed(uv_handle_t *handle)
{
    struct forward *fw = handle->data;
    fw->open_handles--;
    maybe_free(fw);
}

static void tcp_closed(uv_handle_t *handle)
{
    struct fwd_tcp *t = handle->data;
    struct forward *fw = t->fw;
    free(t->buf);
    free(t);
    fw->open_handles--;
    maybe_free(fw);
}

static void tcp_detach(struct fwd_req *req)
{
    struct fwd_tcp *t = req->tcp;
    if (t == NULL)
        return;
    req->tcp = NULL;
    t->req = NULL;
    uv_close((uv_handle_t *)&t->handle, tcp_closed);
}

static void req_closed(uv_handle_t *handle)
{
    struct fwd_req *req = handle->data;
    struct forward *fw = req->fw;
    free(req->query);
    free(req);
    fw->open_handles--;
    maybe_free(fw);
}

/* Hand the answer (or NULL: failure) to the caller and retire the query. */
static void finish(struct fwd_req *req, uint8_t *resp, size_t len)
{
    struct forward *fw = req->fw;
    fw->by_id[req->id] = NULL;
    fw->inflight--;
    tcp_detach(req);
    uv_timer_stop(&req->timer);
    if (resp)
        ldns_write_uint16(resp, req->client_id);
    req->cb(req->arg, resp, len);
    uv_close((uv_handle_t *)&req->timer, req_closed);
}

static int family_index(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? 1 : 0;
}

static void on_timeout(uv_timer_t *timer);

/* Send to the next forwarder in the order, or fail when every try is used up. A send error
 * is left to the timer: the next try comes after the timeout like for a lost datagram. */
static void try_next(struct fwd_req *req)
{
    struct forward *fw = req->fw;
    tcp_detach(req);
    int idx = forward_pick(&fw->cfg, req->start, req->attempt);
    if (idx < 0) {
        finish(req, NULL, 0);
        return;
    }
    req->attempt++;
    req->server = idx;
    const struct sockaddr_storage *to = &fw->cfg.servers[idx].addr;
    int f = family_index(to);
    if (fw->udp_open[f]) {
        uv_buf_t b = uv_buf_init((char *)req->query, (unsigned)req->len);
        int rc = uv_udp_try_send(&fw->udp[f], &b, 1, (const struct sockaddr *)to);
        if (rc < 0)
            log_debug("forward", "send to forwarder %d: %s", idx, uv_strerror(rc));
    }
    uv_timer_start(&req->timer, on_timeout, fw->cfg.timeout_ms, 0);
}

static void on_timeout(uv_timer_t *timer)
{
    try_next(timer->data);
}

static void tcp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct fwd_tcp *t = handle->data;
    (void)suggested;
    if (t->cap - t->len < 4096 && t->cap < 65537) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        if (cap > 65537)
            cap = 65537;
        uint8_t *grown = realloc(t->buf, cap);
        if (grown) {
            t->buf = grown;
            t->cap = cap;
        }
    }
    buf->base = (char *)t->buf + t->len;
    buf->len = t->cap - t->len;
}

static void tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct fwd_tcp *t = stream->data;
    (void)buf;
    struct fwd_req *req = t->req;
    if (req == NULL || nread == 0)
        return;
    if (nread < 0) {
        try_next(req);
        return;
    }
    t->len += (size_t)nread;
    if (t->len < 2)
        return;
    size_t msg = ((size_t)t->buf[0] << 8) | t->buf[1];
    if (t->len - 2 < msg) {
        if (t->len == t->cap)
            try_next(req); /* cannot happen: the buffer holds 65537 bytes */
        return;
    }
    if (forward_reply_matches(req->query, req->len, t->buf + 2, msg))
        finish(req, t->buf + 2, msg);
    else
        try_next(req);
}

static void tcp_written(uv_write_t *w, int status)
{
    struct fwd_tcp *t = w->data;
    if (t->req && status < 0)
        try_next(t->req);
}

static void tcp_connected(uv_connect_t *c, int status)
{
    struct fwd_tcp *t = c->data;
    struct fwd_req *req = t->req;
    if (req == NULL)
        return;
    if (status < 0) {
        try_next(req);
        return;
    }
    t->prefix[0] = (uint8_t)(req->len >> 8);
    t->prefix[1] = (uint8_t)req->len;
    uv_buf_t bufs[2] = {uv_buf_init((char *)t->prefix, 2),
                        uv_buf_init((char *)req->query, (unsigned)req->len)};
    t->write.data = t;
    if (uv_write(&t->write, (uv_stream_t *)&t->handle, bufs, 2, tcp_written) != 0 ||
        uv_read_start((uv_stream_t *)&t->handle, tcp_alloc, tcp_read) != 0)
        try_next(req);
}

/* The UDP answer was truncated: ask the same forwarder over TCP (RFC 7766 §5), within a
 * fresh timeout. */
static void start_tcp(struct fwd_req *req)
{
    struct forward *fw = req->fw;
    struct fwd_tcp *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        try_next(req);
        return;
    }
    t->fw = fw;
    t->req = req;
    uv_tcp_init(fw->loop, &t->handle);
    t->handle.data = t;
    t->connect.data = t;
    fw->open_handles++;
    req->tcp = t;
    uv_timer_start(&req->timer, on_timeout, fw->cfg.timeout_ms, 0);
    if (uv_tcp_connect(&t->connect, &t->handle,
                       (const struct sockaddr *)&fw->cfg.servers[req->server].addr,
                       tcp_connected) != 0)
        try_next(req);
}

/* Is from the forwarder req last sent to? */
static bool from_server(const struct forward *fw, const struct fwd_req *req,
                        const struct sockaddr *from)
{
    const struct sockaddr_storage *ss = &fw->cfg.servers[req->server].addr;
    if (from->sa_family != ss->ss_family)
        return false;
    if (from->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)from;
        const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)ss;
    return a->sin6_port == b->sin6_port &&
           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

static void udp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct forward *fw = handle->data;
    (void)suggested;
    buf->base = (char *)fw->recv_buf;
    buf->len = sizeof(fw->recv_buf);
}

static void udp_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags)
{
    struct forward *fw = handle->data;
    if (nread < HEADER || from == NULL || (flags & UV_UDP_PARTIAL) || fw->stopping)
        return;
    uint8_t *msg = (uint8_t *)buf->base;
    struct fwd_req *req = fw->by_id[LDNS_ID_WIRE(msg)];
    /* Only the forwarder asked, with our ID and our question (RFC 5452 §4). */
    if (req == NULL || req->tcp != NULL || !from_server(fw, req, from) ||
        !forward_reply_matches(req->query, req->len, msg, (size_t)nread))
        return;
    if (LDNS_TC_WIRE(msg))
        start_tcp(req);
    else
        finish(req, msg, (size_t)nread);
}

static int open_udp(struct forward *fw, int f)
{
    int rc = uv_udp_init_ex(fw->loop, &fw->udp[f], f ? AF_INET6 : AF_INET);
    if (rc != 0)
        return rc;
    fw->udp[f].data = fw;
    fw->udp_open[f] = true;
    fw->open_handles++;
    struct sockaddr_storage any;
    memset(&any, 0, sizeof(any));
    if (f)
        rc = uv_ip6_addr("::", 0, (struct sockaddr_in6 *)&any);
    else
        rc = uv_ip4_addr("0.0.0.0", 0, (struct sockaddr_in *)&any);
    if (rc == 0)
        rc = uv_udp_bind(&fw->udp[f], (const struct sockaddr *)&any, f ? UV_UDP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_udp_recv_start(&fw->udp[f], udp_alloc, udp_recv);
    return rc;
}

int forward_new(struct uv_loop_s *loop, const struct forward_config *cfg, struct forward **out)
{
    struct forward *fw = calloc(1, sizeof(*fw));
    if (fw == NULL)
        return DNSD_ENOMEM;
    fw->loop = loop;
    fw->cfg = *cfg;
    fw->by_id = calloc(65536, sizeof(*fw->by_id));
    int rc = DNSD_ENOMEM;
    if (fw->by_id == NULL)
        goto fail;
    bool need[2] = {false, false};
    for (size_t i = 0; i < cfg->n_servers; i++)
        need[family_index(&cfg->servers[i].addr)] = true;
    for (int f = 0; f < 2; f++) {
        if (need[f] && (rc = open_udp(fw, f)) != 0)
            goto fail;
    }
    *out = fw;
    return 0;

fail:
    forward_stop(fw, NULL, NULL);
    return rc;
}

int forward_query(struct forward *fw, const uint8_t *req_bytes, size_t req_len, forward_done_cb *cb,
                  void *arg)
{
    if (req_len < HEADER)
        return DNSD_EINVAL;
    if (fw->inflight >= FORWARD_MAX_INFLIGHT)
        return DNSD_ENOSPC;
    struct fwd_req *req = calloc(1, sizeof(*req));
    uint8_t *copy = malloc(req_len);
    if (req == NULL || copy == NULL) {
        free(req);
        free(copy);
        return DNSD_ENOMEM;
    }
    memcpy(copy, req_bytes, req_len);
    req->fw = fw;
    req->query = copy;
    req->len = req_len;
    req->cb = cb;
    req->arg = arg;
    req->client_id = LDNS_ID_WIRE(req_bytes);
    /* A fresh unpredictable ID per query (RFC 5452 §9.2), unique among those in flight. */
    uint16_t id;
    do {
        id = (uint16_t)arc4random_uniform(65536);
    } while (fw->by_id[id] != NULL);
    req->id = id;
    ldns_write_uint16(copy, id);
    fw->by_id[id] = req;
    fw->inflight++;
    if (fw->cfg.strategy == FORWARD_RANDOM && fw->cfg.n_servers > 0)
        req->start = arc4random_uniform((uint32_t)fw->cfg.n_servers);
    uv_timer_init(fw->loop, &req->timer);
    req->timer.data = req;
    fw->open_handles++;
    /* Sent at once; the next try only from the timer, so cb never runs inside this call. */
    int idx = forward_pick(&fw->cfg, req->start, 0);
    if (idx < 0) {
        uv_timer_start(&req->timer, on_timeout, 0, 0);
        return 0;
    }
    try_next(req);
    return 0;
}

void forward_stop(struct forward *fw, void (*closed)(void *arg), void *arg)
{
    fw->stopping = true;
    fw->closed = closed;
    fw->closed_arg = arg;
    for (size_t id = 0; fw->by_id && id < 65536 && fw->inflight > 0; id++) {
        if (fw->by_id[id])
            finish(fw->by_id[id], NULL, 0);
    }
    for (int f = 0; f < 2; f++) {
        if (fw->udp_open[f]) {
            fw->udp_open[f] = false;
            uv_close((uv_handle_t *)&fw->udp[f], handle_closed);
        }
    }
    maybe_free(fw);
}
