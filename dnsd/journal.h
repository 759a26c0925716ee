/* SPDX-License-Identifier: BSD-2-Clause
 * The journal: the record codec (framing, CRC32C, big-endian fields) and the append-only
 * journal file of registry changes in the data directory. It owns its own plain record
 * structs so it never depends on the registry's internals; the daemon translates. No libuv,
 * no clock (every timestamp is the caller's wall-clock ms), no logging: it returns codes and
 * fills reports, and the caller logs them.
 *
 * Files in the data directory (GEN = generation, 16 lower-case hex digits):
 *   journal-GEN.log    this header, then records, appended in order
 *   snapshot-GEN.snap  the whole registry at one moment (see snapshot.h)
 * Header (16 bytes): magic "DNSDJRNL" (or "DNSDSNAP"), u32 format version (= 1), u32 flags
 * (= 0; non-zero flags are refused like an unknown version).
 * Record: [u32 payload length][u32 CRC32C of the payload][payload]; the payload is
 * [u8 type][u64 wall-clock ms][type-specific fields]. Integers are big-endian; a string is a
 * u16 length + bytes (no NUL; no NUL inside); an optional string encodes NULL as length 0.
 *   PUT (1), snapshot INSTANCE (16): the full instance (struct journal_instance):
 *     str service, str id, u8 n_addrs (1..16) x (u8 family 4|6, 16 bytes), u16 port,
 *     u8 proto (0 tcp, 1 udp), u16 priority, u16 weight, u8 n_tags (0..32) x str,
 *     u8 n_meta (0..64) x (str key, str value), u32 ttl_s, u64 lease deadline (absolute wall
 *     ms), u64 registered wall ms, u64 last heartbeat wall ms, u8 check kind (0 none, 1 tcp,
 *     2 http) and, unless none: str target, u32 interval_ms, u32 timeout_ms,
 *     u16 success_before_passing, u16 failures_before_critical; then u64 deregister_after_ms,
 *     u8 reported status (0 passing, 1 warning, 2 critical), opt str note, u8 maintenance
 *     (0|1), opt str maintenance reason.
 *   REMOVE (2): str service, str id.
 *   HEARTBEAT (3): str service, str id, u64 new lease deadline (absolute wall ms),
 *     u8 reported status, opt str note.
 *   MAINTENANCE (4): str service, str id, u8 enabled (0|1), opt str reason.
 *   snapshot END (17): u64 number of INSTANCE records before it.
 * Nothing may follow the last field of a payload. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOURNAL_FORMAT_VERSION 1u
#define JOURNAL_HEADER_LEN 16
/* Record framing: u32 length + u32 CRC32C. */
#define JOURNAL_FRAME_LEN 8
/* Shortest payload: the type byte and the timestamp. */
#define JOURNAL_MIN_PAYLOAD 9
/* Longest payload accepted; a larger length field is damage, not a record. */
#define JOURNAL_MAX_PAYLOAD (1u << 20)
#define JOURNAL_MAX_STRING 65535
#define JOURNAL_MAX_ADDRS 16
#define JOURNAL_MAX_TAGS 32
#define JOURNAL_MAX_META 64
/* Mode of journal and snapshot files: registrations may carry private metadata, so only
 * dnsd's user writes them and its group (backups) reads them, like the 0750 directory. */
#define JOURNAL_FILE_MODE 0640
/* Room for a file name in the data directory plus the directory itself. */
#define JOURNAL_PATH_MAX 4096
/* Room for a report's message: two paths and some words. */
#define JOURNAL_MESSAGE_MAX (2 * JOURNAL_PATH_MAX + 256)

/* Codes beyond include/dnsd/error.h that name what is wrong with a record or a file;
 * journal_strerror() describes them (and every DNSD_E* code). */
enum journal_err {
    JOURNAL_ETRUNCATED = -1100, /* the buffer or file ends inside a record */
    JOURNAL_EBADLEN = -1101,    /* payload length below the minimum or above the maximum */
    JOURNAL_EBADCRC = -1102,    /* the payload does not match its CRC32C */
    JOURNAL_EBADTYPE = -1103,   /* unknown record type, or one that does not belong here */
    JOURNAL_EMALFORMED = -1104, /* a field is out of range or the payload has extra bytes */
    JOURNAL_EBADMAGIC = -1105,  /* the file does not start with the expected magic */
    JOURNAL_EVERSION = -1106,   /* unknown format version or flags: refused, never misread */
    JOURNAL_ECORRUPT = -1107,   /* a damaged record followed by valid ones (mid-file) */
};

enum journal_type {
    JOURNAL_PUT = 1,
    JOURNAL_REMOVE = 2,
    JOURNAL_HEARTBEAT = 3,
    JOURNAL_MAINTENANCE = 4,
    JOURNAL_SNAPSHOT_INSTANCE = 16, /* only in snapshot files */
    JOURNAL_SNAPSHOT_END = 17,      /* only in snapshot files, last */
};

/* Same values as enum registry_proto. */
enum journal_proto {
    JOURNAL_PROTO_TCP = 0,
    JOURNAL_PROTO_UDP = 1,
};

/* Reported (heartbeat) status; same values as the first three of enum registry_health. */
enum journal_status {
    JOURNAL_STATUS_PASSING = 0,
    JOURNAL_STATUS_WARNING = 1,
    JOURNAL_STATUS_CRITICAL = 2,
};

/* Same values as enum registry_check_kind. */
enum journal_check_kind {
    JOURNAL_CHECK_NONE = 0,
    JOURNAL_CHECK_TCP = 1,
    JOURNAL_CHECK_HTTP = 2,
};

struct journal_addr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t bytes[16]; /* network order; the first 4 for AF_INET, the rest zero */
};

struct journal_meta {
    const char *key;   /* see struct journal_instance on ownership */
    const char *value; /* may be "" */
};

/* An instance's persistent state. Pointers are borrowed from the caller when encoding, and
 * point into journal_record.storage after decoding. Times are wall-clock ms. */
struct journal_instance {
    const char *service; /* non-empty */
    const char *id;      /* non-empty */
    struct journal_addr addrs[JOURNAL_MAX_ADDRS];
    size_t n_addrs; /* 1..JOURNAL_MAX_ADDRS */
    uint16_t port;
    enum journal_proto proto;
    uint16_t priority;
    uint16_t weight;
    const char **tags; /* n_tags non-empty strings; may be NULL when n_tags is 0 */
    size_t n_tags;
    const struct journal_meta *meta; /* n_meta entries, keys non-empty; NULL when 0 */
    size_t n_meta;
    uint32_t ttl_s;               /* lease length */
    uint64_t lease_deadline_ms;   /* absolute wall-clock lease deadline */
    uint64_t registered_ms;       /* first registration */
    uint64_t heartbeat_ms;        /* last registration or heartbeat */
    enum journal_check_kind kind; /* active check; NONE: the check fields are ignored */
    const char *check_target;     /* non-empty unless kind is NONE */
    uint32_t check_interval_ms;
    uint32_t check_timeout_ms;
    uint16_t check_success_before_passing;
    uint16_t check_failures_before_critical;
    uint64_t deregister_after_ms; /* 0 = never */
    enum journal_status reported; /* last heartbeat status */
    const char *note;             /* last heartbeat note; NULL (or "", stored as NULL) */
    bool maintenance;
    const char *maintenance_reason; /* NULL (or "", stored as NULL) */
};

struct journal_remove {
    const char *service;
    const char *id;
};

/* A heartbeat; the record's time_ms is when it came (the instance's new heartbeat_ms). */
struct journal_heartbeat {
    const char *service;
    const char *id;
    uint64_t lease_deadline_ms; /* new absolute wall-clock deadline */
    enum journal_status status;
    const char *note; /* NULL (or "", stored as NULL) */
};

struct journal_maintenance {
    const char *service;
    const char *id;
    bool enabled;
    const char *reason; /* NULL (or "", stored as NULL) */
};

/* One record. The member of the union matching type is valid. */
struct journal_record {
    enum journal_type type;
    uint64_t time_ms; /* wall-clock ms when the change was made */
    union {
        struct journal_instance put; /* PUT and SNAPSHOT_INSTANCE */
        struct journal_remove remove;
        struct journal_heartbeat heartbeat;
        struct journal_maintenance maintenance;
        uint64_t end_count; /* SNAPSHOT_END */
    };
    void *storage; /* owned: strings and arrays of a decoded record; NULL when the caller
                      built the record */
};

/* A growable byte buffer for encoded records. */
struct journal_buf {
    uint8_t *data; /* owned */
    size_t len;
    size_t cap;
};

/* Called for each record replayed or read, in file order; offset is where its frame starts.
 * rec and everything it points to are borrowed for the call.
 * Returns: 0 to go on, or a negative code that stops the replay and is returned from it. */
typedef int journal_record_cb(void *user, const struct journal_record *rec, uint64_t offset);

struct journal;

/* What journal_replay() does with damage. */
enum journal_repair {
    JOURNAL_TRUNCATE_TAIL = 0, /* cut a torn tail away; refuse mid-file damage (default) */
    JOURNAL_REPAIR = 1,        /* also keep the valid prefix before mid-file damage */
    JOURNAL_READ_ONLY = 2,     /* report everything, change nothing */
};

/* What journal_replay() found and did. Filled on every return (it explains errors too). */
struct journal_replay_report {
    uint64_t records;      /* records delivered to the callback */
    uint64_t valid_end;    /* offset just past the last valid record (or past the header) */
    uint64_t file_size;    /* size before any change */
    uint64_t last_time_ms; /* timestamp of the last record delivered; 0 when none */
    bool truncated;        /* a torn or corrupt tail was found at truncated_at */
    uint64_t truncated_at; /* (also set with JOURNAL_READ_ONLY, where nothing is cut) */
    int tail_error;        /* why the tail record did not decode */
    bool corrupt;          /* mid-file damage at corrupt_offset, valid records after it */
    uint64_t corrupt_offset;
    uint64_t resume_offset; /* first valid record after the damage */
    int corrupt_error;      /* why the record at corrupt_offset did not decode */
    bool repaired;          /* JOURNAL_REPAIR: file moved to damaged_path, prefix kept */
    char damaged_path[JOURNAL_PATH_MAX];
    char message[JOURNAL_MESSAGE_MAX]; /* one line naming the file; "" when all was well */
};

/* ---- codec (pure; any thread) ---- */

/* CRC32C (Castagnoli, reflected, as in RFC 3720 B.4); crc is 0 to start, or the result of
 * the previous call to continue over more data.
 * Returns: the CRC of everything so far. */
uint32_t journal_crc32c(uint32_t crc, const void *data, size_t len);

/* Describe a JOURNAL_E* code or any DNSD_E* code.
 * Returns: a static string; never NULL. */
const char *journal_strerror(int err);

/* Empty buffer; no allocation. */
void journal_buf_init(struct journal_buf *buf);

/* Free the buffer's bytes and leave it empty. */
void journal_buf_clear(struct journal_buf *buf);

/* Append rec, framed, to buf.
 * Returns: 0; DNSD_EINVAL (a NULL or empty required string, a count, family or enum out
 * of range, a check without target, an unknown type); DNSD_ERANGE (a string over JOURNAL_MAX_STRING
 * bytes or a payload over JOURNAL_MAX_PAYLOAD); DNSD_ENOMEM. On failure buf is as it was.
 * Ownership: copies rec; the caller keeps it. */
int journal_encode_record(struct journal_buf *buf, const struct journal_record *rec);

/* Decode the record whose frame starts at buf[0]; *consumed is its framed size.
 * Returns: 0; JOURNAL_ETRUNCATED (len ends inside the frame); JOURNAL_EBADLEN;
 * JOURNAL_EBADCRC; JOURNAL_EBADTYPE (type not in enum journal_type); JOURNAL_EMALFORMED
 * (a field out of range, a string running past the payload or holding a NUL, or bytes
 * left over); DNSD_ENOMEM. out and *consumed are written only on success.
 * Ownership: out->storage is allocated; release it with journal_record_clear(). */
int journal_decode(const uint8_t *buf, size_t len, struct journal_record *out, size_t *consumed);

/* Check the record at buf[0] as journal_decode() would, without allocating.
 * Returns: as journal_decode() except DNSD_ENOMEM; *consumed written on success. */
int journal_validate(const uint8_t *buf, size_t len, size_t *consumed);

/* Free a decoded record's storage and zero it. */
void journal_record_clear(struct journal_record *rec);

/* ---- file names (pure) ---- */

/* Write "DIR/journal-GEN.log" (or "DIR/snapshot-GEN.snap" with snapshot set) into out.
 * Returns: 0, DNSD_ERANGE (does not fit in n bytes). */
int journal_file_path(char *out, size_t n, const char *dir, uint64_t generation, bool snapshot);

/* Parse a file name (no directory) of the form PREFIX-GEN.SUFFIX with exactly 16 hex
 * digits. Returns: true and *generation when name matches. */
bool journal_name_parse(const char *name, const char *prefix, const char *suffix,
                        uint64_t *generation);

/* Write the 16-byte header with magic (8 bytes) into out. */
void journal_header_build(uint8_t out[JOURNAL_HEADER_LEN], const char *magic);

/* Check a header read from path (for the message) against magic. len may be short.
 * Returns: 0; JOURNAL_ETRUNCATED (len < JOURNAL_HEADER_LEN but what is there matches);
 * JOURNAL_EBADMAGIC; JOURNAL_EVERSION (message names the version or flags). message
 * (msg_len bytes, may be NULL) gets a line naming path on failure. */
int journal_header_check(const uint8_t *hdr, size_t len, const char *magic, const char *path,
                         char *message, size_t msg_len);

/* ---- journal file (blocking I/O; the thread that owns the journal) ---- */

enum journal_open_mode {
    JOURNAL_OPEN_CREATE, /* a new file (must not exist): header written and synced */
    JOURNAL_OPEN_APPEND, /* an existing file, after journal_replay(); an empty one gets the
                            header */
};

/* Open journal-GEN.log in dir for appending.
 * Returns: 0; DNSD_EEXIST (CREATE, file exists); DNSD_ENOENT (APPEND, no file);
 * JOURNAL_EBADMAGIC, JOURNAL_EVERSION, JOURNAL_ETRUNCATED (APPEND: bad or torn header; replay
 * first); DNSD_ERANGE (path too long); DNSD_ENOMEM; another -errno. *out only on success.
 * Ownership: *out is the caller's; release with journal_close(). */
int journal_open(const char *dir, uint64_t generation, enum journal_open_mode mode,
                 struct journal **out);

/* Close the file; records appended but not flushed are lost. journal_close(NULL) does
 * nothing. */
void journal_close(struct journal *j);

/* The journal's generation. */
uint64_t journal_generation(const struct journal *j);

/* Bytes in the file (written, not necessarily synced), header included. */
uint64_t journal_size(const struct journal *j);

/* Bytes appended but not yet written. */
size_t journal_pending(const struct journal *j);

/* The error that made the journal unusable (see journal_sync), or 0. */
int journal_failed(const struct journal *j);

/* Encode rec into the journal's memory buffer; nothing is written yet.
 * Returns: as journal_encode_record(), or journal_failed(j). */
int journal_append(struct journal *j, const struct journal_record *rec);

/* Write the buffered records (no fsync). On a write error (ENOSPC, EFBIG, EIO) the file is
 * cut back to the last complete write and the buffer is kept, so a later call retries.
 * Returns: 0 or -errno; journal_failed(j) when the journal is unusable. */
int journal_flush(struct journal *j);

/* journal_flush(), then fdatasync: on 0 every appended record is on disk. A failed
 * fdatasync (or a failed cut-back) makes the journal unusable for good, because the kernel
 * may have dropped the unwritten pages: every later call returns that error; the daemon
 * recovers by writing a snapshot and starting the next generation.
 * Returns: 0 or -errno (-ENOSPC, -EIO, ...), the API's cue to answer 503. */
int journal_sync(struct journal *j);

/* ---- recovery and compaction (blocking I/O; start-up or the owning thread) ---- */

/* Read every valid record of the journal file at path, in order, calling cb for each.
 * A damaged record with no valid record anywhere after it (a torn tail) is cut away
 * (ftruncate + fsync) unless repair is JOURNAL_READ_ONLY; report says where. A damaged
 * record followed by a valid one is refused, unless repair is JOURNAL_REPAIR: then the
 * damaged file is moved to PATH.damaged-N (lowest free N >= 1) and a fresh file holding the
 * valid prefix takes its place (written, synced, renamed, directory synced). The callback
 * has already seen the prefix records when mid-file damage is refused.
 * Returns: 0; JOURNAL_ECORRUPT (mid-file damage, report.corrupt_offset); JOURNAL_EBADMAGIC;
 * JOURNAL_EVERSION; DNSD_ENOENT; DNSD_ENOMEM; the callback's code; another -errno.
 * report is filled on every return, its message naming the file. */
int journal_replay(const char *path, journal_record_cb *cb, void *user, enum journal_repair repair,
                   struct journal_replay_report *report);

/* The generations >= min_generation of the journal files in dir, ascending.
 * Returns: 0; DNSD_ENOENT (no dir); DNSD_ENOMEM; another -errno.
 * Ownership: *gens is malloc'd (NULL when *n is 0); the caller frees it. */
int journal_list(const char *dir, uint64_t min_generation, uint64_t **gens, size_t *n);

/* Delete journal-G.log, snapshot-G.snap and snapshot-G.snap.tmp for every G < generation,
 * then sync dir. Damaged files moved aside are kept for the operator.
 * Returns: 0; another -errno (the first failure; the other files are still tried).
 * *removed (may be NULL) is the number of files deleted. */
int journal_remove_older_than(const char *dir, uint64_t generation, size_t *removed);

/* fsync a directory so renames and new or deleted names in it are durable.
 * Returns: 0 or -errno. */
int journal_fsync_dir(const char *dir);
