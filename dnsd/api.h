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

struct api_config {
    uint32_t lease_default_s; /* ttl when the body has none */
    uint32_t lease_min_s;     /* granted ttl is clamped to [min, max] and echoed */
    uint32_t lease_max_s;
};

struct api_response {
    int status;        /* HTTP status code */
    char *body;        /* owned; NUL-terminated JSON text ending in "\n" */
    size_t body_len;   /* strlen(body) */
    const char *allow; /* static; the Allow header for 405, else NULL */
};

struct api;

/* Create the API over reg (borrowed; must outlive the api).
 * Returns: the api, or NULL when out of memory. */
struct api *api_new(struct registry *reg, const struct api_config *cfg);
void api_free(struct api *api);

/* Mark dnsd ready (all listeners up) or not; GET /v1/health answers 503 until ready. */
void api_set_ready(struct api *api, bool ready);

/* Handle one request. path may carry a query string, which is ignored where unused.
 * Routes: PUT/DELETE /v1/services/{service}/instances/{id}, PUT
 * .../instances/{id}/heartbeat, GET /v1/services, GET /v1/services/{service}, GET
 * /v1/health; HEAD is answered as GET. Errors are {"error": "...", "field": "..."} with 400,
 * 404, 405.
 * Returns: 0 and *out filled, DNSD_ENOMEM (then *out is untouched).
 * Ownership: *out's body is the caller's, released with api_response_clear. */
int api_handle(struct api *api, const char *method, const char *path, const char *body,
               size_t body_len, uint64_t now_ms, struct api_response *out);

/* Fill out with an error reply {"error": message[, "field": field]} (field may be NULL);
 * for errors decided outside api_handle, such as 413 from the HTTP layer.
 * Returns: 0, DNSD_ENOMEM. */
int api_error_response(int status, const char *message, const char *field,
                       struct api_response *out);

void api_response_clear(struct api_response *resp);
