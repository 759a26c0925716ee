/* SPDX-License-Identifier: BSD-2-Clause
 * DNS worker threads: each runs its own libuv loop with a UDP-only server (server.h) whose
 * sockets join the main server's through SO_REUSEPORT, so the kernel spreads the queries
 * over the threads by client address and port. Workers answer from the same prepared
 * answers and zone store as the main loop, reading them inside liburcu read-side critical
 * sections (answers.h); TCP, the registry, the API and every timer stay on the main loop.
 * Thread: every function runs on the main loop's thread. */
#pragma once

#include <stddef.h>

#include "server.h"

struct workers;

/* Start n worker threads, each serving cfg's listen addresses over UDP only, on the ports
 * main's UDP sockets are bound to (main was started with udp_sharing SERVER_UDP_OPEN).
 * Returns: 0 and *out, or a negative DNSD_E* or -errno code with err naming what failed
 * (then no worker runs).
 * Ownership: cfg is read during the call (its forward and rrl as server_start says); zs and
 * ans are borrowed until workers_stop. */
int workers_start(size_t n, const struct server_config *cfg, const struct server *main,
                  const struct zonestore *zs, const struct answers *ans, struct workers **out,
                  char *err, size_t err_len);

/* Number of worker threads. */
size_t workers_count(const struct workers *w);

/* Worker i's DNS counters (i < workers_count), written by its thread while the caller reads
 * them: each counter is one aligned 64-bit word, so a read sees a value the counter had.
 * Returns: a pointer borrowed until workers_stop. */
const struct metrics_dns *workers_metrics(const struct workers *w, size_t i);

/* Serve from zs from now on (server_set_zonestore): free the old store only after
 * urcu_memb_synchronize_rcu. */
void workers_set_zonestore(struct workers *w, const struct zonestore *zs);

/* Stop every worker (their servers close as server_stop says), wait for the threads to
 * end, and free w. NULL does nothing. Blocks the caller until the workers have stopped. */
void workers_stop(struct workers *w);
