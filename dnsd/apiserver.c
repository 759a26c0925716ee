/* SPDX-License-Identifier: BSD-2-Clause
 * libmicrohttpd on the libuv loop. MHD runs in "external select" mode with epoll: its
 * epoll fd is one uv_poll handle, and MHD_get_timeout() drives one uv_timer. Sockets are
 * created here (so Unix sockets get their mode and stale files are handled) and passed to
 * MHD with MHD_OPTION_LISTEN_SOCKET. Request bodies are collected up to max_body, then the
 * whole request goes to api_handle(). A watch that api_handle parks (status 0) is suspended
 * (MHD_suspend_connection) and kept on a hash chain by service and in a deadline heap; a
 * change of that service or the deadline resumes it, and MHD then calls the access handler
 * again, which asks api_handle again. Each connection must deliver a whole request within
 * timeout_s of being ready for it (a read deadline against slowloris, beside MHD's idle
 * timeout); headers must fit in max_header (MHD's per-connection memory) or MHD answers
 * 431. On TCP endpoints every request must carry a bearer token (tokens_find), checked
 * before its body is read: 401 without a known one, 403 beyond its scope (tokens_allow).
 * TLS on TCP endpoints is MHD's own (GnuTLS): MHD owns the sockets and their reads, so TLS
 * through OpenSSL memory BIOs would mean re-implementing MHD's connection I/O; the library's
 * built-in HTTPS is the maintained way. No JSON and no registry logic here. */
#include "apiserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "dnsd/error.h"
#include "api.h"
#include "privileges.h"
#include "tokens.h"
#include "log.h"
#include "metrics.h"

#define API_BACKLOG 128
/* A certificate chain or key file larger than this is not a PEM file dnsd should load. */
#define API_MAX_PEM_BYTES (1024 * 1024)
/* TLS 1.2 and 1.3 only (GnuTLS priority string; RFC 8996 deprecates TLS 1.0 and 1.1). */
static char tls_priorities[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

struct apiserver;

struct endpoint {
    struct apiserver *srv;       /* borrowed: the owner */
    struct MHD_Daemon *mhd;      /* owned */
    uv_poll_t poll;              /* watches MHD's epoll fd */
    uv_timer_t timer;            /* MHD's own timeouts; also "run MHD now" after a resume */
    char unix_path[108];         /* "" for TCP; removed on stop */
    char name[160];              /* "unix:/run/dnsd/api.sock", for logs */
    size_t n_parked;             /* watches parked on this endpoint */
    size_t n_committing;         /* writes waiting for the journal, or resumed to send */
    bool resumed;                /* a connection was resumed: MHD must run again */
    bool needs_token;            /* TCP: requests must carry Authorization: Bearer */
    bool tls;                    /* TCP with tls_cert/tls_key: HTTPS only */
    char mhd_error[256];         /* MHD's log lines while it starts, to explain a failure */
    uint64_t log_quiet_until_ms; /* MHD's runtime messages go to debug until then */
    uint64_t log_quieted;        /* messages sent to debug since the last warning */
    bool poll_open, timer_open;
};

struct request;

/* Per-connection state (MHD's socket context), from MHD_CONNECTION_NOTIFY_STARTED to
 * _CLOSED. While the connection waits for or reads a request it is on srv's reading list,
 * oldest first, and is cut off request_timeout_ms after it got there: MHD's own timeout
 * only measures inactivity, which a client sending a byte now and then never reaches
 * (slowloris). */
struct conn {
    struct endpoint *ep;      /* borrowed: the endpoint serving the connection */
    int fd;                   /* borrowed from MHD */
    uint64_t since_ms;        /* loop clock: when it began to wait for this request */
    bool reading;             /* on the reading list */
    struct conn *prev, *next; /* borrowed: neighbours on the reading list */
};

struct apiserver {
    uv_loop_t *loop;                   /* borrowed */
    struct api *api;                   /* borrowed */
    const struct config_token *tokens; /* borrowed from the daemon's configuration */
    size_t n_tokens;
    struct endpoint *eps; /* owned array */
    size_t n_eps;
    size_t max_body;
    size_t max_parked;       /* per endpoint */
    struct request **chains; /* owned array of n_chains hash chains of parked requests
                                (the requests are owned by MHD's con_cls) */
    size_t n_chains;         /* a power of two */
    struct request **heap;   /* owned array: parked requests, min-heap by deadline */
    size_t n_heap, heap_cap;
    uv_timer_t watch_timer; /* fires at the earliest parked deadline */
    bool watch_timer_open;
    unsigned open_handles;
    bool stopping;
    struct request *committing;     /* borrowed list (via commit_next) of suspended writes
                                       waiting for the journal's sync */
    struct metrics_sources metrics; /* copy; its pointers are borrowed from the daemon */
    struct metrics_api api_stats;   /* replies sent */
    /* connections waiting for or reading a request, oldest first */
    struct conn *reading_head, *reading_tail; /* borrowed; owned by MHD's socket contexts */
    uint64_t request_timeout_ms;
    uv_timer_t read_timer; /* fires at the oldest reading connection's deadline */
    bool read_timer_open;
    char *tls_cert; /* owned: PEM text; NULL = plain HTTP */
    char *tls_key;  /* owned: PEM text, wiped before it is freed */
    size_t tls_key_len;
    gid_t socket_gid; /* (gid_t)-1: keep the process's group */
};

/* Per-request state kept by MHD between calls of the access handler (con_cls); freed on
 * MHD_OPTION_NOTIFY_COMPLETED. */
struct request {
    char *body; /* owned */
    size_t len, cap;
    bool too_large;
    /* watch state */
    struct endpoint *ep;         /* borrowed: the endpoint serving the connection */
    struct MHD_Connection *conn; /* borrowed from MHD; set while parked */
    char service[64];            /* parked on this service */
    uint64_t hash;               /* of service */
    uint64_t deadline_ms;        /* loop clock; fixed when first parked */
    size_t heap_idx;             /* position in srv->heap while parked */
    struct request *prev, *next; /* borrowed: neighbours on the hash chain while parked */
    bool parked;
    bool watched; /* parked at least once: deadline_ms is set */
    bool final;   /* the deadline passed: ask api_handle with API_FINAL */
    /* durable write state (fsync "always"): the reply waits for the journal */
    struct api_response commit_reply; /* owned while commit_waiting or commit_ready */
    struct request *commit_next;      /* borrowed: next on srv->committing */
    bool commit_waiting;              /* suspended, on srv->committing */
    bool commit_ready;                /* resumed: send commit_reply on the next call */
};

static void reschedule(struct endpoint *ep);
static void on_timer(uv_timer_t *timer);

/* Shortest time between two runtime warnings from libmicrohttpd, per endpoint. */
#define MHD_LOG_INTERVAL_MS 10000

/* MHD hands us its own printf format; it is a trusted constant inside the library. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct endpoint *ep = cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (ep->mhd == NULL) {
        if (n > 0 && line[n - 1] == '.')
            line[--n] = '\0';
        size_t used = strlen(ep->mhd_error);
        snprintf(ep->mhd_error + used, sizeof(ep->mhd_error) - used, "%s%s", used ? "; " : "",
                 line);
    }
    if (ep->mhd == NULL) {
        log_warn("api", "%s: %s", ep->name, line);
        return;
    }
    /* Once serving, MHD speaks mostly of one client's connection (a failed TLS handshake, a
     * broken request), which anyone who can connect may cause: one warning per interval,
     * the rest at debug level, so no client can flood the log. */
    uint64_t now_ms = uv_now(ep->srv->loop);
    if (now_ms < ep->log_quiet_until_ms) {
        ep->log_quieted++;
        log_debug("api", "%s: %s", ep->name, line);
        return;
    }
    if (ep->log_quieted)
        log_warn("api", "%s: %s (and %" PRIu64 " such messages at debug level before it)", ep->name,
                 line, ep->log_quieted);
    else
        log_warn("api", "%s: %s", ep->name, line);
    ep->log_quieted = 0;
    ep->log_quiet_until_ms = now_ms + MHD_LOG_INTERVAL_MS;
}
#pragma GCC diagnostic pop

/* Queue reply, with the extra header name: value when name is not NULL. */
static enum MHD_Result send_reply_with(struct MHD_Connection *conn, struct api_response *reply,
                                       const char *name, const char *value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(reply->body_len, reply->body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (name)
        MHD_add_response_header(resp, name, value);
    if (reply->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
    if (reply->has_index) {
        char index[24];
        snprintf(index, sizeof(index), "%" PRIu64, reply->index);
        MHD_add_response_header(resp, "X-Dnsd-Index", index);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)reply->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct api_response *reply)
{
    return send_reply_with(conn, reply, NULL, NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *msg,
                                  const char *field)
{
    struct api_response reply;
    if (api_error_response(status, msg, field, &reply) != 0)
        return MHD_NO;
    enum MHD_Result rc = send_reply(conn, &reply);
    api_response_clear(&reply);
    return rc;
}

static bool body_append(struct request *req, const char *data, size_t n, size_t max)
{
    if (req->too_large || req->len + n > max) {
        req->too_large = true;
        return true;
    }
    if (req->len + n + 1 > req->cap) {
        size_t cap = req->cap ? req->cap : 1024;
        while (cap < req->len + n + 1)
            cap *= 2;
        char *grown = realloc(req->body, cap);
        if (grown == NULL)
            return false;
        req->body = grown;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, n);
    req->len += n;
    req->body[req->len] = '\0';
    return true;
}

/* Rebuild "path?query" for api_handle; MHD hands the query string over separately. */
static enum MHD_Result append_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    char *url = cls;
    (void)kind;
    size_t used = strlen(url);
    snprintf(url + used, 2048 - used, "%c%s%s%s", strchr(url, '?') ? '&' : '?', key,
             value ? "=" : "", value ? value : "");
    return MHD_YES;
}

/* ---- parked watches ----------------------------------------------------------------------- */

/* FNV-1a over the service name. */
static uint64_t hash_service(const char *name)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static void heap_swap(struct apiserver *srv, size_t i, size_t j)
{
    struct request *t = srv->heap[i];
    srv->heap[i] = srv->heap[j];
    srv->heap[j] = t;
    srv->heap[i]->heap_idx = i;
    srv->heap[j]->heap_idx = j;
}

static void heap_up(struct apiserver *srv, size_t i)
{
    while (i > 0 && srv->heap[(i - 1) / 2]->deadline_ms > srv->heap[i]->deadline_ms) {
        heap_swap(srv, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct apiserver *srv, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < srv->n_heap && srv->heap[l]->deadline_ms < srv->heap[m]->deadline_ms)
            m = l;
        if (r < srv->n_heap && srv->heap[r]->deadline_ms < srv->heap[m]->deadline_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(srv, i, m);
        i = m;
    }
}

static void heap_remove(struct apiserver *srv, size_t i)
{
    srv->n_heap--;
    if (i == srv->n_heap)
        return;
    heap_swap(srv, i, srv->n_heap);
    heap_up(srv, i);
    heap_down(srv, i);
}

static void on_watch_timer(uv_timer_t *timer);

/* Arm the watch timer for the earliest parked deadline (or stop it). */
static void arm_watch_timer(struct apiserver *srv)
{
    if (!srv->watch_timer_open)
        return;
    if (srv->n_heap == 0) {
        uv_timer_stop(&srv->watch_timer);
        return;
    }
    uint64_t now = uv_now(srv->loop);
    uint64_t due = srv->heap[0]->deadline_ms;
    uv_timer_start(&srv->watch_timer, on_watch_timer, due > now ? due - now : 0, 0);
}

/* Take req off its hash chain and out of the heap (its connection stays as it is). */
static void forget_parked(struct apiserver *srv, struct request *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        srv->chains[req->hash & (srv->n_chains - 1)] = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    heap_remove(srv, req->heap_idx);
    req->ep->n_parked--;
    req->parked = false;
}

/* Resume a parked request; final: its deadline passed. MHD calls the access handler again
 * on its next run, which is scheduled at once: a resumed connection may not make MHD's
 * epoll fd readable. */
static void resume_parked(struct apiserver *srv, struct request *req, bool final)
{
    forget_parked(srv, req);
    req->final = req->final || final;
    MHD_resume_connection(req->conn);
    req->conn = NULL;
    req->ep->resumed = true;
    if (req->ep->timer_open && !srv->stopping)
        uv_timer_start(&req->ep->timer, on_timer, 0, 0);
}

static void on_watch_timer(uv_timer_t *timer)
{
    struct apiserver *srv = timer->data;
    uint64_t now = uv_now(srv->loop);
    while (srv->n_heap > 0 && srv->heap[0]->deadline_ms <= now)
        resume_parked(srv, srv->heap[0], true);
    arm_watch_timer(srv);
}

void apiserver_notify_service(struct apiserver *srv, const char *service)
{
    if (srv == NULL || srv->n_heap == 0)
        return;
    uint64_t hash = hash_service(service);
    struct request *req = srv->chains[hash & (srv->n_chains - 1)];
    while (req) {
        struct request *next = req->next;
        if (req->hash == hash && strcmp(req->service, service) == 0)
            resume_parked(srv, req, false);
        req = next;
    }
    arm_watch_timer(srv);
}

/* Park req (api_handle said status 0) until reply->watch_service changes or the deadline.
 * A watch woken without a change keeps its first deadline. Returns false when it cannot
 * be parked: the endpoint is at its limit of parked watches. */
static bool park(struct apiserver *srv, struct MHD_Connection *conn, struct request *req,
                 const struct api_response *reply)
{
    struct endpoint *ep = req->ep;
    if (ep->n_parked >= srv->max_parked || srv->n_heap >= srv->heap_cap)
        return false;
    if (!req->watched || reply->watch_deadline_ms < req->deadline_ms)
        req->deadline_ms = reply->watch_deadline_ms;
    req->watched = true;
    snprintf(req->service, sizeof(req->service), "%s", reply->watch_service);
    req->hash = hash_service(req->service);
    req->conn = conn;
    struct request **chain = &srv->chains[req->hash & (srv->n_chains - 1)];
    req->prev = NULL;
    req->next = *chain;
    if (*chain)
        (*chain)->prev = req;
    *chain = req;
    req->heap_idx = srv->n_heap;
    srv->heap[srv->n_heap++] = req;
    heap_up(srv, req->heap_idx);
    ep->n_parked++;
    req->parked = true;
    MHD_suspend_connection(conn);
    arm_watch_timer(srv);
    return true;
}

/* Resume every parked request of endpoint ep (shutdown). */
static void resume_all(struct apiserver *srv, struct endpoint *ep)
{
    for (size_t c = 0; c < srv->n_chains; c++) {
        struct request *req = srv->chains[c];
        while (req) {
            struct request *next = req->next;
            if (req->ep == ep)
                resume_parked(srv, req, true);
            req = next;
        }
    }
}

/* ---- metrics ------------------------------------------------------------------------------- */

void apiserver_set_metrics(struct apiserver *srv, const struct metrics_sources *src)
{
    srv->metrics = *src;
}

/* GET or HEAD /metrics: the Prometheus text of metrics.h (MHD leaves the body out for HEAD);
 * 405 for any other method. */
static enum MHD_Result serve_metrics(struct apiserver *srv, struct MHD_Connection *conn,
                                     const char *method)
{
    enum MHD_Result rc;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        struct api_response reply;
        if (api_error_response(405, "method not allowed on /metrics", NULL, &reply) != 0)
            return MHD_NO;
        reply.allow = "GET, HEAD";
        rc = send_reply(conn, &reply);
        api_response_clear(&reply);
        return rc;
    }
    struct metrics_sources src = srv->metrics;
    src.api = &srv->api_stats;
    char *text;
    size_t len;
    if (metrics_render(&src, &text, &len) != 0) {
        log_error("api", "GET /metrics: out of memory");
        return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
    rc = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- durable writes ------------------------------------------------------------------------ */

/* Suspend req until apiserver_commit_done; takes reply. Returns false when stopping. */
static bool commit_park(struct apiserver *srv, struct MHD_Connection *conn, struct request *req,
                        struct api_response *reply)
{
    if (srv->stopping)
        return false;
    req->commit_reply = *reply;
    memset(reply, 0, sizeof(*reply));
    req->conn = conn;
    req->commit_waiting = true;
    req->commit_next = srv->committing;
    srv->committing = req;
    req->ep->n_committing++;
    MHD_suspend_connection(conn);
    return true;
}

/* Send the reply a resumed durable write kept. */
static enum MHD_Result commit_send(struct MHD_Connection *conn, struct request *req)
{
    enum MHD_Result rc = send_reply(conn, &req->commit_reply);
    api_response_clear(&req->commit_reply);
    req->commit_ready = false;
    req->ep->n_committing--;
    return rc;
}

void apiserver_commit_done(struct apiserver *srv, int err, const char *reason)
{
    if (srv == NULL)
        return;
    struct request *req = srv->committing;
    srv->committing = NULL;
    while (req) {
        struct request *next = req->commit_next;
        char msg[512];
        struct api_response failed;
        snprintf(msg, sizeof(msg), "cannot persist: %s", reason ? reason : dnsd_strerror(err));
        if (err != 0 && api_error_response(503, msg, NULL, &failed) == 0) {
            api_response_clear(&req->commit_reply);
            req->commit_reply = failed;
        }
        req->commit_next = NULL;
        req->commit_waiting = false;
        req->commit_ready = true;
        MHD_resume_connection(req->conn);
        req->conn = NULL;
        req->ep->resumed = true;
        if (req->ep->timer_open && !srv->stopping)
            uv_timer_start(&req->ep->timer, on_timer, 0, 0);
        req = next;
    }
}

/* Take req off srv->committing (its connection went away). */
static void commit_forget(struct apiserver *srv, struct request *req)
{
    for (struct request **link = &srv->committing; *link; link = &(*link)->commit_next) {
        if (*link == req) {
            *link = req->commit_next;
            break;
        }
    }
    if (req->commit_waiting || req->commit_ready)
        req->ep->n_committing--;
    req->commit_waiting = req->commit_ready = false;
    api_response_clear(&req->commit_reply);
}

/* ---- request read deadline ----------------------------------------------------------------- */

static void on_read_timer(uv_timer_t *timer);

static void arm_read_timer(struct apiserver *srv)
{
    if (!srv->read_timer_open || srv->stopping)
        return;
    if (srv->reading_head == NULL) {
        uv_timer_stop(&srv->read_timer);
        return;
    }
    uint64_t due = srv->reading_head->since_ms + srv->request_timeout_ms, now = uv_now(srv->loop);
    uv_timer_start(&srv->read_timer, on_read_timer, due > now ? due - now : 0, 0);
}

/* Take c off the reading list (its request has arrived, or it closed). */
static void reading_stop(struct apiserver *srv, struct conn *c)
{
    if (c == NULL || !c->reading)
        return;
    bool was_head = srv->reading_head == c;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->reading_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        srv->reading_tail = c->prev;
    c->prev = c->next = NULL;
    c->reading = false;
    if (was_head)
        arm_read_timer(srv);
}

/* Start c's deadline for its next request now; the list stays ordered by since_ms. */
static void reading_start(struct apiserver *srv, struct conn *c)
{
    if (c == NULL)
        return;
    reading_stop(srv, c);
    c->since_ms = uv_now(srv->loop);
    c->prev = srv->reading_tail;
    if (srv->reading_tail)
        srv->reading_tail->next = c;
    else
        srv->reading_head = c;
    srv->reading_tail = c;
    c->reading = true;
    if (srv->reading_head == c)
        arm_read_timer(srv);
}

static struct conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* Shut down the connections past their deadline. shutdown(), not close(): the fd stays
 * MHD's, which sees the end of the stream on its next run and closes it the usual way. */
static void on_read_timer(uv_timer_t *timer)
{
    struct apiserver *srv = timer->data;
    uint64_t now = uv_now(srv->loop);
    struct conn *c;
    while ((c = srv->reading_head) != NULL && c->since_ms + srv->request_timeout_ms <= now) {
        reading_stop(srv, c);
        log_debug("api", "%s: no complete request within %" PRIu64 " ms; closing", c->ep->name,
                  srv->request_timeout_ms);
        shutdown(c->fd, SHUT_RDWR);
        if (c->ep->timer_open)
            uv_timer_start(&c->ep->timer, on_timer, 0, 0);
    }
    arm_read_timer(srv);
}

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    struct endpoint *ep = cls;
    struct conn *c = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        reading_stop(ep->srv, c);
        free(c);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c = calloc(1, sizeof(*c));
    if (c == NULL || info == NULL) {
        /* Without its state the connection has no read deadline; MHD's idle timeout and
         * connection limit still apply. */
        log_error("api", "%s: out of memory tracking a connection", ep->name);
        free(c);
        return;
    }
    c->ep = ep;
    c->fd = info->connect_fd;
    *socket_context = c;
    reading_start(ep->srv, c);
}

/* ---- bearer tokens -------------------------------------------------------------------------- */

/* The client's address as text, for logs. */
static void client_name(struct MHD_Connection *conn, char *out, size_t n)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, n, "?");
    if (info == NULL || info->client_addr == NULL)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)n);
}

/* Check a TCP request's bearer token before its body is read. Returns false when it may go
 * on; true when refused: the 401 or 403 reply is queued (*rc) and the refusal logged, by the
 * token's name, never the token. */
static bool refuse_unauthorized(struct endpoint *ep, struct MHD_Connection *conn, const char *url,
                                const char *method, enum MHD_Result *rc)
{
    struct apiserver *srv = ep->srv;
    const char *header =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = NULL;
    size_t len = 0;
    const struct config_token *tok = NULL;
    bool bearer = tokens_parse_bearer(header, &token, &len);
    if (bearer)
        tok = tokens_find(srv->tokens, srv->n_tokens, token, len);
    if (tok && tokens_allow(tok, method, url))
        return false;

    char client[INET6_ADDRSTRLEN];
    client_name(conn, client, sizeof(client));
    struct api_response reply;
    const char *hdr = NULL;
    if (tok == NULL) {
        log_warn("api", "%s: %s %s from %s refused (401): %s", ep->name, method, url, client,
                 header == NULL ? "no Authorization header"
                 : !bearer      ? "Authorization is not \"Bearer TOKEN\""
                                : "unknown token");
        if (api_error_response(401,
                               header == NULL ? "this endpoint needs Authorization: Bearer TOKEN"
                                              : "invalid bearer token",
                               NULL, &reply) != 0) {
            *rc = MHD_NO;
            return true;
        }
        hdr = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
    } else {
        char msg[400];
        log_warn("api", "%s: %s %s from %s refused (403): token '%s' lacks the scope", ep->name,
                 method, url, client, tok->name);
        snprintf(msg, sizeof(msg), "token '%s' may not %s %s", tok->name, method, url);
        if (api_error_response(403, msg, NULL, &reply) != 0) {
            *rc = MHD_NO;
            return true;
        }
    }
    reading_stop(srv, conn_of(conn));
    *rc = send_reply_with(conn, &reply, hdr, "Bearer realm=\"dnsd\"");
    api_response_clear(&reply);
    return true;
}

/* ---- requests ------------------------------------------------------------------------------ */

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    struct endpoint *ep = cls;
    struct apiserver *srv = ep->srv;
    struct request *req = *con_cls;
    (void)version;

    if (req == NULL) {
        /* First call: headers only. Refuse an unauthorized request or an announced
         * oversized body before reading it. */
        enum MHD_Result refused;
        if (ep->needs_token && refuse_unauthorized(ep, conn, url, method, &refused))
            return refused;
        const char *clen =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (clen && strtoull(clen, NULL, 10) > srv->max_body) {
            char msg[96];
            snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", srv->max_body);
            reading_stop(srv, conn_of(conn));
            return send_error(conn, 413, msg, "body");
        }
        req = calloc(1, sizeof(*req));
        if (req == NULL)
            return MHD_NO;
        req->ep = ep;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!body_append(req, upload_data, *upload_data_size, srv->max_body))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The whole request has arrived: no read deadline while it is answered, parked or
     * waiting for the journal. */
    reading_stop(srv, conn_of(conn));
    if (req->too_large) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", srv->max_body);
        return send_error(conn, 413, msg, "body");
    }
    /* Metrics are served here, not by api.c: they read more than the registry. */
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(srv, conn, method);

    char full_url[2048];
    snprintf(full_url, sizeof(full_url), "%s", url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_arg, full_url);

    if (req->commit_ready)
        return commit_send(conn, req);
    /* A watch woken after its deadline, or one that finds dnsd stopping, is answered with
     * the current state. */
    uint64_t now = uv_now(srv->loop);
    if (srv->stopping || (req->watched && now >= req->deadline_ms))
        req->final = true;
    struct api_response reply;
    if (api_handle(srv->api, method, full_url, req->body ? req->body : "", req->len,
                   req->final ? API_FINAL : 0, now, &reply) != 0) {
        log_error("api", "%s %s: out of memory", method, url);
        return MHD_NO;
    }
    if (reply.durable_wait && commit_park(srv, conn, req, &reply))
        return MHD_YES;
    if (reply.status == 0) {
        bool parked = !srv->stopping && park(srv, conn, req, &reply);
        api_response_clear(&reply);
        if (parked)
            return MHD_YES;
        char msg[96];
        snprintf(msg, sizeof(msg), "too many watches on this endpoint (%zu); retry later",
                 srv->max_parked);
        return send_error(conn, 503, msg, NULL);
    }
    enum MHD_Result rc = send_reply(conn, &reply);
    api_response_clear(&reply);
    return rc;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct endpoint *ep = cls;
    struct request *req = *con_cls;
    /* A kept-alive connection now waits for its next request (if it is closing, the
     * NOTIFY_CLOSED that follows takes it off the list again). */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !ep->srv->stopping)
        reading_start(ep->srv, conn_of(conn));
    /* Every reply is counted here, whichever path queued it. */
    const union MHD_ConnectionInfo *sent =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (sent)
        ep->srv->api_stats.requests[metrics_api_class_of((int)sent->http_status)]++;
    if (req) {
        /* MHD does not see a parked client go away, but be safe if it ever closes one. */
        if (req->parked) {
            forget_parked(ep->srv, req);
            arm_watch_timer(ep->srv);
        }
        if (req->commit_waiting || req->commit_ready)
            commit_forget(ep->srv, req);
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

static unsigned connection_count(struct endpoint *ep)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(ep->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

/* MHD takes its listening socket out of its epoll set while at the connection limit and
 * puts it back only at the start of a later MHD_run(), but a run that closes connections
 * leaves its epoll fd silent; so after such a run, run again at once, or clients waiting
 * in the backlog would never be accepted. */
static void run_mhd(struct endpoint *ep)
{
    if (ep->srv->stopping)
        return;
    unsigned before = connection_count(ep);
    ep->resumed = false;
    MHD_run(ep->mhd);
    /* A connection resumed during the run (a watch woken by a registration) is handled on
     * the next run only. */
    if (connection_count(ep) < before || ep->resumed)
        uv_timer_start(&ep->timer, on_timer, 0, 0);
    else
        reschedule(ep);
}

static void on_readable(uv_poll_t *poll, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(poll->data);
}

static void on_timer(uv_timer_t *timer)
{
    run_mhd(timer->data);
}

static void reschedule(struct endpoint *ep)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(ep->mhd, &ms) == MHD_YES)
        uv_timer_start(&ep->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&ep->timer);
}

/* Remove a socket file left by a dead dnsd, but never one a live process listens on. The
 * probe never blocks: a non-blocking connect() to a Unix socket completes at once (accepted
 * into the backlog), fails with EAGAIN (backlog full: alive, only busy) or fails with
 * ECONNREFUSED (nobody listens: stale). */
static int clear_stale_socket(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return DNSD_EEXIST;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    bool live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN ||
                errno == EINPROGRESS;
    close(fd);
    if (live)
        return -EADDRINUSE;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Create the socket's directory and any missing parents ("mkdir -p"), mode 0755. */
static int ensure_parent_dir(const char *path)
{
    char dir[sizeof(((struct config_api *)0)->path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        struct stat st;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -errno;
        if (stat(dir, &st) != 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if (last)
            return 0;
        *p = '/';
    }
}

/* Give the bound socket file at path its group and mode; *chown_failed tells which failed. */
static int set_owner_mode(const char *path, uint32_t mode, gid_t gid, bool *chown_failed)
{
    if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) {
        *chown_failed = true;
        return -errno;
    }
    return chmod(path, mode) == 0 ? 0 : -errno;
}

/* Bind fd at path in a fresh 0700 directory beside it, give the file its group and mode
 * there and rename it into place, so that nobody can connect before it has them. (fchmod()
 * does not apply to a socket's file on Linux, and chmod() after binding in place leaves a
 * window.) Returns: 0, DNSD_ERANGE (the temporary path does not fit sun_path), -errno. */
static int bind_aside(int fd, const char *path, uint32_t mode, gid_t gid, bool *chown_failed)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char dir[sizeof(sun.sun_path) - 2]; /* room for "/s" */
    const char *slash = strrchr(path, '/');
    int n = snprintf(dir, sizeof(dir), "%.*s/.dnsd-XXXXXX", slash ? (int)(slash - path) : 1,
                     slash ? path : ".");
    if (n < 0 || (size_t)n >= sizeof(dir))
        return DNSD_ERANGE;
    if (mkdtemp(dir) == NULL)
        return -errno;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", dir);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        rc = -errno;
        goto fail;
    }
    rc = set_owner_mode(sun.sun_path, mode, gid, chown_failed);
    if (rc != 0)
        goto fail;
    /* RENAME_NOREPLACE: a dnsd that started meanwhile keeps its socket. */
    if (renameat2(AT_FDCWD, sun.sun_path, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL && errno != ENOSYS) {
            rc = errno == EEXIST ? -EADDRINUSE : -errno;
            goto fail;
        }
        if (rename(sun.sun_path, path) != 0) {
            rc = -errno;
            goto fail;
        }
    }
    rmdir(dir);
    return 0;

fail:
    unlink(sun.sun_path);
    rmdir(dir);
    return rc;
}

/* Bind fd at path with no permissions at all (umask 0777), then give it group and mode: for
 * a path too long for bind_aside. The umask is process-wide, so this is only the fallback:
 * a file another thread created meanwhile would come out too strict, never too loose. */
static int bind_masked(int fd, const char *path, uint32_t mode, gid_t gid, bool *chown_failed)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    mode_t old = umask(0777);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ? 0 : -errno;
    umask(old);
    if (rc != 0)
        return rc;
    rc = set_owner_mode(path, mode, gid, chown_failed);
    if (rc != 0)
        unlink(path);
    return rc;
}

/* File permissions are the access control of a Unix socket: it appears at its path with
 * mode and group already set (see bind_aside). */
static int open_unix(const struct config_api *cfg, uint32_t mode, gid_t gid, int *out_fd,
                     bool *chown_failed)
{
    int rc = ensure_parent_dir(cfg->path);
    if (rc == 0)
        rc = clear_stale_socket(cfg->path);
    if (rc != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    rc = bind_aside(fd, cfg->path, mode, gid, chown_failed);
    if (rc == DNSD_ERANGE)
        rc = bind_masked(fd, cfg->path, mode, gid, chown_failed);
    if (rc != 0)
        goto fail;
    if (listen(fd, API_BACKLOG) != 0) {
        rc = -errno;
        unlink(cfg->path);
        goto fail;
    }
    *out_fd = fd;
    return 0;

fail:
    close(fd);
    return rc;
}

static int open_tcp(const struct config_api *cfg, int *out_fd)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (cfg->family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cfg->port);
        inet_pton(AF_INET6, cfg->host, &sin6->sin6_addr);
        len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cfg->port);
        inet_pton(AF_INET, cfg->host, &sin->sin_addr);
        len = sizeof(*sin);
    }
    int fd = socket(cfg->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (cfg->family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, API_BACKLOG) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *out_fd = fd;
    return 0;
}

static void endpoint_name(const struct config_api *cfg, char *out, size_t n)
{
    if (cfg->kind == CONFIG_API_UNIX)
        snprintf(out, n, "unix:%s", cfg->path);
    else if (cfg->family == AF_INET6)
        snprintf(out, n, "tcp:[%s]:%u", cfg->host, cfg->port);
    else
        snprintf(out, n, "tcp:%s:%u", cfg->host, cfg->port);
}

static int endpoint_start(struct apiserver *srv, struct endpoint *ep,
                          const struct apiserver_config *cfg, const struct config_api *api_cfg,
                          bool *chown_failed)
{
    int fd = -1;
    int rc;
    ep->srv = srv;
    endpoint_name(api_cfg, ep->name, sizeof(ep->name));
    if (api_cfg->kind == CONFIG_API_UNIX) {
        rc = open_unix(api_cfg, cfg->socket_mode, srv->socket_gid, &fd, chown_failed);
        if (rc == 0)
            snprintf(ep->unix_path, sizeof(ep->unix_path), "%s", api_cfg->path);
    } else {
        ep->needs_token = true;
        ep->tls = srv->tls_cert != NULL;
        rc = open_tcp(api_cfg, &fd);
    }
    if (rc != 0)
        return rc;

    /* HTTPS: MHD's GnuTLS copies key and certificate while it starts. The handshake counts
     * against the connection's request deadline (it starts at MHD_CONNECTION_NOTIFY_STARTED,
     * on accept) as well as MHD's idle timeout, so a slow handshake cannot hold a slot. */
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, tls_priorities},
        {MHD_OPTION_END, 0, NULL},
    };
    ep->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_SUPPRESS_DATE_NO_CLOCK |
            MHD_ALLOW_SUSPEND_RESUME | (ep->tls ? MHD_USE_TLS : 0),
        0, NULL, NULL, handle_request, ep, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, ep,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, request_completed, ep,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->max_header,
        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, ep, MHD_OPTION_ARRAY,
        ep->tls ? tls_opts : &tls_opts[3], MHD_OPTION_END);
    if (ep->mhd == NULL) {
        close(fd);
        if (ep->unix_path[0])
            unlink(ep->unix_path);
        ep->unix_path[0] = '\0';
        return ep->tls ? DNSD_EINVAL : DNSD_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(ep->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL)
        return DNSD_EIO;
    rc = uv_poll_init(srv->loop, &ep->poll, info->epoll_fd);
    if (rc != 0)
        return rc;
    ep->poll.data = ep;
    ep->poll_open = true;
    srv->open_handles++;
    uv_timer_init(srv->loop, &ep->timer);
    ep->timer.data = ep;
    ep->timer_open = true;
    srv->open_handles++;
    rc = uv_poll_start(&ep->poll, UV_READABLE, on_readable);
    if (rc != 0)
        return rc;
    reschedule(ep);
    return 0;
}

/* Read the PEM file at path into *out (owned, NUL-terminated, *len bytes); marker must occur
 * in it. Returns: 0, DNSD_ERANGE (larger than API_MAX_PEM_BYTES), DNSD_EINVAL (no marker),
 * DNSD_ENOMEM, -errno. */
static int read_pem(const char *path, const char *marker, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    char *text = NULL;
    size_t n = 0;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EISDIR;
        goto fail;
    }
    if (st.st_size > API_MAX_PEM_BYTES) {
        rc = DNSD_ERANGE;
        goto fail;
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        rc = DNSD_ENOMEM;
        goto fail;
    }
    while (n < (size_t)st.st_size) {
        ssize_t got = read(fd, text + n, (size_t)st.st_size - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto fail;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    text[n] = '\0';
    if (strstr(text, marker) == NULL) {
        rc = DNSD_EINVAL;
        goto fail;
    }
    close(fd);
    *out = text;
    *len = n;
    return 0;

fail:
    if (text)
        explicit_bzero(text, n);
    free(text);
    close(fd);
    return rc;
}

/* Read api_options.tls_cert and tls_key into srv. Returns: 0, or an error with err set. */
static int load_tls(struct apiserver *srv, const struct apiserver_config *cfg, char *err,
                    size_t err_len)
{
    static const struct {
        const char *option, *marker, *what;
    } files[] = {
        {"tls_cert", "-----BEGIN CERTIFICATE-----", "a PEM certificate (BEGIN CERTIFICATE)"},
        {"tls_key", "PRIVATE KEY-----", "a PEM private key (BEGIN ... PRIVATE KEY)"},
    };
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, err_len,
                 "api_options.tls_cert: this libmicrohttpd was built without TLS support");
        return -ENOTSUP;
    }
    size_t cert_len;
    for (size_t i = 0; i < 2; i++) {
        const char *path = i == 0 ? cfg->tls_cert : cfg->tls_key;
        int rc = read_pem(path, files[i].marker, i == 0 ? &srv->tls_cert : &srv->tls_key,
                          i == 0 ? &cert_len : &srv->tls_key_len);
        if (rc == DNSD_EINVAL)
            snprintf(err, err_len, "api_options.%s: %s: not %s", files[i].option, path,
                     files[i].what);
        else if (rc == DNSD_ERANGE)
            snprintf(err, err_len, "api_options.%s: %s: larger than %d bytes", files[i].option,
                     path, API_MAX_PEM_BYTES);
        else if (rc != 0)
            snprintf(err, err_len, "api_options.%s: cannot read %s: %s", files[i].option, path,
                     strerror(-rc));
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Describe endpoint ep's failure to start (rc) in err. */
static void start_error(const struct apiserver_config *cfg, const struct endpoint *ep,
                        const struct config_api *api_cfg, int rc, bool chown_failed, char *err,
                        size_t err_len)
{
    bool is_unix = api_cfg->kind == CONFIG_API_UNIX;
    if (chown_failed)
        snprintf(err, err_len,
                 "%s: api_options.socket_group: cannot give the socket to group "
                 "'%s': %s",
                 ep->name, cfg->socket_group, strerror(-rc));
    else if (is_unix && rc == -EADDRINUSE)
        snprintf(err, err_len, "%s: another process (a running dnsd?) is listening on this socket",
                 ep->name);
    else if (is_unix && rc == DNSD_EEXIST)
        snprintf(err, err_len, "%s: exists and is not a socket; not replacing it", ep->name);
    else if (ep->tls && ep->mhd == NULL && rc == DNSD_EINVAL)
        snprintf(err, err_len,
                 "%s: TLS refused api_options.tls_cert (%s) and api_options.tls_key (%s) (not a "
                 "matching certificate and unencrypted private key?): %s",
                 ep->name, cfg->tls_cert, cfg->tls_key,
                 ep->mhd_error[0] ? ep->mhd_error : "no details");
    else
        snprintf(err, err_len, "%s: %s", ep->name, dnsd_strerror(rc));
}

int apiserver_start(uv_loop_t *loop, const struct apiserver_config *cfg, struct api *api,
                    struct apiserver **out, char *err, size_t err_len)
{
    struct apiserver *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return DNSD_ENOMEM;
    srv->loop = loop;
    srv->api = api;
    srv->tokens = cfg->tokens;
    srv->n_tokens = cfg->n_tokens;
    srv->max_body = cfg->max_body;
    srv->request_timeout_ms = (uint64_t)cfg->timeout_s * 1000;
    /* Watches may hold 3/4 of an endpoint's connections; the rest stay for registrations. */
    srv->max_parked = cfg->max_connections - cfg->max_connections / 4;
    if (srv->max_parked == 0)
        srv->max_parked = 1;
    srv->heap_cap = srv->max_parked * (cfg->n_endpoints ? cfg->n_endpoints : 1);
    srv->n_chains = 16;
    while (srv->n_chains < srv->heap_cap)
        srv->n_chains *= 2;
    srv->eps = calloc(cfg->n_endpoints ? cfg->n_endpoints : 1, sizeof(*srv->eps));
    srv->chains = calloc(srv->n_chains, sizeof(*srv->chains));
    srv->heap = calloc(srv->heap_cap, sizeof(*srv->heap));
    if (srv->eps == NULL || srv->chains == NULL || srv->heap == NULL) {
        free(srv->eps);
        free(srv->chains);
        free(srv->heap);
        free(srv);
        return DNSD_ENOMEM;
    }
    uv_timer_init(loop, &srv->watch_timer);
    srv->watch_timer.data = srv;
    srv->watch_timer_open = true;
    srv->open_handles++;
    uv_timer_init(loop, &srv->read_timer);
    srv->read_timer.data = srv;
    srv->read_timer_open = true;
    srv->open_handles++;

    /* "" keeps the process's group ((gid_t)-1 tells chown not to change it). */
    srv->socket_gid = (gid_t)-1;
    int rc = cfg->socket_group && cfg->socket_group[0]
                 ? privileges_find_group(cfg->socket_group, &srv->socket_gid)
                 : 0;
    if (rc != 0) {
        snprintf(err, err_len, "api_options.socket_group: '%s': %s", cfg->socket_group,
                 rc == DNSD_ENOENT ? "no such group" : strerror(-rc));
        apiserver_stop(srv);
        return rc;
    }
    if (cfg->tls_cert && cfg->tls_cert[0] && (rc = load_tls(srv, cfg, err, err_len)) != 0) {
        apiserver_stop(srv);
        return rc;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        struct endpoint *ep = &srv->eps[i];
        bool chown_failed = false;
        srv->n_eps++;
        rc = endpoint_start(srv, ep, cfg, &cfg->endpoints[i], &chown_failed);
        if (rc != 0) {
            start_error(cfg, ep, &cfg->endpoints[i], rc, chown_failed, err, err_len);
            apiserver_stop(srv);
            return rc;
        }
        log_info("api", "listening on %s%s", ep->name, ep->tls ? " (HTTPS)" : "");
        if (!config_api_is_loopback(&cfg->endpoints[i]) && !ep->tls)
            log_warn("api",
                     "%s: plain HTTP outside loopback (api_options.allow_plain_tcp): bearer "
                     "tokens and registrations cross the network unencrypted; set "
                     "api_options.tls_cert and tls_key to serve HTTPS",
                     ep->name);
    }
    *out = srv;
    return 0;
}

static void free_if_closed(struct apiserver *srv)
{
    if (srv->open_handles > 0)
        return;
    free(srv->tls_cert);
    if (srv->tls_key)
        explicit_bzero(srv->tls_key, srv->tls_key_len);
    free(srv->tls_key);
    free(srv->eps);
    free(srv->chains);
    free(srv->heap);
    free(srv);
}

static void handle_closed(uv_handle_t *handle)
{
    struct endpoint *ep = handle->data;
    struct apiserver *srv = ep->srv;
    srv->open_handles--;
    free_if_closed(srv);
}

static void watch_timer_closed(uv_handle_t *handle)
{
    struct apiserver *srv = handle->data;
    srv->open_handles--;
    free_if_closed(srv);
}

void apiserver_stop(struct apiserver *srv)
{
    /* Writes still waiting for the journal are answered 503: their sync never came. */
    apiserver_commit_done(srv, DNSD_EIO, "dnsd is stopping");
    srv->stopping = true;
    if (srv->watch_timer_open)
        uv_close((uv_handle_t *)&srv->watch_timer, watch_timer_closed);
    srv->watch_timer_open = false;
    if (srv->read_timer_open)
        uv_close((uv_handle_t *)&srv->read_timer, watch_timer_closed);
    srv->read_timer_open = false;
    for (size_t i = 0; i < srv->n_eps; i++) {
        struct endpoint *ep = &srv->eps[i];
        /* MHD must not be stopped with suspended connections. Resumed, one more run lets
         * api_handle answer them with the current state (best effort: the reply goes out
         * only if the socket takes it at once), then MHD closes them. */
        if (ep->mhd && (ep->n_parked > 0 || ep->n_committing > 0)) {
            resume_all(srv, ep);
            MHD_run(ep->mhd);
        }
        if (ep->poll_open)
            uv_close((uv_handle_t *)&ep->poll, handle_closed);
        if (ep->timer_open)
            uv_close((uv_handle_t *)&ep->timer, handle_closed);
        ep->poll_open = ep->timer_open = false;
        /* The poll handle is closed above before MHD closes the epoll fd it watched. */
        if (ep->mhd)
            MHD_stop_daemon(ep->mhd);
        ep->mhd = NULL;
        if (ep->unix_path[0])
            unlink(ep->unix_path);
        ep->unix_path[0] = '\0';
    }
    free_if_closed(srv);
}
