/* SPDX-License-Identifier: BSD-2-Clause
 * Answers one DNS query: request bytes in, response bytes out, from the zone store and the
 * prepared registry answers. Implements the authoritative server's rules (RFC 1034/1035,
 * 2308 negative answers, 6891 EDNS, 7766 TCP sizes, 8482 ANY). No I/O, no clock: now_ms
 * is a parameter.
 * Loop: one query_ctx per DNS loop; a ctx is never shared between threads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zonestore;
struct answers;

enum query_transport {
    QUERY_UDP,
    QUERY_TCP,
};

struct query_config {
    const char *domain;    /* service domain, absolute, lower-case; borrowed */
    uint32_t dns_ttl;      /* TTL cap for registry records */
    uint32_t min_ttl;      /* TTL floor for registry records (dns.min_ttl) */
    uint16_t udp_max_size; /* largest EDNS UDP payload we send (default 1232) */
    bool full_path_only;   /* answer everything through ldns, never the hot path (tests) */
};

struct query_ctx;

/* Create a per-loop query context; cfg is copied (domain is borrowed).
 * Returns: the context, or NULL when out of memory. */
struct query_ctx *query_ctx_new(const struct query_config *cfg);
void query_ctx_free(struct query_ctx *ctx);

/* Answer the query in req. *resp points into ctx and stays valid until the next call.
 * *resp_len is 0 when nothing must be sent (a response packet, or fewer than 12 bytes).
 * Over UDP the response fits the client's size (512 without EDNS); over TCP it may be up
 * to 65535 bytes. Internal failures become SERVFAIL. Plain questions for registry names are
 * answered by a hot path that writes the reply directly (same records, same order, same
 * compression as the ldns path); everything else goes through wire.c and ldns.
 * Returns: 0 always with *resp and *resp_len set (kept int for future error reporting). */
int query_answer(struct query_ctx *ctx, const struct zonestore *zs, const struct answers *ans,
                 const uint8_t *req, size_t req_len, enum query_transport transport,
                 uint64_t now_ms, const uint8_t **resp, size_t *resp_len);

/* Did the last query_answer on ctx take the hot path? (tests, and later metrics) */
bool query_last_was_fast(const struct query_ctx *ctx);

/* What the last query_answer on ctx sent, for metrics. Meaningful only when that call gave
 * a non-empty response. */
struct query_outcome {
    uint16_t qtype; /* the question's TYPE; 0 when the request had no parsable question */
    uint16_t rcode; /* 12-bit: EDNS's extended bits included (BADVERS is 16) */
    bool truncated; /* TC set */
    /* REFUSED because the question (class IN) is outside every zone: a forwarder may answer
     * it instead (forward.h); the server decides whether forwarding applies. */
    bool outside_zones;
    uint16_t udp_limit; /* the client's UDP size (RFC 6891 §6.2.5), with outside_zones */
};
struct query_outcome query_last_outcome(const struct query_ctx *ctx);
