/* SPDX-License-Identifier: BSD-2-Clause
 * The running dnsd: builds every module from a configuration and wires them together
 * (registry changes rebuild answers, wake API watches, start and stop active checks and
 * re-arm the health deadline timer; check results feed the registry; API writes and
 * expiries go to the journal), reloads zones, and shuts down. Owns the registry, answers,
 * zone store, API, checks, persistence and both servers.
 * Loop: every function runs on the loop the daemon was started on. */
#pragma once

#include <stddef.h>

#include <uv.h>

#include "config.h"

struct daemon;

/* Why daemon_start failed, so main.c can pick the exit code. */
enum daemon_failure {
    DAEMON_FAILED_CONFIG,  /* bad zones or configuration: the operator must fix a file */
    DAEMON_FAILED_RUNTIME, /* sockets, memory, a locked data directory: the environment */
    DAEMON_FAILED_DATA,    /* damaged or unreadable journal or snapshot files: the operator
                              must repair (--repair-journal) or restore them */
};

/* Load the zones, open the DNS listeners and the API endpoints, and mark dnsd ready.
 * Returns: 0 and *out, or a negative DNSD_E* code with err saying what failed and *why.
 * Ownership: cfg is copied. */
int daemon_start(uv_loop_t *loop, const struct dnsd_config *cfg, struct daemon **out,
                 enum daemon_failure *why, char *err, size_t err_len);

/* Re-read the zones directory and swap the new store in; on failure the old zones stay
 * served. Returns: 0, or the zonestore_load() error with err naming file and line. */
int daemon_reload(struct daemon *d, char *err, size_t err_len);

/* Close every listener (in-flight TCP answers finish, socket files are removed) and free
 * the daemon once the loop has closed its handles; d must not be used afterwards. */
void daemon_stop(struct daemon *d);
