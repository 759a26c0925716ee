/* SPDX-License-Identifier: BSD-2-Clause
 * The registration API's logic: one HTTP request (method, path, body) in, one JSON reply
 * out, applied to the registry. JSON is read and written with jansson. No sockets and no
 * HTTP library types: apiserver.c carries the bytes. A rejected request changes nothing.
 * Loop: the loop thread that owns the registry. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct registry;
struct config_token;
struct netlist_net;

struct api_config {
    uint32_t lease_default_s; /* ttl when the body has none */
    uint32_t lease_min_s;     /* granted ttl is clamped to [min, max] and echoed */
    uint32_t lease_max_s;
    uint64_t deregister_after_default_ms; /* deregister_after when the body has none; 0 = never */
    /* allowed_addresses: a PUT claiming an address outside every one of these networks gets
     * 403 (field "addresses"); n_allowed 0 = any address */
    const struct netlist_net *allowed; /* borrowed; must outlive the api */
    size_t n_allowed;
};

/* api_handle flag: a parked watch's deadline passed; answer with the current state. */
#define API_FINAL 1u

/* Longest watch wait accepted, and the wait when the query string has none. */
#define API_WATCH_MAX_MS (10ULL * 60 * 1000)
#define API_WATCH_DEFAULT_MS (5ULL * 60 * 1000)

struct api_response {
    int status;        /* HTTP status code; 0 = park this request (see watch_*) */
    char *body;        /* owned; NUL-terminated JSON text ending in "\n"; NULL when parked */
    size_t body_len;   /* strlen(body); 0 when parked */
    const char *allow; /* static; the Allow header for 405, else NULL */
    bool has_index;    /* send "X-Dnsd-Index: <index>" */
    uint64_t index;
    char watch_service[64];     /* status 0: the service whose change wakes the request */
    uint64_t watch_deadline_ms; /* status 0: when to call again with API_FINAL */
    bool durable_wait;          /* a journaled write: send the reply only once api_persistence's
                                   owner says the journal is synced (fsync "always") */
};

/* What a successful write did, for the journal. */
enum api_write {
    API_WRITE_PUT,
    API_WRITE_REMOVE,
    API_WRITE_HEARTBEAT,
    API_WRITE_MAINTENANCE,
};

/* The data directory's state for GET /v1/health. */
struct api_persist_status {
    const char *data_dir; /* borrowed for the call */
    const char *fsync;    /* borrowed for the call */
    uint64_t journal_bytes;
    int64_t last_snapshot_ms_ago; /* -1: none */
    const char *last_sync_error;  /* borrowed for the call; NULL when none */
};

/* Hooks to the persistence layer; any of them may be NULL. */
struct api_persistence {
    /* Why writes are refused now (503), or NULL when they may go ahead. */
    const char *(*refusal)(void *user);
    /* The registry applied this write. Returns 1 (the reply must wait: durable_wait), 0, or
     * a negative code (the write cannot be journaled: the reply becomes 503). */
    int (*written)(void *user, enum api_write what, const char *service, const char *id);
    /* Fill the health report's "persistence" object. */
    void (*status)(void *user, struct api_persist_status *out);
    /* POST /v1/snapshot. Returns: 0 and *generation, *instances, or a code with err set. */
    int (*snapshot)(void *user, uint64_t *generation, uint64_t *instances, char *err,
                    size_t err_len);
    void *user; /* borrowed; passed to every hook */
};

struct api;

/* Create the API over reg (borrowed; must outlive the api).
 * Returns: the api, or NULL when out of memory. */
struct api *api_new(struct registry *reg, const struct api_config *cfg);
void api_free(struct api *api);

/* Mark dnsd ready (all listeners up) or not; GET /v1/health answers 503 until ready. */
void api_set_ready(struct api *api, bool ready);

/* Route writes through the persistence hooks (copied; NULL: none, memory only). With
 * hooks, a write is refused with 503 {"error":"cannot persist: REASON"} while refusal says
 * so, GET /v1/health gains "persistence", and POST /v1/snapshot works (400 without a
 * snapshot hook). */
void api_set_persistence(struct api *api, const struct api_persistence *hooks);

/* Handle one request. path may carry a query string, which is ignored where unused.
 * Routes: PUT/DELETE /v1/services/{service}/instances/{id}, PUT
 * .../instances/{id}/heartbeat, PUT .../instances/{id}/maintenance, GET /v1/services, GET
 * /v1/services/{service}[?index=N&wait=D], GET /v1/health, POST (or PUT) /v1/snapshot;
 * HEAD is answered as GET. Errors
 * are {"error": "...", "field": "..."} with 400, 404, 405, 403 (a PUT claiming an address
 * outside api_config's allowed networks); a PUT of a new instance beyond
 * the registry's capacity (registry_options) gets 429 when its service is full and 503 when
 * the whole registry is, both without a field.
 * GET /v1/services/{service} (index = registry_service_index) and GET /v1/services (index =
 * registry_serial) set has_index. A watch (index=N given) whose service index is still N or
 * less, without API_FINAL in flags, is parked: out->status is 0, body NULL, and
 * watch_service and watch_deadline_ms (now_ms + wait) say when to call again with the same
 * request (on a change to that service, or with API_FINAL at the deadline).
 * Returns: 0 and *out filled, DNSD_ENOMEM (then *out is untouched).
 * Ownership: *out's body is the caller's, released with api_response_clear. */
int api_handle(struct api *api, const char *method, const char *path, const char *body,
               size_t body_len, unsigned flags, uint64_t now_ms, struct api_response *out);

/* Fill out with an error reply {"error": message[, "field": field]} (field may be NULL);
 * for errors decided outside api_handle, such as 413 from the HTTP layer.
 * Returns: 0, DNSD_ENOMEM. */
int api_error_response(int status, const char *message, const char *field,
                       struct api_response *out);

void api_response_clear(struct api_response *resp);
