/* SPDX-License-Identifier: BSD-2-Clause
 * DNS over UDP and TCP on libuv. Receives a message, asks query.c for the answer, sends it.
 * TCP connections (RFC 7766) live on an LRU list so the idle timeout and the connection
 * cap can close the longest-idle one first (RFC 7766 §6.2.3); each also has a total lifetime.
 * UDP reads up to UDP_BATCH datagrams per system call (recvmmsg) and sends their answers
 * together (sendmmsg). A question outside every
 * zone from an allowed client goes to forward.c and is answered when the upstream replies.
 * No DNS logic here. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <urcu/urcu-memb.h>

#include "dnsd/error.h"
#include "forward.h"
#include "log.h"
#include "metrics.h"
#include "rrl.h"
#include "wire.h"

#define TCP_MSG_MAX 65535
#define TCP_BACKLOG 128
/* A client that pipelines queries but does not read the answers is not read from while
 * this many answers wait to be sent, so it cannot make dnsd buffer without bound (RFC 7766
 * §6.2.1.1 pipelining, §10 resource use); reading resumes once half of them are out. */
#define TCP_MAX_PENDING_WRITES 64
/* libuv (1.44, src/unix/udp.c) splits a UV_UDP_RECVMMSG read buffer into 64 KiB slots, one
 * per datagram, and reads at most 20 (UV__MMSG_MAXWIDTH) per recvmmsg call. */
#define UDP_SLOT_SIZE (64 * 1024)
#define UDP_BATCH 20
/* Header + the longest question (255-byte name, type, class). */
#define WIRE_SERVFAIL_MAX (12 + 255 + 4)

struct server;

struct udp_listener {
    uv_udp_t handle;
    struct server *srv; /* borrowed: the owner */
};

struct tcp_listener {
    uv_tcp_t handle;
    struct server *srv; /* borrowed: the owner */
};

struct tcp_conn {
    uv_tcp_t handle;
    uv_timer_t idle;              /* fires at the idle timeout or the end of life, the earlier */
    struct server *srv;           /* borrowed: the owner */
    struct tcp_conn *prev, *next; /* LRU list, least recently active first */
    uint8_t *buf;                 /* owned: bytes read but not yet answered */
    size_t len, cap;
    uint64_t deadline_ms;         /* uv_now() past which the connection is wound down */
    struct sockaddr_storage peer; /* the client, for the forwarding allow list */
    unsigned open_handles;        /* handle + idle timer still open */
    unsigned forwards;            /* forwarded queries not yet answered: the conn outlives them */
    unsigned pending_writes;
    bool closing;
    bool read_eof; /* EOF, or the lifetime ended: read no more, close once flushed */
    bool paused;   /* reading stopped until pending_writes drains */
};

struct udp_send {
    uv_udp_send_t req;
    size_t len;
    uint8_t data[]; /* the answer, freed with the request */
};

/* The answers to one recvmmsg batch, sent with one sendmmsg when the batch ends: one system
 * call per batch instead of one per answer. Each answer is copied into its query's receive
 * slot, which is free once the query is answered. */
struct udp_batch {
    uv_udp_t *handle; /* borrowed: the listener the batch came in on */
    unsigned n;
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH]; /* borrowed: slots of server.recv_buf */
    struct sockaddr_storage addr[UDP_BATCH];
};

struct tcp_write {
    uv_write_t req;
    struct tcp_conn *conn; /* borrowed */
    uint8_t data[];        /* 2-byte length prefix + answer, freed with the request */
};

struct server {
    uv_loop_t *loop;            /* borrowed */
    const struct zonestore *zs; /* borrowed from the daemon; set from any thread (atomic) */
    const struct answers *ans;  /* borrowed from the daemon */
    struct query_ctx *query;    /* owned */
    struct udp_listener *udp;   /* owned array */
    struct tcp_listener *tcp;   /* owned array */
    size_t n_udp, n_tcp;
    struct tcp_conn *lru_head, *lru_tail;
    size_t n_conns;       /* open connections, for the cap */
    size_t n_conn_allocs; /* connections not yet freed, open or closing */
    uint32_t idle_timeout_ms;
    uint32_t max_conn_ms;
    uint32_t max_conns;
    uint32_t udp_rcvbuf;
    unsigned open_handles; /* listeners still open */
    bool stopping;
    uint32_t n_answered;      /* picks the queries whose duration is measured */
    struct metrics_dns stats; /* this loop's counters */
    uint8_t *recv_buf;        /* owned: UDP_BATCH slots, shared by the UDP listeners */
    struct udp_batch batch;   /* answers waiting for the end of the recvmmsg batch */
    struct forward *fwd;      /* owned; NULL: no forwarding (or it has closed) */
    struct forward_config fwd_cfg;
    uint8_t servfail[WIRE_SERVFAIL_MAX]; /* a SERVFAIL built in try_forward */
    struct rrl *rrl;                     /* borrowed; NULL: no response rate limiting */
    enum server_udp_sharing udp_sharing;
    /* a rate-limited answer cut to TC, question and OPT */
    uint8_t slipped[WIRE_SERVFAIL_MAX + WIRE_OPT_SIZE];
};

/* A query handed to forward.c, waiting for the upstream's answer. */
struct fwd_pending {
    struct server *srv;    /* borrowed: the owner */
    uv_udp_t *udp;         /* borrowed: the UDP listener it came in on, or NULL (TCP) */
    struct tcp_conn *conn; /* borrowed, kept alive by conn->forwards; NULL for UDP */
    struct sockaddr_storage client;
    uint16_t udp_limit;
    uint16_t qtype;
    bool logged;       /* sampled for the query log */
    uint64_t start_ns; /* uv_hrtime() when the query came in, for the query log */
    size_t req_len;
    uint8_t req[]; /* the client's query, for SERVFAIL */
};

static void maybe_free_server(struct server *srv);
static void conn_close(struct tcp_conn *conn);
static void conn_close_when_flushed(struct tcp_conn *conn);
static void conn_maybe_free(struct tcp_conn *conn);
static void tcp_send_answer(struct tcp_conn *conn, const uint8_t *resp, size_t len);
static void udp_send(uv_udp_t *handle, const struct sockaddr *addr, const uint8_t *resp,
                     size_t resp_len);
static void udp_reply(struct server *srv, uv_udp_t *handle, const struct sockaddr *addr,
                      const uint8_t *resp, size_t resp_len, uint8_t *slot);

/* The name of an RCODE (extended by EDNS: BADVERS is 16, RFC 6891 §6.1.3). */
static const char *rcode_name(uint16_t rcode, char *buf, size_t len)
{
    if (rcode == 16)
        return "BADVERS";
    const ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, rcode);
    if (t)
        return t->name;
    snprintf(buf, len, "RCODE%u", rcode);
    return buf;
}

/* One query log line (log.h) for a query answered with resp; rcode is the full RCODE. */
static void log_answer(const uint8_t *req, size_t req_len, const struct sockaddr *client, bool tcp,
                       uint16_t qtype, uint16_t rcode, const uint8_t *resp, size_t resp_len,
                       uint64_t start_ns)
{
    char addr[INET6_ADDRSTRLEN] = "?", who[INET6_ADDRSTRLEN + 8], rbuf[16];
    unsigned port = 0;
    if (client->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)client;
        inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
        port = ntohs(a->sin6_port);
    } else if (client->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)client;
        inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
        port = ntohs(a->sin_port);
    }
    snprintf(who, sizeof(who), "%s#%u", addr, port);
    /* ldns reads the question name (RFC 1035 §4.1.2); the query log is sampled, so the
     * allocations stay off the common path. */
    ldns_rdf *name = NULL;
    size_t pos = LDNS_HEADER_SIZE;
    char *qname = NULL;
    if (req_len >= LDNS_HEADER_SIZE && LDNS_QDCOUNT(req) > 0 &&
        ldns_wire2dname(&name, req, req_len, &pos) == LDNS_STATUS_OK)
        qname = ldns_rdf2str(name);
    char *type = ldns_rr_type2str((ldns_rr_type)qtype);
    struct log_query q = {
        .client = who,
        .transport = tcp ? "tcp" : "udp",
        .qname = qname ? qname : ".",
        .qtype = type ? type : "?",
        .rcode = rcode_name(rcode, rbuf, sizeof(rbuf)),
        .answers = resp_len >= LDNS_HEADER_SIZE ? LDNS_ANCOUNT(resp) : 0,
        .duration_us = (uv_hrtime() - start_ns) / 1000,
    };
    log_query(&q);
    free(type);
    free(qname);
    ldns_rdf_deep_free(name);
}

/* Send a forwarded answer to the client; resp NULL: every forwarder failed, SERVFAIL.
 * Over UDP an answer larger than the client's size becomes TC with the question (and OPT)
 * only. */
static void forward_done(void *arg, const uint8_t *resp, size_t resp_len)
{
    struct fwd_pending *p = arg;
    struct server *srv = p->srv;
    uint8_t servfail[WIRE_SERVFAIL_MAX];
    uint8_t *cut = NULL;
    if (!srv->stopping)
        metrics_add(
            &srv->stats.forwarded[resp ? METRICS_FORWARD_ANSWERED : METRICS_FORWARD_SERVFAIL], 1);
    if (resp == NULL) {
        resp_len = forward_servfail(p->req, p->req_len, servfail, sizeof(servfail));
        resp = servfail;
    } else if (p->udp && resp_len > p->udp_limit && (cut = malloc(resp_len)) != NULL) {
        memcpy(cut, resp, resp_len);
        resp_len = forward_truncate(cut, resp_len);
        resp = cut;
    } else if (p->udp && resp_len > p->udp_limit) {
        resp_len = 0;
    }
    if (p->conn) {
        struct tcp_conn *conn = p->conn;
        conn->forwards--;
        if (!conn->closing && !srv->stopping && resp_len > 0)
            tcp_send_answer(conn, resp, resp_len);
        if (conn->closing)
            conn_maybe_free(conn);
        else if (conn->read_eof || srv->stopping)
            conn_close_when_flushed(conn);
    } else if (!srv->stopping && resp_len > 0) {
        udp_reply(srv, p->udp, (const struct sockaddr *)&p->client, resp, resp_len, NULL);
    }
    if (resp_len >= 12 && !srv->stopping)
        metrics_dns_count(&srv->stats, p->conn ? METRICS_TCP : METRICS_UDP, p->qtype,
                          LDNS_RCODE_WIRE(resp), LDNS_TC_WIRE(resp));
    if (resp_len >= 12 && !srv->stopping && p->logged)
        log_answer(p->req, p->req_len, (const struct sockaddr *)&p->client, p->conn != NULL,
                   p->qtype, LDNS_RCODE_WIRE(resp), resp, resp_len, p->start_ns);
    free(cut);
    free(p);
}

/* Hand the query to the forwarder when forwarding applies to it: the question is outside
 * every zone and the client is in forward.allow. Returns: whether the answer comes later
 * (forward_done); at the in-flight cap *resp becomes a SERVFAIL at once. */
static bool try_forward(struct server *srv, const uint8_t *req, size_t len, uv_udp_t *udp,
                        struct tcp_conn *conn, const struct sockaddr *client,
                        struct query_outcome *o, bool logged, uint64_t start_ns,
                        const uint8_t **resp, size_t *resp_len)
{
    if (!o->outside_zones || srv->stopping)
        return false;
    if (srv->fwd == NULL || !forward_is_allowed(&srv->fwd_cfg, client)) {
        metrics_add(&srv->stats.forwarded[METRICS_FORWARD_REFUSED], 1);
        return false;
    }
    struct fwd_pending *p = malloc(sizeof(*p) + len);
    if (p != NULL) {
        p->srv = srv;
        p->udp = conn ? NULL : udp;
        p->conn = conn;
        memset(&p->client, 0, sizeof(p->client));
        memcpy(&p->client, client,
               client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in));
        p->udp_limit = o->udp_limit;
        p->qtype = o->qtype;
        p->logged = logged;
        p->start_ns = start_ns;
        p->req_len = len;
        memcpy(p->req, req, len);
        int rc = forward_query(srv->fwd, req, len, forward_done, p);
        if (rc == 0) {
            if (conn)
                conn->forwards++;
            return true;
        }
        free(p);
        log_debug("server", "cannot forward: %s", dnsd_strerror(rc));
    }
    /* Over the in-flight cap (or out of memory): SERVFAIL now rather than queue. */
    metrics_add(&srv->stats.forwarded[METRICS_FORWARD_SERVFAIL], 1);
    *resp_len = forward_servfail(req, len, srv->servfail, sizeof(srv->servfail));
    *resp = srv->servfail;
    o->rcode = LDNS_RCODE_SERVFAIL;
    o->truncated = false;
    return false;
}

/* Answer one query and count it. Only 1 in METRICS_DURATION_SAMPLE answers is timed: two
 * clock reads per query would cost measurable QPS (see metrics.h). */
static void answer(struct server *srv, const uint8_t *req, size_t len, uv_udp_t *udp,
                   struct tcp_conn *conn, const struct sockaddr *client, const uint8_t **resp,
                   size_t *resp_len)
{
    enum query_transport transport = conn ? QUERY_TCP : QUERY_UDP;
    bool timed = (srv->n_answered++ & (METRICS_DURATION_SAMPLE - 1)) == 0;
    bool logged = log_query_sampled();
    uint64_t start = timed || logged ? uv_hrtime() : 0;
    /* The answer is copied into the query context's buffer, so nothing read from the
     * answers or the zone store is used after the unlock. */
    urcu_memb_read_lock();
    query_answer(srv->query, __atomic_load_n(&srv->zs, __ATOMIC_ACQUIRE), srv->ans, req, len,
                 transport, uv_now(srv->loop), resp, resp_len);
    urcu_memb_read_unlock();
    if (*resp_len == 0)
        return;
    if (timed)
        metrics_dns_duration(&srv->stats, uv_hrtime() - start);
    struct query_outcome o = query_last_outcome(srv->query);
    if (o.outside_zones &&
        try_forward(srv, req, len, udp, conn, client, &o, logged, start, resp, resp_len)) {
        *resp_len = 0;
        return;
    }
    metrics_dns_count(&srv->stats, transport == QUERY_TCP ? METRICS_TCP : METRICS_UDP, o.qtype,
                      o.rcode, o.truncated);
    if (logged)
        log_answer(req, len, client, transport == QUERY_TCP, o.qtype, o.rcode, *resp, *resp_len,
                   start);
}

static void format_addr(const struct config_listen *l, const char *proto, char *out, size_t n)
{
    if (l->family == AF_INET6)
        snprintf(out, n, "[%s]:%u/%s", l->host, l->port, proto);
    else
        snprintf(out, n, "%s:%u/%s", l->host, l->port, proto);
}

static int make_sockaddr(const struct config_listen *l, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (l->family == AF_INET6)
        return uv_ip6_addr(l->host, l->port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(l->host, l->port, (struct sockaddr_in *)ss);
}

/* ---- UDP ---- */

/* One buffer for every read: each datagram is answered inside udp_recv, before the next
 * read reuses the buffer (one loop). */
static void udp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct udp_listener *l = handle->data;
    (void)suggested;
    buf->base = (char *)l->srv->recv_buf;
    buf->len = UDP_BATCH * UDP_SLOT_SIZE;
}

static void udp_sent(uv_udp_send_t *req, int status)
{
    (void)status; /* a lost UDP answer is the client's retry to make */
    free(req->data);
}

/* Send the answers of the batch that just ended with sendmmsg. What the socket buffer has
 * no room for is queued by udp_send; an answer the kernel refuses for its own reason (an
 * unreachable client) is skipped, as a failed sendmsg would be. */
static void udp_flush(struct server *srv)
{
    struct udp_batch *b = &srv->batch;
    uv_os_fd_t fd;
    if (b->n == 0 || uv_fileno((const uv_handle_t *)b->handle, &fd) != 0) {
        b->n = 0;
        return;
    }
    unsigned done = 0;
    while (done < b->n) {
        int rc = sendmmsg(fd, b->msgs + done, b->n - done, 0);
        if (rc > 0) {
            done += (unsigned)rc;
        } else if (rc < 0 && errno == EINTR) {
            continue;
        } else if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            for (; done < b->n; done++)
                udp_send(b->handle, (const struct sockaddr *)&b->addr[done], b->iov[done].iov_base,
                         b->iov[done].iov_len);
        } else {
            done++;
        }
    }
    b->n = 0;
}

/* Response rate limiting (rrl.h) of a UDP answer to client. Returns: false to drop it;
 * a slipped answer is replaced by its header, question and OPT with TC set (forward_truncate_copy),
 * so that a real client retries over TCP. Logs a summary at most every 10 s. */
static bool rate_limit(struct server *srv, const struct sockaddr *client, const uint8_t **resp,
                       size_t *resp_len)
{
    uint64_t now = uv_now(srv->loop);
    enum rrl_verdict v = rrl_decide(srv->rrl, client, now);
    if (v == RRL_SEND)
        return true;
    metrics_add(&srv->stats.rate_limited[v == RRL_SLIP ? METRICS_RRL_SLIPPED : METRICS_RRL_DROPPED],
                1);
    struct rrl_summary s;
    if (rrl_summary_due(srv->rrl, now, &s)) {
        if (s.interval_ms == 0)
            log_warn("server",
                     "rate limiting UDP answers (dns.rrl): client network %s is over the rate",
                     s.last_prefix);
        else
            log_warn("server",
                     "rate limiting UDP answers (dns.rrl): %" PRIu64 " dropped, %" PRIu64
                     " sent truncated in the last %" PRIu64 " s (last limited: client network %s)",
                     s.dropped, s.slipped, s.interval_ms / 1000, s.last_prefix);
    }
    if (v == RRL_DROP)
        return false;
    /* Header, question and OPT fit in the slipped buffer. */
    size_t n = forward_truncate_copy(*resp, *resp_len, srv->slipped, sizeof(srv->slipped));
    *resp = srv->slipped;
    *resp_len = n;
    return n > 0;
}

/* The one place where a UDP answer is about to go to one client (addr): queued for the
 * batch's sendmmsg when slot (the query's receive slot, UDP_SLOT_SIZE bytes) is given, sent
 * at once otherwise (forwarded answers, a loop without recvmmsg). */
static void udp_reply(struct server *srv, uv_udp_t *handle, const struct sockaddr *addr,
                      const uint8_t *resp, size_t resp_len, uint8_t *slot)
{
    struct udp_batch *b = &srv->batch;
    if (srv->rrl && !rate_limit(srv, addr, &resp, &resp_len))
        return;
    if (slot == NULL || resp_len > UDP_SLOT_SIZE) {
        udp_send(handle, addr, resp, resp_len);
        return;
    }
    if (b->n == UDP_BATCH || (b->n > 0 && b->handle != handle))
        udp_flush(srv);
    unsigned i = b->n++;
    b->handle = handle;
    memcpy(slot, resp, resp_len);
    bool v6 = addr->sa_family == AF_INET6;
    memcpy(&b->addr[i], addr, v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    b->iov[i].iov_base = slot;
    b->iov[i].iov_len = resp_len;
    b->msgs[i].msg_hdr = (struct msghdr){
        .msg_name = &b->addr[i],
        .msg_namelen = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
        .msg_iov = &b->iov[i],
        .msg_iovlen = 1,
    };
}

static void udp_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *addr, unsigned flags)
{
    struct udp_listener *l = handle->data;
    struct server *srv = l->srv;
    /* Without an address the read is over: the end of a recvmmsg batch (UV_UDP_MMSG_FREE;
     * the buffer is the server's, so nothing to free), nothing to read, or an error. */
    if (addr == NULL) {
        udp_flush(srv);
        return;
    }
    if (nread <= 0 || (flags & UV_UDP_PARTIAL))
        return;
    const uint8_t *resp;
    size_t resp_len;
    answer(srv, (const uint8_t *)buf->base, (size_t)nread, handle, NULL, addr, &resp, &resp_len);
    if (resp_len == 0)
        return;
    /* A datagram of a recvmmsg batch has its own slot; otherwise the buffer is shared. */
    udp_reply(srv, handle, addr, resp, resp_len,
              (flags & UV_UDP_MMSG_CHUNK) ? (uint8_t *)buf->base : NULL);
}

/* Send an answer now, or queue a copy when the socket buffer is full. */
static void udp_send(uv_udp_t *handle, const struct sockaddr *addr, const uint8_t *resp,
                     size_t resp_len)
{
    uv_buf_t out = uv_buf_init((char *)resp, (unsigned)resp_len);
    int rc = uv_udp_try_send(handle, &out, 1, addr);
    if (rc >= 0 || rc != UV_EAGAIN)
        return;
    /* The socket buffer is full: queue a copy rather than drop the answer. */
    struct udp_send *send = malloc(sizeof(*send) + resp_len);
    if (send == NULL)
        return;
    memcpy(send->data, resp, resp_len);
    send->len = resp_len;
    send->req.data = send;
    out = uv_buf_init((char *)send->data, (unsigned)resp_len);
    if (uv_udp_send(&send->req, handle, &out, 1, addr, udp_sent) != 0)
        free(send);
}

/* ---- TCP ---- */

static void lru_unlink(struct server *srv, struct tcp_conn *conn)
{
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        srv->lru_head = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        srv->lru_tail = conn->prev;
    conn->prev = conn->next = NULL;
}

static void lru_append(struct server *srv, struct tcp_conn *conn)
{
    conn->prev = srv->lru_tail;
    conn->next = NULL;
    if (srv->lru_tail)
        srv->lru_tail->next = conn;
    else
        srv->lru_head = conn;
    srv->lru_tail = conn;
}

static void conn_timer_expired(uv_timer_t *timer);

/* Arm the timer for a whole idle timeout from now, or for the end of the connection's
 * life if that comes first. */
static void conn_arm_timer(struct tcp_conn *conn)
{
    uint64_t now = uv_now(conn->srv->loop);
    uint64_t due = conn->srv->idle_timeout_ms;
    if (conn->deadline_ms <= now)
        due = 0;
    else if (conn->deadline_ms - now < due)
        due = conn->deadline_ms - now;
    uv_timer_start(&conn->idle, conn_timer_expired, due, 0);
}

static void conn_touch(struct tcp_conn *conn)
{
    struct server *srv = conn->srv;
    lru_unlink(srv, conn);
    lru_append(srv, conn);
    conn_arm_timer(conn);
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct tcp_conn *conn = handle->data;
    conn->open_handles--;
    conn_maybe_free(conn);
}

/* Free a closed connection once its handles have closed and no forwarded answer is due. */
static void conn_maybe_free(struct tcp_conn *conn)
{
    if (conn->open_handles > 0 || conn->forwards > 0)
        return;
    struct server *srv = conn->srv;
    free(conn->buf);
    free(conn);
    srv->n_conn_allocs--;
    maybe_free_server(srv);
}

static void conn_close(struct tcp_conn *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    lru_unlink(conn->srv, conn);
    conn->srv->n_conns--;
    metrics_add(&conn->srv->stats.tcp_connections, (uint64_t)-1); /* a gauge */
    uv_close((uv_handle_t *)&conn->idle, conn_handle_closed);
    uv_close((uv_handle_t *)&conn->handle, conn_handle_closed);
}

/* Close once every written answer has gone out (graceful end of a connection). */
static void conn_close_when_flushed(struct tcp_conn *conn)
{
    if (conn->pending_writes == 0 && conn->forwards == 0)
        conn_close(conn);
}

static void tcp_process(struct tcp_conn *conn);
static void tcp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Every read and every completed write restarts the timer, so before the end of life it
 * fires only after a whole idle timeout without progress either way: an idle client, or one
 * that stopped reading. At the end of life the connection reads no more, answers the
 * complete queries it has already read (as far as TCP_MAX_PENDING_WRITES allows), and
 * closes once the answers are written; a client that does not read them is closed one idle
 * timeout later. */
static void conn_timer_expired(uv_timer_t *timer)
{
    struct tcp_conn *conn = timer->data;
    struct server *srv = conn->srv;
    if (conn->read_eof || uv_now(srv->loop) < conn->deadline_ms) {
        conn_close(conn);
        return;
    }
    conn->read_eof = true;
    uv_read_stop((uv_stream_t *)&conn->handle);
    tcp_process(conn);
    if (conn->closing)
        return;
    if (conn->pending_writes == 0) {
        conn_close(conn);
        return;
    }
    uv_timer_start(&conn->idle, conn_timer_expired, srv->idle_timeout_ms, 0);
}

static void tcp_written(uv_write_t *req, int status)
{
    struct tcp_write *w = req->data;
    struct tcp_conn *conn = w->conn;
    free(w);
    conn->pending_writes--;
    if (conn->closing)
        return;
    if (status < 0 || conn->read_eof || conn->srv->stopping) {
        conn_close_when_flushed(conn);
        return;
    }
    conn_touch(conn);
    /* Answer what is already buffered, then read again (tcp_process resumes reading). */
    if (conn->paused && conn->pending_writes <= TCP_MAX_PENDING_WRITES / 2)
        tcp_process(conn);
}

static void tcp_send_answer(struct tcp_conn *conn, const uint8_t *resp, size_t len)
{
    struct tcp_write *w = malloc(sizeof(*w) + 2 + len);
    if (w == NULL) {
        conn_close(conn);
        return;
    }
    w->conn = conn;
    w->req.data = w;
    w->data[0] = (uint8_t)(len >> 8);
    w->data[1] = (uint8_t)len;
    memcpy(w->data + 2, resp, len);
    uv_buf_t out = uv_buf_init((char *)w->data, (unsigned)(len + 2));
    if (uv_write(&w->req, (uv_stream_t *)&conn->handle, &out, 1, tcp_written) != 0) {
        free(w);
        conn_close(conn);
        return;
    }
    conn->pending_writes++;
}

/* Answer every complete length-prefixed message in the buffer (RFC 7766 §6.2.1.1:
 * pipelined queries are answered as they come). */
static void tcp_process(struct tcp_conn *conn)
{
    struct server *srv = conn->srv;
    size_t off = 0;
    while (!conn->closing && conn->pending_writes < TCP_MAX_PENDING_WRITES &&
           conn->len - off >= 2) {
        size_t msg_len = ((size_t)conn->buf[off] << 8) | conn->buf[off + 1];
        if (conn->len - off - 2 < msg_len)
            break;
        const uint8_t *resp;
        size_t resp_len;
        answer(srv, conn->buf + off + 2, msg_len, NULL, conn, (const struct sockaddr *)&conn->peer,
               &resp, &resp_len);
        off += 2 + msg_len;
        if (resp_len > 0)
            tcp_send_answer(conn, resp, resp_len);
    }
    if (conn->closing)
        return;
    if (off > 0) {
        memmove(conn->buf, conn->buf + off, conn->len - off);
        conn->len -= off;
    }
    bool full = conn->pending_writes >= TCP_MAX_PENDING_WRITES;
    if (full && !conn->paused) {
        uv_read_stop((uv_stream_t *)&conn->handle);
        conn->paused = true;
    } else if (!full && conn->paused) {
        conn->paused = false;
        if (!conn->read_eof && !srv->stopping &&
            uv_read_start((uv_stream_t *)&conn->handle, tcp_alloc, tcp_read) != 0)
            conn_close_when_flushed(conn);
    }
}

static void tcp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct tcp_conn *conn = handle->data;
    (void)suggested;
    if (conn->cap - conn->len < 4096) {
        size_t cap = conn->cap ? conn->cap * 2 : 4096;
        if (cap > 2 * (TCP_MSG_MAX + 2))
            cap = 2 * (TCP_MSG_MAX + 2);
        uint8_t *grown = cap > conn->cap ? realloc(conn->buf, cap) : NULL;
        if (grown) {
            conn->buf = grown;
            conn->cap = cap;
        }
    }
    buf->base = (char *)conn->buf + conn->len;
    buf->len = conn->cap - conn->len;
}

static void tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_conn *conn = stream->data;
    (void)buf;
    if (nread == 0 || conn->closing)
        return;
    if (nread < 0) {
        /* EOF: answer what is complete, then close once the answers are written. */
        conn->read_eof = true;
        uv_read_stop(stream);
        conn_close_when_flushed(conn);
        return;
    }
    conn->len += (size_t)nread;
    conn_touch(conn);
    tcp_process(conn);
}

static void tcp_accept(uv_stream_t *listener, int status)
{
    struct tcp_listener *l = listener->data;
    struct server *srv = l->srv;
    if (status < 0 || srv->stopping)
        return;
    struct tcp_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return;
    conn->srv = srv;
    uv_tcp_init(srv->loop, &conn->handle);
    uv_timer_init(srv->loop, &conn->idle);
    conn->handle.data = conn;
    conn->idle.data = conn;
    conn->open_handles = 2;
    lru_append(srv, conn);
    srv->n_conns++;
    metrics_add(&srv->stats.tcp_connections, 1);
    srv->n_conn_allocs++;
    int peer_len = sizeof(conn->peer);
    if (uv_accept(listener, (uv_stream_t *)&conn->handle) != 0 ||
        uv_tcp_getpeername(&conn->handle, (struct sockaddr *)&conn->peer, &peer_len) != 0) {
        conn_close(conn);
        return;
    }
    /* At the cap, the longest-idle connection makes room (RFC 7766 §6.2.3). */
    if (srv->n_conns > srv->max_conns && srv->lru_head != conn)
        conn_close(srv->lru_head);
    conn->deadline_ms = uv_now(srv->loop) + srv->max_conn_ms;
    conn_arm_timer(conn);
    uv_read_start((uv_stream_t *)&conn->handle, tcp_alloc, tcp_read);
}

/* ---- lifecycle ---- */

static void listener_closed(uv_handle_t *handle)
{
    struct server *srv = handle->data;
    srv->open_handles--;
    maybe_free_server(srv);
}

static void forward_closed(void *arg)
{
    struct server *srv = arg;
    srv->fwd = NULL;
    maybe_free_server(srv);
}

static void maybe_free_server(struct server *srv)
{
    if (!srv->stopping || srv->open_handles > 0 || srv->n_conn_allocs > 0 || srv->fwd)
        return;
    query_ctx_free(srv->query);
    free(srv->recv_buf);
    free(srv->udp);
    free(srv->tcp);
    free(srv);
}

/* Ask for a receive buffer of rcvbuf bytes so that a burst of queries waits in the kernel
 * instead of being dropped, and log what the kernel granted (Linux caps the request at
 * net.core.rmem_max and reports twice the usable size). Not fatal: the default still
 * works. */
static void set_rcvbuf(uv_udp_t *handle, uint32_t rcvbuf, const char *where)
{
    if (rcvbuf == 0)
        return;
    int value = rcvbuf > INT32_MAX / 2 ? INT32_MAX / 2 : (int)rcvbuf;
    int rc = uv_recv_buffer_size((uv_handle_t *)handle, &value);
    int got = 0;
    if (rc == 0)
        rc = uv_recv_buffer_size((uv_handle_t *)handle, &got);
    if (rc != 0) {
        log_warn("server", "%s: cannot set the receive buffer: %s", where, uv_strerror(rc));
        return;
    }
    if ((uint32_t)got / 2 < rcvbuf)
        log_info("server",
                 "%s: receive buffer %d bytes (asked %u; raise net.core.rmem_max "
                 "for more)",
                 where, got, rcvbuf);
    else
        log_debug("server", "%s: receive buffer %d bytes", where, got);
}

/* Is addr free? SO_REUSEPORT lets a socket of the same user share a port with another
 * process's, so the first server of a group asks with a plain socket first: a second dnsd
 * (or anything else) on the address is an error, not a silent split of the traffic. Port 0
 * has nothing to check. Returns: 0, or -errno from bind (UV_EADDRINUSE). */
static int check_address_free(const struct sockaddr *addr, int family)
{
    uint16_t port = family == AF_INET6 ? ((const struct sockaddr_in6 *)addr)->sin6_port
                                       : ((const struct sockaddr_in *)addr)->sin_port;
    if (port == 0)
        return 0;
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int rc = bind(fd, addr, len) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Set SO_REUSEPORT (libuv 1.44 sets it only on BSDs) on handle's socket before it is bound.
 * Only that: uv_udp_open would also set SO_REUSEADDR, and on Linux a UDP socket with
 * SO_REUSEADDR shares its address with any other that sets it, whatever user owns it,
 * while SO_REUSEPORT sockets share only with sockets of the same user. */
static int set_reuseport(uv_udp_t *handle)
{
    uv_os_fd_t fd;
    int one = 1;
    int rc = uv_fileno((const uv_handle_t *)handle, &fd);
    if (rc == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        rc = -errno;
    return rc;
}

static int bind_udp(struct server *srv, const struct config_listen *l, char *err, size_t n)
{
    struct udp_listener *u = &srv->udp[srv->n_udp];
    struct sockaddr_storage ss;
    char where[96];
    format_addr(l, "udp", where, sizeof(where));
    int rc = make_sockaddr(l, &ss);
    if (rc == 0 && srv->udp_sharing == SERVER_UDP_OPEN)
        rc = check_address_free((const struct sockaddr *)&ss, l->family);
    /* With a family the socket is created now, so its options can be set before bind. */
    if (rc == 0)
        rc = uv_udp_init_ex(srv->loop, &u->handle, (unsigned)l->family | UV_UDP_RECVMMSG);
    if (rc != 0) {
        snprintf(err, n, "%s: %s", where, uv_strerror(rc));
        return rc;
    }
    u->srv = srv;
    u->handle.data = u;
    srv->n_udp++;
    srv->open_handles++;
    if (srv->udp_sharing != SERVER_UDP_OWN && (rc = set_reuseport(&u->handle)) != 0) {
        snprintf(err, n, "%s: %s", where, uv_strerror(rc));
        return rc;
    }
    set_rcvbuf(&u->handle, srv->udp_rcvbuf, where);
    unsigned flags = l->family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
    rc = uv_udp_bind(&u->handle, (const struct sockaddr *)&ss, flags);
    if (rc == 0)
        rc = uv_udp_recv_start(&u->handle, udp_alloc, udp_recv);
    if (rc != 0)
        snprintf(err, n, "%s: %s", where, uv_strerror(rc));
    return rc;
}

static int bind_tcp(struct server *srv, const struct config_listen *l, char *err, size_t n)
{
    struct tcp_listener *t = &srv->tcp[srv->n_tcp];
    struct sockaddr_storage ss;
    char where[96];
    format_addr(l, "tcp", where, sizeof(where));
    int rc = make_sockaddr(l, &ss);
    if (rc == 0)
        rc = uv_tcp_init(srv->loop, &t->handle);
    if (rc != 0) {
        snprintf(err, n, "%s: %s", where, uv_strerror(rc));
        return rc;
    }
    t->srv = srv;
    t->handle.data = t;
    srv->n_tcp++;
    srv->open_handles++;
    unsigned flags = l->family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    rc = uv_tcp_bind(&t->handle, (const struct sockaddr *)&ss, flags);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->handle, TCP_BACKLOG, tcp_accept);
    if (rc != 0)
        snprintf(err, n, "%s: %s", where, uv_strerror(rc));
    return rc;
}

int server_start(uv_loop_t *loop, const struct server_config *cfg, const struct zonestore *zs,
                 const struct answers *ans, struct server **out, char *err, size_t err_len)
{
    int rc = DNSD_ENOMEM;
    struct server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return DNSD_ENOMEM;
    srv->loop = loop;
    srv->zs = zs;
    srv->ans = ans;
    srv->idle_timeout_ms = cfg->tcp_idle_timeout_ms;
    srv->max_conn_ms = cfg->tcp_max_connection_ms ? cfg->tcp_max_connection_ms : UINT32_MAX;
    srv->udp_rcvbuf = cfg->udp_rcvbuf;
    srv->max_conns = cfg->tcp_max_connections ? cfg->tcp_max_connections : 1;
    srv->query = query_ctx_new(&cfg->query);
    srv->recv_buf = malloc(UDP_BATCH * UDP_SLOT_SIZE);
    srv->udp = calloc(cfg->n_listen ? cfg->n_listen : 1, sizeof(*srv->udp));
    srv->tcp = calloc(cfg->n_listen ? cfg->n_listen : 1, sizeof(*srv->tcp));
    if (srv->query == NULL || srv->recv_buf == NULL || srv->udp == NULL || srv->tcp == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if (cfg->forward && cfg->forward->n_servers > 0) {
        srv->fwd_cfg = *cfg->forward;
        rc = forward_new(loop, &srv->fwd_cfg, &srv->fwd);
        if (rc != 0) {
            snprintf(err, err_len, "forwarders: %s", dnsd_strerror(rc));
            goto fail;
        }
    }
    srv->rrl = cfg->rrl;
    srv->udp_sharing = cfg->udp_sharing;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        rc = bind_udp(srv, &cfg->listen[i], err, err_len);
        if (rc == 0 && !cfg->udp_only)
            rc = bind_tcp(srv, &cfg->listen[i], err, err_len);
        if (rc != 0)
            goto fail;
    }
    *out = srv;
    return 0;

fail:
    /* uv error codes are -errno on Unix, which is what DNSD_E* codes are too. */
    if (srv->open_handles > 0 || srv->fwd) {
        server_stop(srv);
    } else {
        query_ctx_free(srv->query);
        free(srv->recv_buf);
        free(srv->udp);
        free(srv->tcp);
        free(srv);
    }
    return rc;
}

const struct metrics_dns *server_metrics(const struct server *srv)
{
    return &srv->stats;
}

uint16_t server_udp_port(const struct server *srv, size_t i)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (i >= srv->n_udp ||
        uv_udp_getsockname(&srv->udp[i].handle, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

void server_set_zonestore(struct server *srv, const struct zonestore *zs)
{
    __atomic_store_n(&srv->zs, zs, __ATOMIC_RELEASE);
}

void server_stop(struct server *srv)
{
    srv->stopping = true;
    /* Every forwarded query is dropped (its TCP connection released) before they close. */
    if (srv->fwd)
        forward_stop(srv->fwd, forward_closed, srv);
    for (size_t i = 0; i < srv->n_udp; i++) {
        srv->udp[i].handle.data = srv;
        uv_close((uv_handle_t *)&srv->udp[i].handle, listener_closed);
    }
    for (size_t i = 0; i < srv->n_tcp; i++) {
        srv->tcp[i].handle.data = srv;
        uv_close((uv_handle_t *)&srv->tcp[i].handle, listener_closed);
    }
    /* Answers already queued are written before their connection closes. */
    struct tcp_conn *conn = srv->lru_head;
    while (conn) {
        struct tcp_conn *next = conn->next;
        uv_read_stop((uv_stream_t *)&conn->handle);
        conn_close_when_flushed(conn);
        conn = next;
    }
    maybe_free_server(srv);
}
