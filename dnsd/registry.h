/* SPDX-License-Identifier: BSD-2-Clause
 * The registry: service instances, their leases and health. It owns every instance it
 * holds and reports each change through one callback. No DNS, no I/O, no clock: time is
 * always the caller's now_ms. Every write goes through this interface, so a persistent or
 * replicated backend can sit behind it without touching the query path. Implemented by
 * registry.c and registry_health.c (sharing the private registry_internal.h); this header
 * is the only way in.
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
/* Longest heartbeat note or maintenance reason, in bytes; check output is cut to this. */
#define REGISTRY_MAX_NOTE_LEN 256
/* Removed services whose last index is remembered for watches; the oldest go first. */
#define REGISTRY_MAX_TOMBSTONES 65536
/* Bounds of an active check's interval and of its thresholds. */
#define REGISTRY_CHECK_MIN_INTERVAL_MS 100
#define REGISTRY_CHECK_MAX_INTERVAL_MS (3600u * 1000u)
#define REGISTRY_CHECK_MAX_THRESHOLD 100
/* Longest check target text accepted. */
#define REGISTRY_MAX_CHECK_TARGET 1024

enum registry_proto {
    REGISTRY_PROTO_TCP = 0,
    REGISTRY_PROTO_UDP = 1,
};

/* Effective health of an instance; PASSING < WARNING < CRITICAL in severity. */
enum registry_health {
    REGISTRY_HEALTH_PASSING = 0,
    REGISTRY_HEALTH_WARNING = 1,
    REGISTRY_HEALTH_CRITICAL = 2,
    REGISTRY_HEALTH_MAINTENANCE = 3,
};

enum registry_check_kind {
    REGISTRY_CHECK_NONE = 0,
    REGISTRY_CHECK_TCP,
    REGISTRY_CHECK_HTTP,
};

/* An active check's specification, as registered. */
struct registry_check {
    enum registry_check_kind kind;
    char *target; /* "HOST:PORT" or "http://HOST:PORT/path"; owned by whoever owns the
                     instance struct; NULL for NONE */
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint16_t success_before_passing;   /* >= 1 */
    uint16_t failures_before_critical; /* >= 1 */
};

enum registry_check_outcome {
    REGISTRY_CHECK_PASS,
    REGISTRY_CHECK_WARN,
    REGISTRY_CHECK_FAIL,
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
    char *service;               /* lower-case label; owned by whoever owns this struct */
    char *id;                    /* lower-case label; owned by whoever owns this struct */
    struct registry_addr *addrs; /* n_addrs entries; owned by whoever owns this struct */
    size_t n_addrs;              /* 1..REGISTRY_MAX_ADDRS */
    uint16_t port;
    enum registry_proto proto;
    uint16_t priority;
    uint16_t weight;
    char **tags; /* lower-case labels; owned by whoever owns this struct */
    size_t n_tags;
    struct registry_meta *meta; /* owned by whoever owns this struct */
    size_t n_meta;
    uint32_t ttl_s;               /* lease length */
    struct registry_check check;  /* kind NONE when the instance has no active check */
    uint64_t deregister_after_ms; /* remove after this long critical; 0 = never */
    /* state, set by the registry (ignored on input) */
    uint64_t registered_ms;             /* first registration (kept across re-registrations) */
    uint64_t heartbeat_ms;              /* last registration or heartbeat */
    uint64_t expires_ms;                /* lease deadline: heartbeat_ms + ttl_s * 1000 */
    enum registry_health health;        /* effective health (see health-design.md) */
    char *reason;                       /* owned by the registry; "" when nothing to say */
    enum registry_health reported;      /* last heartbeat status: PASSING/WARNING/CRITICAL */
    char *note;                         /* owned by the registry; last heartbeat note or NULL */
    bool maintenance;                   /* operator maintenance mode */
    char *maintenance_reason;           /* owned by the registry; NULL when off */
    bool check_pending;                 /* true until the first check result (check only) */
    enum registry_health check_verdict; /* PASSING/WARNING/CRITICAL once a result came */
    char *check_output;                 /* owned by the registry; last probe output or NULL */
    uint64_t check_last_ms;             /* time of the last result (valid unless pending) */
    uint32_t check_successes;           /* consecutive, for success_before_passing */
    uint32_t check_failures;            /* consecutive, for failures_before_critical */
    uint64_t critical_since_ms;         /* when health became CRITICAL; valid when critical */
};

/* What changed, for the change callback. */
enum registry_change {
    REGISTRY_CHANGE_PUT,          /* added or replaced */
    REGISTRY_CHANGE_RENEW,        /* heartbeat that changed nothing visible */
    REGISTRY_CHANGE_HEALTH,       /* effective health or reason changed */
    REGISTRY_CHANGE_REMOVE,       /* deregistered through the API */
    REGISTRY_CHANGE_EXPIRE,       /* removed after deregister_after critical */
    REGISTRY_CHANGE_PRESERVATION, /* self-preservation entered or left; service/id NULL */
};

/* Self-preservation settings (Eureka's idea, see health-design.md). An instance is overdue
 * once 80% of its lease has passed since its last heartbeat (clients refresh at about 80%,
 * so it will lapse unless it heartbeats soon). When a lease is about to lapse while more than
 * threshold of all instances are overdue (held ones included) and at least min_instances are
 * registered, the registry enters self-preservation before applying that lapse: it and every
 * later lapse are held (the instances keep their last health). It leaves when the overdue
 * share is back at or below the threshold (heartbeats resumed) or after max_ms; then every
 * lease still lapsed turns critical at once. */
struct registry_options {
    bool preservation_enabled;
    double preservation_threshold;     /* share of instances, e.g. 0.5 */
    size_t preservation_min_instances; /* below this count never enter */
    uint64_t preservation_max_ms;      /* leave after this long at most */
    /* Capacity limits enforced by registry_put (not by registry_restore); 0 = no limit. */
    size_t max_instances;             /* instances in all */
    size_t max_instances_per_service; /* instances of one service */
    size_t max_meta_bytes;            /* sum of strlen("key=value") over an instance's meta */
};

/* Told about every change after it is applied; service and id are borrowed for the call
 * (both NULL for REGISTRY_CHANGE_PRESERVATION). */
typedef void registry_change_cb(void *user, enum registry_change change, const char *service,
                                const char *id);

struct registry;
struct registry_service;

/* Create an empty registry; on_change (may be NULL) hears about every change. opts may be
 * NULL: self-preservation off and no capacity limits. opts is copied.
 * Returns: the registry, or NULL when out of memory. */
struct registry *registry_new(const struct registry_options *opts, registry_change_cb *on_change,
                              void *user);
void registry_free(struct registry *reg);

/* The options reg was created with (all zero when registry_new had NULL).
 * Returns: borrowed for the registry's lifetime. */
const struct registry_options *registry_options(const struct registry *reg);

/* Names and parsing: "passing", "warning", "critical", "maintenance".
 * registry_health_name returns a static string ("unknown" for a value out of range). */
const char *registry_health_name(enum registry_health health);
/* Returns: 0 and *out, or DNSD_EINVAL (text NULL or not one of the four names). */
int registry_health_parse(const char *text, enum registry_health *out);

/* Validate inst as registry_put would, without storing anything.
 * Returns: 0, or DNSD_EINVAL with *field (if non-NULL) set to the offending field's API
 * name ("service", "id", "addresses", "port", "proto", "ttl", "tags", "meta", "check",
 * "deregister_after"). check: kind NONE, or TCP/HTTP with a non-NULL target, interval
 * 100 ms..1 h, timeout >= 1 ms and < interval, thresholds 1..100. deregister_after_ms at
 * most DNSD_DURATION_MAX_MS. */
int registry_validate(const struct registry_instance *inst, const char **field);

/* Number of services with at least one instance, and of instances in all. */
size_t registry_service_count(const struct registry *reg);
size_t registry_instance_count(const struct registry *reg);

/* Change counter: starts at 0 and grows by one on every change (put, renew, health,
 * remove, expire, preservation). */
uint64_t registry_serial(const struct registry *reg);

/* Serial of the last change to service (put, health, remove, expire; not plain renewals),
 * remembered after its last instance is gone (up to REGISTRY_MAX_TOMBSTONES removed
 * services; for an older one the current serial); 0 for a service never seen. */
uint64_t registry_service_index(const struct registry *reg, const char *service);

/* Is the registry holding lapsed leases in self-preservation right now? */
bool registry_is_preserving(const struct registry *reg);

/* Number of overdue instances (80% of the lease gone without a heartbeat, or held by
 * self-preservation); always 0 with self-preservation off. */
size_t registry_overdue_count(const struct registry *reg);

/* Find a service by its lower-case name.
 * Returns: the service, borrowed until the next mutation, or NULL if it has no instances. */
const struct registry_service *registry_find_service(const struct registry *reg,
                                                     const char *service);

/* Visit every service in name order; stops early when visit returns false. Must not
 * mutate the registry. */
void registry_foreach_service(const struct registry *reg,
                              bool (*visit)(const struct registry_service *svc, void *user),
                              void *user);

/* Visit, in name order, the services whose names sort after `after` (strcmp; NULL or ""
 * starts at the first), so that a long walk can be cut into slices across loop turns and
 * resumed from the last name visited even if the registry changed in between. Stops early
 * when visit returns false. Must not mutate the registry. */
void registry_foreach_service_after(const struct registry *reg, const char *after,
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

/* Earliest moment a time-driven change is due (an instance turning overdue, lease lapse,
 * deregister_after, leaving self-preservation), or UINT64_MAX. O(1). */
uint64_t registry_next_deadline(const struct registry *reg);

/* Is key a valid metadata key? RFC 6763 §6.4: printable US-ASCII (0x21..0x7E, space
 * excluded so that keys stay single tokens) without '=', 1 to REGISTRY_MAX_META_KEY_LEN
 * bytes. */
bool registry_meta_key_is_valid(const char *key);

/* Add or replace an instance; its lease runs from now_ms for inst->ttl_s. A replacement
 * keeps registered_ms and maintenance, resets the reported status to passing without a
 * note, and keeps the check state unless the check spec changed (then pending again).
 * Reports REGISTRY_CHANGE_PUT; then, like a heartbeat, may leave self-preservation.
 * Replacing an instance is always allowed; only a new one counts against the capacity.
 * Returns: 0, DNSD_EINVAL (see registry_validate; *field names the field), DNSD_ERANGE
 * (meta over max_meta_bytes; *field is "meta"), DNSD_ENOSPC (a new instance while the
 * service holds max_instances_per_service, *field "service", or while the registry holds
 * max_instances, *field NULL), DNSD_ENOMEM.
 * Ownership: copies inst (including check.target); the caller keeps it. */
int registry_put(struct registry *reg, const struct registry_instance *inst, uint64_t now_ms,
                 const char **field);

/* Put back an instance saved by the journal, with its state: like registry_put at
 * inst->heartbeat_ms (so its lease deadline is heartbeat_ms + ttl), then registered_ms,
 * the reported status and note, and maintenance with its reason are taken from inst; an
 * active check starts pending. An existing instance of the same name is replaced. Reports
 * the same changes as registry_put, registry_heartbeat and registry_set_maintenance would.
 * For restoring at start-up; the caller records nothing in the journal for it. The
 * capacity limits do not apply: what was acknowledged survives a lowered limit.
 * Returns: 0, DNSD_EINVAL (*field names the field), DNSD_ENOMEM; after a failure the
 * instance may be stored with its registration only.
 * Ownership: copies inst; the caller keeps it. */
int registry_restore(struct registry *reg, const struct registry_instance *inst,
                     const char **field);

/* Heartbeat: renew the lease from now_ms and record the reported status and note.
 * status is PASSING, WARNING or CRITICAL; note may be NULL or "" for none (<=
 * REGISTRY_MAX_NOTE_LEN bytes, printable ASCII/UTF-8, no control characters). Reports
 * REGISTRY_CHANGE_HEALTH when health or reason changed, else REGISTRY_CHANGE_RENEW; then, if
 * that brought the overdue share to or below the threshold, leaves self-preservation (see
 * registry_advance for what that reports).
 * Returns: 0, DNSD_ENOENT (not registered), DNSD_EINVAL (*field "status" or "note"),
 * DNSD_ENOMEM. */
int registry_heartbeat(struct registry *reg, const char *service, const char *id,
                       enum registry_health status, const char *note, uint64_t now_ms,
                       const char **field);

/* Turn maintenance on (with an optional reason, same rules as a note) or off. Reports
 * REGISTRY_CHANGE_HEALTH when health or reason changed; nothing otherwise.
 * Returns: 0, DNSD_ENOENT, DNSD_EINVAL (*field "reason"), DNSD_ENOMEM. */
int registry_set_maintenance(struct registry *reg, const char *service, const char *id,
                             bool enabled, const char *reason, uint64_t now_ms, const char **field);

/* Record an active check's result and apply the thresholds (WARN: warning at once, counted
 * neither as a success nor as a failure). output may be NULL; it is stored cut to
 * REGISTRY_MAX_NOTE_LEN bytes with control characters and broken UTF-8 replaced by '?'.
 * Reports REGISTRY_CHANGE_HEALTH when health or reason changed; nothing otherwise (a result
 * that changes nothing visible moves neither the serial nor any index).
 * Returns: 0, DNSD_ENOENT (no such instance, or it has no check), DNSD_ENOMEM. */
int registry_check_result(struct registry *reg, const char *service, const char *id,
                          enum registry_check_outcome outcome, const char *output, uint64_t now_ms);

/* Deregister an instance (REGISTRY_CHANGE_REMOVE); may then leave self-preservation, at the
 * latest now_ms the registry was given.
 * Returns: 0, DNSD_ENOENT (not registered). */
int registry_remove(struct registry *reg, const char *service, const char *id);

/* Apply every time-driven change due at or before now_ms, in time order, each at its own
 * moment (critical_since_ms is the lapse time, not now_ms). O(log n) per change. At one
 * moment: leaving after max_duration first, then instances turning overdue, then lapses,
 * then removals. Removal after deregister_after goes on during self-preservation (it never
 * touches answerable instances). Entering reports REGISTRY_CHANGE_PRESERVATION; leaving
 * reports the held instances' HEALTH changes first, then REGISTRY_CHANGE_PRESERVATION.
 * Returns: the number of instances whose health changed or that were removed. */
size_t registry_advance(struct registry *reg, uint64_t now_ms);

/* Check internal invariants (index, heap and health consistency); for tests.
 * Returns: true when consistent. */
bool registry_check(const struct registry *reg);

/* Free the owned fields of an instance filled in by a caller (service, id, addrs, tags, meta,
 * check.target) and zero them; for code that builds a registry_instance to pass to
 * registry_put. */
void registry_instance_clear(struct registry_instance *inst);
