/* SPDX-License-Identifier: BSD-2-Clause
 * Snapshot files: atomic write (tmp + fsync + rename + directory fsync) and checked read,
 * using the journal's record codec. */
#include "snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsd/error.h"

#define SNAPSHOT_MAGIC "DNSDSNAP"
/* Encoded records are written out whenever this much has gathered. */
#define SNAPSHOT_WRITE_CHUNK (1u << 20)

/* Write all of data, retrying short writes and EINTR. */
static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Append the END record to buf, write buf out, fsync and close fd (always), rename tmp over
 * path and fsync dir. The caller unlinks tmp on failure. */
static int finish(int fd, struct journal_buf *buf, uint64_t time_ms, uint64_t count,
                  const char *tmp, const char *path, const char *dir)
{
    struct journal_record end;
    memset(&end, 0, sizeof(end));
    end.type = JOURNAL_SNAPSHOT_END;
    end.time_ms = time_ms;
    end.end_count = count;
    int rc = journal_encode_record(buf, &end);
    if (rc == 0)
        rc = write_all(fd, buf->data, buf->len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc)
        return rc;
    if (rename(tmp, path) != 0)
        return -errno;
    return journal_fsync_dir(dir);
}

int snapshot_write(const char *dir, uint64_t generation, uint64_t time_ms, snapshot_next_cb *next,
                   void *user, uint64_t *count)
{
    char path[JOURNAL_PATH_MAX];
    char tmp[JOURNAL_PATH_MAX + 8];
    int rc = journal_file_path(path, sizeof(path), dir, generation, true);
    if (rc)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, JOURNAL_FILE_MODE);
    if (fd < 0)
        return -errno;
    struct journal_buf buf;
    journal_buf_init(&buf);
    uint64_t n = 0;
    uint8_t hdr[JOURNAL_HEADER_LEN];
    journal_header_build(hdr, SNAPSHOT_MAGIC);
    rc = write_all(fd, hdr, sizeof(hdr));
    if (rc)
        goto fail;
    for (;;) {
        struct journal_record rec;
        memset(&rec, 0, sizeof(rec));
        rec.type = JOURNAL_SNAPSHOT_INSTANCE;
        rec.time_ms = time_ms;
        rc = next(user, &rec.put);
        if (rc < 0)
            goto fail;
        if (rc == 0)
            break;
        rc = journal_encode_record(&buf, &rec);
        if (rc)
            goto fail;
        n++;
        if (buf.len >= SNAPSHOT_WRITE_CHUNK) {
            rc = write_all(fd, buf.data, buf.len);
            if (rc)
                goto fail;
            buf.len = 0;
        }
    }
    rc = finish(fd, &buf, time_ms, n, tmp, path, dir);
    fd = -1;
    if (rc)
        goto fail;
    journal_buf_clear(&buf);
    if (count)
        *count = n;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    journal_buf_clear(&buf);
    return rc;
}

int snapshot_encode_instance(struct journal_buf *records, uint64_t time_ms,
                             const struct journal_instance *inst)
{
    struct journal_record rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = JOURNAL_SNAPSHOT_INSTANCE;
    rec.time_ms = time_ms;
    rec.put = *inst;
    return journal_encode_record(records, &rec);
}

int snapshot_write_encoded(const char *dir, uint64_t generation, uint64_t time_ms,
                           const uint8_t *records, size_t len, uint64_t count)
{
    char path[JOURNAL_PATH_MAX];
    char tmp[JOURNAL_PATH_MAX + 8];
    int rc = journal_file_path(path, sizeof(path), dir, generation, true);
    if (rc)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, JOURNAL_FILE_MODE);
    if (fd < 0)
        return -errno;
    struct journal_buf buf;
    journal_buf_init(&buf);
    uint8_t hdr[JOURNAL_HEADER_LEN];
    journal_header_build(hdr, SNAPSHOT_MAGIC);
    rc = write_all(fd, hdr, sizeof(hdr));
    if (rc == 0)
        rc = write_all(fd, records, len);
    if (rc == 0)
        rc = finish(fd, &buf, time_ms, count, tmp, path, dir);
    else
        close(fd);
    if (rc)
        unlink(tmp);
    journal_buf_clear(&buf);
    return rc;
}

int snapshot_read(const char *path, snapshot_instance_cb *cb, void *user,
                  struct snapshot_read_report *report)
{
    memset(report, 0, sizeof(*report));
    const uint8_t *map = NULL;
    uint64_t size = 0;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(report->message, sizeof(report->message), "%s: %s", path, journal_strerror(rc));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(report->message, sizeof(report->message), "%s: %s", path, journal_strerror(rc));
        goto out;
    }
    size = (uint64_t)st.st_size;
    report->file_size = size;
    if (size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = -errno;
            snprintf(report->message, sizeof(report->message), "%s: %s", path,
                     journal_strerror(rc));
            goto out;
        }
        map = m;
    }
    size_t hlen = size < JOURNAL_HEADER_LEN ? (size_t)size : JOURNAL_HEADER_LEN;
    static const uint8_t none[1];
    rc = journal_header_check(map ? map : none, hlen, SNAPSHOT_MAGIC, path, report->message,
                              sizeof(report->message));
    if (rc == JOURNAL_ETRUNCATED)
        snprintf(report->message, sizeof(report->message),
                 "%s: snapshot ends inside its header (%" PRIu64 " bytes)", path, size);
    if (rc)
        goto out;
    uint64_t off = JOURNAL_HEADER_LEN;
    bool ended = false;
    while (off < size && !ended) {
        struct journal_record rec;
        size_t used;
        rc = journal_decode(map + off, (size_t)(size - off), &rec, &used);
        bool decoded = rc == 0;
        if (rc == 0 && rec.type != JOURNAL_SNAPSHOT_INSTANCE && rec.type != JOURNAL_SNAPSHOT_END)
            rc = JOURNAL_EBADTYPE;
        if (rc == 0 && rec.type == JOURNAL_SNAPSHOT_END) {
            ended = true;
            report->time_ms = rec.time_ms;
            if (rec.end_count != report->count) {
                rc = JOURNAL_EMALFORMED;
                snprintf(report->message, sizeof(report->message),
                         "%s: END record at offset %" PRIu64 " counts %" PRIu64
                         " instances but %" PRIu64 " precede it",
                         path, off, rec.end_count, report->count);
            }
        } else if (rc == 0) {
            rc = cb ? cb(user, &rec.put) : 0;
            if (rc == 0)
                report->count++;
        }
        if (decoded)
            journal_record_clear(&rec);
        if (rc) {
            if (report->message[0] == '\0')
                snprintf(report->message, sizeof(report->message),
                         "%s: damaged snapshot record at offset %" PRIu64 ": %s", path, off,
                         journal_strerror(rc));
            goto out;
        }
        off += used;
    }
    if (!ended) {
        rc = JOURNAL_ETRUNCATED;
        snprintf(report->message, sizeof(report->message),
                 "%s: snapshot ends at offset %" PRIu64 " without its END record", path, off);
    } else if (off != size) {
        rc = JOURNAL_EMALFORMED;
        snprintf(report->message, sizeof(report->message),
                 "%s: %" PRIu64 " unexpected bytes after the END record at offset %" PRIu64, path,
                 size - off, off);
    }
out:
    if (map)
        munmap((void *)map, (size_t)size);
    close(fd);
    return rc;
}

int snapshot_find_latest(const char *dir, uint64_t *generation)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    bool found = false;
    uint64_t best = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        uint64_t gen;
        if (journal_name_parse(ent->d_name, "snapshot", ".snap", &gen) && (!found || gen > best)) {
            best = gen;
            found = true;
        }
    }
    closedir(d);
    if (!found)
        return DNSD_ENOENT;
    *generation = best;
    return 0;
}
