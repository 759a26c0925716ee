/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the journal: CRC32C vectors, the record codec (round trips, every decode
 * error, every bit flip), and the journal file (append/sync, torn tails cut at every byte
 * offset, mid-file damage refused or repaired, version refusal, compaction helpers). */
#include "journal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
    snprintf(dir, sizeof(dir), "/tmp/h-journal-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void dir_teardown(void)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(journal, .init = dir_setup, .fini = dir_teardown);

/* ---- sample records ---- */

static const char *tags_two[] = {"primary", "canary"};
static const struct journal_meta meta_two[] = {{"version", "1.4"}, {"empty", ""}};

static void addr_set(struct journal_addr *a, int family, const char *text)
{
    memset(a, 0, sizeof(*a));
    a->family = family;
    cr_assert_eq(inet_pton(family, text, a->bytes), 1);
}

/* Every field set, both address families, a check, a note and maintenance. */
static void full_put(struct journal_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->type = JOURNAL_PUT;
    rec->time_ms = 1764130000123;
    struct journal_instance *in = &rec->put;
    in->service = "web";
    in->id = "web-1";
    in->n_addrs = 2;
    addr_set(&in->addrs[0], AF_INET, "192.0.2.10");
    addr_set(&in->addrs[1], AF_INET6, "2001:db8::10");
    in->port = 8080;
    in->proto = JOURNAL_PROTO_TCP;
    in->priority = 1;
    in->weight = 2;
    in->tags = tags_two;
    in->n_tags = 2;
    in->meta = meta_two;
    in->n_meta = 2;
    in->ttl_s = 30;
    in->lease_deadline_ms = 1764130030123;
    in->registered_ms = 1764129000000;
    in->heartbeat_ms = 1764130000123;
    in->kind = JOURNAL_CHECK_HTTP;
    in->check_target = "http://192.0.2.10:8080/health";
    in->check_interval_ms = 10000;
    in->check_timeout_ms = 2000;
    in->check_success_before_passing = 1;
    in->check_failures_before_critical = 3;
    in->deregister_after_ms = 60000;
    in->reported = JOURNAL_STATUS_WARNING;
    in->note = "disk 90%";
    in->maintenance = true;
    in->maintenance_reason = "deploy";
}

/* The least an instance can carry: one address, no tags, meta, check, note. */
static void minimal_put(struct journal_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->type = JOURNAL_PUT;
    rec->time_ms = 5;
    rec->put.service = "db";
    rec->put.id = "db-1";
    rec->put.n_addrs = 1;
    addr_set(&rec->put.addrs[0], AF_INET, "198.51.100.7");
    rec->put.port = 5432;
    rec->put.proto = JOURNAL_PROTO_UDP;
    rec->put.ttl_s = 10;
}

static void heartbeat_rec(struct journal_record *rec, enum journal_status status, const char *note)
{
    memset(rec, 0, sizeof(*rec));
    rec->type = JOURNAL_HEARTBEAT;
    rec->time_ms = 1764130005000;
    rec->heartbeat.service = "web";
    rec->heartbeat.id = "web-1";
    rec->heartbeat.lease_deadline_ms = 1764130035000;
    rec->heartbeat.status = status;
    rec->heartbeat.note = note;
}

static void maintenance_rec(struct journal_record *rec, bool enabled, const char *reason)
{
    memset(rec, 0, sizeof(*rec));
    rec->type = JOURNAL_MAINTENANCE;
    rec->time_ms = 1764130006000;
    rec->maintenance.service = "web";
    rec->maintenance.id = "web-1";
    rec->maintenance.enabled = enabled;
    rec->maintenance.reason = reason;
}

static void remove_rec(struct journal_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->type = JOURNAL_REMOVE;
    rec->time_ms = 1764130007000;
    rec->remove.service = "web";
    rec->remove.id = "web-1";
}

#define N_SAMPLES 5

/* The five records of the small journal used by the damage tests. */
static void sample(int i, struct journal_record *rec)
{
    switch (i) {
    case 0:
        full_put(rec);
        break;
    case 1:
        heartbeat_rec(rec, JOURNAL_STATUS_CRITICAL, "out of memory");
        break;
    case 2:
        maintenance_rec(rec, false, NULL);
        break;
    case 3:
        minimal_put(rec);
        break;
    default:
        remove_rec(rec);
        break;
    }
}

/* ---- comparison ---- */

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
        size_t n = a->addrs[i].family == AF_INET ? 4 : 16;
        cr_assert_arr_eq(a->addrs[i].bytes, b->addrs[i].bytes, n);
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

static void record_eq(const struct journal_record *a, const struct journal_record *b)
{
    cr_assert_eq(a->type, b->type);
    cr_assert_eq(a->time_ms, b->time_ms);
    switch (a->type) {
    case JOURNAL_PUT:
    case JOURNAL_SNAPSHOT_INSTANCE:
        instance_eq(&a->put, &b->put);
        break;
    case JOURNAL_REMOVE:
        str_eq(a->remove.service, b->remove.service, "service");
        str_eq(a->remove.id, b->remove.id, "id");
        break;
    case JOURNAL_HEARTBEAT:
        str_eq(a->heartbeat.service, b->heartbeat.service, "service");
        str_eq(a->heartbeat.id, b->heartbeat.id, "id");
        cr_assert_eq(a->heartbeat.lease_deadline_ms, b->heartbeat.lease_deadline_ms);
        cr_assert_eq(a->heartbeat.status, b->heartbeat.status);
        str_eq(a->heartbeat.note, b->heartbeat.note, "note");
        break;
    case JOURNAL_MAINTENANCE:
        str_eq(a->maintenance.service, b->maintenance.service, "service");
        str_eq(a->maintenance.id, b->maintenance.id, "id");
        cr_assert_eq(a->maintenance.enabled, b->maintenance.enabled);
        str_eq(a->maintenance.reason, b->maintenance.reason, "reason");
        break;
    case JOURNAL_SNAPSHOT_END:
        cr_assert_eq(a->end_count, b->end_count);
        break;
    }
}

/* Encode rec alone, decode it, compare, and check that all bytes were consumed. */
static void round_trip(const struct journal_record *rec)
{
    struct journal_buf buf;
    journal_buf_init(&buf);
    cr_assert_eq(journal_encode_record(&buf, rec), 0);
    struct journal_record out;
    size_t used = 0;
    cr_assert_eq(journal_decode(buf.data, buf.len, &out, &used), 0);
    cr_assert_eq(used, buf.len);
    record_eq(&out, rec);
    size_t checked = 0;
    cr_assert_eq(journal_validate(buf.data, buf.len, &checked), 0);
    cr_assert_eq(checked, buf.len);
    journal_record_clear(&out);
    cr_assert_null(out.storage);
    journal_buf_clear(&buf);
}

/* ---- CRC32C ---- */

Test(journal, crc32c_matches_rfc3720_vectors)
{
    uint8_t data[32];
    memset(data, 0, sizeof(data));
    cr_assert_eq(journal_crc32c(0, data, 32), 0x8A9136AAu);
    memset(data, 0xff, sizeof(data));
    cr_assert_eq(journal_crc32c(0, data, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        data[i] = (uint8_t)i;
    cr_assert_eq(journal_crc32c(0, data, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        data[i] = (uint8_t)(31 - i);
    cr_assert_eq(journal_crc32c(0, data, 32), 0x113FDB5Cu);
    cr_assert_eq(journal_crc32c(0, "123456789", 9), 0xE3069283u);
}

Test(journal, crc32c_continues_across_calls)
{
    const char *text = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(text);
    uint32_t whole = journal_crc32c(0, text, n);
    for (size_t cut = 0; cut <= n; cut++)
        cr_assert_eq(journal_crc32c(journal_crc32c(0, text, cut), text + cut, n - cut), whole);
}

/* ---- codec round trips ---- */

Test(journal, put_round_trips_every_field)
{
    struct journal_record rec;
    full_put(&rec);
    round_trip(&rec);
}

Test(journal, put_without_tags_meta_check_or_note_round_trips)
{
    struct journal_record rec;
    minimal_put(&rec);
    round_trip(&rec);
    /* An empty note or reason is the same as none. */
    rec.put.note = "";
    rec.put.maintenance_reason = "";
    struct journal_buf buf;
    journal_buf_init(&buf);
    cr_assert_eq(journal_encode_record(&buf, &rec), 0);
    struct journal_record out;
    size_t used;
    cr_assert_eq(journal_decode(buf.data, buf.len, &out, &used), 0);
    cr_assert_null(out.put.note);
    cr_assert_null(out.put.maintenance_reason);
    cr_assert_null(out.put.tags);
    cr_assert_null(out.put.meta);
    journal_record_clear(&out);
    journal_buf_clear(&buf);
}

Test(journal, put_with_maximum_counts_round_trips)
{
    static char tag_text[JOURNAL_MAX_TAGS][16];
    static const char *tags[JOURNAL_MAX_TAGS];
    static char key_text[JOURNAL_MAX_META][16];
    static char value_text[JOURNAL_MAX_META][256];
    static struct journal_meta meta[JOURNAL_MAX_META];
    struct journal_record rec;
    full_put(&rec);
    rec.put.n_addrs = JOURNAL_MAX_ADDRS;
    for (int i = 0; i < JOURNAL_MAX_ADDRS; i++) {
        char text[64];
        snprintf(text, sizeof(text), "2001:db8:ffff:ffff:ffff:ffff:ffff:%x", 0xff00 + i);
        addr_set(&rec.put.addrs[i], AF_INET6, text);
    }
    for (int i = 0; i < JOURNAL_MAX_TAGS; i++) {
        snprintf(tag_text[i], sizeof(tag_text[i]), "t%d", i);
        tags[i] = tag_text[i];
    }
    for (int i = 0; i < JOURNAL_MAX_META; i++) {
        snprintf(key_text[i], sizeof(key_text[i]), "k%d", i);
        memset(value_text[i], 'v', 255);
        value_text[i][255] = '\0';
        meta[i].key = key_text[i];
        meta[i].value = value_text[i];
    }
    rec.put.tags = tags;
    rec.put.n_tags = JOURNAL_MAX_TAGS;
    rec.put.meta = meta;
    rec.put.n_meta = JOURNAL_MAX_META;
    rec.time_ms = UINT64_MAX;
    rec.put.port = UINT16_MAX;
    rec.put.priority = UINT16_MAX;
    rec.put.weight = UINT16_MAX;
    rec.put.ttl_s = UINT32_MAX;
    rec.put.lease_deadline_ms = UINT64_MAX;
    rec.put.registered_ms = UINT64_MAX;
    rec.put.heartbeat_ms = UINT64_MAX;
    rec.put.kind = JOURNAL_CHECK_TCP;
    rec.put.check_target = "[2001:db8:ffff:ffff:ffff:ffff:ffff:ff00]:65535";
    rec.put.check_interval_ms = UINT32_MAX;
    rec.put.check_timeout_ms = UINT32_MAX;
    rec.put.check_success_before_passing = UINT16_MAX;
    rec.put.check_failures_before_critical = UINT16_MAX;
    rec.put.deregister_after_ms = UINT64_MAX;
    rec.put.reported = JOURNAL_STATUS_CRITICAL;
    round_trip(&rec);
}

Test(journal, strings_of_maximum_length_round_trip)
{
    char *longest = malloc(JOURNAL_MAX_STRING + 1);
    cr_assert_not_null(longest);
    memset(longest, 'x', JOURNAL_MAX_STRING);
    longest[JOURNAL_MAX_STRING] = '\0';
    struct journal_record rec;
    full_put(&rec);
    rec.put.service = longest;
    rec.put.note = longest;
    rec.put.maintenance_reason = longest;
    round_trip(&rec);
    heartbeat_rec(&rec, JOURNAL_STATUS_PASSING, longest);
    round_trip(&rec);
    maintenance_rec(&rec, true, longest);
    rec.maintenance.id = longest;
    round_trip(&rec);
    free(longest);
}

Test(journal, heartbeat_round_trips_each_status)
{
    struct journal_record rec;
    heartbeat_rec(&rec, JOURNAL_STATUS_PASSING, NULL);
    round_trip(&rec);
    heartbeat_rec(&rec, JOURNAL_STATUS_WARNING, "disk 90%");
    round_trip(&rec);
    heartbeat_rec(&rec, JOURNAL_STATUS_CRITICAL, "down");
    round_trip(&rec);
}

Test(journal, maintenance_and_remove_round_trip)
{
    struct journal_record rec;
    maintenance_rec(&rec, true, "deploy");
    round_trip(&rec);
    maintenance_rec(&rec, false, NULL);
    round_trip(&rec);
    remove_rec(&rec);
    round_trip(&rec);
}

Test(journal, snapshot_records_round_trip)
{
    struct journal_record rec;
    full_put(&rec);
    rec.type = JOURNAL_SNAPSHOT_INSTANCE;
    round_trip(&rec);
    memset(&rec, 0, sizeof(rec));
    rec.type = JOURNAL_SNAPSHOT_END;
    rec.time_ms = 42;
    rec.end_count = UINT64_MAX;
    round_trip(&rec);
}

Test(journal, ipv4_address_tail_is_not_stored)
{
    struct journal_record rec;
    minimal_put(&rec);
    memset(rec.put.addrs[0].bytes + 4, 0xee, 12); /* garbage past the 4 used bytes */
    struct journal_buf buf;
    journal_buf_init(&buf);
    cr_assert_eq(journal_encode_record(&buf, &rec), 0);
    struct journal_record out;
    size_t used;
    cr_assert_eq(journal_decode(buf.data, buf.len, &out, &used), 0);
    static const uint8_t zero[12];
    cr_assert_arr_eq(out.put.addrs[0].bytes + 4, zero, 12);
    cr_assert_arr_eq(out.put.addrs[0].bytes, rec.put.addrs[0].bytes, 4);
    journal_record_clear(&out);
    journal_buf_clear(&buf);
}

/* ---- encoder refusals ---- */

/* Expect journal_encode_record to fail with want and leave a non-empty buffer as it was. */
static void encode_fails(const struct journal_record *rec, int want)
{
    struct journal_buf buf;
    journal_buf_init(&buf);
    struct journal_record first;
    remove_rec(&first);
    cr_assert_eq(journal_encode_record(&buf, &first), 0);
    size_t before = buf.len;
    uint8_t copy[256];
    cr_assert_leq(before, sizeof(copy));
    memcpy(copy, buf.data, before);
    cr_assert_eq(journal_encode_record(&buf, rec), want, "got %d, want %d",
                 journal_encode_record(&buf, rec), want);
    cr_assert_eq(buf.len, before);
    cr_assert_arr_eq(buf.data, copy, before);
    journal_buf_clear(&buf);
}

Test(journal, encode_rejects_invalid_records)
{
    struct journal_record rec;
    full_put(&rec);
    rec.put.service = NULL;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.id = "";
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.n_addrs = 0;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.n_addrs = JOURNAL_MAX_ADDRS + 1;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.addrs[1].family = AF_UNIX;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.n_tags = JOURNAL_MAX_TAGS + 1;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.n_meta = JOURNAL_MAX_META + 1;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.proto = (enum journal_proto)2;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.kind = (enum journal_check_kind)3;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.check_target = NULL;
    encode_fails(&rec, DNSD_EINVAL);
    full_put(&rec);
    rec.put.reported = (enum journal_status)3;
    encode_fails(&rec, DNSD_EINVAL);
    heartbeat_rec(&rec, (enum journal_status)7, NULL);
    encode_fails(&rec, DNSD_EINVAL);
    remove_rec(&rec);
    rec.type = (enum journal_type)99;
    encode_fails(&rec, DNSD_EINVAL);
}

Test(journal, encode_rejects_oversized_strings_and_payloads)
{
    char *big = malloc(JOURNAL_MAX_STRING + 2);
    cr_assert_not_null(big);
    memset(big, 'x', JOURNAL_MAX_STRING + 1);
    big[JOURNAL_MAX_STRING + 1] = '\0';
    struct journal_record rec;
    heartbeat_rec(&rec, JOURNAL_STATUS_PASSING, big);
    encode_fails(&rec, DNSD_ERANGE);
    /* 64 meta values of 65535 bytes each: every string fits, the payload does not. */
    big[JOURNAL_MAX_STRING] = '\0';
    static struct journal_meta meta[JOURNAL_MAX_META];
    for (int i = 0; i < JOURNAL_MAX_META; i++) {
        meta[i].key = "k";
        meta[i].value = big;
    }
    full_put(&rec);
    rec.put.meta = meta;
    rec.put.n_meta = JOURNAL_MAX_META;
    encode_fails(&rec, DNSD_ERANGE);
    free(big);
}

/* ---- decoder errors ---- */

/* A hand-built payload, for layout and malformed-field tests. */
struct bytes {
    uint8_t b[512];
    size_t n;
};

static void b_u8(struct bytes *p, uint8_t v)
{
    cr_assert_lt(p->n, sizeof(p->b));
    p->b[p->n++] = v;
}

static void b_be(struct bytes *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--)
        b_u8(p, (uint8_t)(v >> (8 * i)));
}

static void b_str(struct bytes *p, const char *s)
{
    size_t n = strlen(s);
    b_be(p, n, 2);
    for (size_t i = 0; i < n; i++)
        b_u8(p, (uint8_t)s[i]);
}

/* Frame a payload: length, CRC32C, payload. */
static void frame(const struct bytes *payload, struct bytes *out)
{
    out->n = 0;
    b_be(out, payload->n, 4);
    b_be(out, journal_crc32c(0, payload->b, payload->n), 4);
    memcpy(out->b + out->n, payload->b, payload->n);
    out->n += payload->n;
}

/* Fields a hand-built PUT can get wrong, one at a time. */
struct put_spec {
    uint8_t n_addrs, family, proto, n_tags, kind, status, maintenance;
    const char *tag;
    bool ipv4_tail, extra_byte;
};

static const struct put_spec good_put = {.n_addrs = 1,
                                         .family = 4,
                                         .proto = 0,
                                         .n_tags = 1,
                                         .kind = 0,
                                         .status = 0,
                                         .maintenance = 0,
                                         .tag = "blue"};

/* The documented PUT layout, written byte by byte (journal.h). */
static void build_put(const struct put_spec *s, struct bytes *p)
{
    p->n = 0;
    b_u8(p, JOURNAL_PUT);
    b_be(p, 1000, 8);
    b_str(p, "api");
    b_str(p, "api-7");
    b_u8(p, s->n_addrs);
    for (int i = 0; i < s->n_addrs; i++) {
        b_u8(p, s->family);
        uint8_t addr[16] = {192, 0, 2, (uint8_t)(i + 1)};
        if (s->ipv4_tail)
            addr[15] = 1;
        for (int k = 0; k < 16; k++)
            b_u8(p, addr[k]);
    }
    b_be(p, 443, 2);
    b_u8(p, s->proto);
    b_be(p, 3, 2);
    b_be(p, 4, 2);
    b_u8(p, s->n_tags);
    for (int i = 0; i < s->n_tags; i++)
        b_str(p, s->tag);
    b_u8(p, 1);
    b_str(p, "zone");
    b_str(p, "a");
    b_be(p, 15, 4);
    b_be(p, 16000, 8);
    b_be(p, 900, 8);
    b_be(p, 1000, 8);
    b_u8(p, s->kind);
    if (s->kind != 0 && s->kind <= 2) {
        b_str(p, "192.0.2.1:443");
        b_be(p, 5000, 4);
        b_be(p, 1000, 4);
        b_be(p, 2, 2);
        b_be(p, 3, 2);
    }
    b_be(p, 0, 8);
    b_u8(p, s->status);
    b_str(p, "");
    b_u8(p, s->maintenance);
    b_str(p, "");
    if (s->extra_byte)
        b_u8(p, 0);
}

static int decode_bytes(const struct bytes *framed)
{
    struct journal_record out;
    size_t used;
    int rc = journal_decode(framed->b, framed->n, &out, &used);
    if (rc == 0) {
        cr_assert_eq(used, framed->n);
        journal_record_clear(&out);
    }
    size_t checked;
    cr_assert_eq(journal_validate(framed->b, framed->n, &checked), rc);
    return rc;
}

Test(journal, decode_reads_the_documented_layout)
{
    struct bytes p, f;
    build_put(&good_put, &p);
    frame(&p, &f);
    struct journal_record out;
    size_t used;
    cr_assert_eq(journal_decode(f.b, f.n, &out, &used), 0);
    cr_assert_eq(used, f.n);
    cr_assert_eq(out.type, JOURNAL_PUT);
    cr_assert_eq(out.time_ms, 1000);
    cr_assert_str_eq(out.put.service, "api");
    cr_assert_str_eq(out.put.id, "api-7");
    cr_assert_eq(out.put.n_addrs, 1);
    cr_assert_eq(out.put.addrs[0].family, AF_INET);
    cr_assert_eq(out.put.addrs[0].bytes[3], 1);
    cr_assert_eq(out.put.port, 443);
    cr_assert_eq(out.put.priority, 3);
    cr_assert_eq(out.put.weight, 4);
    cr_assert_str_eq(out.put.tags[0], "blue");
    cr_assert_str_eq(out.put.meta[0].key, "zone");
    cr_assert_str_eq(out.put.meta[0].value, "a");
    cr_assert_eq(out.put.ttl_s, 15);
    cr_assert_eq(out.put.lease_deadline_ms, 16000);
    cr_assert_eq(out.put.registered_ms, 900);
    cr_assert_eq(out.put.heartbeat_ms, 1000);
    cr_assert_eq(out.put.kind, JOURNAL_CHECK_NONE);
    cr_assert_null(out.put.note);
    journal_record_clear(&out);

    /* A REMOVE frame, byte by byte, equals what the encoder writes. */
    struct bytes rp, rf;
    rp.n = 0;
    b_u8(&rp, JOURNAL_REMOVE);
    b_be(&rp, 1764130007000, 8);
    b_str(&rp, "web");
    b_str(&rp, "web-1");
    frame(&rp, &rf);
    struct journal_record rec;
    remove_rec(&rec);
    struct journal_buf buf;
    journal_buf_init(&buf);
    cr_assert_eq(journal_encode_record(&buf, &rec), 0);
    cr_assert_eq(buf.len, rf.n);
    cr_assert_arr_eq(buf.data, rf.b, rf.n);
    journal_buf_clear(&buf);
}

Test(journal, decode_reports_truncation_at_every_prefix)
{
    struct journal_record rec;
    full_put(&rec);
    struct journal_buf buf;
    journal_buf_init(&buf);
    cr_assert_eq(journal_encode_record(&buf, &rec), 0);
    for (size_t n = 0; n < buf.len; n++) {
        struct journal_record out;
        size_t used;
        cr_assert_eq(journal_decode(buf.data, n, &out, &used), JOURNAL_ETRUNCATED, "at %zu", n);
    }
    journal_buf_clear(&buf);
}

Test(journal, decode_rejects_bad_lengths)
{
    uint32_t lengths[] = {0, 1, JOURNAL_MIN_PAYLOAD - 1, JOURNAL_MAX_PAYLOAD + 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        struct bytes f = {.n = 0};
        b_be(&f, lengths[i], 4);
        for (int k = 0; k < 40; k++)
            b_u8(&f, 0);
        cr_assert_eq(decode_bytes(&f), JOURNAL_EBADLEN, "length %u", lengths[i]);
    }
}

Test(journal, decode_rejects_bad_crc)
{
    struct bytes p, f;
    build_put(&good_put, &p);
    frame(&p, &f);
    f.b[5] ^= 0x40; /* in the CRC itself */
    cr_assert_eq(decode_bytes(&f), JOURNAL_EBADCRC);
    frame(&p, &f);
    f.b[f.n - 1] ^= 0x01; /* in the payload */
    cr_assert_eq(decode_bytes(&f), JOURNAL_EBADCRC);
}

Test(journal, decode_rejects_unknown_types)
{
    uint8_t types[] = {0, 5, 15, 18, 99, 255};
    for (size_t i = 0; i < sizeof(types); i++) {
        struct bytes p = {.n = 0}, f;
        b_u8(&p, types[i]);
        b_be(&p, 1, 8);
        b_str(&p, "web");
        b_str(&p, "web-1");
        frame(&p, &f);
        cr_assert_eq(decode_bytes(&f), JOURNAL_EBADTYPE, "type %u", types[i]);
    }
}

Test(journal, decode_rejects_malformed_fields)
{
    struct put_spec specs[11];
    for (size_t i = 0; i < 11; i++)
        specs[i] = good_put;
    specs[0].n_addrs = 0;
    specs[1].n_addrs = JOURNAL_MAX_ADDRS + 1;
    specs[2].family = 5;
    specs[3].ipv4_tail = true;
    specs[4].proto = 2;
    specs[5].n_tags = JOURNAL_MAX_TAGS + 1;
    specs[6].tag = "";
    specs[7].kind = 3;
    specs[8].status = 3;
    specs[9].maintenance = 2;
    specs[10].extra_byte = true;
    for (size_t i = 0; i < 11; i++) {
        struct bytes p, f;
        build_put(&specs[i], &p);
        frame(&p, &f);
        cr_assert_eq(decode_bytes(&f), JOURNAL_EMALFORMED, "case %zu", i);
    }

    /* A NUL inside a string. */
    struct bytes p = {.n = 0}, f;
    b_u8(&p, JOURNAL_REMOVE);
    b_be(&p, 1, 8);
    b_str(&p, "web");
    b_be(&p, 3, 2);
    b_u8(&p, 'a');
    b_u8(&p, 0);
    b_u8(&p, 'b');
    frame(&p, &f);
    cr_assert_eq(decode_bytes(&f), JOURNAL_EMALFORMED);

    /* A string running past the payload. */
    p.n = 0;
    b_u8(&p, JOURNAL_REMOVE);
    b_be(&p, 1, 8);
    b_str(&p, "web");
    b_be(&p, 40, 2);
    b_u8(&p, 'a');
    frame(&p, &f);
    cr_assert_eq(decode_bytes(&f), JOURNAL_EMALFORMED);

    /* An empty required id. */
    p.n = 0;
    b_u8(&p, JOURNAL_REMOVE);
    b_be(&p, 1, 8);
    b_str(&p, "web");
    b_str(&p, "");
    frame(&p, &f);
    cr_assert_eq(decode_bytes(&f), JOURNAL_EMALFORMED);

    /* A heartbeat status out of range, and a maintenance flag that is not 0 or 1. */
    p.n = 0;
    b_u8(&p, JOURNAL_HEARTBEAT);
    b_be(&p, 1, 8);
    b_str(&p, "web");
    b_str(&p, "web-1");
    b_be(&p, 2, 8);
    b_u8(&p, 3);
    b_str(&p, "");
    frame(&p, &f);
    cr_assert_eq(decode_bytes(&f), JOURNAL_EMALFORMED);
    p.n = 0;
    b_u8(&p, JOURNAL_MAINTENANCE);
    b_be(&p, 1, 8);
    b_str(&p, "web");
    b_str(&p, "web-1");
    b_u8(&p, 2);
    b_str(&p, "");
    frame(&p, &f);
    cr_assert_eq(decode_bytes(&f), JOURNAL_EMALFORMED);
}

/* ---- the small journal used by the damage tests ---- */

struct small {
    struct journal_buf buf;      /* header + N_SAMPLES records */
    size_t start[N_SAMPLES + 1]; /* offset of each record; start[N_SAMPLES] = end */
};

static void small_build(struct small *s)
{
    journal_buf_init(&s->buf);
    uint8_t hdr[JOURNAL_HEADER_LEN];
    journal_header_build(hdr, "DNSDJRNL");
    struct journal_record head;
    remove_rec(&head);
    cr_assert_eq(journal_encode_record(&s->buf, &head), 0); /* grows the buffer */
    s->buf.len = 0;
    memcpy(s->buf.data, hdr, sizeof(hdr));
    s->buf.len = sizeof(hdr);
    for (int i = 0; i < N_SAMPLES; i++) {
        s->start[i] = s->buf.len;
        struct journal_record rec;
        sample(i, &rec);
        cr_assert_eq(journal_encode_record(&s->buf, &rec), 0);
    }
    s->start[N_SAMPLES] = s->buf.len;
}

static void file_write(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (n)
        cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static long file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long)st.st_size;
}

static void journal_path(char *out, size_t n, uint64_t gen)
{
    cr_assert_eq(journal_file_path(out, n, dir, gen, false), 0);
}

/* Collects replayed records and compares each with sample(i) as it arrives. */
struct seen {
    int count;
    uint64_t offsets[64];
};

static int check_sample(void *user, const struct journal_record *rec, uint64_t offset)
{
    struct seen *seen = user;
    struct journal_record want;
    sample(seen->count % N_SAMPLES, &want);
    record_eq(rec, &want);
    seen->offsets[seen->count++] = offset;
    return 0;
}

/* The number of whole records in the first cut bytes of s. */
static int whole_records(const struct small *s, size_t cut)
{
    int n = 0;
    while (n < N_SAMPLES && s->start[n + 1] <= cut)
        n++;
    return n;
}

Test(journal, every_bit_flip_is_detected_and_nothing_else_decodes)
{
    struct small s;
    small_build(&s);
    uint8_t *copy = malloc(s.buf.len);
    cr_assert_not_null(copy);
    for (size_t byte = JOURNAL_HEADER_LEN; byte < s.buf.len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, s.buf.data, s.buf.len);
            copy[byte] ^= (uint8_t)(1u << bit);
            int damaged = whole_records(&s, byte); /* the record holding the flip */
            size_t off = JOURNAL_HEADER_LEN;
            for (int i = 0; i < N_SAMPLES; i++) {
                struct journal_record out;
                size_t used;
                int rc = journal_decode(copy + off, s.buf.len - off, &out, &used);
                if (i < damaged) {
                    cr_assert_eq(rc, 0);
                    struct journal_record want;
                    sample(i, &want);
                    record_eq(&out, &want);
                    journal_record_clear(&out);
                    off += used;
                    continue;
                }
                cr_assert_neq(rc, 0, "flip of bit %d in byte %zu decoded as a record", bit, byte);
                break;
            }
        }
    }
    free(copy);
    journal_buf_clear(&s.buf);
}

Test(journal, flipped_byte_in_file_is_tail_or_refused_never_misread)
{
    struct small s;
    small_build(&s);
    char path[256];
    journal_path(path, sizeof(path), 1);
    uint8_t *copy = malloc(s.buf.len);
    cr_assert_not_null(copy);
    for (size_t byte = 0; byte < s.buf.len; byte++) {
        memcpy(copy, s.buf.data, s.buf.len);
        copy[byte] ^= 0xff;
        file_write(path, copy, s.buf.len);
        struct seen seen = {0};
        struct journal_replay_report rep;
        int rc = journal_replay(path, check_sample, &seen, JOURNAL_READ_ONLY, &rep);
        cr_assert_eq(file_size(path), (long)s.buf.len, "read-only replay changed the file");
        if (byte < 8) {
            cr_assert_eq(rc, JOURNAL_EBADMAGIC, "byte %zu", byte);
            continue;
        }
        if (byte < JOURNAL_HEADER_LEN) {
            cr_assert_eq(rc, JOURNAL_EVERSION, "byte %zu", byte);
            continue;
        }
        int damaged = whole_records(&s, byte);
        cr_assert_eq(seen.count, damaged, "byte %zu", byte);
        if (damaged == N_SAMPLES - 1) {
            cr_assert_eq(rc, 0);
            cr_assert(rep.truncated);
            cr_assert_eq(rep.truncated_at, s.start[damaged]);
        } else {
            cr_assert_eq(rc, JOURNAL_ECORRUPT, "byte %zu: rc %d", byte, rc);
            cr_assert(rep.corrupt);
            cr_assert_eq(rep.corrupt_offset, s.start[damaged]);
            cr_assert_eq(rep.resume_offset, s.start[damaged + 1]);
            cr_assert_not_null(strstr(rep.message, path));
        }
    }
    free(copy);
    journal_buf_clear(&s.buf);
}

Test(journal, truncation_at_every_offset_keeps_exactly_the_whole_records)
{
    struct small s;
    small_build(&s);
    char path[256];
    journal_path(path, sizeof(path), 1);
    for (size_t cut = 0; cut <= s.buf.len; cut++) {
        file_write(path, s.buf.data, cut);
        struct seen seen = {0};
        struct journal_replay_report rep;
        cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_TRUNCATE_TAIL, &rep), 0,
                     "cut %zu: %s", cut, rep.message);
        int whole = cut < JOURNAL_HEADER_LEN ? 0 : whole_records(&s, cut);
        cr_assert_eq(seen.count, whole, "cut %zu", cut);
        cr_assert_eq(rep.records, (uint64_t)whole);
        for (int i = 0; i < whole; i++)
            cr_assert_eq(seen.offsets[i], s.start[i]);
        size_t keep = cut < JOURNAL_HEADER_LEN ? 0
                      : whole == 0             ? JOURNAL_HEADER_LEN
                                               : s.start[whole];
        cr_assert_eq(rep.valid_end, keep, "cut %zu", cut);
        cr_assert_eq(rep.truncated, cut != keep, "cut %zu", cut);
        if (rep.truncated) {
            cr_assert_eq(rep.truncated_at, keep);
            char where[32];
            snprintf(where, sizeof(where), "offset %zu", keep);
            cr_assert_not_null(strstr(rep.message, where), "%s", rep.message);
        }
        cr_assert_eq(file_size(path), (long)keep, "cut %zu", cut);

        /* The cut file replays cleanly, and appending continues it. */
        struct seen again = {0};
        cr_assert_eq(journal_replay(path, check_sample, &again, JOURNAL_TRUNCATE_TAIL, &rep), 0);
        cr_assert_eq(again.count, whole);
        cr_assert_not(rep.truncated);
        struct journal *j;
        cr_assert_eq(journal_open(dir, 1, JOURNAL_OPEN_APPEND, &j), 0);
        struct journal_record next;
        sample(whole % N_SAMPLES, &next);
        cr_assert_eq(journal_append(j, &next), 0);
        cr_assert_eq(journal_sync(j), 0);
        journal_close(j);
        struct seen after = {0};
        cr_assert_eq(journal_replay(path, check_sample, &after, JOURNAL_TRUNCATE_TAIL, &rep), 0);
        cr_assert_eq(after.count, whole + 1, "cut %zu", cut);
        cr_assert_not(rep.truncated);
    }
    journal_buf_clear(&s.buf);
}

Test(journal, zero_filled_tail_is_cut)
{
    struct small s;
    small_build(&s);
    uint8_t *data = calloc(1, s.buf.len + 4096);
    cr_assert_not_null(data);
    memcpy(data, s.buf.data, s.buf.len);
    char path[256];
    journal_path(path, sizeof(path), 1);
    file_write(path, data, s.buf.len + 4096);
    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_TRUNCATE_TAIL, &rep), 0);
    cr_assert_eq(seen.count, N_SAMPLES);
    cr_assert(rep.truncated);
    cr_assert_eq(rep.truncated_at, s.buf.len);
    cr_assert_eq(rep.tail_error, JOURNAL_EBADLEN);
    cr_assert_eq(file_size(path), (long)s.buf.len);
    free(data);
    journal_buf_clear(&s.buf);
}

/* ---- mid-file damage ---- */

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

Test(journal, mid_file_corruption_is_refused_without_repair)
{
    struct small s;
    small_build(&s);
    s.buf.data[s.start[2] + 12] ^= 0x5a; /* inside record 2's payload */
    char path[256];
    journal_path(path, sizeof(path), 1);
    file_write(path, s.buf.data, s.buf.len);
    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_TRUNCATE_TAIL, &rep),
                 JOURNAL_ECORRUPT);
    cr_assert_eq(seen.count, 2);
    cr_assert(rep.corrupt);
    cr_assert_not(rep.repaired);
    cr_assert_eq(rep.corrupt_offset, s.start[2]);
    cr_assert_eq(rep.corrupt_error, JOURNAL_EBADCRC);
    char where[64];
    snprintf(where, sizeof(where), "offset %zu", s.start[2]);
    cr_assert_not_null(strstr(rep.message, where), "%s", rep.message);
    cr_assert_not_null(strstr(rep.message, path));
    size_t n;
    uint8_t *now = file_read(path, &n);
    cr_assert_eq(n, s.buf.len);
    cr_assert_arr_eq(now, s.buf.data, n, "the file was changed");
    free(now);
    char damaged[300];
    snprintf(damaged, sizeof(damaged), "%s.damaged-1", path);
    cr_assert_eq(file_size(damaged), -1);
    journal_buf_clear(&s.buf);
}

Test(journal, mid_file_corruption_is_repaired_on_request)
{
    struct small s;
    small_build(&s);
    s.buf.data[s.start[1]] ^= 0x80; /* record 1's length field */
    char path[256];
    journal_path(path, sizeof(path), 1);
    file_write(path, s.buf.data, s.buf.len);
    char first[300];
    snprintf(first, sizeof(first), "%s.damaged-1", path);
    file_write(first, (const uint8_t *)"older", 5); /* an earlier repair's leftover */

    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_REPAIR, &rep), 0, "%s",
                 rep.message);
    cr_assert_eq(seen.count, 1);
    cr_assert(rep.corrupt);
    cr_assert(rep.repaired);
    cr_assert_eq(rep.valid_end, s.start[1]);
    char second[300];
    snprintf(second, sizeof(second), "%s.damaged-2", path);
    cr_assert_str_eq(rep.damaged_path, second);
    cr_assert_not_null(strstr(rep.message, second));

    size_t n;
    uint8_t *moved = file_read(second, &n);
    cr_assert_eq(n, s.buf.len);
    cr_assert_arr_eq(moved, s.buf.data, n, "the damaged file was not kept intact");
    free(moved);
    cr_assert_eq(file_size(first), 5);
    uint8_t *kept = file_read(path, &n);
    cr_assert_eq(n, s.start[1]);
    cr_assert_arr_eq(kept, s.buf.data, n);
    free(kept);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.repair.tmp", path);
    cr_assert_eq(file_size(tmp), -1);

    struct seen again = {0};
    cr_assert_eq(journal_replay(path, check_sample, &again, JOURNAL_TRUNCATE_TAIL, &rep), 0);
    cr_assert_eq(again.count, 1);
    cr_assert_not(rep.truncated);
    cr_assert_not(rep.corrupt);
    journal_buf_clear(&s.buf);
}

Test(journal, snapshot_record_in_a_journal_is_damage)
{
    struct small s;
    small_build(&s);
    struct journal_record end;
    memset(&end, 0, sizeof(end));
    end.type = JOURNAL_SNAPSHOT_END;
    cr_assert_eq(journal_encode_record(&s.buf, &end), 0);
    char path[256];
    journal_path(path, sizeof(path), 1);
    file_write(path, s.buf.data, s.buf.len);
    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_READ_ONLY, &rep), 0);
    cr_assert_eq(seen.count, N_SAMPLES);
    cr_assert(rep.truncated);
    cr_assert_eq(rep.tail_error, JOURNAL_EBADTYPE);
    cr_assert_eq(rep.truncated_at, s.start[N_SAMPLES]);
    journal_buf_clear(&s.buf);
}

/* ---- headers ---- */

Test(journal, unknown_version_is_refused)
{
    struct small s;
    small_build(&s);
    s.buf.data[11] = 2; /* version 2 */
    char path[256];
    journal_path(path, sizeof(path), 7);
    file_write(path, s.buf.data, s.buf.len);
    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_REPAIR, &rep), JOURNAL_EVERSION);
    cr_assert_eq(seen.count, 0);
    cr_assert_not_null(strstr(rep.message, "version 2"), "%s", rep.message);
    cr_assert_not_null(strstr(rep.message, path), "%s", rep.message);
    cr_assert_eq(file_size(path), (long)s.buf.len);
    struct journal *j = NULL;
    cr_assert_eq(journal_open(dir, 7, JOURNAL_OPEN_APPEND, &j), JOURNAL_EVERSION);
    cr_assert_null(j);

    s.buf.data[11] = 1;
    s.buf.data[15] = 1; /* unknown flag */
    file_write(path, s.buf.data, s.buf.len);
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_REPAIR, &rep), JOURNAL_EVERSION);
    cr_assert_not_null(strstr(rep.message, "flags"), "%s", rep.message);
    journal_buf_clear(&s.buf);
}

Test(journal, foreign_file_is_refused)
{
    char path[256];
    journal_path(path, sizeof(path), 1);
    const char *text = "DNSDSNAP\0\0\0\1\0\0\0\0 a snapshot, not a journal";
    file_write(path, (const uint8_t *)text, 40);
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, NULL, NULL, JOURNAL_REPAIR, &rep), JOURNAL_EBADMAGIC);
    cr_assert_not_null(strstr(rep.message, "bad magic"), "%s", rep.message);
    cr_assert_eq(file_size(path), 40);
    file_write(path, (const uint8_t *)"hello", 5);
    cr_assert_eq(journal_replay(path, NULL, NULL, JOURNAL_TRUNCATE_TAIL, &rep), JOURNAL_EBADMAGIC);
    cr_assert_eq(file_size(path), 5);
    struct journal *j = NULL;
    cr_assert_eq(journal_open(dir, 1, JOURNAL_OPEN_APPEND, &j), JOURNAL_EBADMAGIC);
}

Test(journal, missing_file_is_enoent)
{
    char path[256];
    journal_path(path, sizeof(path), 3);
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, NULL, NULL, JOURNAL_TRUNCATE_TAIL, &rep), DNSD_ENOENT);
    cr_assert_not_null(strstr(rep.message, path));
    struct journal *j = NULL;
    cr_assert_eq(journal_open(dir, 3, JOURNAL_OPEN_APPEND, &j), DNSD_ENOENT);
    cr_assert_null(j);
}

/* ---- journal file ---- */

Test(journal, open_append_refuses_a_torn_header_and_long_paths)
{
    char path[256];
    journal_path(path, sizeof(path), 4);
    file_write(path, (const uint8_t *)"DNSDJ", 5);
    struct journal *j = NULL;
    cr_assert_eq(journal_open(dir, 4, JOURNAL_OPEN_APPEND, &j), JOURNAL_ETRUNCATED);
    cr_assert_null(j);
    cr_assert_eq(file_size(path), 5);
    char *long_dir = malloc(JOURNAL_PATH_MAX + 1);
    cr_assert_not_null(long_dir);
    memset(long_dir, 'd', JOURNAL_PATH_MAX);
    long_dir[JOURNAL_PATH_MAX] = '\0';
    cr_assert_eq(journal_open(long_dir, 4, JOURNAL_OPEN_CREATE, &j), DNSD_ERANGE);
    free(long_dir);
}

Test(journal, append_sync_and_replay_round_trip)
{
    struct journal *j;
    cr_assert_eq(journal_open(dir, 0x2a, JOURNAL_OPEN_CREATE, &j), 0);
    cr_assert_eq(journal_generation(j), 0x2a);
    cr_assert_eq(journal_size(j), JOURNAL_HEADER_LEN);
    char path[256];
    journal_path(path, sizeof(path), 0x2a);
    cr_assert_str_eq(strrchr(path, '/') + 1, "journal-000000000000002a.log");
    cr_assert_eq(file_size(path), JOURNAL_HEADER_LEN);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0007, 0, "no access for others: %o", st.st_mode & 07777);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N_SAMPLES; i++) {
            struct journal_record rec;
            sample(i, &rec);
            cr_assert_eq(journal_append(j, &rec), 0);
        }
        cr_assert_gt(journal_pending(j), 0);
        cr_assert_eq(journal_sync(j), 0);
        cr_assert_eq(journal_pending(j), 0);
        cr_assert_eq(file_size(path), (long)journal_size(j));
    }
    cr_assert_eq(journal_sync(j), 0); /* nothing new: no-op */
    struct journal_record bad;
    remove_rec(&bad);
    bad.remove.id = NULL;
    cr_assert_eq(journal_append(j, &bad), DNSD_EINVAL);
    cr_assert_eq(journal_pending(j), 0);
    cr_assert_eq(journal_failed(j), 0);
    journal_close(j);
    journal_close(NULL);

    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_TRUNCATE_TAIL, &rep), 0);
    cr_assert_eq(seen.count, 3 * N_SAMPLES);
    cr_assert_eq(rep.last_time_ms, 1764130007000);
    cr_assert_str_eq(rep.message, "");

    cr_assert_eq(journal_open(dir, 0x2a, JOURNAL_OPEN_CREATE, &j), DNSD_EEXIST);
    cr_assert_eq(file_size(path), (long)rep.valid_end);
}

Test(journal, unflushed_records_are_not_in_the_file)
{
    struct journal *j;
    cr_assert_eq(journal_open(dir, 1, JOURNAL_OPEN_CREATE, &j), 0);
    struct journal_record rec;
    sample(0, &rec);
    cr_assert_eq(journal_append(j, &rec), 0);
    cr_assert_eq(journal_flush(j), 0);
    sample(1, &rec);
    cr_assert_eq(journal_append(j, &rec), 0);
    journal_close(j);
    char path[256];
    journal_path(path, sizeof(path), 1);
    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_TRUNCATE_TAIL, &rep), 0);
    cr_assert_eq(seen.count, 1);
}

Test(journal, empty_file_gets_a_header_on_append)
{
    char path[256];
    journal_path(path, sizeof(path), 9);
    file_write(path, NULL, 0);
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, NULL, NULL, JOURNAL_TRUNCATE_TAIL, &rep), 0);
    cr_assert_eq(rep.records, 0);
    struct journal *j;
    cr_assert_eq(journal_open(dir, 9, JOURNAL_OPEN_APPEND, &j), 0);
    cr_assert_eq(journal_size(j), JOURNAL_HEADER_LEN);
    journal_close(j);
    cr_assert_eq(file_size(path), JOURNAL_HEADER_LEN);
}

Test(journal, write_error_is_returned_and_the_batch_retried)
{
    signal(SIGXFSZ, SIG_IGN);
    struct journal *j;
    cr_assert_eq(journal_open(dir, 1, JOURNAL_OPEN_CREATE, &j), 0);
    struct journal_record rec;
    sample(0, &rec);
    cr_assert_eq(journal_append(j, &rec), 0);
    cr_assert_eq(journal_sync(j), 0);
    uint64_t durable = journal_size(j);
    for (int i = 1; i < N_SAMPLES; i++) {
        sample(i, &rec);
        cr_assert_eq(journal_append(j, &rec), 0);
    }
    /* The file may not grow past the middle of the batch: the write fails part-way. */
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = durable + journal_pending(j) / 2;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = journal_sync(j);
    cr_assert_eq(rc, -EFBIG, "got %d (%s)", rc, journal_strerror(rc));
    cr_assert_eq(journal_failed(j), 0);
    cr_assert_eq(journal_size(j), durable);
    char path[256];
    journal_path(path, sizeof(path), 1);
    cr_assert_eq(file_size(path), (long)durable, "the partial batch was not cut off");
    cr_assert_gt(journal_pending(j), 0);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_assert_eq(journal_sync(j), 0);
    journal_close(j);
    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_TRUNCATE_TAIL, &rep), 0);
    cr_assert_eq(seen.count, N_SAMPLES);
    cr_assert_not(rep.truncated);
}

static int stop_at_two(void *user, const struct journal_record *rec, uint64_t offset)
{
    (void)rec;
    (void)offset;
    int *count = user;
    return ++*count == 2 ? DNSD_ENOMEM : 0;
}

Test(journal, callback_error_stops_replay)
{
    struct small s;
    small_build(&s);
    char path[256];
    journal_path(path, sizeof(path), 1);
    file_write(path, s.buf.data, s.buf.len);
    int count = 0;
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, stop_at_two, &count, JOURNAL_TRUNCATE_TAIL, &rep),
                 DNSD_ENOMEM);
    cr_assert_eq(count, 2);
    cr_assert_eq(rep.records, 1);
    cr_assert_eq(file_size(path), (long)s.buf.len);
    journal_buf_clear(&s.buf);
}

/* ---- golden file: the v1 format must not drift ---- */

/* tests/data, from $DNSD_TEST_DATA (set by CTest) or relative to the source tree. */
static const char *data_dir(void)
{
    const char *d = getenv("DNSD_TEST_DATA");
    return d && d[0] ? d : "tests/data";
}

Test(journal, golden_v1_file_replays_and_reencodes_identically)
{
    char golden[512];
    snprintf(golden, sizeof(golden), "%s/journal/golden-v1.log", data_dir());
    size_t n;
    uint8_t *want = file_read(golden, &n);
    char path[256];
    journal_path(path, sizeof(path), 1);
    file_write(path, want, n);
    struct seen seen = {0};
    struct journal_replay_report rep;
    cr_assert_eq(journal_replay(path, check_sample, &seen, JOURNAL_READ_ONLY, &rep), 0, "%s",
                 rep.message);
    cr_assert_eq(seen.count, N_SAMPLES);
    cr_assert_not(rep.truncated);
    struct small s;
    small_build(&s);
    cr_assert_eq(s.buf.len, n);
    cr_assert_arr_eq(s.buf.data, want, n, "the encoding of format version 1 changed");
    free(want);
    journal_buf_clear(&s.buf);
}

/* ---- names and compaction ---- */

Test(journal, file_names_carry_sixteen_hex_digits)
{
    char path[128];
    cr_assert_eq(journal_file_path(path, sizeof(path), "/d", UINT64_MAX, true), 0);
    cr_assert_str_eq(path, "/d/snapshot-ffffffffffffffff.snap");
    cr_assert_eq(journal_file_path(path, 10, "/d", 1, false), DNSD_ERANGE);
    uint64_t gen = 0;
    cr_assert(journal_name_parse("journal-00000000000000ff.log", "journal", ".log", &gen));
    cr_assert_eq(gen, 0xff);
    cr_assert_not(journal_name_parse("journal-ff.log", "journal", ".log", &gen));
    cr_assert_not(journal_name_parse("journal-00000000000000FF.log", "journal", ".log", &gen));
    cr_assert_not(journal_name_parse("journal-00000000000000ff.log.x", "journal", ".log", &gen));
    cr_assert_not(
        journal_name_parse("snapshot-00000000000000ff.snap.tmp", "snapshot", ".snap", &gen));
}

static void touch(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    file_write(path, (const uint8_t *)"x", 1);
}

static bool exists(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return file_size(path) >= 0;
}

Test(journal, remove_older_than_keeps_newer_and_damaged_files)
{
    touch("journal-0000000000000001.log");
    touch("journal-0000000000000002.log");
    touch("journal-0000000000000003.log");
    touch("snapshot-0000000000000002.snap");
    touch("snapshot-0000000000000002.snap.tmp");
    touch("snapshot-0000000000000003.snap");
    touch("journal-0000000000000001.log.damaged-1");
    touch("notes.txt");
    size_t removed = 0;
    cr_assert_eq(journal_remove_older_than(dir, 3, &removed), 0);
    cr_assert_eq(removed, 4);
    cr_assert_not(exists("journal-0000000000000001.log"));
    cr_assert_not(exists("journal-0000000000000002.log"));
    cr_assert_not(exists("snapshot-0000000000000002.snap"));
    cr_assert_not(exists("snapshot-0000000000000002.snap.tmp"));
    cr_assert(exists("journal-0000000000000003.log"));
    cr_assert(exists("snapshot-0000000000000003.snap"));
    cr_assert(exists("journal-0000000000000001.log.damaged-1"));
    cr_assert(exists("notes.txt"));
    cr_assert_eq(journal_remove_older_than("/nonexistent/h-journal", 3, NULL), DNSD_ENOENT);
}

Test(journal, list_returns_generations_in_order)
{
    touch("journal-0000000000000010.log");
    touch("journal-0000000000000002.log");
    touch("journal-000000000000000a.log");
    touch("journal-0000000000000001.log");
    touch("snapshot-0000000000000005.snap");
    touch("journal-0000000000000003.log.damaged-1");
    uint64_t *gens = NULL;
    size_t n = 0;
    cr_assert_eq(journal_list(dir, 2, &gens, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(gens[0], 2);
    cr_assert_eq(gens[1], 0xa);
    cr_assert_eq(gens[2], 0x10);
    free(gens);
    cr_assert_eq(journal_list(dir, 0x11, &gens, &n), 0);
    cr_assert_eq(n, 0);
    free(gens);
    cr_assert_eq(journal_list("/nonexistent/h-journal", 0, &gens, &n), DNSD_ENOENT);
}

Test(journal, strerror_names_journal_codes)
{
    cr_assert_str_eq(journal_strerror(JOURNAL_EBADCRC), "CRC mismatch");
    cr_assert_str_eq(journal_strerror(JOURNAL_EVERSION), "unsupported format version");
    cr_assert_str_eq(journal_strerror(DNSD_ENOMEM), "out of memory");
    cr_assert_str_eq(journal_strerror(-ENOSPC), dnsd_strerror(-ENOSPC));
}
