/* SPDX-License-Identifier: BSD-2-Clause
 * Persistence shell: restore at start, journal appends with group commit on a uv_idle
 * (one write-out per loop turn for every record of that turn), the fsync policy and retry
 * timer, and compaction into the next generation (registry copied on the loop, snapshot
 * written on a uv_queue_work thread). The codec and the files are journal.c and
 * snapshot.c; the registry is only read here, except while restoring. */
#include "persist.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dnsd/error.h"
#include "dnsd/names.h"
#include "log.h"
#include "snapshot.h"

struct compaction;

struct persist {
    uv_loop_t *loop;      /* borrowed */
    struct registry *reg; /* borrowed from the daemon */
    struct journal *j;    /* owned */
    char dir[JOURNAL_PATH_MAX];
    int lock_fd; /* holds the flock on dir */
    enum config_fsync fsync;
    uint64_t fsync_interval_ms;
    uint32_t snapshot_every;
    uint64_t (*wall_clock)(void);
    persist_synced_cb *on_synced; /* may be NULL */
    void *user;                   /* borrowed; passed to on_synced */
    uv_idle_t idle;               /* the end-of-turn write-out, active while records wait */
    uv_idle_t copy_idle;          /* copies one slice of the registry per turn (job->copying) */
    uv_timer_t timer;             /* interval syncs, and retries after a failure */
    unsigned open_handles;
    uint64_t since_snapshot;        /* records in the journal since the last snapshot */
    uint64_t last_snapshot_wall_ms; /* 0: none */
    bool dirty;                     /* written since the last fsync (interval mode) */
    int last_error;                 /* of the last write-out, 0 when it worked */
    char last_error_text[JOURNAL_MESSAGE_MAX];
    struct persist_counters counters;
    struct compaction *job; /* owned: the snapshot write running on a worker, or NULL */
    bool again;             /* a compaction was asked for while job ran */
    bool recovering;        /* the journal failed for good: refuse until a snapshot lands */
    bool closing;           /* persist_close ran; free once handles and job are done */
    void (*before_write)(void *user, uint64_t generation);
    void *hook_user; /* borrowed; passed to before_write */
};

/* One snapshot write handed to a worker thread. */
struct compaction {
    uv_work_t req;
    struct persist *p;      /* borrowed: lives until the after-work callback */
    struct journal_buf buf; /* owned: the encoded instance records */
    uint64_t generation, count, time_ms;
    /* The registry is copied a slice per loop turn, resuming after the last service copied,
     * so DNS never waits for the whole copy. The snapshot is therefore fuzzy: each service
     * as it was at some moment after the journal switch. Replaying the new journal over it
     * is still exact, since every journal record sets absolute state (a PUT the whole
     * instance, a heartbeat its deadline and status) and records for instances that are
     * gone are skipped on restore. */
    bool copying;
    uint64_t turns;                  /* loop turns the copy took */
    char cursor[DNSD_LABEL_MAX + 1]; /* the last service copied; "" before the first */
    int64_t offset;                  /* monotonic-to-wall clock offset at the start */
    uint64_t started_us;             /* uv_hrtime / 1000 when the worker began */
    uint64_t write_us;
    int rc;
};

/* ---- pure helpers ---- */

uint64_t persist_to_wall(uint64_t mono_ms, int64_t offset_ms)
{
    if (mono_ms == UINT64_MAX)
        return UINT64_MAX;
    if (offset_ms < 0)
        return mono_ms > (uint64_t)-offset_ms ? mono_ms - (uint64_t)-offset_ms : 0;
    return mono_ms > UINT64_MAX - (uint64_t)offset_ms ? UINT64_MAX : mono_ms + (uint64_t)offset_ms;
}

uint64_t persist_to_mono(uint64_t wall_ms, int64_t offset_ms)
{
    if (wall_ms == UINT64_MAX)
        return UINT64_MAX;
    if (offset_ms == INT64_MIN)
        return UINT64_MAX;
    return persist_to_wall(wall_ms, -offset_ms);
}

uint64_t persist_restore_deadline(uint64_t stored_mono_ms, uint64_t now_ms, uint32_t ttl_s,
                                  uint64_t grace_ms)
{
    uint64_t grace = grace_ms == CONFIG_GRACE_ONE_LEASE ? (uint64_t)ttl_s * 1000u : grace_ms;
    uint64_t floor = now_ms > UINT64_MAX - grace ? UINT64_MAX : now_ms + grace;
    return stored_mono_ms > floor ? stored_mono_ms : floor;
}

void persist_to_journal(const struct registry_instance *in, int64_t offset_ms,
                        struct persist_jscratch *scratch, struct journal_instance *out)
{
    memset(out, 0, sizeof(*out));
    out->service = in->service;
    out->id = in->id;
    out->n_addrs = in->n_addrs;
    for (size_t i = 0; i < in->n_addrs && i < JOURNAL_MAX_ADDRS; i++) {
        out->addrs[i].family = in->addrs[i].family;
        memcpy(out->addrs[i].bytes, in->addrs[i].bytes, sizeof(out->addrs[i].bytes));
    }
    out->port = in->port;
    out->proto = (enum journal_proto)in->proto;
    out->priority = in->priority;
    out->weight = in->weight;
    out->tags = (const char **)(void *)in->tags;
    out->n_tags = in->n_tags;
    for (size_t i = 0; i < in->n_meta && i < JOURNAL_MAX_META; i++) {
        scratch->meta[i].key = in->meta[i].key;
        scratch->meta[i].value = in->meta[i].value;
    }
    out->meta = in->n_meta ? scratch->meta : NULL;
    out->n_meta = in->n_meta;
    out->ttl_s = in->ttl_s;
    out->lease_deadline_ms = persist_to_wall(in->expires_ms, offset_ms);
    out->registered_ms = persist_to_wall(in->registered_ms, offset_ms);
    out->heartbeat_ms = persist_to_wall(in->heartbeat_ms, offset_ms);
    out->kind = (enum journal_check_kind)in->check.kind;
    out->check_target = in->check.target;
    out->check_interval_ms = in->check.interval_ms;
    out->check_timeout_ms = in->check.timeout_ms;
    out->check_success_before_passing = in->check.success_before_passing;
    out->check_failures_before_critical = in->check.failures_before_critical;
    out->deregister_after_ms = in->deregister_after_ms;
    out->reported = (enum journal_status)in->reported;
    out->note = in->note;
    out->maintenance = in->maintenance;
    out->maintenance_reason = in->maintenance ? in->maintenance_reason : NULL;
}

void persist_from_journal(const struct journal_instance *in, int64_t offset_ms,
                          struct persist_rscratch *scratch, struct registry_instance *out)
{
    memset(out, 0, sizeof(*out));
    out->service = (char *)in->service;
    out->id = (char *)in->id;
    out->addrs = scratch->addrs;
    out->n_addrs = in->n_addrs;
    for (size_t i = 0; i < in->n_addrs && i < REGISTRY_MAX_ADDRS; i++) {
        out->addrs[i].family = in->addrs[i].family;
        memcpy(out->addrs[i].bytes, in->addrs[i].bytes, sizeof(out->addrs[i].bytes));
    }
    out->port = in->port;
    out->proto = (enum registry_proto)in->proto;
    out->priority = in->priority;
    out->weight = in->weight;
    for (size_t i = 0; i < in->n_tags && i < JOURNAL_MAX_TAGS; i++)
        scratch->tags[i] = (char *)in->tags[i];
    out->tags = in->n_tags ? scratch->tags : NULL;
    out->n_tags = in->n_tags;
    for (size_t i = 0; i < in->n_meta && i < JOURNAL_MAX_META; i++) {
        scratch->meta[i].key = (char *)in->meta[i].key;
        scratch->meta[i].value = (char *)in->meta[i].value;
    }
    out->meta = in->n_meta ? scratch->meta : NULL;
    out->n_meta = in->n_meta;
    out->ttl_s = in->ttl_s;
    out->check.kind = (enum registry_check_kind)in->kind;
    if (in->kind != JOURNAL_CHECK_NONE) {
        out->check.target = (char *)in->check_target;
        out->check.interval_ms = in->check_interval_ms;
        out->check.timeout_ms = in->check_timeout_ms;
        out->check.success_before_passing = in->check_success_before_passing;
        out->check.failures_before_critical = in->check_failures_before_critical;
    }
    out->deregister_after_ms = in->deregister_after_ms;
    /* The lease runs from heartbeat_ms for ttl_s in the registry: derive the heartbeat from
     * the stored deadline, which is what must survive. */
    uint64_t deadline = persist_to_mono(in->lease_deadline_ms, offset_ms);
    uint64_t ttl_ms = (uint64_t)in->ttl_s * 1000u;
    out->heartbeat_ms = deadline > ttl_ms ? deadline - ttl_ms : 0;
    out->registered_ms = persist_to_mono(in->registered_ms, offset_ms);
    if (out->registered_ms > out->heartbeat_ms)
        out->registered_ms = out->heartbeat_ms;
    out->reported = (enum registry_health)in->reported;
    out->note = (char *)in->note;
    out->maintenance = in->maintenance;
    out->maintenance_reason = (char *)in->maintenance_reason;
}

/* ---- clocks ---- */

static uint64_t real_wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* wall - monotonic, now. */
static int64_t clock_offset(const struct persist *p)
{
    return (int64_t)p->wall_clock() - (int64_t)uv_now(p->loop);
}

/* ---- restore ---- */

struct restore {
    struct persist *p;
    int64_t offset;
    char *err;
    size_t err_len;
};

static int restore_instance(struct restore *r, const struct journal_instance *ji)
{
    struct persist_rscratch scratch;
    struct registry_instance inst;
    persist_from_journal(ji, r->offset, &scratch, &inst);
    const char *field = NULL;
    int rc = registry_restore(r->p->reg, &inst, &field);
    if (rc != 0)
        snprintf(r->err, r->err_len, "%s/%s: cannot restore (%s%s%s)", ji->service, ji->id,
                 dnsd_strerror(rc), field ? ": " : "", field ? field : "");
    return rc;
}

static int on_snapshot_instance(void *user, const struct journal_instance *inst)
{
    return restore_instance(user, inst);
}

static int on_journal_record(void *user, const struct journal_record *rec, uint64_t offset)
{
    struct restore *r = user;
    struct registry *reg = r->p->reg;
    const char *field = NULL;
    int rc = 0;
    (void)offset;
    switch (rec->type) {
    case JOURNAL_PUT:
        return restore_instance(r, &rec->put);
    case JOURNAL_REMOVE:
        /* Already gone (a removal journaled twice) is the state the record asks for. */
        rc = registry_remove(reg, rec->remove.service, rec->remove.id);
        return rc == DNSD_ENOENT ? 0 : rc;
    case JOURNAL_HEARTBEAT: {
        const struct registry_instance *in =
            registry_find_instance(reg, rec->heartbeat.service, rec->heartbeat.id);
        if (!in)
            return 0;
        uint64_t deadline = persist_to_mono(rec->heartbeat.lease_deadline_ms, r->offset);
        uint64_t ttl_ms = (uint64_t)in->ttl_s * 1000u;
        rc = registry_heartbeat(reg, rec->heartbeat.service, rec->heartbeat.id,
                                (enum registry_health)rec->heartbeat.status, rec->heartbeat.note,
                                deadline > ttl_ms ? deadline - ttl_ms : 0, &field);
        break;
    }
    case JOURNAL_MAINTENANCE:
        rc = registry_set_maintenance(reg, rec->maintenance.service, rec->maintenance.id,
                                      rec->maintenance.enabled, rec->maintenance.reason,
                                      uv_now(r->p->loop), &field);
        if (rc == DNSD_ENOENT)
            rc = 0;
        break;
    default:
        rc = JOURNAL_EBADTYPE;
        break;
    }
    if (rc != 0)
        snprintf(r->err, r->err_len, "journal record at offset %" PRIu64 ": cannot apply (%s)",
                 offset, journal_strerror(rc));
    return rc;
}

struct grace {
    struct registry *reg;
    uint64_t now, grace_ms;
    int rc;
};

/* Give every instance of svc its restart grace (see persist_restore_deadline). */
static bool grant_grace(const struct registry_service *svc, void *user)
{
    struct grace *g = user;
    for (size_t i = 0; i < registry_service_instance_count(svc); i++) {
        const struct registry_instance *in = registry_service_instance(svc, i);
        uint64_t want = persist_restore_deadline(in->expires_ms, g->now, in->ttl_s, g->grace_ms);
        if (want <= in->expires_ms)
            continue;
        /* The heartbeat does not move any instance: in stays valid for the loop. */
        g->rc = registry_heartbeat(g->reg, in->service, in->id, in->reported, in->note,
                                   want - (uint64_t)in->ttl_s * 1000u, NULL);
        if (g->rc != 0)
            return false;
    }
    return true;
}

/* mkdir -p with mode 0750 for the missing components. */
static int make_dir(const char *path)
{
    char buf[JOURNAL_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -errno;
        if (last)
            break;
        *p = '/';
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int lock_dir(struct persist *p, char *err, size_t err_len)
{
    int rc = make_dir(p->dir);
    if (rc != 0) {
        snprintf(err, err_len, "data directory %s: %s", p->dir, dnsd_strerror(rc));
        return rc;
    }
    p->lock_fd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->lock_fd < 0) {
        rc = -errno;
        snprintf(err, err_len, "data directory %s: %s", p->dir, dnsd_strerror(rc));
        return rc;
    }
    if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? DNSD_EEXIST : -errno;
        if (rc == DNSD_EEXIST)
            snprintf(err, err_len,
                     "data directory %s is locked by another process (a running dnsd?)", p->dir);
        else
            snprintf(err, err_len, "data directory %s: cannot lock: %s", p->dir, dnsd_strerror(rc));
        return rc;
    }
    return 0;
}

static int restore(struct persist *p, const struct persist_config *cfg,
                   struct persist_restore_report *rep, char *err, size_t err_len)
{
    struct restore r = {.p = p, .offset = clock_offset(p), .err = err, .err_len = err_len};
    char path[JOURNAL_PATH_MAX];
    uint64_t gen = 0;
    int rc = snapshot_find_latest(p->dir, &gen);
    if (rc != 0 && rc != DNSD_ENOENT) {
        snprintf(err, err_len, "data directory %s: %s", p->dir, dnsd_strerror(rc));
        return rc;
    }
    if (rc == 0) {
        struct snapshot_read_report srep;
        journal_file_path(path, sizeof(path), p->dir, gen, true);
        err[0] = '\0';
        rc = snapshot_read(path, on_snapshot_instance, &r, &srep);
        if (rc != 0) {
            if (!err[0])
                snprintf(err, err_len, "%s", srep.message[0] ? srep.message : path);
            return rc;
        }
        rep->had_snapshot = true;
        rep->snapshot_generation = gen;
        rep->snapshot_instances = srep.count;
        p->last_snapshot_wall_ms = srep.time_ms;
    }
    uint64_t *gens = NULL;
    size_t n = 0;
    rc = journal_list(p->dir, gen, &gens, &n);
    if (rc != 0) {
        snprintf(err, err_len, "data directory %s: %s", p->dir, dnsd_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct journal_replay_report jrep;
        journal_file_path(path, sizeof(path), p->dir, gens[i], false);
        err[0] = '\0';
        rc = journal_replay(path, on_journal_record, &r,
                            cfg->repair ? JOURNAL_REPAIR : JOURNAL_TRUNCATE_TAIL, &jrep);
        rep->journal_records += jrep.records;
        if (rc == JOURNAL_ECORRUPT) {
            snprintf(err, err_len,
                     "%s; refusing to start: restart with --repair-journal to keep the %" PRIu64
                     " valid records before offset %" PRIu64 " and move the damaged file aside",
                     jrep.message, jrep.records, jrep.corrupt_offset);
        } else if (rc != 0 && !err[0]) {
            snprintf(err, err_len, "%s", jrep.message[0] ? jrep.message : path);
        } else if (rc == 0 && jrep.message[0]) {
            log_warn("persist", "%s", jrep.message);
        }
    }
    uint64_t last = n ? gens[n - 1] : (gen ? gen : 1);
    bool exists = n > 0;
    free(gens);
    if (rc != 0)
        return rc;

    struct grace g = {.reg = p->reg, .now = uv_now(p->loop), .grace_ms = cfg->restart_grace_ms};
    registry_foreach_service(p->reg, grant_grace, &g);
    if (g.rc != 0) {
        snprintf(err, err_len, "cannot grant the restart grace: %s", dnsd_strerror(g.rc));
        return g.rc;
    }
    rc = journal_open(p->dir, last, exists ? JOURNAL_OPEN_APPEND : JOURNAL_OPEN_CREATE, &p->j);
    if (rc != 0) {
        journal_file_path(path, sizeof(path), p->dir, last, false);
        snprintf(err, err_len, "%s: %s", path, journal_strerror(rc));
        return rc;
    }
    p->since_snapshot = rep->journal_records;
    p->counters.generation = last;
    rep->instances = registry_instance_count(p->reg);
    return 0;
}

/* ---- write-out ---- */

static void set_error(struct persist *p, int rc, const char *what)
{
    if (p->last_error == 0)
        log_error("persist", "%s failed in %s: %s; refusing API writes until it works again", what,
                  p->dir, journal_strerror(rc));
    p->last_error = rc;
    snprintf(p->last_error_text, sizeof(p->last_error_text), "%s: %s", what, journal_strerror(rc));
}

static void clear_error(struct persist *p)
{
    if (p->last_error != 0)
        log_info("persist", "%s works again; accepting API writes", p->dir);
    p->last_error = 0;
    p->last_error_text[0] = '\0';
}

/* Start a compaction into the next generation; see persist_snapshot. */
static int compact_start(struct persist *p, uint64_t *generation, uint64_t *instances);

/* Write out every pending record (fsync with sync set), recovering a journal that is
 * unusable for good through compaction: the error stands until the recovery snapshot is on
 * disk, as only it holds the records the failed journal lost. Returns 0 or the error
 * (recorded for refusals). */
static int write_out(struct persist *p, bool sync)
{
    int rc;
    if ((journal_failed(p->j) || p->recovering) && !p->job) {
        if (journal_failed(p->j))
            set_error(p, journal_failed(p->j), "journal write");
        p->recovering = true;
        rc = compact_start(p, NULL, NULL);
        if (rc != 0)
            set_error(p, rc, "recovery snapshot");
    }
    rc = journal_failed(p->j);
    if (rc == 0)
        rc = sync ? journal_sync(p->j) : journal_flush(p->j);
    if (rc != 0) {
        set_error(p, rc, sync ? "journal fsync" : "journal write");
        return rc;
    }
    p->dirty = !sync;
    if (p->recovering)
        return p->last_error;
    clear_error(p);
    return 0;
}

static void on_idle(uv_idle_t *idle)
{
    struct persist *p = idle->data;
    uv_idle_stop(&p->idle);
    bool covered = p->counters.waiting > 0;
    int rc = write_out(p, p->fsync == CONFIG_FSYNC_ALWAYS);
    if (covered)
        p->counters.writeouts++;
    if (rc == 0)
        p->counters.waiting = 0;
    if (rc == 0 && p->since_snapshot >= p->snapshot_every && !p->job) {
        int crc = compact_start(p, NULL, NULL);
        if (crc != 0)
            log_error("persist", "snapshot in %s failed: %s; the journal keeps growing", p->dir,
                      journal_strerror(crc));
    }
    if (p->on_synced)
        p->on_synced(p->user, rc, rc ? p->last_error_text : NULL);
}

static void on_timer(uv_timer_t *timer)
{
    struct persist *p = timer->data;
    if (p->last_error != 0 || (p->fsync == CONFIG_FSYNC_INTERVAL && p->dirty)) {
        int rc = write_out(p, true);
        if (rc == 0)
            p->counters.waiting = 0;
    }
}

/* ---- snapshots ---- */

/* Instances copied per loop turn: under a millisecond of encoding on an idle core. */
#define COPY_SLICE_INSTANCES 1024

struct copy {
    struct compaction *job; /* borrowed */
    uint64_t budget;        /* instances still to copy this turn; UINT64_MAX: no limit */
    int rc;
};

/* Encode every instance of svc into the job (a service is never split across turns). */
static bool copy_service(const struct registry_service *svc, void *user)
{
    struct copy *c = user;
    struct compaction *job = c->job;
    struct persist_jscratch scratch;
    struct journal_instance ji;
    if (c->budget == 0)
        return false;
    size_t n = registry_service_instance_count(svc);
    for (size_t i = 0; i < n; i++) {
        persist_to_journal(registry_service_instance(svc, i), job->offset, &scratch, &ji);
        c->rc = snapshot_encode_instance(&job->buf, job->time_ms, &ji);
        if (c->rc != 0)
            return false;
        job->count++;
    }
    snprintf(job->cursor, sizeof(job->cursor), "%s", registry_service_name(svc));
    c->budget = n >= c->budget ? 0 : c->budget - n;
    return true;
}

/* Worker thread: only the job's own bytes and p's immutable dir and hook are touched. */
static void compaction_work(uv_work_t *req)
{
    struct compaction *job = req->data;
    struct persist *p = job->p;
    if (p->before_write)
        p->before_write(p->hook_user, job->generation);
    uint64_t t0 = uv_hrtime();
    job->rc = snapshot_write_encoded(p->dir, job->generation, job->time_ms, job->buf.data,
                                     job->buf.len, job->count);
    job->write_us = (uv_hrtime() - t0) / 1000u;
}

static void maybe_free(struct persist *p)
{
    if (!p->closing || p->open_handles > 0 || p->job)
        return;
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    free(p);
}

/* A snapshot that will not be written: count and log it. Journals of its generation and
 * older all stay: the older snapshot plus them still restore everything. */
static void snapshot_failed(struct persist *p, const struct compaction *job, int rc)
{
    p->counters.snapshot_failures++;
    log_error("persist", "snapshot %" PRIu64 " in %s failed: %s; keeping the older files",
              job->generation, p->dir, journal_strerror(rc));
    if (p->recovering)
        set_error(p, rc, "recovery snapshot");
}

/* Loop: the snapshot is on disk (or not); delete what it replaces, or keep everything. */
static void compaction_done(uv_work_t *req, int status)
{
    struct compaction *job = req->data;
    struct persist *p = job->p;
    int rc = status == 0 ? job->rc : DNSD_EIO;
    p->job = NULL;
    p->counters.compacting = false;
    p->counters.write_us = job->write_us;
    if (rc == 0) {
        p->counters.snapshots++;
        p->last_snapshot_wall_ms = job->time_ms;
        int rm = journal_remove_older_than(p->dir, job->generation, NULL);
        if (rm != 0)
            log_warn("persist", "%s: cannot delete files older than generation %" PRIu64 ": %s",
                     p->dir, job->generation, journal_strerror(rm));
        log_info("persist",
                 "snapshot %" PRIu64 ": %" PRIu64 " instances (copied in %" PRIu64
                 " ms over %" PRIu64 " loop turns, the longest %" PRIu64 " ms; written in %" PRIu64
                 " ms on a worker)",
                 job->generation, job->count, p->counters.copy_us / 1000u, job->turns,
                 p->counters.loop_us / 1000u, job->write_us / 1000u);
        if (p->recovering && !p->closing) {
            p->recovering = false;
            clear_error(p);
        }
    } else {
        snapshot_failed(p, job, rc);
    }
    journal_buf_clear(&job->buf);
    free(job);
    if (p->closing) {
        maybe_free(p);
        return;
    }
    /* A success lets a coalesced request (or records piled up meanwhile) go ahead; after a
     * failure the retry timer or the next records try again, so a full disk is not hammered. */
    if (rc == 0 && (p->again || p->since_snapshot >= p->snapshot_every)) {
        p->again = false;
        int crc = compact_start(p, NULL, NULL);
        if (crc != 0)
            log_error("persist", "snapshot in %s failed: %s; the journal keeps growing", p->dir,
                      journal_strerror(crc));
    }
}

/* Loop: the copy failed (a refused instance, or no worker): drop the job. */
static void copy_failed(struct persist *p, int rc)
{
    struct compaction *job = p->job;
    p->job = NULL;
    p->counters.compacting = false;
    snapshot_failed(p, job, rc);
    journal_buf_clear(&job->buf);
    free(job);
}

/* Copy up to budget more instances; once the whole registry is copied, hand the encoded
 * records to a worker. Returns 0, or the error that ended the compaction. */
static int copy_some(struct persist *p, uint64_t budget)
{
    struct compaction *job = p->job;
    uint64_t t0 = uv_hrtime();
    struct copy c = {.job = job, .budget = budget};
    job->turns++;
    registry_foreach_service_after(p->reg, job->cursor, copy_service, &c);
    uint64_t slice_us = (uv_hrtime() - t0) / 1000u;
    p->counters.copy_us += slice_us;
    if (slice_us > p->counters.loop_us)
        p->counters.loop_us = slice_us;
    int rc = c.rc;
    if (rc == 0 && c.budget == 0)
        return 0; /* more next turn (or nothing more: the next turn finds the end) */
    uv_idle_stop(&p->copy_idle);
    job->copying = false;
    if (rc == 0 && uv_queue_work(p->loop, &job->req, compaction_work, compaction_done) != 0)
        rc = DNSD_EIO; /* cannot happen with a live loop and a fresh request */
    if (rc != 0)
        copy_failed(p, rc);
    return rc;
}

static void on_copy_idle(uv_idle_t *idle)
{
    struct persist *p = idle->data;
    copy_some(p, COPY_SLICE_INSTANCES);
}

static int compact_start(struct persist *p, uint64_t *generation, uint64_t *instances)
{
    uint64_t next = journal_generation(p->j) + 1;
    struct journal *nj = NULL;
    uint64_t t0 = uv_hrtime();
    struct compaction *job = calloc(1, sizeof(*job));
    if (!job)
        return DNSD_ENOMEM;
    journal_buf_init(&job->buf);
    job->p = p;
    job->generation = next;
    job->time_ms = p->wall_clock();
    job->offset = clock_offset(p);
    job->req.data = job;
    /* What the old journal holds goes to disk before new records go to the next one; if
     * that fails (or the journal is beyond repair), the snapshot covers it, and writes are
     * refused until the snapshot is on disk. */
    int src = journal_failed(p->j);
    if (src == 0)
        src = journal_sync(p->j);
    int rc = journal_open(p->dir, next, JOURNAL_OPEN_CREATE, &nj);
    if (rc != 0) {
        journal_buf_clear(&job->buf);
        free(job);
        return rc;
    }
    if (src != 0) {
        set_error(p, src, "journal fsync");
        p->recovering = true;
    }
    journal_close(p->j);
    p->j = nj;
    p->job = job;
    job->copying = true;
    p->since_snapshot = 0;
    p->counters.generation = next;
    p->counters.waiting = 0;
    p->counters.compacting = true;
    p->counters.copy_us = 0;
    p->counters.loop_us = (uv_hrtime() - t0) / 1000u;
    p->dirty = false;
    if (generation)
        *generation = next;
    if (instances)
        *instances = registry_instance_count(p->reg);
    uv_idle_start(&p->copy_idle, on_copy_idle);
    return 0;
}

/* ---- lifecycle ---- */

int persist_open(uv_loop_t *loop, const struct persist_config *cfg, struct registry *reg,
                 persist_synced_cb *on_synced, void *user, struct persist **out,
                 struct persist_restore_report *report, char *err, size_t err_len)
{
    struct persist_restore_report rep = {0};
    struct persist *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, err_len, "out of memory");
        return DNSD_ENOMEM;
    }
    p->loop = loop;
    p->reg = reg;
    p->lock_fd = -1;
    p->fsync = cfg->fsync;
    p->fsync_interval_ms = cfg->fsync_interval_ms ? cfg->fsync_interval_ms : 100;
    p->snapshot_every = cfg->snapshot_every ? cfg->snapshot_every : 1;
    p->wall_clock = cfg->wall_clock ? cfg->wall_clock : real_wall_clock;
    p->on_synced = on_synced;
    p->user = user;
    p->before_write = cfg->before_snapshot_write;
    p->hook_user = cfg->hook_user;
    int rc;
    if (snprintf(p->dir, sizeof(p->dir), "%s", cfg->data_dir) >= (int)sizeof(p->dir) - 32) {
        snprintf(err, err_len, "data directory: path too long");
        rc = DNSD_ERANGE;
        goto fail;
    }
    rc = lock_dir(p, err, err_len);
    if (rc == 0)
        rc = restore(p, cfg, &rep, err, err_len);
    if (rc != 0)
        goto fail;
    uv_idle_init(loop, &p->idle);
    p->idle.data = p;
    uv_idle_init(loop, &p->copy_idle);
    p->copy_idle.data = p;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->open_handles = 3;
    uint64_t period = p->fsync == CONFIG_FSYNC_INTERVAL ? p->fsync_interval_ms : PERSIST_RETRY_MS;
    uv_timer_start(&p->timer, on_timer, period, period);
    uv_unref((uv_handle_t *)&p->timer);
    if (report)
        *report = rep;
    *out = p;
    return 0;

fail:
    journal_close(p->j);
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    free(p);
    return rc;
}

static void handle_closed(uv_handle_t *handle)
{
    struct persist *p = handle->data;
    p->open_handles--;
    maybe_free(p);
}

void persist_close(struct persist *p)
{
    if (!p)
        return;
    int rc = journal_failed(p->j);
    if (rc == 0 && (journal_pending(p->j) > 0 || p->dirty || p->counters.waiting > 0))
        rc = journal_sync(p->j);
    if (rc != 0)
        log_error("persist", "last journal sync in %s failed: %s", p->dir, journal_strerror(rc));
    if (p->counters.waiting > 0 && p->on_synced)
        p->on_synced(p->user, rc, rc ? journal_strerror(rc) : NULL);
    journal_close(p->j);
    p->j = NULL;
    /* A copy under way is finished now: its snapshot is still worth writing. The lock stays
     * until a running snapshot write is done (maybe_free releases it). */
    if (p->job && p->job->copying)
        copy_some(p, UINT64_MAX);
    p->closing = true;
    uv_close((uv_handle_t *)&p->idle, handle_closed);
    uv_close((uv_handle_t *)&p->copy_idle, handle_closed);
    uv_close((uv_handle_t *)&p->timer, handle_closed);
}

/* ---- queries ---- */

const char *persist_refusal(const struct persist *p)
{
    return p->last_error ? p->last_error_text : NULL;
}

void persist_status(const struct persist *p, struct persist_status *out)
{
    out->data_dir = p->dir;
    out->fsync = config_fsync_name(p->fsync);
    out->journal_bytes = journal_size(p->j);
    uint64_t now = p->wall_clock();
    out->last_snapshot_ms_ago = -1;
    if (p->last_snapshot_wall_ms)
        out->last_snapshot_ms_ago =
            now > p->last_snapshot_wall_ms ? (int64_t)(now - p->last_snapshot_wall_ms) : 0;
    out->last_sync_error = persist_refusal(p);
}

void persist_counters(const struct persist *p, struct persist_counters *out)
{
    *out = p->counters;
}

/* ---- mutations ---- */

int persist_record(struct persist *p, enum journal_type type, const char *service, const char *id)
{
    struct journal_record rec = {.type = type, .time_ms = p->wall_clock()};
    struct persist_jscratch scratch;
    int64_t offset = clock_offset(p);
    const struct registry_instance *in = NULL;
    if (type != JOURNAL_REMOVE) {
        in = registry_find_instance(p->reg, service, id);
        if (!in)
            return DNSD_ENOENT;
    }
    switch (type) {
    case JOURNAL_PUT:
        persist_to_journal(in, offset, &scratch, &rec.put);
        break;
    case JOURNAL_REMOVE:
        rec.remove.service = service;
        rec.remove.id = id;
        break;
    case JOURNAL_HEARTBEAT:
        rec.heartbeat.service = service;
        rec.heartbeat.id = id;
        rec.heartbeat.lease_deadline_ms = persist_to_wall(in->expires_ms, offset);
        rec.heartbeat.status = (enum journal_status)in->reported;
        rec.heartbeat.note = in->note;
        break;
    case JOURNAL_MAINTENANCE:
        rec.maintenance.service = service;
        rec.maintenance.id = id;
        rec.maintenance.enabled = in->maintenance;
        rec.maintenance.reason = in->maintenance ? in->maintenance_reason : NULL;
        break;
    default:
        return DNSD_EINVAL;
    }
    int rc = journal_append(p->j, &rec);
    if (rc != 0) {
        set_error(p, rc, "journal append");
        return rc;
    }
    p->counters.appended++;
    p->counters.waiting++;
    p->since_snapshot++;
    p->dirty = true;
    uv_idle_start(&p->idle, on_idle);
    return p->fsync == CONFIG_FSYNC_ALWAYS ? 1 : 0;
}

int persist_snapshot(struct persist *p, uint64_t *generation, uint64_t *instances)
{
    if (p->job) {
        p->again = true;
        if (generation)
            *generation = p->job->generation + 1;
        if (instances)
            *instances = registry_instance_count(p->reg);
        return 0;
    }
    return compact_start(p, generation, instances);
}
