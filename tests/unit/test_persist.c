/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests of persist: clock translation, the restart grace, the registry <-> journal
 * translation round trip, restore from a data directory, group commit bookkeeping and the
 * directory lock, and compaction on a worker thread (the loop runs meanwhile; a failed
 * snapshot write loses nothing; requests during a write are coalesced). Files go to a fresh
 * temporary directory; no sockets. */
#include "persist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dnsd/error.h"

static char dir[64];
static uv_loop_t loop;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_persist.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(persist, .init = setup, .fini = teardown);

/* The wall clock the tests control: 10^12 ms (2001) plus the loop's monotonic time. */
static uint64_t wall_offset = 1000000000000ULL;
static uint64_t fake_wall(void)
{
    return wall_offset + uv_now(&loop);
}

static struct persist_config config(enum config_fsync fsync)
{
    struct persist_config cfg = {
        .data_dir = dir,
        .fsync = fsync,
        .fsync_interval_ms = 100,
        .snapshot_every = 10000,
        .restart_grace_ms = CONFIG_GRACE_ONE_LEASE,
        .wall_clock = fake_wall,
    };
    return cfg;
}

struct synced {
    int calls;
    int last_err;
};

static void on_synced(void *user, int err, const char *reason)
{
    struct synced *s = user;
    (void)reason;
    s->calls++;
    s->last_err = err;
}

static void put(struct registry *reg, const char *service, const char *id, uint32_t ttl_s,
                uint64_t now_ms)
{
    struct registry_instance inst = {0};
    inst.service = (char *)service;
    inst.id = (char *)id;
    struct registry_addr addr = {0};
    inst.addrs = &addr;
    inst.n_addrs = 1;
    inst.addrs[0].family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, "192.0.2.10", inst.addrs[0].bytes), 1);
    inst.port = 8080;
    inst.weight = 1;
    inst.ttl_s = ttl_s;
    cr_assert_eq(registry_put(reg, &inst, now_ms, NULL), 0);
}

/* Run the loop until no snapshot is being written. */
static void wait_compaction(struct persist *p)
{
    struct persist_counters c;
    for (persist_counters(p, &c); c.compacting; persist_counters(p, &c))
        uv_run(&loop, UV_RUN_ONCE);
}

static bool file_exists(uint64_t generation, bool snapshot)
{
    char path[JOURNAL_PATH_MAX];
    cr_assert_eq(journal_file_path(path, sizeof(path), dir, generation, snapshot), 0);
    return access(path, F_OK) == 0;
}

static struct persist *open_ok(struct persist_config *cfg, struct registry *reg, struct synced *s,
                               struct persist_restore_report *rep)
{
    struct persist *p = NULL;
    char err[512] = "";
    int rc = persist_open(&loop, cfg, reg, on_synced, s, &p, rep, err, sizeof(err));
    cr_assert_eq(rc, 0, "persist_open: %s (%s)", err, journal_strerror(rc));
    return p;
}

Test(persist, clock_translation_saturates)
{
    cr_assert_eq(persist_to_wall(1000, 500), 1500);
    cr_assert_eq(persist_to_wall(1000, -400), 600);
    cr_assert_eq(persist_to_wall(100, -400), 0);
    cr_assert_eq(persist_to_wall(UINT64_MAX, -5), UINT64_MAX);
    cr_assert_eq(persist_to_wall(UINT64_MAX - 1, 10), UINT64_MAX);
    cr_assert_eq(persist_to_mono(1500, 500), 1000);
    cr_assert_eq(persist_to_mono(100, 500), 0);
}

Test(persist, restore_deadline_takes_the_later_of_stored_and_grace)
{
    /* Default grace: one lease (ttl 30 s) from now. */
    cr_assert_eq(persist_restore_deadline(5000, 10000, 30, CONFIG_GRACE_ONE_LEASE), 40000);
    cr_assert_eq(persist_restore_deadline(90000, 10000, 30, CONFIG_GRACE_ONE_LEASE), 90000);
    /* An explicit grace, and a grace of zero keeps the stored deadline. */
    cr_assert_eq(persist_restore_deadline(5000, 10000, 30, 2000), 12000);
    cr_assert_eq(persist_restore_deadline(5000, 10000, 30, 0), 10000);
    cr_assert_eq(persist_restore_deadline(50000, 10000, 30, 0), 50000);
    cr_assert_eq(persist_restore_deadline(0, UINT64_MAX - 5, 30, 1000), UINT64_MAX);
}

Test(persist, translation_round_trip_keeps_every_field)
{
    struct registry_instance in = {0};
    char *tags[] = {"primary", "eu"};
    struct registry_meta meta[] = {{"version", "1.4"}, {"zone", ""}};
    in.service = "web";
    in.id = "web-1";
    struct registry_addr addrs[2] = {0};
    in.addrs = addrs;
    in.n_addrs = 2;
    in.addrs[0].family = AF_INET;
    inet_pton(AF_INET, "192.0.2.10", in.addrs[0].bytes);
    in.addrs[1].family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::10", in.addrs[1].bytes);
    in.port = 8080;
    in.proto = REGISTRY_PROTO_UDP;
    in.priority = 3;
    in.weight = 7;
    in.tags = tags;
    in.n_tags = 2;
    in.meta = meta;
    in.n_meta = 2;
    in.ttl_s = 30;
    in.check.kind = REGISTRY_CHECK_HTTP;
    in.check.target = "http://192.0.2.10:8080/health";
    in.check.interval_ms = 10000;
    in.check.timeout_ms = 2000;
    in.check.success_before_passing = 2;
    in.check.failures_before_critical = 3;
    in.deregister_after_ms = 60000;
    in.registered_ms = 1000;
    in.heartbeat_ms = 5000;
    in.expires_ms = 35000;
    in.reported = REGISTRY_HEALTH_WARNING;
    in.note = "slow";
    in.maintenance = true;
    in.maintenance_reason = "deploy";

    struct persist_jscratch js;
    struct journal_instance ji;
    persist_to_journal(&in, 7000, &js, &ji);
    cr_assert_eq(ji.lease_deadline_ms, 42000, "wall = monotonic + offset");
    cr_assert_eq(ji.registered_ms, 8000);
    cr_assert_eq(ji.heartbeat_ms, 12000);

    /* Through the codec, as the files carry it. */
    struct journal_buf buf;
    journal_buf_init(&buf);
    struct journal_record rec = {.type = JOURNAL_PUT, .time_ms = 12000, .put = ji};
    cr_assert_eq(journal_encode_record(&buf, &rec), 0);
    struct journal_record dec;
    size_t used;
    cr_assert_eq(journal_decode(buf.data, buf.len, &dec, &used), 0);

    struct persist_rscratch rs;
    struct registry_instance out;
    persist_from_journal(&dec.put, 7000, &rs, &out);
    cr_assert_str_eq(out.service, "web");
    cr_assert_str_eq(out.id, "web-1");
    cr_assert_eq(out.n_addrs, 2);
    cr_assert_eq(memcmp(out.addrs, in.addrs, 2 * sizeof(in.addrs[0])), 0);
    cr_assert_eq(out.port, 8080);
    cr_assert_eq(out.proto, REGISTRY_PROTO_UDP);
    cr_assert_eq(out.priority, 3);
    cr_assert_eq(out.weight, 7);
    cr_assert_eq(out.n_tags, 2);
    cr_assert_str_eq(out.tags[1], "eu");
    cr_assert_eq(out.n_meta, 2);
    cr_assert_str_eq(out.meta[0].key, "version");
    cr_assert_str_eq(out.meta[1].value, "");
    cr_assert_eq(out.ttl_s, 30);
    cr_assert_eq(out.check.kind, REGISTRY_CHECK_HTTP);
    cr_assert_str_eq(out.check.target, in.check.target);
    cr_assert_eq(out.check.interval_ms, 10000);
    cr_assert_eq(out.check.timeout_ms, 2000);
    cr_assert_eq(out.check.success_before_passing, 2);
    cr_assert_eq(out.check.failures_before_critical, 3);
    cr_assert_eq(out.deregister_after_ms, 60000);
    cr_assert_eq(out.heartbeat_ms, 5000, "heartbeat = deadline - ttl");
    cr_assert_eq(out.registered_ms, 1000);
    cr_assert_eq(out.reported, REGISTRY_HEALTH_WARNING);
    cr_assert_str_eq(out.note, "slow");
    cr_assert(out.maintenance);
    cr_assert_str_eq(out.maintenance_reason, "deploy");
    journal_record_clear(&dec);
    journal_buf_clear(&buf);
}

Test(persist, group_commit_syncs_once_per_loop_turn)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_ALWAYS);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    uint64_t now = uv_now(&loop);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "web-%d", i);
        put(reg, "web", id, 30, now);
        cr_assert_eq(persist_record(p, JOURNAL_PUT, "web", id), 1, "fsync always: wait");
    }
    struct persist_counters c;
    persist_counters(p, &c);
    cr_assert_eq(c.appended, 5);
    cr_assert_eq(c.waiting, 5);
    cr_assert_eq(s.calls, 0, "nothing written out before the loop turns");
    uv_run(&loop, UV_RUN_NOWAIT);
    persist_counters(p, &c);
    cr_assert_eq(c.writeouts, 1, "one sync for the five records");
    cr_assert_eq(c.waiting, 0);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.last_err, 0);
    cr_assert_null(persist_refusal(p));
    cr_assert_eq(persist_record(p, JOURNAL_REMOVE, "web", "web-0"), 1);
    cr_assert_eq(persist_record(p, JOURNAL_HEARTBEAT, "nope", "x"), DNSD_ENOENT);
    uv_run(&loop, UV_RUN_NOWAIT);
    persist_counters(p, &c);
    cr_assert_eq(c.writeouts, 2);
    cr_assert_eq(s.calls, 2);
    persist_close(p);
    registry_free(reg);
}

Test(persist, interval_and_off_do_not_make_writes_wait)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_OFF);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    put(reg, "web", "web-1", 30, uv_now(&loop));
    cr_assert_eq(persist_record(p, JOURNAL_PUT, "web", "web-1"), 0);
    persist_close(p);
    registry_free(reg);
}

Test(persist, restore_replays_snapshot_and_journal_with_grace)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_ALWAYS);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    uint64_t now = uv_now(&loop);
    put(reg, "web", "a", 30, now);
    persist_record(p, JOURNAL_PUT, "web", "a");
    put(reg, "web", "b", 30, now);
    persist_record(p, JOURNAL_PUT, "web", "b");
    uint64_t gen = 0, count = 0;
    cr_assert_eq(persist_snapshot(p, &gen, &count), 0);
    cr_assert_eq(gen, 2);
    cr_assert_eq(count, 2);
    /* After the snapshot: a removal, a heartbeat with a note, maintenance, a new one. */
    cr_assert_eq(registry_remove(reg, "web", "a"), 0);
    persist_record(p, JOURNAL_REMOVE, "web", "a");
    cr_assert_eq(registry_heartbeat(reg, "web", "b", REGISTRY_HEALTH_WARNING, "hot", now, NULL), 0);
    persist_record(p, JOURNAL_HEARTBEAT, "web", "b");
    cr_assert_eq(registry_set_maintenance(reg, "web", "b", true, "deploy", now, NULL), 0);
    persist_record(p, JOURNAL_MAINTENANCE, "web", "b");
    put(reg, "db", "c", 10, now);
    persist_record(p, JOURNAL_PUT, "db", "c");
    uv_run(&loop, UV_RUN_NOWAIT);
    persist_close(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    registry_free(reg);

    /* The wall clock moved 20 s on while dnsd was down: db/c's 10 s lease is past, and gets
     * one lease of grace from the restart; web/b's stored deadline is still later. */
    wall_offset += 20000;
    struct registry *back = registry_new(NULL, NULL, NULL);
    struct persist_restore_report rep;
    p = open_ok(&cfg, back, &s, &rep);
    cr_assert(rep.had_snapshot);
    cr_assert_eq(rep.snapshot_generation, 2);
    cr_assert_eq(rep.snapshot_instances, 2);
    cr_assert_eq(rep.journal_records, 4);
    cr_assert_eq(rep.instances, 2);
    uint64_t t = uv_now(&loop);
    cr_assert_null(registry_find_instance(back, "web", "a"), "removed stays removed");
    const struct registry_instance *b = registry_find_instance(back, "web", "b");
    cr_assert_not_null(b);
    cr_assert_eq(b->reported, REGISTRY_HEALTH_WARNING);
    cr_assert_str_eq(b->note, "hot");
    cr_assert(b->maintenance);
    cr_assert_str_eq(b->maintenance_reason, "deploy");
    cr_assert_geq(b->expires_ms, t + 30000, "one lease of grace at least");
    const struct registry_instance *c = registry_find_instance(back, "db", "c");
    cr_assert_not_null(c);
    cr_assert_geq(c->expires_ms, t + 10000);
    cr_assert_leq(c->expires_ms, t + 10000 + 50, "grace is one lease, not more");
    cr_assert(registry_check(back));
    persist_close(p);
    registry_free(back);
    wall_offset -= 20000;
}

Test(persist, second_open_of_a_locked_directory_is_refused)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry *other = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_ALWAYS);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    struct persist *q = NULL;
    char err[512] = "";
    cr_assert_eq(persist_open(&loop, &cfg, other, NULL, NULL, &q, NULL, err, sizeof(err)),
                 DNSD_EEXIST);
    cr_assert_null(q);
    cr_assert(strstr(err, "locked by another process") != NULL, "%s", err);
    persist_close(p);
    registry_free(reg);
    registry_free(other);
}

Test(persist, compaction_every_n_records_starts_a_new_generation)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_ALWAYS);
    cfg.snapshot_every = 3;
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "web-%d", i);
        put(reg, "web", id, 30, uv_now(&loop));
        persist_record(p, JOURNAL_PUT, "web", id);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    struct persist_counters c;
    persist_counters(p, &c);
    cr_assert_eq(c.generation, 2);
    wait_compaction(p);
    persist_counters(p, &c);
    cr_assert_eq(c.snapshots, 1);
    struct persist_status st;
    persist_status(p, &st);
    cr_assert_eq(st.journal_bytes, JOURNAL_HEADER_LEN, "the new journal is empty");
    cr_assert_geq(st.last_snapshot_ms_ago, 0);
    cr_assert_str_eq(st.fsync, "always");
    char path[JOURNAL_PATH_MAX];
    journal_file_path(path, sizeof(path), dir, 1, false);
    cr_assert_neq(access(path, F_OK), 0, "generation 1 is deleted");
    persist_close(p);
    registry_free(reg);
}

/* ---- compaction on a worker thread ---- */

/* What the before_snapshot_write hook saw and how it was held up. */
struct gate {
    sem_t go;                 /* posted by the loop to let the held write go on */
    uint64_t hold_generation; /* the hook waits only for this generation */
    uv_thread_t loop_thread;
    atomic_bool ran_on_loop_thread;
    atomic_bool released; /* the loop posted go within the time limit */
    atomic_int writes;
    /* Loop side. */
    struct persist *p;
    struct registry *reg;
    struct synced *s;
    int ticks;
    bool appended_while_writing;
    bool synced_while_writing;
};

static struct gate gate;

/* Worker thread: note the thread, and hold the write until the loop says go (5 s at most,
 * so a write wrongly run on the loop thread fails the test rather than hanging it). */
static void hold_write(void *user, uint64_t generation)
{
    struct gate *g = user;
    uv_thread_t self = uv_thread_self();
    if (uv_thread_equal(&self, &g->loop_thread))
        g->ran_on_loop_thread = true;
    g->writes++;
    if (generation != g->hold_generation)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (sem_timedwait(&g->go, &until) != 0) {
        if (errno != EINTR)
            return;
    }
    g->released = true;
}

static void gate_init(struct persist_config *cfg, uint64_t hold_generation)
{
    memset(&gate, 0, sizeof(gate));
    cr_assert_eq(sem_init(&gate.go, 0, 0), 0);
    gate.hold_generation = hold_generation;
    gate.loop_thread = uv_thread_self();
    cfg->before_snapshot_write = hold_write;
    cfg->hook_user = &gate;
}

/* Loop: tick while the snapshot write is held; register and journal one more instance on
 * the first tick, check it was written out by the third, then let the write go. */
static void on_tick(uv_timer_t *t)
{
    struct gate *g = t->data;
    struct persist_counters c;
    persist_counters(g->p, &c);
    if (++g->ticks == 1) {
        put(g->reg, "web", "late", 30, uv_now(&loop));
        g->appended_while_writing =
            c.compacting && persist_record(g->p, JOURNAL_PUT, "web", "late") == 1;
    } else if (g->ticks == 3) {
        g->synced_while_writing = c.compacting && g->s->calls == 1 && g->s->last_err == 0;
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        sem_post(&g->go);
    }
}

Test(persist, snapshot_is_written_off_the_loop_while_it_keeps_running)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_ALWAYS);
    gate_init(&cfg, 2);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    for (int i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof(id), "web-%d", i);
        put(reg, "web", id, 30, uv_now(&loop));
        persist_record(p, JOURNAL_PUT, "web", id);
    }
    uint64_t gen = 0, count = 0;
    cr_assert_eq(persist_snapshot(p, &gen, &count), 0);
    cr_assert_eq(gen, 2);
    cr_assert_eq(count, 100);
    struct persist_counters c;
    persist_counters(p, &c);
    cr_assert(c.compacting, "the write is still going on when persist_snapshot returns");
    cr_assert_eq(c.generation, 2, "new records already go to the next journal");
    cr_assert(file_exists(2, false));

    gate.p = p;
    gate.reg = reg;
    gate.s = &s;
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    tick.data = &gate;
    uv_timer_start(&tick, on_tick, 1, 1);
    wait_compaction(p);
    cr_assert(gate.released, "the loop ticked and let the held write go");
    cr_assert_not(gate.ran_on_loop_thread, "the snapshot was written on the loop thread");
    cr_assert(gate.appended_while_writing);
    cr_assert(gate.synced_while_writing, "a record was synced while the snapshot was written");
    cr_assert_geq(gate.ticks, 3);
    persist_counters(p, &c);
    cr_assert_eq(c.snapshots, 1);
    cr_assert_eq(c.snapshot_failures, 0);
    cr_assert(file_exists(2, true));
    cr_assert_not(file_exists(1, false), "generation 1 deleted once snapshot 2 is on disk");
    persist_close(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    registry_free(reg);

    struct registry *back = registry_new(NULL, NULL, NULL);
    struct persist_restore_report rep;
    p = open_ok(&cfg, back, &s, &rep);
    cr_assert_eq(rep.snapshot_generation, 2);
    /* The copy is fuzzy: "late", registered after the journal switch, may be in it or not. */
    cr_assert(rep.snapshot_instances == 100 || rep.snapshot_instances == 101);
    cr_assert_eq(rep.journal_records, 1, "the record made during the write");
    cr_assert_eq(rep.instances, 101);
    cr_assert_not_null(registry_find_instance(back, "web", "late"));
    persist_close(p);
    registry_free(back);
    sem_destroy(&gate.go);
}

/* 3,000 one-instance services s0000..s2999: more than one copy slice. */
static void put_many(struct registry *reg, struct persist *p, int n)
{
    for (int i = 0; i < n; i++) {
        char svc[16];
        snprintf(svc, sizeof(svc), "s%04d", i);
        put(reg, svc, "a", 300, uv_now(&loop));
        cr_assert_eq(persist_record(p, JOURNAL_PUT, svc, "a"), 0);
    }
}

Test(persist, sliced_copy_with_changes_between_slices_restores_the_final_registry)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_OFF);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    put_many(reg, p, 3000);
    uv_run(&loop, UV_RUN_NOWAIT);
    uint64_t gen = 0;
    cr_assert_eq(persist_snapshot(p, &gen, NULL), 0);
    uv_run(&loop, UV_RUN_NOWAIT); /* one slice: s0000..s2047 */
    struct persist_counters c;
    persist_counters(p, &c);
    cr_assert(c.compacting, "the copy is not done after one turn");

    /* Between slices: behind the cursor, ahead of it, and before the first name. */
    cr_assert_eq(registry_remove(reg, "s0001", "a"), 0);
    persist_record(p, JOURNAL_REMOVE, "s0001", "a");
    cr_assert_eq(registry_remove(reg, "s2999", "a"), 0);
    persist_record(p, JOURNAL_REMOVE, "s2999", "a");
    put(reg, "a-new", "a", 300, uv_now(&loop));
    persist_record(p, JOURNAL_PUT, "a-new", "a");
    cr_assert_eq(registry_set_maintenance(reg, "s0005", "a", true, "deploy", uv_now(&loop), NULL),
                 0);
    persist_record(p, JOURNAL_MAINTENANCE, "s0005", "a");
    cr_assert_eq(
        registry_heartbeat(reg, "s2500", "a", REGISTRY_HEALTH_WARNING, "hot", uv_now(&loop), NULL),
        0);
    persist_record(p, JOURNAL_HEARTBEAT, "s2500", "a");
    wait_compaction(p);
    persist_counters(p, &c);
    cr_assert_eq(c.snapshots, 1);
    persist_close(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    registry_free(reg);

    struct registry *back = registry_new(NULL, NULL, NULL);
    struct persist_restore_report rep;
    p = open_ok(&cfg, back, &s, &rep);
    cr_assert_eq(rep.snapshot_generation, gen);
    cr_assert_eq(rep.instances, 2999);
    cr_assert_null(registry_find_instance(back, "s0001", "a"), "removed behind the cursor");
    cr_assert_null(registry_find_instance(back, "s2999", "a"), "removed ahead of the cursor");
    cr_assert_not_null(registry_find_instance(back, "a-new", "a"), "added before the cursor");
    const struct registry_instance *in = registry_find_instance(back, "s0005", "a");
    cr_assert(in && in->maintenance);
    in = registry_find_instance(back, "s2500", "a");
    cr_assert(in && in->reported == REGISTRY_HEALTH_WARNING);
    cr_assert_str_eq(in->note, "hot");
    persist_close(p);
    registry_free(back);
}

Test(persist, close_during_a_sliced_copy_finishes_the_snapshot)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_OFF);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    put_many(reg, p, 3000);
    uint64_t gen = 0;
    cr_assert_eq(persist_snapshot(p, &gen, NULL), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    persist_close(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    registry_free(reg);
    cr_assert(file_exists(gen, true));

    struct registry *back = registry_new(NULL, NULL, NULL);
    struct persist_restore_report rep;
    p = open_ok(&cfg, back, &s, &rep);
    cr_assert_eq(rep.snapshot_generation, gen);
    cr_assert_eq(rep.snapshot_instances, 3000);
    cr_assert_eq(rep.instances, 3000);
    persist_close(p);
    registry_free(back);
}

Test(persist, failed_snapshot_write_still_restores_everything)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_ALWAYS);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    uint64_t now = uv_now(&loop);
    put(reg, "web", "a", 30, now);
    persist_record(p, JOURNAL_PUT, "web", "a");
    put(reg, "web", "b", 30, now);
    persist_record(p, JOURNAL_PUT, "web", "b");
    uv_run(&loop, UV_RUN_NOWAIT);
    /* The worker cannot create snapshot 2: its temporary name is taken by a directory. The
     * files are then what a crash between "journal 2 opened" and "snapshot 2 renamed"
     * leaves behind. */
    char path[JOURNAL_PATH_MAX + 8];
    journal_file_path(path, sizeof(path), dir, 2, true);
    strcat(path, ".tmp");
    cr_assert_eq(mkdir(path, 0700), 0);
    uint64_t gen = 0;
    cr_assert_eq(persist_snapshot(p, &gen, NULL), 0);
    cr_assert_eq(gen, 2);
    /* Changes made meanwhile go to journal 2. */
    cr_assert_eq(registry_remove(reg, "web", "a"), 0);
    persist_record(p, JOURNAL_REMOVE, "web", "a");
    put(reg, "db", "c", 30, now);
    persist_record(p, JOURNAL_PUT, "db", "c");
    wait_compaction(p);
    uv_run(&loop, UV_RUN_NOWAIT);
    struct persist_counters c;
    persist_counters(p, &c);
    cr_assert_eq(c.snapshots, 0);
    cr_assert_eq(c.snapshot_failures, 1);
    cr_assert_eq(c.generation, 2);
    cr_assert_null(persist_refusal(p), "journal 2 is fine: writes go on");
    cr_assert(file_exists(1, false), "journal 1 is kept: no snapshot covers it");
    cr_assert(file_exists(2, false));
    cr_assert_not(file_exists(2, true));
    persist_close(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    registry_free(reg);

    struct registry *back = registry_new(NULL, NULL, NULL);
    struct persist_restore_report rep;
    p = open_ok(&cfg, back, &s, &rep);
    cr_assert_not(rep.had_snapshot);
    cr_assert_eq(rep.journal_records, 4, "both journals replayed");
    cr_assert_eq(rep.instances, 2);
    cr_assert_null(registry_find_instance(back, "web", "a"), "removed stays removed");
    cr_assert_not_null(registry_find_instance(back, "web", "b"));
    cr_assert_not_null(registry_find_instance(back, "db", "c"));

    /* With the obstacle gone, the next compaction succeeds and cleans up. */
    cr_assert_eq(rmdir(path), 0);
    cr_assert_eq(persist_snapshot(p, &gen, NULL), 0);
    cr_assert_eq(gen, 3);
    wait_compaction(p);
    persist_counters(p, &c);
    cr_assert_eq(c.snapshots, 1);
    cr_assert(file_exists(3, true));
    cr_assert_not(file_exists(1, false));
    cr_assert_not(file_exists(2, false));
    persist_close(p);
    registry_free(back);
}

Test(persist, snapshot_requests_during_a_write_are_coalesced)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_OFF);
    gate_init(&cfg, 2);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    put(reg, "web", "a", 30, uv_now(&loop));
    persist_record(p, JOURNAL_PUT, "web", "a");
    uint64_t gen = 0, count = 0;
    cr_assert_eq(persist_snapshot(p, &gen, &count), 0);
    cr_assert_eq(gen, 2);
    put(reg, "web", "b", 30, uv_now(&loop));
    persist_record(p, JOURNAL_PUT, "web", "b");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(persist_snapshot(p, &gen, &count), 0);
        cr_assert_eq(gen, 3, "one more compaction to come, not three");
        cr_assert_eq(count, 2);
    }
    sem_post(&gate.go);
    struct persist_counters c;
    do {
        uv_run(&loop, UV_RUN_ONCE);
        persist_counters(p, &c);
    } while (c.compacting || c.snapshots < 2);
    cr_assert_eq(c.snapshots, 2);
    cr_assert_eq(c.generation, 3);
    cr_assert_eq(gate.writes, 2);
    cr_assert(file_exists(3, true));
    cr_assert_not(file_exists(2, true));
    persist_close(p);
    registry_free(reg);
    sem_destroy(&gate.go);
}

Test(persist, close_waits_for_a_running_snapshot_write)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct synced s = {0};
    struct persist_config cfg = config(CONFIG_FSYNC_ALWAYS);
    gate_init(&cfg, 2);
    struct persist *p = open_ok(&cfg, reg, &s, NULL);
    put(reg, "web", "a", 30, uv_now(&loop));
    persist_record(p, JOURNAL_PUT, "web", "a");
    cr_assert_eq(persist_snapshot(p, NULL, NULL), 0);
    persist_close(p);
    /* The lock is held until the write is done: a second open is still refused. */
    struct registry *other = registry_new(NULL, NULL, NULL);
    struct persist *q = NULL;
    char err[512] = "";
    cr_assert_eq(persist_open(&loop, &cfg, other, NULL, NULL, &q, NULL, err, sizeof(err)),
                 DNSD_EEXIST);
    sem_post(&gate.go);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert(gate.released);
    cr_assert(file_exists(2, true), "the write finished before the loop ended");
    registry_free(reg);
    registry_free(other);
    sem_destroy(&gate.go);
}
