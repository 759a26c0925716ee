/* SPDX-License-Identifier: BSD-2-Clause
 * Persistence: the libuv shell between the registry and the data directory. It locks the
 * directory, restores the registry at start (latest snapshot, then every later journal),
 * turns each acknowledged registry change into a journal record, syncs once per loop turn
 * for all records of that turn (group commit), applies the fsync policy, and compacts (a
 * snapshot and the next journal generation) every snapshot_every records: the registry is
 * copied on the loop a slice per turn and the file written on a libuv worker thread, so DNS
 * answers on the loop wait neither for the whole copy nor for the disk. It borrows the
 * registry and never decides a registry change itself. Lease times are monotonic in the
 * registry and wall-clock in the files; the translation lives here.
 * Loop: every function runs on the loop persist_open was given. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "journal.h"
#include "registry.h"

/* How long a failed data directory waits before it is tried again. */
#define PERSIST_RETRY_MS 1000

struct persist_config {
    const char *data_dir; /* borrowed for persist_open */
    enum config_fsync fsync;
    uint64_t fsync_interval_ms;
    uint32_t snapshot_every;      /* journal records between snapshots (>= 1) */
    uint64_t restart_grace_ms;    /* CONFIG_GRACE_ONE_LEASE: each instance's own ttl */
    bool repair;                  /* keep the valid prefix of a journal damaged mid-file */
    uint64_t (*wall_clock)(void); /* wall-clock ms; NULL: CLOCK_REALTIME (tests inject one) */
    /* Tests only (NULL otherwise): called on the worker thread just before a snapshot file
     * is written, with the generation it is for. */
    void (*before_snapshot_write)(void *user, uint64_t generation);
    void *hook_user; /* borrowed; passed to before_snapshot_write */
};

/* What the data directory held at start. */
struct persist_restore_report {
    bool had_snapshot;
    uint64_t snapshot_generation;
    uint64_t snapshot_instances;
    uint64_t journal_records; /* records replayed from every journal after the snapshot */
    size_t instances;         /* in the registry afterwards */
};

/* State for GET /v1/health. */
struct persist_status {
    const char *data_dir;         /* borrowed from the persist */
    const char *fsync;            /* static */
    uint64_t journal_bytes;       /* size of the current journal file */
    int64_t last_snapshot_ms_ago; /* -1: no snapshot written or found */
    const char *last_sync_error;  /* borrowed until the next call; NULL when all is well */
};

/* Told after every write-out of the records appended since the last one: err 0 (they are
 * durable under the fsync policy) or the error with a one-line reason (borrowed for the
 * call). With fsync "always" this is the moment to answer the parked API writes. */
typedef void persist_synced_cb(void *user, int err, const char *reason);

struct persist;

/* ---- pure helpers (any thread; exposed for tests) ---- */

/* Scratch space for persist_to_journal: the meta array in the journal's shape. */
struct persist_jscratch {
    struct journal_meta meta[JOURNAL_MAX_META];
};

/* Scratch space for persist_from_journal: tags and meta in the registry's shape. */
struct persist_rscratch {
    struct registry_addr addrs[JOURNAL_MAX_ADDRS];
    char *tags[JOURNAL_MAX_TAGS];
    struct registry_meta meta[JOURNAL_MAX_META];
};

/* Monotonic ms (the registry's clock) to wall-clock ms, given offset = wall - monotonic;
 * saturates at 0 and UINT64_MAX (UINT64_MAX stays UINT64_MAX). */
uint64_t persist_to_wall(uint64_t mono_ms, int64_t offset_ms);
/* Wall-clock ms to monotonic ms; saturates like persist_to_wall. */
uint64_t persist_to_mono(uint64_t wall_ms, int64_t offset_ms);

/* The lease deadline a restored instance gets: the stored one, but not before now plus
 * the grace (grace_ms, or ttl_s seconds when grace_ms is CONFIG_GRACE_ONE_LEASE). */
uint64_t persist_restore_deadline(uint64_t stored_mono_ms, uint64_t now_ms, uint32_t ttl_s,
                                  uint64_t grace_ms);

/* Fill out with in's persistent state, times converted to wall clock.
 * Ownership: out's pointers borrow from in and scratch. */
void persist_to_journal(const struct registry_instance *in, int64_t offset_ms,
                        struct persist_jscratch *scratch, struct journal_instance *out);

/* Fill out (zeroed first) from a journal instance, times converted to monotonic, ready for
 * registry_restore.
 * Ownership: out's pointers borrow from in and scratch; never registry_instance_clear it. */
void persist_from_journal(const struct journal_instance *in, int64_t offset_ms,
                          struct persist_rscratch *scratch, struct registry_instance *out);

/* ---- lifecycle ---- */

/* Create cfg->data_dir (0750) if missing, lock it (flock), and restore reg from it: the
 * latest snapshot, every journal of that generation or later in order (a torn tail is cut
 * with a warning naming the offset), then the restart grace; then open the journal for
 * appending. Logs what it restored and every repair. reg should be empty and its change
 * callback quiet: nothing restored is journaled again.
 * Returns: 0 and *out; DNSD_EEXIST (another process holds the lock); JOURNAL_ECORRUPT
 * (mid-file damage without cfg->repair); JOURNAL_EBADMAGIC, JOURNAL_EVERSION, or another
 * JOURNAL_E* code (a damaged snapshot); another DNSD_E* or -errno. err (and report on
 * success) say what happened.
 * Ownership: reg is borrowed and must outlive the persist; release with persist_close. */
int persist_open(uv_loop_t *loop, const struct persist_config *cfg, struct registry *reg,
                 persist_synced_cb *on_synced, void *user, struct persist **out,
                 struct persist_restore_report *report, char *err, size_t err_len);

/* Write out and sync what is pending (a last chance), close the journal, and free the
 * persist (releasing the lock) once its handles have closed and a running snapshot write
 * has finished: the loop must run on until then. persist_close(NULL) does nothing. */
void persist_close(struct persist *p);

/* ---- queries ---- */

/* Why writes must be refused now (the last write-out failed and no retry has worked yet),
 * or NULL when they may go ahead. The text is borrowed until the next call. */
const char *persist_refusal(const struct persist *p);

void persist_status(const struct persist *p, struct persist_status *out);

/* Counters for tests and the benchmark. */
struct persist_counters {
    uint64_t appended;   /* records appended since open */
    uint64_t writeouts;  /* syncs (or flushes) that covered appended records */
    uint64_t waiting;    /* appended and not yet written out */
    uint64_t generation; /* of the journal appended to */
    uint64_t snapshots;  /* snapshot files written since open */
    uint64_t snapshot_failures;
    bool compacting;   /* a snapshot is being copied (on the loop) or written (on a worker) */
    uint64_t copy_us;  /* the last compaction's registry copy (encoding), all slices, in us */
    uint64_t loop_us;  /* its longest stall of the loop (the journal switch or one slice), us */
    uint64_t write_us; /* the last snapshot write on the worker (microseconds) */
};
void persist_counters(const struct persist *p, struct persist_counters *out);

/* ---- mutations ---- */

/* Journal the change just applied to the registry: PUT (the instance's whole state),
 * REMOVE, HEARTBEAT or MAINTENANCE of service/id. The record is written out on this loop
 * turn's end (one sync for all of them with fsync "always"); on_synced tells.
 * Returns: 1 (fsync "always": the caller must wait for on_synced before acknowledging),
 * 0 (nothing to wait for), DNSD_ENOENT (not in the registry, for all but REMOVE), or the
 * error of journal_append (the journal is unusable: refuse the write). */
int persist_record(struct persist *p, enum journal_type type, const char *service, const char *id);

/* Compact now: sync the journal and open the next generation GEN for new records; then copy
 * the registry (encoded) a slice per loop turn, and write snapshot GEN from the copy on a
 * libuv worker thread; when it is on disk, older files are deleted on the loop (and logged).
 * The copy is fuzzy (each service as of its slice), which replaying journal GEN over it
 * makes exact on restore. A crash
 * before that restores from the older snapshot plus every journal since, so nothing is
 * lost. While a snapshot is being written, another request is coalesced: one more
 * compaction starts when the running one ends. A failed write is logged and counted in
 * persist_counters; the next compaction tries again.
 * A copy still under way when persist_close runs is finished there.
 * Returns: 0 and *generation (the snapshot's generation) and *instances (the registry's
 * instance count now; may be NULL), or, when one is already running, 0 with the
 * generation and the current instance count of the coalesced one to come; the journal's
 * error (the old generation stays in use); DNSD_ENOMEM. An instance the encoder refuses
 * ends the compaction later (logged and counted as a failure). */
int persist_snapshot(struct persist *p, uint64_t *generation, uint64_t *instances);
