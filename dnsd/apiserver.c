/* SPDX-License-Identifier: BSD-2-Clause
 * libmicrohttpd on the libuv loop. MHD runs in "external select" mode with epoll: its
 * epoll fd is one uv_poll handle, and MHD_get_timeout() drives one uv_timer. Sockets are
 * created here (so Unix sockets get their mode and stale files are handled) and passed to
 * MHD with MHD_OPTION_LISTEN_SOCKET. Request bodies are collected up to max_body, then the
 * whole request goes to api_handle(). No JSON and no registry logic here. */
#include "apiserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "dnsd/error.h"
#include "api.h"
#include "log.h"

#define API_BACKLOG 128

struct apiserver;

struct endpoint {
    struct apiserver *srv;  /* borrowed: the owner */
    struct MHD_Daemon *mhd; /* owned */
    uv_poll_t poll;         /* watches MHD's epoll fd */
    uv_timer_t timer;       /* MHD's own timeouts */
    char unix_path[108];    /* "" for TCP; removed on stop */
    char name[160];         /* "unix:/run/dnsd/api.sock", for logs */
    bool poll_open, timer_open;
};

struct apiserver {
    uv_loop_t *loop;      /* borrowed */
    struct api *api;      /* borrowed */
    struct endpoint *eps; /* owned array */
    size_t n_eps;
    size_t max_body;
    unsigned open_handles;
    bool stopping;
};

/* Per-request state kept by MHD between calls of the access handler. */
struct request {
    char *body; /* owned */
    size_t len, cap;
    bool too_large;
};

static void reschedule(struct endpoint *ep);
static void on_timer(uv_timer_t *timer);

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
    log_warn("api", "%s: %s", ep->name, line);
}
#pragma GCC diagnostic pop

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct api_response *reply)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(reply->body_len, reply->body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (reply->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)reply->status, resp);
    MHD_destroy_response(resp);
    return rc;
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
        /* First call: headers only. Refuse an announced oversized body before reading it. */
        const char *clen =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (clen && strtoull(clen, NULL, 10) > srv->max_body) {
            char msg[96];
            snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", srv->max_body);
            return send_error(conn, 413, msg, "body");
        }
        req = calloc(1, sizeof(*req));
        if (req == NULL)
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!body_append(req, upload_data, *upload_data_size, srv->max_body))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->too_large) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", srv->max_body);
        return send_error(conn, 413, msg, "body");
    }

    char full_url[2048];
    snprintf(full_url, sizeof(full_url), "%s", url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_arg, full_url);

    struct api_response reply;
    if (api_handle(srv->api, method, full_url, req->body ? req->body : "", req->len,
                   uv_now(srv->loop), &reply) != 0) {
        log_error("api", "%s %s: out of memory", method, url);
        return MHD_NO;
    }
    enum MHD_Result rc = send_reply(conn, &reply);
    api_response_clear(&reply);
    return rc;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct request *req = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (req) {
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
    MHD_run(ep->mhd);
    if (connection_count(ep) < before)
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

/* Remove a socket file left by a dead dnsd, but never one a live process listens on. */
static int clear_stale_socket(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return DNSD_EEXIST;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    if (live)
        return -EADDRINUSE;
    return unlink(path) == 0 ? 0 : -errno;
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

static int open_unix(const struct config_api *cfg, uint32_t mode, int *out_fd)
{
    int rc = ensure_parent_dir(cfg->path);
    if (rc == 0)
        rc = clear_stale_socket(cfg->path);
    if (rc != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", cfg->path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
        goto fail;
    /* File permissions are the access control of the Unix socket. */
    if (chmod(cfg->path, mode) != 0 || listen(fd, API_BACKLOG) != 0) {
        rc = -errno;
        unlink(cfg->path);
        close(fd);
        return rc;
    }
    *out_fd = fd;
    return 0;

fail:
    rc = -errno;
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
                          const struct apiserver_config *cfg, const struct config_api *api_cfg)
{
    int fd = -1;
    int rc;
    ep->srv = srv;
    endpoint_name(api_cfg, ep->name, sizeof(ep->name));
    if (api_cfg->kind == CONFIG_API_UNIX) {
        rc = open_unix(api_cfg, cfg->socket_mode, &fd);
        if (rc == 0)
            snprintf(ep->unix_path, sizeof(ep->unix_path), "%s", api_cfg->path);
    } else {
        rc = open_tcp(api_cfg, &fd);
    }
    if (rc != 0)
        return rc;

    ep->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_SUPPRESS_DATE_NO_CLOCK, 0, NULL, NULL,
        handle_request, ep, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, ep, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, ep, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_END);
    if (ep->mhd == NULL) {
        close(fd);
        if (ep->unix_path[0])
            unlink(ep->unix_path);
        ep->unix_path[0] = '\0';
        return DNSD_EIO;
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

int apiserver_start(uv_loop_t *loop, const struct apiserver_config *cfg, struct api *api,
                    struct apiserver **out, char *err, size_t err_len)
{
    struct apiserver *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return DNSD_ENOMEM;
    srv->loop = loop;
    srv->api = api;
    srv->max_body = cfg->max_body;
    srv->eps = calloc(cfg->n_endpoints ? cfg->n_endpoints : 1, sizeof(*srv->eps));
    if (srv->eps == NULL) {
        free(srv);
        return DNSD_ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        struct endpoint *ep = &srv->eps[i];
        srv->n_eps++;
        int rc = endpoint_start(srv, ep, cfg, &cfg->endpoints[i]);
        if (rc != 0) {
            bool is_unix = cfg->endpoints[i].kind == CONFIG_API_UNIX;
            if (is_unix && rc == -EADDRINUSE)
                snprintf(err, err_len,
                         "%s: another process (a running dnsd?) is listening on this socket",
                         ep->name);
            else if (is_unix && rc == DNSD_EEXIST)
                snprintf(err, err_len, "%s: exists and is not a socket; not replacing it",
                         ep->name);
            else
                snprintf(err, err_len, "%s: %s", ep->name, dnsd_strerror(rc));
            apiserver_stop(srv);
            return rc;
        }
        log_info("api", "listening on %s", ep->name);
    }
    *out = srv;
    return 0;
}

static void free_if_closed(struct apiserver *srv)
{
    if (srv->open_handles > 0)
        return;
    free(srv->eps);
    free(srv);
}

static void handle_closed(uv_handle_t *handle)
{
    struct endpoint *ep = handle->data;
    struct apiserver *srv = ep->srv;
    srv->open_handles--;
    free_if_closed(srv);
}

void apiserver_stop(struct apiserver *srv)
{
    srv->stopping = true;
    for (size_t i = 0; i < srv->n_eps; i++) {
        struct endpoint *ep = &srv->eps[i];
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
