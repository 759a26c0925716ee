/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the registry's storage (registry.c): validation, put and replace, lookup and
 * ordering, plain lease lapses, removal, the change callback and serial, service indexes and
 * tombstones, out-of-memory paths, heap/index consistency under many random operations, and
 * the capacity limits (instances in all and per service, meta bytes).
 * Health and self-preservation are in test_registry_health.c. The clock is a plain number. */
#include "registry.h"

#include <inttypes.h>

#include "dnsd/duration.h"
#include "registry_fixture.h"

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

Test(registry, foreach_after_resumes_past_a_name_present_or_gone)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "b", "x", 30, 0);
    put(reg, "d", "x", 30, 0);
    put(reg, "f", "x", 30, 0);
    const char *after[] = {NULL, "", "a", "b", "c", "d", "f", "g"};
    const char *want[] = {"b,d,f,", "b,d,f,", "b,d,f,", "d,f,", "d,f,", "f,", "", ""};
    for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
        char buf[64] = "";
        registry_foreach_service_after(reg, after[i], collect_names, buf);
        cr_expect_str_eq(buf, want[i], "after %s", after[i] ? after[i] : "NULL");
    }
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

    put_despite_oom(&rec, &inst, 1000, 1); /* new service and instance */
    cr_assert_eq(registry_instance_count(reg), 1);
    inst.port = 9999;
    put_despite_oom(&rec, &inst, 2000, 0); /* replacement */
    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(got->port, 9999);
    cr_assert_eq(got->registered_ms, 1000);
    free(inst.id);
    inst.id = xstrdup("web-2");
    put_despite_oom(&rec, &inst, 3000, 0); /* new instance in an existing service */
    cr_assert_eq(registry_instance_count(reg), 2);
    cr_assert_eq(rec.n, 3);
    registry_instance_clear(&inst);
    registry_free(reg);
}

/* ---- checks and deregister_after in validation ---- */

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

/* ---- capacity limits ---- */

Test(registry, options_are_copied_and_zero_without_opts)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    cr_assert_eq(registry_options(reg)->max_instances, 0);
    cr_assert_eq(registry_options(reg)->max_meta_bytes, 0);
    registry_free(reg);
    struct registry_options opts = {.max_instances = 7, .max_instances_per_service = 3};
    reg = registry_new(&opts, NULL, NULL);
    opts.max_instances = 1;
    cr_assert_eq(registry_options(reg)->max_instances, 7);
    cr_assert_eq(registry_options(reg)->max_instances_per_service, 3);
    cr_assert_not(registry_options(reg)->preservation_enabled);
    registry_free(reg);
}

Test(registry, put_refuses_new_instance_beyond_per_service_limit)
{
    struct recorder rec;
    struct registry_options opts = {.max_instances_per_service = 2};
    struct registry *reg = new_recorded_opts(&rec, &opts);
    put(reg, "web", "web-1", 30, 0);
    put(reg, "web", "web-2", 30, 0);
    uint64_t serial = registry_serial(reg);
    size_t events = rec.n;
    struct registry_instance inst;
    inst_init(&inst, "web", "web-3", 30);
    const char *field = "untouched";
    cr_assert_eq(registry_put(reg, &inst, 10, &field), DNSD_ENOSPC);
    cr_assert_str_eq(field, "service");
    registry_instance_clear(&inst);
    cr_assert_null(registry_find_instance(reg, "web", "web-3"));
    cr_assert_eq(registry_instance_count(reg), 2);
    cr_assert_eq(registry_serial(reg), serial);
    cr_assert_eq(rec.n, events, "no callback for a refused put");
    cr_assert(registry_check(reg));
    /* Another service has its own quota. */
    put(reg, "db", "db-1", 30, 20);
    cr_assert_eq(registry_instance_count(reg), 3);
    registry_free(reg);
}

Test(registry, put_refuses_new_instance_beyond_total_limit)
{
    struct registry_options opts = {.max_instances = 2, .max_instances_per_service = 10};
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    put(reg, "db", "db-1", 30, 0);
    struct registry_instance inst;
    inst_init(&inst, "cache", "cache-1", 30);
    const char *field = "untouched";
    cr_assert_eq(registry_put(reg, &inst, 10, &field), DNSD_ENOSPC);
    cr_assert_null(field);
    cr_assert_eq(registry_put(reg, &inst, 10, NULL), DNSD_ENOSPC);
    cr_assert_null(registry_find_service(reg, "cache"), "no empty service left behind");
    cr_assert_eq(registry_service_count(reg), 2);
    cr_assert(registry_check(reg));
    /* Room comes back once an instance goes. */
    cr_assert_eq(registry_remove(reg, "db", "db-1"), 0);
    cr_assert_eq(registry_put(reg, &inst, 20, NULL), 0);
    registry_instance_clear(&inst);
    cr_assert_eq(registry_instance_count(reg), 2);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, put_replaces_at_capacity)
{
    struct registry_options opts = {.max_instances = 1, .max_instances_per_service = 1};
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.port = 9090;
    cr_assert_eq(registry_put(reg, &inst, 10, NULL), 0);
    registry_instance_clear(&inst);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->port, 9090);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, put_limits_total_meta_bytes)
{
    struct registry_options opts = {.max_meta_bytes = 20};
    struct registry *reg = registry_new(&opts, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_add_meta(&inst, "a", "12345678"); /* "a=12345678": 10 bytes */
    inst_add_meta(&inst, "b", "12345678"); /* 20 in all: exactly the limit */
    cr_assert_eq(registry_put(reg, &inst, 0, NULL), 0);
    inst_add_meta(&inst, "c", ""); /* "c=": 22 bytes */
    const char *field = NULL;
    cr_assert_eq(registry_put(reg, &inst, 10, &field), DNSD_ERANGE);
    cr_assert_str_eq(field, "meta");
    registry_instance_clear(&inst);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->n_meta, 2, "old one kept");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry, restore_ignores_capacity_limits)
{
    struct registry_options opts = {.max_instances = 1, .max_meta_bytes = 1};
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put(reg, "web", "web-1", 30, 0);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-2", 30);
    inst_add_meta(&inst, "version", "1.4");
    cr_assert_eq(registry_restore(reg, &inst, NULL), 0);
    registry_instance_clear(&inst);
    cr_assert_eq(registry_instance_count(reg), 2);
    cr_assert(registry_check(reg));
    registry_free(reg);
}
