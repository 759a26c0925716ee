/* SPDX-License-Identifier: BSD-2-Clause
 * Bearer tokens of the TCP API endpoints (RFC 6750): the Authorization header parser, the
 * constant-time lookup among the configured tokens, and the scope decisions behind 401 and
 * 403. A Unix socket's file permissions are its access control instead. Pure: no I/O.
 * Loop: any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Bytes compared by tokens_equal: a token and its zero padding. */
#define TOKENS_CMP_LEN 256

/* Are the zero-padded buffers a and b (TOKENS_CMP_LEN bytes each) equal? Every byte is
 * compared, so the time taken does not depend on where they differ. */
bool tokens_equal(const char *a, const char *b);

/* Find the credential of an "Authorization: Bearer TOKEN" header value (RFC 6750 §2.1: the
 * scheme in any case, blanks around the token).
 * Returns: true and *token, *len (pointing into authorization); false when the header is
 * NULL, of another scheme, or has no token. */
bool tokens_parse_bearer(const char *authorization, const char **token, size_t *len);

/* The configured token equal to presented (len bytes). Every one of the n tokens is compared
 * in full, with no early exit, so the time taken tells nothing of which token matched or how
 * much of one did; a presented token longer than the longest allowed is compared as well.
 * Returns: the matching token, or NULL when none matches.
 * Ownership: the result is borrowed from tokens. */
const struct config_token *tokens_find(const struct config_token *tokens, size_t n,
                                       const char *presented, size_t len);

/* May the holder of tok send method to path (the request target; a query string is
 * ignored)? Read scope: GET and HEAD. Write scope: also any method on
 * /v1/services/SERVICE[/...] where SERVICE matches tok->services (fnmatch(3), any case).
 * Admin scope: everything. Any method on /v1/snapshot needs admin.
 * Returns: true when allowed (the caller answers 403 otherwise). */
bool tokens_allow(const struct config_token *tok, const char *method, const char *path);
