/* SPDX-License-Identifier: BSD-2-Clause
 * PRIVATE to the registry: included only by registry.c and registry_health.c. Everyone else
 * uses registry.h. The registry's structs and the helpers its two halves share: registry.c
 * keeps storage, lookup, the timer heap and tombstones; registry_health.c decides health,
 * runs the lease and check state machines and self-preservation.
 * Loop: single-threaded, like registry.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* Where an instance's lease stands. */
enum lease_state {
    LEASE_LIVE,   /* renewed; lapses at expires_ms */
    LEASE_HELD,   /* lapsed during self-preservation: ignored for health until it ends */
    LEASE_LAPSED, /* lapsed: the instance is critical */
};

/* The kind of an instance's next time-driven event. At one moment the heap takes them in
 * this order, so that a lapse sees every instance that turned overdue at that moment and
 * no removal of that moment has shrunk the fleet yet. */
enum registry_event {
    REGISTRY_EVENT_OVERDUE = 0, /* 80% of the lease passed without a heartbeat */
    REGISTRY_EVENT_LAPSE = 1,   /* the lease lapses */
    REGISTRY_EVENT_REMOVE = 2,  /* removal after deregister_after critical (or none) */
};

/* A stored instance keeps its configuration strings and arrays (service, id, addrs, tags,
 * meta, check.target) in one allocation that starts at inst.service: one allocation
 * instead of a dozen per instance (issue #4: at most 1 KiB of RSS per instance). Free them
 * with registry_stored_clear, never with registry_instance_clear. */
void registry_stored_clear(struct registry_instance *inst);

/* One stored instance: the public struct plus its place in the heap and index. */
struct entry {
    struct registry_instance inst; /* owned fields: service, id, tags, meta, check.target,
                                      note, maintenance_reason, check_output; inst.reason
                                      is borrowed from a static string or from one of
                                      maintenance_reason, note_reason, check_reason */
    struct registry_service *svc;  /* borrowed from the registry's service array */
    size_t heap_idx;               /* position in reg->heap */
    uint64_t key;                  /* next time-driven event, UINT64_MAX for none */
    enum registry_event kind;      /* what happens at key */
    enum lease_state lease;
    bool overdue;                             /* counted in reg->n_overdue */
    struct entry *held_prev;                  /* borrowed: neighbours in reg's held list */
    struct entry *held_next;                  /* borrowed */
    enum registry_check_outcome last_outcome; /* of the last check result */
    char *note_reason;                        /* owned: "heartbeat: NOTE" or NULL */
    char *check_reason;                       /* owned: "check: OUTPUT..." or NULL */
};

struct registry_service {
    char *name;           /* owned */
    struct entry **items; /* owned array of owned entries, sorted by id */
    size_t n_items;
    size_t cap_items;
    uint64_t index; /* serial of the last change to this service */
};

/* A removed service's last index, in a hash chain and in an age-ordered list. */
struct tomb {
    char *name; /* owned */
    uint64_t index;
    struct tomb *chain; /* borrowed: next in the hash bucket */
    struct tomb *older; /* borrowed: age list */
    struct tomb *newer; /* borrowed */
};

struct registry {
    struct registry_service **svcs; /* owned array of owned services, sorted by name */
    size_t n_svcs;
    size_t cap_svcs;
    struct entry **heap; /* owned array; entries borrowed from the services */
    size_t n_heap;
    size_t cap_heap;
    uint64_t serial;
    uint64_t clock;                /* latest now_ms any call gave */
    registry_change_cb *on_change; /* may be NULL */
    void *user;                    /* borrowed; passed to on_change */
    struct registry_options opts;  /* preservation_enabled false when opts was NULL */
    /* self-preservation */
    bool preserving;
    uint64_t preserve_since; /* when it was entered */
    size_t n_overdue;        /* entries with overdue set: LIVE past 80% of the lease, or HELD */
    struct entry *held;      /* borrowed: list of LEASE_HELD entries */
    /* tombstones */
    struct tomb **tombs;      /* owned array of TOMB_BUCKETS chains of owned tombs */
    struct tomb *tomb_oldest; /* borrowed */
    struct tomb *tomb_newest; /* borrowed */
    size_t n_tombs;
    bool tombs_evicted; /* some removed service was forgotten */
};

/* a + b, saturating at UINT64_MAX. */
static inline uint64_t registry_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- registry.c: storage, heap, change reports ---- */

/* The entry of service/id, or NULL. */
struct entry *registry_entry_find(const struct registry *reg, const char *service, const char *id);
/* Restore heap order after e's key or kind changed. */
void registry_heap_fix(struct registry *reg, struct entry *e);
/* Count a change, move the index of svc (may be NULL) unless it is a plain renewal, and
 * report it. */
void registry_notify(struct registry *reg, enum registry_change change,
                     struct registry_service *svc, const char *service, const char *id);
void registry_notify_entry(struct registry *reg, enum registry_change change, struct entry *e);
/* Take e out of the registry, report change and free it. The caller then calls
 * registry_preservation_review. */
void registry_entry_unlink(struct registry *reg, struct entry *e, enum registry_change change);
/* Remember that time has reached now_ms. */
void registry_tick(struct registry *reg, uint64_t now_ms);

/* ---- registry_health.c: health, leases, self-preservation ---- */

/* Lease deadline for a heartbeat at now_ms, saturating instead of wrapping. */
uint64_t registry_lease_deadline(uint64_t now_ms, uint32_t ttl_s);
/* Renew e's lease from now_ms: live again, not overdue, out of the held list. */
void registry_lease_renew(struct registry *reg, struct entry *e, uint64_t now_ms);
/* Recompute e's health and reason after its inputs changed at time t, keeping
 * critical_since_ms; the caller re-keys e. Returns whether health or reason changed from
 * old_health/old_reason (which must still be readable). */
bool registry_reassess(struct entry *e, enum registry_health old_health, const char *old_reason,
                       uint64_t t);
/* Set e's key and kind to its next time-driven event (without touching the heap). */
void registry_entry_key(const struct registry *reg, struct entry *e);
/* registry_entry_key, then move e in the heap. */
void registry_rekey(struct registry *reg, struct entry *e);
/* Forget e's part in self-preservation before it is removed. */
void registry_lease_forget(struct registry *reg, struct entry *e);
/* Leave self-preservation at t if the overdue share is back at or below the threshold.
 * Returns the number of instances whose health changed. */
size_t registry_preservation_review(struct registry *reg, uint64_t t);
/* Start inst's check state afresh: pending when it has a check. */
void registry_check_state_start(struct registry_instance *inst);
/* Free the state strings the registry keeps for a check's results. */
void registry_check_state_clear(struct entry *e);
/* Replace existing's configuration with fresh (consumed) as a re-registration at now_ms. */
void registry_entry_replace(struct registry *reg, struct entry *existing,
                            struct registry_instance *fresh, uint64_t now_ms);
/* The health, lease and timer invariants of one entry. */
bool registry_entry_consistent(const struct registry *reg, const struct entry *e);
/* The held list and the overdue count agree with the entries; held and overdue are the
 * numbers of LEASE_HELD and overdue entries counted while walking them. */
bool registry_preservation_consistent(const struct registry *reg, size_t held, size_t overdue);
