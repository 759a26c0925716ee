/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the registry's health half (registry_health.c): health names, reported
 * status, active check thresholds, maintenance, deregister_after, the predictive
 * self-preservation trigger and its exits, out-of-memory paths of the health calls, and the
 * timers cross-checked against a naive reference model with self-preservation off and on.
 * The clock is always a plain number. */
#include "registry.h"

#include <inttypes.h>

#include "registry_fixture.h"

/* ---- health names ---- */

Test(registry_health, health_names_round_trip)
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

/* ---- health ---- */

Test(registry_health, new_instance_is_passing_with_empty_reason)
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

Test(registry_health, lapsed_lease_comes_back_with_a_heartbeat)
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

Test(registry_health, deregister_after_removes_exactly_at_the_deadline)
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

Test(registry_health, deregister_after_counts_any_critical_and_restarts)
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

Test(registry_health, heartbeat_reports_status_and_note)
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

Test(registry_health, heartbeat_rejects_bad_status_and_note)
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

Test(registry_health, health_fires_once_per_change_and_renew_otherwise)
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

Test(registry_health, maintenance_overrides_everything_and_stops_the_clock)
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

Test(registry_health, maintenance_default_reason_and_no_op)
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

Test(registry_health, maintenance_rejects_bad_reason_and_unknown)
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

Test(registry_health, check_starts_pending_and_critical)
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

Test(registry_health, check_thresholds_need_consecutive_results)
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

Test(registry_health, check_warning_is_immediate_and_counts_for_neither_side)
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

Test(registry_health, check_output_is_cut_and_cleaned)
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

Test(registry_health, check_result_needs_an_instance_with_a_check)
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

Test(registry_health, health_is_the_worse_of_heartbeat_and_check)
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

Test(registry_health, reregistration_resets_report_and_keeps_maintenance)
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

Test(registry_health, reregistration_brings_a_lapsed_instance_back)
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

Test(registry_health, reregistration_keeps_check_state_unless_the_spec_changed)
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

static struct registry_options preservation(double threshold, size_t min_instances, uint64_t max_ms)
{
    return (struct registry_options){
        .preservation_enabled = true,
        .preservation_threshold = threshold,
        .preservation_min_instances = min_instances,
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
    for (size_t i = 0; i < rec->n && i < 64; i++)
        n += rec->events[i].change == change;
    return n;
}

Test(registry_health, overdue_count_follows_the_eighty_percent_point)
{
    /* min_instances 100: never enters, so only the count is at stake. */
    struct registry_options opts = preservation(0.5, 100, 60000);
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, &opts);
    put(reg, "web", "a", 10, 0);
    put(reg, "web", "b", 10, 0);
    put(reg, "web", "c", 10, 0);
    put(reg, "web", "d", 10, 1000);
    cr_assert_eq(registry_next_deadline(reg), 8000, "80%% of the 10 s lease");
    rec.n = 0;
    cr_assert_eq(registry_advance(reg, 7999), 0);
    cr_assert_eq(registry_overdue_count(reg), 0);
    cr_assert_eq(registry_advance(reg, 8000), 0, "turning overdue changes nothing visible");
    cr_assert_eq(rec.n, 0, "and reports nothing");
    cr_assert_eq(registry_overdue_count(reg), 3);
    expect_health(reg, "web", "a", REGISTRY_HEALTH_PASSING, "");
    cr_assert_eq(registry_next_deadline(reg), 9000, "d turns overdue next");
    cr_assert_eq(renew(reg, "web", "a", 8500), 0);
    cr_assert_eq(registry_overdue_count(reg), 2, "a heartbeat takes it back");
    cr_assert_eq(registry_remove(reg, "web", "b"), 0);
    cr_assert_eq(registry_overdue_count(reg), 1, "so does a removal");
    put(reg, "web", "c", 10, 8600);
    cr_assert_eq(registry_overdue_count(reg), 0, "and a re-registration");
    cr_assert(registry_check(reg));
    cr_assert_eq(registry_advance(reg, 9000), 0);
    cr_assert_eq(registry_overdue_count(reg), 1);
    cr_assert_eq(registry_next_deadline(reg), 11000, "then its lapse");
    cr_assert_eq(registry_advance(reg, 11000), 1);
    expect_health(reg, "web", "d", REGISTRY_HEALTH_CRITICAL, "lease expired");
    cr_assert_eq(registry_overdue_count(reg), 0, "a lapsed lease is no longer overdue");
    cr_assert_eq(registry_remove(reg, "web", "c"), 0);
    /* A client refreshing a little before 80% is never overdue. */
    for (uint64_t t = 16400; t <= 60000; t += 7900) {
        cr_assert_eq(registry_advance(reg, t - 1), 0);
        cr_assert_eq(renew(reg, "web", "a", t), 0);
        cr_assert_eq(registry_overdue_count(reg), 0, "at %" PRIu64, t);
    }
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry_health, preservation_holds_the_whole_fleet_from_the_first_lapse)
{
    struct registry_options opts = preservation(0.5, 10, 60000);
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, &opts);
    put_many(reg, "i", 10, 10, 0);
    rec.n = 0;
    cr_assert_eq(registry_advance(reg, 9999), 0);
    cr_assert_eq(registry_overdue_count(reg), 10);
    cr_assert_not(registry_is_preserving(reg), "nothing has lapsed yet");
    /* The first lapse finds 10 of 10 overdue: self-preservation starts before it applies. */
    cr_assert_eq(registry_advance(reg, 10000), 0);
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_PASSING), 10, "every instance held");
    cr_assert_eq(rec.n, 1);
    cr_assert_eq(rec.events[0].change, REGISTRY_CHANGE_PRESERVATION);
    cr_assert(rec.preserving, "the callback sees the new state");
    cr_assert_eq(registry_overdue_count(reg), 10, "held leases stay overdue");
    cr_assert_eq(registry_next_deadline(reg), 70000, "only max_duration is due");
    const struct registry_instance *in = find(reg, "web", "i0");
    cr_assert_eq(in->expires_ms, 10000, "the lapsed deadline stays visible (TTL floor)");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry_health, preservation_leaves_when_heartbeats_resume)
{
    struct registry_options opts = preservation(0.5, 10, 60000);
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, &opts);
    put_many(reg, "i", 10, 10, 0);
    cr_assert_eq(registry_advance(reg, 10000), 0);
    cr_assert(registry_is_preserving(reg));
    /* 6 of 10 still overdue is above the threshold. */
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "i%d", i);
        cr_assert_eq(renew(reg, "web", id, 12000), 0);
        cr_assert(registry_is_preserving(reg), "%d heartbeats", i + 1);
    }
    rec.n = 0;
    /* 5 of 10 is not more than half: the last held ones turn critical at once. */
    cr_assert_eq(renew(reg, "web", "i4", 12000), 0);
    cr_assert_not(registry_is_preserving(reg));
    cr_assert_eq(rec.n, 7);
    cr_assert_eq(rec.events[0].change, REGISTRY_CHANGE_RENEW, "the heartbeat first");
    cr_assert_eq(count_events(&rec, REGISTRY_CHANGE_HEALTH), 5);
    cr_assert_eq(rec.events[6].change, REGISTRY_CHANGE_PRESERVATION);
    cr_assert_not(rec.preserving);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "i%d", i);
        if (i < 5) {
            expect_health(reg, "web", id, REGISTRY_HEALTH_PASSING, "");
        } else {
            expect_health(reg, "web", id, REGISTRY_HEALTH_CRITICAL, "lease expired");
            cr_assert_eq(find(reg, "web", id)->critical_since_ms, 12000);
        }
    }
    cr_assert_eq(registry_overdue_count(reg), 0);
    cr_assert_eq(registry_next_deadline(reg), 20000, "the renewed ones turn overdue next");
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry_health, preservation_leaves_when_removals_bring_the_share_down)
{
    struct registry_options opts = preservation(0.5, 1, 60000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put_many(reg, "short", 6, 10, 0);
    put_many(reg, "long", 4, 100, 0);
    cr_assert_eq(registry_advance(reg, 10000), 0);
    cr_assert(registry_is_preserving(reg), "6 of 10 overdue");
    cr_assert_eq(registry_remove(reg, "web", "short0"), 0);
    cr_assert(registry_is_preserving(reg), "5 of 9");
    cr_assert_eq(registry_remove(reg, "web", "short1"), 0);
    cr_assert_not(registry_is_preserving(reg), "4 of 8");
    /* A removal carries no time: the latest one given (the advance) stands in. */
    for (int i = 2; i < 6; i++) {
        char id[24];
        snprintf(id, sizeof(id), "short%d", i);
        expect_health(reg, "web", id, REGISTRY_HEALTH_CRITICAL, "lease expired");
        cr_assert_eq(find(reg, "web", id)->critical_since_ms, 10000);
    }
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry_health, preservation_threshold_boundary)
{
    for (size_t silent = 5; silent <= 6; silent++) {
        struct registry_options opts = preservation(0.5, 1, 60000);
        struct registry *reg = registry_new(&opts, NULL, NULL);
        put_many(reg, "a", silent, 10, 0);
        put_many(reg, "b", 10 - silent, 100, 0);
        /* Exactly half overdue is not more than half. */
        cr_assert_eq(registry_advance(reg, 10000), silent == 5 ? 5 : 0);
        cr_assert_eq(registry_is_preserving(reg), silent == 6);
        cr_assert_eq(count_health(reg, REGISTRY_HEALTH_CRITICAL), silent == 5 ? 5 : 0);
        cr_assert(registry_check(reg));
        registry_free(reg);
    }
}

Test(registry_health, preservation_needs_min_instances)
{
    for (size_t min = 10; min <= 11; min++) {
        struct registry_options opts = preservation(0.5, min, 60000);
        struct registry *reg = registry_new(&opts, NULL, NULL);
        put_many(reg, "i", 10, 10, 0);
        cr_assert_eq(registry_advance(reg, 10000), min == 10 ? 0 : 10);
        cr_assert_eq(registry_is_preserving(reg), min == 10);
        cr_assert(registry_check(reg));
        registry_free(reg);
    }
}

Test(registry_health, preservation_covers_staggered_heartbeats)
{
    /* 30 instances with 30 s leases heartbeating every 10 s, their last heartbeats spread
     * over those 10 s, then silence: by the first lapse (80 s) 19 of 30 are overdue, so
     * not one of them is dropped. */
    struct registry_options opts = preservation(0.5, 10, 600000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof(id), "s%d", i);
        put(reg, "web", id, 30, 50000 + (uint64_t)i * 333);
    }
    cr_assert_eq(registry_advance(reg, 79999), 0);
    cr_assert_eq(registry_overdue_count(reg), 19);
    cr_assert_not(registry_is_preserving(reg));
    cr_assert_eq(registry_advance(reg, 200000), 0);
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_PASSING), 30);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry_health, preservation_leaves_after_max_duration)
{
    struct registry_options opts = preservation(0.5, 1, 15000);
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, &opts);
    put_many(reg, "i", 10, 10, 0);
    put_many(reg, "late", 3, 19, 0);  /* lapse at 19000, while preserving */
    put_many(reg, "after", 1, 30, 0); /* overdue at 24000, lapses at 30000 */
    cr_assert_eq(registry_advance(reg, 10000), 0, "10 of 14 overdue: all held");
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(registry_advance(reg, 19000), 0, "held, not critical");
    cr_assert_eq(registry_next_deadline(reg), 24000);
    cr_assert_eq(registry_advance(reg, 24999), 0);
    cr_assert(registry_is_preserving(reg), "14 of 14 overdue, but...");
    rec.n = 0;
    cr_assert_eq(registry_advance(reg, 25000), 13, "...max_duration ends it");
    cr_assert_not(registry_is_preserving(reg));
    cr_assert_eq(rec.n, 14);
    cr_assert_eq(rec.events[13].change, REGISTRY_CHANGE_PRESERVATION);
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_CRITICAL), 13);
    cr_assert_eq(find(reg, "web", "late0")->critical_since_ms, 25000);
    /* The last one lapses alone (1 of 14 overdue): acted on at once. */
    cr_assert_eq(registry_advance(reg, 30000), 1);
    cr_assert_not(registry_is_preserving(reg));
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_CRITICAL), 14);
    cr_assert_eq(count_events(&rec, REGISTRY_CHANGE_PRESERVATION), 1);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry_health, preservation_off_switch)
{
    struct registry_options off = preservation(0.01, 0, 60000);
    off.preservation_enabled = false;
    const struct registry_options *variants[] = {NULL, &off};
    for (size_t v = 0; v < 2; v++) {
        struct recorder rec;
        struct registry *reg = new_recorded_opts(&rec, variants[v]);
        put_many(reg, "i", 10, 10, 0);
        cr_assert_eq(registry_next_deadline(reg), 10000, "no overdue point to wake for");
        cr_assert_eq(registry_advance(reg, 10000), 10);
        cr_assert_not(registry_is_preserving(reg));
        cr_assert_eq(registry_overdue_count(reg), 0);
        cr_assert_eq(count_events(&rec, REGISTRY_CHANGE_PRESERVATION), 0);
        cr_assert(registry_check(reg));
        registry_free(reg);
    }
}

Test(registry_health, explicit_signals_apply_during_preservation)
{
    struct registry_options opts = preservation(0.5, 1, 10000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put_many(reg, "i", 10, 10, 0);
    put_dereg(reg, "web", "d0", 100, 5000, 0);
    cr_assert_eq(registry_heartbeat(reg, "web", "d0", REGISTRY_HEALTH_CRITICAL, NULL, 9500, NULL),
                 0);
    /* 10 of 11 overdue at the first lapse: all ten held. */
    cr_assert_eq(registry_advance(reg, 10000), 0);
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(count_health(reg, REGISTRY_HEALTH_PASSING), 10);
    /* i0 renews, i1 reports critical, i2 deregisters: 7 of 10 still overdue. */
    cr_assert_eq(renew(reg, "web", "i0", 12000), 0);
    cr_assert_eq(
        registry_heartbeat(reg, "web", "i1", REGISTRY_HEALTH_CRITICAL, "dead", 12000, NULL), 0);
    expect_health(reg, "web", "i1", REGISTRY_HEALTH_CRITICAL, "heartbeat: dead");
    cr_assert_eq(registry_remove(reg, "web", "i2"), 0);
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(registry_overdue_count(reg), 7);
    cr_assert(registry_check(reg));
    /* deregister_after still removes an instance that is critical for its own reasons. */
    cr_assert_eq(registry_next_deadline(reg), 14500);
    cr_assert_eq(registry_advance(reg, 14500), 1);
    cr_assert_null(registry_find_instance(reg, "web", "d0"));
    cr_assert(registry_is_preserving(reg), "7 of 9");
    cr_assert_eq(registry_advance(reg, 20000), 7, "max_duration: the seven held turn critical");
    cr_assert_not(registry_is_preserving(reg));
    expect_health(reg, "web", "i0", REGISTRY_HEALTH_PASSING, "");
    expect_health(reg, "web", "i1", REGISTRY_HEALTH_CRITICAL, "heartbeat: dead");
    for (int i = 3; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "i%d", i);
        expect_health(reg, "web", id, REGISTRY_HEALTH_CRITICAL, "lease expired");
    }
    cr_assert_eq(registry_instance_count(reg), 9);
    cr_assert(registry_check(reg));
    registry_free(reg);
}

Test(registry_health, preservation_moves_the_serial_but_no_service_index)
{
    struct registry_options opts = preservation(0.5, 1, 60000);
    struct registry *reg = registry_new(&opts, NULL, NULL);
    put_many(reg, "i", 4, 10, 0);
    put(reg, "db", "db-1", 100, 0);
    uint64_t web = registry_service_index(reg, "web");
    uint64_t db = registry_service_index(reg, "db");
    uint64_t serial = registry_serial(reg);
    cr_assert_eq(registry_advance(reg, 10000), 0);
    cr_assert(registry_is_preserving(reg));
    cr_assert_eq(registry_serial(reg), serial + 1, "one PRESERVATION, no health change");
    cr_assert_eq(registry_service_index(reg, "web"), web);
    cr_assert_eq(registry_service_index(reg, "db"), db);
    registry_free(reg);
}

/* ---- out of memory in the health calls ---- */

Test(registry_health, heartbeat_out_of_memory_changes_nothing)
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

Test(registry_health, maintenance_out_of_memory_changes_nothing)
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

Test(registry_health, check_result_out_of_memory_changes_nothing)
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

Test(registry_health, put_with_check_out_of_memory_changes_nothing)
{
    struct recorder rec;
    struct registry *reg = new_recorded(&rec);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst_set_check(&inst, 2, 2);
    put_despite_oom(&rec, &inst, 1000, 1);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "no", 1500), 0);
    inst.check.interval_ms = 20000; /* a replacement with a changed check */
    put_despite_oom(&rec, &inst, 2000, 0);
    cr_assert(find(reg, "web", "web-1")->check_pending);
    registry_instance_clear(&inst);
    registry_free(reg);
}

/* ---- the timer heap against a naive reference model ---- */

/* One instance as the reference model sees it: a plain record scanned in full. */
struct model {
    bool exists;
    char service[8], id[8];
    uint32_t ttl_s;
    uint64_t dereg_ms, heartbeat_ms, expires_ms, critical_since_ms;
    bool lapsed, maintenance, has_check, pending;
    bool overdue; /* 80% of the lease passed without a heartbeat, or held */
    bool held;    /* lapsed while self-preservation holds it: health as if live */
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

/* The whole model: every instance plus the self-preservation state, as health-design.md and
 * registry.h describe it. */
struct world {
    struct model *ms;
    size_t n;
    struct registry_options opts; /* preservation_enabled false: off */
    bool preserving;
    uint64_t since;      /* when it was entered */
    uint64_t clock;      /* latest time of any call */
    size_t expect;       /* callbacks the registry must have made so far */
    size_t enters;       /* self-preservation entered */
    size_t leaves_max;   /* left after max_duration */
    size_t leaves_share; /* left because the overdue share fell */
};

/* The instance's next event and its kind: 0 turns overdue (80% of the lease without a
 * heartbeat; only with self-preservation on), 1 lease lapse, 2 removal; at one moment
 * kinds go in that order. */
static uint64_t model_next(const struct world *w, const struct model *m, int *kind)
{
    uint64_t key = UINT64_MAX;
    *kind = 2;
    if (!m->exists)
        return key;
    if (!m->lapsed && !m->held && w->opts.preservation_enabled && !m->overdue) {
        key = m->heartbeat_ms + m->ttl_s * 800ull;
        *kind = 0;
    } else if (!m->lapsed && !m->held) {
        key = m->expires_ms;
        *kind = 1;
    }
    if (m->health == REGISTRY_HEALTH_CRITICAL && m->dereg_ms > 0 &&
        m->critical_since_ms + m->dereg_ms < key) {
        key = m->critical_since_ms + m->dereg_ms;
        *kind = 2;
    }
    return key;
}

/* The earliest instance event by scanning them all; *best = n when there is none. */
static uint64_t world_top(const struct world *w, size_t *best, int *kind)
{
    uint64_t t = UINT64_MAX;
    *best = w->n;
    *kind = 2;
    for (size_t i = 0; i < w->n; i++) {
        int k;
        uint64_t key = model_next(w, &w->ms[i], &k);
        if (key < t || (key == t && key != UINT64_MAX && k < *kind)) {
            t = key;
            *best = i;
            *kind = k;
        }
    }
    return t;
}

static uint64_t world_end(const struct world *w)
{
    return w->preserving ? w->since + w->opts.preservation_max_ms : UINT64_MAX;
}

static uint64_t world_deadline(const struct world *w)
{
    size_t best;
    int kind;
    uint64_t top = world_top(w, &best, &kind);
    uint64_t end = world_end(w);
    return end < top ? end : top;
}

/* Registered instances and, among them, the overdue ones (held ones included). */
static size_t world_overdue(const struct world *w, size_t *registered)
{
    size_t n = 0, overdue = 0;
    for (size_t i = 0; i < w->n; i++) {
        n += w->ms[i].exists;
        overdue += w->ms[i].exists && w->ms[i].overdue;
    }
    *registered = n;
    return overdue;
}

/* More than threshold of all instances overdue? */
static bool world_over(const struct world *w)
{
    size_t n;
    size_t overdue = world_overdue(w, &n);
    return (double)overdue > w->opts.preservation_threshold * (double)n;
}

/* Leave self-preservation at t: every held lease lapses. Returns the health changes. */
static size_t world_leave(struct world *w, uint64_t t)
{
    size_t changed = 0;
    for (size_t i = 0; i < w->n; i++) {
        struct model *m = &w->ms[i];
        if (!m->exists || !m->held)
            continue;
        m->held = false;
        m->overdue = false;
        m->lapsed = true;
        changed += model_settle(m, t);
    }
    w->preserving = false;
    w->expect += changed + 1;
    return changed;
}

/* Leave at t when the overdue share is no longer above the threshold. */
static size_t world_review(struct world *w, uint64_t t)
{
    if (!w->preserving || world_over(w))
        return 0;
    w->leaves_share++;
    return world_leave(w, t);
}

/* Apply every due event in (time, kind) order. Returns the changes registry_advance
 * counts (health changes and removals). */
static size_t model_advance(struct world *w, uint64_t now)
{
    size_t changed = 0;
    if (now > w->clock)
        w->clock = now;
    for (;;) {
        size_t best;
        int kind;
        uint64_t top = world_top(w, &best, &kind);
        uint64_t end = world_end(w);
        uint64_t t = end < top ? end : top;
        if (t == UINT64_MAX || t > now)
            return changed;
        if (end <= top) {
            w->leaves_max++;
            changed += world_leave(w, t);
        } else if (kind == 0) {
            w->ms[best].overdue = true;
        } else if (kind == 1) {
            struct model *m = &w->ms[best];
            size_t n;
            size_t overdue = world_overdue(w, &n);
            if (w->opts.preservation_enabled && !w->preserving &&
                n >= w->opts.preservation_min_instances &&
                (double)overdue > w->opts.preservation_threshold * (double)n) {
                w->preserving = true;
                w->since = t;
                w->enters++;
                w->expect++;
            }
            if (w->preserving) {
                m->held = true;
            } else {
                m->lapsed = true;
                m->overdue = false;
            }
            bool c = model_settle(m, t);
            changed += c;
            w->expect += c;
        } else {
            w->ms[best].exists = false;
            changed++;
            w->expect++;
        }
        if (world_deadline(w) > t)
            changed += world_review(w, t);
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
    m->heartbeat_ms = now;
    m->expires_ms = now + ttl * 1000ull;
    m->lapsed = m->held = m->overdue = false;
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
 * first (or -1 for none). Any leaving of self-preservation it causes is added to
 * w->expect. */
static int model_op(struct registry *reg, struct world *w, struct model *m, uint64_t now)
{
    int op = rand() % 10;
    int change;
    if (now > w->clock)
        w->clock = now;
    if (!m->exists || op < 2) {
        model_put(reg, m, now);
        change = REGISTRY_CHANGE_PUT;
    } else if (op < 6) {
        enum registry_health status = (enum registry_health)(rand() % 3);
        bool noted = rand() % 4 == 0;
        cr_assert_eq(
            registry_heartbeat(reg, m->service, m->id, status, noted ? "busy" : NULL, now, NULL),
            0);
        m->reported = status;
        m->noted = noted;
        m->heartbeat_ms = now;
        m->lapsed = m->held = m->overdue = false;
        m->expires_ms = now + m->ttl_s * 1000ull;
        change = model_settle(m, now) ? REGISTRY_CHANGE_HEALTH : REGISTRY_CHANGE_RENEW;
    } else if (op < 7) {
        bool on = rand() % 2;
        cr_assert_eq(registry_set_maintenance(reg, m->service, m->id, on, NULL, now, NULL), 0);
        m->maintenance = on;
        return model_settle(m, now) ? REGISTRY_CHANGE_HEALTH : -1;
    } else if (op < 9) {
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
    } else {
        cr_assert_eq(registry_remove(reg, m->service, m->id), 0);
        m->exists = false;
        change = REGISTRY_CHANGE_REMOVE;
    }
    /* A put, heartbeat or removal may bring the overdue share back down. */
    world_review(w, w->clock);
    return change;
}

/* Drive a registry with opts (NULL: self-preservation off) and the model through the same
 * random history, comparing every instance, the deadline and the callbacks at each step.
 * With silences, every 100th step lets the whole fleet go quiet for 15 s. */
static void run_model(struct world *w, const struct registry_options *opts, unsigned seed,
                      bool silences)
{
    enum { N = 2000, STEPS = 1200, OPS = 25 };
    struct recorder rec;
    struct registry *reg = new_recorded_opts(&rec, opts);
    rec.unchecked = true; /* registry_check() runs after every step instead */
    memset(w, 0, sizeof(*w));
    if (opts)
        w->opts = *opts;
    w->n = N;
    w->ms = calloc(N, sizeof(*w->ms));
    cr_assert_not_null(w->ms);
    for (size_t i = 0; i < N; i++) {
        snprintf(w->ms[i].service, sizeof(w->ms[i].service), "s%zu", i % 13);
        snprintf(w->ms[i].id, sizeof(w->ms[i].id), "i%zu", i);
    }
    srand(seed);
    uint64_t now = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int k = 0; k < OPS && !(silences && step % 100 == 99); k++) {
            struct model *m = &w->ms[(size_t)rand() % N];
            rec.n = 0;
            w->expect = 0;
            int want = model_op(reg, w, m, now);
            cr_assert_eq(rec.n, (want >= 0) + w->expect, "step %d: callbacks", step);
            if (want >= 0)
                cr_assert_eq(rec.events[0].change, (enum registry_change)want, "step %d", step);
        }
        now += (uint64_t)(rand() % 1500);
        if (silences && step % 100 == 99)
            now += 15000;
        rec.n = 0;
        w->expect = 0;
        size_t want = model_advance(w, now);
        cr_assert_eq(registry_advance(reg, now), want, "step %d", step);
        cr_assert_eq(rec.n, w->expect, "step %d: one callback per change", step);
        cr_assert(registry_check(reg), "step %d", step);
        size_t count = 0;
        for (size_t i = 0; i < N; i++) {
            const struct model *m = &w->ms[i];
            const struct registry_instance *got = registry_find_instance(reg, m->service, m->id);
            cr_assert_eq(got != NULL, m->exists, "step %d %s", step, m->id);
            if (!got)
                continue;
            count++;
            cr_assert_eq(got->health, m->health, "step %d %s", step, m->id);
            cr_assert_str_eq(got->reason, m->reason, "step %d %s", step, m->id);
            cr_assert_eq(got->critical_since_ms, m->critical_since_ms, "step %d %s", step, m->id);
            cr_assert_eq(got->expires_ms, m->expires_ms);
        }
        size_t registered;
        size_t overdue = world_overdue(w, &registered);
        cr_assert_eq(registry_instance_count(reg), count);
        cr_assert_eq(registered, count);
        cr_assert_eq(registry_overdue_count(reg), overdue, "step %d", step);
        cr_assert_eq(registry_is_preserving(reg), w->preserving, "step %d", step);
        cr_assert_eq(registry_next_deadline(reg), world_deadline(w), "step %d", step);
    }
    free(w->ms);
    registry_free(reg);
}

Test(registry_health, timers_match_a_reference_model)
{
    struct world w;
    run_model(&w, NULL, 4242, false);
    cr_assert_eq(w.enters, 0);
}

Test(registry_health, preservation_matches_a_reference_model)
{
    struct registry_options opts = preservation(0.1, 50, 5000);
    struct world w;
    run_model(&w, &opts, 4243, true);
    /* The history did exercise entering and both ways out. */
    cr_assert_gt(w.enters, 0);
    cr_assert_gt(w.leaves_share, 0);
    cr_assert_gt(w.leaves_max, 0);
}

Test(registry_health, random_history_with_preservation_stays_consistent)
{
    /* Bursts of lapses with preservation on: invariants hold at every step and a held
     * lease never outlives max_duration. */
    struct registry_options opts = preservation(0.1, 20, 20000);
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

Test(registry_health, restore_brings_back_saved_state)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 30);
    inst.registered_ms = 1000;
    inst.heartbeat_ms = 50000;
    inst.reported = REGISTRY_HEALTH_WARNING;
    inst.note = xstrdup("slow disk");
    inst.maintenance = true;
    inst.maintenance_reason = xstrdup("upgrade");
    cr_assert_eq(registry_restore(reg, &inst, NULL), 0);

    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_not_null(got);
    cr_assert_eq(got->registered_ms, 1000);
    cr_assert_eq(got->heartbeat_ms, 50000);
    cr_assert_eq(got->expires_ms, 80000, "the lease runs from the saved heartbeat");
    cr_assert_eq(got->reported, REGISTRY_HEALTH_WARNING);
    cr_assert_str_eq(got->note, "slow disk");
    cr_assert(got->maintenance);
    cr_assert_str_eq(got->maintenance_reason, "upgrade");
    cr_assert_eq(got->health, REGISTRY_HEALTH_MAINTENANCE);
    cr_assert(registry_check(reg));
    free(inst.note);
    free(inst.maintenance_reason);
    inst.note = inst.maintenance_reason = NULL;
    registry_instance_clear(&inst);
    registry_free(reg);
}

Test(registry_health, restore_replaces_and_rejects_like_put)
{
    struct registry *reg = registry_new(NULL, NULL, NULL);
    put(reg, "web", "web-1", 30, 100);
    struct registry_instance inst;
    inst_init(&inst, "web", "web-1", 60);
    inst.registered_ms = 5;
    inst.heartbeat_ms = 200;
    cr_assert_eq(registry_restore(reg, &inst, NULL), 0);
    const struct registry_instance *got = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(got->ttl_s, 60);
    cr_assert_eq(got->registered_ms, 5);
    cr_assert_eq(got->reported, REGISTRY_HEALTH_PASSING);
    cr_assert_not(got->maintenance);
    cr_assert_eq(registry_instance_count(reg), 1);

    inst.port = 0;
    const char *field = NULL;
    cr_assert_eq(registry_restore(reg, &inst, &field), DNSD_EINVAL);
    cr_assert_str_eq(field, "port");
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->port, 8080);
    cr_assert(registry_check(reg));
    registry_instance_clear(&inst);
    registry_free(reg);
}
