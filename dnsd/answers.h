/* SPDX-License-Identifier: BSD-2-Clause
 * Prepared answers: the registry's instances as the query path wants them, per service,
 * rebuilt from the registry when the registry says a service changed. The query path only
 * reads what is published here and never touches the registry. No I/O.
 * Each service is an immutable snapshot found by a hash of its name; an update replaces the
 * snapshot whole (and today frees the old one at once: single thread).
 * Loop: answers_update_service on the loop that owns the registry; reads from the DNS
 * loop (today the same loop). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

struct answers;
/* One service's published snapshot and one instance in it; borrowed from the answers and
 * valid until the next answers_update_service for that service (or answers_free). */
struct answers_service;
struct answers_instance;

/* Create an empty set of prepared answers for the service domain (absolute, lower-case).
 * Returns: the answers, or NULL when out of memory. */
struct answers *answers_new(const char *domain);
void answers_free(struct answers *ans);

/* The registry's change counter as of the last update (feeds the SOA serial). */
uint64_t answers_serial(const struct answers *ans);

/* The service domain given to answers_new (borrowed). */
const char *answers_domain(const struct answers *ans);

/* Number of services published (each has at least one instance). */
size_t answers_service_count(const struct answers *ans);

/* Does any published service have an instance with proto? (the empty non-terminals
 * _tcp.D and _udp.D exist then). Lease state is not considered: the registry removes lapsed
 * instances promptly. O(1). */
bool answers_has_proto(const struct answers *ans, enum registry_proto proto);

/* Find a service by its lower-case name. O(1).
 * Returns: borrowed snapshot, or NULL when the service has no instances. */
const struct answers_service *answers_find_service(const struct answers *ans, const char *service);

const char *answers_service_name(const struct answers_service *svc);
size_t answers_service_instance_count(const struct answers_service *svc);
/* The i-th instance (i < count), in instance-id order. */
const struct answers_instance *answers_service_instance(const struct answers_service *svc,
                                                        size_t i);
/* Find an instance by lower-case id. O(log n).
 * Returns: borrowed instance, or NULL. */
const struct answers_instance *answers_service_find_instance(const struct answers_service *svc,
                                                             const char *id);

const char *answers_instance_id(const struct answers_instance *inst);
size_t answers_instance_addr_count(const struct answers_instance *inst);
/* The i-th address (i < count), in registration order. */
const struct registry_addr *answers_instance_addr(const struct answers_instance *inst, size_t i);
uint16_t answers_instance_port(const struct answers_instance *inst);
enum registry_proto answers_instance_proto(const struct answers_instance *inst);
uint16_t answers_instance_priority(const struct answers_instance *inst);
uint16_t answers_instance_weight(const struct answers_instance *inst);
/* Lease deadline in the registry's now_ms clock: the instance is served while
 * expires_ms > now_ms. */
uint64_t answers_instance_expires_ms(const struct answers_instance *inst);
/* Does the instance carry any tag at all? */
bool answers_instance_is_tagged(const struct answers_instance *inst);
/* Does the instance carry tag (lower-case)? */
bool answers_instance_has_tag(const struct answers_instance *inst, const char *tag);
/* The TXT character-strings: "key=value" per metadata entry, in registration order; a
 * single empty string for an instance without metadata (RFC 6763 §6.1). count >= 1. */
size_t answers_instance_txt_count(const struct answers_instance *inst);
const char *answers_instance_txt(const struct answers_instance *inst, size_t i);

/* Rebuild what is prepared for one service from reg's current state (removing it when the
 * service has no instances left) and record registry_serial(reg).
 * Returns: 0, DNSD_ENOMEM (the previous data for the service stays published). */
int answers_update_service(struct answers *ans, const struct registry *reg, const char *service);
