/* SPDX-License-Identifier: BSD-2-Clause
 * The registration sockets: libmicrohttpd serving HTTP/1.1 on Unix and TCP sockets, driven
 * from the libuv loop (its epoll descriptor watched with uv_poll, its timeouts with a
 * uv_timer). Each complete request is handed to api.c; a watch that api.c parks is
 * suspended here until its service changes or its deadline passes. This module owns the
 * sockets, the socket files and the parked requests, never the registry.
 * Loop: every function runs on the loop the API server was started on. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"

struct api;
struct metrics_sources;

struct apiserver_config {
    const struct config_api *endpoints; /* borrowed for the call */
    size_t n_endpoints;
    uint32_t socket_mode; /* file mode of Unix socket files */
    /* Group of Unix socket files: a group name or a numeric gid; "" or NULL = the process's
     * group. Borrowed for the call. */
    const char *socket_group;
    /* PEM files of the TLS certificate (chain) and its private key, both read once by
     * apiserver_start; "" or NULL (both) = plain HTTP. When set every TCP endpoint serves
     * HTTPS only; Unix sockets stay plain. Borrowed for the call. */
    const char *tls_cert;
    const char *tls_key;
    size_t max_body;          /* larger request bodies get 413 */
    uint32_t max_connections; /* per endpoint; at most 3/4 of them (>= 1) may be parked
                                 watches, so registrations always find a slot */
    uint32_t timeout_s;       /* idle connection timeout; also bounds a slow request */
    size_t max_header;        /* per-connection memory (request line, headers, buffers);
                                 larger headers get 431 */
    /* Borrowed; must outlive the server. Every request on a TCP endpoint needs one of them
     * (401 without, 403 beyond its scope: api_is_allowed); Unix sockets rely on their file
     * permissions. */
    const struct config_token *tokens;
    size_t n_tokens;
};

struct apiserver;

/* Open every endpoint (creating a Unix socket's missing directories, replacing a stale
 * socket file, refusing one another process is listening on) and serve api on them. A Unix
 * socket file appears at its path already with socket_mode and socket_group, never looser.
 * TCP endpoints serve HTTPS when tls_cert and tls_key are set; one outside loopback without
 * TLS (config_validate allowed it: api_options.allow_plain_tcp) is served with a warning in
 * the log.
 * Returns: 0 and *out, or a negative DNSD_E* or -errno code with err naming the endpoint or
 * the option at fault: DNSD_ENOENT (no such socket_group), DNSD_EINVAL (a socket_group gid
 * out of range, a TLS file that is not PEM, or that TLS refused), DNSD_ERANGE (a TLS file
 * over 1 MiB), -ENOTSUP (libmicrohttpd without TLS), -errno (a TLS file unreadable, chown to
 * socket_group failed, a socket error).
 * Ownership: api is borrowed and must outlive the server. */
int apiserver_start(uv_loop_t *loop, const struct apiserver_config *cfg, struct api *api,
                    struct apiserver **out, char *err, size_t err_len);

/* Close every endpoint and remove the Unix socket files. Parked watches are answered with
 * the current state if the socket takes the reply at once, else closed. The server frees
 * itself once its handles have closed; srv must not be used after this call. */
void apiserver_stop(struct apiserver *srv);

/* Serve GET /metrics from src from now on (until then only the API's own counters and
 * dnsd_up/dnsd_build_info are shown).
 * Ownership: copies *src; the pointers inside it are borrowed and must stay valid until
 * apiserver_stop. */
void apiserver_set_metrics(struct apiserver *srv, const struct metrics_sources *src);

/* The journal's write-out for every durable write parked so far is done: err 0 sends their
 * replies, else each becomes 503 {"error":"cannot persist: REASON"} (reason may be NULL:
 * the code's description). srv may be NULL (nothing to do). */
void apiserver_commit_done(struct apiserver *srv, int err, const char *reason);

/* The registry's state of service changed (its index moved): every watch parked on it is
 * resumed, and api_handle decides again whether to answer or park it anew (up to its
 * original deadline). srv may be NULL (nothing to do). O(watches on the same hash chain). */
void apiserver_notify_service(struct apiserver *srv, const char *service);
