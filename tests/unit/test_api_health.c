/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the API's health surface: check and deregister_after fields, heartbeat
 * status and notes, maintenance, blocking watch queries and the self-preservation flag,
 * driven through api_handle over a real registry at fixed now_ms values. */
#include "api_fixture.h"

/* ---- health fields ---- */

#define CHECKED(check)                                                                             \
    "{\"addresses\":[\"192.0.2.10\",\"2001:db8::10\"],\"port\":8080,\"check\":" check "}"

Test(api, instance_shows_health_fields)
{
    struct reply r = call("PUT", WEB1, MINIMAL, 1000);
    json_t *o = r.json;
    cr_assert_str_eq(get_str(o, "health"), "passing");
    cr_assert_str_eq(get_str(o, "reason"), "");
    cr_assert_str_eq(get_str(o, "status"), "passing");
    cr_assert(json_is_null(json_object_get(o, "note")));
    json_t *m = json_object_get(o, "maintenance");
    cr_assert(json_is_false(json_object_get(m, "enabled")));
    cr_assert(json_is_null(json_object_get(m, "reason")));
    cr_assert_eq(json_object_size(m), 2);
    cr_assert_null(json_object_get(o, "check"), "no check registered, no \"check\" member");
    cr_assert_str_eq(get_str(o, "deregister_after"), "1m");
    cr_assert_eq(get_int(o, "critical_for_ms"), 0);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->deregister_after_ms, 60000);
}

Test(api, deregister_after_is_set_or_defaulted)
{
    struct reply r = call(
        "PUT", WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"deregister_after\":\"0s\"}", 0);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(get_str(r.json, "deregister_after"), "0s");
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->deregister_after_ms, 0);
    r = call("PUT", WEB1,
             "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"deregister_after\":\"90000ms\"}", 0);
    cr_assert_str_eq(get_str(r.json, "deregister_after"), "90s");
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->deregister_after_ms, 90000);

    struct api_config cfg = test_cfg;
    cfg.deregister_after_default_ms = 0;
    struct api *never = api_new(reg, &cfg);
    cr_assert_not_null(never);
    struct api_response resp = {0};
    cr_assert_eq(api_handle(never, "PUT", WEB1, MINIMAL, strlen(MINIMAL), 0, 0, &resp), 0);
    cr_assert_not_null(strstr(resp.body, "\"deregister_after\":\"0s\""), "%s", resp.body);
    api_response_clear(&resp);
    api_free(never);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->deregister_after_ms, 0);
}

Test(api, check_is_shown_in_canonical_form_and_starts_pending)
{
    struct reply r = call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:8080\"}"), 1000);
    cr_assert_eq(r.status, 201);
    json_t *c = json_object_get(r.json, "check");
    cr_assert_not_null(c);
    cr_assert_str_eq(get_str(c, "tcp"), "192.0.2.10:8080");
    cr_assert_str_eq(get_str(c, "interval"), "10s");
    cr_assert_str_eq(get_str(c, "timeout"), "2s");
    cr_assert_eq(get_int(c, "success_before_passing"), 1);
    cr_assert_eq(get_int(c, "failures_before_critical"), 1);
    cr_assert_str_eq(get_str(c, "status"), "pending");
    cr_assert(json_is_null(json_object_get(c, "output")));
    cr_assert(json_is_null(json_object_get(c, "last_run_ms_ago")));
    cr_assert_eq(json_object_size(c), 8);
    /* Nothing is answered before the check has been seen to work (health-design.md). */
    cr_assert_str_eq(get_str(r.json, "health"), "critical");
    cr_assert_str_eq(get_str(r.json, "reason"), "check: awaiting first result");
    cr_assert_eq(get_int(r.json, "critical_for_ms"), 0);
    cr_assert_eq(json_object_size(r.json), 21);

    const struct registry_instance *inst = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(inst->check.kind, REGISTRY_CHECK_TCP);
    cr_assert_str_eq(inst->check.target, "192.0.2.10:8080");
    cr_assert_eq(inst->check.interval_ms, 10000);
    cr_assert_eq(inst->check.timeout_ms, 2000);
    cr_assert_eq(get_int(listed("web", 0, 1700), "critical_for_ms"), 700);
}

Test(api, check_spec_is_stored_as_given)
{
    struct reply r = call("PUT", WEB1,
                          CHECKED("{\"http\":\"HTTP://[2001:DB8:0::10]/health?x=1\","
                                  "\"interval\":\"1500ms\",\"timeout\":\"250ms\","
                                  "\"success_before_passing\":3,\"failures_before_critical\":100}"),
                          0);
    cr_assert_eq(r.status, 201);
    json_t *c = json_object_get(r.json, "check");
    cr_assert_str_eq(get_str(c, "http"), "http://[2001:db8::10]:80/health?x=1");
    cr_assert_null(json_object_get(c, "tcp"));
    cr_assert_str_eq(get_str(c, "interval"), "1500ms");
    cr_assert_str_eq(get_str(c, "timeout"), "250ms");
    cr_assert_eq(get_int(c, "success_before_passing"), 3);
    cr_assert_eq(get_int(c, "failures_before_critical"), 100);
    const struct registry_instance *inst = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(inst->check.kind, REGISTRY_CHECK_HTTP);
    cr_assert_str_eq(inst->check.target, "http://[2001:db8::10]:80/health?x=1");
    cr_assert_eq(inst->check.interval_ms, 1500);
    cr_assert_eq(inst->check.timeout_ms, 250);
    cr_assert_eq(inst->check.success_before_passing, 3);
    cr_assert_eq(inst->check.failures_before_critical, 100);

    r = call("PUT", WEB1, CHECKED("{\"tcp\":\"[2001:db8::10]:443\",\"interval\":\"60m\"}"), 0);
    c = json_object_get(r.json, "check");
    cr_assert_str_eq(get_str(c, "tcp"), "[2001:db8::10]:443");
    cr_assert_str_eq(get_str(c, "interval"), "1h");
}

Test(api, short_interval_defaults_timeout_to_half)
{
    struct reply r =
        call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"1s\"}"), 0);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(get_str(json_object_get(r.json, "check"), "timeout"), "500ms");
    r = call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"100ms\"}"), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(json_object_get(r.json, "check"), "timeout"), "50ms");
    r = call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"5s\"}"), 0);
    cr_assert_str_eq(get_str(json_object_get(r.json, "check"), "timeout"), "2s");
}

struct bad_health_put {
    char body[256];
    char field[24];
    char msg[96];
};

ParameterizedTestParameters(api, put_rejects_bad_check_or_deregister_after)
{
    static struct bad_health_put cases[] = {
        {CHECKED("\"192.0.2.10:80\""), "check", "check: must be an object"},
        {CHECKED("{}"), "check", "exactly one of \"tcp\" and \"http\""},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"http\":\"http://192.0.2.10/\"}"), "check",
         "exactly one of"},
        {CHECKED("{\"interval\":\"5s\"}"), "check", "exactly one of"},
        {CHECKED("{\"tcp\":80}"), "check", "check.tcp: must be a string"},
        {CHECKED("{\"tcp\":\"192.0.2.10\"}"), "check",
         "check.tcp: \"192.0.2.10\" is not HOST:PORT"},
        {CHECKED("{\"tcp\":\"localhost:80\"}"), "check", "is not HOST:PORT"},
        {CHECKED("{\"tcp\":\"2001:db8::10:80\"}"), "check", "is not HOST:PORT"},
        {CHECKED("{\"tcp\":\"192.0.2.10:0\"}"), "check", "is not HOST:PORT"},
        {CHECKED("{\"http\":\"https://192.0.2.10/\"}"), "check", "check.http: \"https://"},
        {CHECKED("{\"http\":\"192.0.2.10:80\"}"), "check", "is not an http://HOST"},
        {CHECKED("{\"tcp\":\"192.0.2.11:80\"}"), "check",
         "the probe may only reach the instance's own addresses"},
        {CHECKED("{\"http\":\"http://127.0.0.1:8080/health\"}"), "check",
         "\"http://127.0.0.1:8080/health\" is not one of the instance's addresses"},
        {CHECKED("{\"tcp\":\"[::ffff:192.0.2.10]:80\"}"), "check", "own addresses"},
        {CHECKED("{\"tcp\":\"[2001:db8::11]:80\"}"), "check", "own addresses"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"intervall\":\"5s\"}"), "check",
         "check: unknown field \"intervall\""},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":5}"), "check",
         "check.interval: must be a duration string"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"5\"}"), "check",
         "check.interval: \"5\" is not a duration"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"5 s\"}"), "check", "is not a duration"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"99ms\"}"), "check",
         "check.interval: must be from 100ms to 1h"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"61m\"}"), "check", "from 100ms to 1h"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"8d\"}"), "check", "is not a duration"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"9999999h\"}"), "check",
         "from 100ms to 1h"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"timeout\":\"0ms\"}"), "check",
         "check.timeout: must be from 1ms"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"timeout\":\"10s\"}"), "check",
         "check.timeout: must be shorter than the interval (10s)"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"interval\":\"1s\",\"timeout\":\"2s\"}"), "check",
         "shorter than the interval (1s)"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"success_before_passing\":0}"), "check",
         "check.success_before_passing: must be an integer from 1 to 100"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"success_before_passing\":101}"), "check",
         "from 1 to 100"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"success_before_passing\":\"2\"}"), "check",
         "from 1 to 100"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"failures_before_critical\":1.0}"), "check",
         "check.failures_before_critical: must be an integer"},
        {CHECKED("{\"tcp\":\"192.0.2.10:80\",\"failures_before_critical\":-3}"), "check",
         "check.failures_before_critical"},
        {"{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"deregister_after\":60}", "deregister_after",
         "deregister_after: must be a duration string"},
        {"{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"deregister_after\":\"1d\"}",
         "deregister_after", "deregister_after: \"1d\" is not a duration"},
        {"{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"deregister_after\":\"-1s\"}",
         "deregister_after", "is not a duration"},
        {"{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"deregister_after\":\"169h\"}",
         "deregister_after", "deregister_after: must be from 0s to 168h"},
        {"{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"deregister_after\":null}",
         "deregister_after", "must be a duration string"},
    };
    return cr_make_param_array(struct bad_health_put, cases, sizeof(cases) / sizeof(cases[0]),
                               NULL);
}

ParameterizedTest(struct bad_health_put *c, api, put_rejects_bad_check_or_deregister_after)
{
    struct reply r = call("PUT", WEB1, c->body, 0);
    expect_error(r, 400, c->field, c->msg);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert_eq(registry_serial(reg), 0);
}

Test(api, check_result_is_shown)
{
    call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:8080\"}"), 0);
    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "connected", 400),
                 0);
    json_t *o = listed("web", 0, 1000);
    json_t *c = json_object_get(o, "check");
    cr_assert_str_eq(get_str(c, "status"), "passing");
    cr_assert_str_eq(get_str(c, "output"), "connected");
    cr_assert_eq(get_int(c, "last_run_ms_ago"), 600);
    cr_assert_str_eq(get_str(o, "health"), "passing");
    cr_assert_eq(get_int(o, "critical_for_ms"), 0);

    cr_assert_eq(registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL,
                                       "connect 192.0.2.10:8080: connection refused", 2000),
                 0);
    o = listed("web", 0, 2500);
    c = json_object_get(o, "check");
    cr_assert_str_eq(get_str(c, "status"), "critical");
    cr_assert_str_eq(get_str(c, "output"), "connect 192.0.2.10:8080: connection refused");
    cr_assert_str_eq(get_str(o, "health"), "critical");
    cr_assert_str_eq(get_str(o, "reason"), "check: connect 192.0.2.10:8080: connection refused");
    cr_assert_eq(get_int(o, "critical_for_ms"), 500);
}

Test(api, reregistration_keeps_check_state_unless_the_spec_changes)
{
    call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:8080\"}"), 0);
    registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "connected", 100);
    struct reply r = call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:8080\"}"), 200);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(json_object_get(r.json, "check"), "status"), "passing");
    cr_assert_str_eq(get_str(r.json, "health"), "passing");
    expect_stored(r.json, 200);
    r = call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:8081\"}"), 300);
    cr_assert_str_eq(get_str(json_object_get(r.json, "check"), "status"), "pending");
    cr_assert_str_eq(get_str(r.json, "health"), "critical");
    expect_stored(r.json, 300);
    r = call("PUT", WEB1, MINIMAL, 400);
    cr_assert_null(json_object_get(r.json, "check"));
    cr_assert_str_eq(get_str(r.json, "health"), "passing");
    expect_stored(r.json, 400);
}

/* PUT path body at now; the reply must show the instance exactly as stored afterwards.
 * Returns: the reply, valid until the next step (freed by fini). */
static json_t *step(const char *path, const char *body, uint64_t now)
{
    struct reply r = call("PUT", path, body, now);
    cr_assert_lt(r.status, 300, "PUT %s %s: %d", path, body ? body : "", r.status);
    json_decref(stepped);
    stepped = json_incref(r.json);
    expect_stored(stepped, now);
    return stepped;
}

Test(api, replies_follow_a_check_through_its_thresholds)
{
    step(WEB1,
         CHECKED("{\"tcp\":\"192.0.2.10:8080\",\"success_before_passing\":2,"
                 "\"failures_before_critical\":3}"),
         0);
    registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "connected", 100);
    json_t *o = step(WEB1 "/heartbeat", "{\"status\":\"warning\",\"note\":\"slow\"}", 200);
    cr_assert_str_eq(get_str(o, "health"), "critical");
    cr_assert_not_null(strstr(get_str(o, "reason"), "check: connected"), "%s",
                       get_str(o, "reason"));
    registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_PASS, "connected", 300);
    o = step(WEB1 "/heartbeat", "{\"status\":\"warning\"}", 400);
    cr_assert_str_eq(get_str(o, "health"), "warning");
    cr_assert_str_eq(get_str(o, "reason"), "heartbeat: warning");
    registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "HTTP 500", 500);
    o = step(WEB1 "/heartbeat", NULL, 600);
    cr_assert_str_eq(get_str(o, "health"), "passing");
    registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_WARN, "HTTP 429", 700);
    o = step(WEB1 "/heartbeat", NULL, 800);
    cr_assert_str_eq(get_str(o, "health"), "warning");
    cr_assert_str_eq(get_str(json_object_get(o, "check"), "output"), "HTTP 429");
    o = step(WEB1 "/heartbeat", "{\"status\":\"critical\",\"note\":\"out of memory\"}", 900);
    cr_assert_str_eq(get_str(o, "reason"), "heartbeat: out of memory");
    step(WEB1 "/maintenance", "{\"enabled\":true,\"reason\":\"\"}", 1000);
    o = step(WEB1 "/maintenance", "{\"enabled\":false}", 1100);
    cr_assert_str_eq(get_str(o, "health"), "critical");
    cr_assert_str_eq(get_str(o, "reason"), "heartbeat: out of memory");
    o = step(WEB1,
             CHECKED("{\"tcp\":\"192.0.2.10:8080\",\"success_before_passing\":2,"
                     "\"failures_before_critical\":3}"),
             1200);
    cr_assert_str_eq(get_str(o, "health"), "warning");
    cr_assert_str_eq(get_str(o, "status"), "passing");
    for (int i = 0; i < 3; i++)
        registry_check_result(reg, "web", "web-1", REGISTRY_CHECK_FAIL, "HTTP 500", 1300);
    o = step(WEB1 "/heartbeat", "{\"status\":\"warning\"}", 1400);
    cr_assert_str_eq(get_str(o, "health"), "critical");
    cr_assert_eq(get_int(o, "critical_for_ms"), 100);
}

Test(api, maintenance_off_after_a_lapse_shows_lease_expired)
{
    step(WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":5}", 0);
    step(WEB1 "/maintenance", "{\"enabled\":true}", 1000);
    registry_advance(reg, 6000);
    json_t *o = step(WEB1 "/maintenance", "{\"enabled\":false}", 7000);
    cr_assert_str_eq(get_str(o, "health"), "critical");
    cr_assert_str_eq(get_str(o, "reason"), "lease expired");
    step(WEB1 "/maintenance", "{\"enabled\":true}", 8000);
    registry_advance(reg, 9000);
    o = step(WEB1 "/maintenance", "{\"enabled\":false}", 10000);
    cr_assert_str_eq(get_str(o, "reason"), "lease expired");
    cr_assert_eq(get_int(listed("web", 0, 12000), "critical_for_ms"), 2000);
    o = step(WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":5}", 13000);
    cr_assert_str_eq(get_str(o, "health"), "passing");
}

Test(api, reply_shows_the_stored_state_when_time_has_not_been_applied)
{
    /* Under maintenance the lease's state is hidden; its deadline has passed but the
     * registry has not been advanced, so it is still live: the reply must say what the
     * registry says, not what the deadline suggests. */
    step(WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":5}", 0);
    step(WEB1 "/maintenance", "{\"enabled\":true}", 1000);
    json_t *o = step(WEB1 "/maintenance", "{\"enabled\":false}", 7000);
    cr_assert_str_eq(get_str(o, "health"), "passing");
    cr_assert_eq(get_int(o, "lease_remaining_ms"), 0);
}

/* ---- heartbeat status and note ---- */

Test(api, heartbeat_records_status_and_note)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct reply r =
        call("PUT", WEB1 "/heartbeat", "{\"status\":\"warning\",\"note\":\"disk 90%\"}", 1000);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "health"), "warning");
    cr_assert_str_eq(get_str(r.json, "status"), "warning");
    cr_assert_str_eq(get_str(r.json, "note"), "disk 90%");
    cr_assert_str_eq(get_str(r.json, "reason"), "heartbeat: disk 90%");
    expect_stored(r.json, 1000);
    const struct registry_instance *inst = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(inst->reported, REGISTRY_HEALTH_WARNING);
    cr_assert_str_eq(inst->note, "disk 90%");
    cr_assert_eq(inst->heartbeat_ms, 1000);

    r = call("PUT", WEB1 "/heartbeat", "{\"status\":\"critical\"}", 2000);
    cr_assert_str_eq(get_str(r.json, "health"), "critical");
    cr_assert_str_eq(get_str(r.json, "status"), "critical");
    cr_assert(json_is_null(json_object_get(r.json, "note")));
    cr_assert_eq(get_int(r.json, "critical_for_ms"), 0);
    expect_stored(r.json, 2000);
    cr_assert_eq(get_int(listed("web", 0, 5000), "critical_for_ms"), 3000);

    r = call("PUT", WEB1 "/heartbeat", "{\"note\":\"all good\"}", 6000);
    cr_assert_str_eq(get_str(r.json, "health"), "passing");
    cr_assert_str_eq(get_str(r.json, "note"), "all good");
    cr_assert_eq(get_int(r.json, "critical_for_ms"), 0);
    expect_stored(r.json, 6000);
}

Test(api, empty_heartbeat_body_is_passing_without_note)
{
    const char *bodies[] = {NULL, "", " \r\n\t", "{}"};
    call("PUT", WEB1, MINIMAL, 0);
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        call("PUT", WEB1 "/heartbeat", "{\"status\":\"warning\",\"note\":\"x\"}", 10 * i);
        struct reply r = call("PUT", WEB1 "/heartbeat", bodies[i], 10 * i + 5);
        cr_assert_eq(r.status, 200, "body %zu", i);
        cr_assert_str_eq(get_str(r.json, "health"), "passing");
        cr_assert_str_eq(get_str(r.json, "status"), "passing");
        cr_assert(json_is_null(json_object_get(r.json, "note")));
        cr_assert_str_eq(get_str(r.json, "reason"), "");
        cr_assert_eq(registry_find_instance(reg, "web", "web-1")->reported,
                     REGISTRY_HEALTH_PASSING);
    }
}

Test(api, heartbeat_note_may_be_256_bytes)
{
    char note[300], body[400];
    memset(note, 'n', 256);
    note[256] = '\0';
    snprintf(body, sizeof(body), "{\"note\":\"%s\"}", note);
    call("PUT", WEB1, MINIMAL, 0);
    struct reply r = call("PUT", WEB1 "/heartbeat", body, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "note"), note);
    expect_stored(r.json, 0);
    note[256] = 'n';
    note[257] = '\0';
    snprintf(body, sizeof(body), "{\"note\":\"%s\"}", note);
    expect_error(call("PUT", WEB1 "/heartbeat", body, 0), 400, "note", "longer than 256 bytes");
}

Test(api, heartbeat_rejects_bad_body)
{
    const struct {
        const char *body, *field, *msg;
    } cases[] = {
        {"{", "body", "invalid JSON"},
        {"ok", "body", "invalid JSON"},
        {"[]", "body", "must be a JSON object"},
        {"{\"status\":\"ok\"}", "status",
         "status: must be \"passing\", \"warning\" or \"critical\""},
        {"{\"status\":\"Passing\"}", "status", "status: must be"},
        {"{\"status\":\"maintenance\"}", "status", "status: must be"},
        {"{\"status\":2}", "status", "status: must be"},
        {"{\"status\":null}", "status", "status: must be"},
        {"{\"note\":5}", "note", "note: must be a string"},
        {"{\"note\":\"a\\nb\"}", "note", "note: contains a control character"},
        {"{\"note\":\"a\\u007fb\"}", "note", "control character"},
        {"{\"status\":\"passing\",\"output\":\"x\"}", "output", "unknown field \"output\""},
    };
    call("PUT", WEB1, MINIMAL, 0);
    uint64_t serial = registry_serial(reg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(call("PUT", WEB1 "/heartbeat", cases[i].body, 1000), 400, cases[i].field,
                     cases[i].msg);
    cr_assert_eq(registry_serial(reg), serial, "a rejected heartbeat changed the registry");
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->heartbeat_ms, 0);
}

Test(api, heartbeat_unknown_is_404_before_its_body_is_read)
{
    expect_error(call("PUT", WEB1 "/heartbeat", "{\"status\":\"bogus\"}", 0), 404, "id",
                 "is not registered");
}

/* ---- maintenance ---- */

Test(api, maintenance_on_and_off)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct reply r =
        call("PUT", WEB1 "/maintenance", "{\"enabled\":true,\"reason\":\"deploy 1.5\"}", 1000);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "health"), "maintenance");
    cr_assert_str_eq(get_str(r.json, "reason"), "deploy 1.5");
    json_t *m = json_object_get(r.json, "maintenance");
    cr_assert(json_is_true(json_object_get(m, "enabled")));
    cr_assert_str_eq(get_str(m, "reason"), "deploy 1.5");
    cr_assert_eq(get_int(r.json, "critical_for_ms"), 0);
    expect_stored(r.json, 1000);
    const struct registry_instance *inst = registry_find_instance(reg, "web", "web-1");
    cr_assert(inst->maintenance);
    cr_assert_eq(inst->health, REGISTRY_HEALTH_MAINTENANCE);

    r = call("PUT", WEB1 "/maintenance", "{\"enabled\":false,\"reason\":\"ignored\"}", 2000);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "health"), "passing");
    cr_assert_str_eq(get_str(r.json, "reason"), "");
    m = json_object_get(r.json, "maintenance");
    cr_assert(json_is_false(json_object_get(m, "enabled")));
    cr_assert(json_is_null(json_object_get(m, "reason")));
    expect_stored(r.json, 2000);
    cr_assert_not(registry_find_instance(reg, "web", "web-1")->maintenance);
}

Test(api, maintenance_without_reason_says_maintenance_mode)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct reply r = call("PUT", WEB1 "/maintenance", "{\"enabled\":true}", 0);
    cr_assert_str_eq(get_str(r.json, "health"), "maintenance");
    cr_assert_str_eq(get_str(r.json, "reason"), "maintenance mode");
    cr_assert(json_is_null(json_object_get(json_object_get(r.json, "maintenance"), "reason")));
    expect_stored(r.json, 0);
}

Test(api, maintenance_outlasts_heartbeats_and_reregistration)
{
    call("PUT", WEB1, MINIMAL, 0);
    call("PUT", WEB1 "/maintenance", "{\"enabled\":true,\"reason\":\"deploy\"}", 0);
    struct reply r = call("PUT", WEB1 "/heartbeat", "{\"status\":\"critical\"}", 100);
    cr_assert_str_eq(get_str(r.json, "health"), "maintenance");
    cr_assert_str_eq(get_str(r.json, "status"), "critical");
    expect_stored(r.json, 100);
    r = call("PUT", WEB1, MINIMAL, 200);
    cr_assert_str_eq(get_str(r.json, "health"), "maintenance");
    cr_assert_str_eq(get_str(r.json, "reason"), "deploy");
    cr_assert_str_eq(get_str(r.json, "status"), "passing");
    expect_stored(r.json, 200);
}

Test(api, maintenance_off_shows_the_underlying_health)
{
    call("PUT", WEB1, CHECKED("{\"tcp\":\"192.0.2.10:8080\"}"), 0);
    call("PUT", WEB1 "/maintenance", "{\"enabled\":true}", 100);
    struct reply r = call("PUT", WEB1 "/maintenance", "{\"enabled\":false}", 200);
    cr_assert_str_eq(get_str(r.json, "health"), "critical");
    cr_assert_str_eq(get_str(r.json, "reason"), "check: awaiting first result");
    cr_assert_eq(get_int(r.json, "critical_for_ms"), 0);
    expect_stored(r.json, 200);
}

Test(api, maintenance_rejects_bad_body)
{
    const struct {
        const char *body, *field, *msg;
    } cases[] = {
        {NULL, "body", "invalid JSON"},
        {"", "body", "invalid JSON"},
        {"true", "body", "invalid JSON"},
        {"[]", "body", "must be a JSON object"},
        {"{}", "enabled", "enabled: required"},
        {"{\"reason\":\"deploy\"}", "enabled", "enabled: required"},
        {"{\"enabled\":\"yes\"}", "enabled", "enabled: must be true or false"},
        {"{\"enabled\":1}", "enabled", "enabled: must be true or false"},
        {"{\"enabled\":true,\"reason\":7}", "reason", "reason: must be a string"},
        {"{\"enabled\":true,\"reason\":\"a\\tb\"}", "reason", "control character"},
        {"{\"enabled\":true,\"until\":\"5m\"}", "until", "unknown field \"until\""},
    };
    call("PUT", WEB1, MINIMAL, 0);
    uint64_t serial = registry_serial(reg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(call("PUT", WEB1 "/maintenance", cases[i].body, 0), 400, cases[i].field,
                     cases[i].msg);
    char reason[300], body[400];
    memset(reason, 'r', 257);
    reason[257] = '\0';
    snprintf(body, sizeof(body), "{\"enabled\":true,\"reason\":\"%s\"}", reason);
    expect_error(call("PUT", WEB1 "/maintenance", body, 0), 400, "reason", "longer than 256");
    cr_assert_eq(registry_serial(reg), serial, "a rejected request changed the registry");
    cr_assert_not(registry_find_instance(reg, "web", "web-1")->maintenance);
}

Test(api, maintenance_unknown_is_404)
{
    expect_error(call("PUT", WEB1 "/maintenance", "{\"enabled\":true}", 0), 404, "id",
                 "instance web/web-1 is not registered");
    cr_assert_eq(registry_serial(reg), 0);
}

/* ---- watch ---- */

Test(api, service_reply_carries_its_index)
{
    call("PUT", WEB1, MINIMAL, 0);
    call("PUT", "/v1/services/db/instances/db-1", MINIMAL, 0);
    struct api_response resp = raw("GET", "/v1/services/web", NULL, 0, 0);
    cr_assert_eq(resp.status, 200);
    cr_assert(resp.has_index);
    cr_assert_eq(resp.index, registry_service_index(reg, "web"));
    cr_assert_eq(resp.index, 1);
    api_response_clear(&resp);
    resp = raw("HEAD", "/v1/services/db", NULL, 0, 0);
    cr_assert(resp.has_index);
    cr_assert_eq(resp.index, 2);
    api_response_clear(&resp);
}

Test(api, unknown_service_has_index_zero)
{
    struct api_response resp = raw("GET", "/v1/services/nothing", NULL, 0, 0);
    cr_assert_eq(resp.status, 200);
    cr_assert(resp.has_index);
    cr_assert_eq(resp.index, 0);
    api_response_clear(&resp);
}

Test(api, service_list_carries_the_serial)
{
    call("PUT", WEB1, MINIMAL, 0);
    call("PUT", WEB1 "/heartbeat", NULL, 10);
    struct api_response resp = raw("GET", "/v1/services", NULL, 0, 10);
    cr_assert(resp.has_index);
    cr_assert_eq(resp.index, registry_serial(reg));
    cr_assert_eq(resp.index, 2);
    api_response_clear(&resp);
}

Test(api, other_replies_carry_no_index)
{
    api_set_ready(api, true);
    const char *paths[] = {"/v1/health", "/v1/nope"};
    for (size_t i = 0; i < 2; i++) {
        struct api_response resp = raw("GET", paths[i], NULL, 0, 0);
        cr_assert_not(resp.has_index, "%s", paths[i]);
        api_response_clear(&resp);
    }
    struct api_response resp = raw("PUT", WEB1, MINIMAL, 0, 0);
    cr_assert_not(resp.has_index);
    api_response_clear(&resp);
}

Test(api, watch_answers_at_once_when_its_index_is_behind)
{
    call("PUT", WEB1, MINIMAL, 0);
    call("PUT", "/v1/services/web/instances/web-2", MINIMAL, 0);
    struct api_response resp = raw("GET", "/v1/services/web?index=1&wait=30s", NULL, 0, 0);
    cr_assert_eq(resp.status, 200);
    cr_assert(resp.has_index);
    cr_assert_eq(resp.index, 2);
    cr_assert_not_null(strstr(resp.body, "\"id\":\"web-2\""));
    api_response_clear(&resp);
}

Test(api, watch_parks_when_its_index_is_current)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct api_response resp = raw("GET", "/v1/services/Web?index=1&wait=30s", NULL, 0, 5000);
    cr_assert_eq(resp.status, 0);
    cr_assert_null(resp.body);
    cr_assert_eq(resp.body_len, 0);
    cr_assert_str_eq(resp.watch_service, "web");
    cr_assert_eq(resp.watch_deadline_ms, 35000);
    api_response_clear(&resp);

    resp = raw("GET", "/v1/services/web?index=1", NULL, 0, 5000);
    cr_assert_eq(resp.status, 0);
    cr_assert_eq(resp.watch_deadline_ms, 5000 + API_WATCH_DEFAULT_MS);
    cr_assert_eq(API_WATCH_DEFAULT_MS, 300000);
    api_response_clear(&resp);

    resp = raw("HEAD", "/v1/services/web?wait=10m&index=1", NULL, 0, 0);
    cr_assert_eq(resp.status, 0);
    cr_assert_eq(resp.watch_deadline_ms, 600000);
    api_response_clear(&resp);
}

Test(api, final_watch_answers_with_the_current_state)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct api_response resp =
        raw("GET", "/v1/services/web?index=1&wait=1s", NULL, API_FINAL, 1000);
    cr_assert_eq(resp.status, 200);
    cr_assert(resp.has_index);
    cr_assert_eq(resp.index, 1);
    cr_assert_not_null(strstr(resp.body, "\"id\":\"web-1\""));
    cr_assert_eq(resp.body[resp.body_len - 1], '\n');
    api_response_clear(&resp);
}

Test(api, watch_without_index_or_wait_answers_at_once)
{
    call("PUT", WEB1, MINIMAL, 0);
    const char *paths[] = {"/v1/services/web?wait=30s", "/v1/services/web?index=1&wait=0s",
                           "/v1/services/web?", "/v1/services/web?foo=bar&index"};
    for (size_t i = 0; i < 3; i++) {
        struct api_response resp = raw("GET", paths[i], NULL, 0, 0);
        cr_assert_eq(resp.status, 200, "%s", paths[i]);
        cr_assert_eq(resp.index, 1);
        api_response_clear(&resp);
    }
    expect_error(call("GET", paths[3], NULL, 0), 400, "index", "index: \"\"");
}

Test(api, watch_ignores_unknown_query_keys)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct api_response resp =
        raw("GET", "/v1/services/web?stale&x=1&index=1&dc=eu&&wait=2s", NULL, 0, 0);
    cr_assert_eq(resp.status, 0);
    cr_assert_eq(resp.watch_deadline_ms, 2000);
    api_response_clear(&resp);
}

Test(api, watch_index_moves_on_change_but_not_on_plain_heartbeat)
{
    call("PUT", WEB1, MINIMAL, 0);
    uint64_t index = registry_service_index(reg, "web");
    char path[96];
    snprintf(path, sizeof(path), "/v1/services/web?index=%llu", (unsigned long long)index);

    call("PUT", WEB1 "/heartbeat", NULL, 1000);
    cr_assert_eq(registry_service_index(reg, "web"), index);
    struct api_response resp = raw("GET", path, NULL, 0, 1000);
    cr_assert_eq(resp.status, 0, "a plain heartbeat must not wake a watch");
    api_response_clear(&resp);

    /* Another service's change does not move this one's index either. */
    call("PUT", "/v1/services/db/instances/db-1", MINIMAL, 1000);
    resp = raw("GET", path, NULL, 0, 1000);
    cr_assert_eq(resp.status, 0);
    api_response_clear(&resp);

    call("PUT", WEB1 "/heartbeat", "{\"status\":\"warning\"}", 2000);
    resp = raw("GET", path, NULL, 0, 2000);
    cr_assert_eq(resp.status, 200, "a health change must answer the watch");
    cr_assert_gt(resp.index, index);
    cr_assert_not_null(strstr(resp.body, "\"health\":\"warning\""));
    index = resp.index;
    api_response_clear(&resp);

    snprintf(path, sizeof(path), "/v1/services/web?index=%llu", (unsigned long long)index);
    call("PUT", WEB1 "/maintenance", "{\"enabled\":true}", 3000);
    resp = raw("GET", path, NULL, 0, 3000);
    cr_assert_eq(resp.status, 200, "maintenance must answer the watch");
    index = resp.index;
    api_response_clear(&resp);

    snprintf(path, sizeof(path), "/v1/services/web?index=%llu", (unsigned long long)index);
    call("DELETE", WEB1, NULL, 4000);
    resp = raw("GET", path, NULL, 0, 4000);
    cr_assert_eq(resp.status, 200, "removing the last instance must answer the watch");
    cr_assert_gt(resp.index, index);
    cr_assert_not_null(strstr(resp.body, "\"instances\":[]"));
    api_response_clear(&resp);
}

Test(api, watch_of_unknown_service_wakes_when_it_appears)
{
    struct api_response resp = raw("GET", "/v1/services/web?index=0", NULL, 0, 0);
    cr_assert_eq(resp.status, 0);
    cr_assert(resp.has_index);
    cr_assert_eq(resp.index, 0);
    api_response_clear(&resp);
    call("PUT", WEB1, MINIMAL, 0);
    resp = raw("GET", "/v1/services/web?index=0", NULL, 0, 0);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.index, 1);
    api_response_clear(&resp);
}

Test(api, watch_index_from_the_future_answers_at_once)
{
    /* An index past the registry's serial was handed out by an earlier run of dnsd. */
    call("PUT", WEB1, MINIMAL, 0);
    struct api_response resp = raw("GET", "/v1/services/web?index=500", NULL, 0, 0);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.index, 1);
    api_response_clear(&resp);
}

Test(api, watch_rejects_bad_query)
{
    const struct {
        const char *query, *field, *msg;
    } cases[] = {
        {"index=abc", "index", "index: \"abc\" is not an unsigned decimal integer"},
        {"index=-1", "index", "\"-1\" is not an unsigned"},
        {"index=+1", "index", "\"+1\""},
        {"index=1e3", "index", "\"1e3\""},
        {"index=", "index", "index: \"\""},
        {"index=18446744073709551616", "index", "is not an unsigned decimal integer"},
        {"index=1&index=2", "index", "index: given more than once"},
        {"index=1&wait=5", "wait", "wait: \"5\" is not a duration from 0s to 10m"},
        {"index=1&wait=11m", "wait", "wait: \"11m\" is not a duration from 0s to 10m"},
        {"wait=600001ms", "wait", "from 0s to 10m"},
        {"wait=", "wait", "wait: \"\""},
        {"wait=1s&wait=2s", "wait", "wait: given more than once"},
        {"wait=%33%30s", "wait", "\"%33%30s\""},
    };
    call("PUT", WEB1, MINIMAL, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/services/web?%s", cases[i].query);
        expect_error(call("GET", path, NULL, 0), 400, cases[i].field, cases[i].msg);
    }
    struct api_response resp =
        raw("GET", "/v1/services/web?index=18446744073709551615", NULL, 0, 0);
    cr_assert_eq(resp.status, 200, "the largest index parses (and is from the future)");
    api_response_clear(&resp);
}

Test(api, health_reports_self_preservation)
{
    api_set_ready(api, true);
    struct reply r = call("GET", "/v1/health", NULL, 0);
    cr_assert(json_is_false(json_object_get(r.json, "preserving")));
    cr_assert_eq(json_object_size(r.json), 4);

    /* Every lease lapsing at once looks like a partition: the registry preserves. */
    struct registry_options opts = {
        .preservation_enabled = true,
        .preservation_threshold = 0.5,
        .preservation_min_instances = 2,
        .preservation_max_ms = 300000,
    };
    struct registry *preg = registry_new(&opts, NULL, NULL);
    cr_assert_not_null(preg);
    struct api *papi = api_new(preg, &test_cfg);
    cr_assert_not_null(papi);
    api_set_ready(papi, true);
    const char *ids[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++) {
        char path[64];
        struct api_response resp = {0};
        snprintf(path, sizeof(path), "/v1/services/web/instances/%s", ids[i]);
        cr_assert_eq(api_handle(papi, "PUT", path, MINIMAL, strlen(MINIMAL), 0, 0, &resp), 0);
        cr_assert_eq(resp.status, 201);
        api_response_clear(&resp);
    }
    registry_advance(preg, 31000);
    cr_assert(registry_is_preserving(preg));
    struct api_response resp = {0};
    cr_assert_eq(api_handle(papi, "GET", "/v1/health", NULL, 0, 0, 31000, &resp), 0);
    cr_assert_not_null(strstr(resp.body, "\"preserving\":true"), "%s", resp.body);
    api_response_clear(&resp);
    api_free(papi);
    registry_free(preg);
}

Test(api, lapsed_lease_is_shown_critical)
{
    call("PUT", WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":5}", 0);
    registry_advance(reg, 5000);
    json_t *o = listed("web", 0, 7000);
    cr_assert_str_eq(get_str(o, "health"), "critical");
    cr_assert_str_eq(get_str(o, "reason"), "lease expired");
    cr_assert_eq(get_int(o, "critical_for_ms"), 2000);
    cr_assert_eq(get_int(o, "lease_remaining_ms"), 0);
    /* A heartbeat brings it back. */
    struct reply r = call("PUT", WEB1 "/heartbeat", NULL, 8000);
    cr_assert_str_eq(get_str(r.json, "health"), "passing");
    expect_stored(r.json, 8000);
}