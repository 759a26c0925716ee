/* SPDX-License-Identifier: BSD-2-Clause
 * Fuzz target: the snapshot reader. The input is written as snapshot-GEN.snap in a temporary
 * directory and read with snapshot_read. A small reference reading of the format (header,
 * INSTANCE records, one END record counting them, nothing after it) decides independently
 * whether the file is valid. Aborts unless snapshot_read agrees, delivers exactly the
 * instances the reference decoded, and a snapshot written back from them reads the same.
 * Each input runs twice: as given and with every record CRC recomputed (fuzz_records.h). */
#include "fuzz.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsd/error.h"
#include "fuzz_records.h"
#include "journal.h"
#include "snapshot.h"

/* More instances than this in one input are read but not compared one by one. */
#define MAX_COMPARED 256

static char dir[64];
static char path[128];
static char path2[128];

static void remove_dir(void)
{
    unlink(path);
    unlink(path2);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_temp_dir(dir, sizeof(dir));
    fuzz_check(journal_file_path(path, sizeof(path), dir, 1, true) == 0, "path fits");
    fuzz_check(journal_file_path(path2, sizeof(path2), dir, 2, true) == 0, "path fits");
    atexit(remove_dir);
    return 0;
}

/* Append an instance's canonical bytes: its encoding as a PUT record stamped 0. */
static void encode_instance(struct journal_buf *buf, const struct journal_instance *inst)
{
    struct journal_record rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = JOURNAL_PUT;
    rec.put = *inst;
    fuzz_check(journal_encode_record(buf, &rec) == 0, "a decoded instance encodes");
}

/* What a reading delivered: the instances' canonical bytes, one after another. */
struct seen {
    struct journal_buf bytes;
    size_t ends[MAX_COMPARED]; /* where each instance's bytes end */
    uint64_t count;
};

static int on_instance(void *user, const struct journal_instance *inst)
{
    struct seen *s = user;
    if (s->count < MAX_COMPARED) {
        encode_instance(&s->bytes, inst);
        s->ends[s->count] = s->bytes.len;
    }
    s->count++;
    return 0;
}

/* The reference: is data a valid snapshot? Fills ref with its instances and *time_ms. */
static bool reference_valid(const uint8_t *data, size_t size, struct seen *ref, uint64_t *time_ms)
{
    if (size < JOURNAL_HEADER_LEN ||
        journal_header_check(data, JOURNAL_HEADER_LEN, "DNSDSNAP", "input", NULL, 0) != 0)
        return false;
    size_t off = JOURNAL_HEADER_LEN;
    while (off < size) {
        struct journal_record rec;
        size_t used;
        if (journal_decode(data + off, size - off, &rec, &used) != 0)
            return false;
        off += used;
        if (rec.type == JOURNAL_SNAPSHOT_INSTANCE) {
            on_instance(ref, &rec.put);
            journal_record_clear(&rec);
            continue;
        }
        bool ok = rec.type == JOURNAL_SNAPSHOT_END && rec.end_count == ref->count && off == size;
        *time_ms = rec.time_ms;
        journal_record_clear(&rec);
        return ok;
    }
    return false; /* no END record */
}

/* Replays ref's instances into snapshot_write. */
struct producer {
    const uint8_t *bytes;
    const size_t *ends;
    uint64_t n, next;
    struct journal_record cur; /* owns the instance handed out last */
};

static int next_instance(void *user, struct journal_instance *out)
{
    struct producer *p = user;
    journal_record_clear(&p->cur);
    if (p->next == p->n)
        return 0;
    size_t start = p->next ? p->ends[p->next - 1] : 0;
    size_t used;
    fuzz_check(journal_decode(p->bytes + start, p->ends[p->next] - start, &p->cur, &used) == 0,
               "canonical instance bytes decode");
    *out = p->cur.put;
    p->next++;
    return 1;
}

static void run_input(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fuzz_check(fd >= 0 && write(fd, data, size) == (ssize_t)size && close(fd) == 0,
               "the input is written");

    struct seen ref, got;
    memset(&ref, 0, sizeof(ref));
    memset(&got, 0, sizeof(got));
    uint64_t time_ms = 0;
    bool valid = reference_valid(data, size, &ref, &time_ms);

    struct snapshot_read_report r;
    int rc = snapshot_read(path, on_instance, &got, &r);
    fuzz_check(rc != DNSD_ENOMEM, "no allocation fails here");
    fuzz_check(r.file_size == size && r.count == got.count, "the report counts what was delivered");
    fuzz_check(memchr(r.message, '\0', sizeof(r.message)) != NULL, "the message is terminated");
    fuzz_check((rc == 0) == valid, "snapshot_read accepts exactly the valid snapshots");
    fuzz_check(rc == 0 ? r.message[0] == '\0' : r.message[0] != '\0',
               "a message comes with every failure and only then");
    if (rc != 0)
        fuzz_check(rc == JOURNAL_EBADMAGIC || rc == JOURNAL_EVERSION || rc == JOURNAL_ETRUNCATED ||
                       rc == JOURNAL_EBADLEN || rc == JOURNAL_EBADCRC || rc == JOURNAL_EBADTYPE ||
                       rc == JOURNAL_EMALFORMED,
                   "a failure is one of the documented codes");
    /* The callback sees the instances before any damage, as the reference did. */
    fuzz_check(got.count == ref.count, "the instances before any damage are delivered");
    fuzz_check(
        got.bytes.len == ref.bytes.len &&
            (got.bytes.len == 0 || memcmp(got.bytes.data, ref.bytes.data, got.bytes.len) == 0),
        "the instances delivered are the file's instances");

    if (valid && ref.count <= MAX_COMPARED) {
        fuzz_check(r.time_ms == time_ms && r.count == ref.count, "the END record is reported");
        /* Writing the instances back gives a snapshot that reads the same. */
        struct producer p = {.bytes = ref.bytes.data, .ends = ref.ends, .n = ref.count};
        uint64_t written = 0;
        fuzz_check(snapshot_write(dir, 2, time_ms, next_instance, &p, &written) == 0 &&
                       written == ref.count,
                   "the instances read can be written again");
        journal_record_clear(&p.cur);
        struct seen again;
        memset(&again, 0, sizeof(again));
        struct snapshot_read_report r2;
        fuzz_check(snapshot_read(path2, on_instance, &again, &r2) == 0 && r2.count == ref.count &&
                       r2.time_ms == time_ms && again.bytes.len == ref.bytes.len &&
                       (ref.bytes.len == 0 ||
                        memcmp(again.bytes.data, ref.bytes.data, ref.bytes.len) == 0),
                   "a written snapshot reads back the same instances");
        journal_buf_clear(&again.bytes);
        unlink(path2);
    }
    journal_buf_clear(&ref.bytes);
    journal_buf_clear(&got.bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run_with_fixed_crcs(data, size, run_input);
    return 0;
}
