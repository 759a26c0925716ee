/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for checks. Target parsing is pure; every other test runs a real uv loop
 * against listeners on 127.0.0.1 inside the test process (checks is the I/O shell, so this
 * is the one unit test that opens loopback sockets). A tiny HTTP server on the same loop
 * answers with a canned status or never answers. Each run is bounded by a guard timer that
 * stops the loop after a few seconds; no test asserts how fast anything is. */
#include "checks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <uv.h>

#include "dnsd/error.h"
#include "dnsd/version.h"
#include "metrics.h"

#define MAX_RESULTS 256
#define MAX_CONNS 64

struct result {
    char service[64];
    char id[64];
    enum checks_outcome outcome;
    char output[512];
    uint64_t at; /* uv_now when reported */
};

struct server;

struct conn {
    struct server *srv; /* borrowed: the owner */
    struct conn *next;
    uv_tcp_t tcp;
    uv_write_t write;
    char buf[4096];
    size_t len;
    bool answered;
};

/* A listener on 127.0.0.1. response == NULL and close_at_once: accept and close (TCP
 * checks); response == NULL otherwise: read the request and never answer. */
struct server {
    uv_tcp_t listener;
    uint16_t port;
    char *response; /* owned */
    bool close_at_once;
    bool reset_on_request; /* read the request, then reset the connection */
    size_t accepted, requests;
    uint64_t accept_at[MAX_CONNS];
    char last_request[4096];
    struct conn *conns; /* owned list of open connections */
    void (*on_request)(struct server *srv);
    bool open;
};

static uv_loop_t loop;
static uv_timer_t guard;
static struct checks *chk;
static struct result results[MAX_RESULTS];
static size_t n_results;
static size_t stop_after;   /* stop the loop once this many results are in; 0: never */
static size_t late_results; /* results reported after checks_stop */
static bool stopped;        /* checks_stop has been called */
static bool remove_own_on_result;
static struct server servers[3];
static int raw_fds[4] = {-1, -1, -1, -1};

static void record(void *user, const char *service, const char *id, enum checks_outcome outcome,
                   const char *output)
{
    cr_assert_eq(user, &results);
    if (stopped) {
        late_results++;
        return;
    }
    if (n_results < MAX_RESULTS) {
        struct result *r = &results[n_results];
        snprintf(r->service, sizeof(r->service), "%s", service);
        snprintf(r->id, sizeof(r->id), "%s", id);
        r->outcome = outcome;
        snprintf(r->output, sizeof(r->output), "%s", output);
        r->at = uv_now(&loop);
    }
    n_results++;
    if (remove_own_on_result) {
        cr_assert_eq(checks_remove(chk, service, id), 0);
    }
    if (stop_after != 0 && n_results >= stop_after) {
        uv_stop(&loop);
    }
}

static void guard_fired(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Run the loop until stop_after results are in (if set) or max_ms has passed. */
static void run_for(uint64_t max_ms)
{
    uv_timer_start(&guard, guard_fired, max_ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_timer_stop(&guard);
}

static void run_until_results(size_t n, uint64_t max_ms)
{
    stop_after = n;
    if (n_results < n) {
        run_for(max_ms);
    }
    stop_after = 0;
}

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &guard), 0);
    cr_assert_eq(checks_new(&loop, record, &results, &chk), 0);
}

/* ---- the test servers ---- */

static void conn_closed(uv_handle_t *h)
{
    struct conn *cn = h->data;
    struct server *srv = cn->srv;
    for (struct conn **link = &srv->conns; *link; link = &(*link)->next) {
        if (*link == cn) {
            *link = cn->next;
            break;
        }
    }
    free(cn);
}

static void conn_close(struct conn *cn)
{
    if (!uv_is_closing((uv_handle_t *)&cn->tcp)) {
        uv_close((uv_handle_t *)&cn->tcp, conn_closed);
    }
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct conn *cn = h->data;
    size_t room = sizeof(cn->buf) - 1 - cn->len;
    *buf = uv_buf_init(cn->buf + cn->len, (unsigned)room);
}

static void conn_written(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *cn = s->data;
    struct server *srv = cn->srv;
    if (nread < 0) {
        conn_close(cn);
        return;
    }
    cn->len += (size_t)nread;
    cn->buf[cn->len] = '\0';
    if (cn->answered || strstr(cn->buf, "\r\n\r\n") == NULL) {
        if (cn->len == sizeof(cn->buf) - 1) {
            conn_close(cn);
        }
        return;
    }
    cn->answered = true;
    srv->requests++;
    snprintf(srv->last_request, sizeof(srv->last_request), "%s", cn->buf);
    if (srv->reset_on_request) {
        cr_assert_eq(uv_tcp_close_reset(&cn->tcp, conn_closed), 0);
    } else if (srv->response != NULL) {
        uv_buf_t out = uv_buf_init(srv->response, (unsigned)strlen(srv->response));
        cn->write.data = cn;
        cr_assert_eq(uv_write(&cn->write, s, &out, 1, conn_written), 0);
    }
    if (srv->on_request != NULL) {
        srv->on_request(srv);
    }
}

static void server_accept(uv_stream_t *listener, int status)
{
    cr_assert_eq(status, 0);
    struct server *srv = listener->data;
    struct conn *cn = calloc(1, sizeof(*cn));
    cr_assert_not_null(cn);
    cn->srv = srv;
    cr_assert_eq(uv_tcp_init(&loop, &cn->tcp), 0);
    cn->tcp.data = cn;
    cn->next = srv->conns;
    srv->conns = cn;
    cr_assert_eq(uv_accept(listener, (uv_stream_t *)&cn->tcp), 0);
    if (srv->accepted < MAX_CONNS) {
        srv->accept_at[srv->accepted] = uv_now(&loop);
    }
    srv->accepted++;
    if (srv->close_at_once) {
        conn_close(cn);
        return;
    }
    cr_assert_eq(uv_read_start((uv_stream_t *)&cn->tcp, conn_alloc, conn_read), 0);
}

/* Listen on 127.0.0.1 at a free port. status 0: never answer; -1: accept and close (for TCP
 * checks); -2: read the request and reset; else answer with that status and a body of
 * body_len bytes. */
static struct server *server_start(int idx, int status, size_t body_len)
{
    struct server *srv = &servers[idx];
    memset(srv, 0, sizeof(*srv));
    if (status == -1) {
        srv->close_at_once = true;
    } else if (status == -2) {
        srv->reset_on_request = true;
    } else if (status > 0) {
        size_t n = body_len + 256;
        srv->response = malloc(n);
        cr_assert_not_null(srv->response);
        int len = snprintf(srv->response, n,
                           "HTTP/1.1 %d Test\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                           status, body_len, status == 301 ? "Location: /elsewhere\r\n" : "");
        memset(srv->response + len, 'x', body_len);
        srv->response[(size_t)len + body_len] = '\0';
    }
    struct sockaddr_in sin;
    cr_assert_eq(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    cr_assert_eq(uv_tcp_init(&loop, &srv->listener), 0);
    srv->listener.data = srv;
    cr_assert_eq(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&sin, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&srv->listener, 128, server_accept), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    cr_assert_eq(uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len), 0);
    srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    srv->open = true;
    return srv;
}

static void server_stop(struct server *srv)
{
    if (!srv->open) {
        return;
    }
    srv->open = false;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    for (struct conn *cn = srv->conns; cn; cn = cn->next) {
        conn_close(cn);
    }
}

/* A port on 127.0.0.1 where nothing listens: bind, read the port, close. */
static uint16_t refused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* A port on 127.0.0.1 that drops SYNs: a listener with backlog 0 whose accept queue is
 * already full with a connection nobody accepts (Linux drops SYNs to a full queue), so a
 * connect neither succeeds nor fails before its timeout. */
static uint16_t blackhole_port(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(lfd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(lfd, 0), 0);
    socklen_t len = sizeof(sin);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    raw_fds[0] = lfd;
    for (int i = 1; i < 3; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        cr_assert_geq(fd, 0);
        connect(fd, (struct sockaddr *)&sin, sizeof(sin));
        raw_fds[i] = fd;
    }
    usleep(20 * 1000); /* let the first filler's handshake land in the accept queue */
    return ntohs(sin.sin_port);
}

static void teardown(void)
{
    if (chk != NULL && !stopped) {
        checks_stop(chk);
    }
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
        server_stop(&servers[i]);
    }
    for (size_t i = 0; i < sizeof(raw_fds) / sizeof(raw_fds[0]); i++) {
        if (raw_fds[i] >= 0) {
            close(raw_fds[i]);
        }
    }
    /* Everything must close by itself; the unreferenced guard only bounds a broken run. */
    uv_unref((uv_handle_t *)&guard);
    uv_timer_start(&guard, guard_fired, 3000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
        free(servers[i].response);
    }
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle is still open after checks_stop");
}

TestSuite(checks, .init = setup, .fini = teardown, .timeout = 20);

static void add_ok(const char *id, enum checks_kind kind, const char *target, uint32_t interval,
                   uint32_t timeout)
{
    struct checks_spec spec = {kind, target, interval, timeout};
    cr_assert_eq(checks_add(chk, "web", id, &spec), 0, "add %s %s", id, target);
}

static void tcp_target(char *buf, size_t n, uint16_t port)
{
    snprintf(buf, n, "127.0.0.1:%u", (unsigned)port);
}

static void http_target(char *buf, size_t n, uint16_t port, const char *path)
{
    snprintf(buf, n, "http://127.0.0.1:%u%s", (unsigned)port, path);
}

/* ---- target parsing ---- */

struct parse_case {
    const char *text;
    int family;
    const char *host;
    uint16_t port;
    const char *path;
};

Test(checks, parse_accepts_tcp_targets)
{
    static const struct parse_case cases[] = {
        {"127.0.0.1:8080", AF_INET, "127.0.0.1", 8080, ""},
        {"192.0.2.10:1", AF_INET, "192.0.2.10", 1, ""},
        {"192.0.2.10:65535", AF_INET, "192.0.2.10", 65535, ""},
        {"[::1]:53", AF_INET6, "::1", 53, ""},
        {"[2001:db8::10]:8080", AF_INET6, "2001:db8::10", 8080, ""},
        {"[::ffff:192.0.2.1]:80", AF_INET6, "::ffff:192.0.2.1", 80, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct checks_target t;
        uint8_t want[16] = {0};
        cr_assert_eq(checks_parse_target(CHECKS_TCP, cases[i].text, &t), 0, "%s", cases[i].text);
        cr_assert_eq(inet_pton(cases[i].family, cases[i].host, want), 1);
        cr_assert_eq(t.family, cases[i].family, "%s", cases[i].text);
        cr_assert_arr_eq(t.addr, want, sizeof(want), "%s", cases[i].text);
        cr_assert_eq(t.port, cases[i].port, "%s", cases[i].text);
        cr_assert_str_eq(t.path, cases[i].path, "%s", cases[i].text);
    }
}

Test(checks, parse_rejects_bad_tcp_targets)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:123456",
        "127.0.0.1:-1",
        "127.0.0.1:+80",
        "127.0.0.1:80 ",
        " 127.0.0.1:80",
        "127.0.0.1:80:90",
        "127.0.0.1:8o",
        "localhost:80",
        "example.com:80",
        "127.1:80",
        "256.0.0.1:80",
        "01.2.3.4:80",
        "::1:80",
        "[::1]",
        "[::1]:",
        "[::1]80",
        "[::1:80",
        "[127.0.0.1]:80",
        "[fe80::1%eth0]:80",
        "[]:80",
        ":80",
        "http://127.0.0.1:80/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct checks_target t;
        cr_assert_eq(checks_parse_target(CHECKS_TCP, bad[i], &t), DNSD_EINVAL, "'%s'", bad[i]);
    }
    struct checks_target t;
    cr_assert_eq(checks_parse_target(CHECKS_TCP, NULL, &t), DNSD_EINVAL);
}

Test(checks, parse_accepts_http_targets)
{
    static const struct parse_case cases[] = {
        {"http://127.0.0.1:8080/health", AF_INET, "127.0.0.1", 8080, "/health"},
        {"http://127.0.0.1/health", AF_INET, "127.0.0.1", 80, "/health"},
        {"http://127.0.0.1", AF_INET, "127.0.0.1", 80, "/"},
        {"http://127.0.0.1:81", AF_INET, "127.0.0.1", 81, "/"},
        {"HTTP://192.0.2.1:8080/", AF_INET, "192.0.2.1", 8080, "/"},
        {"http://[::1]:8080/health", AF_INET6, "::1", 8080, "/health"},
        {"http://[2001:db8::1]/", AF_INET6, "2001:db8::1", 80, "/"},
        {"http://[2001:db8::1]", AF_INET6, "2001:db8::1", 80, "/"},
        {"http://10.0.0.1:9/a/b?x=1&y=%20", AF_INET, "10.0.0.1", 9, "/a/b?x=1&y=%20"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct checks_target t;
        uint8_t want[16] = {0};
        cr_assert_eq(checks_parse_target(CHECKS_HTTP, cases[i].text, &t), 0, "%s", cases[i].text);
        cr_assert_eq(inet_pton(cases[i].family, cases[i].host, want), 1);
        cr_assert_eq(t.family, cases[i].family, "%s", cases[i].text);
        cr_assert_arr_eq(t.addr, want, sizeof(want), "%s", cases[i].text);
        cr_assert_eq(t.port, cases[i].port, "%s", cases[i].text);
        cr_assert_str_eq(t.path, cases[i].path, "%s", cases[i].text);
    }
}

Test(checks, parse_rejects_bad_http_targets)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1:80",
        "https://127.0.0.1/",
        "ftp://127.0.0.1/",
        "http:/127.0.0.1/",
        "http://",
        "http:///health",
        "http://localhost/health",
        "http://example.com:8080/",
        "http://user@127.0.0.1/",
        "http://127.0.0.1:/",
        "http://127.0.0.1:0/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1?x=1",
        "http://127.0.0.1:80?x=1",
        "http://127.0.0.1/a b",
        "http://127.0.0.1/a#frag",
        "http://127.0.0.1/\x01",
        "http://127.0.0.1/caf\xc3\xa9",
        "http://::1/",
        "http://[::1/",
        "http://[::1]x/",
        "http://[fe80::1%25eth0]/",
        "http://127.1/",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct checks_target t;
        cr_assert_eq(checks_parse_target(CHECKS_HTTP, bad[i], &t), DNSD_EINVAL, "'%s'", bad[i]);
    }
    char longest[CHECKS_MAX_TARGET + 2];
    size_t prefix = strlen("http://127.0.0.1/");
    memcpy(longest, "http://127.0.0.1/", prefix);
    memset(longest + prefix, 'a', sizeof(longest) - prefix - 1);
    longest[CHECKS_MAX_TARGET] = '\0';
    struct checks_target t;
    cr_assert_eq(checks_parse_target(CHECKS_HTTP, longest, &t), 0);
    cr_assert_eq(strlen(t.path), CHECKS_MAX_TARGET - prefix + 1);
    longest[CHECKS_MAX_TARGET] = 'a';
    longest[CHECKS_MAX_TARGET + 1] = '\0';
    cr_assert_eq(checks_parse_target(CHECKS_HTTP, longest, &t), DNSD_EINVAL);
}

Test(checks, format_target_is_canonical)
{
    static const struct {
        enum checks_kind kind;
        const char *in, *out;
    } cases[] = {
        {CHECKS_TCP, "127.0.0.1:8080", "127.0.0.1:8080"},
        {CHECKS_TCP, "[2001:DB8:0::10]:53", "[2001:db8::10]:53"},
        {CHECKS_HTTP, "HTTP://192.0.2.1/health", "http://192.0.2.1:80/health"},
        {CHECKS_HTTP, "http://[::1]:8080", "http://[::1]:8080/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct checks_target t;
        char buf[CHECKS_MAX_TARGET + 64];
        cr_assert_eq(checks_parse_target(cases[i].kind, cases[i].in, &t), 0);
        cr_assert_eq(checks_format_target(cases[i].kind, &t, buf, sizeof(buf)), 0);
        cr_assert_str_eq(buf, cases[i].out);
    }
    struct checks_target t;
    char small[8];
    cr_assert_eq(checks_parse_target(CHECKS_TCP, "192.0.2.1:80", &t), 0);
    cr_assert_eq(checks_format_target(CHECKS_TCP, &t, small, sizeof(small)), DNSD_ERANGE);
    t.family = AF_UNIX;
    cr_assert_eq(checks_format_target(CHECKS_TCP, &t, small, sizeof(small)), DNSD_EINVAL);
}

/* ---- add, remove, count ---- */

Test(checks, add_rejects_bad_spec)
{
    static const struct checks_spec bad[] = {
        {CHECKS_TCP, "localhost:80", 1000, 500},  {CHECKS_TCP, "http://127.0.0.1/", 1000, 500},
        {CHECKS_HTTP, "127.0.0.1:80", 1000, 500}, {CHECKS_TCP, "127.0.0.1:80", 99, 50},
        {CHECKS_TCP, "127.0.0.1:80", 1000, 1000}, {CHECKS_TCP, "127.0.0.1:80", 1000, 2000},
        {CHECKS_TCP, "127.0.0.1:80", 1000, 0},    {(enum checks_kind)7, "127.0.0.1:80", 1000, 500},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(checks_add(chk, "web", "w1", &bad[i]), DNSD_EINVAL, "case %zu", i);
    }
    const struct checks_spec good = {CHECKS_TCP, "127.0.0.1:80", 100, 99};
    cr_assert_eq(checks_add(chk, "", "w1", &good), DNSD_EINVAL);
    cr_assert_eq(checks_add(chk, "web", "", &good), DNSD_EINVAL);
    cr_assert_eq(checks_add(chk, "a/b", "w1", &good), DNSD_EINVAL);
    cr_assert_eq(checks_add(chk, "web", "w/1", &good), DNSD_EINVAL);
    char long_name[600];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    cr_assert_eq(checks_add(chk, long_name, "w1", &good), DNSD_EINVAL);
    cr_assert_eq(checks_count(chk), 0);
}

Test(checks, count_follows_add_replace_and_remove)
{
    char id[16];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "w%d", i);
        add_ok(id, CHECKS_TCP, "127.0.0.1:9", 10000, 2000);
    }
    cr_assert_eq(checks_count(chk), 200);
    add_ok("w7", CHECKS_HTTP, "http://127.0.0.1:9/", 10000, 2000);
    cr_assert_eq(checks_count(chk), 200);
    for (int i = 0; i < 200; i += 2) {
        snprintf(id, sizeof(id), "w%d", i);
        cr_assert_eq(checks_remove(chk, "web", id), 0, "%s", id);
    }
    cr_assert_eq(checks_count(chk), 100);
    cr_assert_eq(checks_remove(chk, "web", "w0"), DNSD_ENOENT);
    cr_assert_eq(checks_remove(chk, "web", "w1"), 0);
    cr_assert_eq(checks_count(chk), 99);
}

Test(checks, remove_unknown_is_enoent)
{
    cr_assert_eq(checks_remove(chk, "web", "nope"), DNSD_ENOENT);
    cr_assert_eq(checks_remove(chk, "", "nope"), DNSD_ENOENT);
    add_ok("w1", CHECKS_TCP, "127.0.0.1:9", 1000, 500);
    cr_assert_eq(checks_remove(chk, "api", "w1"), DNSD_ENOENT);
    cr_assert_eq(checks_count(chk), 1);
}

/* ---- TCP probes ---- */

Test(checks, tcp_connect_passes)
{
    struct server *srv = server_start(0, -1, 0);
    char target[64];
    tcp_target(target, sizeof(target), srv->port);
    add_ok("w1", CHECKS_TCP, target, 1000, 500);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_str_eq(results[0].service, "web");
    cr_assert_str_eq(results[0].id, "w1");
    cr_assert_eq(results[0].outcome, CHECKS_PASS);
    cr_assert_str_eq(results[0].output, "connected");
    cr_assert_geq(srv->accepted, 1);
}

Test(checks, tcp_refused_fails)
{
    struct server *srv = server_start(0, -1, 0);
    char target[64];
    tcp_target(target, sizeof(target), srv->port);
    add_ok("w1", CHECKS_TCP, target, 200, 100);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(results[0].outcome, CHECKS_PASS);

    server_stop(srv);
    run_until_results(2, 3000);
    cr_assert_eq(n_results, 2);
    char want[128];
    snprintf(want, sizeof(want), "connect 127.0.0.1:%u: connection refused", (unsigned)srv->port);
    cr_assert_eq(results[1].outcome, CHECKS_FAIL);
    cr_assert_str_eq(results[1].output, want);
}

Test(checks, tcp_unanswered_connect_times_out)
{
    char target[64];
    tcp_target(target, sizeof(target), blackhole_port());
    add_ok("w1", CHECKS_TCP, target, 1000, 300);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(results[0].outcome, CHECKS_FAIL);
    cr_assert_str_eq(results[0].output, "timeout after 300 ms");
}

Test(checks, tcp_ipv6_target_is_probed)
{
    uint16_t port = refused_port();
    char target[64];
    snprintf(target, sizeof(target), "[::1]:%u", (unsigned)port);
    add_ok("w1", CHECKS_TCP, target, 1000, 500);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(results[0].outcome, CHECKS_FAIL);
    /* Without IPv6 on loopback the connect fails differently; either way it names [::1]. */
    char want[64];
    snprintf(want, sizeof(want), "connect [::1]:%u: ", (unsigned)port);
    cr_assert_eq(strncmp(results[0].output, want, strlen(want)), 0, "%s", results[0].output);
}

/* ---- HTTP probes ---- */

/* One HTTP probe against a server answering status; returns the result. */
static const struct result *http_once(int status, size_t body_len)
{
    struct server *srv = server_start(0, status, body_len);
    char target[128];
    http_target(target, sizeof(target), srv->port, "/health");
    add_ok("w1", CHECKS_HTTP, target, 1000, 800);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(srv->requests, 1);
    return &results[0];
}

Test(checks, http_2xx_passes)
{
    const struct result *r = http_once(200, 2);
    cr_assert_eq(r->outcome, CHECKS_PASS);
    cr_assert_str_eq(r->output, "HTTP 200");
}

Test(checks, http_204_passes)
{
    const struct result *r = http_once(204, 0);
    cr_assert_eq(r->outcome, CHECKS_PASS);
    cr_assert_str_eq(r->output, "HTTP 204");
}

Test(checks, http_429_warns)
{
    const struct result *r = http_once(429, 10);
    cr_assert_eq(r->outcome, CHECKS_WARN);
    cr_assert_str_eq(r->output, "HTTP 429");
}

Test(checks, http_500_fails)
{
    const struct result *r = http_once(500, 10);
    cr_assert_eq(r->outcome, CHECKS_FAIL);
    cr_assert_str_eq(r->output, "HTTP 500");
}

Test(checks, http_404_fails)
{
    const struct result *r = http_once(404, 0);
    cr_assert_eq(r->outcome, CHECKS_FAIL);
    cr_assert_str_eq(r->output, "HTTP 404");
}

Test(checks, http_redirect_is_not_followed)
{
    const struct result *r = http_once(301, 0);
    cr_assert_eq(r->outcome, CHECKS_FAIL);
    cr_assert_str_eq(r->output, "HTTP 301");
}

Test(checks, http_large_body_is_cut_and_passes)
{
    const struct result *r = http_once(200, 64 * 1024);
    cr_assert_eq(r->outcome, CHECKS_PASS);
    cr_assert_str_eq(r->output, "HTTP 200");
}

Test(checks, http_request_is_a_plain_get)
{
    struct server *srv = server_start(0, 200, 0);
    char target[128];
    http_target(target, sizeof(target), srv->port, "/status?deep=1");
    add_ok("w1", CHECKS_HTTP, target, 1000, 800);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(strncmp(srv->last_request, "GET /status?deep=1 HTTP/1.1\r\n", 29), 0, "%s",
                 srv->last_request);
    cr_assert_not_null(strstr(srv->last_request, "\r\nUser-Agent: dnsd/" DNSD_VERSION "\r\n"), "%s",
                       srv->last_request);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)srv->port);
    cr_assert_not_null(strstr(srv->last_request, host), "%s", srv->last_request);
}

Test(checks, http_unanswered_request_times_out)
{
    struct server *srv = server_start(0, 0, 0);
    char target[128];
    http_target(target, sizeof(target), srv->port, "/");
    add_ok("w1", CHECKS_HTTP, target, 1000, 300);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(srv->requests, 1);
    cr_assert_eq(results[0].outcome, CHECKS_FAIL);
    cr_assert_str_eq(results[0].output, "timeout after 300 ms");
}

Test(checks, http_connect_error_fails_with_curl_message)
{
    char target[128];
    http_target(target, sizeof(target), refused_port(), "/");
    add_ok("w1", CHECKS_HTTP, target, 1000, 800);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(results[0].outcome, CHECKS_FAIL);
    cr_assert_neq(strncmp(results[0].output, "HTTP ", 5), 0, "%s", results[0].output);
    cr_assert_not_null(strstr(results[0].output, "127.0.0.1"), "%s", results[0].output);
}

Test(checks, http_reset_fails_with_curl_message)
{
    struct server *srv = server_start(0, -2, 0);
    char target[128];
    http_target(target, sizeof(target), srv->port, "/");
    add_ok("w1", CHECKS_HTTP, target, 1000, 800);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    cr_assert_eq(srv->requests, 1);
    cr_assert_eq(results[0].outcome, CHECKS_FAIL);
    cr_assert_str_eq(results[0].output, "Recv failure: Connection reset by peer");
}

/* ---- schedule ---- */

Test(checks, probes_repeat_every_interval)
{
    struct server *srv = server_start(0, -1, 0);
    char target[64];
    tcp_target(target, sizeof(target), srv->port);
    add_ok("w1", CHECKS_TCP, target, 100, 50);
    run_until_results(5, 3000);
    cr_assert_eq(n_results, 5);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(results[i].output, "connected");
    }
    /* Ticks are 90..110 ms apart; a result comes within one loop turn of its tick. */
    for (size_t i = 1; i < 5; i++) {
        cr_assert_geq(results[i].at - results[i - 1].at, 50, "probe %zu came too early", i);
    }
}

Test(checks, tick_is_skipped_while_probe_in_flight)
{
    /* Every probe runs its full 99 ms timeout while ticks come 90..110 ms apart, so some
     * ticks find the previous probe still running. */
    struct server *srv = server_start(0, 0, 0);
    char target[128];
    http_target(target, sizeof(target), srv->port, "/");
    add_ok("w1", CHECKS_HTTP, target, 100, 99);
    run_until_results(8, 3000);
    cr_assert_eq(n_results, 8);
    cr_assert_geq(srv->accepted, 8);
    /* A probe's connection arrives only after the previous probe has been reported. */
    for (size_t i = 1; i < 8; i++) {
        cr_assert_geq(srv->accept_at[i], results[i - 1].at, "probe %zu overlapped", i);
    }
}

Test(checks, first_probes_are_spread)
{
    struct server *srv = server_start(0, -1, 0);
    char target[64];
    tcp_target(target, sizeof(target), srv->port);
    const size_t n = 50;
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "w%zu", i);
        add_ok(id, CHECKS_TCP, target, 2000, 500);
    }
    uint64_t start = uv_now(&loop);
    run_until_results(n, 3000);
    cr_assert_eq(n_results, n);
    uint64_t lo = UINT64_MAX, hi = 0;
    bool bucket[10] = {false};
    size_t buckets = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            cr_assert_str_neq(results[i].id, results[j].id, "a second probe came first");
        }
        uint64_t at = results[i].at - start;
        lo = at < lo ? at : lo;
        hi = at > hi ? at : hi;
        size_t b = at / 100 < 10 ? at / 100 : 9;
        if (!bucket[b]) {
            bucket[b] = true;
            buckets++;
        }
    }
    /* 50 uniform draws over [0, 1000 ms): never all within 10 ms; P(range < 500) ~ 1e-13. */
    cr_assert_gt(hi - lo, 10);
    cr_assert_geq(hi - lo, 500, "first probes span only %llu ms", (unsigned long long)(hi - lo));
    cr_assert_geq(buckets, 5, "first probes fall in only %zu of 10 slots", buckets);
}

/* The tick after the first probe moves each instance to a random phase of its interval, so
 * instances registered together do not keep probing within the same second. */
Test(checks, second_probes_spread_over_the_interval)
{
    struct server *srv = server_start(0, -1, 0);
    char target[64];
    tcp_target(target, sizeof(target), srv->port);
    const size_t n = 40;
    const uint64_t interval = 4000;
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "w%zu", i);
        add_ok(id, CHECKS_TCP, target, (uint32_t)interval, 500);
    }
    uint64_t start = uv_now(&loop);
    run_until_results(2 * n, 20000); /* ~7 s unloaded; generous for loaded CI machines */
    cr_assert_eq(n_results, 2 * n);
    /* Phases of the second probes within the interval, in eight 500 ms slots. Without the
     * spreading tick they stay within about two seconds of the first ones (four slots). */
    bool slot[8] = {false};
    size_t slots = 0;
    for (size_t i = n; i < 2 * n; i++) {
        size_t s = (size_t)(((results[i].at - start) % interval) / 500);
        if (!slot[s]) {
            slot[s] = true;
            slots++;
        }
    }
    cr_assert_geq(slots, 6, "second probes fall in only %zu of 8 phase slots", slots);
}

/* ---- cancellation ---- */

static void remove_w1(struct server *srv)
{
    (void)srv;
    cr_assert(checks_is_probing(chk, "web", "w1"));
    cr_assert_eq(checks_remove(chk, "web", "w1"), 0);
    cr_assert_not(checks_is_probing(chk, "web", "w1"));
}

Test(checks, remove_cancels_http_probe_in_flight)
{
    struct server *srv = server_start(0, 0, 0);
    srv->on_request = remove_w1;
    char target[128];
    http_target(target, sizeof(target), srv->port, "/");
    add_ok("w1", CHECKS_HTTP, target, 1000, 300);
    run_for(2000);
    cr_assert_eq(srv->requests, 1);
    cr_assert_eq(checks_count(chk), 0);
    cr_assert_eq(n_results, 0, "a removed instance reported: %s", results[0].output);
}

Test(checks, remove_cancels_tcp_probe_in_flight)
{
    char target[64];
    tcp_target(target, sizeof(target), blackhole_port());
    add_ok("w1", CHECKS_TCP, target, 1000, 900);
    for (int i = 0; i < 150 && !checks_is_probing(chk, "web", "w1"); i++) {
        run_for(10);
    }
    cr_assert(checks_is_probing(chk, "web", "w1"));
    cr_assert_eq(checks_remove(chk, "web", "w1"), 0);
    run_for(1500);
    cr_assert_eq(n_results, 0, "a removed instance reported: %s", results[0].output);
}

static char replacement[128];

static void replace_w1(struct server *srv)
{
    (void)srv;
    add_ok("w1", CHECKS_HTTP, replacement, 1000, 800);
}

Test(checks, add_replaces_probe_in_flight)
{
    struct server *silent = server_start(0, 0, 0);
    struct server *ok = server_start(1, 200, 0);
    silent->on_request = replace_w1;
    char target[128];
    http_target(target, sizeof(target), silent->port, "/");
    http_target(replacement, sizeof(replacement), ok->port, "/ok");
    add_ok("w1", CHECKS_HTTP, target, 1000, 900);
    run_until_results(1, 3000);
    cr_assert_eq(n_results, 1);
    /* Long enough for the replaced probe's 900 ms timeout to have come, had it survived. */
    run_for(1000);
    for (size_t i = 0; i < n_results; i++) {
        cr_assert_eq(results[i].outcome, CHECKS_PASS, "%s", results[i].output);
        cr_assert_str_eq(results[i].output, "HTTP 200");
    }
    cr_assert_eq(silent->requests, 1);
    cr_assert_eq(ok->requests, n_results);
    cr_assert_eq(checks_count(chk), 1);
}

Test(checks, result_callback_may_remove_its_instance)
{
    struct server *srv = server_start(0, -1, 0);
    struct server *web = server_start(1, 200, 0);
    char target[128];
    tcp_target(target, sizeof(target), srv->port);
    add_ok("w1", CHECKS_TCP, target, 100, 50);
    http_target(target, sizeof(target), web->port, "/");
    add_ok("w2", CHECKS_HTTP, target, 100, 50);
    remove_own_on_result = true;
    run_for(600);
    cr_assert_eq(n_results, 2);
    cr_assert_eq(checks_count(chk), 0);
    cr_assert_eq(srv->accepted, 1);
    cr_assert_eq(web->requests, 1);
}

static void stop_all(struct server *srv)
{
    if (srv->requests == 3) {
        checks_stop(chk);
        stopped = true;
        uv_stop(&loop);
    }
}

Test(checks, stop_with_probes_in_flight_frees_everything)
{
    struct server *silent = server_start(0, 0, 0);
    struct server *tcp = server_start(1, -1, 0);
    silent->on_request = stop_all;
    char http[128], hole[64], open[64];
    http_target(http, sizeof(http), silent->port, "/");
    tcp_target(hole, sizeof(hole), blackhole_port());
    tcp_target(open, sizeof(open), tcp->port);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "h%d", i);
        add_ok(id, CHECKS_HTTP, http, 1000, 900);
        snprintf(id, sizeof(id), "b%d", i);
        add_ok(id, CHECKS_TCP, hole, 1000, 900);
        snprintf(id, sizeof(id), "t%d", i);
        add_ok(id, CHECKS_TCP, open, 1000, 900);
    }
    run_for(3000);
    cr_assert(stopped, "the silent server never saw 3 requests");
    /* Every probe left would have finished (timeout 900 ms) within this run. */
    run_for(1200);
    cr_assert_eq(late_results, 0);
    /* teardown runs the loop until every handle has closed and checks uv_loop_close. */
}

/* ---- metrics ---- */

Test(checks, tcp_results_are_counted_by_outcome)
{
    struct server *srv = server_start(0, -1, 0);
    char target[64];
    tcp_target(target, sizeof(target), srv->port);
    add_ok("w1", CHECKS_TCP, target, 200, 100);
    run_until_results(1, 3000);
    server_stop(srv);
    run_until_results(2, 3000);
    cr_assert_eq(n_results, 2);
    const struct metrics_checks *m = checks_metrics(chk);
    cr_assert_eq(m->results[CHECKS_TCP][CHECKS_PASS], 1);
    cr_assert_eq(m->results[CHECKS_TCP][CHECKS_FAIL], 1);
    cr_assert_eq(m->results[CHECKS_TCP][CHECKS_WARN], 0);
    cr_assert_eq(m->results[CHECKS_HTTP][CHECKS_PASS], 0);
}

Test(checks, http_results_are_counted_by_outcome)
{
    const struct result *r = http_once(429, 10);
    cr_assert_eq(r->outcome, CHECKS_WARN);
    const struct metrics_checks *m = checks_metrics(chk);
    cr_assert_eq(m->results[CHECKS_HTTP][CHECKS_WARN], 1);
    cr_assert_eq(m->results[CHECKS_HTTP][CHECKS_PASS] + m->results[CHECKS_HTTP][CHECKS_FAIL], 0);
    cr_assert_eq(m->results[CHECKS_TCP][CHECKS_PASS], 0);
}
