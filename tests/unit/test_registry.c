/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the registry: validation, storage, ordering, leases and expiry, the change
 * callback and serial, and heap/index consistency under many random operations. */
#include "registry.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

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
    struct event events[64];
    size_t n;
};

static void record(void *user, enum registry_change change, const char *service, const char *id)
{
    struct recorder *rec = user;
    cr_assert_lt(rec->n, 64);
    struct event *ev = &rec->events[rec->n++];
    ev->change = change;
    snprintf(ev->service, sizeof(ev->service), "%s", service);
    snprintf(ev->id, sizeof(ev->id), "%s", id);
    ev->serial = registry_serial(rec->reg);
    const struct registry_instance *inst = registry_find_instance(rec->reg, service, id);
    ev->present = inst != NULL;
    ev->expires_ms = inst ? inst->expires_ms : 0;
}

static struct registry *new_recorded(struct recorder *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->reg = registry_new(record, rec);
    cr_assert_not_null(rec->reg);
    return rec->reg;
}

/* ---- lifecycle ---- */

Test(registry, new_registry_is_empty)
{
    struct registry *reg = registry_new(NULL, NULL);
    cr_assert_not_null(reg);
    cr_assert_eq(registry_service_count(reg), 0);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert_eq(registry_serial(reg), 0);
    cr_assert_eq(registry_next_expiry(reg), UINT64_MAX);
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
    struct registry *reg = registry_new(NULL, NULL);
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
    struct registry *reg = registry_new(NULL, NULL);
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
    cr_assert_eq(registry_next_expiry(reg), 35000);
    cr_assert_eq(registry_service_count(reg), 1);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, put_replaces_and_keeps_registered_ms)
{
    struct registry *reg = registry_new(NULL, NULL);
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
    cr_assert_eq(registry_next_expiry(reg), 9000);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, lease_deadline_saturates)
{
    struct registry *reg = registry_new(NULL, NULL);
    put(reg, "web", "web-1", UINT32_MAX, UINT64_MAX - 10);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->expires_ms, UINT64_MAX);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, find_returns_null_for_unknown)
{
    struct registry *reg = registry_new(NULL, NULL);
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
    struct registry *reg = registry_new(NULL, NULL);
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
    struct registry *reg = registry_new(NULL, NULL);
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
    struct registry *reg = registry_new(NULL, NULL);
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
    struct registry *reg = registry_new(NULL, NULL);
    put(reg, "web", "web-1", 10, 0);
    put(reg, "web", "web-2", 20, 0);
    cr_assert_eq(registry_next_expiry(reg), 10000);
    cr_assert_eq(registry_renew(reg, "web", "web-1", 15000), 0);
    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(got->heartbeat_ms, 15000);
    cr_assert_eq(got->expires_ms, 25000);
    cr_assert_eq(got->registered_ms, 0);
    cr_assert_eq(registry_next_expiry(reg), 20000);
    cr_assert(registry_check(reg));
    /* At 20000 only web-2 lapses; web-1 survives thanks to the renewal. */
    cr_assert_eq(registry_expire(reg, 20000), 1);
    cr_assert_not_null(registry_find_instance(reg, "web", "web-1"));
    cr_assert_null(registry_find_instance(reg, "web", "web-2"));
    registry_free(reg);
}

Test(registry, renew_unknown_is_enoent)
{
    struct registry *reg = registry_new(NULL, NULL);
    cr_assert_eq(registry_renew(reg, "web", "web-1", 0), DNSD_ENOENT);
    put(reg, "web", "web-1", 10, 0);
    cr_assert_eq(registry_renew(reg, "web", "web-2", 0), DNSD_ENOENT);
    cr_assert_eq(registry_serial(reg), 1);
    registry_free(reg);
}

Test(registry, expiry_happens_at_the_exact_deadline)
{
    struct registry *reg = registry_new(NULL, NULL);
    put(reg, "web", "web-1", 30, 1000);
    cr_assert_eq(registry_expire(reg, 30999), 0);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert_eq(registry_expire(reg, 31000), 1);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert_eq(registry_service_count(reg), 0);
    cr_assert_null(registry_find_service(reg, "web"));
    cr_assert_eq(registry_next_expiry(reg), UINT64_MAX);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, expire_removes_all_due_instances_and_counts_them)
{
    struct registry *reg = registry_new(NULL, NULL);
    put(reg, "web", "a", 5, 0);
    put(reg, "web", "b", 1, 0);
    put(reg, "db", "c", 3, 0);
    put(reg, "db", "d", 9, 0);
    cr_assert_eq(registry_next_expiry(reg), 1000);
    cr_assert_eq(registry_expire(reg, 5000), 3);
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert_not_null(registry_find_instance(reg, "db", "d"));
    cr_assert_eq(registry_service_count(reg), 1);
    cr_assert_eq(registry_next_expiry(reg), 9000);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, remove_deletes_and_drops_empty_service)
{
    struct registry *reg = registry_new(NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    put(reg, "web", "web-2", 10, 0);
    cr_assert_eq(registry_remove(reg, "web", "web-2"), 0);
    cr_assert_null(registry_find_instance(reg, "web", "web-2"));
    cr_assert_eq(registry_next_expiry(reg), 30000);
    cr_assert_eq(registry_service_count(reg), 1);
    cr_assert_eq(registry_remove(reg, "web", "web-1"), 0);
    cr_assert_eq(registry_service_count(reg), 0);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, remove_unknown_is_enoent)
{
    struct registry *reg = registry_new(NULL, NULL);
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
    struct registry *reg = registry_new(NULL, NULL);
    put(reg, "web", "web-1", 10, 0);
    cr_assert_eq(registry_serial(reg), 1);
    put(reg, "web", "web-1", 10, 0);
    cr_assert_eq(registry_serial(reg), 2);
    put(reg, "web", "web-2", 10, 0);
    cr_assert_eq(registry_serial(reg), 3);
    cr_assert_eq(registry_renew(reg, "web", "web-1", 5000), 0);
    cr_assert_eq(registry_serial(reg), 4);
    cr_assert_eq(registry_remove(reg, "web", "web-1"), 0);
    cr_assert_eq(registry_serial(reg), 5);
    cr_assert_eq(registry_expire(reg, 9999), 0);
    cr_assert_eq(registry_serial(reg), 5);
    cr_assert_eq(registry_expire(reg, 10000), 1);
    cr_assert_eq(registry_serial(reg), 6);
    registry_free(reg);
}

Test(registry, callback_hears_each_change_after_it_is_applied)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    put(reg, "web", "web-1", 10, 0);
    put(reg, "web", "web-1", 20, 1000);
    cr_assert_eq(registry_renew(reg, "web", "web-1", 2000), 0);
    put(reg, "db", "db-1", 5, 0);
    cr_assert_eq(registry_remove(reg, "web", "web-1"), 0);
    cr_assert_eq(registry_expire(reg, 5000), 1);

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
        {REGISTRY_CHANGE_EXPIRE, "db", "db-1", false, 0},
    };
    cr_assert_eq(rec.n, 6);
    for (size_t i = 0; i < 6; i++) {
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
    cr_assert_eq(registry_renew(reg, "web", "x", 0), DNSD_ENOENT);
    cr_assert_eq(registry_expire(reg, 1000000), 0);
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
    struct registry *reg = registry_new(NULL, NULL);
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
            cr_assert_eq(registry_renew(reg, sh[i].service, sh[i].id, now), 0);
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

    /* Expire in steps; after each, exactly the instances past their deadline are gone. */
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
        cr_assert_eq(registry_expire(reg, now), due, "at %llu", (unsigned long long)now);
        live -= due;
        cr_assert_eq(registry_instance_count(reg), live);
        cr_assert_eq(registry_next_expiry(reg), next);
        cr_assert(registry_check(reg));
    }
    cr_assert_eq(live, 0);
    cr_assert_eq(registry_service_count(reg), 0);
    free(sh);
    registry_free(reg);
}

Test(registry, random_history_stays_consistent)
{
    /* Interleave puts, replacements, renewals and removals, checking after each step. */
    struct registry *reg = registry_new(NULL, NULL);
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
            (void)registry_renew(reg, service, id, now);
            break;
        default:
            (void)registry_remove(reg, service, id);
            break;
        }
        (void)registry_expire(reg, now);
        cr_assert(registry_check(reg), "step %d", step);
        if (registry_instance_count(reg))
            cr_assert_gt(registry_next_expiry(reg), now);
    }
    registry_free(reg);
}
