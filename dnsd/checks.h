/* SPDX-License-Identifier: BSD-2-Clause
 * Active health checks: the libuv shell that probes instances over TCP (connect) and HTTP
 * (GET through libcurl's multi interface, driven by the loop) on a jittered schedule and
 * reports each finished probe through one callback. It owns its timers, sockets and curl
 * handles; it knows nothing of the registry, applies no thresholds and never blocks the loop.
 * Loop: every function except checks_parse_target and checks_format_target runs on the
 * loop passed to checks_new; those two are pure and may run on any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Longest target text accepted ("http://[v6]:port/path..."). */
#define CHECKS_MAX_TARGET 1024
/* Shortest probe interval. */
#define CHECKS_MIN_INTERVAL_MS 100
/* An HTTP probe reads at most this much of a response body, then stops the transfer. */
#define CHECKS_MAX_BODY 4096

enum checks_kind {
    CHECKS_TCP,
    CHECKS_HTTP,
};

enum checks_outcome {
    CHECKS_PASS,
    CHECKS_WARN,
    CHECKS_FAIL,
};

struct checks_spec {
    enum checks_kind kind;
    const char *target;   /* borrowed for the call: "HOST:PORT", "[V6]:PORT" or
                             "http://HOST[:PORT][/path]" with HOST a literal address */
    uint32_t interval_ms; /* >= CHECKS_MIN_INTERVAL_MS */
    uint32_t timeout_ms;  /* 1 .. interval_ms - 1 */
};

/* A parsed target. */
struct checks_target {
    int family;                       /* AF_INET or AF_INET6 */
    uint8_t addr[16];                 /* network order; the first 4 for AF_INET */
    uint16_t port;                    /* 1..65535; an HTTP URL without a port gets 80 */
    char path[CHECKS_MAX_TARGET + 1]; /* HTTP: starts with '/', "/" when absent; TCP: "" */
};

/* Called on the loop for every finished probe. output is a short text: "connected",
 * "connect 127.0.0.1:8080: connection refused", "timeout after 2000 ms", "HTTP 200",
 * "HTTP 429", or libcurl's message for another HTTP failure.
 * Ownership: service, id and output are borrowed for the call.
 * The callback may call checks_add, checks_remove and checks_stop. */
typedef void checks_result_cb(void *user, const char *service, const char *id,
                              enum checks_outcome outcome, const char *output);

struct checks;

/* Create an empty set of checks on loop.
 * Returns: 0 and *out, DNSD_ENOMEM, or DNSD_EIO when libcurl or libuv fails to initialize.
 * Ownership: loop and user are borrowed and must outlive the checks. */
int checks_new(uv_loop_t *loop, checks_result_cb *on_result, void *user, struct checks **out);

/* Cancel every probe and release everything once the handles have closed (like uv_close:
 * the memory goes on a later loop iteration). No callback is made after this call; c must
 * not be used again. checks_stop(NULL) does nothing. */
void checks_stop(struct checks *c);

/* Parse and validate a target for kind: HOST is a literal IPv4 address (dotted quad) or a
 * bracketed IPv6 address (no zone id), the port is 1..65535; an HTTP target starts with
 * "http://" (any case), its port defaults to 80 and its path (printable ASCII, no '#',
 * default "/") is kept as written. No name resolution.
 * Returns: 0 and *out, DNSD_EINVAL. */
int checks_parse_target(enum checks_kind kind, const char *target, struct checks_target *out);

/* Write the canonical text of t: "192.0.2.1:80", "[2001:db8::1]:80" for TCP, or
 * "http://192.0.2.1:8080/health" for HTTP.
 * Returns: 0, DNSD_EINVAL (bad family), DNSD_ERANGE (buf too small). */
int checks_format_target(enum checks_kind kind, const struct checks_target *t, char *buf, size_t n);

/* Probe results reported so far, by kind and outcome (metrics.h).
 * Returns: a pointer borrowed until checks_stop. */
const struct metrics_checks *checks_metrics(const struct checks *c);

/* The number of instances with a probe schedule. */
size_t checks_count(const struct checks *c);

/* Whether the instance has a probe in flight (false when it has no schedule). */
bool checks_is_probing(const struct checks *c, const char *service, const char *id);

/* Start, or replace, the probe schedule of one instance. The first probe runs at a uniformly
 * random offset in [0, min(interval, 1 s)), then one every interval +/- up to 10%. A tick
 * that finds the previous probe still running is skipped. Replacing cancels a probe in
 * flight without reporting it.
 * Returns: 0, DNSD_EINVAL (empty, over-long or "/"-containing name, bad target, interval or
 * timeout), DNSD_ENOMEM.
 * Ownership: copies service, id and spec. */
int checks_add(struct checks *c, const char *service, const char *id,
               const struct checks_spec *spec);

/* Stop one instance's probes; a probe in flight is cancelled and never reported.
 * Returns: 0, DNSD_ENOENT. */
int checks_remove(struct checks *c, const char *service, const char *id);
