/* SPDX-License-Identifier: BSD-2-Clause
 * The DNS listeners: UDP and TCP sockets on libuv, each received query handed to query.c
 * and its answer sent back. TCP follows RFC 7766: pipelined queries (a client that does not
 * read its answers is not read from), an idle timeout (no read and no write progress), a
 * total lifetime per connection, and a connection cap that closes the longest-idle
 * connection first. UDP reads batches with recvmmsg and sends each batch's answers with one
 * sendmmsg; each UDP answer passes response rate limiting (rrl.h) when it is on. Questions
 * outside every zone go to forward.c when forwarders are configured and the client is
 * allowed. Owns its sockets, never the zone store, the answers or the rate limiter it uses.
 * Several servers may run at once, each on its own loop and thread (workers.h), their UDP
 * sockets sharing the addresses through SO_REUSEPORT; every query is answered inside a
 * liburcu read-side critical section (answers.h), so a thread running a server must be
 * registered with urcu_memb_register_thread.
 * Loop: every function runs on the loop the server was started on, except
 * server_set_zonestore. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "query.h"

struct zonestore;
struct answers;
struct metrics_dns;
struct forward_config;
struct rrl;

/* How a server's UDP sockets treat other sockets on the same address. */
enum server_udp_sharing {
    SERVER_UDP_OWN,  /* plain sockets: no other socket can bind the address */
    SERVER_UDP_OPEN, /* SO_REUSEPORT, the first of a group: fails if the address is in use */
    SERVER_UDP_JOIN, /* SO_REUSEPORT, joining the group a SERVER_UDP_OPEN server opened */
};

struct server_config {
    const struct config_listen *listen; /* borrowed for the call */
    size_t n_listen;
    uint32_t tcp_idle_timeout_ms;
    uint32_t tcp_max_connections;
    uint32_t tcp_max_connection_ms; /* past it: stop reading, flush answers, close */
    uint32_t udp_rcvbuf;            /* SO_RCVBUF to ask for, bytes; 0 = system default */
    struct query_config query;      /* query.domain is borrowed for the server's life */
    /* Forwarding of questions outside every zone (copied); NULL or no servers: off, such
     * questions get REFUSED. */
    const struct forward_config *forward;
    /* Response rate limiting of UDP answers, borrowed and shared by every server; NULL:
     * off. */
    struct rrl *rrl;
    bool udp_only; /* no TCP listeners (a worker: TCP stays on the main loop) */
    enum server_udp_sharing udp_sharing;
};

struct server;

/* Bind every listen address (UDP and TCP each), open the forwarder's sockets when
 * cfg->forward names forwarders, and start serving from zs and ans.
 * Returns: 0 and *out, or a negative libuv-translated DNSD_E* or -errno code; err names the
 * address that failed ("127.0.0.1:53/udp: address already in use").
 * Ownership: zs and ans are borrowed; swap zs with server_set_zonestore. */
int server_start(uv_loop_t *loop, const struct server_config *cfg, const struct zonestore *zs,
                 const struct answers *ans, struct server **out, char *err, size_t err_len);

/* This loop's DNS counters (metrics.h), updated as queries are answered.
 * Returns: a pointer borrowed for the server's life (until server_stop). */
const struct metrics_dns *server_metrics(const struct server *srv);

/* The port the i-th listen address's UDP socket is bound to (i < n_listen): the configured
 * one, or the one the system chose for port 0, for the servers that share it. */
uint16_t server_udp_port(const struct server *srv, size_t i);

/* Serve from a new zone store from now on. May be called from any thread: the store is
 * published with a release store, and queries on the server's thread may still be reading
 * the old one until their read-side critical section ends, so free the old one only after
 * urcu_memb_synchronize_rcu (at once when the server runs on the caller's thread). */
void server_set_zonestore(struct server *srv, const struct zonestore *zs);

/* Stop accepting, let TCP answers already written finish, close every handle. The server
 * frees itself once the last handle has closed; srv must not be used after this call. */
void server_stop(struct server *srv);
