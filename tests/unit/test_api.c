/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the registration API: api_handle driven in-process over a real registry at
 * fixed now_ms values; replies are parsed back with jansson and checked field by field. */
#include "api_fixture.h"

/* ---- registration ---- */

Test(api, put_new_instance_returns_201_with_the_instance)
{
    struct reply r = call("PUT", WEB1,
                          "{\"addresses\":[\"192.0.2.10\",\"2001:DB8:0::10\"],\"port\":8080,"
                          "\"proto\":\"udp\",\"ttl\":60,\"priority\":3,\"weight\":7,"
                          "\"tags\":[\"primary\",\"EU\"],\"meta\":{\"version\":\"1.4\","
                          "\"Owner\":\"caf\\u00e9\"}}",
                          1000);
    cr_assert_eq(r.status, 201);
    cr_assert_null(r.allow);
    json_t *o = r.json;
    cr_assert_str_eq(get_str(o, "service"), "web");
    cr_assert_str_eq(get_str(o, "id"), "web-1");
    json_t *addrs = json_object_get(o, "addresses");
    cr_assert_eq(json_array_size(addrs), 2);
    cr_assert_str_eq(json_string_value(json_array_get(addrs, 0)), "192.0.2.10");
    cr_assert_str_eq(json_string_value(json_array_get(addrs, 1)), "2001:db8::10");
    cr_assert_eq(get_int(o, "port"), 8080);
    cr_assert_str_eq(get_str(o, "proto"), "udp");
    cr_assert_eq(get_int(o, "priority"), 3);
    cr_assert_eq(get_int(o, "weight"), 7);
    json_t *tags = json_object_get(o, "tags");
    cr_assert_eq(json_array_size(tags), 2);
    cr_assert_str_eq(json_string_value(json_array_get(tags, 0)), "primary");
    cr_assert_str_eq(json_string_value(json_array_get(tags, 1)), "eu");
    json_t *meta = json_object_get(o, "meta");
    cr_assert_eq(json_object_size(meta), 2);
    cr_assert_str_eq(get_str(meta, "version"), "1.4");
    cr_assert_str_eq(get_str(meta, "Owner"), "caf\xc3\xa9");
    cr_assert_eq(get_int(o, "ttl"), 60);
    cr_assert_str_eq(get_str(o, "health"), "passing");
    cr_assert_eq(get_int(o, "lease_remaining_ms"), 60000);
    cr_assert_eq(get_int(o, "last_heartbeat_ms_ago"), 0);
    cr_assert_eq(get_int(o, "registered_ms_ago"), 0);
    cr_assert_eq(json_object_size(o), 20, "no extra members");

    const struct registry_instance *inst = registry_find_instance(reg, "web", "web-1");
    cr_assert_not_null(inst);
    cr_assert_eq(inst->proto, REGISTRY_PROTO_UDP);
    cr_assert_eq(inst->expires_ms, 61000);
}

Test(api, put_fills_in_defaults)
{
    struct reply r = call("PUT", WEB1, MINIMAL, 0);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(get_str(r.json, "proto"), "tcp");
    cr_assert_eq(get_int(r.json, "ttl"), 30);
    cr_assert_eq(get_int(r.json, "lease_remaining_ms"), 30000);
    cr_assert_eq(get_int(r.json, "priority"), 0);
    cr_assert_eq(get_int(r.json, "weight"), 1);
    cr_assert_eq(json_array_size(json_object_get(r.json, "tags")), 0);
    cr_assert(json_is_object(json_object_get(r.json, "meta")));
    cr_assert_eq(json_object_size(json_object_get(r.json, "meta")), 0);
}

Test(api, put_again_replaces_with_200_and_keeps_registered_time)
{
    cr_assert_eq(call("PUT", WEB1, MINIMAL, 1000).status, 201);
    struct reply r = call("PUT", WEB1, "{\"addresses\":[\"192.0.2.99\"],\"port\":9090}", 6000);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(get_int(r.json, "port"), 9090);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(r.json, "addresses"), 0)),
                     "192.0.2.99");
    cr_assert_eq(get_int(r.json, "registered_ms_ago"), 5000);
    cr_assert_eq(get_int(r.json, "last_heartbeat_ms_ago"), 0);
    cr_assert_eq(get_int(r.json, "lease_remaining_ms"), 30000);

    r = call("GET", "/v1/services/web", NULL, 9000);
    json_t *inst = json_array_get(json_object_get(r.json, "instances"), 0);
    cr_assert_eq(get_int(inst, "registered_ms_ago"), 8000);
    cr_assert_eq(get_int(inst, "last_heartbeat_ms_ago"), 3000);
    cr_assert_eq(get_int(inst, "lease_remaining_ms"), 27000);
    cr_assert_eq(registry_instance_count(reg), 1);
}

Test(api, ttl_is_clamped_up_to_the_minimum)
{
    struct reply r = call("PUT", WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":1}", 0);
    cr_assert_eq(r.status, 201);
    cr_assert_eq(get_int(r.json, "ttl"), 5);
    cr_assert_eq(get_int(r.json, "lease_remaining_ms"), 5000);
}

Test(api, ttl_is_clamped_down_to_the_maximum)
{
    struct reply r =
        call("PUT", WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":86400}", 0);
    cr_assert_eq(get_int(r.json, "ttl"), 3600);
    r = call("PUT", WEB1,
             "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":9000000000000000000}", 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(get_int(r.json, "ttl"), 3600);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->ttl_s, 3600);
}

Test(api, tags_are_lower_cased)
{
    struct reply r =
        call("PUT", WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"tags\":[\"Primary\"]}", 0);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(registry_find_instance(reg, "web", "web-1")->tags[0], "primary");
}

Test(api, meta_keeps_body_order)
{
    struct reply r = call("PUT", WEB1,
                          "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"meta\":{\"z\":\"1\","
                          "\"a\":\"2\",\"m\":\"\"}}",
                          0);
    cr_assert_eq(r.status, 201);
    const struct registry_instance *inst = registry_find_instance(reg, "web", "web-1");
    cr_assert_eq(inst->n_meta, 3);
    cr_assert_str_eq(inst->meta[0].key, "z");
    cr_assert_str_eq(inst->meta[1].key, "a");
    cr_assert_str_eq(inst->meta[2].key, "m");
    cr_assert_str_eq(inst->meta[2].value, "");
}

Test(api, path_labels_are_case_insensitive)
{
    struct reply r = call("PUT", "/v1/services/Web/instances/WEB-1", MINIMAL, 0);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(get_str(r.json, "service"), "web");
    cr_assert_str_eq(get_str(r.json, "id"), "web-1");
    cr_assert_not_null(registry_find_instance(reg, "web", "web-1"));
    r = call("GET", "/v1/services/WEB", NULL, 0);
    cr_assert_str_eq(get_str(r.json, "service"), "web");
    cr_assert_eq(json_array_size(json_object_get(r.json, "instances")), 1);
    cr_assert_eq(call("PUT", "/v1/services/wEb/instances/Web-1/heartbeat", NULL, 0).status, 200);
    cr_assert_eq(call("DELETE", "/v1/services/web/instances/Web-1", NULL, 0).status, 200);
    cr_assert_eq(registry_instance_count(reg), 0);
}

Test(api, query_string_is_ignored)
{
    cr_assert_eq(call("PUT", WEB1 "?verbose=1", MINIMAL, 0).status, 201);
    struct reply r = call("GET", "/v1/services?x=/y", NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(json_object_get(r.json, "services")), 1);
}

/* ---- validation ---- */

/* Fixed arrays, not pointers: criterion re-executes the test binary for each worker, so a
 * pointer into this process would not survive the trip. */
struct bad_put {
    char body[160];
    char field[16];
    char msg[80]; /* a substring of the expected message */
};

ParameterizedTestParameters(api, put_rejects_bad_body)
{
    static struct bad_put cases[] = {
        {"{\"port\":80}", "addresses", "addresses: required"},
        {"{\"addresses\":\"192.0.2.1\",\"port\":80}", "addresses", "array of 1 to 16"},
        {"{\"addresses\":[],\"port\":80}", "addresses", "array of 1 to 16"},
        {"{\"addresses\":[\"10.0.0.1\",\"10.0.0.300\"],\"port\":80}", "addresses",
         "addresses[1]: \"10.0.0.300\" is not an IPv4 or IPv6 address"},
        {"{\"addresses\":[\"fe80::1%eth0\"],\"port\":80}", "addresses", "addresses[0]"},
        {"{\"addresses\":[\"10.0.0.1\",7],\"port\":80}", "addresses",
         "addresses[1]: must be a string"},
        {"{\"addresses\":[\"10.0.0.1\",\"10.0.0.1\"],\"port\":80}", "addresses",
         "duplicates addresses[0]"},
        {"{\"addresses\":[\"2001:db8::1\",\"2001:DB8:0::1\"],\"port\":80}", "addresses",
         "addresses[1]: \"2001:DB8:0::1\" duplicates addresses[0]"},
        {"{\"addresses\":[\"10.0.0.1\"]}", "port", "port: required"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":0}", "port", "from 1 to 65535"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":65536}", "port", "from 1 to 65535"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":\"80\"}", "port", "must be an integer"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80.0}", "port", "must be an integer"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":true}", "port", "must be an integer"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"proto\":\"sctp\"}", "proto",
         "\"tcp\" or \"udp\""},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"proto\":\"TCP\"}", "proto", "proto"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"proto\":6}", "proto", "proto"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"ttl\":0}", "ttl", "ttl: must be"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"ttl\":-30}", "ttl", "ttl: must be"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"ttl\":\"30\"}", "ttl", "ttl: must be"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"ttl\":1.5}", "ttl", "ttl: must be"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"priority\":-1}", "priority",
         "from 0 to 65535"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"priority\":65536}", "priority",
         "from 0 to 65535"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"weight\":70000}", "weight",
         "from 0 to 65535"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"weight\":null}", "weight",
         "must be an integer"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"tags\":\"primary\"}", "tags",
         "array of at most 32"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"tags\":[\"a\",1]}", "tags",
         "tags[1]: must be a string"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"tags\":[\"_sub\"]}", "tags",
         "tags[0]: \"_sub\" is not a label"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"tags\":[\"\"]}", "tags", "tags[0]"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"tags\":[\"eu\",\"EU\"]}", "tags",
         "tags[1]: \"eu\" duplicates tags[0]"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":[]}", "meta", "meta: must be an"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"v\":1}}", "meta",
         "value of \"v\" must be a string"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"a=b\":\"x\"}}", "meta",
         "key \"a=b\""},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"\":\"x\"}}", "meta", "key \"\""},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"a b\":\"x\"}}", "meta",
         "key \"a b\""},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"caf\\u00e9\":\"x\"}}", "meta",
         "key \"caf??\""},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"Version\":\"1\","
         "\"version\":\"2\"}}",
         "meta", "\"version\" duplicates \"Version\""},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"note\":\"a\\nb\"}}", "meta",
         "control character"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"adresses\":[]}", "adresses",
         "unknown field \"adresses\""},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"health\":\"passing\"}", "health",
         "unknown field"},
        {"{", "body", "invalid JSON"},
        {"", "body", "invalid JSON"},
        {"{} trailing", "body", "invalid JSON"},
        {"[]", "body", "must be a JSON object"},
        {"\"text\"", "body", "invalid JSON"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"port\":81}", "body", "duplicate"},
        {"{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"a\":\"x\\u0000y\"}}", "body",
         "invalid JSON"},
        {"{\"addresses\":[\"\xff\"],\"port\":80}", "body", "invalid JSON"},
    };
    return cr_make_param_array(struct bad_put, cases, sizeof(cases) / sizeof(cases[0]), NULL);
}

ParameterizedTest(struct bad_put *c, api, put_rejects_bad_body)
{
    struct reply r = call("PUT", WEB1, c->body, 0);
    expect_error(r, 400, c->field, c->msg);
    cr_assert_eq(registry_instance_count(reg), 0);
    cr_assert_eq(registry_serial(reg), 0);
}

Test(api, put_without_body_is_invalid_json)
{
    struct api_response resp = {0};
    cr_assert_eq(api_handle(api, "PUT", WEB1, NULL, 0, 0, 0, &resp), 0);
    cr_assert_eq(resp.status, 400);
    cr_assert_not_null(strstr(resp.body, "\"field\":\"body\""));
    api_response_clear(&resp);
}

Test(api, put_rejects_too_many_addresses)
{
    char body[1024] = "{\"port\":80,\"addresses\":[";
    for (int i = 0; i <= REGISTRY_MAX_ADDRS; i++) {
        char a[32];
        snprintf(a, sizeof(a), "%s\"10.0.0.%d\"", i ? "," : "", i + 1);
        strcat(body, a);
    }
    strcat(body, "]}");
    expect_error(call("PUT", WEB1, body, 0), 400, "addresses", "array of 1 to 16");
    /* One fewer is fine. */
    char *last_comma = strrchr(body, ',');
    strcpy(last_comma, "]}");
    cr_assert_eq(call("PUT", WEB1, body, 0).status, 201);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->n_addrs, REGISTRY_MAX_ADDRS);
}

Test(api, put_rejects_too_many_tags)
{
    char body[2048] = "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"tags\":[";
    for (int i = 0; i <= REGISTRY_MAX_TAGS; i++) {
        char t[32];
        snprintf(t, sizeof(t), "%s\"t%d\"", i ? "," : "", i);
        strcat(body, t);
    }
    strcat(body, "]}");
    expect_error(call("PUT", WEB1, body, 0), 400, "tags", "at most 32");
    char *last_comma = strrchr(body, ',');
    strcpy(last_comma, "]}");
    cr_assert_eq(call("PUT", WEB1, body, 0).status, 201);
}

Test(api, put_rejects_too_many_meta_keys)
{
    char body[4096] = "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{";
    for (int i = 0; i <= REGISTRY_MAX_META; i++) {
        char m[32];
        snprintf(m, sizeof(m), "%s\"k%d\":\"v\"", i ? "," : "", i);
        strcat(body, m);
    }
    strcat(body, "}}");
    expect_error(call("PUT", WEB1, body, 0), 400, "meta", "at most 64");
    char *last_comma = strrchr(body, ',');
    strcpy(last_comma, "}}");
    cr_assert_eq(call("PUT", WEB1, body, 0).status, 201);
}

Test(api, put_limits_meta_string_to_255_bytes)
{
    /* "k=" plus 253 bytes is 255: accepted; one more byte is rejected. */
    char value[300];
    memset(value, 'v', 254);
    value[253] = '\0';
    char body[512];
    snprintf(body, sizeof(body),
             "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"k\":\"%s\"}}", value);
    cr_assert_eq(call("PUT", WEB1, body, 0).status, 201);
    value[253] = 'v';
    value[254] = '\0';
    snprintf(body, sizeof(body),
             "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"k\":\"%s\"}}", value);
    expect_error(call("PUT", WEB1, body, 0), 400, "meta", "longer than 255 bytes");
}

Test(api, put_rejects_long_meta_key)
{
    char key[80];
    memset(key, 'k', 64);
    key[64] = '\0';
    char body[256];
    snprintf(body, sizeof(body),
             "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"%s\":\"v\"}}", key);
    expect_error(call("PUT", WEB1, body, 0), 400, "meta", "1 to 63 printable ASCII");
    key[63] = '\0';
    snprintf(body, sizeof(body),
             "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"%s\":\"v\"}}", key);
    cr_assert_eq(call("PUT", WEB1, body, 0).status, 201);
}

Test(api, bad_path_labels_name_the_field)
{
    expect_error(call("PUT", "/v1/services/_web/instances/x", MINIMAL, 0), 400, "service",
                 "service: \"_web\" is not a label");
    expect_error(call("PUT", "/v1/services/web/instances/a_b", MINIMAL, 0), 400, "id",
                 "id: \"a_b\" is not a label");
    expect_error(call("PUT", "/v1/services//instances/x", MINIMAL, 0), 400, "service",
                 "service: \"\"");
    expect_error(call("PUT", "/v1/services/web/instances/", MINIMAL, 0), 400, "id", "id: \"\"");
    expect_error(call("DELETE", "/v1/services/web/instances/-x", NULL, 0), 400, "id", "-x");
    expect_error(call("PUT", "/v1/services/web/instances/x%41/heartbeat", NULL, 0), 400, "id",
                 "x%41");
    expect_error(call("GET", "/v1/services/web.internal", NULL, 0), 400, "service", "web.internal");
    expect_error(call("GET", "/v1/services/", NULL, 0), 400, "service", "service: \"\"");
    char path[128];
    snprintf(path, sizeof(path), "/v1/services/%064d", 0);
    expect_error(call("GET", path, NULL, 0), 400, "service", "is not a label");
    snprintf(path, sizeof(path), "/v1/services/%063d", 0);
    cr_assert_eq(call("GET", path, NULL, 0).status, 200);
    cr_assert_eq(registry_serial(reg), 0);
}

Test(api, rejected_put_leaves_the_registry_unchanged)
{
    cr_assert_eq(call("PUT", WEB1,
                      "{\"addresses\":[\"192.0.2.10\"],\"port\":8080,\"tags\":[\"a\"],"
                      "\"meta\":{\"k\":\"v\"}}",
                      1000)
                     .status,
                 201);
    uint64_t serial = registry_serial(reg);
    /* Everything valid except the last meta key: nothing of it may be applied. */
    struct reply r = call("PUT", WEB1,
                          "{\"addresses\":[\"192.0.2.99\"],\"port\":9999,\"ttl\":300,"
                          "\"tags\":[\"b\"],\"meta\":{\"x\":\"y\",\"bad=key\":\"z\"}}",
                          2000);
    expect_error(r, 400, "meta", "bad=key");
    cr_assert_eq(registry_serial(reg), serial);
    const struct registry_instance *inst = registry_find_instance(reg, "web", "web-1");
    cr_assert_not_null(inst);
    cr_assert_eq(inst->port, 8080);
    cr_assert_eq(inst->ttl_s, 30);
    cr_assert_eq(inst->n_addrs, 1);
    cr_assert_eq(inst->addrs[0].bytes[3], 10);
    cr_assert_eq(inst->n_tags, 1);
    cr_assert_str_eq(inst->tags[0], "a");
    cr_assert_eq(inst->n_meta, 1);
    cr_assert_str_eq(inst->meta[0].key, "k");
    cr_assert_eq(inst->heartbeat_ms, 1000);
    cr_assert_eq(inst->expires_ms, 31000);

    /* A rejected new instance is not created either. */
    expect_error(call("PUT", "/v1/services/web/instances/web-2", "{\"port\":1}", 2000), 400,
                 "addresses", "required");
    cr_assert_null(registry_find_instance(reg, "web", "web-2"));
    cr_assert_eq(registry_serial(reg), serial);
}

Test(api, registry_rejection_is_reported_as_400)
{
    /* A lease range that clamps every ttl to 0 is refused by the registry itself. */
    struct api_config cfg = {.lease_default_s = 30, .lease_min_s = 0, .lease_max_s = 0};
    struct api *zero = api_new(reg, &cfg);
    cr_assert_not_null(zero);
    struct api_response resp = {0};
    cr_assert_eq(api_handle(zero, "PUT", WEB1, MINIMAL, strlen(MINIMAL), 0, 0, &resp), 0);
    cr_assert_eq(resp.status, 400);
    cr_assert_not_null(strstr(resp.body, "\"field\":\"ttl\""), "%s", resp.body);
    api_response_clear(&resp);
    api_free(zero);
    cr_assert_eq(registry_instance_count(reg), 0);
}

/* Replace the fixture's registry and api with ones under the given limits. */
static void limit(const struct registry_options *opts)
{
    api_free(api);
    registry_free(reg);
    reg = registry_new(opts, NULL, NULL);
    cr_assert_not_null(reg);
    api = api_new(reg, &test_cfg);
    cr_assert_not_null(api);
}

Test(api, full_service_is_429_and_replacing_still_works)
{
    limit(&(struct registry_options){.max_instances_per_service = 2});
    cr_assert_eq(call("PUT", "/v1/services/web/instances/a", MINIMAL, 0).status, 201);
    cr_assert_eq(call("PUT", "/v1/services/web/instances/b", MINIMAL, 0).status, 201);
    uint64_t serial = registry_serial(reg);
    expect_error(call("PUT", "/v1/services/web/instances/c", MINIMAL, 0), 429, NULL,
                 "service web is full: at most 2 instances per service");
    cr_assert_null(registry_find_instance(reg, "web", "c"));
    cr_assert_eq(registry_serial(reg), serial);
    cr_assert_eq(call("PUT", "/v1/services/web/instances/b", MINIMAL, 10).status, 200);
    cr_assert_eq(call("PUT", "/v1/services/db/instances/a", MINIMAL, 10).status, 201);
}

Test(api, full_registry_is_503)
{
    limit(&(struct registry_options){.max_instances = 1});
    cr_assert_eq(call("PUT", "/v1/services/web/instances/a", MINIMAL, 0).status, 201);
    expect_error(call("PUT", "/v1/services/db/instances/a", MINIMAL, 0), 503, NULL,
                 "registry full: at most 1 instances");
    cr_assert_eq(registry_instance_count(reg), 1);
    cr_assert_eq(call("PUT", "/v1/services/web/instances/a", MINIMAL, 10).status, 200);
    cr_assert_eq(call("DELETE", "/v1/services/web/instances/a", NULL, 20).status, 200);
    cr_assert_eq(call("PUT", "/v1/services/db/instances/a", MINIMAL, 30).status, 201);
}

Test(api, meta_over_max_meta_bytes_is_400_meta)
{
    limit(&(struct registry_options){.max_meta_bytes = 10});
    const char *fits = "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"a\":\"1\","
                       "\"b\":\"12345\"}}"; /* "a=1" + "b=12345": 10 bytes */
    cr_assert_eq(call("PUT", WEB1, fits, 0).status, 201);
    const char *over = "{\"addresses\":[\"10.0.0.1\"],\"port\":80,\"meta\":{\"a\":\"12\","
                       "\"b\":\"12345\"}}";
    expect_error(call("PUT", WEB1, over, 10), 400, "meta",
                 "meta: its \"key=value\" strings exceed 10 bytes in all");
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->heartbeat_ms, 0, "unchanged");
}

/* ---- delete and heartbeat ---- */

Test(api, delete_deregisters)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct reply r = call("DELETE", WEB1, NULL, 100);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "service"), "web");
    cr_assert_str_eq(get_str(r.json, "id"), "web-1");
    cr_assert(json_is_true(json_object_get(r.json, "deregistered")));
    cr_assert_eq(json_object_size(r.json), 3);
    cr_assert_null(registry_find_instance(reg, "web", "web-1"));
}

Test(api, delete_unknown_is_404)
{
    expect_error(call("DELETE", WEB1, NULL, 0), 404, "id", "instance web/web-1 is not registered");
    call("PUT", WEB1, MINIMAL, 0);
    expect_error(call("DELETE", "/v1/services/web/instances/web-2", NULL, 0), 404, "id",
                 "instance web/web-2 is not registered");
    cr_assert_eq(registry_instance_count(reg), 1);
}

Test(api, heartbeat_renews_the_lease)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct reply r = call("GET", "/v1/services/web", NULL, 20000);
    cr_assert_eq(
        get_int(json_array_get(json_object_get(r.json, "instances"), 0), "lease_remaining_ms"),
        10000);
    r = call("PUT", WEB1 "/heartbeat", NULL, 20000);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "id"), "web-1");
    cr_assert_eq(get_int(r.json, "lease_remaining_ms"), 30000);
    cr_assert_eq(get_int(r.json, "last_heartbeat_ms_ago"), 0);
    cr_assert_eq(get_int(r.json, "registered_ms_ago"), 20000);
    cr_assert_eq(registry_find_instance(reg, "web", "web-1")->expires_ms, 50000);
    cr_assert_eq(registry_serial(reg), 2);
}

Test(api, heartbeat_unknown_is_404)
{
    expect_error(call("PUT", WEB1 "/heartbeat", NULL, 0), 404, "id",
                 "instance web/web-1 is not registered");
    cr_assert_eq(registry_serial(reg), 0);
}

Test(api, lease_remaining_never_goes_negative)
{
    call("PUT", WEB1, "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"ttl\":5}", 0);
    struct reply r = call("GET", "/v1/services/web", NULL, 60000);
    json_t *inst = json_array_get(json_object_get(r.json, "instances"), 0);
    cr_assert_eq(get_int(inst, "lease_remaining_ms"), 0);
    cr_assert_eq(get_int(inst, "last_heartbeat_ms_ago"), 60000);
}

Test(api, stored_non_utf8_meta_is_shown_safely)
{
    /* The registry accepts any bytes >= 0x20 in a value; the reply must stay valid JSON. */
    struct registry_meta meta = {.key = "k",
                                 .value = "a\xff"
                                          "b"};
    struct registry_instance inst = {
        .service = "web",
        .id = "web-1",
        .n_addrs = 1,
        .port = 80,
        .ttl_s = 30,
        .meta = &meta,
        .n_meta = 1,
    };
    struct registry_addr addr = {.family = AF_INET};
    inst.addrs = &addr;
    cr_assert_eq(registry_put(reg, &inst, 0, NULL), 0);
    struct reply r = call("GET", "/v1/services/web", NULL, 0);
    json_t *got = json_object_get(json_array_get(json_object_get(r.json, "instances"), 0), "meta");
    cr_assert_str_eq(get_str(got, "k"), "a?b");
}

Test(api, put_and_heartbeat_replies_match_the_stored_instance)
{
    struct reply r = call("PUT", WEB1,
                          "{\"addresses\":[\"192.0.2.10\"],\"port\":80,\"tags\":[\"b\",\"a\"],"
                          "\"meta\":{\"y\":\"1\",\"x\":\"2\"}}",
                          1000);
    json_t *put_reply = json_incref(r.json);
    r = call("GET", "/v1/services/web", NULL, 1000);
    cr_assert(json_equal(put_reply, json_array_get(json_object_get(r.json, "instances"), 0)));
    json_decref(put_reply);

    r = call("PUT", WEB1 "/heartbeat", NULL, 7000);
    json_t *hb_reply = json_incref(r.json);
    r = call("GET", "/v1/services/web", NULL, 7000);
    cr_assert(json_equal(hb_reply, json_array_get(json_object_get(r.json, "instances"), 0)));
    json_decref(hb_reply);
}

/* ---- out of memory ---- */

static long allocs_left = -1; /* jansson allocations that may still succeed; -1: no limit */

static void *limited_malloc(size_t size)
{
    if (allocs_left == 0)
        return NULL;
    if (allocs_left > 0)
        allocs_left--;
    return malloc(size);
}

/* Run one request with jansson's allocator failing from the k-th allocation on, for every
 * k until the request succeeds; each failure must be DNSD_ENOMEM, leave *out untouched
 * and leave the registry as it was. Returns the successful reply's status. */
static int status_despite_oom(const char *method, const char *path, const char *body, uint64_t now)
{
    int failures = 0;
    for (long k = 0;; k++) {
        uint64_t serial = registry_serial(reg);
        struct api_response resp = {.status = -7};
        allocs_left = k;
        json_set_alloc_funcs(limited_malloc, free);
        int rc = api_handle(api, method, path, body, body ? strlen(body) : 0, 0, now, &resp);
        json_set_alloc_funcs(malloc, free);
        allocs_left = -1;
        if (rc == 0) {
            int status = resp.status;
            json_t *got = json_loads(resp.body, 0, NULL);
            api_response_clear(&resp);
            cr_assert_not_null(got);
            cr_assert_gt(failures, 0, "jansson's allocator was never used");
            /* An instance reply shows the instance as stored, even when memory ran out
             * after the change (the reply is rendered before it). */
            if (json_object_get(got, "health") && status < 300)
                expect_stored(got, now);
            json_decref(got);
            return status;
        }
        cr_assert_eq(rc, DNSD_ENOMEM);
        cr_assert_eq(resp.status, -7, "*out must be untouched on failure");
        cr_assert_null(resp.body);
        cr_assert_eq(registry_serial(reg), serial, "a failed request changed the registry");
        cr_assert(registry_check(reg));
        failures++;
    }
}

Test(api, out_of_memory_changes_nothing)
{
    const char *full = "{\"addresses\":[\"192.0.2.10\",\"2001:db8::1\"],\"port\":80,"
                       "\"tags\":[\"a\",\"b\"],\"meta\":{\"k\":\"v\",\"l\":\"w\"}}";
    cr_assert_eq(status_despite_oom("PUT", WEB1, full, 0), 201);
    cr_assert_eq(status_despite_oom("PUT", WEB1, full, 10), 200);
    cr_assert_eq(status_despite_oom("PUT", WEB1, "{\"port\":0}", 10), 400);
    cr_assert_eq(status_despite_oom("PUT", WEB1 "/heartbeat", NULL, 20), 200);
    cr_assert_eq(status_despite_oom("PUT", WEB1 "/heartbeat",
                                    "{\"status\":\"warning\",\"note\":\"slow\"}", 20),
                 200);
    cr_assert_eq(status_despite_oom("PUT", WEB1 "/heartbeat", "{\"status\":\"bad\"}", 20), 400);
    cr_assert_eq(status_despite_oom("PUT", WEB1 "/maintenance",
                                    "{\"enabled\":true,\"reason\":\"deploy\"}", 20),
                 200);
    cr_assert_eq(status_despite_oom("PUT", WEB1 "/maintenance", "{\"enabled\":false}", 20), 200);
    cr_assert_eq(status_despite_oom("PUT", WEB1 "/maintenance", "{}", 20), 400);
    cr_assert_eq(status_despite_oom("PUT", WEB1,
                                    "{\"addresses\":[\"192.0.2.10\"],\"port\":80,"
                                    "\"deregister_after\":\"5m\",\"check\":{\"http\":"
                                    "\"http://192.0.2.10/health\",\"interval\":\"5s\"}}",
                                    20),
                 200);
    cr_assert_eq(status_despite_oom("GET", "/v1/services/web?index=0&wait=1s", NULL, 20), 200);
    cr_assert_eq(status_despite_oom("GET", "/v1/services/web?index=x", NULL, 20), 400);
    cr_assert_eq(status_despite_oom("GET", "/v1/services", NULL, 20), 200);
    cr_assert_eq(status_despite_oom("GET", "/v1/services/web", NULL, 20), 200);
    cr_assert_eq(status_despite_oom("GET", "/v1/nope", NULL, 20), 404);
    cr_assert_eq(status_despite_oom("POST", WEB1, NULL, 20), 405);
    cr_assert_eq(status_despite_oom("DELETE", WEB1, NULL, 30), 200);
    cr_assert_eq(registry_instance_count(reg), 0);
    struct api_response resp = {.status = -7};
    allocs_left = 0;
    json_set_alloc_funcs(limited_malloc, free);
    int rc = api_error_response(413, "too large", "body", &resp);
    json_set_alloc_funcs(malloc, free);
    allocs_left = -1;
    cr_assert_eq(rc, DNSD_ENOMEM);
    cr_assert_eq(resp.status, -7);
}

Test(api, parked_watch_needs_no_memory)
{
    call("PUT", WEB1, MINIMAL, 0);
    struct api_response resp = {.status = -7};
    allocs_left = 0;
    json_set_alloc_funcs(limited_malloc, free);
    int rc = api_handle(api, "GET", "/v1/services/web?index=1", NULL, 0, 0, 0, &resp);
    json_set_alloc_funcs(malloc, free);
    allocs_left = -1;
    cr_assert_eq(rc, 0);
    cr_assert_eq(resp.status, 0);
    cr_assert_str_eq(resp.watch_service, "web");
}

/* ---- listing ---- */

Test(api, service_lists_instances_in_id_order)
{
    const char *ids[] = {"web-3", "web-1", "web-2"};
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/services/web/instances/%s", ids[i]);
        cr_assert_eq(call("PUT", path, MINIMAL, 0).status, 201);
    }
    call("PUT", "/v1/services/db/instances/db-1", MINIMAL, 0);
    struct reply r = call("GET", "/v1/services/web", NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "service"), "web");
    json_t *list = json_object_get(r.json, "instances");
    cr_assert_eq(json_array_size(list), 3);
    cr_assert_str_eq(get_str(json_array_get(list, 0), "id"), "web-1");
    cr_assert_str_eq(get_str(json_array_get(list, 1), "id"), "web-2");
    cr_assert_str_eq(get_str(json_array_get(list, 2), "id"), "web-3");
    cr_assert_str_eq(get_str(json_array_get(list, 0), "service"), "web");
}

Test(api, unknown_service_has_an_empty_list)
{
    struct reply r = call("GET", "/v1/services/nothing", NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "service"), "nothing");
    json_t *list = json_object_get(r.json, "instances");
    cr_assert(json_is_array(list));
    cr_assert_eq(json_array_size(list), 0);
}

Test(api, services_are_listed_in_name_order_with_counts)
{
    struct reply r = call("GET", "/v1/services", NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(json_object_get(r.json, "services")), 0);

    call("PUT", "/v1/services/web/instances/a", MINIMAL, 0);
    call("PUT", "/v1/services/web/instances/b", MINIMAL, 0);
    call("PUT", "/v1/services/db/instances/a", MINIMAL, 0);
    call("PUT", "/v1/services/cache/instances/a", MINIMAL, 0);
    r = call("GET", "/v1/services", NULL, 0);
    json_t *list = json_object_get(r.json, "services");
    cr_assert_eq(json_array_size(list), 3);
    const char *names[] = {"cache", "db", "web"};
    const json_int_t counts[] = {1, 1, 2};
    for (size_t i = 0; i < 3; i++) {
        json_t *s = json_array_get(list, i);
        cr_assert_str_eq(get_str(s, "name"), names[i]);
        cr_assert_eq(get_int(s, "instances"), counts[i]);
        cr_assert_eq(json_object_size(s), 2);
    }
}

/* ---- health ---- */

Test(api, health_is_503_until_ready)
{
    struct reply r = call("GET", "/v1/health", NULL, 0);
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(get_str(r.json, "status"), "starting");
    cr_assert_eq(json_object_size(r.json), 1);

    call("PUT", WEB1, MINIMAL, 0);
    call("PUT", "/v1/services/web/instances/web-2", MINIMAL, 0);
    call("PUT", "/v1/services/db/instances/db-1", MINIMAL, 0);
    api_set_ready(api, true);
    r = call("GET", "/v1/health", NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(get_str(r.json, "status"), "ok");
    cr_assert_eq(get_int(r.json, "services"), 2);
    cr_assert_eq(get_int(r.json, "instances"), 3);

    api_set_ready(api, false);
    cr_assert_eq(call("GET", "/v1/health", NULL, 0).status, 503);
}

/* ---- routing errors ---- */

Test(api, unknown_paths_are_404)
{
    const char *paths[] = {
        "/v1/nope",
        "/",
        "",
        "v1/services",
        "/v2/services",
        "/v1",
        "/v1/",
        "/v1/health/",
        "/V1/services",
        "/v1/Services",
        "/v1/services/web/instances",
        "/v1/services/web/instance/web-1",
        "/v1/services/web/instances/web-1/beat",
        "/v1/services/web/instances/web-1/heartbeat/x",
        "/v1/services/web/instances/web-1/heartbeat/x/y/z",
        "/v1/services/web/instances/web-1/maintenance/on",
        "/v1/services/web/instances/web-1/Maintenance",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct reply r = call("GET", paths[i], NULL, 0);
        char want[128];
        snprintf(want, sizeof(want), "no such endpoint: %s", paths[i]);
        expect_error(r, 404, NULL, want);
        cr_assert_null(r.allow);
    }
    expect_error(call("GET", "/v1/nope?x=1", NULL, 0), 404, NULL, "no such endpoint: /v1/nope");
}

Test(api, unknown_path_with_binary_bytes_is_quoted_safely)
{
    struct reply r = call("GET", "/v1/\xff\x01", NULL, 0);
    expect_error(r, 404, NULL, "no such endpoint: /v1/??");
}

Test(api, wrong_method_is_405_with_allow)
{
    struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"POST", "/v1/services", "GET, HEAD"}, {"PUT", "/v1/services/web", "GET, HEAD"},
        {"DELETE", "/v1/health", "GET, HEAD"}, {"GET", WEB1, "PUT, DELETE"},
        {"POST", WEB1, "PUT, DELETE"},         {"get", WEB1, "PUT, DELETE"},
        {"GET", WEB1 "/heartbeat", "PUT"},     {"DELETE", WEB1 "/heartbeat", "PUT"},
        {"GET", WEB1 "/maintenance", "PUT"},   {"POST", WEB1 "/maintenance", "PUT"},
        {"", "/v1/services", "GET, HEAD"},     {"HEAD", WEB1, "PUT, DELETE"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reply r = call(cases[i].method, cases[i].path, NULL, 0);
        expect_error(r, 405, NULL, "not allowed");
        cr_assert_not_null(r.allow);
        cr_assert_str_eq(r.allow, cases[i].allow, "case %zu", i);
    }
    cr_assert_eq(registry_serial(reg), 0);
}

Test(api, head_is_answered_like_get)
{
    api_set_ready(api, true);
    struct reply r = call("PUT", WEB1, MINIMAL, 0);
    cr_assert_eq(r.status, 201);
    const char *paths[] = {"/v1/health", "/v1/services", "/v1/services/web"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct api_response head = {0}, get = {0};
        cr_assert_eq(api_handle(api, "HEAD", paths[i], NULL, 0, 0, 5, &head), 0);
        cr_assert_eq(api_handle(api, "GET", paths[i], NULL, 0, 0, 5, &get), 0);
        cr_assert_eq(head.status, 200, "HEAD %s: %d", paths[i], head.status);
        cr_assert_null(head.allow);
        cr_assert_str_eq(head.body, get.body, "HEAD %s", paths[i]);
        api_response_clear(&head);
        api_response_clear(&get);
    }
}

Test(api, null_method_and_path_are_handled)
{
    struct api_response resp = {0};
    cr_assert_eq(api_handle(api, NULL, NULL, NULL, 0, 0, 0, &resp), 0);
    cr_assert_eq(resp.status, 404);
    api_response_clear(&resp);
}

/* ---- error replies and lifecycle ---- */

Test(api, error_response_carries_field)
{
    struct api_response resp = {0};
    cr_assert_eq(api_error_response(413, "body too large", "body", &resp), 0);
    cr_assert_eq(resp.status, 413);
    cr_assert_null(resp.allow);
    cr_assert_str_eq(resp.body, "{\"error\":\"body too large\",\"field\":\"body\"}\n");
    cr_assert_eq(resp.body_len, strlen(resp.body));
    api_response_clear(&resp);
    cr_assert_null(resp.body);
    cr_assert_eq(resp.body_len, 0);
    cr_assert_eq(resp.status, 0);
}

Test(api, error_response_replaces_invalid_utf8)
{
    struct api_response resp = {0};
    cr_assert_eq(api_error_response(400, "bad \xff byte", NULL, &resp), 0);
    cr_assert_str_eq(resp.body, "{\"error\":\"bad ? byte\"}\n");
    api_response_clear(&resp);
}

Test(api, error_response_omits_null_field)
{
    struct api_response resp = {0};
    cr_assert_eq(api_error_response(500, "internal \"error\"", NULL, &resp), 0);
    cr_assert_str_eq(resp.body, "{\"error\":\"internal \\\"error\\\"\"}\n");
    api_response_clear(&resp);
}

Test(api, free_and_clear_accept_null)
{
    api_free(NULL);
    api_response_clear(NULL);
    cr_assert_not_null(api);
}

/* ---- persistence hooks ---- */

struct fake_persist {
    const char *refusal;
    int written_rc;
    int calls;
    enum api_write last_what;
    char last_key[160];
};

static const char *fake_refusal(void *user)
{
    return ((struct fake_persist *)user)->refusal;
}

static int fake_written(void *user, enum api_write what, const char *service, const char *id)
{
    struct fake_persist *f = user;
    f->calls++;
    f->last_what = what;
    snprintf(f->last_key, sizeof(f->last_key), "%s/%s", service, id);
    return f->written_rc;
}

static void fake_status(void *user, struct api_persist_status *out)
{
    (void)user;
    out->data_dir = "/var/lib/dnsd";
    out->fsync = "always";
    out->journal_bytes = 1234;
    out->last_snapshot_ms_ago = -1;
    out->last_sync_error = "journal fsync: I/O error";
}

static int fake_snapshot(void *user, uint64_t *generation, uint64_t *instances, char *err,
                         size_t err_len)
{
    (void)user;
    (void)err;
    (void)err_len;
    *generation = 9;
    *instances = 1;
    return 0;
}

static void use_fake(struct fake_persist *f)
{
    struct api_persistence hooks = {
        .refusal = fake_refusal,
        .written = fake_written,
        .status = fake_status,
        .snapshot = fake_snapshot,
        .user = f,
    };
    api_set_persistence(api, &hooks);
}

Test(api, journaled_write_waits_for_the_sync_and_names_the_change)
{
    struct fake_persist f = {.written_rc = 1};
    use_fake(&f);
    struct api_response r = raw("PUT", WEB1, MINIMAL, 0, 1000);
    cr_assert_eq(r.status, 201);
    cr_assert(r.durable_wait, "the reply waits for the journal");
    api_response_clear(&r);
    cr_assert_eq(f.calls, 1);
    cr_assert_eq(f.last_what, API_WRITE_PUT);
    cr_assert_str_eq(f.last_key, "web/web-1");
    r = raw("PUT", WEB1 "/heartbeat", "", 0, 2000);
    cr_assert_eq(f.last_what, API_WRITE_HEARTBEAT);
    api_response_clear(&r);
    r = raw("PUT", WEB1 "/maintenance", "{\"enabled\":true}", 0, 2000);
    cr_assert_eq(f.last_what, API_WRITE_MAINTENANCE);
    api_response_clear(&r);
    r = raw("GET", "/v1/services/web", NULL, 0, 2000);
    cr_assert_not(r.durable_wait, "reads never wait");
    api_response_clear(&r);
    r = raw("DELETE", WEB1, NULL, 0, 3000);
    cr_assert_eq(f.last_what, API_WRITE_REMOVE);
    cr_assert(r.durable_wait);
    api_response_clear(&r);
    cr_assert_eq(f.calls, 4, "one record per applied write");
}

Test(api, rejected_write_is_not_journaled)
{
    struct fake_persist f = {.written_rc = 1};
    use_fake(&f);
    expect_error(call("PUT", WEB1, "{\"port\":8080}", 1000), 400, "addresses", "addresses");
    expect_error(call("DELETE", WEB1, NULL, 1000), 404, "id", "not registered");
    cr_assert_eq(f.calls, 0);
}

Test(api, writes_are_refused_with_503_while_persistence_fails)
{
    struct fake_persist f = {.refusal = "journal fsync: No space left on device"};
    use_fake(&f);
    expect_error(call("PUT", WEB1, MINIMAL, 1000), 503, NULL,
                 "cannot persist: journal fsync: No space left on device");
    cr_assert_eq(registry_instance_count(reg), 0, "a refused write changes nothing");
    cr_assert_eq(f.calls, 0);
    cr_assert_eq(call("GET", "/v1/services", NULL, 1000).status, 200, "reads still work");
}

Test(api, write_that_cannot_be_journaled_is_answered_503)
{
    struct fake_persist f = {.written_rc = DNSD_EIO};
    use_fake(&f);
    expect_error(call("PUT", WEB1, MINIMAL, 1000), 503, NULL, "cannot persist");
}

Test(api, health_reports_persistence_and_snapshot_route)
{
    struct fake_persist f = {0};
    api_set_ready(api, true);
    struct reply r = call("GET", "/v1/health", NULL, 1000);
    cr_assert_null(json_object_get(r.json, "persistence"), "absent without a data dir");
    expect_error(call("POST", "/v1/snapshot", NULL, 1000), 400, NULL, "persistence is off");
    use_fake(&f);
    r = call("GET", "/v1/health", NULL, 1000);
    json_t *p = json_object_get(r.json, "persistence");
    cr_assert_str_eq(get_str(p, "data_dir"), "/var/lib/dnsd");
    cr_assert_str_eq(get_str(p, "fsync"), "always");
    cr_assert_eq(get_int(p, "journal_bytes"), 1234);
    cr_assert(json_is_null(json_object_get(p, "last_snapshot_ms_ago")));
    cr_assert_str_eq(get_str(p, "last_sync_error"), "journal fsync: I/O error");
    r = call("POST", "/v1/snapshot", NULL, 1000);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(get_int(r.json, "generation"), 9);
    cr_assert_eq(get_int(r.json, "instances"), 1);
    r = call("GET", "/v1/snapshot", NULL, 1000);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.allow, "POST, PUT");
}
