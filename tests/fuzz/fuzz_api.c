/* SPDX-License-Identifier: BSD-2-Clause
 * Fuzz target: the registration API (routing, path labels, the JSON decoder, registry
 * writes and the answers rebuilt from them) through api_handle. An input is a sequence of
 * requests, each "M PATH \0 BODY \0": byte M picks the method (low 3 bits) and how far the
 * clock moves before the request (high 5 bits, in seconds, so leases lapse); the body is an
 * exact-size buffer. Each input starts from a fresh registry holding one instance. Aborts
 * unless every reply has a status in 200..599 and a JSON body ending in "\n", and the
 * registry and answers stay consistent. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <urcu/urcu-memb.h>

#include "answers.h"
#include "api.h"
#include "dnsd/error.h"
#include "registry.h"

#define NOW 1000000
#define MAX_REQUESTS 16

static const char *const methods[8] = {"GET",  "PUT", "DELETE", "POST",
                                       "HEAD", "PUT", "GET",    "OPTIONS"};

static const struct api_config config = {
    .lease_default_s = 30,
    .lease_min_s = 5,
    .lease_max_s = 3600,
};

struct state {
    struct registry *reg;    /* owned */
    struct answers *ans;     /* owned */
    uint64_t service_serial; /* registry serial at the last change to a service */
};

static void on_change(void *user, enum registry_change change, const char *service, const char *id)
{
    struct state *st = user;
    (void)id;
    if (change == REGISTRY_CHANGE_PRESERVATION)
        return; /* registry-wide: names no service, changes no answer */
    st->service_serial = registry_serial(st->reg);
    fuzz_check(answers_update_service(st->ans, st->reg, service) == 0,
               "answers follow the registry");
}

/* Register web/web-1 so that GET, DELETE and heartbeat find something without a PUT. */
static void put_seed(struct registry *reg)
{
    struct registry_instance inst;
    memset(&inst, 0, sizeof(inst));
    inst.service = (char *)"web";
    inst.id = (char *)"web-1";
    struct registry_addr addr = {0};
    inst.addrs = &addr;
    inst.addrs[0].family = AF_INET;
    inet_pton(AF_INET, "192.0.2.10", inst.addrs[0].bytes);
    inst.n_addrs = 1;
    inst.port = 8080;
    inst.weight = 1;
    inst.ttl_s = 30;
    fuzz_check(registry_put(reg, &inst, NOW, NULL) == 0, "seed registration");
}

static bool has_answerable(const struct registry_service *svc, void *user)
{
    size_t *count = user;
    for (size_t i = 0; i < registry_service_instance_count(svc); i++) {
        enum registry_health h = registry_service_instance(svc, i)->health;
        if (h == REGISTRY_HEALTH_PASSING || h == REGISTRY_HEALTH_WARNING) {
            (*count)++;
            break;
        }
    }
    return true;
}

/* The answers publish exactly the services that have an answerable (passing or warning)
 * instance, as of the registry's latest change to a service. */
static bool answers_match(const struct state *st)
{
    size_t answerable = 0;
    registry_foreach_service(st->reg, has_answerable, &answerable);
    return answers_service_count(st->ans) == answerable &&
           answers_serial(st->ans) == st->service_serial;
}

static void check_reply(const struct api_response *r, unsigned flags, uint64_t now)
{
    if (r->status == 0) {
        /* A parked watch: never after its deadline, always for a named service. */
        fuzz_check(!(flags & API_FINAL), "a final call is never parked");
        fuzz_check(r->body == NULL && r->watch_service[0] != '\0',
                   "a parked reply names its service");
        fuzz_check(r->watch_deadline_ms > now, "a parked reply has a future deadline");
        return;
    }
    fuzz_check(r->status >= 200 && r->status <= 599, "status in 200..599");
    fuzz_check(r->body && strlen(r->body) == r->body_len, "body_len is strlen(body)");
    fuzz_check(r->body_len > 0 && r->body[r->body_len - 1] == '\n', "body ends in a newline");
    json_error_t jerr;
    json_t *json = json_loads(r->body, JSON_REJECT_DUPLICATES, &jerr);
    fuzz_check(json != NULL, "body is JSON");
    fuzz_check(json_is_object(json), "body is a JSON object");
    if (r->status >= 400 && r->status <= 499)
        fuzz_check(json_is_string(json_object_get(json, "error")), "an error reply has \"error\"");
    json_decref(json);
    fuzz_check((r->status == 405) == (r->allow != NULL), "Allow exactly with 405");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* answers' writer is a registered RCU thread (call_rcu), as dnsd's main thread is. */
    urcu_memb_register_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct state st = {0};
    struct api *api = NULL;
    /* Self-preservation on, with a low bar, so that fuzzed lapses can reach it. */
    static const struct registry_options opts = {
        .preservation_enabled = true,
        .preservation_threshold = 0.5,
        .preservation_min_instances = 2,
        .preservation_max_ms = 60000,
    };
    st.reg = registry_new(&opts, on_change, &st);
    st.ans = answers_new("service.internal.", false);
    if (!st.reg || !st.ans)
        goto out;
    api = api_new(st.reg, &config);
    if (!api)
        goto out;
    put_seed(st.reg);
    api_set_ready(api, size > 0 && (data[0] & 8));

    uint64_t now = NOW;
    size_t pos = 0;
    for (int n = 0; n < MAX_REQUESTS && pos < size; n++) {
        uint8_t m = data[pos++];
        now += (uint64_t)(m >> 3) * 1000;
        const char *start = (const char *)data + pos;
        const char *nul = memchr(start, 0, size - pos);
        size_t path_len = nul ? (size_t)(nul - start) : size - pos;
        char *path = strndup(start, path_len);
        pos += path_len + (nul != NULL);
        const char *bstart = (const char *)data + pos;
        const char *bnul = pos < size ? memchr(bstart, 0, size - pos) : NULL;
        size_t body_len = bnul ? (size_t)(bnul - bstart) : size - pos;
        char *body = malloc(body_len ? body_len : 1);
        if (!path || !body) {
            free(path);
            free(body);
            break;
        }
        memcpy(body, bstart, body_len);
        pos += body_len + (bnul != NULL);

        /* The server applies due lease events on the loop before the next request. */
        registry_advance(st.reg, now);
        struct api_response r;
        memset(&r, 0, sizeof(r));
        /* Bit 2 of the first byte says whether watch deadlines have passed. */
        unsigned flags = size > 0 && (data[0] & 4) ? API_FINAL : 0;
        int rc = api_handle(api, methods[m & 7], path, body, body_len, flags, now, &r);
        free(path);
        free(body);
        if (rc == 0) {
            check_reply(&r, flags, now);
            api_response_clear(&r);
        } else {
            fuzz_check(rc == DNSD_ENOMEM, "api_handle fails only for memory");
        }
        fuzz_check(registry_check(st.reg), "registry_check after a request");
        fuzz_check(answers_match(&st), "answers publish the registry's services");
    }
out:
    api_free(api);
    registry_free(st.reg);
    answers_free(st.ans);
    return 0;
}
