/* SPDX-License-Identifier: BSD-2-Clause
 * The journal record codec (framing, CRC32C, fields) and the append-only journal file:
 * buffered appends, write + fdatasync with cut-back on failure, replay with torn-tail
 * truncation and explicit mid-file repair, and the data directory's file naming. */
#include "journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsd/error.h"

/* ---- CRC32C ---- */

/* Reflected Castagnoli polynomial 0x82F63B78 (RFC 3720 B.4), one entry per byte value. */
static const uint32_t crc32c_table[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
    0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
    0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
    0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
    0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
    0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
    0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
    0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927, 0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
    0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
    0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
    0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
    0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
    0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
    0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
    0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
    0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
    0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
    0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
    0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
    0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
    0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
    0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e, 0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t journal_crc32c(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

const char *journal_strerror(int err)
{
    switch (err) {
    case JOURNAL_ETRUNCATED:
        return "truncated record";
    case JOURNAL_EBADLEN:
        return "bad record length";
    case JOURNAL_EBADCRC:
        return "CRC mismatch";
    case JOURNAL_EBADTYPE:
        return "unknown record type";
    case JOURNAL_EMALFORMED:
        return "malformed record";
    case JOURNAL_EBADMAGIC:
        return "not a dnsd data file (bad magic)";
    case JOURNAL_EVERSION:
        return "unsupported format version";
    case JOURNAL_ECORRUPT:
        return "corrupt record before the end of the journal";
    default:
        return dnsd_strerror(err);
    }
}

/* ---- big-endian helpers ---- */

static void be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void be64_put(uint8_t *p, uint64_t v)
{
    be32_put(p, (uint32_t)(v >> 32));
    be32_put(p + 4, (uint32_t)v);
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- encoding ---- */

void journal_buf_init(struct journal_buf *buf)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void journal_buf_clear(struct journal_buf *buf)
{
    free(buf->data);
    journal_buf_init(buf);
}

/* Make room for n more bytes. */
static int buf_reserve(struct journal_buf *buf, size_t n)
{
    if (buf->cap - buf->len >= n)
        return 0;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap - buf->len < n)
        cap *= 2;
    uint8_t *data = realloc(buf->data, cap);
    if (data == NULL)
        return DNSD_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

/* An encoder: appends to buf; the first failure sticks in err. */
struct enc {
    struct journal_buf *buf;
    int err;
};

static uint8_t *enc_room(struct enc *e, size_t n)
{
    if (e->err)
        return NULL;
    e->err = buf_reserve(e->buf, n);
    if (e->err)
        return NULL;
    uint8_t *p = e->buf->data + e->buf->len;
    e->buf->len += n;
    return p;
}

static void put_u8(struct enc *e, uint8_t v)
{
    uint8_t *p = enc_room(e, 1);
    if (p)
        p[0] = v;
}

static void put_u16(struct enc *e, uint16_t v)
{
    uint8_t *p = enc_room(e, 2);
    if (p)
        be16_put(p, v);
}

static void put_u32(struct enc *e, uint32_t v)
{
    uint8_t *p = enc_room(e, 4);
    if (p)
        be32_put(p, v);
}

static void put_u64(struct enc *e, uint64_t v)
{
    uint8_t *p = enc_room(e, 8);
    if (p)
        be64_put(p, v);
}

/* A string; required ones must be non-NULL and (unless may_be_empty) non-empty; an
 * optional one (optional set) may be NULL and is written as length 0. */
static void put_str(struct enc *e, const char *s, bool optional, bool may_be_empty)
{
    if (e->err)
        return;
    if (s == NULL && !optional) {
        e->err = DNSD_EINVAL;
        return;
    }
    size_t n = s ? strlen(s) : 0;
    if (n == 0 && !optional && !may_be_empty) {
        e->err = DNSD_EINVAL;
        return;
    }
    if (n > JOURNAL_MAX_STRING) {
        e->err = DNSD_ERANGE;
        return;
    }
    put_u16(e, (uint16_t)n);
    uint8_t *p = enc_room(e, n);
    if (p && n)
        memcpy(p, s, n);
}

static bool status_is_valid(enum journal_status s)
{
    return s == JOURNAL_STATUS_PASSING || s == JOURNAL_STATUS_WARNING ||
           s == JOURNAL_STATUS_CRITICAL;
}

static void put_instance(struct enc *e, const struct journal_instance *in)
{
    put_str(e, in->service, false, false);
    put_str(e, in->id, false, false);
    if (in->n_addrs < 1 || in->n_addrs > JOURNAL_MAX_ADDRS || in->n_tags > JOURNAL_MAX_TAGS ||
        in->n_meta > JOURNAL_MAX_META || (in->n_tags && in->tags == NULL) ||
        (in->n_meta && in->meta == NULL) ||
        (in->proto != JOURNAL_PROTO_TCP && in->proto != JOURNAL_PROTO_UDP) ||
        !status_is_valid(in->reported) ||
        (in->kind != JOURNAL_CHECK_NONE && in->kind != JOURNAL_CHECK_TCP &&
         in->kind != JOURNAL_CHECK_HTTP)) {
        if (!e->err)
            e->err = DNSD_EINVAL;
        return;
    }
    put_u8(e, (uint8_t)in->n_addrs);
    for (size_t i = 0; i < in->n_addrs; i++) {
        const struct journal_addr *a = &in->addrs[i];
        if (a->family != AF_INET && a->family != AF_INET6) {
            if (!e->err)
                e->err = DNSD_EINVAL;
            return;
        }
        put_u8(e, a->family == AF_INET ? 4 : 6);
        uint8_t *p = enc_room(e, 16);
        if (p == NULL)
            return;
        /* An IPv4 address uses the first 4 bytes; the rest are written as zero so that equal
         * instances encode to equal bytes. */
        memset(p, 0, 16);
        memcpy(p, a->bytes, a->family == AF_INET ? 4 : 16);
    }
    put_u16(e, in->port);
    put_u8(e, (uint8_t)in->proto);
    put_u16(e, in->priority);
    put_u16(e, in->weight);
    put_u8(e, (uint8_t)in->n_tags);
    for (size_t i = 0; i < in->n_tags; i++)
        put_str(e, in->tags[i], false, false);
    put_u8(e, (uint8_t)in->n_meta);
    for (size_t i = 0; i < in->n_meta; i++) {
        put_str(e, in->meta[i].key, false, false);
        put_str(e, in->meta[i].value, false, true);
    }
    put_u32(e, in->ttl_s);
    put_u64(e, in->lease_deadline_ms);
    put_u64(e, in->registered_ms);
    put_u64(e, in->heartbeat_ms);
    put_u8(e, (uint8_t)in->kind);
    if (in->kind != JOURNAL_CHECK_NONE) {
        put_str(e, in->check_target, false, false);
        put_u32(e, in->check_interval_ms);
        put_u32(e, in->check_timeout_ms);
        put_u16(e, in->check_success_before_passing);
        put_u16(e, in->check_failures_before_critical);
    }
    put_u64(e, in->deregister_after_ms);
    put_u8(e, (uint8_t)in->reported);
    put_str(e, in->note, true, true);
    put_u8(e, in->maintenance ? 1 : 0);
    put_str(e, in->maintenance_reason, true, true);
}

int journal_encode_record(struct journal_buf *buf, const struct journal_record *rec)
{
    size_t start = buf->len;
    struct enc e = {.buf = buf, .err = 0};
    enc_room(&e, JOURNAL_FRAME_LEN);
    put_u8(&e, (uint8_t)rec->type);
    put_u64(&e, rec->time_ms);
    switch (rec->type) {
    case JOURNAL_PUT:
    case JOURNAL_SNAPSHOT_INSTANCE:
        put_instance(&e, &rec->put);
        break;
    case JOURNAL_REMOVE:
        put_str(&e, rec->remove.service, false, false);
        put_str(&e, rec->remove.id, false, false);
        break;
    case JOURNAL_HEARTBEAT:
        put_str(&e, rec->heartbeat.service, false, false);
        put_str(&e, rec->heartbeat.id, false, false);
        put_u64(&e, rec->heartbeat.lease_deadline_ms);
        if (!status_is_valid(rec->heartbeat.status) && !e.err)
            e.err = DNSD_EINVAL;
        put_u8(&e, (uint8_t)rec->heartbeat.status);
        put_str(&e, rec->heartbeat.note, true, true);
        break;
    case JOURNAL_MAINTENANCE:
        put_str(&e, rec->maintenance.service, false, false);
        put_str(&e, rec->maintenance.id, false, false);
        put_u8(&e, rec->maintenance.enabled ? 1 : 0);
        put_str(&e, rec->maintenance.reason, true, true);
        break;
    case JOURNAL_SNAPSHOT_END:
        put_u64(&e, rec->end_count);
        break;
    default:
        e.err = DNSD_EINVAL;
        break;
    }
    size_t payload = buf->len - start - JOURNAL_FRAME_LEN;
    if (!e.err && payload > JOURNAL_MAX_PAYLOAD)
        e.err = DNSD_ERANGE;
    if (e.err) {
        buf->len = start;
        return e.err;
    }
    uint8_t *frame = buf->data + start;
    be32_put(frame, (uint32_t)payload);
    be32_put(frame + 4, journal_crc32c(0, frame + JOURNAL_FRAME_LEN, payload));
    return 0;
}

/* ---- decoding ---- */

/* A decoder over one payload. store is NULL when only validating; otherwise strings are
 * copied (NUL-terminated) to store + str_used and arrays taken from arrays. */
struct dec {
    const uint8_t *p;
    size_t len;
    size_t pos;
    bool bad;
    char *store;
    size_t str_used;
};

static const uint8_t *take(struct dec *d, size_t n)
{
    if (d->bad || d->len - d->pos < n) {
        d->bad = true;
        return NULL;
    }
    const uint8_t *p = d->p + d->pos;
    d->pos += n;
    return p;
}

static uint8_t get_u8(struct dec *d)
{
    const uint8_t *p = take(d, 1);
    return p ? p[0] : 0;
}

static uint16_t get_u16(struct dec *d)
{
    const uint8_t *p = take(d, 2);
    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t get_u32(struct dec *d)
{
    const uint8_t *p = take(d, 4);
    return p ? be32_get(p) : 0;
}

static uint64_t get_u64(struct dec *d)
{
    const uint8_t *p = take(d, 8);
    return p ? (uint64_t)be32_get(p) << 32 | be32_get(p + 4) : 0;
}

static bool get_bool(struct dec *d)
{
    uint8_t v = get_u8(d);
    if (v > 1)
        d->bad = true;
    return v == 1;
}

/* A string, with the same rules as put_str(); NULL for an empty optional one. */
static const char *get_str(struct dec *d, bool optional, bool may_be_empty)
{
    uint16_t n = get_u16(d);
    const uint8_t *p = take(d, n);
    if (p == NULL)
        return NULL;
    if ((n == 0 && !optional && !may_be_empty) || memchr(p, 0, n) != NULL) {
        d->bad = true;
        return NULL;
    }
    if (n == 0 && optional)
        return NULL;
    if (d->store == NULL)
        return "";
    char *s = d->store + d->str_used;
    memcpy(s, p, n);
    s[n] = '\0';
    d->str_used += (size_t)n + 1;
    return s;
}

static enum journal_status get_status(struct dec *d)
{
    uint8_t v = get_u8(d);
    if (v > JOURNAL_STATUS_CRITICAL)
        d->bad = true;
    return (enum journal_status)v;
}

/* Room for the arrays of one instance, placed before the strings in a record's storage. */
#define ARRAYS_SIZE                                                                                \
    (JOURNAL_MAX_TAGS * sizeof(const char *) + JOURNAL_MAX_META * sizeof(struct journal_meta))

static void get_instance(struct dec *d, struct journal_instance *in, void *arrays)
{
    const char **tags = arrays;
    struct journal_meta *meta =
        arrays ? (struct journal_meta *)((char *)arrays + JOURNAL_MAX_TAGS * sizeof(*tags)) : NULL;
    in->service = get_str(d, false, false);
    in->id = get_str(d, false, false);
    in->n_addrs = get_u8(d);
    if (in->n_addrs < 1 || in->n_addrs > JOURNAL_MAX_ADDRS)
        d->bad = true;
    for (size_t i = 0; i < in->n_addrs && !d->bad; i++) {
        uint8_t family = get_u8(d);
        const uint8_t *p = take(d, 16);
        if (p == NULL)
            break;
        /* The unused tail of an IPv4 address must be zero: one instance, one encoding. */
        static const uint8_t zero[12];
        if (family == 4 && memcmp(p + 4, zero, sizeof(zero)) == 0)
            in->addrs[i].family = AF_INET;
        else if (family == 6)
            in->addrs[i].family = AF_INET6;
        else
            d->bad = true;
        memcpy(in->addrs[i].bytes, p, 16);
    }
    in->port = get_u16(d);
    uint8_t proto = get_u8(d);
    if (proto > JOURNAL_PROTO_UDP)
        d->bad = true;
    in->proto = (enum journal_proto)proto;
    in->priority = get_u16(d);
    in->weight = get_u16(d);
    in->n_tags = get_u8(d);
    if (in->n_tags > JOURNAL_MAX_TAGS)
        d->bad = true;
    for (size_t i = 0; i < in->n_tags && !d->bad; i++) {
        const char *tag = get_str(d, false, false);
        if (tags)
            tags[i] = tag;
    }
    in->tags = in->n_tags ? tags : NULL;
    in->n_meta = get_u8(d);
    if (in->n_meta > JOURNAL_MAX_META)
        d->bad = true;
    for (size_t i = 0; i < in->n_meta && !d->bad; i++) {
        const char *key = get_str(d, false, false);
        const char *value = get_str(d, false, true);
        if (meta) {
            meta[i].key = key;
            meta[i].value = value;
        }
    }
    in->meta = in->n_meta ? meta : NULL;
    in->ttl_s = get_u32(d);
    in->lease_deadline_ms = get_u64(d);
    in->registered_ms = get_u64(d);
    in->heartbeat_ms = get_u64(d);
    uint8_t kind = get_u8(d);
    if (kind > JOURNAL_CHECK_HTTP)
        d->bad = true;
    in->kind = (enum journal_check_kind)kind;
    if (kind != JOURNAL_CHECK_NONE) {
        in->check_target = get_str(d, false, false);
        in->check_interval_ms = get_u32(d);
        in->check_timeout_ms = get_u32(d);
        in->check_success_before_passing = get_u16(d);
        in->check_failures_before_critical = get_u16(d);
    }
    in->deregister_after_ms = get_u64(d);
    in->reported = get_status(d);
    in->note = get_str(d, true, true);
    in->maintenance = get_bool(d);
    in->maintenance_reason = get_str(d, true, true);
}

/* Check the frame at buf: length bounds, completeness, CRC. */
static int frame_check(const uint8_t *buf, size_t len, uint32_t *payload_len)
{
    if (len < 4)
        return JOURNAL_ETRUNCATED;
    uint32_t n = be32_get(buf);
    if (n < JOURNAL_MIN_PAYLOAD || n > JOURNAL_MAX_PAYLOAD)
        return JOURNAL_EBADLEN;
    if (len < JOURNAL_FRAME_LEN || len - JOURNAL_FRAME_LEN < n)
        return JOURNAL_ETRUNCATED;
    if (journal_crc32c(0, buf + JOURNAL_FRAME_LEN, n) != be32_get(buf + 4))
        return JOURNAL_EBADCRC;
    *payload_len = n;
    return 0;
}

static bool type_is_known(uint8_t type)
{
    return (type >= JOURNAL_PUT && type <= JOURNAL_MAINTENANCE) ||
           type == JOURNAL_SNAPSHOT_INSTANCE || type == JOURNAL_SNAPSHOT_END;
}

/* Parse a checked payload into rec; store (may be NULL) has room for its strings. */
static int payload_parse(const uint8_t *p, size_t n, struct journal_record *rec, char *store)
{
    if (!type_is_known(p[0]))
        return JOURNAL_EBADTYPE;
    void *arrays = NULL;
    struct dec d = {.p = p, .len = n, .store = store};
    rec->type = (enum journal_type)get_u8(&d);
    rec->time_ms = get_u64(&d);
    switch (rec->type) {
    case JOURNAL_PUT:
    case JOURNAL_SNAPSHOT_INSTANCE:
        if (store) {
            arrays = store;
            d.store = store + ARRAYS_SIZE;
        }
        get_instance(&d, &rec->put, arrays);
        break;
    case JOURNAL_REMOVE:
        rec->remove.service = get_str(&d, false, false);
        rec->remove.id = get_str(&d, false, false);
        break;
    case JOURNAL_HEARTBEAT:
        rec->heartbeat.service = get_str(&d, false, false);
        rec->heartbeat.id = get_str(&d, false, false);
        rec->heartbeat.lease_deadline_ms = get_u64(&d);
        rec->heartbeat.status = get_status(&d);
        rec->heartbeat.note = get_str(&d, true, true);
        break;
    case JOURNAL_MAINTENANCE:
        rec->maintenance.service = get_str(&d, false, false);
        rec->maintenance.id = get_str(&d, false, false);
        rec->maintenance.enabled = get_bool(&d);
        rec->maintenance.reason = get_str(&d, true, true);
        break;
    case JOURNAL_SNAPSHOT_END:
        rec->end_count = get_u64(&d);
        break;
    }
    if (d.bad || d.pos != n)
        return JOURNAL_EMALFORMED;
    return 0;
}

int journal_validate(const uint8_t *buf, size_t len, size_t *consumed)
{
    uint32_t n;
    int rc = frame_check(buf, len, &n);
    if (rc)
        return rc;
    struct journal_record scratch;
    memset(&scratch, 0, sizeof(scratch));
    rc = payload_parse(buf + JOURNAL_FRAME_LEN, n, &scratch, NULL);
    if (rc)
        return rc;
    *consumed = JOURNAL_FRAME_LEN + (size_t)n;
    return 0;
}

int journal_decode(const uint8_t *buf, size_t len, struct journal_record *out, size_t *consumed)
{
    uint32_t n;
    int rc = frame_check(buf, len, &n);
    if (rc)
        return rc;
    const uint8_t *p = buf + JOURNAL_FRAME_LEN;
    if (!type_is_known(p[0]))
        return JOURNAL_EBADTYPE;
    /* Strings with their NULs never need more than the payload (each has a 2-byte length);
     * an instance also needs its tag and meta arrays. */
    bool instance = p[0] == JOURNAL_PUT || p[0] == JOURNAL_SNAPSHOT_INSTANCE;
    char *store = malloc((instance ? ARRAYS_SIZE : 0) + n);
    if (store == NULL)
        return DNSD_ENOMEM;
    struct journal_record rec;
    memset(&rec, 0, sizeof(rec));
    rc = payload_parse(p, n, &rec, store);
    if (rc) {
        free(store);
        return rc;
    }
    rec.storage = store;
    *out = rec;
    *consumed = JOURNAL_FRAME_LEN + (size_t)n;
    return 0;
}

void journal_record_clear(struct journal_record *rec)
{
    free(rec->storage);
    memset(rec, 0, sizeof(*rec));
}

/* ---- file names and headers ---- */

int journal_file_path(char *out, size_t n, const char *dir, uint64_t generation, bool snapshot)
{
    int len = snprintf(out, n, "%s/%s-%016" PRIx64 "%s", dir, snapshot ? "snapshot" : "journal",
                       generation, snapshot ? ".snap" : ".log");
    if (len < 0 || (size_t)len >= n)
        return DNSD_ERANGE;
    return 0;
}

bool journal_name_parse(const char *name, const char *prefix, const char *suffix,
                        uint64_t *generation)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0 || name[plen] != '-')
        return false;
    const char *hex = name + plen + 1;
    uint64_t gen = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        unsigned digit;
        if (c >= '0' && c <= '9')
            digit = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (unsigned)(c - 'a' + 10);
        else
            return false;
        gen = gen << 4 | digit;
    }
    if (strcmp(hex + 16, suffix) != 0)
        return false;
    *generation = gen;
    return true;
}

void journal_header_build(uint8_t out[JOURNAL_HEADER_LEN], const char *magic)
{
    memcpy(out, magic, 8);
    be32_put(out + 8, JOURNAL_FORMAT_VERSION);
    be32_put(out + 12, 0);
}

int journal_header_check(const uint8_t *hdr, size_t len, const char *magic, const char *path,
                         char *message, size_t msg_len)
{
    uint8_t want[JOURNAL_HEADER_LEN];
    journal_header_build(want, magic);
    if (len < JOURNAL_HEADER_LEN) {
        if (memcmp(hdr, want, len) == 0)
            return JOURNAL_ETRUNCATED;
        if (message)
            snprintf(message, msg_len, "%s: %zu-byte file is not a dnsd %s file", path, len, magic);
        return JOURNAL_EBADMAGIC;
    }
    if (memcmp(hdr, magic, 8) != 0) {
        if (message)
            snprintf(message, msg_len, "%s: not a dnsd %s file (bad magic)", path, magic);
        return JOURNAL_EBADMAGIC;
    }
    uint32_t version = be32_get(hdr + 8);
    uint32_t flags = be32_get(hdr + 12);
    if (version != JOURNAL_FORMAT_VERSION) {
        if (message)
            snprintf(message, msg_len,
                     "%s: unsupported format version %" PRIu32
                     " (this dnsd reads version %u); refusing to read it",
                     path, version, JOURNAL_FORMAT_VERSION);
        return JOURNAL_EVERSION;
    }
    if (flags != 0) {
        if (message)
            snprintf(message, msg_len,
                     "%s: format version %" PRIu32 " with unsupported flags 0x%08" PRIx32
                     "; refusing to read it",
                     path, version, flags);
        return JOURNAL_EVERSION;
    }
    return 0;
}

/* ---- plain I/O helpers ---- */

/* Write all of data at off, retrying short writes and EINTR. */
static int pwrite_all(int fd, const uint8_t *data, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int journal_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* ---- journal file ---- */

struct journal {
    int fd;
    uint64_t generation;
    uint64_t written; /* file size: everything written so far */
    uint64_t synced;  /* file size at the last successful fdatasync */
    int failed;       /* sticky error after a failed fdatasync, else 0 */
    struct journal_buf buf;
};

/* Write the header to a new, empty file and make it and its name durable. */
static int header_write(int fd, const char *dir)
{
    uint8_t hdr[JOURNAL_HEADER_LEN];
    journal_header_build(hdr, "DNSDJRNL");
    int rc = pwrite_all(fd, hdr, sizeof(hdr), 0);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (rc == 0)
        rc = journal_fsync_dir(dir);
    return rc;
}

int journal_open(const char *dir, uint64_t generation, enum journal_open_mode mode,
                 struct journal **out)
{
    char path[JOURNAL_PATH_MAX];
    int rc = journal_file_path(path, sizeof(path), dir, generation, false);
    if (rc)
        return rc;
    struct journal *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return DNSD_ENOMEM;
    j->generation = generation;
    journal_buf_init(&j->buf);
    bool created = false;
    if (mode == JOURNAL_OPEN_CREATE) {
        j->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, JOURNAL_FILE_MODE);
        created = j->fd >= 0;
    } else {
        j->fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (j->fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct stat st;
    if (fstat(j->fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    if (st.st_size == 0) {
        rc = header_write(j->fd, dir);
        if (rc)
            goto fail;
        j->written = JOURNAL_HEADER_LEN;
    } else {
        uint8_t hdr[JOURNAL_HEADER_LEN];
        size_t want = st.st_size < JOURNAL_HEADER_LEN ? (size_t)st.st_size : sizeof(hdr);
        ssize_t got = pread(j->fd, hdr, want, 0);
        if (got < 0 || (size_t)got != want) {
            rc = got < 0 ? -errno : DNSD_EIO;
            goto fail;
        }
        rc = journal_header_check(hdr, want, "DNSDJRNL", path, NULL, 0);
        if (rc)
            goto fail;
        j->written = (uint64_t)st.st_size;
    }
    j->synced = j->written;
    *out = j;
    return 0;
fail:
    if (j->fd >= 0)
        close(j->fd);
    if (created)
        unlink(path);
    free(j);
    return rc;
}

void journal_close(struct journal *j)
{
    if (j == NULL)
        return;
    close(j->fd);
    journal_buf_clear(&j->buf);
    free(j);
}

uint64_t journal_generation(const struct journal *j)
{
    return j->generation;
}

uint64_t journal_size(const struct journal *j)
{
    return j->written;
}

size_t journal_pending(const struct journal *j)
{
    return j->buf.len;
}

int journal_failed(const struct journal *j)
{
    return j->failed;
}

int journal_append(struct journal *j, const struct journal_record *rec)
{
    if (j->failed)
        return j->failed;
    return journal_encode_record(&j->buf, rec);
}

int journal_flush(struct journal *j)
{
    if (j->failed)
        return j->failed;
    if (j->buf.len == 0)
        return 0;
    int rc = pwrite_all(j->fd, j->buf.data, j->buf.len, j->written);
    if (rc) {
        /* Cut off whatever part of the batch reached the file, so that the file still ends
         * on a record boundary and the retry writes the whole batch once. */
        if (ftruncate(j->fd, (off_t)j->written) != 0)
            j->failed = rc;
        return rc;
    }
    j->written += j->buf.len;
    j->buf.len = 0;
    return 0;
}

int journal_sync(struct journal *j)
{
    int rc = journal_flush(j);
    if (rc)
        return rc;
    if (j->synced == j->written)
        return 0;
    if (fdatasync(j->fd) != 0) {
        /* After a failed fsync the kernel may have marked the dirty pages clean (and lost
         * them); a retry could report success for data that is not on disk. */
        j->failed = -errno;
        return j->failed;
    }
    j->synced = j->written;
    return 0;
}

/* ---- replay ---- */

/* Find a valid journal record anywhere in [from, size).
 * Returns: its offset, or size when none. */
static uint64_t find_valid(const uint8_t *map, uint64_t size, uint64_t from)
{
    for (uint64_t off = from; off + JOURNAL_FRAME_LEN + JOURNAL_MIN_PAYLOAD <= size; off++) {
        size_t used;
        if (journal_validate(map + off, (size_t)(size - off), &used) == 0 &&
            map[off + JOURNAL_FRAME_LEN] < JOURNAL_SNAPSHOT_INSTANCE)
            return off;
    }
    return size;
}

/* Write the valid prefix to a fresh file in place of path; the damaged file stays as
 * PATH.damaged-N. The original name always holds either the old or the new file. */
static int repair_file(const char *path, const uint8_t *map, uint64_t keep,
                       struct journal_replay_report *report)
{
    char tmp[JOURNAL_PATH_MAX + 16];
    char dir[JOURNAL_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.repair.tmp", path);
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, JOURNAL_FILE_MODE);
    if (fd < 0)
        return -errno;
    int rc = pwrite_all(fd, map, (size_t)keep, 0);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc)
        goto fail;
    for (unsigned n = 1;; n++) {
        int len =
            snprintf(report->damaged_path, sizeof(report->damaged_path), "%s.damaged-%u", path, n);
        if (len < 0 || (size_t)len >= sizeof(report->damaged_path)) {
            rc = DNSD_ERANGE;
            goto fail;
        }
        struct stat st;
        if (lstat(report->damaged_path, &st) == 0)
            continue;
        if (link(path, report->damaged_path) == 0)
            break;
        if (errno == EEXIST)
            continue;
        /* No hard links here: move the file aside instead (briefly leaving no journal under
         * its name; a crash then needs the operator to move it back). */
        if (rename(path, report->damaged_path) != 0) {
            rc = -errno;
            goto fail;
        }
        break;
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto fail;
    }
    return journal_fsync_dir(dir);
fail:
    unlink(tmp);
    report->damaged_path[0] = '\0';
    return rc;
}

int journal_replay(const char *path, journal_record_cb *cb, void *user, enum journal_repair repair,
                   struct journal_replay_report *report)
{
    memset(report, 0, sizeof(*report));
    const uint8_t *map = NULL;
    uint64_t size = 0;
    int rc;
    int fd = open(path, (repair == JOURNAL_READ_ONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(report->message, sizeof(report->message), "%s: %s", path, journal_strerror(rc));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto fail_io;
    }
    size = (uint64_t)st.st_size;
    report->file_size = size;
    if (size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = -errno;
            goto fail_io;
        }
        map = m;
    }
    uint64_t off = 0;
    if (size > 0) {
        size_t hlen = size < JOURNAL_HEADER_LEN ? (size_t)size : JOURNAL_HEADER_LEN;
        rc = journal_header_check(map, hlen, "DNSDJRNL", path, report->message,
                                  sizeof(report->message));
        if (rc == JOURNAL_ETRUNCATED) {
            /* A crash while the file was being created: no record can be in it. */
            report->truncated = true;
            report->truncated_at = 0;
            report->tail_error = rc;
            off = size;
        } else if (rc) {
            goto out;
        } else {
            off = JOURNAL_HEADER_LEN;
        }
    }
    report->valid_end = report->truncated ? 0 : off;
    while (off < size) {
        struct journal_record rec;
        size_t used;
        rc = journal_decode(map + off, (size_t)(size - off), &rec, &used);
        if (rc == DNSD_ENOMEM)
            goto out;
        if (rc == 0 && rec.type >= JOURNAL_SNAPSHOT_INSTANCE) {
            journal_record_clear(&rec);
            rc = JOURNAL_EBADTYPE;
        }
        if (rc) {
            uint64_t next = find_valid(map, size, off + 1);
            if (next == size) {
                report->truncated = true;
                report->truncated_at = off;
                report->tail_error = rc;
            } else {
                report->corrupt = true;
                report->corrupt_offset = off;
                report->resume_offset = next;
                report->corrupt_error = rc;
            }
            break;
        }
        rc = cb ? cb(user, &rec, off) : 0;
        uint64_t time_ms = rec.time_ms;
        journal_record_clear(&rec);
        if (rc) {
            snprintf(report->message, sizeof(report->message),
                     "%s: replay stopped at offset %" PRIu64 ": %s", path, off,
                     journal_strerror(rc));
            goto out;
        }
        report->records++;
        report->last_time_ms = time_ms;
        off += used;
        report->valid_end = off;
    }
    rc = 0;
    if (report->corrupt) {
        if (repair != JOURNAL_REPAIR) {
            snprintf(report->message, sizeof(report->message),
                     "%s: corrupt record at offset %" PRIu64 " (%s) followed by valid records "
                     "from offset %" PRIu64 "; refusing to drop them (repair keeps the %" PRIu64
                     "-byte valid prefix and moves the file aside)",
                     path, report->corrupt_offset, journal_strerror(report->corrupt_error),
                     report->resume_offset, report->valid_end);
            rc = JOURNAL_ECORRUPT;
            goto out;
        }
        rc = repair_file(path, map, report->valid_end, report);
        if (rc) {
            snprintf(report->message, sizeof(report->message),
                     "%s: repair after corrupt record at offset %" PRIu64 " failed: %s", path,
                     report->corrupt_offset, journal_strerror(rc));
            goto out;
        }
        report->repaired = true;
        snprintf(report->message, sizeof(report->message),
                 "%s: corrupt record at offset %" PRIu64 " (%s); kept the %" PRIu64
                 "-byte valid prefix (%" PRIu64 " records), damaged file moved to %s",
                 path, report->corrupt_offset, journal_strerror(report->corrupt_error),
                 report->valid_end, report->records, report->damaged_path);
    } else if (report->truncated) {
        const char *what = repair == JOURNAL_READ_ONLY ? "found (not cut: read-only)" : "cut";
        if (repair != JOURNAL_READ_ONLY) {
            if (ftruncate(fd, (off_t)report->truncated_at) != 0 || fsync(fd) != 0) {
                rc = -errno;
                snprintf(report->message, sizeof(report->message),
                         "%s: cannot cut torn tail at offset %" PRIu64 ": %s", path,
                         report->truncated_at, journal_strerror(rc));
                goto out;
            }
        }
        snprintf(report->message, sizeof(report->message),
                 "%s: torn record at offset %" PRIu64 " (%s), %" PRIu64 " bytes %s", path,
                 report->truncated_at, journal_strerror(report->tail_error),
                 size - report->truncated_at, what);
    }
out:
    if (map)
        munmap((void *)map, (size_t)size);
    close(fd);
    return rc;
fail_io:
    snprintf(report->message, sizeof(report->message), "%s: %s", path, journal_strerror(rc));
    goto out;
}

/* ---- directory ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int journal_list(const char *dir, uint64_t min_generation, uint64_t **gens, size_t *n)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    uint64_t *list = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        uint64_t gen;
        if (!journal_name_parse(ent->d_name, "journal", ".log", &gen) || gen < min_generation)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            uint64_t *grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                rc = DNSD_ENOMEM;
                goto fail;
            }
            list = grown;
        }
        list[count++] = gen;
    }
    closedir(d);
    if (count > 1)
        qsort(list, count, sizeof(*list), cmp_u64);
    *gens = list;
    *n = count;
    return 0;
fail:
    closedir(d);
    free(list);
    return rc;
}

int journal_remove_older_than(const char *dir, uint64_t generation, size_t *removed)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    int rc = 0;
    size_t count = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        uint64_t gen;
        if (!journal_name_parse(ent->d_name, "journal", ".log", &gen) &&
            !journal_name_parse(ent->d_name, "snapshot", ".snap", &gen) &&
            !journal_name_parse(ent->d_name, "snapshot", ".snap.tmp", &gen))
            continue;
        if (gen >= generation)
            continue;
        if (unlinkat(dirfd(d), ent->d_name, 0) == 0)
            count++;
        else if (rc == 0)
            rc = -errno;
    }
    closedir(d);
    int sync_rc = journal_fsync_dir(dir);
    if (rc == 0)
        rc = sync_rc;
    if (removed)
        *removed = count;
    return rc;
}
