/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for snapshot files: a 10,000-instance round trip, atomic write (no temporary
 * file left, nothing left on failure), latest-generation selection, and refusal of unknown
 * versions, foreign files, damaged records, missing or wrong END records; the pre-encoded
 * write path (snapshot_encode_instance + snapshot_write_encoded) produces the same file. */
#include "snapshot.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dnsd/error.h"

/* ---- fixture: a fresh data directory per test ---- */

static char dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void dir_setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/h-snapshot-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void dir_teardown(void)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(snapshot, .init = dir_setup, .fini = dir_teardown);

/* ---- generated instances ---- */

/* Storage for one generated instance's strings. */
struct gen_inst {
    struct journal_instance in;
    char service[32], id[32], note[64], target[64];
    char tag_text[3][16];
    const char *tags[3];
    char key[2][16], value[2][64];
    struct journal_meta meta[2];
};

/* Instance number i: the fields vary with i so that a mix-up shows. */
static void gen(uint64_t i, struct gen_inst *g)
{
    memset(g, 0, sizeof(*g));
    struct journal_instance *in = &g->in;
    snprintf(g->service, sizeof(g->service), "svc-%u", (unsigned)(i % 97));
    snprintf(g->id, sizeof(g->id), "inst-%u", (unsigned)i);
    in->service = g->service;
    in->id = g->id;
    in->n_addrs = 1 + i % 3;
    for (size_t k = 0; k < in->n_addrs; k++) {
        bool v6 = (i + k) % 2;
        in->addrs[k].family = v6 ? AF_INET6 : AF_INET;
        if (v6) {
            in->addrs[k].bytes[0] = 0x20;
            in->addrs[k].bytes[1] = 0x01;
            in->addrs[k].bytes[14] = (uint8_t)(i >> 8);
            in->addrs[k].bytes[15] = (uint8_t)(i + k);
        } else {
            in->addrs[k].bytes[0] = 10;
            in->addrs[k].bytes[1] = (uint8_t)k;
            in->addrs[k].bytes[2] = (uint8_t)(i >> 8);
            in->addrs[k].bytes[3] = (uint8_t)i;
        }
    }
    in->port = (uint16_t)(1 + i % 65535);
    in->proto = i % 5 == 0 ? JOURNAL_PROTO_UDP : JOURNAL_PROTO_TCP;
    in->priority = (uint16_t)(i % 7);
    in->weight = (uint16_t)(i % 11);
    in->n_tags = i % 4;
    for (size_t k = 0; k < 3; k++) {
        snprintf(g->tag_text[k], sizeof(g->tag_text[k]), "tag%u", (unsigned)((i + k) % 13));
        g->tags[k] = g->tag_text[k];
    }
    in->tags = in->n_tags ? g->tags : NULL;
    in->n_meta = i % 3;
    for (size_t k = 0; k < 2; k++) {
        snprintf(g->key[k], sizeof(g->key[k]), "k%u", (unsigned)k);
        snprintf(g->value[k], sizeof(g->value[k]), "v%" PRIu64, i * 31 + k);
        g->meta[k].key = g->key[k];
        g->meta[k].value = g->value[k];
    }
    in->meta = in->n_meta ? g->meta : NULL;
    in->ttl_s = (uint32_t)(10 + i % 50);
    in->lease_deadline_ms = 1764130000000 + i * 7;
    in->registered_ms = 1764120000000 + i;
    in->heartbeat_ms = 1764125000000 + i * 3;
    in->kind = (enum journal_check_kind)(i % 3);
    if (in->kind != JOURNAL_CHECK_NONE) {
        snprintf(g->target, sizeof(g->target), "10.0.%u.%u:%u", (unsigned)((i >> 8) & 0xff),
                 (unsigned)(i & 0xff), (unsigned)in->port);
        in->check_target = g->target;
        in->check_interval_ms = 1000 + (uint32_t)i;
        in->check_timeout_ms = 500;
        in->check_success_before_passing = (uint16_t)(1 + i % 3);
        in->check_failures_before_critical = (uint16_t)(1 + i % 5);
    }
    in->deregister_after_ms = i % 2 ? 60000 : 0;
    in->reported = (enum journal_status)(i % 3);
    if (i % 4 == 1) {
        snprintf(g->note, sizeof(g->note), "note %" PRIu64, i);
        in->note = g->note;
    }
    in->maintenance = i % 6 == 0;
    in->maintenance_reason = in->maintenance ? "deploy" : NULL;
}

static void str_eq(const char *got, const char *want, const char *what)
{
    if (want == NULL || got == NULL)
        cr_assert(got == want, "%s: got %s, want %s", what, got ? got : "NULL",
                  want ? want : "NULL");
    else
        cr_assert_str_eq(got, want, "%s", what);
}

static void instance_eq(const struct journal_instance *a, const struct journal_instance *b)
{
    str_eq(a->service, b->service, "service");
    str_eq(a->id, b->id, "id");
    cr_assert_eq(a->n_addrs, b->n_addrs);
    for (size_t i = 0; i < a->n_addrs; i++) {
        cr_assert_eq(a->addrs[i].family, b->addrs[i].family);
        cr_assert_arr_eq(a->addrs[i].bytes, b->addrs[i].bytes,
                         a->addrs[i].family == AF_INET ? 4 : 16);
    }
    cr_assert_eq(a->port, b->port);
    cr_assert_eq(a->proto, b->proto);
    cr_assert_eq(a->priority, b->priority);
    cr_assert_eq(a->weight, b->weight);
    cr_assert_eq(a->n_tags, b->n_tags);
    for (size_t i = 0; i < a->n_tags; i++)
        str_eq(a->tags[i], b->tags[i], "tag");
    cr_assert_eq(a->n_meta, b->n_meta);
    for (size_t i = 0; i < a->n_meta; i++) {
        str_eq(a->meta[i].key, b->meta[i].key, "meta key");
        str_eq(a->meta[i].value, b->meta[i].value, "meta value");
    }
    cr_assert_eq(a->ttl_s, b->ttl_s);
    cr_assert_eq(a->lease_deadline_ms, b->lease_deadline_ms);
    cr_assert_eq(a->registered_ms, b->registered_ms);
    cr_assert_eq(a->heartbeat_ms, b->heartbeat_ms);
    cr_assert_eq(a->kind, b->kind);
    if (a->kind != JOURNAL_CHECK_NONE) {
        str_eq(a->check_target, b->check_target, "check target");
        cr_assert_eq(a->check_interval_ms, b->check_interval_ms);
        cr_assert_eq(a->check_timeout_ms, b->check_timeout_ms);
        cr_assert_eq(a->check_success_before_passing, b->check_success_before_passing);
        cr_assert_eq(a->check_failures_before_critical, b->check_failures_before_critical);
    }
    cr_assert_eq(a->deregister_after_ms, b->deregister_after_ms);
    cr_assert_eq(a->reported, b->reported);
    str_eq(a->note, b->note, "note");
    cr_assert_eq(a->maintenance, b->maintenance);
    str_eq(a->maintenance_reason, b->maintenance_reason, "maintenance reason");
}

/* Iterator over instances 0..limit-1; fails with fail_rc at fail_at (when fail_rc set). */
struct source {
    uint64_t next, limit;
    uint64_t fail_at;
    int fail_rc;
    struct gen_inst cur;
};

static int source_next(void *user, struct journal_instance *out)
{
    struct source *s = user;
    if (s->fail_rc && s->next == s->fail_at)
        return s->fail_rc;
    if (s->next == s->limit)
        return 0;
    gen(s->next++, &s->cur);
    *out = s->cur.in;
    return 1;
}

/* Checks that instances arrive as 0, 1, 2, ... */
struct sink {
    uint64_t count;
    uint64_t stop_at; /* 0: never */
};

static int sink_check(void *user, const struct journal_instance *inst)
{
    struct sink *s = user;
    if (s->stop_at && s->count == s->stop_at)
        return DNSD_ENOMEM;
    struct gen_inst want;
    gen(s->count++, &want);
    instance_eq(inst, &want.in);
    return 0;
}

static void snap_path(char *out, size_t n, uint64_t gen_no)
{
    cr_assert_eq(journal_file_path(out, n, dir, gen_no, true), 0);
}

static long file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long)st.st_size;
}

static uint8_t *file_read(const char *path, size_t *n)
{
    long size = file_size(path);
    cr_assert_geq(size, 0);
    uint8_t *data = malloc((size_t)size + 1);
    cr_assert_not_null(data);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return data;
}

static void file_write(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (n)
        cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Write a snapshot of instances 0..count-1 as generation gen_no. */
static void write_snapshot(uint64_t gen_no, uint64_t count)
{
    struct source src = {.limit = count};
    uint64_t written = 0;
    cr_assert_eq(snapshot_write(dir, gen_no, 1764130000000, source_next, &src, &written), 0);
    cr_assert_eq(written, count);
}

/* ---- tests ---- */

Test(snapshot, ten_thousand_instances_round_trip)
{
    write_snapshot(1, 10000);
    char path[256];
    snap_path(path, sizeof(path), 1);
    struct sink sink = {0};
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, sink_check, &sink, &rep), 0, "%s", rep.message);
    cr_assert_eq(sink.count, 10000);
    cr_assert_eq(rep.count, 10000);
    cr_assert_eq(rep.time_ms, 1764130000000);
    cr_assert_eq(rep.file_size, (uint64_t)file_size(path));
    cr_assert_str_eq(rep.message, "");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0007, 0, "no access for others: %o", st.st_mode & 07777);
}

Test(snapshot, empty_registry_round_trips)
{
    write_snapshot(2, 0);
    char path[256];
    snap_path(path, sizeof(path), 2);
    struct sink sink = {0};
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, sink_check, &sink, &rep), 0);
    cr_assert_eq(rep.count, 0);
    cr_assert_eq(file_size(path), JOURNAL_HEADER_LEN + JOURNAL_FRAME_LEN + 17);
}

Test(snapshot, atomic_write_leaves_no_temporary_file)
{
    write_snapshot(3, 50);
    char path[256], tmp[300];
    snap_path(path, sizeof(path), 3);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_gt(file_size(path), 0);
    cr_assert_eq(file_size(tmp), -1);
    /* A leftover from a crash is overwritten and then renamed away. */
    file_write(tmp, (const uint8_t *)"junk", 4);
    write_snapshot(3, 20);
    cr_assert_eq(file_size(tmp), -1);
    struct sink sink = {0};
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, sink_check, &sink, &rep), 0);
    cr_assert_eq(rep.count, 20);
}

Test(snapshot, failed_write_leaves_nothing_behind)
{
    write_snapshot(4, 5);
    char old_path[256], path[256], tmp[300];
    snap_path(old_path, sizeof(old_path), 4);
    snap_path(path, sizeof(path), 5);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    size_t old_n;
    uint8_t *old = file_read(old_path, &old_n);

    struct source src = {.limit = 100, .fail_at = 60, .fail_rc = DNSD_ENOMEM};
    uint64_t written = 12345;
    cr_assert_eq(snapshot_write(dir, 5, 1, source_next, &src, &written), DNSD_ENOMEM);
    cr_assert_eq(written, 12345);
    cr_assert_eq(file_size(path), -1);
    cr_assert_eq(file_size(tmp), -1);

    /* A directory that does not exist: the temporary file cannot even be made. */
    struct source none = {.limit = 3};
    cr_assert_eq(snapshot_write("/nonexistent/h-journal", 5, 1, source_next, &none, NULL),
                 DNSD_ENOENT);

    size_t n;
    uint8_t *now = file_read(old_path, &n);
    cr_assert_eq(n, old_n);
    cr_assert_arr_eq(now, old, n, "the older snapshot changed");
    free(now);
    free(old);
}

static int bad_next(void *user, struct journal_instance *out)
{
    struct source *s = user;
    int rc = source_next(user, out);
    if (rc == 1 && s->next == 3)
        out->n_addrs = 0; /* the third instance is invalid */
    return rc;
}

Test(snapshot, invalid_instance_fails_the_write)
{
    struct source src = {.limit = 10};
    cr_assert_eq(snapshot_write(dir, 6, 1, bad_next, &src, NULL), DNSD_EINVAL);
    char path[256], tmp[300];
    snap_path(path, sizeof(path), 6);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_eq(file_size(path), -1);
    cr_assert_eq(file_size(tmp), -1);
}

Test(snapshot, latest_generation_is_found)
{
    uint64_t g = 99;
    cr_assert_eq(snapshot_find_latest(dir, &g), DNSD_ENOENT);
    cr_assert_eq(g, 99);
    write_snapshot(1, 1);
    write_snapshot(0x10, 1);
    write_snapshot(0xa, 1);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s/snapshot-00000000000000ff.snap.tmp", dir);
    file_write(tmp, (const uint8_t *)"x", 1);
    snprintf(tmp, sizeof(tmp), "%s/journal-00000000000000fe.log", dir);
    file_write(tmp, (const uint8_t *)"x", 1);
    snprintf(tmp, sizeof(tmp), "%s/snapshot-fd.snap", dir);
    file_write(tmp, (const uint8_t *)"x", 1);
    cr_assert_eq(snapshot_find_latest(dir, &g), 0);
    cr_assert_eq(g, 0x10);
    cr_assert_eq(snapshot_find_latest("/nonexistent/h-journal", &g), DNSD_ENOENT);
}

Test(snapshot, unknown_version_is_refused)
{
    write_snapshot(1, 3);
    char path[256];
    snap_path(path, sizeof(path), 1);
    size_t n;
    uint8_t *data = file_read(path, &n);
    data[8] = 0x01; /* version 0x01000001 */
    file_write(path, data, n);
    struct sink sink = {0};
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, sink_check, &sink, &rep), JOURNAL_EVERSION);
    cr_assert_eq(sink.count, 0);
    cr_assert_not_null(strstr(rep.message, "version 16777217"), "%s", rep.message);
    cr_assert_not_null(strstr(rep.message, path));
    free(data);
}

Test(snapshot, journal_file_is_refused)
{
    struct journal *j;
    cr_assert_eq(journal_open(dir, 1, JOURNAL_OPEN_CREATE, &j), 0);
    journal_close(j);
    char path[256];
    cr_assert_eq(journal_file_path(path, sizeof(path), dir, 1, false), 0);
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, NULL, NULL, &rep), JOURNAL_EBADMAGIC);
    snap_path(path, sizeof(path), 1);
    cr_assert_eq(snapshot_read(path, NULL, NULL, &rep), DNSD_ENOENT);
}

Test(snapshot, every_truncation_is_refused)
{
    write_snapshot(1, 4);
    char path[256];
    snap_path(path, sizeof(path), 1);
    size_t n;
    uint8_t *data = file_read(path, &n);
    for (size_t cut = 0; cut < n; cut++) {
        file_write(path, data, cut);
        struct snapshot_read_report rep;
        int rc = snapshot_read(path, NULL, NULL, &rep);
        cr_assert_eq(rc, JOURNAL_ETRUNCATED, "cut %zu: %d %s", cut, rc, rep.message);
        cr_assert_neq(rep.message[0], '\0');
    }
    free(data);
}

Test(snapshot, every_flipped_byte_is_refused)
{
    write_snapshot(1, 4);
    char path[256];
    snap_path(path, sizeof(path), 1);
    size_t n;
    uint8_t *data = file_read(path, &n);
    for (size_t byte = 0; byte < n; byte++) {
        data[byte] ^= 0xff;
        file_write(path, data, n);
        data[byte] ^= 0xff;
        struct sink sink = {0};
        struct snapshot_read_report rep;
        int rc = snapshot_read(path, sink_check, &sink, &rep);
        cr_assert_neq(rc, 0, "flipped byte %zu was not noticed", byte);
        /* Instances after the damage never arrive; damage in END follows all four. */
        size_t end_at = n - JOURNAL_FRAME_LEN - 17;
        if (byte < end_at)
            cr_assert_lt(sink.count, 4, "byte %zu", byte);
    }
    free(data);
}

/* Write a snapshot file by hand: header, then the given records. */
static void write_records(const char *path, const struct journal_record *recs, size_t n,
                          size_t extra)
{
    struct journal_buf buf;
    journal_buf_init(&buf);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(journal_encode_record(&buf, &recs[i]), 0);
    uint8_t *data = calloc(1, JOURNAL_HEADER_LEN + buf.len + extra);
    cr_assert_not_null(data);
    journal_header_build(data, "DNSDSNAP");
    memcpy(data + JOURNAL_HEADER_LEN, buf.data, buf.len);
    file_write(path, data, JOURNAL_HEADER_LEN + buf.len + extra);
    free(data);
    journal_buf_clear(&buf);
}

Test(snapshot, wrong_count_and_trailing_bytes_are_refused)
{
    struct gen_inst g;
    gen(0, &g);
    struct journal_record recs[2];
    memset(recs, 0, sizeof(recs));
    recs[0].type = JOURNAL_SNAPSHOT_INSTANCE;
    recs[0].put = g.in;
    recs[1].type = JOURNAL_SNAPSHOT_END;
    recs[1].end_count = 2;
    char path[256];
    snap_path(path, sizeof(path), 1);
    write_records(path, recs, 2, 0);
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, NULL, NULL, &rep), JOURNAL_EMALFORMED);
    cr_assert_not_null(strstr(rep.message, "counts 2"), "%s", rep.message);

    recs[1].end_count = 1;
    write_records(path, recs, 2, 0);
    cr_assert_eq(snapshot_read(path, NULL, NULL, &rep), 0);
    write_records(path, recs, 2, 3);
    cr_assert_eq(snapshot_read(path, NULL, NULL, &rep), JOURNAL_EMALFORMED);
    cr_assert_not_null(strstr(rep.message, "3 unexpected bytes"), "%s", rep.message);
}

Test(snapshot, journal_record_inside_is_refused)
{
    struct gen_inst g;
    gen(0, &g);
    struct journal_record recs[2];
    memset(recs, 0, sizeof(recs));
    recs[0].type = JOURNAL_PUT;
    recs[0].put = g.in;
    recs[1].type = JOURNAL_SNAPSHOT_END;
    recs[1].end_count = 1;
    char path[256];
    snap_path(path, sizeof(path), 1);
    write_records(path, recs, 2, 0);
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, NULL, NULL, &rep), JOURNAL_EBADTYPE);
    cr_assert_not_null(strstr(rep.message, "offset 16"), "%s", rep.message);
}

Test(snapshot, callback_error_stops_the_read)
{
    write_snapshot(1, 10);
    char path[256];
    snap_path(path, sizeof(path), 1);
    struct sink sink = {.stop_at = 4};
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, sink_check, &sink, &rep), DNSD_ENOMEM);
    cr_assert_eq(rep.count, 4);
}

Test(snapshot, compaction_keeps_only_the_new_generation)
{
    write_snapshot(1, 3);
    struct journal *j;
    cr_assert_eq(journal_open(dir, 1, JOURNAL_OPEN_CREATE, &j), 0);
    journal_close(j);
    write_snapshot(2, 3);
    cr_assert_eq(journal_open(dir, 2, JOURNAL_OPEN_CREATE, &j), 0);
    journal_close(j);
    size_t removed = 0;
    cr_assert_eq(journal_remove_older_than(dir, 2, &removed), 0);
    cr_assert_eq(removed, 2);
    uint64_t g = 0;
    cr_assert_eq(snapshot_find_latest(dir, &g), 0);
    cr_assert_eq(g, 2);
    uint64_t *gens;
    size_t n;
    cr_assert_eq(journal_list(dir, 0, &gens, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(gens[0], 2);
    free(gens);
}

Test(snapshot, encoded_records_write_the_same_file)
{
    write_snapshot(6, 300);
    char path[256], want_path[256];
    snap_path(want_path, sizeof(want_path), 6);
    size_t want_n;
    uint8_t *want = file_read(want_path, &want_n);

    struct journal_buf records;
    journal_buf_init(&records);
    struct source src = {.limit = 300};
    struct journal_instance in;
    for (;;) {
        memset(&in, 0, sizeof(in));
        if (source_next(&src, &in) != 1)
            break;
        cr_assert_eq(snapshot_encode_instance(&records, 1764130000000, &in), 0);
    }
    cr_assert_eq(snapshot_write_encoded(dir, 7, 1764130000000, records.data, records.len, 300), 0);
    journal_buf_clear(&records);

    snap_path(path, sizeof(path), 7);
    size_t n;
    uint8_t *got = file_read(path, &n);
    cr_assert_eq(n, want_n);
    cr_assert_arr_eq(got, want, n, "differs from snapshot_write's file");
    struct sink sink = {0};
    struct snapshot_read_report rep;
    cr_assert_eq(snapshot_read(path, sink_check, &sink, &rep), 0, "%s", rep.message);
    cr_assert_eq(rep.count, 300);
    free(got);
    free(want);
}

Test(snapshot, encoded_write_failure_leaves_nothing_behind)
{
    struct journal_buf records;
    journal_buf_init(&records);
    struct source src = {.limit = 1};
    struct journal_instance in = {0};
    cr_assert_eq(source_next(&src, &in), 1);
    cr_assert_eq(snapshot_encode_instance(&records, 1, &in), 0);
    /* A bad instance is refused and leaves the buffer as it was. */
    size_t len = records.len;
    in.n_addrs = 0;
    cr_assert_eq(snapshot_encode_instance(&records, 1, &in), DNSD_EINVAL);
    cr_assert_eq(records.len, len);

    /* The temporary name is taken by a directory: open fails with EISDIR. */
    char path[256], tmp[300];
    snap_path(path, sizeof(path), 8);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    cr_assert_eq(snapshot_write_encoded(dir, 8, 1, records.data, records.len, 1), -EISDIR);
    cr_assert_eq(file_size(path), -1);
    cr_assert_eq(rmdir(tmp), 0);
    cr_assert_eq(
        snapshot_write_encoded("/nonexistent/h-journal", 8, 1, records.data, records.len, 1),
        DNSD_ENOENT);
    journal_buf_clear(&records);
}
