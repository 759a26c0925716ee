/* SPDX-License-Identifier: BSD-2-Clause
 * Bearer tokens: parsing, constant-time lookup and scopes. */
#include "tokens.h"

#include <fnmatch.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

_Static_assert(TOKENS_CMP_LEN == sizeof(((struct config_token *)0)->token),
               "tokens are compared over their whole zero-padded buffer");

bool tokens_equal(const char *a, const char *b)
{
    /* volatile: the compiler must not turn the loop into an early-exit memcmp. */
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < TOKENS_CMP_LEN; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

bool tokens_parse_bearer(const char *authorization, const char **token, size_t *len)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer", 6) != 0 ||
        (authorization[6] != ' ' && authorization[6] != '\t'))
        return false;
    const char *p = authorization + 6;
    p += strspn(p, " \t");
    size_t n = strcspn(p, " \t");
    if (n == 0 || p[n + strspn(p + n, " \t")] != '\0')
        return false;
    *token = p;
    *len = n;
    return true;
}

const struct config_token *tokens_find(const struct config_token *tokens, size_t n,
                                       const char *presented, size_t len)
{
    char padded[TOKENS_CMP_LEN] = {0};
    /* A token too long to be configured still costs a full comparison, then never matches;
     * the last byte of the padded buffer stays 0 in every configured token. */
    bool too_long = len >= TOKENS_CMP_LEN;
    memcpy(padded, presented, too_long ? TOKENS_CMP_LEN - 1 : len);
    const struct config_token *found = NULL;
    for (size_t i = 0; i < n; i++) {
        bool eq = tokens_equal(padded, tokens[i].token);
        /* Keep the first match without branching on the comparison's outcome. */
        uintptr_t keep = (uintptr_t)0 - (uintptr_t)(eq & (found == NULL) & !too_long);
        found = (const struct config_token *)(((uintptr_t)&tokens[i] & keep) |
                                              ((uintptr_t)found & ~keep));
    }
    return found;
}

bool tokens_allow(const struct config_token *tok, const char *method, const char *path)
{
    static const char services[] = "/v1/services/";
    size_t path_len = strcspn(path, "?");
    bool read_only = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool snapshot =
        path_len == strlen("/v1/snapshot") && strncmp(path, "/v1/snapshot", path_len) == 0;

    if (tok->scope == CONFIG_SCOPE_ADMIN)
        return true;
    if (snapshot)
        return false;
    if (read_only)
        return true;
    if (tok->scope != CONFIG_SCOPE_WRITE || path_len <= strlen(services) ||
        strncmp(path, services, strlen(services)) != 0)
        return false;
    char service[256];
    const char *start = path + strlen(services);
    size_t n = strcspn(start, "/?");
    if (n == 0 || n >= sizeof(service))
        return false;
    memcpy(service, start, n);
    service[n] = '\0';
    return fnmatch(tok->services, service, FNM_CASEFOLD) == 0;
}
