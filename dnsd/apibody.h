/* SPDX-License-Identifier: BSD-2-Clause
 * The registration API's request bodies: strict JSON decoding (jansson) of a PUT body into
 * a registry instance, and the pieces heartbeat and maintenance bodies are made of. Every
 * rejection names the field at fault, with a message that quotes the client's input
 * safely; a rejected body leaves nothing behind. No registry access, no I/O.
 * Used by api.c only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api.h"
#include "registry.h"

/* Longest piece of client input quoted back in an error message. */
#define APIBODY_QUOTE_MAX 64

/* What the decoders return when they reject the body (the apibody_error is filled in). */
#define APIBODY_REJECTED 1

/* A rejected request: the field at fault (NULL for none) and a message. */
struct apibody_error {
    const char *field; /* static, or borrowed from the request for the reply's rendering */
    char msg[512];
};

/* Fill bad with field and a printf-style message. */
void apibody_reject(struct apibody_error *bad, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copy len bytes of client text s into buf for an error message: printable ASCII kept,
 * other bytes shown as '?', cut at APIBODY_QUOTE_MAX with "...".
 * Returns: buf. */
const char *apibody_quote(const char *s, size_t len, char buf[APIBODY_QUOTE_MAX + 4]);

/* Parse body (body_len bytes, not NUL-terminated; NULL is empty) as a JSON object into
 * *root; an empty or all-blank body gives *root = NULL when empty_ok. Duplicate keys are
 * rejected.
 * Returns: 0, APIBODY_REJECTED (field "body"), DNSD_ENOMEM.
 * Ownership: *root is the caller's (json_decref). */
int apibody_load(const char *body, size_t body_len, bool empty_ok, json_t **root,
                 struct apibody_error *bad);

/* Reject the first member of obj not named in fields (n of them); prefix names the object
 * in the message ("" for the body). The field at fault is field, or the member's own name
 * when field is NULL (bad->field then points into obj, which must outlive the reply).
 * Returns: true when every member is known. */
bool apibody_only_known(json_t *obj, const char *const *fields, size_t n, const char *prefix,
                        const char *field, struct apibody_error *bad);

/* A short free text member (heartbeat note, maintenance reason): a string of at most
 * REGISTRY_MAX_NOTE_LEN bytes without control characters; absent gives *out = NULL.
 * Returns: true, or false when rejected. *out is borrowed from root. */
bool apibody_text(json_t *root, const char *name, const char **out, struct apibody_error *bad);

/* Decode a PUT body object into inst (its service and id already set): addresses, port,
 * proto, ttl (clamped into cfg's lease range; cfg's default when absent), priority,
 * weight, tags, meta, check and deregister_after, nothing else.
 * Returns: 0, APIBODY_REJECTED, DNSD_ENOMEM.
 * Ownership: what is decoded into inst is allocated (also when rejected); the caller
 * frees it with registry_instance_clear. */
int apibody_decode_put(const struct api_config *cfg, json_t *root, struct registry_instance *inst,
                       struct apibody_error *bad);

/* Are all of inst's addresses inside cfg's allowed networks (issue 6: a compromised
 * service must not point others at an arbitrary host)? An empty list allows any.
 * Returns: true, or false with bad naming the address (field "addresses"). */
bool apibody_addresses_allowed(const struct api_config *cfg, const struct registry_instance *inst,
                               struct apibody_error *bad);
