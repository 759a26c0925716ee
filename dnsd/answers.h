/* SPDX-License-Identifier: BSD-2-Clause
 * Prepared answers: the registry's instances as the query path wants them, per service,
 * rebuilt from the registry when the registry says a service changed. The query path only
 * reads what is published here and never touches the registry. No I/O.
 * Loop: answers_update_service on the loop that owns the registry; reads from the DNS
 * loop (today the same loop). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct registry;
struct answers;

/* Create an empty set of prepared answers for the service domain (absolute, lower-case).
 * Returns: the answers, or NULL when out of memory. */
struct answers *answers_new(const char *domain);
void answers_free(struct answers *ans);

/* The registry's change counter as of the last update (feeds the SOA serial). */
uint64_t answers_serial(const struct answers *ans);

/* Rebuild what is prepared for one service from reg's current state (removing it when the
 * service has no instances left) and record registry_serial(reg).
 * Returns: 0, DNSD_ENOMEM (the previous data for the service stays published). */
int answers_update_service(struct answers *ans, const struct registry *reg,
                           const char *service);
