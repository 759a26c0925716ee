/* SPDX-License-Identifier: BSD-2-Clause
 * Snapshot files: the whole registry at one moment, written atomically (temporary file,
 * fsync, rename, directory fsync) and read back with every record checked. Same framing and
 * instance encoding as the journal (see journal.h): header with magic "DNSDSNAP", one
 * SNAPSHOT_INSTANCE record per instance, then one SNAPSHOT_END record holding the count;
 * nothing may follow it. No libuv, no clock, no logging. */
#pragma once

#include <stdint.h>

#include "journal.h"

/* Produce the next instance into *out (zeroed by the caller before each call); its pointers
 * stay borrowed until the next call.
 * Returns: 1 when *out holds an instance, 0 at the end, or a negative code that stops the
 * write and is returned from it. */
typedef int snapshot_next_cb(void *user, struct journal_instance *out);

/* Called for each instance read, in file order; inst and its strings are borrowed for the
 * call.
 * Returns: 0 to go on, or a negative code that stops the read and is returned from it. */
typedef int snapshot_instance_cb(void *user, const struct journal_instance *inst);

/* What snapshot_read() found. Filled on every return (it explains errors too). */
struct snapshot_read_report {
    uint64_t count;                    /* instances delivered to the callback */
    uint64_t time_ms;                  /* the snapshot's wall-clock time (from its END record) */
    uint64_t file_size;                /* bytes */
    char message[JOURNAL_MESSAGE_MAX]; /* names the file and any damage's offset; "" if ok */
};

/* Write snapshot-GEN.snap in dir from the instances next produces, stamped time_ms: the
 * data goes to snapshot-GEN.snap.tmp, which is fsynced, renamed over the final name (an
 * older file of the same generation is replaced), and the directory fsynced. On failure no
 * file of this generation is left behind (an existing one stays untouched).
 * Returns: 0; the code of journal_encode_record() for a bad instance; next's code;
 * DNSD_ERANGE (path too long); DNSD_ENOMEM; another -errno (-ENOSPC, -EIO, ...).
 * *count (may be NULL) is the number of instances written, on success. */
int snapshot_write(const char *dir, uint64_t generation, uint64_t time_ms, snapshot_next_cb *next,
                   void *user, uint64_t *count);

/* Append inst to records as one snapshot instance record stamped time_ms, ready for
 * snapshot_write_encoded(); lets a caller copy a registry quickly on one thread and write it
 * on another.
 * Returns: 0; the code of journal_encode_record() (records is as it was). */
int snapshot_encode_instance(struct journal_buf *records, uint64_t time_ms,
                             const struct journal_instance *inst);

/* Write snapshot-GEN.snap in dir, stamped time_ms, from count instance records already
 * encoded by snapshot_encode_instance(); atomic as snapshot_write(). Any thread: it touches
 * nothing but its arguments and the files.
 * Returns: 0; DNSD_ERANGE (path too long); DNSD_ENOMEM; another -errno (-ENOSPC, -EIO,
 * -EISDIR, ...). On failure no file of this generation is left behind. */
int snapshot_write_encoded(const char *dir, uint64_t generation, uint64_t time_ms,
                           const uint8_t *records, size_t len, uint64_t count);

/* Read the snapshot at path, calling cb for each instance; the magic, the version, every
 * record's CRC and fields, and the count in the END record are checked. The callback has
 * already seen the instances before a damaged record when an error is returned.
 * Returns: 0; DNSD_ENOENT; JOURNAL_EBADMAGIC; JOURNAL_EVERSION; JOURNAL_ETRUNCATED (the
 * file ends before its END record); JOURNAL_EBADLEN, JOURNAL_EBADCRC; JOURNAL_EBADTYPE (a
 * journal record type here); JOURNAL_EMALFORMED (bad fields, a wrong count, or bytes after
 * END); DNSD_ENOMEM; cb's code; another -errno. */
int snapshot_read(const char *path, snapshot_instance_cb *cb, void *user,
                  struct snapshot_read_report *report);

/* The highest generation of a snapshot-GEN.snap file in dir (temporary files ignored).
 * Returns: 0; DNSD_ENOENT (no snapshot, or no dir); another -errno. */
int snapshot_find_latest(const char *dir, uint64_t *generation);
