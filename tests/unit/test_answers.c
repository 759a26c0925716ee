/* SPDX-License-Identifier: BSD-2-Clause
 * Tests for answers: snapshots follow a real registry through its change callback (add,
 * replace, remove, health changes, in-place renewals), only answerable instances are
 * published (passing, warning unless only_passing), hashed lookup, instance fields, TXT
 * strings, proto tracking, removals and re-insertions, and readers on another thread while
 * the table changes and grows (run under ASan, a snapshot freed too early is an error). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <urcu/urcu-memb.h>

#include "answers.h"
#include "dnsd/error.h"
#include "registry.h"

static struct registry *reg;
static struct answers *ans;        /* passing and warning instances */
static struct answers *ans_strict; /* only_passing */
static int updates;

/* As daemon.c does: a renewal updates the lease in place, every other instance change
 * rebuilds the service; entering or leaving self-preservation names no service. */
static void on_change(void *user, enum registry_change change, const char *service, const char *id)
{
    (void)user;
    if (change == REGISTRY_CHANGE_PRESERVATION)
        return;
    if (change == REGISTRY_CHANGE_RENEW) {
        answers_renew_instance(ans, reg, service, id);
        answers_renew_instance(ans_strict, reg, service, id);
        return;
    }
    cr_assert_eq(answers_update_service(ans, reg, service), 0);
    cr_assert_eq(answers_update_service(ans_strict, reg, service), 0);
    updates++;
}

static void setup(void)
{
    /* answers' writer is a registered RCU thread (call_rcu), as dnsd's main thread is. */
    urcu_memb_register_thread();
    ans = answers_new("service.internal.", false);
    ans_strict = answers_new("service.internal.", true);
    cr_assert_not_null(ans);
    cr_assert_not_null(ans_strict);
    reg = registry_new(NULL, on_change, NULL);
    cr_assert_not_null(reg);
    updates = 0;
}

static void teardown(void)
{
    registry_free(reg);
    answers_free(ans);
    answers_free(ans_strict);
    urcu_memb_unregister_thread();
}

TestSuite(answers, .init = setup, .fini = teardown);

struct spec {
    const char *service, *id;
    const char *addrs[3];
    uint16_t port;
    enum registry_proto proto;
    const char *tags[3];
    const char *meta[4]; /* key, value, key, value */
    uint32_t ttl_s;
    const char *check_tcp; /* "HOST:PORT": an active TCP check */
};

static void put(const struct spec *s, uint64_t now_ms)
{
    struct registry_instance inst;
    memset(&inst, 0, sizeof(inst));
    char *tags[3];
    struct registry_meta meta[2];
    inst.service = (char *)s->service;
    inst.id = (char *)s->id;
    struct registry_addr addrs[3] = {0};
    inst.addrs = addrs;
    for (size_t i = 0; i < 3 && s->addrs[i]; i++) {
        struct registry_addr *a = &inst.addrs[inst.n_addrs++];
        a->family = strchr(s->addrs[i], ':') ? AF_INET6 : AF_INET;
        cr_assert_eq(inet_pton(a->family, s->addrs[i], a->bytes), 1);
    }
    inst.port = s->port;
    inst.proto = s->proto;
    inst.weight = 1;
    for (size_t i = 0; i < 3 && s->tags[i]; i++)
        tags[inst.n_tags++] = (char *)s->tags[i];
    inst.tags = inst.n_tags ? tags : NULL;
    for (size_t i = 0; i < 2 && s->meta[2 * i]; i++) {
        meta[i].key = (char *)s->meta[2 * i];
        meta[i].value = (char *)s->meta[2 * i + 1];
        inst.n_meta++;
    }
    inst.meta = inst.n_meta ? meta : NULL;
    inst.ttl_s = s->ttl_s ? s->ttl_s : 30;
    if (s->check_tcp) {
        inst.check.kind = REGISTRY_CHECK_TCP;
        inst.check.target = (char *)s->check_tcp;
        inst.check.interval_ms = 10000;
        inst.check.timeout_ms = 2000;
        inst.check.success_before_passing = 1;
        inst.check.failures_before_critical = 1;
    }
    const char *field = NULL;
    cr_assert_eq(registry_put(reg, &inst, now_ms, &field), 0, "put %s/%s: %s", s->service, s->id,
                 field ? field : "");
}

Test(answers, starts_empty)
{
    cr_assert_eq(answers_serial(ans), 0);
    cr_assert_eq(answers_service_count(ans), 0);
    cr_assert_null(answers_find_service(ans, "web"));
    cr_assert_not(answers_has_proto(ans, REGISTRY_PROTO_TCP));
    cr_assert_not(answers_has_proto(ans, REGISTRY_PROTO_UDP));
    cr_assert_str_eq(answers_domain(ans), "service.internal.");
}

Test(answers, update_publishes_instances_in_id_order)
{
    put(&(struct spec){.service = "web", .id = "web-2", .addrs = {"192.0.2.2"}, .port = 80}, 0);
    put(&(struct spec){.service = "web",
                       .id = "web-1",
                       .addrs = {"192.0.2.1", "2001:db8::1"},
                       .port = 8080,
                       .ttl_s = 10},
        1000);
    const struct answers_service *svc = answers_find_service(ans, "web");
    cr_assert_not_null(svc);
    cr_assert_str_eq(answers_service_name(svc), "web");
    cr_assert_eq(answers_service_instance_count(svc), 2);
    const struct answers_instance *first = answers_service_instance(svc, 0);
    cr_assert_str_eq(answers_instance_id(first), "web-1");
    cr_assert_eq(answers_instance_port(first), 8080);
    cr_assert_eq(answers_instance_proto(first), REGISTRY_PROTO_TCP);
    cr_assert_eq(answers_instance_weight(first), 1);
    cr_assert_eq(answers_instance_priority(first), 0);
    cr_assert_eq(answers_instance_expires_ms(first), 11000);
    cr_assert_eq(answers_instance_addr_count(first), 2);
    cr_assert_eq(answers_instance_addr(first, 1)->family, AF_INET6);
    cr_assert_str_eq(answers_instance_id(answers_service_instance(svc, 1)), "web-2");
}

Test(answers, finds_instance_by_id)
{
    put(&(struct spec){.service = "db", .id = "b", .addrs = {"192.0.2.2"}, .port = 1}, 0);
    put(&(struct spec){.service = "db", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    put(&(struct spec){.service = "db", .id = "c", .addrs = {"192.0.2.3"}, .port = 1}, 0);
    const struct answers_service *svc = answers_find_service(ans, "db");
    cr_assert_not_null(svc);
    for (const char *const *id = (const char *const[]){"a", "b", "c", NULL}; *id; id++) {
        const struct answers_instance *inst = answers_service_find_instance(svc, *id);
        cr_assert_not_null(inst, "%s", *id);
        cr_assert_str_eq(answers_instance_id(inst), *id);
    }
    cr_assert_null(answers_service_find_instance(svc, "d"));
}

static void heartbeat(const char *service, const char *id, enum registry_health status,
                      uint64_t now_ms)
{
    cr_assert_eq(registry_heartbeat(reg, service, id, status, NULL, now_ms, NULL), 0);
}

Test(answers, serial_follows_registry)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    cr_assert_eq(answers_serial(ans), registry_serial(reg));
    uint64_t before = answers_serial(ans);
    heartbeat("web", "a", REGISTRY_HEALTH_PASSING, 5000);
    cr_assert_gt(answers_serial(ans), before);
    cr_assert_eq(answers_serial(ans), registry_serial(reg));
}

Test(answers, renew_updates_lease_deadline_in_place)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    const struct answers_service *before = answers_find_service(ans, "web");
    int rebuilds = updates;
    heartbeat("web", "a", REGISTRY_HEALTH_PASSING, 5000);
    const struct answers_service *svc = answers_find_service(ans, "web");
    cr_assert_eq(svc, before, "a plain renewal does not rebuild the snapshot");
    cr_assert_eq(updates, rebuilds);
    cr_assert_eq(answers_instance_expires_ms(answers_service_instance(svc, 0)), 35000);
}

Test(answers, renew_of_unpublished_instance_is_enoent)
{
    cr_assert_eq(answers_renew_instance(ans, reg, "web", "a"), DNSD_ENOENT);
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    cr_assert_eq(answers_renew_instance(ans, reg, "web", "b"), DNSD_ENOENT);
    heartbeat("web", "a", REGISTRY_HEALTH_CRITICAL, 1000);
    cr_assert_eq(answers_renew_instance(ans, reg, "web", "a"), DNSD_ENOENT,
                 "registered but critical: not published");
    heartbeat("web", "a", REGISTRY_HEALTH_PASSING, 2000);
    cr_assert_eq(answers_renew_instance(ans, reg, "web", "a"), 0);
}

Test(answers, last_instance_removed_drops_service)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    put(&(struct spec){.service = "web", .id = "b", .addrs = {"192.0.2.2"}, .port = 1}, 0);
    cr_assert_eq(registry_remove(reg, "web", "a"), 0);
    const struct answers_service *svc = answers_find_service(ans, "web");
    cr_assert_not_null(svc);
    cr_assert_eq(answers_service_instance_count(svc), 1);
    cr_assert_eq(registry_remove(reg, "web", "b"), 0);
    cr_assert_null(answers_find_service(ans, "web"));
    cr_assert_eq(answers_service_count(ans), 0);
    cr_assert_not(answers_has_proto(ans, REGISTRY_PROTO_TCP));
}

Test(answers, lapsed_lease_drops_instance)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1, .ttl_s = 5},
        0);
    put(&(struct spec){.service = "web", .id = "b", .addrs = {"192.0.2.2"}, .port = 1, .ttl_s = 60},
        0);
    registry_advance(reg, 5000);
    cr_assert_eq(registry_find_instance(reg, "web", "a")->health, REGISTRY_HEALTH_CRITICAL);
    const struct answers_service *svc = answers_find_service(ans, "web");
    cr_assert_eq(answers_service_instance_count(svc), 1);
    cr_assert_str_eq(answers_instance_id(answers_service_instance(svc, 0)), "b");
    cr_assert_null(answers_service_find_instance(svc, "a"));
}

Test(answers, critical_and_maintenance_are_not_published)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    put(&(struct spec){.service = "web", .id = "b", .addrs = {"192.0.2.2"}, .port = 1}, 0);
    put(&(struct spec){.service = "web", .id = "c", .addrs = {"192.0.2.3"}, .port = 1}, 0);
    heartbeat("web", "a", REGISTRY_HEALTH_CRITICAL, 1000);
    cr_assert_eq(registry_set_maintenance(reg, "web", "b", true, NULL, 1000, NULL), 0);
    for (struct answers *a = ans; a; a = a == ans ? ans_strict : NULL) {
        const struct answers_service *svc = answers_find_service(a, "web");
        cr_assert_eq(answers_service_instance_count(svc), 1);
        cr_assert_str_eq(answers_instance_id(answers_service_instance(svc, 0)), "c");
    }
    cr_assert_eq(registry_set_maintenance(reg, "web", "b", false, NULL, 2000, NULL), 0);
    cr_assert_not_null(answers_service_find_instance(answers_find_service(ans, "web"), "b"));
}

Test(answers, warning_is_published_unless_only_passing)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    put(&(struct spec){.service = "web", .id = "b", .addrs = {"192.0.2.2"}, .port = 1}, 0);
    heartbeat("web", "a", REGISTRY_HEALTH_WARNING, 1000);
    cr_assert_eq(answers_service_instance_count(answers_find_service(ans, "web")), 2);
    const struct answers_service *strict = answers_find_service(ans_strict, "web");
    cr_assert_eq(answers_service_instance_count(strict), 1);
    cr_assert_str_eq(answers_instance_id(answers_service_instance(strict, 0)), "b");
}

Test(answers, service_without_answerable_instances_is_not_published)
{
    put(&(struct spec){.service = "dns",
                       .id = "a",
                       .addrs = {"192.0.2.1"},
                       .port = 53,
                       .proto = REGISTRY_PROTO_UDP},
        0);
    cr_assert(answers_has_proto(ans, REGISTRY_PROTO_UDP));
    heartbeat("dns", "a", REGISTRY_HEALTH_CRITICAL, 1000);
    cr_assert_null(answers_find_service(ans, "dns"));
    cr_assert_eq(answers_service_count(ans), 0);
    cr_assert_not(answers_has_proto(ans, REGISTRY_PROTO_UDP));
    heartbeat("dns", "a", REGISTRY_HEALTH_WARNING, 2000);
    cr_assert_not_null(answers_find_service(ans, "dns"));
    cr_assert_null(answers_find_service(ans_strict, "dns"));
    cr_assert(answers_has_proto(ans, REGISTRY_PROTO_UDP));
    cr_assert_not(answers_has_proto(ans_strict, REGISTRY_PROTO_UDP));
}

Test(answers, instance_with_check_is_published_after_its_first_pass)
{
    put(&(struct spec){.service = "web",
                       .id = "a",
                       .addrs = {"127.0.0.1"},
                       .port = 8080,
                       .check_tcp = "127.0.0.1:8080"},
        0);
    cr_assert_null(answers_find_service(ans, "web"), "awaiting its first check result");
    cr_assert_eq(registry_check_result(reg, "web", "a", REGISTRY_CHECK_PASS, "connected", 500), 0);
    cr_assert_not_null(answers_find_service(ans, "web"));
    cr_assert_eq(registry_check_result(reg, "web", "a", REGISTRY_CHECK_FAIL, "refused", 10500), 0);
    cr_assert_null(answers_find_service(ans, "web"));
}

Test(answers, proto_presence_is_tracked)
{
    put(&(struct spec){.service = "dns",
                       .id = "a",
                       .addrs = {"192.0.2.1"},
                       .port = 53,
                       .proto = REGISTRY_PROTO_UDP},
        0);
    cr_assert(answers_has_proto(ans, REGISTRY_PROTO_UDP));
    cr_assert_not(answers_has_proto(ans, REGISTRY_PROTO_TCP));
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.2"}, .port = 80}, 0);
    cr_assert(answers_has_proto(ans, REGISTRY_PROTO_TCP));
    /* re-registering dns as tcp removes the last udp instance */
    put(&(struct spec){.service = "dns",
                       .id = "a",
                       .addrs = {"192.0.2.1"},
                       .port = 53,
                       .proto = REGISTRY_PROTO_TCP},
        0);
    cr_assert_not(answers_has_proto(ans, REGISTRY_PROTO_UDP));
    cr_assert_eq(registry_remove(reg, "dns", "a"), 0);
    cr_assert(answers_has_proto(ans, REGISTRY_PROTO_TCP));
    cr_assert_eq(registry_remove(reg, "web", "a"), 0);
    cr_assert_not(answers_has_proto(ans, REGISTRY_PROTO_TCP));
}

Test(answers, tags_are_copied)
{
    put(&(struct spec){.service = "web",
                       .id = "a",
                       .addrs = {"192.0.2.1"},
                       .port = 1,
                       .tags = {"primary", "eu"}},
        0);
    put(&(struct spec){.service = "web", .id = "b", .addrs = {"192.0.2.2"}, .port = 1}, 0);
    const struct answers_service *svc = answers_find_service(ans, "web");
    const struct answers_instance *a = answers_service_find_instance(svc, "a");
    const struct answers_instance *b = answers_service_find_instance(svc, "b");
    cr_assert(answers_instance_is_tagged(a));
    cr_assert(answers_instance_has_tag(a, "primary"));
    cr_assert(answers_instance_has_tag(a, "eu"));
    cr_assert_not(answers_instance_has_tag(a, "us"));
    cr_assert_not(answers_instance_is_tagged(b));
    cr_assert_not(answers_instance_has_tag(b, "primary"));
}

Test(answers, txt_strings_are_key_value)
{
    put(&(struct spec){.service = "web",
                       .id = "a",
                       .addrs = {"192.0.2.1"},
                       .port = 1,
                       .meta = {"version", "1.4", "zone", "eu-1"}},
        0);
    const struct answers_instance *a =
        answers_service_instance(answers_find_service(ans, "web"), 0);
    cr_assert_eq(answers_instance_txt_count(a), 2);
    cr_assert_str_eq(answers_instance_txt(a, 0), "version=1.4");
    cr_assert_str_eq(answers_instance_txt(a, 1), "zone=eu-1");
}

Test(answers, no_metadata_is_one_empty_string)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    const struct answers_instance *a =
        answers_service_instance(answers_find_service(ans, "web"), 0);
    cr_assert_eq(answers_instance_txt_count(a), 1);
    cr_assert_str_eq(answers_instance_txt(a, 0), "");
}

Test(answers, many_services_stay_findable)
{
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "svc-%d", i);
        put(&(struct spec){.service = name, .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    }
    cr_assert_eq(answers_service_count(ans), 300);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "svc-%d", i);
        const struct answers_service *svc = answers_find_service(ans, name);
        cr_assert_not_null(svc, "%s", name);
        cr_assert_str_eq(answers_service_name(svc), name);
    }
    cr_assert_null(answers_find_service(ans, "svc-300"));
}

Test(answers, update_for_unknown_service_is_harmless)
{
    cr_assert_eq(answers_update_service(ans, reg, "ghost"), 0);
    cr_assert_null(answers_find_service(ans, "ghost"));
    cr_assert_eq(answers_service_count(ans), 0);
}

Test(answers, snapshot_is_independent_of_registry)
{
    put(&(struct spec){.service = "web", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    /* a registry without callback changes nothing published */
    struct registry *other = registry_new(NULL, NULL, NULL);
    cr_assert_not_null(other);
    const struct answers_service *svc = answers_find_service(ans, "web");
    registry_free(reg);
    reg = other;
    cr_assert_str_eq(answers_instance_id(answers_service_instance(svc, 0)), "a");
    /* an explicit update from a registry without the service removes it */
    cr_assert_eq(answers_update_service(ans, reg, "web"), 0);
    cr_assert_null(answers_find_service(ans, "web"));
}

Test(answers, removed_services_leave_the_others_findable)
{
    char name[32];
    /* Several rounds of removing every other service and adding it back: removals leave
     * tombstones in probe sequences, re-insertions reuse them, and the table is rebuilt. */
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 200; i++) {
            snprintf(name, sizeof(name), "svc-%d", i);
            put(&(struct spec){.service = name, .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
        }
        cr_assert_eq(answers_service_count(ans), 200);
        for (int i = round % 2; i < 200; i += 2) {
            snprintf(name, sizeof(name), "svc-%d", i);
            cr_assert_eq(registry_remove(reg, name, "a"), 0);
        }
        cr_assert_eq(answers_service_count(ans), 100);
        for (int i = 0; i < 200; i++) {
            snprintf(name, sizeof(name), "svc-%d", i);
            const struct answers_service *svc = answers_find_service(ans, name);
            if (i % 2 == round % 2) {
                cr_assert_null(svc, "%s was removed in round %d", name, round);
            } else {
                cr_assert_not_null(svc, "%s lost in round %d", name, round);
                cr_assert_str_eq(answers_service_name(svc), name);
            }
        }
    }
}

/* A reader thread as a DNS worker is: registered with liburcu, every lookup inside a
 * read-side critical section, checking that what it finds is whole. */
struct reader {
    atomic_bool stop;
    atomic_long lookups;
    atomic_long wrong; /* a service found under another name, empty, or the anchor missing */
};

static void *read_until_stopped(void *arg)
{
    struct reader *r = arg;
    char name[32];
    urcu_memb_register_thread();
    for (unsigned n = 0; !atomic_load(&r->stop); n++) {
        urcu_memb_read_lock();
        const struct answers_service *anchor = answers_find_service(ans, "anchor");
        if (!anchor || answers_service_instance_count(anchor) != 1 ||
            strcmp(answers_instance_id(answers_service_instance(anchor, 0)), "a") != 0)
            atomic_fetch_add(&r->wrong, 1);
        snprintf(name, sizeof(name), "churn-%u", n % 300);
        const struct answers_service *svc = answers_find_service(ans, name);
        if (svc) {
            const struct answers_instance *inst = answers_service_instance(svc, 0);
            if (strcmp(answers_service_name(svc), name) != 0 ||
                answers_service_instance_count(svc) == 0 ||
                answers_instance_addr(inst, 0)->family != AF_INET ||
                strncmp(answers_instance_txt(inst, 0), "round=", 6) != 0)
                atomic_fetch_add(&r->wrong, 1);
        }
        urcu_memb_read_unlock();
        atomic_fetch_add(&r->lookups, 1);
    }
    urcu_memb_unregister_thread();
    return NULL;
}

Test(answers, readers_on_another_thread_see_whole_snapshots)
{
    put(&(struct spec){.service = "anchor", .id = "a", .addrs = {"192.0.2.1"}, .port = 1}, 0);
    struct reader r = {0};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, read_until_stopped, &r), 0);
    char name[32], round[16];
    /* Replace, remove and re-add services while the reader reads: every replaced snapshot
     * and every outgrown table is freed while the reader may hold it, unless RCU waits. */
    for (int n = 0; n < 20; n++) {
        snprintf(round, sizeof(round), "%d", n);
        for (int i = 0; i < 300; i++) {
            snprintf(name, sizeof(name), "churn-%d", i);
            put(&(struct spec){.service = name,
                               .id = "x",
                               .addrs = {"192.0.2.7"},
                               .port = 7,
                               .meta = {"round", round}},
                0);
        }
        for (int i = n % 3; i < 300; i += 3) {
            snprintf(name, sizeof(name), "churn-%d", i);
            cr_assert_eq(registry_remove(reg, name, "x"), 0);
        }
    }
    atomic_store(&r.stop, true);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    cr_assert_gt(atomic_load(&r.lookups), 0);
    cr_assert_eq(atomic_load(&r.wrong), 0, "%ld lookups saw a wrong or missing service",
                 atomic_load(&r.wrong));
}
