/* SPDX-License-Identifier: BSD-2-Clause
 * Metrics: the plain counter structs the other modules increment, and their rendering in
 * the Prometheus text exposition format 0.0.4. Counting is a few integer additions on the
 * owning loop (no locks, no read-modify-write instructions); rendering reads the structs,
 * the registry and the build version and writes text. No I/O and no clock here.
 * Threads: a counter struct is written only by the loop that owns it, with metrics_add;
 * rendering may run on another thread (DNS workers count while the main loop renders):
 * every counter is read and written whole (relaxed atomic loads and stores). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct registry;

/* The Content-Type of metrics_render's text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One query's duration is measured for 1 in METRICS_DURATION_SAMPLE queries (a power of
 * two): timing every answer (two uv_hrtime calls, about 50 ns) cost about 3% of QPS per
 * core in tools/bench/bench.py --quick, sampling costs nothing measurable. */
#define METRICS_DURATION_SAMPLE 16u

enum metrics_transport {
    METRICS_UDP,
    METRICS_TCP,
    METRICS_N_TRANSPORTS,
};

enum metrics_qtype {
    METRICS_QTYPE_A,
    METRICS_QTYPE_AAAA,
    METRICS_QTYPE_SRV,
    METRICS_QTYPE_TXT,
    METRICS_QTYPE_SOA,
    METRICS_QTYPE_NS,
    METRICS_QTYPE_ANY,
    METRICS_QTYPE_OTHER,
    METRICS_N_QTYPES,
};

enum metrics_rcode {
    METRICS_RCODE_NOERROR,
    METRICS_RCODE_NXDOMAIN,
    METRICS_RCODE_REFUSED,
    METRICS_RCODE_FORMERR,
    METRICS_RCODE_NOTIMP,
    METRICS_RCODE_SERVFAIL,
    METRICS_RCODE_BADVERS,
    METRICS_RCODE_OTHER,
    METRICS_N_RCODES,
};

/* Upper bounds (le) of the query duration histogram buckets, in nanoseconds; a last,
 * implicit bucket is +Inf. */
#define METRICS_N_DURATION_BOUNDS 10
extern const uint64_t metrics_duration_bounds_ns[METRICS_N_DURATION_BOUNDS];

/* What became of a question for a name outside every zone. */
enum metrics_forward_outcome {
    METRICS_FORWARD_ANSWERED, /* a forwarder's answer was passed on */
    METRICS_FORWARD_SERVFAIL, /* every forwarder failed, or too many were in flight */
    METRICS_FORWARD_REFUSED,  /* no forwarders, or the client is not in forward.allow */
    METRICS_N_FORWARD_OUTCOMES,
};

/* What response rate limiting (rrl.h) did to a UDP answer over its client's rate. */
enum metrics_rrl_action {
    METRICS_RRL_DROPPED, /* not sent */
    METRICS_RRL_SLIPPED, /* sent truncated: header, question and OPT with TC */
    METRICS_N_RRL_ACTIONS,
};

/* DNS counters of one DNS loop. Every field is a sum, so the counters of several loops
 * add up with metrics_dns_add. Zero-initialise. */
struct metrics_dns {
    uint64_t queries[METRICS_N_TRANSPORTS][METRICS_N_QTYPES]; /* answered queries */
    uint64_t responses[METRICS_N_RCODES];
    uint64_t truncated; /* responses with TC set */
    /* not cumulative: [i] counts durations in (bound[i-1], bound[i]]; the last is +Inf */
    uint64_t duration_buckets[METRICS_N_DURATION_BOUNDS + 1];
    uint64_t duration_sum_ns;
    uint64_t tcp_connections; /* gauge: open DNS TCP connections */
    /* questions for names outside every zone, by enum metrics_forward_outcome */
    uint64_t forwarded[METRICS_N_FORWARD_OUTCOMES];
    /* UDP answers over their client's rate, by enum metrics_rrl_action */
    uint64_t rate_limited[METRICS_N_RRL_ACTIONS];
};

/* Registry changes, by enum metrics_registry_kind. Counted by the daemon's registry change
 * callback (restores from the data directory are not counted). Zero-initialise. */
enum metrics_registry_kind {
    METRICS_REG_REGISTER,   /* instance added or replaced */
    METRICS_REG_DEREGISTER, /* removed through the API */
    METRICS_REG_HEARTBEAT,  /* lease renewed, nothing visible changed */
    METRICS_REG_EXPIRE,     /* removed after deregister_after critical */
    METRICS_REG_HEALTH,     /* effective health or reason changed */
    METRICS_N_REG_KINDS,
};

struct metrics_registry {
    uint64_t changes[METRICS_N_REG_KINDS];
};

/* Probe results of the active health checks, by kind (0 tcp, 1 http) and outcome (0 pass,
 * 1 warn, 2 fail): the orders of enum checks_kind and enum checks_outcome. */
struct metrics_checks {
    uint64_t results[2][3];
};

enum metrics_api_class {
    METRICS_API_2XX, /* every status below 400 */
    METRICS_API_4XX,
    METRICS_API_5XX,
    METRICS_N_API_CLASSES,
};

/* API replies sent, by status class. */
struct metrics_api {
    uint64_t requests[METRICS_N_API_CLASSES];
};

/* What a scrape reads. Every pointer is borrowed and may be NULL: its families are left
 * out. */
struct metrics_sources {
    const struct registry *reg; /* borrowed */
    /* borrowed from the DNS servers, one per loop (n_dns of them), added up; a server on
     * another thread counts while they are read (workers_metrics) */
    const struct metrics_dns *const *dns;
    size_t n_dns;
    const struct metrics_checks *checks;    /* borrowed from the active checks */
    const struct metrics_api *api;          /* borrowed from the API server */
    const struct metrics_registry *changes; /* borrowed from the daemon */
    const char *version;                    /* borrowed; NULL: DNSD_VERSION */
};

/* Add every counter (and gauge) of part into sum. */
void metrics_dns_add(struct metrics_dns *sum, const struct metrics_dns *part);

/* Render src as Prometheus text format 0.0.4 (every family with HELP and TYPE lines, names
 * prefixed dnsd_). Registry gauges walk every service: O(instances).
 * Returns: 0 with *out (NUL-terminated) and *out_len, or DNSD_ENOMEM.
 * Ownership: *out is the caller's, released with free(). */
int metrics_render(const struct metrics_sources *src, char **out, size_t *out_len);

/* The bucket of qtype, a DNS TYPE value (RFC 1035 §3.2.2, RFC 3596, RFC 2782). */
static inline enum metrics_qtype metrics_qtype_of(uint16_t qtype)
{
    switch (qtype) {
    case 1:
        return METRICS_QTYPE_A;
    case 28:
        return METRICS_QTYPE_AAAA;
    case 33:
        return METRICS_QTYPE_SRV;
    case 16:
        return METRICS_QTYPE_TXT;
    case 6:
        return METRICS_QTYPE_SOA;
    case 2:
        return METRICS_QTYPE_NS;
    case 255:
        return METRICS_QTYPE_ANY;
    default:
        return METRICS_QTYPE_OTHER;
    }
}

/* The bucket of a response's RCODE, extended by EDNS (RFC 6891 §6.1.3: BADVERS is 16). */
static inline enum metrics_rcode metrics_rcode_of(uint16_t rcode)
{
    switch (rcode) {
    case 0:
        return METRICS_RCODE_NOERROR;
    case 3:
        return METRICS_RCODE_NXDOMAIN;
    case 5:
        return METRICS_RCODE_REFUSED;
    case 1:
        return METRICS_RCODE_FORMERR;
    case 4:
        return METRICS_RCODE_NOTIMP;
    case 2:
        return METRICS_RCODE_SERVFAIL;
    case 16:
        return METRICS_RCODE_BADVERS;
    default:
        return METRICS_RCODE_OTHER;
    }
}

/* Add v to a counter that only the calling thread writes and other threads may read: a
 * plain load and store, each whole (no lock prefix: there is one writer). */
static inline void metrics_add(uint64_t *counter, uint64_t v)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

/* Read a counter another thread may be writing. */
static inline uint64_t metrics_read(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* Count one answered query. Inline: it is on the DNS hot path. */
static inline void metrics_dns_count(struct metrics_dns *m, enum metrics_transport transport,
                                     uint16_t qtype, uint16_t rcode, bool truncated)
{
    metrics_add(&m->queries[transport][metrics_qtype_of(qtype)], 1);
    metrics_add(&m->responses[metrics_rcode_of(rcode)], 1);
    if (truncated)
        metrics_add(&m->truncated, 1);
}

/* Record one measured query duration. */
static inline void metrics_dns_duration(struct metrics_dns *m, uint64_t ns)
{
    size_t i = 0;
    while (i < METRICS_N_DURATION_BOUNDS && ns > metrics_duration_bounds_ns[i])
        i++;
    metrics_add(&m->duration_buckets[i], 1);
    metrics_add(&m->duration_sum_ns, ns);
}

/* The API class of an HTTP status. */
static inline enum metrics_api_class metrics_api_class_of(int status)
{
    return status >= 500 ? METRICS_API_5XX : status >= 400 ? METRICS_API_4XX : METRICS_API_2XX;
}
