/* SPDX-License-Identifier: BSD-2-Clause
 * Response rate limiting (RRL) for UDP answers: one token bucket per client prefix (IPv4 /24,
 * IPv6 /56 by default) in a fixed-size table, so a flood from spoofed sources can neither
 * be reflected at full rate at a victim nor grow memory. Over the rate an answer is dropped,
 * or every slip-th one is "slipped" (sent truncated, so a real client retries over TCP).
 * Pure: the clock is a parameter, no I/O, no allocation after rrl_new.
 * Threads: one rrl serves every DNS loop; rrl_decide and rrl_summary_due may run on several
 * threads at once (a lock per stripe of the table, never taken for exempt clients).
 * rrl_count and rrl_check are for tests, with no other thread deciding. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netlist.h"

#define RRL_MAX_EXEMPT 16
/* A summary of limited responses is due at most this often (rrl_summary_due). */
#define RRL_SUMMARY_INTERVAL_MS 10000
/* An answer costs this many credits; a bucket holds responses_per_second of them. */
#define RRL_CREDIT 1000u

/* dns.rrl { }: defaults from rrl_config_init. */
struct rrl_config {
    bool enabled;
    uint32_t responses_per_second; /* 1..1000000; the burst is one second's worth */
    uint32_t slip;                 /* 0: drop every limited answer; N: slip every Nth */
    uint32_t ipv4_prefix;          /* 8..32: clients in one such network share a bucket */
    uint32_t ipv6_prefix;          /* 16..128 */
    uint32_t table_size;           /* buckets, 1..16777216 (the config allows 1024..) */
    struct netlist_net exempt[RRL_MAX_EXEMPT]; /* clients never limited */
    size_t n_exempt;
};

/* What to do with one UDP answer. */
enum rrl_verdict {
    RRL_SEND, /* send the answer as built */
    RRL_DROP, /* send nothing */
    RRL_SLIP, /* send header, question and OPT with TC=1 instead (forward_truncate_copy) */
};

/* Limited answers since the last summary, for one log line. */
struct rrl_summary {
    uint64_t dropped;
    uint64_t slipped;
    uint64_t interval_ms;                   /* since the previous summary (0: the first one) */
    char last_prefix[NETLIST_NET_TEXT_LEN]; /* the client network limited last */
};

struct rrl;

/* Fill cfg with the defaults: enabled, 1000 responses per second, slip 2, /24 and /56,
 * 65536 buckets, 127.0.0.0/8 and ::1/128 exempt. */
void rrl_config_init(struct rrl_config *cfg);

/* A rate limiter for cfg; hash_seed keys the bucket hash (pass a random value, so that an
 * attacker cannot aim many prefixes at one window of the table). The whole table is
 * allocated here; a disabled cfg allocates no table.
 * Returns: 0 and *out, DNSD_EINVAL (a value outside the ranges in struct rrl_config),
 * DNSD_ENOMEM.
 * Ownership: copies cfg; *out is the caller's, released with rrl_free. */
int rrl_new(const struct rrl_config *cfg, uint64_t hash_seed, struct rrl **out);

/* Free rrl; NULL does nothing. */
void rrl_free(struct rrl *rrl);

/* Buckets in use (at most rrl_capacity). */
size_t rrl_count(const struct rrl *rrl);

/* Buckets the table holds (table_size; 0 when disabled). */
size_t rrl_capacity(const struct rrl *rrl);

/* Internal consistency (bucket count, credits within the burst, keys masked to the prefix),
 * for tests. Returns: true when consistent. */
bool rrl_check(const struct rrl *rrl);

/* Decide the fate of one UDP answer to client at now_ms (a monotonic millisecond clock).
 * Disabled, an exempt client or an address family other than AF_INET/AF_INET6: RRL_SEND.
 * Otherwise the client's prefix bucket pays RRL_CREDIT for the answer (RRL_SEND); an empty
 * bucket gives RRL_SLIP for every slip-th limited answer, RRL_DROP for the others. A new
 * prefix takes a free bucket near its slot or, when there is none, the nearby bucket with
 * the most credits (an idle one has refilled, so nothing is lost; a prefix being limited
 * keeps its empty bucket unless every nearby bucket is being limited too), so the table
 * never grows and a flood from fewer networks than the window cannot reset a limit. */
enum rrl_verdict rrl_decide(struct rrl *rrl, const struct sockaddr *client, uint64_t now_ms);

/* Is a summary of limited answers due: something was limited since the last one, and the
 * last one was RRL_SUMMARY_INTERVAL_MS or more before now_ms (or there was none)?
 * Returns: true and *out (the counters then restart from zero), or false. */
bool rrl_summary_due(struct rrl *rrl, uint64_t now_ms, struct rrl_summary *out);
