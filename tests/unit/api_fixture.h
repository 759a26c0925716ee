/* SPDX-License-Identifier: BSD-2-Clause
 * The fixture shared by the API unit tests (test_api.c, test_api_health.c): a real registry
 * behind api_handle, and helpers that call it and read the JSON replies. Included by one
 * test file per binary; the helpers are static inline so a file may leave some unused. */
#pragma once

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

static inline void setup(void)
{
    reg = registry_new(NULL, NULL, NULL);
    cr_assert_not_null(reg);
    api = api_new(reg, &test_cfg);
    cr_assert_not_null(api);
    last = NULL;
}

static inline void teardown(void)
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
static inline struct reply call(const char *method, const char *path, const char *body,
                                uint64_t now)
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

static inline const char *get_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_string(v), "\"%s\" is not a string", key);
    return json_string_value(v);
}

static inline json_int_t get_int(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_integer(v), "\"%s\" is not an integer", key);
    return json_integer_value(v);
}

/* Expect an error reply with status, field (NULL: no "field" member) and a message
 * containing want_msg. */
static inline void expect_error(struct reply r, int status, const char *field, const char *want_msg)
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
static inline json_t *listed(const char *service, size_t i, uint64_t now)
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
static inline void expect_stored(json_t *got, uint64_t now)
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
static inline struct api_response raw(const char *method, const char *path, const char *body,
                                      unsigned flags, uint64_t now)
{
    struct api_response resp = {0};
    int rc = api_handle(api, method, path, body, body ? strlen(body) : 0, flags, now, &resp);
    cr_assert_eq(rc, 0, "api_handle failed: %d", rc);
    return resp;
}

#define WEB1 "/v1/services/web/instances/web-1"
#define MINIMAL "{\"addresses\":[\"192.0.2.10\"],\"port\":8080}"
