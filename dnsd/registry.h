/* SPDX-License-Identifier: BSD-2-Clause
 * The registry: service instances, their leases and health. It owns every instance it
 * holds and reports each change through one callback. No DNS, no I/O, no clock: time is
 * always the caller's now_ms. Every write goes through this interface, so a persistent or
 * replicated backend can sit behind it without touching the query path.
 * Loop: single-threaded; all calls come from the loop thread that owns the registry. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGISTRY_MAX_ADDRS 16
#define REGISTRY_MAX_TAGS 32
#define REGISTRY_MAX_META 64
/* One TXT string holds "key=value"; RFC 6763 §6.1 caps a string at 255 bytes. */
#define REGISTRY_MAX_TXT_LEN 255
/* RFC 6763 §6.4 recommends keys of at most 9 bytes; we allow longer but cap them. */
#define REGISTRY_MAX_META_KEY_LEN 63

enum registry_proto {
    REGISTRY_PROTO_TCP = 0,
    REGISTRY_PROTO_UDP = 1,
};

struct registry_addr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t bytes[16]; /* network order; the first 4 for AF_INET */
};

struct registry_meta {
    char *key;   /* owned by the struct that holds this array */
    char *value; /* owned by the struct that holds this array */
};

/* One service instance. On input (registry_put) the state fields are ignored; on output
 * (registry_service_instance) everything is filled in by the registry. */
struct registry_instance {
    char *service; /* lower-case label; owned by whoever owns this struct */
    char *id;      /* lower-case label; owned by whoever owns this struct */
    struct registry_addr addrs[REGISTRY_MAX_ADDRS];
    size_t n_addrs; /* 1..REGISTRY_MAX_ADDRS */
    uint16_t port;
    enum registry_proto proto;
    uint16_t priority;
    uint16_t weight;
    char **tags; /* lower-case labels; owned by whoever owns this struct */
    size_t n_tags;
    struct registry_meta *meta; /* owned by whoever owns this struct */
    size_t n_meta;
    uint32_t ttl_s; /* lease length */
    /* state, set by the registry */
    uint64_t registered_ms; /* first registration (kept across re-registrations) */
    uint64_t heartbeat_ms;  /* last registration or heartbeat */
    uint64_t expires_ms;    /* lease deadline: heartbeat_ms + ttl_s * 1000 */
};

/* What changed, for the change callback. */
enum registry_change {
    REGISTRY_CHANGE_PUT,     /* instance added or replaced */
    REGISTRY_CHANGE_RENEW,   /* lease renewed, nothing else changed */
    REGISTRY_CHANGE_REMOVE,  /* deregistered */
    REGISTRY_CHANGE_EXPIRE,  /* lease lapsed, instance removed */
};

/* Told about every change after it is applied; service and id are borrowed for the call. */
typedef void registry_change_cb(void *user, enum registry_change change, const char *service,
                                const char *id);

struct registry;
struct registry_service;

/* Create an empty registry; on_change (may be NULL) hears about every change.
 * Returns: the registry, or NULL when out of memory. */
struct registry *registry_new(registry_change_cb *on_change, void *user);
void registry_free(struct registry *reg);

/* Validate inst as registry_put would, without storing anything.
 * Returns: 0, or DNSD_EINVAL with *field (if non-NULL) set to the offending field's API
 * name ("service", "id", "addresses", "port", "proto", "ttl", "tags", "meta"). */
int registry_validate(const struct registry_instance *inst, const char **field);

/* Number of services with at least one instance, and of instances in all. */
size_t registry_service_count(const struct registry *reg);
size_t registry_instance_count(const struct registry *reg);

/* Change counter: starts at 0 and grows by one on every change (put, renew, remove,
 * expire). */
uint64_t registry_serial(const struct registry *reg);

/* Find a service by its lower-case name.
 * Returns: the service, borrowed until the next mutation, or NULL if it has no instances. */
const struct registry_service *registry_find_service(const struct registry *reg,
                                                     const char *service);

/* Visit every service in name order; stops early when visit returns false. Must not
 * mutate the registry. */
void registry_foreach_service(const struct registry *reg,
                              bool (*visit)(const struct registry_service *svc, void *user),
                              void *user);

const char *registry_service_name(const struct registry_service *svc);
size_t registry_service_instance_count(const struct registry_service *svc);
/* The i-th instance, in instance-id order; borrowed until the next mutation. */
const struct registry_instance *registry_service_instance(const struct registry_service *svc,
                                                          size_t i);
/* Find one instance by lower-case service name and id.
 * Returns: the instance, borrowed until the next mutation, or NULL if not registered. */
const struct registry_instance *registry_find_instance(const struct registry *reg,
                                                       const char *service, const char *id);

/* Earliest lease deadline of any instance, or UINT64_MAX when the registry is empty. */
uint64_t registry_next_expiry(const struct registry *reg);

/* Add or replace an instance; its lease runs from now_ms for inst->ttl_s.
 * Returns: 0, DNSD_EINVAL (see registry_validate; *field names the field), DNSD_ENOMEM.
 * Ownership: copies inst; the caller keeps it. */
int registry_put(struct registry *reg, const struct registry_instance *inst, uint64_t now_ms,
                 const char **field);

/* Renew an instance's lease from now_ms.
 * Returns: 0, DNSD_ENOENT (not registered). */
int registry_renew(struct registry *reg, const char *service, const char *id, uint64_t now_ms);

/* Deregister an instance.
 * Returns: 0, DNSD_ENOENT (not registered). */
int registry_remove(struct registry *reg, const char *service, const char *id);

/* Remove every instance whose lease deadline is at or before now_ms. O(log n) each.
 * Returns: the number removed. */
size_t registry_expire(struct registry *reg, uint64_t now_ms);

/* Check internal invariants (index and heap consistency); for tests.
 * Returns: true when consistent. */
bool registry_check(const struct registry *reg);

/* Free the owned fields of an instance filled in by a caller (service, id, tags, meta) and
 * zero them; for code that builds a registry_instance to pass to registry_put. */
void registry_instance_clear(struct registry_instance *inst);
