/* SPDX-License-Identifier: BSD-2-Clause
 * Fuzz target: the journal reader. The input is a journal file. The record codec is walked
 * over it in memory (journal_validate and journal_decode must agree, and every decoded
 * record must encode back to exactly its bytes), then the input is written as
 * journal-GEN.log in a temporary directory and replayed read-only, cut at a torn tail, and
 * repaired after mid-file damage; all once more with every record CRC recomputed
 * (fuzz_records.h). Aborts unless each replay's report matches what the callback saw and a
 * cut or repaired file replays cleanly with the same records. */
#include "fuzz.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsd/error.h"
#include "fuzz_records.h"
#include "journal.h"

static char dir[64];
static char path[128];

/* The input being replayed, for the callback's byte comparison. */
static const uint8_t *cur_data;
static size_t cur_size;

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_temp_dir(dir, sizeof(dir));
    fuzz_check(journal_file_path(path, sizeof(path), dir, 1, false) == 0, "path fits");
    atexit(remove_dir);
    return 0;
}

/* rec must encode back to exactly the len bytes at bytes: one record, one encoding. */
static void check_reencodes(const struct journal_record *rec, const uint8_t *bytes, size_t len)
{
    struct journal_buf buf;
    journal_buf_init(&buf);
    fuzz_check(journal_encode_record(&buf, rec) == 0, "a decoded record encodes");
    fuzz_check(buf.len == len && memcmp(buf.data, bytes, len) == 0,
               "a decoded record encodes to its own bytes");
    journal_buf_clear(&buf);
}

/* Walk records from start until one does not decode. Returns: records decoded. */
static size_t walk(const uint8_t *data, size_t size, size_t start)
{
    size_t off = start;
    size_t n = 0;
    while (off < size) {
        size_t v_used = 0, d_used = 0;
        struct journal_record rec;
        int v = journal_validate(data + off, size - off, &v_used);
        int d = journal_decode(data + off, size - off, &rec, &d_used);
        if (d == DNSD_ENOMEM)
            return n;
        fuzz_check(v == d, "journal_validate and journal_decode agree");
        if (d)
            break;
        fuzz_check(v_used == d_used && d_used >= JOURNAL_FRAME_LEN + JOURNAL_MIN_PAYLOAD &&
                       d_used <= size - off,
                   "consumed is one whole frame inside the buffer");
        fuzz_check(rec.storage != NULL, "a decoded record owns its storage");
        check_reencodes(&rec, data + off, d_used);
        journal_record_clear(&rec);
        off += d_used;
        n++;
    }
    return n;
}

struct seen {
    uint64_t records;
    uint64_t next_offset; /* where the next record must start */
};

static int on_record(void *user, const struct journal_record *rec, uint64_t offset)
{
    struct seen *s = user;
    fuzz_check(offset == s->next_offset, "records are delivered in file order without gaps");
    fuzz_check(rec->type >= JOURNAL_PUT && rec->type <= JOURNAL_MAINTENANCE,
               "only journal record types are delivered");
    struct journal_buf buf;
    journal_buf_init(&buf);
    fuzz_check(journal_encode_record(&buf, rec) == 0, "a replayed record encodes");
    /* The file is the input, or (cut or repaired) a prefix of it. */
    fuzz_check(offset + buf.len <= cur_size && memcmp(buf.data, cur_data + offset, buf.len) == 0,
               "a replayed record is the file's bytes at its offset");
    s->next_offset = offset + buf.len;
    journal_buf_clear(&buf);
    s->records++;
    return 0;
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    fuzz_check(stat(p, &st) == 0, "the journal file exists");
    return (uint64_t)st.st_size;
}

/* Replay the file, checking the report against what the callback saw. Returns: the code. */
static int replay(enum journal_repair mode, struct journal_replay_report *r, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    s->next_offset = JOURNAL_HEADER_LEN;
    uint64_t before = file_size(path);
    int rc = journal_replay(path, on_record, s, mode, r);
    fuzz_check(rc != DNSD_ENOMEM, "no allocation fails here");
    fuzz_check(r->records == s->records, "the report counts the records delivered");
    fuzz_check(r->file_size == before, "the report gives the file's size");
    fuzz_check(r->valid_end <= r->file_size, "valid_end lies inside the file");
    fuzz_check(r->records == 0 || r->valid_end == s->next_offset,
               "valid_end follows the last record");
    fuzz_check(memchr(r->message, '\0', sizeof(r->message)) != NULL, "the message is terminated");
    if (rc == 0) {
        fuzz_check(!r->corrupt || r->repaired, "mid-file damage is refused unless repaired");
        if (r->truncated)
            fuzz_check(r->truncated_at == r->valid_end && r->message[0], "a torn tail is reported");
        else if (!r->corrupt)
            fuzz_check(r->valid_end == r->file_size, "a clean replay reads the whole file");
    } else if (rc == JOURNAL_ECORRUPT) {
        fuzz_check(r->corrupt && r->corrupt_offset == r->valid_end &&
                       r->resume_offset > r->corrupt_offset && r->resume_offset < r->file_size,
                   "mid-file damage names where it is and where valid records resume");
    } else {
        fuzz_check(rc == JOURNAL_EBADMAGIC || rc == JOURNAL_EVERSION,
                   "a replay fails only for damage, a bad magic or a bad version");
        fuzz_check(r->records == 0 && r->message[0],
                   "a refused file delivers nothing, with a message");
    }
    if (mode == JOURNAL_READ_ONLY)
        fuzz_check(file_size(path) == before, "a read-only replay changes nothing");
    return rc;
}

static void run_input(const uint8_t *data, size_t size)
{
    /* The codec alone, after the header when there is one, else from the first byte. */
    bool has_header =
        journal_header_check(data, size < JOURNAL_HEADER_LEN ? size : JOURNAL_HEADER_LEN,
                             "DNSDJRNL", "input", NULL, 0) == 0;
    walk(data, size, has_header ? JOURNAL_HEADER_LEN : 0);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fuzz_check(fd >= 0 && write(fd, data, size) == (ssize_t)size && close(fd) == 0,
               "the input is written");
    cur_data = data;
    cur_size = size;

    struct journal_replay_report r1, r2, r3;
    struct seen s1, s2, s3;
    int rc = replay(JOURNAL_READ_ONLY, &r1, &s1);
    if (rc == 0 && r1.truncated) {
        /* Cutting the torn tail keeps every record, and the cut file is clean. */
        fuzz_check(replay(JOURNAL_TRUNCATE_TAIL, &r2, &s2) == 0 && r2.records == r1.records,
                   "cutting a torn tail keeps the records before it");
        fuzz_check(file_size(path) == r1.truncated_at, "the file is cut where the tail tore");
        fuzz_check(replay(JOURNAL_READ_ONLY, &r3, &s3) == 0 && !r3.truncated &&
                       r3.records == r1.records,
                   "a cut journal replays cleanly");
    } else if (rc == JOURNAL_ECORRUPT) {
        fuzz_check(replay(JOURNAL_TRUNCATE_TAIL, &r2, &s2) == JOURNAL_ECORRUPT &&
                       file_size(path) == size,
                   "mid-file damage is refused and left alone by default");
        fuzz_check(replay(JOURNAL_REPAIR, &r2, &s2) == 0 && r2.repaired && r2.records == r1.records,
                   "repair keeps the valid prefix");
        fuzz_check(file_size(r2.damaged_path) == size, "the damaged file is kept whole");
        fuzz_check(file_size(path) == r1.valid_end, "the repaired journal is the valid prefix");
        fuzz_check(replay(JOURNAL_READ_ONLY, &r3, &s3) == 0 && !r3.truncated && !r3.corrupt &&
                       r3.records == r1.records,
                   "a repaired journal replays cleanly");
        unlink(r2.damaged_path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run_with_fixed_crcs(data, size, run_input);
    return 0;
}
