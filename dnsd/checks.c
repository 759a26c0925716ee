/* SPDX-License-Identifier: BSD-2-Clause
 * Active checks on the libuv loop. Each instance has one uv_timer for its schedule and at
 * most one probe in flight. A TCP probe is a uv_tcp_connect raced against a uv_timer. HTTP
 * probes are easy handles in one curl multi handle run with curl_multi_socket_action: curl's
 * sockets are watched with uv_poll handles (CURLMOPT_SOCKETFUNCTION) and its timeouts with
 * one uv_timer (CURLMOPT_TIMERFUNCTION), libcurl's documented "multi-uv" pattern. Instances
 * are found by "service/id" in a chained hash table. */
#include "checks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "dnsd/error.h"
#include "dnsd/version.h"
#include "metrics.h"

#define CHECKS_FIRST_PROBE_MAX_MS 1000
#define CHECKS_MIN_BUCKETS 64
#define CHECKS_TCP_LABEL_LEN (INET6_ADDRSTRLEN + 8)

struct checks;
struct entry;

/* One probe in flight. A cancelled probe has entry == NULL and is freed without a report. */
struct probe {
    struct checks *c;    /* borrowed: the owner */
    struct entry *entry; /* borrowed; NULL once cancelled or finished */
    enum checks_kind kind;
    bool done;     /* TCP: the connect or the timeout has decided */
    unsigned open; /* TCP: handles not yet closed */
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t timer;
    CURL *easy; /* owned (HTTP) */
    size_t body_len;
    bool body_cut; /* HTTP: stopped reading after CHECKS_MAX_BODY */
    char errbuf[CURL_ERROR_SIZE];
};

/* One instance's schedule. Freed in the close callback of its timer. */
struct entry {
    struct checks *c;    /* borrowed: the owner */
    struct entry *next;  /* hash chain */
    struct probe *probe; /* owned while in flight, else NULL */
    uv_timer_t timer;
    enum checks_kind kind;
    uint32_t interval_ms, timeout_ms;
    bool phase_spread; /* the one tick that moves this instance to a random phase is done */
    struct sockaddr_storage addr;
    char label[CHECKS_TCP_LABEL_LEN]; /* "192.0.2.1:80", for messages */
    char *url;                        /* owned; HTTP only */
    char *service;                    /* points into key */
    char *id;                         /* points into key */
    char key[];                       /* "service/id\0service\0id\0" */
};

/* A socket curl asked us to watch. */
struct csock {
    struct checks *c; /* borrowed: the owner */
    struct csock *prev, *next;
    curl_socket_t fd;
    int events; /* UV_READABLE | UV_WRITABLE as curl last asked */
    uv_poll_t poll;
};

struct checks {
    uv_loop_t *loop; /* borrowed */
    checks_result_cb *on_result;
    void *user;            /* borrowed */
    struct entry **bucket; /* owned array; the entries are owned too */
    size_t n_buckets, count;
    CURLM *multi;          /* owned */
    uv_timer_t curl_timer; /* curl's timeouts */
    struct csock *socks;   /* owned list of watched curl sockets */
    uint64_t rng;
    unsigned open_handles; /* uv handles not yet closed */
    bool stopping;
    struct metrics_checks stats; /* reported probe results */
};

/* metrics_checks indexes results by these enums' values. */
_Static_assert(CHECKS_TCP == 0 && CHECKS_HTTP == 1, "metrics_checks kind order");
_Static_assert(CHECKS_PASS == 0 && CHECKS_WARN == 1 && CHECKS_FAIL == 2,
               "metrics_checks outcome order");

static void finish_stop(struct checks *c);

/* splitmix64: spreads probes; not for anything secret. */
static uint64_t rnd(struct checks *c)
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniformly random number in [0, n); n > 0. */
static uint64_t rnd_below(struct checks *c, uint64_t n)
{
    return rnd(c) % n;
}

/* FNV-1a over a NUL-terminated key. */
static uint64_t hash_key(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void handle_closed(struct checks *c)
{
    c->open_handles--;
    if (c->stopping && c->open_handles == 0) {
        finish_stop(c);
    }
}

/* ---- target parsing ---- */

/* Parse "1".."65535" (digits only) at s, ending at end. */
static int parse_port(const char *s, const char *end, uint16_t *out)
{
    if (s == end || end - s > 5) {
        return DNSD_EINVAL;
    }
    unsigned long v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return DNSD_EINVAL;
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535) {
        return DNSD_EINVAL;
    }
    *out = (uint16_t)v;
    return 0;
}

/* Parse "a.b.c.d:port" or "[v6]:port" (or without ":port" when dflt_port != 0) in
 * [s, end) into t. */
static int parse_hostport(const char *s, const char *end, uint16_t dflt_port,
                          struct checks_target *t)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *host_end, *port_start = NULL;
    if (s < end && *s == '[') {
        host_end = memchr(s, ']', (size_t)(end - s));
        if (host_end == NULL) {
            return DNSD_EINVAL;
        }
        s++;
        t->family = AF_INET6;
        if (host_end + 1 < end) {
            if (host_end[1] != ':') {
                return DNSD_EINVAL;
            }
            port_start = host_end + 2;
        }
    } else {
        host_end = memchr(s, ':', (size_t)(end - s));
        if (host_end == NULL) {
            host_end = end;
        } else {
            port_start = host_end + 1;
        }
        t->family = AF_INET;
    }
    size_t host_len = (size_t)(host_end - s);
    if (host_len == 0 || host_len >= sizeof(host)) {
        return DNSD_EINVAL;
    }
    memcpy(host, s, host_len);
    host[host_len] = '\0';
    memset(t->addr, 0, sizeof(t->addr));
    if (inet_pton(t->family, host, t->addr) != 1) {
        return DNSD_EINVAL;
    }
    if (port_start != NULL) {
        return parse_port(port_start, end, &t->port);
    }
    if (dflt_port == 0) {
        return DNSD_EINVAL;
    }
    t->port = dflt_port;
    return 0;
}

int checks_parse_target(enum checks_kind kind, const char *target, struct checks_target *out)
{
    static const char scheme[] = "http://";
    struct checks_target t = {0};
    if (target == NULL) {
        return DNSD_EINVAL;
    }
    size_t len = strlen(target);
    if (len == 0 || len > CHECKS_MAX_TARGET) {
        return DNSD_EINVAL;
    }
    if (kind == CHECKS_TCP) {
        int rc = parse_hostport(target, target + len, 0, &t);
        if (rc < 0) {
            return rc;
        }
    } else if (kind == CHECKS_HTTP) {
        if (len < sizeof(scheme) - 1 || strncasecmp(target, scheme, sizeof(scheme) - 1) != 0) {
            return DNSD_EINVAL;
        }
        const char *auth = target + sizeof(scheme) - 1;
        const char *path = strchr(auth, '/');
        if (path == NULL) {
            path = target + len;
        }
        int rc = parse_hostport(auth, path, 80, &t);
        if (rc < 0) {
            return rc;
        }
        if (*path == '\0') {
            path = "/";
        }
        for (const char *p = path; *p; p++) {
            if (*p <= 0x20 || *p >= 0x7f || *p == '#') {
                return DNSD_EINVAL;
            }
        }
        memcpy(t.path, path, strlen(path) + 1);
    } else {
        return DNSD_EINVAL;
    }
    *out = t;
    return 0;
}

int checks_format_target(enum checks_kind kind, const struct checks_target *t, char *buf, size_t n)
{
    char host[INET6_ADDRSTRLEN];
    if ((t->family != AF_INET && t->family != AF_INET6) ||
        inet_ntop(t->family, t->addr, host, sizeof(host)) == NULL) {
        return DNSD_EINVAL;
    }
    const char *open = t->family == AF_INET6 ? "[" : "";
    const char *close = t->family == AF_INET6 ? "]" : "";
    int len;
    if (kind == CHECKS_TCP) {
        len = snprintf(buf, n, "%s%s%s:%u", open, host, close, (unsigned)t->port);
    } else if (kind == CHECKS_HTTP) {
        len = snprintf(buf, n, "http://%s%s%s:%u%s", open, host, close, (unsigned)t->port,
                       t->path[0] ? t->path : "/");
    } else {
        return DNSD_EINVAL;
    }
    if (len < 0 || (size_t)len >= n) {
        return DNSD_ERANGE;
    }
    return 0;
}

/* ---- reporting ---- */

/* Detach p from its entry and report; entry and its names stay valid for the call because
 * an entry is only freed in its timer's close callback. */
static void report(struct probe *p, enum checks_outcome outcome, const char *output)
{
    struct entry *e = p->entry;
    if (e == NULL) {
        return;
    }
    p->entry = NULL;
    e->probe = NULL;
    struct checks *c = e->c;
    if (!c->stopping) {
        c->stats.results[e->kind][outcome]++;
        c->on_result(c->user, e->service, e->id, outcome, output);
    }
}

/* ---- TCP probes ---- */

static void tcp_probe_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    struct checks *c = p->c;
    if (--p->open == 0) {
        free(p);
    }
    handle_closed(c);
}

/* Close the probe's handles; a pending connect request is cancelled by closing its stream. */
static void tcp_probe_close(struct probe *p)
{
    p->done = true;
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) {
        uv_close((uv_handle_t *)&p->tcp, tcp_probe_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&p->timer)) {
        uv_close((uv_handle_t *)&p->timer, tcp_probe_closed);
    }
}

static void tcp_connected(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    if (p->done) {
        return;
    }
    tcp_probe_close(p);
    if (status == 0) {
        report(p, CHECKS_PASS, "connected");
    } else if (p->entry != NULL) {
        char msg[CHECKS_TCP_LABEL_LEN + 128];
        snprintf(msg, sizeof(msg), "connect %s: %s", p->entry->label, uv_strerror(status));
        report(p, CHECKS_FAIL, msg);
    }
}

static void tcp_timed_out(uv_timer_t *t)
{
    struct probe *p = t->data;
    if (p->done) {
        return;
    }
    tcp_probe_close(p);
    if (p->entry != NULL) {
        char msg[64];
        snprintf(msg, sizeof(msg), "timeout after %u ms", (unsigned)p->entry->timeout_ms);
        report(p, CHECKS_FAIL, msg);
    }
}

static void tcp_probe_start(struct entry *e, struct probe *p)
{
    struct checks *c = e->c;
    int rc = uv_timer_init(c->loop, &p->timer);
    if (rc < 0) {
        goto fail;
    }
    c->open_handles++;
    p->open++;
    p->timer.data = p;
    rc = uv_tcp_init(c->loop, &p->tcp);
    if (rc < 0) {
        p->done = true;
        uv_close((uv_handle_t *)&p->timer, tcp_probe_closed);
        goto fail;
    }
    c->open_handles++;
    p->open++;
    p->tcp.data = p;
    p->connect.data = p;
    rc = uv_tcp_connect(&p->connect, &p->tcp, (const struct sockaddr *)&e->addr, tcp_connected);
    if (rc == 0) {
        rc = uv_timer_start(&p->timer, tcp_timed_out, e->timeout_ms, 0);
    }
    if (rc == 0) {
        return;
    }
    tcp_probe_close(p);
fail:;
    char msg[CHECKS_TCP_LABEL_LEN + 128];
    snprintf(msg, sizeof(msg), "connect %s: %s", e->label, uv_strerror(rc));
    bool free_now = p->open == 0;
    report(p, CHECKS_FAIL, msg);
    if (free_now) {
        free(p);
    }
}

/* ---- HTTP probes (libcurl multi on libuv) ---- */

static void csock_closed(uv_handle_t *h)
{
    struct csock *s = h->data;
    struct checks *c = s->c;
    free(s);
    handle_closed(c);
}

static void csock_close(struct csock *s)
{
    struct checks *c = s->c;
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        c->socks = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, csock_closed);
}

/* Report every transfer curl has finished. */
static void http_drain(struct checks *c)
{
    CURLMsg *msg;
    int left;
    while (!c->stopping && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        char *priv = NULL;
        long code = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct probe *p = (struct probe *)priv;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        curl_multi_remove_handle(c->multi, easy);
        curl_easy_cleanup(easy);
        p->easy = NULL;

        char out[CURL_ERROR_SIZE + 32];
        enum checks_outcome outcome = CHECKS_FAIL;
        if ((res == CURLE_OK || (res == CURLE_WRITE_ERROR && p->body_cut)) && code > 0) {
            /* The body is not part of the verdict, so cutting it short changes nothing. */
            snprintf(out, sizeof(out), "HTTP %ld", code);
            if (code >= 200 && code <= 299) {
                outcome = CHECKS_PASS;
            } else if (code == 429) {
                outcome = CHECKS_WARN;
            }
        } else if (res == CURLE_OPERATION_TIMEDOUT && p->entry != NULL) {
            snprintf(out, sizeof(out), "timeout after %u ms", (unsigned)p->entry->timeout_ms);
        } else {
            snprintf(out, sizeof(out), "%s", p->errbuf[0] ? p->errbuf : curl_easy_strerror(res));
        }
        report(p, outcome, out);
        free(p);
    }
}

static void csock_ready(uv_poll_t *h, int status, int events)
{
    struct csock *s = h->data;
    struct checks *c = s->c;
    int flags = 0;
    if (status < 0) {
        /* libuv reports POLLERR (a reset, a refused connect) as an error and stops the
         * handle. Let curl try the socket so it reads the real error and names it; re-arm
         * first in case curl keeps the socket. */
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
        uv_poll_start(&s->poll, s->events, csock_ready);
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    int running;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    http_drain(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch, change or forget one of curl's sockets. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct checks *c = userp;
    struct csock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            if (!c->stopping) {
                curl_multi_assign(c->multi, fd, NULL);
            }
            csock_close(s);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            return -1;
        }
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        c->open_handles++;
        s->c = c;
        s->fd = fd;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks) {
            c->socks->prev = s;
        }
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    events |= (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ? UV_READABLE : 0;
    events |= (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ? UV_WRITABLE : 0;
    s->events = events;
    return uv_poll_start(&s->poll, events, csock_ready) == 0 ? 0 : -1;
}

static void curl_timer_fired(uv_timer_t *t)
{
    struct checks *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    http_drain(c);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called back after timeout_ms (-1: never). The
 * call is made from the timer callback, never from here, as libcurl requires. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct checks *c = userp;
    if (c->stopping) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&c->curl_timer);
        return 0;
    }
    return uv_timer_start(&c->curl_timer, curl_timer_fired, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

/* CURLOPT_WRITEFUNCTION: the body is not needed; stop after CHECKS_MAX_BODY bytes. */
static size_t http_body(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    struct probe *p = userp;
    size_t n = size * nmemb;
    p->body_len += n;
    if (p->body_len > CHECKS_MAX_BODY) {
        p->body_cut = true;
        return 0;
    }
    return n;
}

static void http_probe_start(struct entry *e, struct probe *p)
{
    struct checks *c = e->c;
    CURL *easy = curl_easy_init();
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (easy == NULL) {
        goto fail;
    }
    p->easy = easy;
    if ((rc = curl_easy_setopt(easy, CURLOPT_URL, e->url)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http")) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_NOPROXY, "*")) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_USERAGENT, "dnsd/" DNSD_VERSION)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
        /* A fresh connection per probe: a check tests that the service accepts one, and
         * 10,000 idle keep-alive connections would cost descriptors. */
        (rc = curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_body)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_WRITEDATA, p)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, p->errbuf)) != CURLE_OK ||
        (rc = curl_easy_setopt(easy, CURLOPT_PRIVATE, p)) != CURLE_OK) {
        goto fail;
    }
    CURLMcode mrc = curl_multi_add_handle(c->multi, easy);
    if (mrc != CURLM_OK) {
        report(p, CHECKS_FAIL, curl_multi_strerror(mrc));
        curl_easy_cleanup(easy);
        free(p);
    }
    return;
fail:
    report(p, CHECKS_FAIL, curl_easy_strerror(rc));
    curl_easy_cleanup(easy);
    free(p);
}

/* ---- probes and schedules ---- */

/* Cancel e's probe in flight, if any, without reporting it. */
static void probe_cancel(struct entry *e)
{
    struct probe *p = e->probe;
    if (p == NULL) {
        return;
    }
    e->probe = NULL;
    p->entry = NULL;
    if (p->kind == CHECKS_TCP) {
        tcp_probe_close(p);
    } else {
        curl_multi_remove_handle(e->c->multi, p->easy);
        curl_easy_cleanup(p->easy);
        free(p);
    }
}

/* The next tick: interval +/- up to 10%. First probes all fall within a second of
 * registration, so the tick after the first one lands anywhere in [interval/2, 3*interval/2):
 * instances registered together then spread over the whole interval, with the same mean. */
static uint64_t next_delay(struct entry *e)
{
    if (!e->phase_spread) {
        e->phase_spread = true;
        return e->interval_ms / 2 + rnd_below(e->c, e->interval_ms);
    }
    uint64_t spread = e->interval_ms / 10;
    return e->interval_ms - spread + rnd_below(e->c, 2 * spread + 1);
}

static void tick(uv_timer_t *t)
{
    struct entry *e = t->data;
    uv_timer_start(&e->timer, tick, next_delay(e), 0);
    if (e->probe != NULL) {
        return; /* never two probes per instance: skip this tick */
    }
    struct probe *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return; /* try again on the next tick */
    }
    p->c = e->c;
    p->entry = e;
    p->kind = e->kind;
    e->probe = p;
    if (e->kind == CHECKS_TCP) {
        tcp_probe_start(e, p);
    } else {
        http_probe_start(e, p);
    }
}

static void entry_closed(uv_handle_t *h)
{
    struct entry *e = h->data;
    struct checks *c = e->c;
    free(e->url);
    free(e);
    handle_closed(c);
}

/* Unlink e from the table (the caller has found it), cancel its probe and close it. */
static void entry_remove(struct checks *c, struct entry **link)
{
    struct entry *e = *link;
    *link = e->next;
    c->count--;
    probe_cancel(e);
    uv_close((uv_handle_t *)&e->timer, entry_closed);
}

/* The link that points at the entry for key, or at the NULL that ends its chain. */
static struct entry **find_link(const struct checks *c, const char *key)
{
    struct entry **link = &c->bucket[hash_key(key) & (c->n_buckets - 1)];
    while (*link != NULL && strcmp((*link)->key, key) != 0) {
        link = &(*link)->next;
    }
    return link;
}

/* Double the table when it is more than 3/4 full; failure only keeps chains longer. */
static void maybe_grow(struct checks *c)
{
    if (c->count * 4 < c->n_buckets * 3) {
        return;
    }
    size_t n = c->n_buckets * 2;
    struct entry **b = calloc(n, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct entry *e = c->bucket[i];
        while (e != NULL) {
            struct entry *next = e->next;
            struct entry **head = &b[hash_key(e->key) & (n - 1)];
            e->next = *head;
            *head = e;
            e = next;
        }
    }
    free(c->bucket);
    c->bucket = b;
    c->n_buckets = n;
}

/* Write "service/id" into buf. */
static int make_key(const char *service, const char *id, char *buf, size_t n)
{
    if (service == NULL || id == NULL || service[0] == '\0' || id[0] == '\0' ||
        strchr(service, '/') != NULL || strchr(id, '/') != NULL) {
        return DNSD_EINVAL;
    }
    int len = snprintf(buf, n, "%s/%s", service, id);
    return (len < 0 || (size_t)len >= n) ? DNSD_EINVAL : 0;
}

/* ---- public interface ---- */

int checks_new(uv_loop_t *loop, checks_result_cb *on_result, void *user, struct checks **out)
{
    int rc = DNSD_ENOMEM;
    struct checks *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return DNSD_ENOMEM;
    }
    c->loop = loop;
    c->on_result = on_result;
    c->user = user;
    c->n_buckets = CHECKS_MIN_BUCKETS;
    c->bucket = calloc(c->n_buckets, sizeof(*c->bucket));
    if (c->bucket == NULL) {
        goto fail;
    }
    c->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
    /* Reference-counted by libcurl; thread-safe in 7.84 and later. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = DNSD_EIO;
        goto fail;
    }
    c->multi = curl_multi_init();
    if (c->multi == NULL ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
        goto fail_curl;
    }
    if (uv_timer_init(loop, &c->curl_timer) != 0) {
        rc = DNSD_EIO;
        goto fail_curl;
    }
    c->curl_timer.data = c;
    c->open_handles = 1;
    *out = c;
    return 0;
fail_curl:
    if (c->multi != NULL) {
        curl_multi_cleanup(c->multi);
    }
    curl_global_cleanup();
fail:
    free(c->bucket);
    free(c);
    return rc;
}

static void curl_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

void checks_stop(struct checks *c)
{
    if (c == NULL || c->stopping) {
        return;
    }
    c->stopping = true;
    for (size_t i = 0; i < c->n_buckets; i++) {
        while (c->bucket[i] != NULL) {
            entry_remove(c, &c->bucket[i]);
        }
    }
    /* Closes curl's cached connections; their sockets are forgotten below if curl did not
     * say so through the socket callback. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks != NULL) {
        csock_close(c->socks);
    }
    uv_close((uv_handle_t *)&c->curl_timer, curl_timer_closed);
}

/* The last handle has closed. */
static void finish_stop(struct checks *c)
{
    free(c->bucket);
    free(c);
    curl_global_cleanup();
}

const struct metrics_checks *checks_metrics(const struct checks *c)
{
    return &c->stats;
}

size_t checks_count(const struct checks *c)
{
    return c->count;
}

bool checks_is_probing(const struct checks *c, const char *service, const char *id)
{
    char key[512];
    if (make_key(service, id, key, sizeof(key)) < 0) {
        return false;
    }
    struct entry **link = find_link(c, key);
    return *link != NULL && (*link)->probe != NULL;
}

int checks_add(struct checks *c, const char *service, const char *id,
               const struct checks_spec *spec)
{
    char key[512];
    struct checks_target t;
    int rc = make_key(service, id, key, sizeof(key));
    if (rc < 0) {
        return rc;
    }
    if (spec->interval_ms < CHECKS_MIN_INTERVAL_MS || spec->timeout_ms == 0 ||
        spec->timeout_ms >= spec->interval_ms) {
        return DNSD_EINVAL;
    }
    rc = checks_parse_target(spec->kind, spec->target, &t);
    if (rc < 0) {
        return rc;
    }
    size_t key_len = strlen(key), svc_len = strlen(service), id_len = strlen(id);
    struct entry *e = calloc(1, sizeof(*e) + key_len + svc_len + id_len + 3);
    if (e == NULL) {
        return DNSD_ENOMEM;
    }
    memcpy(e->key, key, key_len + 1);
    e->service = e->key + key_len + 1;
    memcpy(e->service, service, svc_len + 1);
    e->id = e->service + svc_len + 1;
    memcpy(e->id, id, id_len + 1);
    e->c = c;
    e->kind = spec->kind;
    e->interval_ms = spec->interval_ms;
    e->timeout_ms = spec->timeout_ms;
    checks_format_target(CHECKS_TCP, &t, e->label, sizeof(e->label));
    if (t.family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&e->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(t.port);
        memcpy(&sin->sin_addr, t.addr, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&e->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(t.port);
        memcpy(&sin6->sin6_addr, t.addr, 16);
    }
    if (spec->kind == CHECKS_HTTP) {
        /* curl gets our canonical URL, so the host it connects to is the one validated. */
        size_t n = CHECKS_MAX_TARGET + 64;
        e->url = malloc(n);
        if (e->url == NULL) {
            free(e);
            return DNSD_ENOMEM;
        }
        checks_format_target(CHECKS_HTTP, &t, e->url, n);
    }
    if (uv_timer_init(c->loop, &e->timer) != 0) {
        free(e->url);
        free(e);
        return DNSD_ENOMEM;
    }
    c->open_handles++;
    e->timer.data = e;
    uint64_t first_max = spec->interval_ms < CHECKS_FIRST_PROBE_MAX_MS ? spec->interval_ms
                                                                       : CHECKS_FIRST_PROBE_MAX_MS;
    uv_timer_start(&e->timer, tick, rnd_below(c, first_max), 0);

    struct entry **link = find_link(c, key);
    if (*link != NULL) {
        entry_remove(c, link);
    }
    e->next = *link;
    *link = e;
    c->count++;
    maybe_grow(c);
    return 0;
}

int checks_remove(struct checks *c, const char *service, const char *id)
{
    char key[512];
    if (make_key(service, id, key, sizeof(key)) < 0) {
        return DNSD_ENOENT;
    }
    struct entry **link = find_link(c, key);
    if (*link == NULL) {
        return DNSD_ENOENT;
    }
    entry_remove(c, link);
    return 0;
}
