/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the registration API: api_handle driven in-process over a real registry at
 * fixed now_ms values; replies are parsed back with jansson and checked field by field. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>

#include "dnsd/error.h"
#include "registry.h"

static struct registry *reg;
static struct api *api;
static json_t *last;    /* the most recent reply, freed by the next call and by fini */
static json_t *stepped; /* the most recent step() reply, freed by the next step and by fini */

static const struct api_config test_cfg = {
    .lease_default_s = 30,
    .lease_min_s = 5,
    .lease_max_s = 3600,
    .deregister_after_default_ms = 60000,
};

static void setup(void)
{
    reg = registry_new(NULL, NULL, NULL);
    cr_assert_not_null(reg);
    api = api_new(reg, &test_cfg);
    cr_assert_not_null(api);
    last = NULL;
}

static void teardown(void)
{
    json_decref(last);
    last = NULL;
    json_decref(stepped);
    stepped = NULL;
    cr_assert(registry_check(reg));
    api_free(api);
    registry_free(reg);
}

TestSuite(api, .init = setup, .fini = teardown);

struct reply {
    int status;
    const char *allow;
    json_t *json; /* borrowed from last */
};

/* Send one request; check the body is one JSON document ending in "\n" and parse it. */
static struct reply call(const char *method, const char *path, const char *body, uint64_t now)
{
    struct api_response resp = {0};
    int rc = api_handle(api, method, path, body, body ? strlen(body) : 0, 0, now, &resp);
    cr_assert_eq(rc, 0, "api_handle failed: %d", rc);
    cr_assert_not_null(resp.body);
    cr_assert_eq(resp.body_len, strlen(resp.body));
    cr_assert_gt(resp.body_len, 1);
    cr_assert_eq(resp.body[resp.body_len - 1], '\n', "reply must end in a newline");
    json_error_t err;
    json_decref(last);
    last = json_loads(resp.body, JSON_REJECT_DUPLICATES, &err);
    cr_assert_not_null(last, "reply is not JSON: %s", resp.body);
    struct reply r = {.status = resp.status, .allow = resp.allow, .json = last};
    api_response_clear(&resp);
    cr_assert_null(resp.body);
    return r;
}

static const char *get_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_string(v), "\"%s\" is not a string", key);
    return json_string_value(v);
}

static json_int_t get_int(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_integer(v), "\"%s\" is not an integer", key);
    return json_integer_value(v);
}

/* Expect an error reply with status, field (NULL: no "field" member) and a message
 * containing want_msg. */
static void expect_error(struct reply r, int status, const char *field, const char *want_msg)
{
    cr_assert_eq(r.status, status, "status %d, want %d", r.status, status);
    const char *msg = get_str(r.json, "error");
    cr_assert_not_null(strstr(msg, want_msg), "message \"%s\" lacks \"%s\"", msg, want_msg);
    if (field)
        cr_assert_str_eq(get_str(r.json, "field"), field);
    else
        cr_assert_null(json_object_get(r.json, "field"));
}

/* The i-th instance of service as GET /v1/services/{service} shows it at now. */
static json_t *listed(const char *service, size_t i, uint64_t now)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/services/%s", service);
    struct reply r = call("GET", path, NULL, now);
    cr_assert_eq(r.status, 200);
    json_t *inst = json_array_get(json_object_get(r.json, "instances"), i);
    cr_assert_not_null(inst, "%s has no instance %zu", service, i);
    return inst;
}

/* Check that got (an instance reply) equals the stored instance as listed at now. */
static void expect_stored(json_t *got, uint64_t now)
{
    json_incref(got); /* got may be the last reply, which the GET below replaces */
    const char *service = json_string_value(json_object_get(got, "service"));
    const char *id = json_string_value(json_object_get(got, "id"));
    cr_assert_not_null(service);
    cr_assert_not_null(id);
    char path[160];
    snprintf(path, sizeof(path), "/v1/services/%s", service);
    struct reply r = call("GET", path, NULL, now);
    json_t *list = json_object_get(r.json, "instances");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *inst = json_array_get(list, i);
        if (strcmp(json_string_value(json_object_get(inst, "id")), id) != 0)
            continue;
        char *a = json_dumps(got, JSON_SORT_KEYS), *b = json_dumps(inst, JSON_SORT_KEYS);
        cr_assert(json_equal(got, inst), "reply %s\nstored %s", a, b);
        free(a);
        free(b);
        json_decref(got);
        return;
    }
    cr_assert_fail("%s/%s is not listed", service, id);
}

/* Send one request and return the raw response (the caller clears it). */
static struct api_response raw(const char *method, const char *path, const char *body,
                               unsigned flags, uint64_t now)
{
    struct api_response resp = {0};
    int rc = api_handle(api, method, path, body, body ? strlen(body) : 0, flags, now, &resp);
    cr_assert_eq(rc, 0, "api_handle failed: %d", rc);
    return resp;
}

#define WEB1 "/v1/services/web/instances/web-1"
#define MINIMAL "{\"addresses\":[\"192.0.2.10\"],\"port\":8080}"

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
    inst.addrs[0].family = AF_INET;
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
        .preservation_window_ms = 30000,
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
