/* SPDX-License-Identifier: BSD-2-Clause
 * Shared fixture of the query unit tests (test_query.c, test_render.c,
 * test_query_threads.c): the synthesised apex of service.internal. (SOA serial 100, one
 * name server at 192.0.2.1), and a registry whose changes rebuild the prepared answers as
 * daemon.c does. Each test binary includes it once, from its one .c file. */
#pragma once

#include <criterion/criterion.h>

#include "answers.h"
#include "registry.h"
#include "zonestore.h"

static const char *const apex_addrs[] = {"192.0.2.1"};
static const struct zonestore_apex apex = {.domain = "service.internal.",
                                           .ns_name = "ns.service.internal.",
                                           .ns_addresses = apex_addrs,
                                           .n_ns_addresses = 1,
                                           .rname = "hostmaster.service.internal.",
                                           .serial = 100,
                                           .refresh = 3600,
                                           .retry = 600,
                                           .expire = 86400,
                                           .minimum = 30,
                                           .ttl = 300};

static struct registry *reg;
static struct answers *ans;

/* The registry's change callback: a renewal updates the lease in place, every other
 * instance change rebuilds the service; entering or leaving self-preservation names no
 * service. */
static void on_change(void *user, enum registry_change change, const char *service, const char *id)
{
    (void)user;
    if (change == REGISTRY_CHANGE_PRESERVATION)
        return;
    if (change == REGISTRY_CHANGE_RENEW)
        answers_renew_instance(ans, reg, service, id);
    else
        cr_assert_eq(answers_update_service(ans, reg, service), 0);
}
