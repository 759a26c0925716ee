/* SPDX-License-Identifier: BSD-2-Clause
 * Forwarding of questions outside every zone to upstream DNS servers (like Consul's
 * recursors): a pure core (forwarder and network parsing, reply matching, the order in
 * which forwarders are tried, reply rewriting) and a libuv shell that owns one unconnected
 * UDP socket per address family, the timers and the TCP connections used after TC.
 * Never parses or answers a question itself; never touches the zones.
 * Loop: the shell runs on the loop it was created on; the pure functions anywhere. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netlist.h"

#define FORWARD_MAX_SERVERS 8
#define FORWARD_MAX_ALLOW 16
#define FORWARD_MAX_INFLIGHT 1024
#define FORWARD_DEFAULT_PORT 53

enum forward_strategy {
    FORWARD_SEQUENTIAL = 0, /* always start with the first forwarder */
    FORWARD_RANDOM = 1,     /* start with a random one, then go round the list */
};

/* A forwarder: "ADDR", "ADDR:PORT", "[ADDR]" or "[ADDR]:PORT" (numeric). */
struct forward_server {
    struct sockaddr_storage addr;
};

struct forward_config {
    struct forward_server servers[FORWARD_MAX_SERVERS];
    size_t n_servers; /* 0 = forwarding off */
    enum forward_strategy strategy;
    uint32_t timeout_ms;                         /* per attempt */
    uint32_t retries;                            /* extra attempts per forwarder */
    struct netlist_net allow[FORWARD_MAX_ALLOW]; /* client networks that may forward */
    size_t n_allow;
};

/* Called once per forward_query with the upstream's answer, its ID set to the client's, or
 * with resp NULL when every forwarder failed or the forwarder is stopping.
 * Ownership: resp is borrowed for the call. */
typedef void forward_done_cb(void *arg, const uint8_t *resp, size_t resp_len);

struct forward;
struct uv_loop_s;

/* ---- pure core ---- */

/* Fill cfg with the defaults: no forwarders, sequential, 1500 ms, 1 retry, loopback only. */
void forward_config_init(struct forward_config *cfg);

/* Parse a forwarder address; the port defaults to 53.
 * Returns: 0 and *out, DNSD_EINVAL. */
int forward_parse_server(const char *text, struct forward_server *out);

/* Is the client address sa (AF_INET or AF_INET6; IPv4-mapped IPv6 counts as IPv4) inside
 * one of the allowed networks (netlist_contains)? */
bool forward_is_allowed(const struct forward_config *cfg, const struct sockaddr *sa);

/* The forwarder for the attempt-th try (0-based) of a query whose random start is start:
 * each forwarder is tried 1 + retries times, going round the list so that a timeout moves to
 * the next one. Returns: the index into cfg->servers, or -1 when every try is used up. */
int forward_pick(const struct forward_config *cfg, uint32_t start, uint32_t attempt);

/* Is reply the answer to query: same ID, QR set, and the same question (name compared
 * case-insensitively, type and class)? */
bool forward_reply_matches(const uint8_t *query, size_t query_len, const uint8_t *reply,
                           size_t reply_len);

/* Cut a reply down to its header and question with TC set, for a client whose UDP size it
 * exceeds (RFC 2181 §9), keeping its OPT record without options (RFC 6891 §7) when it has
 * one. Returns: the new length, or 0 when reply has no whole question. */
size_t forward_truncate(uint8_t *reply, size_t reply_len);

/* The same, written into out (out_len bytes; may be reply itself), reply unchanged
 * otherwise. Returns: the length written, or 0 (no whole question, or out too small). */
size_t forward_truncate_copy(const uint8_t *reply, size_t reply_len, uint8_t *out, size_t out_len);

/* Write into out (at least 12 bytes + the question) a SERVFAIL for req: its ID, opcode, RD,
 * its question when it has one. Returns: the length written, 0 if req is shorter than 12. */
size_t forward_servfail(const uint8_t *req, size_t req_len, uint8_t *out, size_t out_len);

/* ---- libuv shell ---- */

/* Create the forwarder on loop; cfg is copied.
 * Returns: 0 and *out, DNSD_ENOMEM, or a negative -errno from libuv (socket creation). */
int forward_new(struct uv_loop_s *loop, const struct forward_config *cfg, struct forward **out);

/* Forward req (copied) with a fresh random ID; cb gets the answer later, never during this
 * call. Returns: 0, DNSD_ENOSPC (FORWARD_MAX_INFLIGHT queries in flight), DNSD_EINVAL (req
 * is shorter than a header), DNSD_ENOMEM. cb is called only when 0 is returned. */
int forward_query(struct forward *fw, const uint8_t *req, size_t req_len, forward_done_cb *cb,
                  void *arg);

/* Fail every query in flight (cb with NULL), close every handle and free fw once they have
 * closed, then call closed(arg) if not NULL. fw must not be used after this call. */
void forward_stop(struct forward *fw, void (*closed)(void *arg), void *arg);
