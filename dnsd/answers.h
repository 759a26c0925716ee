/* SPDX-License-Identifier: BSD-2-Clause
 * Prepared answers: the registry's answerable instances (effective health passing, or
 * warning unless only_passing) as the query path wants them, per service, rebuilt from the
 * registry when the registry says a service changed. The registry decides health; the query
 * path only reads what is published here and never touches the registry. No I/O.
 * Each service is a snapshot found by a hash of its name; an update replaces it whole;
 * only a renewal's deadline is patched (one atomic store).
 * Threads: answers_update_service and answers_renew_instance on the thread that owns the
 * registry (the writer), registered with urcu_memb_register_thread (call_rcu takes a
 * read-side lock). Reads may run on any thread at the same time: on a thread other
 * than the writer's, between urcu_memb_read_lock and urcu_memb_read_unlock of liburcu's
 * memb flavour (the thread registered with urcu_memb_register_thread), and nothing read
 * may be used after the unlock. What an update replaces is freed after every such reader
 * has left (call_rcu); answers_free waits for those frees (urcu_memb_barrier), so it must
 * not run inside a read-side critical section. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

struct answers;
/* One service's published snapshot and one instance in it; borrowed from the answers and
 * valid on the writer's thread until the next answers_update_service for that service (or
 * answers_free), on a reader's thread until its read-side critical section ends. */
struct answers_service;
struct answers_instance;

/* Create an empty set of prepared answers for the service domain (absolute, lower-case).
 * only_passing: publish passing instances only (health.only_passing); otherwise warning
 * ones too.
 * Returns: the answers, or NULL when out of memory. */
struct answers *answers_new(const char *domain, bool only_passing);
void answers_free(struct answers *ans);

/* The registry's change counter as of the last update (feeds the SOA serial). */
uint64_t answers_serial(const struct answers *ans);

/* The service domain given to answers_new (borrowed). */
const char *answers_domain(const struct answers *ans);

/* Number of services published (each has at least one answerable instance). */
size_t answers_service_count(const struct answers *ans);

/* Does any published service have an instance with proto? (the empty non-terminals
 * _tcp.D and _udp.D exist then). Only answerable instances are published. O(1). */
bool answers_has_proto(const struct answers *ans, enum registry_proto proto);

/* Find a service by its lower-case name. O(1).
 * Returns: borrowed snapshot, or NULL when the service has no answerable instances. */
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
/* Lease deadline in the registry's now_ms clock, for the answer TTL cap. It is in the past
 * while self-preservation holds an instance whose lease lapsed: the registry, not this
 * deadline, decides whether an instance is answered. */
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
 * service has no answerable instances left) and record registry_serial(reg).
 * Returns: 0, DNSD_ENOMEM (the previous data for the service stays published). */
int answers_update_service(struct answers *ans, const struct registry *reg, const char *service);

/* After a heartbeat that changed nothing but the lease (REGISTRY_CHANGE_RENEW), copy the
 * instance's new lease deadline from reg into the published snapshot in place, O(log n),
 * instead of rebuilding the service, and record registry_serial(reg).
 * Returns: 0, DNSD_ENOENT (the instance is not registered or not published: nothing to do). */
int answers_renew_instance(struct answers *ans, const struct registry *reg, const char *service,
                           const char *id);
