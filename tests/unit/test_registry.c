/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the registry: validation, storage, ordering, leases, health (reported status,
 * active check thresholds, maintenance, deregister_after), self-preservation, service indexes,
 * the change callback and serial, and heap/index consistency under many random operations
 * cross-checked against a naive reference model. The clock is always a plain number. */
#include "registry.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "dnsd/duration.h"
#include "dnsd/error.h"

/* ---- allocation failure ---- */

/* strdup calls that may still succeed before the next one fails; -1: no limit. The test
 * binary's strdup takes the place of libc's for the registry's copies, which makes the
 * out-of-memory paths reachable. */
static long strdups_left = -1;

char *strdup(const char *s)
{
    if (strdups_left == 0) {
        strdups_left = -1;
        return NULL;
    }
    if (strdups_left > 0)
        strdups_left--;
    size_t len = strlen(s) + 1;
    char *p = malloc(len);
    if (p)
        memcpy(p, s, len);
    return p;
}

/* ---- helpers ---- */

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    cr_assert_not_null(p);
    return p;
}

/* A valid instance: service/id as given, one IPv4 address, port 8080, tcp, ttl_s. */
static void inst_init(struct registry_instance *inst, const char *service, const char *id,
                      uint32_t ttl_s)
{
    memset(inst, 0, sizeof(*inst));
    inst->service = xstrdup(service);
    inst->id = xstrdup(id);
    inst->n_addrs = 1;
    inst->addrs[0].family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, "192.0.2.10", inst->addrs[0].bytes), 1);
    inst->port = 8080;
    inst->proto = REGISTRY_PROTO_TCP;
    inst->weight = 1;
    inst->ttl_s = ttl_s;
}

static void inst_add_tag(struct registry_instance *inst, const char *tag)
{
    char **tags = realloc(inst->tags, (inst->n_tags + 1) * sizeof(*tags));
    cr_assert_not_null(tags);
    inst->tags = tags;
    inst->tags[inst->n_tags++] = xstrdup(tag);
}

static void inst_add_meta(struct registry_instance *inst, const char *key, const char *value)
{
    struct registry_meta *meta = realloc(inst->meta, (inst->n_meta + 1) * sizeof(*meta));
    cr_assert_not_null(meta);
    inst->meta = meta;
    inst->meta[inst->n_meta].key = xstrdup(key);
    inst->meta[inst->n_meta].value = xstrdup(value);
    inst->n_meta++;
}

static void inst_add_addr(struct registry_instance *inst, int family, const char *text)
{
    cr_assert_lt(inst->n_addrs, REGISTRY_MAX_ADDRS);
    inst->addrs[inst->n_addrs].family = family;
    cr_assert_eq(inet_pton(family, text, inst->addrs[inst->n_addrs].bytes), 1);
    inst->n_addrs++;
}

/* Expect registry_validate to reject inst naming want_field, then free inst. */
static void expect_invalid(struct registry_instance *inst, const char *want_field)
{
    const char *field = NULL;
    cr_assert_eq(registry_validate(inst, &field), DNSD_EINVAL);
    cr_assert_not_null(field);
    cr_assert_str_eq(field, want_field);
    registry_instance_clear(inst);
}

static void expect_valid(struct registry_instance *inst)
{
    const char *field = NULL;
    cr_assert_eq(registry_validate(inst, &field), 0, "rejected field %s", field ? field : "-");
    registry_instance_clear(inst);
}

/* Put a fresh valid instance; fails the test on error. */
static void put(struct registry *reg, const char *service, const char *id, uint32_t ttl_s,
                uint64_t now_ms)
{
    struct registry_instance inst;
    inst_init(&inst, service, id, ttl_s);
    cr_assert_eq(registry_put(reg, &inst, now_ms, NULL), 0);
    registry_instance_clear(&inst);
}

/* Heartbeat with status passing and no note. */
static int renew(struct registry *reg, const char *service, const char *id, uint64_t now_ms)
{
    return registry_heartbeat(reg, service, id, REGISTRY_HEALTH_PASSING, NULL, now_ms, NULL);
}

/* Put a fresh valid instance with deregister_after_ms set; fails the test on error. */
static void put_dereg(struct registry *reg, const char *service, const char *id, uint32_t ttl_s,
                      uint64_t dereg_ms, uint64_t now_ms)
{
    struct registry_instance inst;
    inst_init(&inst, service, id, ttl_s);
    inst.deregister_after_ms = dereg_ms;
    cr_assert_eq(registry_put(reg, &inst, now_ms, NULL), 0);
    registry_instance_clear(&inst);
}

/* Give inst a TCP check with the given thresholds. */
static void inst_set_check(struct registry_instance *inst, uint16_t success, uint16_t failures)
{
    free(inst->check.target);
    inst->check.kind = REGISTRY_CHECK_TCP;
    inst->check.target = xstrdup("192.0.2.10:8080");
    inst->check.interval_ms = 10000;
    inst->check.timeout_ms = 2000;
    inst->check.success_before_passing = success;
    inst->check.failures_before_critical = failures;
}

/* Put an instance with a TCP check; fails the test on error. */
static void put_checked(struct registry *reg, const char *service, const char *id, uint32_t ttl_s,
                        uint16_t success, uint16_t failures, uint64_t now_ms)
{
    struct registry_instance inst;
    inst_init(&inst, service, id, ttl_s);
    inst_set_check(&inst, success, failures);
    cr_assert_eq(registry_put(reg, &inst, now_ms, NULL), 0);
    registry_instance_clear(&inst);
}

static const struct registry_instance *find(struct registry *reg, const char *service,
                                            const char *id)
{
    const struct registry_instance *got = registry_find_instance(reg, service, id);
    cr_assert_not_null(got, "%s/%s is registered", service, id);
    return got;
}

/* Assert the effective health and reason of service/id. */
static void expect_health(struct registry *reg, const char *service, const char *id,
                          enum registry_health health, const char *reason)
{
    const struct registry_instance *got = find(reg, service, id);
    cr_assert_eq(got->health, health, "%s/%s is %s, want %s", service, id,
                 registry_health_name(got->health), registry_health_name(health));
    cr_assert_not_null(got->reason);
    cr_assert_str_eq(got->reason, reason);
}

/* ---- change recorder ---- */

struct event {
    enum registry_change change;
    char service[64];
    char id[64];
    uint64_t serial;     /* registry_serial() seen inside the callback */
    bool present;        /* registry_find_instance() non-NULL inside the callback */
    uint64_t expires_ms; /* the stored deadline seen inside the callback, when present */
};

struct recorder {
    struct registry *reg;
    struct event events[64]; /* the first 64 since n was last reset */
    size_t n;                /* every event, also those past the first 64 */
    bool preserving;         /* registry_is_preserving() seen by the last PRESERVATION event */
    bool unchecked;          /* skip registry_check() inside the callback (large tests) */
};

static void record(void *user, enum registry_change change, const char *service, const char *id)
{
    struct recorder *rec = user;
    if (change == REGISTRY_CHANGE_PRESERVATION) {
        cr_assert_null(service);
        cr_assert_null(id);
        rec->preserving = registry_is_preserving(rec->reg);
    } else {
        cr_assert_not_null(service);
        cr_assert_not_null(id);
    }
    if (!rec->unchecked)
        cr_assert(registry_check(rec->reg), "consistent inside the callback");
    if (rec->n++ >= 64)
        return;
    struct event *ev = &rec->events[rec->n - 1];
    ev->change = change;
    snprintf(ev->service, sizeof(ev->service), "%s", service ? service : "-");
    snprintf(ev->id, sizeof(ev->id), "%s", id ? id : "-");
    ev->serial = registry_serial(rec->reg);
    const struct registry_instance *inst = registry_find_instance(rec->reg, service, id);
    ev->present = inst != NULL;
    ev->expires_ms = inst ? inst->expires_ms : 0;
}

static struct registry *new_recorded_opts(struct recorder *rec, const struct registry_options *opts)
{
    memset(rec, 0, sizeof(*rec));
    rec->reg = registry_new(opts, record, rec);
    cr_assert_not_null(rec->reg);
    return rec->reg;
}

static struct registry *new_recorded(struct recorder *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->reg = registry_new(NULL, record, rec);
    cr_assert_not_null(rec->reg);
    return rec->reg;
}

/* ---- lifecycle ---- */

Test(registry, new_registry_is_empty)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    cr_assert_not_null(reg);
    cr_assert_eq(registry_service_count(reg), 0);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert_eq(registry_serial(reg), 0);
    cr_assert_eq(registry_next_deadline(reg), UINT64_MAX);
    cr_assert_null(registry_find_service(reg, "web"));
    cr_assert_null(registry_find_instance(reg, "web", "web-1"));
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, free_null_does_nothing)
{
    registry_free(NULL);
    registry_instance_clear(NULL);
}

Test(registry, free_releases_stored_instances)
{
    /* ASan's leak checker fails this test if anything stored is not freed. */
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_tag(&inst, "primary");
    inst_add_meta(&inst, "version", "1.4");
    cr_assert_eq(registry_put(reg, &inst, 0, NULL), 0);
    registry_instance_clear(&inst);
    put(reg, "db", "db-1", 30, 0);
    registry_free(reg);
}

Test(registry, instance_clear_zeroes_owned_fields)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_tag(&inst, "a");
    inst_add_meta(&inst, "k", "v");
    registry_instance_clear(&inst);
    cr_assert_null(inst.service);
    cr_assert_null(inst.id);
    cr_assert_null(inst.tags);
    cr_assert_eq(inst.n_tags, 0);
    cr_assert_null(inst.meta);
    cr_assert_eq(inst.n_meta, 0);
    registry_instance_clear(&inst); /* twice is harmless */
}

/* ---- validation ---- */

Test(registry, validate_accepts_full_instance)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 1);
    inst_add_addr(&inst, AF_INET6, "2001:db8::10");
    inst_add_tag(&inst, "primary");
    inst_add_meta(&inst, "version", "1.4");
    inst.proto = REGISTRY_PROTO_UDP;
    inst.port = 65535;
    expect_valid(&inst);
}

Test(registry, validate_rejects_bad_service)
{
    const char *bad[] = {"", "Web", "_web", "-web", "web-", "we b", "web.x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct registry_instance inst;
        inst_init(&inst, bad[i], "web-1", 30);
        expect_invalid(&inst, "service");
    }
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    free(inst.service);
    inst.service = NULL;
    expect_invalid(&inst, "service");
    char long_label[65];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    inst_init(&inst, long_label, "web-1", 30);
    expect_invalid(&inst, "service");
    long_label[63] = '\0';
    inst_init(&inst, long_label, "web-1", 30);
    expect_valid(&inst);
}

Test(registry, validate_rejects_bad_id)
{
    const char *bad[] = {"", "Web-1", "_x", "-x", "x-", "x_y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct registry_instance inst;
        inst_init(&inst, "web", bad[i], 30);
        expect_invalid(&inst, "id");
    }
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    free(inst.id);
    inst.id = NULL;
    expect_invalid(&inst, "id");
}

Test(registry, validate_rejects_bad_address_count)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.n_addrs = 0;
    expect_invalid(&inst, "addresses");

    inst_init(&inst, "web", "web-1", 30);
    inst.n_addrs = REGISTRY_MAX_ADDRS + 1;
    expect_invalid(&inst, "addresses");

    inst_init(&inst, "web", "web-1", 30);
    for (int i = 1; i < REGISTRY_MAX_ADDRS; i++) {
        char text[32];
        snprintf(text, sizeof(text), "192.0.2.%d", 100 + i);
        inst_add_addr(&inst, AF_INET, text);
    }
    cr_assert_eq(inst.n_addrs, REGISTRY_MAX_ADDRS);
    expect_valid(&inst);
}

Test(registry, validate_rejects_bad_address_family)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.addrs[0].family = AF_UNIX;
    expect_invalid(&inst, "addresses");
}

Test(registry, validate_rejects_duplicate_addresses)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_addr(&inst, AF_INET, "192.0.2.10");
    expect_invalid(&inst, "addresses");

    inst_init(&inst, "web", "web-1", 30);
    inst_add_addr(&inst, AF_INET6, "2001:db8::1");
    inst_add_addr(&inst, AF_INET6, "2001:db8:0::1");
    expect_invalid(&inst, "addresses");

    /* Bytes past the first 4 of an IPv4 address do not count. */
    inst_init(&inst, "web", "web-1", 30);
    inst_add_addr(&inst, AF_INET, "192.0.2.10");
    inst.addrs[1].bytes[10] = 0xff;
    expect_invalid(&inst, "addresses");
}

Test(registry, validate_accepts_same_bytes_in_other_family)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.addrs[1] = inst.addrs[0];
    inst.addrs[1].family = AF_INET6;
    inst.n_addrs = 2;
    expect_valid(&inst);
}

Test(registry, validate_rejects_port_zero)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.port = 0;
    expect_invalid(&inst, "port");
    inst_init(&inst, "web", "web-1", 30);
    inst.port = 1;
    expect_valid(&inst);
}

Test(registry, validate_rejects_bad_proto)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.proto = (enum registry_proto)2;
    expect_invalid(&inst, "proto");
}

Test(registry, validate_rejects_ttl_zero)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 0);
    expect_invalid(&inst, "ttl");
}

Test(registry, validate_rejects_bad_tags)
{
    const char *bad[] = {"Primary", "_sub", "", "a_b", "-a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct registry_instance inst;
        inst_init(&inst, "web", "web-1", 30);
        inst_add_tag(&inst, "ok");
        inst_add_tag(&inst, bad[i]);
        expect_invalid(&inst, "tags");
    }
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_tag(&inst, "primary");
    inst_add_tag(&inst, "primary");
    expect_invalid(&inst, "tags");

    inst_init(&inst, "web", "web-1", 30);
    inst.n_tags = 1; /* tags == NULL */
    cr_assert_eq(registry_validate(&inst, NULL), DNSD_EINVAL);
    inst.n_tags = 0;
    registry_instance_clear(&inst);
}

Test(registry, validate_limits_tag_count)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    for (int i = 0; i < REGISTRY_MAX_TAGS; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "t%d", i);
        inst_add_tag(&inst, tag);
    }
    cr_assert_eq(registry_validate(&inst, NULL), 0);
    inst_add_tag(&inst, "one-too-many");
    expect_invalid(&inst, "tags");
}

Test(registry, validate_limits_meta_count)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    for (int i = 0; i < REGISTRY_MAX_META; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        inst_add_meta(&inst, key, "v");
    }
    cr_assert_eq(registry_validate(&inst, NULL), 0);
    inst_add_meta(&inst, "extra", "v");
    expect_invalid(&inst, "meta");
}

Test(registry, validate_rejects_bad_meta_keys)
{
    char long_key[REGISTRY_MAX_META_KEY_LEN + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    const char *bad[] = {"", "a=b", "a b", "tab\tkey", "del\x7f", "caf\xc3\xa9", long_key};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct registry_instance inst;
        inst_init(&inst, "web", "web-1", 30);
        inst_add_meta(&inst, bad[i], "v");
        expect_invalid(&inst, "meta");
    }
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    long_key[REGISTRY_MAX_META_KEY_LEN] = '\0';
    inst_add_meta(&inst, long_key, "v");
    inst_add_meta(&inst, "!~\"#", "v");
    expect_valid(&inst);
}

Test(registry, validate_rejects_case_insensitive_duplicate_meta_keys)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_meta(&inst, "Version", "1");
    inst_add_meta(&inst, "vERSION", "2");
    expect_invalid(&inst, "meta");
}

Test(registry, validate_limits_meta_string_length)
{
    /* "key=value" may be 255 bytes, not 256. */
    char value[256];
    memset(value, 'v', sizeof(value));
    value[REGISTRY_MAX_TXT_LEN - 4] = '\0'; /* "key=" + 251 = 255 */
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_meta(&inst, "key", value);
    expect_valid(&inst);

    value[REGISTRY_MAX_TXT_LEN - 4] = 'v';
    value[REGISTRY_MAX_TXT_LEN - 3] = '\0';
    inst_init(&inst, "web", "web-1", 30);
    inst_add_meta(&inst, "key", value);
    expect_invalid(&inst, "meta");
}

Test(registry, validate_meta_values)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_meta(&inst, "note", "line\nbreak");
    expect_invalid(&inst, "meta");

    inst_init(&inst, "web", "web-1", 30);
    inst_add_meta(&inst, "note", "");
    inst_add_meta(&inst, "utf8", "caf\xc3\xa9 = ok \x7f");
    expect_valid(&inst);

    inst_init(&inst, "web", "web-1", 30);
    inst_add_meta(&inst, "note", "v");
    free(inst.meta[0].value);
    inst.meta[0].value = NULL;
    expect_invalid(&inst, "meta");

    inst_init(&inst, "web", "web-1", 30);
    inst.n_meta = 1; /* meta == NULL */
    cr_assert_eq(registry_validate(&inst, NULL), DNSD_EINVAL);
    inst.n_meta = 0;
    registry_instance_clear(&inst);
}

Test(registry, put_rejects_invalid_and_changes_nothing)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 30, 1000);
    uint64_t serial = registry_serial(reg);
    size_t events = rec.n;

    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 99);
    inst.port = 0;
    const char *field = NULL;
    cr_assert_eq(registry_put(reg, &inst, 2000, &field), DNSD_EINVAL);
    cr_assert_str_eq(field, "port");
    registry_instance_clear(&inst);

    cr_assert_eq(registry_serial(reg), serial);
    cr_assert_eq(rec.n, events);
    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_not_null(got);
    cr_assert_eq(got->ttl_s, 30);
    cr_assert_eq(got->port, 8080);
    cr_assert_eq(got->heartbeat_ms, 1000);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

/* ---- storage ---- */

Test(registry, put_stores_a_deep_copy)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_addr(&inst, AF_INET6, "2001:db8::10");
    inst_add_tag(&inst, "primary");
    inst_add_tag(&inst, "eu");
    inst_add_meta(&inst, "version", "1.4");
    inst.priority = 10;
    inst.weight = 5;
    inst.proto = REGISTRY_PROTO_UDP;
    inst.registered_ms = 77; /* state fields on input are ignored */
    inst.expires_ms = 77;
    cr_assert_eq(registry_put(reg, &inst, 5000, NULL), 0);
    registry_instance_clear(&inst);

    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_not_null(got);
    cr_assert_str_eq(got->service, "web");
    cr_assert_str_eq(got->id, "web-1");
    cr_assert_eq(got->n_addrs, 2);
    cr_assert_eq(got->addrs[0].family, AF_INET);
    cr_assert_eq(got->addrs[1].family, AF_INET6);
    uint8_t v6[16];
    inet_pton(AF_INET6, "2001:db8::10", v6);
    cr_assert_arr_eq(got->addrs[1].bytes, v6, 16);
    cr_assert_eq(got->port, 8080);
    cr_assert_eq(got->proto, REGISTRY_PROTO_UDP);
    cr_assert_eq(got->priority, 10);
    cr_assert_eq(got->weight, 5);
    cr_assert_eq(got->n_tags, 2);
    cr_assert_str_eq(got->tags[0], "primary");
    cr_assert_str_eq(got->tags[1], "eu");
    cr_assert_eq(got->n_meta, 1);
    cr_assert_str_eq(got->meta[0].key, "version");
    cr_assert_str_eq(got->meta[0].value, "1.4");
    cr_assert_eq(got->ttl_s, 30);
    cr_assert_eq(got->registered_ms, 5000);
    cr_assert_eq(got->heartbeat_ms, 5000);
    cr_assert_eq(got->expires_ms, 35000);
    cr_assert_eq(registry_next_deadline(reg), 35000);
    cr_assert_eq(registry_service_count(reg), 1);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, put_replaces_and_keeps_registered_ms)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 30, 1000);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 5);
    inst.port = 9090;
    inst_add_tag(&inst, "canary");
    cr_assert_eq(registry_put(reg, &inst, 4000, NULL), 0);
    registry_instance_clear(&inst);

    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(got->port, 9090);
    cr_assert_eq(got->n_tags, 1);
    cr_assert_str_eq(got->tags[0], "canary");
    cr_assert_eq(got->ttl_s, 5);
    cr_assert_eq(got->registered_ms, 1000);
    cr_assert_eq(got->heartbeat_ms, 4000);
    cr_assert_eq(got->expires_ms, 9000);
    cr_assert_eq(registry_next_deadline(reg), 9000);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, lease_deadline_saturates)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", UINT32_MAX, UINT64_MAX - 10);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->expires_ms, UINT64_MAX);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, find_returns_null_for_unknown)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    cr_assert_null(registry_find_instance(reg, "web", "web-2"));
    cr_assert_null(registry_find_instance(reg, "db", "web-1"));
    cr_assert_null(registry_find_instance(reg, NULL, "web-1"));
    cr_assert_null(registry_find_instance(reg, "web", NULL));
    cr_assert_null(registry_find_service(reg, "db"));
    cr_assert_null(registry_find_service(reg, NULL));
    const struct registry_service *svc = registry_find_service(reg, "web");
    cr_assert_not_null(svc);
    cr_assert_str_eq(registry_service_name(svc), "web");
    cr_assert_eq(registry_service_instance_count(svc), 1);
    cr_assert_null(registry_service_instance(svc, 1));
    registry_free(reg);
}

static bool collect_names(const struct registry_service *svc, void *user)
{
    char *buf = user;
    strcat(buf, registry_service_name(svc));
    strcat(buf, ",");
    return true;
}

Test(registry, foreach_visits_services_in_name_order)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    const char *names[] = {"web", "api", "db", "cache", "zeta", "a", "b2", "b10"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        put(reg, names[i], "x", 30, 0);
    char buf[256] = "";
    registry_foreach_service(reg, collect_names, buf);
    cr_assert_str_eq(buf, "a,api,b10,b2,cache,db,web,zeta,");
    cr_assert_eq(registry_service_count(reg), 8);
    registry_free(reg);
}

static bool stop_after_two(const struct registry_service *svc, void *user)
{
    (void)svc;
    int *count = user;
    return ++*count < 2;
}

Test(registry, foreach_stops_when_visit_returns_false)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "a", "x", 30, 0);
    put(reg, "b", "x", 30, 0);
    put(reg, "c", "x", 30, 0);
    int count = 0;
    registry_foreach_service(reg, stop_after_two, &count);
    cr_assert_eq(count, 2);
    registry_free(reg);
}

Test(registry, instances_come_in_id_order)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    const char *ids[] = {"web-3", "web-1", "web-10", "web-2", "a"};
    for (size_t i = 0; i < 5; i++)
        put(reg, "web", ids[i], 30, 0);
    put(reg, "db", "db-1", 30, 0);
    const struct registry_service *svc = registry_find_service(reg, "web");
    cr_assert_eq(registry_service_instance_count(svc), 5);
    const char *want[] = {"a", "web-1", "web-10", "web-2", "web-3"};
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(registry_service_instance(svc, i)->id, want[i]);
    cr_assert_eq(registry_instance_count(reg), 6);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

/* ---- leases ---- */

Test(registry, renew_moves_the_deadline)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 10, 0);
    put(reg, "web", "web-2", 20, 0);
    cr_assert_eq(registry_next_deadline(reg), 10000);
    cr_assert_eq(renew(reg, "web", "web-1", 15000), 0);
    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(got->heartbeat_ms, 15000);
    cr_assert_eq(got->expires_ms, 25000);
    cr_assert_eq(got->registered_ms, 0);
    cr_assert_eq(registry_next_deadline(reg), 20000);
    cr_assert(registry_check(reg));
    /* At 20000 only web-2 lapses; web-1 stays passing thanks to the renewal. */
    cr_assert_eq(registry_advance(reg, 20000), 1);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    expect_health(reg, "web", "web-2", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_eq(registry_next_deadline(reg), 25000);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, renew_unknown_is_enoent)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    cr_assert_eq(renew(reg, "web", "web-1", 0), DNSD_ENOENT);
    put(reg, "web", "web-1", 10, 0);
    cr_assert_eq(renew(reg, "web", "web-2", 0), DNSD_ENOENT);
    cr_assert_eq(registry_serial(reg), 1);
    registry_free(reg);
}

Test(registry, lease_lapses_at_the_exact_deadline)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 30, 1000);
    cr_assert_eq(registry_next_deadline(reg), 31000);
    cr_assert_eq(registry_advance(reg, 30999), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert_eq(registry_advance(reg, 31000), 1);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_eq(find(reg, "web", "web-1")->critical_since_ms, 31000);
    /* A lapsed lease is critical, not gone: deregister_after 0 never removes it. */
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert_eq(registry_service_count(reg), 1);
    cr_assert_eq(registry_next_deadline(reg), UINT64_MAX);
    cr_assert_eq(registry_advance(reg, UINT64_MAX), 0);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, advance_applies_all_due_lapses_and_counts_them)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "a", 5, 0);
    put(reg, "web", "b", 1, 0);
    put(reg, "db", "c", 3, 0);
    put(reg, "db", "d", 9, 0);
    cr_assert_eq(registry_next_deadline(reg), 1000);
    cr_assert_eq(registry_advance(reg, 5000), 3);
    cr_assert_eq(registry_instance_count(reg), 4);
    expect_health(reg, "web", "a", REGISTRY_HEALTH_CRITICAL, "lease expired");
    expect_health(reg, "web", "b", REGISTRY_HEALTH_CRITICAL, "lease expired");
    expect_health(reg, "db", "c", REGISTRY_HEALTH_CRITICAL, "lease expired");
    expect_health(reg, "db", "d", REGISTRY_HEALTH_PASSING, "");
    /* critical_since is the lapse moment, not the moment advance ran. */
    cr_assert_eq(find(reg, "web", "b")->critical_since_ms, 1000);
    cr_assert_eq(find(reg, "db", "c")->critical_since_ms, 3000);
    cr_assert_eq(registry_next_deadline(reg), 9000);
    cr_assert_eq(registry_advance(reg, 5000), 0, "nothing twice");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, lapsed_then_removed_after_deregister_after)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put_dereg(reg, "web", "a", 5, 2000, 0);
    put_dereg(reg, "web", "b", 1, 2000, 0);
    put_dereg(reg, "db", "c", 3, 2000, 0);
    put_dereg(reg, "db", "d", 9, 2000, 0);
    cr_assert_eq(registry_advance(reg, 5000), 3 + 2); /* a, b, c lapse; b and c go */
    cr_assert_null(registry_find_instance(reg, "web", "b"));
    cr_assert_null(registry_find_instance(reg, "db", "c"));
    expect_health(reg, "web", "a", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_eq(registry_next_deadline(reg), 7000);
    cr_assert_eq(registry_advance(reg, 7000), 1);
    cr_assert_eq(registry_service_count(reg), 1);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert_eq(registry_next_deadline(reg), 9000);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, remove_deletes_and_drops_empty_service)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    put(reg, "web", "web-2", 10, 0);
    cr_assert_eq(registry_remove(reg, "web", "web-2"), 0);
    cr_assert_null(registry_find_instance(reg, "web", "web-2"));
    cr_assert_eq(registry_next_deadline(reg), 30000);
    cr_assert_eq(registry_service_count(reg), 1);
    cr_assert_eq(registry_remove(reg, "web", "web-1"), 0);
    cr_assert_eq(registry_service_count(reg), 0);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, remove_unknown_is_enoent)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    cr_assert_eq(registry_remove(reg, "web", "web-1"), DNSD_ENOENT);
    put(reg, "web", "web-1", 30, 0);
    cr_assert_eq(registry_remove(reg, "web", "web-9"), DNSD_ENOENT);
    cr_assert_eq(registry_remove(reg, "db", "web-1"), DNSD_ENOENT);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert_eq(registry_serial(reg), 1);
    registry_free(reg);
}

/* ---- serial and callback ---- */

Test(registry, serial_counts_every_change)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 10, 0);
    cr_assert_eq(registry_serial(reg), 1);
    put(reg, "web", "web-1", 10, 0);
    cr_assert_eq(registry_serial(reg), 2);
    put(reg, "web", "web-2", 10, 0);
    cr_assert_eq(registry_serial(reg), 3);
    cr_assert_eq(renew(reg, "web", "web-1", 5000), 0);
    cr_assert_eq(registry_serial(reg), 4);
    cr_assert_eq(registry_remove(reg, "web", "web-1"), 0);
    cr_assert_eq(registry_serial(reg), 5);
    cr_assert_eq(registry_advance(reg, 9999), 0);
    cr_assert_eq(registry_serial(reg), 5);
    cr_assert_eq(registry_advance(reg, 10000), 1); /* web-2 lapses: a health change */
    cr_assert_eq(registry_serial(reg), 6);
    cr_assert_eq(registry_heartbeat(reg, "web", "web-2", REGISTRY_HEALTH_WARNING, "x", 10000, NULL),
                 0);
    cr_assert_eq(registry_serial(reg), 7);
    registry_free(reg);
}

Test(registry, callback_hears_each_change_after_it_is_applied)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 10, 0);
    put(reg, "web", "web-1", 20, 1000);
    cr_assert_eq(renew(reg, "web", "web-1", 2000), 0);
    put_dereg(reg, "db", "db-1", 5, 1000, 0);
    cr_assert_eq(registry_remove(reg, "web", "web-1"), 0);
    cr_assert_eq(registry_advance(reg, 5000), 1);
    cr_assert_eq(registry_advance(reg, 6000), 1);

    struct {
        enum registry_change change;
        const char *service, *id;
        bool present;
        uint64_t expires_ms;
    } want[] = {
        {REGISTRY_CHANGE_PUT, "web", "web-1", true, 10000},
        {REGISTRY_CHANGE_PUT, "web", "web-1", true, 21000},
        {REGISTRY_CHANGE_RENEW, "web", "web-1", true, 22000},
        {REGISTRY_CHANGE_PUT, "db", "db-1", true, 5000},
        {REGISTRY_CHANGE_REMOVE, "web", "web-1", false, 0},
        {REGISTRY_CHANGE_HEALTH, "db", "db-1", true, 5000},
        {REGISTRY_CHANGE_EXPIRE, "db", "db-1", false, 0},
    };
    cr_assert_eq(rec.n, 7);
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq(rec.events[i].change, want[i].change, "event %zu", i);
        cr_assert_str_eq(rec.events[i].service, want[i].service);
        cr_assert_str_eq(rec.events[i].id, want[i].id);
        cr_assert_eq(rec.events[i].present, want[i].present, "event %zu", i);
        cr_assert_eq(rec.events[i].expires_ms, want[i].expires_ms, "event %zu", i);
        cr_assert_eq(rec.events[i].serial, i + 1, "serial already counts event %zu", i);
    }
    registry_free(reg);
}

Test(registry, failed_operations_do_not_call_back)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    cr_assert_eq(registry_remove(reg, "web", "x"), DNSD_ENOENT);
    cr_assert_eq(renew(reg, "web", "x", 0), DNSD_ENOENT);
    cr_assert_eq(registry_advance(reg, 1000000), 0);
    cr_assert_eq(rec.n, 0);
    registry_free(reg);
}

/* Put inst with the k-th strdup failing, for every k until it succeeds; every failure must
 * be DNSD_ENOMEM and leave the registry exactly as it was. */
static void put_despite_oom(struct recorder *rec, struct registry_instance *inst, uint64_t now)
{
    int failures = 0;
    for (long k = 0;; k++) {
        uint64_t serial = registry_serial(rec->reg);
        size_t count = registry_instance_count(rec->reg), events = rec->n;
        strdups_left = k;
        int rc = registry_put(rec->reg, inst, now, NULL);
        strdups_left = -1;
        if (rc == 0)
            break;
        cr_assert_eq(rc, DNSD_ENOMEM);
        cr_assert_eq(registry_serial(rec->reg), serial);
        cr_assert_eq(registry_instance_count(rec->reg), count);
        cr_assert_eq(rec->n, events, "no callback for a failed put");
        cr_assert(registry_check(rec->reg));
        failures++;
    }
    cr_assert_gt(failures, 0);
}

Test(registry, put_out_of_memory_changes_nothing)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_tag(&inst, "a");
    inst_add_tag(&inst, "b");
    inst_add_meta(&inst, "k", "v");
    inst_add_meta(&inst, "l", "w");

    put_despite_oom(&rec, &inst, 1000); /* new service and instance */
    cr_assert_eq(registry_instance_count(reg), 1);
    inst.port = 9999;
    put_despite_oom(&rec, &inst, 2000); /* replacement */
    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(got->port, 9999);
    cr_assert_eq(got->registered_ms, 1000);
    free(inst.id);
    inst.id = xstrdup("web-2");
    put_despite_oom(&rec, &inst, 3000); /* new instance in an existing service */
    cr_assert_eq(registry_instance_count(reg), 2);
    cr_assert_eq(rec.n, 3);
    registry_instance_clear(&inst);
    registry_free(reg);
}

/* ---- health names and validation ---- */

Test(registry, health_names_round_trip)
{
    const char *names[] = {"passing", "warning", "critical", "maintenance"};
    for (int h = 0; h < 4; h++) {
        cr_assert_str_eq(registry_health_name((enum registry_health)h), names[h]);
        enum registry_health got = REGISTRY_HEALTH_PASSING;
        cr_assert_eq(registry_health_parse(names[h], &got), 0);
        cr_assert_eq(got, (enum registry_health)h);
    }
    enum registry_health out = REGISTRY_HEALTH_WARNING;
    cr_assert_eq(registry_health_parse("Passing", &out), DNSD_EINVAL);
    cr_assert_eq(registry_health_parse("", &out), DNSD_EINVAL);
    cr_assert_eq(registry_health_parse(NULL, &out), DNSD_EINVAL);
    cr_assert_eq(out, REGISTRY_HEALTH_WARNING, "untouched on failure");
    cr_assert_str_eq(registry_health_name((enum registry_health)7), "unknown");
}

Test(registry, validate_check_rules)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_set_check(&inst, 1, 1);
    expect_valid(&inst);

    struct {
        int kind;
        const char *target;
        uint32_t interval, timeout;
        uint16_t success, failures;
        bool ok;
    } cases[] = {
        {REGISTRY_CHECK_HTTP, "http://192.0.2.10:8080/health", 100, 99, 100, 100, true},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 3600000, 1, 1, 1, true},
        {REGISTRY_CHECK_TCP, NULL, 10000, 2000, 1, 1, false},
        {REGISTRY_CHECK_TCP, "", 10000, 2000, 1, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10 :80", 10000, 2000, 1, 1, false},
        {7, "192.0.2.10:8080", 10000, 2000, 1, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 99, 50, 1, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 3600001, 2000, 1, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 10000, 0, 1, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 10000, 10000, 1, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 10000, 2000, 0, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 10000, 2000, 101, 1, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 10000, 2000, 1, 0, false},
        {REGISTRY_CHECK_TCP, "192.0.2.10:8080", 10000, 2000, 1, 101, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        inst_init(&inst, "web", "web-1", 30);
        inst.check.kind = (enum registry_check_kind)cases[i].kind;
        inst.check.target = cases[i].target ? xstrdup(cases[i].target) : NULL;
        inst.check.interval_ms = cases[i].interval;
        inst.check.timeout_ms = cases[i].timeout;
        inst.check.success_before_passing = cases[i].success;
        inst.check.failures_before_critical = cases[i].failures;
        if (cases[i].ok)
            expect_valid(&inst);
        else
            expect_invalid(&inst, "check");
    }
    /* A target longer than REGISTRY_MAX_CHECK_TARGET. */
    inst_init(&inst, "web", "web-1", 30);
    inst_set_check(&inst, 1, 1);
    free(inst.check.target);
    inst.check.target = malloc(REGISTRY_MAX_CHECK_TARGET + 2);
    cr_assert_not_null(inst.check.target);
    memset(inst.check.target, 'a', REGISTRY_MAX_CHECK_TARGET + 1);
    inst.check.target[REGISTRY_MAX_CHECK_TARGET + 1] = '\0';
    expect_invalid(&inst, "check");
}

Test(registry, validate_deregister_after_limit)
{
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.deregister_after_ms = DNSD_DURATION_MAX_MS;
    expect_valid(&inst);
    inst_init(&inst, "web", "web-1", 30);
    inst.deregister_after_ms = DNSD_DURATION_MAX_MS + 1;
    expect_invalid(&inst, "deregister_after");
}

Test(registry, put_copies_the_check_and_clear_frees_it)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_set_check(&inst, 3, 2);
    inst.check.kind = REGISTRY_CHECK_HTTP;
    inst.check.target[0] = 'X'; /* still printable; the copy must not follow later edits */
    inst.deregister_after_ms = 60000;
    cr_assert_eq(registry_put(reg, &inst, 0, NULL), 0);
    inst.check.target[0] = 'Y';
    const struct registry_instance *got = find(reg, "web", "web-1");
    cr_assert_neq(got->check.target, inst.check.target);
    cr_assert_str_eq(got->check.target, "X92.0.2.10:8080");
    cr_assert_eq(got->check.kind, REGISTRY_CHECK_HTTP);
    cr_assert_eq(got->check.interval_ms, 10000);
    cr_assert_eq(got->check.timeout_ms, 2000);
    cr_assert_eq(got->check.success_before_passing, 3);
    cr_assert_eq(got->check.failures_before_critical, 2);
    cr_assert_eq(got->deregister_after_ms, 60000);
    registry_instance_clear(&inst);
    cr_assert_null(inst.check.target);
    registry_free(reg);
}

Test(registry, put_ignores_the_target_of_no_check)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.check.target = xstrdup("ignored");
    cr_assert_eq(registry_put(reg, &inst, 0, NULL), 0);
    cr_assert_null(find(reg, "web", "web-1")->check.target);
    cr_assert(registry_check(reg));
    registry_instance_clear(&inst);
    registry_free(reg);
}

/* ---- health: leases and reported status ---- */

Test(registry, new_instance_is_passing_with_empty_reason)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    /* State fields on input are ignored. */
    inst.health = REGISTRY_HEALTH_CRITICAL;
    inst.maintenance = true;
    inst.reported = REGISTRY_HEALTH_CRITICAL;
    inst.critical_since_ms = 5;
    cr_assert_eq(registry_put(reg, &inst, 1000, NULL), 0);
    registry_instance_clear(&inst);
    const struct registry_instance *got = find(reg, "web", "web-1");
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert_eq(got->reported, REGISTRY_HEALTH_PASSING);
    cr_assert_null(got->note);
    cr_assert_not(got->maintenance);
    cr_assert_null(got->maintenance_reason);
    cr_assert_not(got->check_pending);
    cr_assert_null(got->check_output);
    cr_assert_eq(got->critical_since_ms, 0);
    registry_free(reg);
}

Test(registry, lapsed_lease_comes_back_with_a_heartbeat)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put_dereg(reg, "web", "web-1", 10, 60000, 0);
    cr_assert_eq(registry_advance(reg, 10000), 1);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_eq(rec.n, 2);
    cr_assert_eq(rec.events[1].change, REGISTRY_CHANGE_HEALTH);
    cr_assert_eq(registry_next_deadline(reg), 70000, "removal is next");
    cr_assert_eq(renew(reg, "web", "web-1", 30000), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert_eq(find(reg, "web", "web-1")->critical_since_ms, 0);
    cr_assert_eq(find(reg, "web", "web-1")->expires_ms, 40000);
    cr_assert_eq(rec.n, 3);
    cr_assert_eq(rec.events[2].change, REGISTRY_CHANGE_HEALTH);
    cr_assert_eq(registry_next_deadline(reg), 40000);
    cr_assert_eq(registry_advance(reg, 39999), 0);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, deregister_after_removes_exactly_at_the_deadline)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put_dereg(reg, "web", "web-1", 10, 5000, 0);
    put_dereg(reg, "web", "web-2", 10, 0, 0); /* never removed */
    cr_assert_eq(registry_advance(reg, 10000), 2);
    cr_assert_eq(registry_next_deadline(reg), 15000);
    cr_assert_eq(registry_advance(reg, 14999), 0);
    cr_assert_not_null(registry_find_instance(reg, "web", "web-1"));
    cr_assert_eq(registry_advance(reg, 15000), 1);
    cr_assert_null(registry_find_instance(reg, "web", "web-1"));
    cr_assert_eq(rec.events[rec.n - 1].change, REGISTRY_CHANGE_EXPIRE);
    cr_assert_str_eq(rec.events[rec.n - 1].id, "web-1");
    cr_assert_not(rec.events[rec.n - 1].present);
    cr_assert_eq(registry_next_deadline(reg), UINT64_MAX);
    cr_assert_eq(registry_advance(reg, UINT64_MAX - 1), 0);
    expect_health(reg, "web", "web-2", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, deregister_after_counts_any_critical_and_restarts)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put_dereg(reg, "web", "web-1", 100, 5000, 0);
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, NULL, 1000, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "heartbeat: critical");
    cr_assert_eq(find(reg, "web", "web-1")->critical_since_ms, 1000);
    cr_assert_eq(registry_next_deadline(reg), 6000);
    /* Still critical with another reason: the clock keeps running. */
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "oom", 3000, NULL), 0);
    cr_assert_eq(find(reg, "web", "web-1")->critical_since_ms, 1000);
    cr_assert_eq(registry_next_deadline(reg), 6000);
    /* Passing for a moment resets it. */
    cr_assert_eq(renew(reg, "web", "web-1", 5000), 0);
    cr_assert_eq(registry_next_deadline(reg), 105000);
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, NULL, 5500, NULL), 0);
    cr_assert_eq(registry_advance(reg, 10499), 0);
    cr_assert_eq(registry_advance(reg, 10500), 1);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, heartbeat_reports_status_and_note)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    struct {
        enum registry_health status;
        const char *note;
        const char *reason;
    } cases[] = {
        {REGISTRY_HEALTH_WARNING, "disk 90%", "heartbeat: disk 90%"},
        {REGISTRY_HEALTH_WARNING, NULL, "heartbeat: warning"},
        {REGISTRY_HEALTH_CRITICAL, NULL, "heartbeat: critical"},
        {REGISTRY_HEALTH_CRITICAL, "db down", "heartbeat: db down"},
        {REGISTRY_HEALTH_PASSING, "all good", "heartbeat: all good"},
        {REGISTRY_HEALTH_PASSING, "", ""},
        {REGISTRY_HEALTH_PASSING, NULL, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t now = 1000 * (i + 1);
        cr_assert_eq(
            registry_heartbeat(reg, "web", "web-1", cases[i].status, cases[i].note, now, NULL), 0);
        expect_health(reg, "web", "web-1", cases[i].status, cases[i].reason);
        const struct registry_instance *got = find(reg, "web", "web-1");
        cr_assert_eq(got->reported, cases[i].status);
        if (cases[i].note && cases[i].note[0])
            cr_assert_str_eq(got->note, cases[i].note);
        else
            cr_assert_null(got->note);
        cr_assert_eq(got->heartbeat_ms, now);
        cr_assert_eq(got->expires_ms, now + 30000);
        cr_assert(registry_check(reg));
    }
    registry_free(reg);
}

Test(registry, heartbeat_rejects_bad_status_and_note)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, NULL, 0, NULL),
                 DNSD_ENOENT);
    put(reg, "web", "web-1", 30, 0);
    char long_note[REGISTRY_MAX_NOTE_LEN + 2];
    memset(long_note, 'n', sizeof(long_note) - 1);
    long_note[sizeof(long_note) - 1] = '\0';
    struct {
        enum registry_health status;
        const char *note;
        const char *field;
    } bad[] = {
        {REGISTRY_HEALTH_MAINTENANCE, NULL, "status"},
        {(enum registry_health)9, NULL, "status"},
        {REGISTRY_HEALTH_PASSING, long_note, "note"},
        {REGISTRY_HEALTH_PASSING, "line\nbreak", "note"},
        {REGISTRY_HEALTH_PASSING, "tab\there", "note"},
        {REGISTRY_HEALTH_PASSING, "del\x7f", "note"},
        {REGISTRY_HEALTH_PASSING, "bad \xc3 utf-8", "note"},
        {REGISTRY_HEALTH_PASSING, "overlong \xc0\xaf", "note"},
        {REGISTRY_HEALTH_PASSING, "surrogate \xed\xa0\x80", "note"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *field = NULL;
        cr_assert_eq(
            registry_heartbeat(reg, "web", "web-1", bad[i].status, bad[i].note, 5000, &field),
            DNSD_EINVAL, "case %zu", i);
        cr_assert_str_eq(field, bad[i].field);
    }
    cr_assert_eq(find(reg, "web", "web-1")->heartbeat_ms, 0, "nothing renewed");
    cr_assert_eq(rec.n, 1, "no callback for a failed heartbeat");
    /* The longest note, and UTF-8, are fine. */
    long_note[REGISTRY_MAX_NOTE_LEN] = '\0';
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, long_note, 1, NULL), 0);
    cr_assert_eq(strlen(find(reg, "web", "web-1")->note), REGISTRY_MAX_NOTE_LEN);
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_WARNING,
                                    "Speicher f\xc3\xbcllt sich \xe2\x9a\xa0 \xf0\x9f\x94\xa5", 2,
                                    NULL),
                 0);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, health_fires_once_per_change_and_renew_otherwise)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 30, 0);
    struct {
        enum registry_health status;
        const char *note;
        enum registry_change want;
    } steps[] = {
        {REGISTRY_HEALTH_PASSING, NULL, REGISTRY_CHANGE_RENEW},
        {REGISTRY_HEALTH_WARNING, "slow", REGISTRY_CHANGE_HEALTH},
        {REGISTRY_HEALTH_WARNING, "slow", REGISTRY_CHANGE_RENEW},
        {REGISTRY_HEALTH_WARNING, "slower", REGISTRY_CHANGE_HEALTH}, /* reason changed */
        {REGISTRY_HEALTH_CRITICAL, "slower", REGISTRY_CHANGE_HEALTH},
        {REGISTRY_HEALTH_PASSING, NULL, REGISTRY_CHANGE_HEALTH},
        {REGISTRY_HEALTH_PASSING, "", REGISTRY_CHANGE_RENEW},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t before = rec.n;
        cr_assert_eq(registry_heartbeat(reg, "web", "web-1", steps[i].status, steps[i].note,
                                        100 * (i + 1), NULL),
                     0);
        cr_assert_eq(rec.n, before + 1, "exactly one callback for step %zu", i);
        cr_assert_eq(rec.events[before].change, steps[i].want, "step %zu", i);
    }
    registry_free(reg);
}

/* ---- health: maintenance ---- */

Test(registry, maintenance_overrides_everything_and_stops_the_clock)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 10);
    inst_set_check(&inst, 1, 1);
    inst.deregister_after_ms = 5000;
    cr_assert_eq(registry_put(reg, &inst, 0, NULL), 0);
    registry_instance_clear(&inst);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "refused", 100),
                 0);
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "x", 200, NULL),
                 0);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, "deploy", 300, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_MAINTENANCE, "deploy");
    cr_assert_str_eq(find(reg, "web", "web-1")->maintenance_reason, "deploy");
    cr_assert_eq(find(reg, "web", "web-1")->critical_since_ms, 0);
    cr_assert_eq(rec.events[rec.n - 1].change, REGISTRY_CHANGE_HEALTH);
    /* The lease lapses underneath, but maintenance wins and nothing is removed. */
    cr_assert_eq(registry_next_deadline(reg), 10200);
    cr_assert_eq(registry_advance(reg, 10200), 0);
    cr_assert_eq(registry_next_deadline(reg), UINT64_MAX);
    cr_assert_eq(registry_advance(reg, 1000000), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_MAINTENANCE, "deploy");
    /* Off again: critical from now, removed deregister_after later. */
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", false, "ignored", 2000000, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_null(find(reg, "web", "web-1")->maintenance_reason);
    cr_assert_eq(find(reg, "web", "web-1")->critical_since_ms, 2000000);
    cr_assert_eq(registry_next_deadline(reg), 2005000);
    cr_assert_eq(registry_advance(reg, 2005000), 1);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, maintenance_default_reason_and_no_op)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 30, 0);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, NULL, 1, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_MAINTENANCE, "maintenance mode");
    cr_assert_eq(rec.n, 2);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, "", 2, NULL), 0);
    cr_assert_eq(rec.n, 2, "no change, no callback");
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, "db migration", 3, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_MAINTENANCE, "db migration");
    cr_assert_eq(rec.n, 3, "a new reason is a change");
    /* Heartbeats under maintenance renew the lease but change nothing visible. */
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "x", 4, NULL),
                 0);
    cr_assert_eq(rec.events[3].change, REGISTRY_CHANGE_RENEW);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", false, NULL, 5, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "heartbeat: x");
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", false, NULL, 6, NULL), 0);
    cr_assert_eq(rec.n, 5);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, maintenance_rejects_bad_reason_and_unknown)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    const char *field = NULL;
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, NULL, 0, &field), DNSD_ENOENT);
    put(reg, "web", "web-1", 30, 0);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, "a\rb", 0, &field),
                 DNSD_EINVAL);
    cr_assert_str_eq(field, "reason");
    char long_reason[REGISTRY_MAX_NOTE_LEN + 2];
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    field = NULL;
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, long_reason, 0, &field),
                 DNSD_EINVAL);
    cr_assert_str_eq(field, "reason");
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    registry_free(reg);
}

/* ---- health: active checks ---- */

Test(registry, check_starts_pending_and_critical)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put_checked(reg, "web", "web-1", 30, 1, 1, 700);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "check: awaiting first result");
    const struct registry_instance *got = find(reg, "web", "web-1");
    cr_assert(got->check_pending);
    cr_assert_null(got->check_output);
    cr_assert_eq(got->critical_since_ms, 700);
    cr_assert_eq(rec.n, 1);
    cr_assert_eq(rec.events[0].change, REGISTRY_CHANGE_PUT);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "connected", 900),
                 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    got = find(reg, "web", "web-1");
    cr_assert_not(got->check_pending);
    cr_assert_str_eq(got->check_output, "connected");
    cr_assert_eq(got->check_last_ms, 900);
    cr_assert_eq(got->check_verdict, REGISTRY_HEALTH_PASSING);
    cr_assert_eq(rec.n, 2);
    cr_assert_eq(rec.events[1].change, REGISTRY_CHANGE_HEALTH);
    /* The same result again changes nothing visible: no callback, no serial. */
    uint64_t serial = registry_serial(reg);
    cr_assert_eq(
        registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "connected", 10900), 0);
    cr_assert_eq(rec.n, 2);
    cr_assert_eq(registry_serial(reg), serial);
    cr_assert_eq(find(reg, "web", "web-1")->check_last_ms, 10900);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, check_thresholds_need_consecutive_results)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put_checked(reg, "web", "web-1", 300, 3, 2, 0);
    struct {
        enum registry_check_outcome outcome;
        const char *output;
        enum registry_health health;
        const char *reason;
    } steps[] = {
        {REGISTRY_CHECK_PASS, "connected", REGISTRY_HEALTH_CRITICAL,
         "check: connected (passed 1 of 3)"},
        {REGISTRY_CHECK_PASS, "connected", REGISTRY_HEALTH_CRITICAL,
         "check: connected (passed 2 of 3)"},
        {REGISTRY_CHECK_FAIL, "refused", REGISTRY_HEALTH_CRITICAL, "check: refused"},
        {REGISTRY_CHECK_PASS, "connected", REGISTRY_HEALTH_CRITICAL,
         "check: connected (passed 1 of 3)"},
        {REGISTRY_CHECK_PASS, "connected", REGISTRY_HEALTH_CRITICAL,
         "check: connected (passed 2 of 3)"},
        {REGISTRY_CHECK_PASS, "connected", REGISTRY_HEALTH_PASSING, ""},
        {REGISTRY_CHECK_FAIL, "timeout after 2000 ms", REGISTRY_HEALTH_PASSING, ""},
        {REGISTRY_CHECK_PASS, "connected", REGISTRY_HEALTH_PASSING, ""},
        {REGISTRY_CHECK_FAIL, "refused", REGISTRY_HEALTH_PASSING, ""},
        {REGISTRY_CHECK_FAIL, "refused", REGISTRY_HEALTH_CRITICAL, "check: refused"},
        {REGISTRY_CHECK_FAIL, "HTTP 500", REGISTRY_HEALTH_CRITICAL, "check: HTTP 500"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        cr_assert_eq(registry_check_result(reg, "web", "web-1", steps[i].outcome, steps[i].output,
                                           1000 * (i + 1)),
                     0);
        expect_health(reg, "web", "web-1", steps[i].health, steps[i].reason);
        cr_assert(registry_check(reg), "step %zu", i);
    }
    const struct registry_instance *got = find(reg, "web", "web-1");
    cr_assert_eq(got->check_failures, 3);
    cr_assert_eq(got->check_successes, 0);
    /* critical since the second failure in a row (step 10, at 10000 ms). */
    cr_assert_eq(got->critical_since_ms, 10000);
    registry_free(reg);
}

Test(registry, check_warning_is_immediate_and_counts_for_neither_side)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put_checked(reg, "web", "web-1", 300, 2, 2, 0);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "HTTP 200", 1), 0);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_WARN, "HTTP 429", 2), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "check: HTTP 429");
    const struct registry_instance *got = find(reg, "web", "web-1");
    cr_assert_eq(got->check_successes, 1);
    cr_assert_eq(got->check_failures, 0);
    cr_assert_eq(got->check_verdict, REGISTRY_HEALTH_WARNING);
    /* One more pass completes the pair that the warning did not break. */
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "HTTP 200", 3), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    /* A single failure after a warning keeps the warning verdict. */
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_WARN, NULL, 4), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "check: warning");
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "HTTP 500", 5), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "check: HTTP 500 (failed 1 of 2)");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, check_output_is_cut_and_cleaned)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put_checked(reg, "web", "web-1", 300, 1, 1, 0);
    char big[400];
    memset(big, 'o', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, big, 1), 0);
    const struct registry_instance *got = find(reg, "web", "web-1");
    cr_assert_eq(strlen(got->check_output), REGISTRY_MAX_NOTE_LEN);
    cr_assert_eq(strncmp(got->reason, "check: ooo", 10), 0);

    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL,
                                       "line\r\nbreak\t\x7f\xff end", 2),
                 0);
    cr_assert_str_eq(find(reg, "web", "web-1")->check_output, "line??break??? end");
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "check: line??break??? end");

    /* A multi-byte character that would cross the limit is dropped whole. */
    memset(big, 'x', REGISTRY_MAX_NOTE_LEN - 1);
    memcpy(big + REGISTRY_MAX_NOTE_LEN - 1, "\xc3\xa9tail", 7);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, big, 3), 0);
    got = find(reg, "web", "web-1");
    cr_assert_eq(strlen(got->check_output), REGISTRY_MAX_NOTE_LEN - 1);

    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, NULL, 4), 0);
    cr_assert_str_eq(find(reg, "web", "web-1")->check_output, "");
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "check: failed");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, check_result_needs_an_instance_with_a_check)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "ok", 0),
                 DNSD_ENOENT);
    put(reg, "web", "web-1", 30, 0);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "no", 0),
                 DNSD_ENOENT);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert_null(find(reg, "web", "web-1")->check_output);
    cr_assert_eq(rec.n, 1);
    registry_free(reg);
}

Test(registry, health_is_the_worse_of_heartbeat_and_check)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put_checked(reg, "web", "web-1", 300, 1, 1, 0);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_WARN, "HTTP 429", 1), 0);
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "oom", 2, NULL),
                 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "heartbeat: oom");
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, NULL, 3, NULL),
                 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "check: HTTP 429");
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, NULL, 4, NULL),
                 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "check: HTTP 429");
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "hot", 5, NULL),
                 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "heartbeat: hot");
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "HTTP 503", 6), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "check: HTTP 503");
    /* A lapsed lease beats both. */
    cr_assert_eq(registry_advance(reg, 305000), 1);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_eq(find(reg, "web", "web-1")->critical_since_ms, 6, "still the same critical spell");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

/* ---- re-registration ---- */

Test(registry, reregistration_resets_report_and_keeps_maintenance)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 10, 1000);
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "bad", 2000, NULL), 0);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", true, "deploy", 3000, NULL), 0);
    put(reg, "web", "web-1", 20, 4000);
    const struct registry_instance *got = find(reg, "web", "web-1");
    cr_assert_eq(got->registered_ms, 1000);
    cr_assert_eq(got->heartbeat_ms, 4000);
    cr_assert_eq(got->expires_ms, 24000);
    cr_assert_eq(got->reported, REGISTRY_HEALTH_PASSING);
    cr_assert_null(got->note);
    cr_assert(got->maintenance);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_MAINTENANCE, "deploy");
    cr_assert_eq(rec.events[rec.n - 1].change, REGISTRY_CHANGE_PUT, "one PUT, no extra HEALTH");
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-1", false, NULL, 5000, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, reregistration_brings_a_lapsed_instance_back)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put_dereg(reg, "web", "web-1", 10, 5000, 0);
    cr_assert_eq(registry_advance(reg, 12000), 1);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "lease expired");
    put_dereg(reg, "web", "web-1", 10, 5000, 13000);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert_eq(registry_next_deadline(reg), 23000);
    cr_assert_eq(registry_advance(reg, 22999), 0);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, reregistration_keeps_check_state_unless_the_spec_changed)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_set_check(&inst, 1, 2);
    cr_assert_eq(registry_put(reg, &inst, 0, NULL), 0);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "connected", 10),
                 0);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "refused", 20), 0);

    inst.port = 9090; /* the check is the same */
    cr_assert_eq(registry_put(reg, &inst, 30, NULL), 0);
    const struct registry_instance *got = find(reg, "web", "web-1");
    cr_assert_eq(got->port, 9090);
    cr_assert_not(got->check_pending);
    cr_assert_str_eq(got->check_output, "refused");
    cr_assert_eq(got->check_failures, 1);
    cr_assert_eq(got->check_last_ms, 20);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert(registry_check(reg));

    inst.check.timeout_ms = 3000; /* now it differs */
    cr_assert_eq(registry_put(reg, &inst, 40, NULL), 0);
    got = find(reg, "web", "web-1");
    cr_assert(got->check_pending);
    cr_assert_null(got->check_output);
    cr_assert_eq(got->check_failures, 0);
    cr_assert_eq(got->check.timeout_ms, 3000);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "check: awaiting first result");
    cr_assert_eq(got->critical_since_ms, 40);
    cr_assert(registry_check(reg));

    /* Dropping the check drops its state. */
    free(inst.check.target);
    memset(&inst.check, 0, sizeof(inst.check));
    cr_assert_eq(registry_put(reg, &inst, 50, NULL), 0);
    got = find(reg, "web", "web-1");
    cr_assert_not(got->check_pending);
    cr_assert_eq(got->check.kind, REGISTRY_CHECK_NONE);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "x", 60),
                 DNSD_ENOENT);
    cr_assert(registry_check(reg));
    registry_instance_clear(&inst);
    registry_free(reg);
}

/* ---- self-preservation ---- */

static struct registry_options preservation(double threshold, size_t min_instances,
                                            uint64_t window_ms, uint64_t max_ms)
{
    return (struct registry_options){
        .preservation_enabled = true,
        .preservation_threshold = threshold,
        .preservation_min_instances = min_instances,
        .preservation_window_ms = window_ms,
        .preservation_max_ms = max_ms,
    };
}

/* Put n instances PREFIX0.. of service "web" with ttl_s at now_ms, no deregistration. */
static void put_many(struct registry *reg, const char *prefix, size_t n, uint32_t ttl_s,
                     uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%.16s%zu", prefix, i);
        put(reg, "web", id, ttl_s, now_ms);
    }
}

/* How many instances of "web" have the given health. */
static size_t count_health(struct registry *reg, enum registry_health health)
{
    const struct registry_service *svc = registry_find_service(reg, "web");
    size_t n = 0;
    for (size_t i = 0; svc && i < registry_service_instance_count(svc); i++)
        n += registry_service_instance(svc, i)->health == health;
    return n;
}

static size_t count_events(const struct recorder *rec, enum registry_change change)
{
    size_t n = 0;
    for (size_t i = 0; i < rec->n; i++)
        n += rec->events[i].change == change;
    return n;
}

Test(registry, preservation_holds_a_mass_lapse_and_leaves_when_quiet)
{
    struct registry_options opts = preservation(0.5, 10, 10000, 60000);
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, &opts);
    put_many(reg, "i", 10, 10, 0);
    rec.n = 0;
    /* Lapses 1..5 are within 0.5 * 10; the sixth would exceed it. */
    cr_assert_eq(registry_advance(reg, 10000), 5);
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_CRITICAL), 5);
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_PASSING), 5);
    cr_assert_eq(count_events(&rec, REGISTRY_CHANGE_PRESERVATION), 1);
    cr_assert_eq(count_events(&rec, REGISTRY_CHANGE_HEALTH), 5);
    cr_assert(rec.preserving, "the callback sees the new state");
    cr_assert(registry_check(reg));
    /* No lapse for one window: leave at 20000, and the held ones turn critical then. */
    cr_assert_eq(registry_next_deadline(reg), 20000);
    cr_assert_eq(registry_advance(reg, 19999), 0);
    cr_assert(registry_is_preserving(reg));
    rec.n = 0;
    cr_assert_eq(registry_advance(reg, 20000), 5);
    cr_assert_not(registry_is_preserving(reg));
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_CRITICAL), 10);
    cr_assert_eq(rec.n, 6);
    cr_assert_eq(rec.events[5].change, REGISTRY_CHANGE_PRESERVATION);
    cr_assert_not(rec.preserving);
    const struct registry_service *svc = registry_find_service(reg, "web");
    size_t at_exit = 0;
    for (size_t i = 0; i < registry_service_instance_count(svc); i++) {
        const struct registry_instance *in = registry_service_instance(svc, i);
        cr_assert_str_eq(in->reason, "lease expired");
        at_exit += in->critical_since_ms == 20000;
    }
    cr_assert_eq(at_exit, 5);
    cr_assert_eq(registry_next_deadline(reg), UINT64_MAX);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, preservation_leaves_after_max_duration)
{
    struct registry_options opts = preservation(0.5, 1, 10000, 15000);
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, &opts);
    put_many(reg, "i", 10, 10, 0);
    put_many(reg, "late", 3, 19, 0);               /* lapse at 19000, while preserving */
    put_many(reg, "after", 1, 30, 0);              /* lapse at 30000, after it */
    cr_assert_eq(registry_advance(reg, 10000), 7); /* 14 instances: the 8th lapse enters */
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(registry_advance(reg, 19000), 0, "held, not critical");
    /* The lapses at 19000 would keep it going until 29000, but max_duration ends it. */
    cr_assert_eq(registry_next_deadline(reg), 25000);
    cr_assert_eq(registry_advance(reg, 24999), 0);
    cr_assert_eq(registry_advance(reg, 25000), 3 + 3);
    cr_assert_not(registry_is_preserving(reg));
    cr_assert_eq(count_events(&rec, REGISTRY_CHANGE_PRESERVATION), 2);
    /* The burst is forgotten: one more lapse does not start it again. */
    cr_assert_eq(registry_advance(reg, 30000), 1);
    cr_assert_not(registry_is_preserving(reg));
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_CRITICAL), 14);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, preservation_threshold_boundary)
{
    struct registry_options opts = preservation(0.5, 1, 10000, 60000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put_many(reg, "a", 5, 10, 0);
    put_many(reg, "b", 5, 100, 0);
    /* Exactly half lapsing is not more than half. */
    cr_assert_eq(registry_advance(reg, 10000), 5);
    cr_assert_not(registry_is_preserving(reg));
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, preservation_window_slides)
{
    /* threshold 0.1 of 10: a second lapse within the window enters. */
    struct registry_options opts = preservation(0.1, 1, 10000, 60000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put(reg, "web", "first", 10, 0);    /* lapses at 10000 */
    put(reg, "web", "just-out", 20, 0); /* lapses at 20000: the first has left the window */
    put_many(reg, "x", 8, 1000, 0);
    cr_assert_eq(registry_advance(reg, 20000), 2);
    cr_assert_not(registry_is_preserving(reg));

    struct registry *reg2 = registry_new(&opts, NULL, NULL);
    put(reg2, "web", "first", 10, 0);
    struct registry_instance inst;
    inst_init(&inst, "web", "just-in", 10);
    cr_assert_eq(registry_put(reg2, &inst, 9999, NULL), 0); /* lapses at 19999 */
    registry_instance_clear(&inst);
    put_many(reg2, "x", 8, 1000, 0);
    cr_assert_eq(registry_advance(reg2, 20000), 1);
    cr_assert(registry_is_preserving(reg2));
    expect_health(reg2, "web", "just-in", REGISTRY_HEALTH_PASSING, "");
    cr_assert(registry_check(reg2));
    registry_free(reg);
    registry_free(reg2);
}

Test(registry, preservation_needs_min_instances)
{
    for (size_t min = 10; min <= 11; min++) {
        struct registry_options opts = preservation(0.5, min, 10000, 60000);
        struct registry *reg = registry_new(&opts, NULL, NULL);
        put_many(reg, "i", 10, 10, 0);
        cr_assert_eq(registry_advance(reg, 10000), min == 10 ? 5 : 10);
        cr_assert_eq(registry_is_preserving(reg), min == 10);
        cr_assert(registry_check(reg));
        registry_free(reg);
    }
}

Test(registry, preservation_off_switch)
{
    struct registry_options off = preservation(0.01, 0, 10000, 60000);
    off.preservation_enabled = false;
    const struct registry_options *variants[] = {NULL, &off};
    for (size_t v = 0; v < 2; v++) {
        struct recorder rec;
        struct registry *reg = new_recorded_opts(&rec, variants[v]);
        put_many(reg, "i", 10, 10, 0);
        cr_assert_eq(registry_advance(reg, 10000), 10);
        cr_assert_not(registry_is_preserving(reg));
        cr_assert_eq(count_events(&rec, REGISTRY_CHANGE_PRESERVATION), 0);
        cr_assert(registry_check(reg));
        registry_free(reg);
    }
}

Test(registry, explicit_signals_apply_during_preservation)
{
    struct registry_options opts = preservation(0.5, 1, 10000, 60000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put_many(reg, "i", 10, 10, 0);
    put_dereg(reg, "web", "d0", 100, 5000, 0);
    cr_assert_eq(registry_heartbeat(reg, "web", "d0", REGISTRY_HEALTH_CRITICAL, NULL, 9500, NULL),
                 0);
    /* 11 instances: the sixth lapse exceeds 5.5. */
    cr_assert_eq(registry_advance(reg, 10000), 5);
    cr_assert(registry_is_preserving(reg));
    const struct registry_service *svc = registry_find_service(reg, "web");
    char held[5][8];
    size_t n_held = 0;
    for (size_t i = 0; i < registry_service_instance_count(svc); i++) {
        const struct registry_instance *in = registry_service_instance(svc, i);
        if (in->health == REGISTRY_HEALTH_PASSING) {
            cr_assert_lt(n_held, 5);
            snprintf(held[n_held++], sizeof(held[0]), "%s", in->id);
        }
    }
    cr_assert_eq(n_held, 5);
    /* held[0] renews, held[1] reports critical, held[2] deregisters. */
    cr_assert_eq(renew(reg, "web", held[0], 12000), 0);
    cr_assert_eq(
        registry_heartbeat(reg, "web", held[1], REGISTRY_HEALTH_CRITICAL, "dead", 12000, NULL), 0);
    expect_health(reg, "web", held[1], REGISTRY_HEALTH_CRITICAL, "heartbeat: dead");
    cr_assert_eq(registry_remove(reg, "web", held[2]), 0);
    cr_assert(registry_check(reg));
    /* deregister_after still removes an instance that is critical for its own reasons. */
    cr_assert_eq(registry_next_deadline(reg), 14500);
    cr_assert_eq(registry_advance(reg, 14500), 1);
    cr_assert_null(registry_find_instance(reg, "web", "d0"));
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(registry_advance(reg, 20000), 2, "the two still held turn critical");
    cr_assert_not(registry_is_preserving(reg));
    expect_health(reg, "web", held[0], REGISTRY_HEALTH_PASSING, "");
    expect_health(reg, "web", held[1], REGISTRY_HEALTH_CRITICAL, "heartbeat: dead");
    expect_health(reg, "web", held[3], REGISTRY_HEALTH_CRITICAL, "lease expired");
    expect_health(reg, "web", held[4], REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_eq(registry_instance_count(reg), 9);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

/* ---- service index ---- */

Test(registry, service_index_follows_visible_changes_only)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    cr_assert_eq(registry_service_index(reg, "web"), 0);
    cr_assert_eq(registry_service_index(reg, NULL), 0);
    put_dereg(reg, "web", "web-1", 10, 1000, 0);
    cr_assert_eq(registry_service_index(reg, "web"), 1);
    put_checked(reg, "web", "web-2", 100, 1, 1, 0);
    cr_assert_eq(registry_service_index(reg, "web"), 2);
    put(reg, "db", "db-1", 100, 0);
    cr_assert_eq(registry_service_index(reg, "web"), 2);
    cr_assert_eq(registry_service_index(reg, "db"), 3);
    cr_assert_eq(renew(reg, "web", "web-1", 500), 0);
    cr_assert_eq(registry_serial(reg), 4);
    cr_assert_eq(registry_service_index(reg, "web"), 2, "a plain renewal does not move it");
    cr_assert_eq(registry_check_result(reg, "web", "web-2", REGISTRY_CHECK_PASS, "ok", 600), 0);
    cr_assert_eq(registry_service_index(reg, "web"), 5);
    cr_assert_eq(registry_check_result(reg, "web", "web-2", REGISTRY_CHECK_PASS, "ok", 700), 0);
    cr_assert_eq(registry_service_index(reg, "web"), 5, "an unchanged result does not");
    cr_assert_eq(registry_advance(reg, 10500), 1); /* web-1 lapses */
    cr_assert_eq(registry_service_index(reg, "web"), 6);
    cr_assert_eq(registry_advance(reg, 11500), 1); /* and goes */
    cr_assert_eq(registry_service_index(reg, "web"), 7);
    cr_assert_eq(registry_set_maintenance(reg, "web", "web-2", true, NULL, 12000, NULL), 0);
    cr_assert_eq(registry_service_index(reg, "web"), 8);
    cr_assert_eq(registry_remove(reg, "web", "web-2"), 0);
    cr_assert_null(registry_find_service(reg, "web"));
    cr_assert_eq(registry_service_index(reg, "web"), 9, "remembered after the last instance");
    cr_assert_eq(registry_service_index(reg, "db"), 3);
    cr_assert_eq(registry_service_index(reg, "never"), 0);
    put(reg, "web", "web-3", 100, 13000);
    cr_assert_eq(registry_service_index(reg, "web"), 10);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, preservation_moves_the_serial_but_no_service_index)
{
    struct registry_options opts = preservation(0.5, 1, 10000, 60000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put_many(reg, "i", 4, 10, 0);
    put(reg, "db", "db-1", 100, 0);
    uint64_t db = registry_service_index(reg, "db");
    uint64_t serial = registry_serial(reg);
    cr_assert_eq(registry_advance(reg, 10000), 2);
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(registry_serial(reg), serial + 3, "two health changes and one PRESERVATION");
    cr_assert_eq(registry_service_index(reg, "web"), serial + 2);
    cr_assert_eq(registry_service_index(reg, "db"), db);
    registry_free(reg);
}

Test(registry, tombstones_are_bounded)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    char name[16];
    for (size_t i = 0; i <= REGISTRY_MAX_TOMBSTONES; i++) {
        snprintf(name, sizeof(name), "s%zu", i);
        put(reg, name, "x", 10, 0);
        cr_assert_eq(registry_remove(reg, name, "x"), 0);
    }
    cr_assert_eq(registry_serial(reg), 2 * (REGISTRY_MAX_TOMBSTONES + 1));
    /* s0 was the oldest and is forgotten: a watcher gets the current serial. */
    cr_assert_eq(registry_service_index(reg, "s0"), registry_serial(reg));
    cr_assert_eq(registry_service_index(reg, "s1"), 4);
    snprintf(name, sizeof(name), "s%d", REGISTRY_MAX_TOMBSTONES);
    cr_assert_eq(registry_service_index(reg, name), registry_serial(reg));
    cr_assert(registry_check(reg));
    /* Coming back replaces the tombstone. */
    put(reg, "s1", "x", 10, 0);
    cr_assert_eq(registry_service_index(reg, "s1"), registry_serial(reg));
    cr_assert(registry_check(reg));
    registry_free(reg);
}

/* ---- out of memory in the health calls ---- */

Test(registry, heartbeat_out_of_memory_changes_nothing)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 30, 0);
    cr_assert_eq(registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "old", 100, NULL),
                 0);
    size_t events = rec.n;
    for (long k = 0; k < 2; k++) {
        strdups_left = k;
        int rc =
            registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "new", 200, NULL);
        strdups_left = -1;
        cr_assert_eq(rc, DNSD_ENOMEM, "strdup %ld failing", k);
        expect_health(reg, "web", "web-1", REGISTRY_HEALTH_WARNING, "heartbeat: old");
        cr_assert_eq(find(reg, "web", "web-1")->heartbeat_ms, 100);
        cr_assert_eq(rec.n, events);
        cr_assert(registry_check(reg));
    }
    cr_assert_eq(
        registry_heartbeat(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "new", 200, NULL), 0);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL, "heartbeat: new");
    registry_free(reg);
}

Test(registry, maintenance_out_of_memory_changes_nothing)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 30, 0);
    strdups_left = 0;
    int rc = registry_set_maintenance(reg, "web", "web-1", true, "deploy", 1, NULL);
    strdups_left = -1;
    cr_assert_eq(rc, DNSD_ENOMEM);
    expect_health(reg, "web", "web-1", REGISTRY_HEALTH_PASSING, "");
    cr_assert_not(find(reg, "web", "web-1")->maintenance);
    cr_assert_eq(rec.n, 1);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, check_result_out_of_memory_changes_nothing)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put_checked(reg, "web", "web-1", 30, 1, 1, 0);
    for (long k = 0; k < 2; k++) {
        strdups_left = k;
        int rc = registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "ok", 5);
        strdups_left = -1;
        cr_assert_eq(rc, DNSD_ENOMEM, "strdup %ld failing", k);
        const struct registry_instance *got = find(reg, "web", "web-1");
        cr_assert(got->check_pending);
        cr_assert_eq(got->check_successes, 0);
        expect_health(reg, "web", "web-1", REGISTRY_HEALTH_CRITICAL,
                      "check: awaiting first result");
        cr_assert_eq(rec.n, 1);
        cr_assert(registry_check(reg));
    }
    registry_free(reg);
}

Test(registry, put_with_check_out_of_memory_changes_nothing)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_set_check(&inst, 2, 2);
    put_despite_oom(&rec, &inst, 1000);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "no", 1500), 0);
    inst.check.interval_ms = 20000; /* a replacement with a changed check */
    put_despite_oom(&rec, &inst, 2000);
    cr_assert(find(reg, "web", "web-1")->check_pending);
    registry_instance_clear(&inst);
    registry_free(reg);
}

Test(registry, tombstone_out_of_memory_falls_back_to_the_serial)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    put(reg, "db", "db-1", 30, 0);
    strdups_left = 0;
    cr_assert_eq(registry_remove(reg, "web", "web-1"), 0, "removal itself cannot fail");
    strdups_left = -1;
    cr_assert_eq(registry_remove(reg, "db", "db-1"), 0);
    /* web's index is lost: its watchers see the current serial, never an older one. */
    cr_assert_eq(registry_service_index(reg, "web"), registry_serial(reg));
    cr_assert_eq(registry_service_index(reg, "db"), 4);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

/* ---- scale ---- */

struct shadow {
    char service[16];
    char id[16];
    uint64_t expires_ms;
    bool live;
};

Test(registry, many_instances_stay_consistent)
{
    enum { N = 10000, SERVICES = 37 };
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct shadow *sh = calloc(N, sizeof(*sh));
    cr_assert_not_null(sh);
    srand(12345);
    for (size_t i = 0; i < N; i++) {
        snprintf(sh[i].service, sizeof(sh[i].service), "svc-%zu", i % SERVICES);
        snprintf(sh[i].id, sizeof(sh[i].id), "i%zu", i);
        uint32_t ttl = 1 + (uint32_t)(rand() % 1000);
        put(reg, sh[i].service, sh[i].id, ttl, 0);
        sh[i].expires_ms = (uint64_t)ttl * 1000;
        sh[i].live = true;
    }
    cr_assert(registry_check(reg));
    cr_assert_eq(registry_instance_count(reg), N);
    cr_assert_eq(registry_service_count(reg), SERVICES);

    /* Renew a third and remove a tenth at random. */
    for (size_t k = 0; k < N / 3; k++) {
        size_t i = (size_t)rand() % N;
        uint64_t now = (uint64_t)(rand() % 500) * 1000;
        if (sh[i].live && sh[i].expires_ms > now) {
            cr_assert_eq(renew(reg, sh[i].service, sh[i].id, now), 0);
            const struct registry_instance *got =
                registry_find_instance(reg, sh[i].service, sh[i].id);
            sh[i].expires_ms = got->expires_ms;
            cr_assert_eq(got->expires_ms, now + (uint64_t)got->ttl_s * 1000);
        }
    }
    size_t live = N;
    for (size_t k = 0; k < N / 10; k++) {
        size_t i = (size_t)rand() % N;
        int rc = registry_remove(reg, sh[i].service, sh[i].id);
        cr_assert_eq(rc, sh[i].live ? 0 : DNSD_ENOENT);
        if (sh[i].live)
            live--;
        sh[i].live = false;
    }
    cr_assert(registry_check(reg));
    cr_assert_eq(registry_instance_count(reg), live);

    /* Advance in steps; after each, exactly the instances past their deadline are critical
     * (deregister_after 0 keeps them registered). */
    size_t registered = live;
    for (uint64_t now = 0; now <= 1500000; now += 100000) {
        size_t due = 0;
        uint64_t next = UINT64_MAX;
        for (size_t i = 0; i < N; i++) {
            if (!sh[i].live)
                continue;
            if (sh[i].expires_ms <= now) {
                due++;
                sh[i].live = false;
            } else if (sh[i].expires_ms < next) {
                next = sh[i].expires_ms;
            }
        }
        cr_assert_eq(registry_advance(reg, now), due, "at %llu", (unsigned long long)now);
        live -= due;
        cr_assert_eq(registry_instance_count(reg), registered);
        cr_assert_eq(registry_next_deadline(reg), next);
        cr_assert(registry_check(reg));
    }
    cr_assert_eq(live, 0);
    for (size_t i = 0; i < N; i++) {
        const struct registry_instance *got = registry_find_instance(reg, sh[i].service, sh[i].id);
        if (got)
            cr_assert_eq(got->health, REGISTRY_HEALTH_CRITICAL);
    }
    free(sh);
    registry_free(reg);
}

Test(registry, random_history_stays_consistent)
{
    /* Interleave puts, replacements, renewals and removals, checking after each step. */
    struct registry *reg = registry_new(NULL, NULL, NULL);
    srand(99);
    for (int step = 0; step < 3000; step++) {
        char service[16], id[16];
        snprintf(service, sizeof(service), "s%d", rand() % 7);
        snprintf(id, sizeof(id), "i%d", rand() % 40);
        uint64_t now = (uint64_t)step * 10;
        switch (rand() % 4) {
        case 0:
        case 1:
            put(reg, service, id, 1 + (uint32_t)(rand() % 60), now);
            break;
        case 2:
            (void)renew(reg, service, id, now);
            break;
        default:
            (void)registry_remove(reg, service, id);
            break;
        }
        (void)registry_advance(reg, now);
        cr_assert(registry_check(reg), "step %d", step);
        cr_assert_gt(registry_next_deadline(reg), now);
    }
    registry_free(reg);
}

/* ---- the timer heap against a naive reference model ---- */

/* One instance as the reference model sees it: a plain record scanned in full. */
struct model {
    bool exists;
    char service[8], id[8];
    uint32_t ttl_s;
    uint64_t dereg_ms, expires_ms, critical_since_ms;
    bool lapsed, maintenance, has_check, pending;
    enum registry_health reported, verdict, health;
    bool noted; /* heartbeat note "busy" */
    uint32_t successes, failures;
    enum registry_check_outcome last;
    char reason[64];
};

/* The model's health and reason, written out from health-design.md independently of the
 * registry's code. Check thresholds are 2 and 2; outputs are "ok", "slow", "bad". */
static void model_eval(struct model *m, uint64_t t)
{
    enum registry_health old = m->health;
    enum registry_health h;
    char reason[64] = "";
    if (m->maintenance) {
        h = REGISTRY_HEALTH_MAINTENANCE;
        snprintf(reason, sizeof(reason), "maintenance mode");
    } else if (m->lapsed) {
        h = REGISTRY_HEALTH_CRITICAL;
        snprintf(reason, sizeof(reason), "lease expired");
    } else {
        enum registry_health check = REGISTRY_HEALTH_PASSING;
        if (m->has_check)
            check = m->pending ? REGISTRY_HEALTH_CRITICAL : m->verdict;
        h = m->reported > check ? m->reported : check;
        if (m->reported == h && m->noted) {
            snprintf(reason, sizeof(reason), "heartbeat: busy");
        } else if (m->has_check && check == h && h != REGISTRY_HEALTH_PASSING) {
            if (m->pending) {
                snprintf(reason, sizeof(reason), "check: awaiting first result");
            } else {
                const char *out = m->last == REGISTRY_CHECK_PASS   ? "ok"
                                  : m->last == REGISTRY_CHECK_WARN ? "slow"
                                                                   : "bad";
                if (m->last == REGISTRY_CHECK_PASS && h != REGISTRY_HEALTH_PASSING)
                    snprintf(reason, sizeof(reason), "check: %s (passed %u of 2)", out,
                             (unsigned)m->successes);
                else if (m->last == REGISTRY_CHECK_FAIL && h != REGISTRY_HEALTH_CRITICAL)
                    snprintf(reason, sizeof(reason), "check: %s (failed %u of 2)", out,
                             (unsigned)m->failures);
                else
                    snprintf(reason, sizeof(reason), "check: %s", out);
            }
        } else if (m->reported == h && h != REGISTRY_HEALTH_PASSING) {
            snprintf(reason, sizeof(reason), "heartbeat: %s", registry_health_name(h));
        }
    }
    if (h == REGISTRY_HEALTH_CRITICAL && old != REGISTRY_HEALTH_CRITICAL)
        m->critical_since_ms = t;
    if (h != REGISTRY_HEALTH_CRITICAL)
        m->critical_since_ms = 0;
    m->health = h;
    snprintf(m->reason, sizeof(m->reason), "%s", reason);
}

/* Evaluate and report whether health or reason changed. */
static bool model_settle(struct model *m, uint64_t t)
{
    enum registry_health old = m->health;
    char old_reason[64];
    snprintf(old_reason, sizeof(old_reason), "%s", m->reason);
    model_eval(m, t);
    return m->health != old || strcmp(m->reason, old_reason) != 0;
}

static uint64_t model_next(const struct model *m)
{
    uint64_t key = UINT64_MAX;
    if (!m->exists)
        return key;
    if (!m->lapsed)
        key = m->expires_ms;
    if (m->health == REGISTRY_HEALTH_CRITICAL && m->dereg_ms > 0 &&
        m->critical_since_ms + m->dereg_ms < key)
        key = m->critical_since_ms + m->dereg_ms;
    return key;
}

/* Apply every due event by scanning all instances for the earliest each time. */
static size_t model_advance(struct model *ms, size_t n, uint64_t now)
{
    size_t changed = 0;
    for (;;) {
        size_t best = n;
        uint64_t t = UINT64_MAX;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = model_next(&ms[i]);
            if (k < t) {
                t = k;
                best = i;
            }
        }
        if (best == n || t > now)
            return changed;
        struct model *m = &ms[best];
        if (!m->lapsed && m->expires_ms <= t) {
            m->lapsed = true;
            changed += model_settle(m, t);
        } else {
            m->exists = false;
            changed++;
        }
    }
}

static void model_put(struct registry *reg, struct model *m, uint64_t now)
{
    uint32_t ttl = 1 + (uint32_t)(rand() % 20);
    uint64_t dereg = rand() % 3 ? 1000 * (uint64_t)(1 + rand() % 30) : 0;
    bool check = rand() % 3 == 0;
    struct registry_instance inst;
    inst_init(&inst, m->service, m->id, ttl);
    inst.deregister_after_ms = dereg;
    if (check)
        inst_set_check(&inst, 2, 2);
    cr_assert_eq(registry_put(reg, &inst, now, NULL), 0);
    registry_instance_clear(&inst);
    if (!m->exists) {
        m->maintenance = false;
        m->health = REGISTRY_HEALTH_PASSING;
        m->reason[0] = '\0';
        m->has_check = !check; /* forces a fresh check state below */
    }
    if (m->has_check != check || !m->exists) {
        m->pending = check;
        m->verdict = REGISTRY_HEALTH_CRITICAL;
        m->successes = m->failures = 0;
    }
    m->exists = true;
    m->has_check = check;
    m->ttl_s = ttl;
    m->dereg_ms = dereg;
    m->expires_ms = now + ttl * 1000ull;
    m->lapsed = false;
    m->reported = REGISTRY_HEALTH_PASSING;
    m->noted = false;
    model_settle(m, now);
}

static void model_result(struct model *m, enum registry_check_outcome outcome)
{
    switch (outcome) {
    case REGISTRY_CHECK_PASS:
        m->successes++;
        m->failures = 0;
        if (m->successes >= 2)
            m->verdict = REGISTRY_HEALTH_PASSING;
        break;
    case REGISTRY_CHECK_WARN:
        m->verdict = REGISTRY_HEALTH_WARNING;
        break;
    default:
        m->failures++;
        m->successes = 0;
        if (m->failures >= 2)
            m->verdict = REGISTRY_HEALTH_CRITICAL;
        break;
    }
    m->pending = false;
    m->last = outcome;
}

/* One random operation on instance m at now; returns the change the registry must report
 * (or -1 for none). */
static int model_op(struct registry *reg, struct model *m, uint64_t now)
{
    int op = rand() % 10;
    if (!m->exists || op < 2) {
        model_put(reg, m, now);
        return REGISTRY_CHANGE_PUT;
    }
    if (op < 6) {
        enum registry_health status = (enum registry_health)(rand() % 3);
        bool noted = rand() % 4 == 0;
        cr_assert_eq(
            registry_heartbeat(reg, m->service, m->id, status, noted ? "busy" : NULL, now, NULL),
            0);
        m->reported = status;
        m->noted = noted;
        m->lapsed = false;
        m->expires_ms = now + m->ttl_s * 1000ull;
        return model_settle(m, now) ? REGISTRY_CHANGE_HEALTH : REGISTRY_CHANGE_RENEW;
    }
    if (op < 7) {
        bool on = rand() % 2;
        cr_assert_eq(registry_set_maintenance(reg, m->service, m->id, on, NULL, now, NULL), 0);
        m->maintenance = on;
        return model_settle(m, now) ? REGISTRY_CHANGE_HEALTH : -1;
    }
    if (op < 9) {
        enum registry_check_outcome outcome = (enum registry_check_outcome)(rand() % 3);
        const char *out[] = {"ok", "slow", "bad"};
        int rc = registry_check_result(reg, m->service, m->id, outcome, out[outcome], now);
        if (!m->has_check) {
            cr_assert_eq(rc, DNSD_ENOENT);
            return -1;
        }
        cr_assert_eq(rc, 0);
        model_result(m, outcome);
        return model_settle(m, now) ? REGISTRY_CHANGE_HEALTH : -1;
    }
    cr_assert_eq(registry_remove(reg, m->service, m->id), 0);
    m->exists = false;
    return REGISTRY_CHANGE_REMOVE;
}

Test(registry, timers_match_a_reference_model)
{
    enum { N = 2000, STEPS = 1200, OPS = 25 };
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    rec.unchecked = true; /* registry_check() runs after every step instead */
    struct model *ms = calloc(N, sizeof(*ms));
    cr_assert_not_null(ms);
    for (size_t i = 0; i < N; i++) {
        snprintf(ms[i].service, sizeof(ms[i].service), "s%zu", i % 13);
        snprintf(ms[i].id, sizeof(ms[i].id), "i%zu", i);
    }
    srand(4242);
    uint64_t now = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int k = 0; k < OPS; k++) {
            struct model *m = &ms[(size_t)rand() % N];
            size_t before = rec.n = 0;
            int want = model_op(reg, m, now);
            if (want < 0) {
                cr_assert_eq(rec.n, before, "no callback");
            } else {
                cr_assert_eq(rec.n, 1, "one callback");
                cr_assert_eq(rec.events[0].change, (enum registry_change)want, "step %d", step);
            }
        }
        now += (uint64_t)(rand() % 1500);
        rec.n = 0;
        size_t want = model_advance(ms, N, now);
        cr_assert_eq(registry_advance(reg, now), want, "step %d", step);
        cr_assert_eq(rec.n, want, "one callback per change");
        cr_assert(registry_check(reg), "step %d", step);
        uint64_t next = UINT64_MAX;
        size_t count = 0;
        for (size_t i = 0; i < N; i++) {
            const struct registry_instance *got =
                registry_find_instance(reg, ms[i].service, ms[i].id);
            cr_assert_eq(got != NULL, ms[i].exists, "step %d %s", step, ms[i].id);
            if (!got)
                continue;
            count++;
            cr_assert_eq(got->health, ms[i].health, "step %d %s", step, ms[i].id);
            cr_assert_str_eq(got->reason, ms[i].reason, "step %d %s", step, ms[i].id);
            cr_assert_eq(got->critical_since_ms, ms[i].critical_since_ms, "step %d %s", step,
                         ms[i].id);
            cr_assert_eq(got->expires_ms, ms[i].expires_ms);
            uint64_t k = model_next(&ms[i]);
            if (k < next)
                next = k;
        }
        cr_assert_eq(registry_instance_count(reg), count);
        cr_assert_eq(registry_next_deadline(reg), next, "step %d", step);
    }
    free(ms);
    registry_free(reg);
}

Test(registry, random_history_with_preservation_stays_consistent)
{
    /* Bursts of lapses with preservation on: invariants hold at every step and a held
     * lease never outlives max_duration. */
    struct registry_options opts = preservation(0.3, 20, 5000, 20000);
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, &opts);
    srand(777);
    uint64_t now = 0, entered = 0;
    size_t enters = 0;
    for (int step = 0; step < 4000; step++) {
        char service[8], id[8];
        snprintf(service, sizeof(service), "s%d", rand() % 5);
        snprintf(id, sizeof(id), "i%d", rand() % 150);
        int op = rand() % 8;
        if (op < 3)
            put_dereg(reg, service, id, 1 + (uint32_t)(rand() % 8), (uint64_t)(rand() % 3) * 4000,
                      now);
        else if (op < 6)
            (void)registry_heartbeat(reg, service, id, (enum registry_health)(rand() % 3), NULL,
                                     now, NULL);
        else if (op < 7)
            (void)registry_set_maintenance(reg, service, id, rand() % 2, NULL, now, NULL);
        else
            (void)registry_remove(reg, service, id);
        /* Every few hundred steps, a long silence lets many leases lapse at once. */
        now += step % 300 == 299 ? 9000 : (uint64_t)(rand() % 40);
        bool was = registry_is_preserving(reg);
        rec.n = 0;
        (void)registry_advance(reg, now);
        if (!was && registry_is_preserving(reg)) {
            enters++;
            entered = now;
        }
        if (registry_is_preserving(reg))
            cr_assert_leq(now - entered, opts.preservation_max_ms);
        cr_assert(registry_check(reg), "step %d", step);
        cr_assert_gt(registry_next_deadline(reg), now);
    }
    cr_assert_gt(enters, 0, "the bursts did trigger self-preservation");
    registry_free(reg);
}
