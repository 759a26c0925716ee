/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for tokens.c: the constant-time comparison, the
 * Authorization header parser, token lookup over every configured token, and the scope
 * decisions (read, write limited by a service glob, admin) behind 401 and 403. */
#include "tokens.h"

#include <string.h>

#include <criterion/criterion.h>

#include "config.h"

static struct config_token tokens[3];

static void set_token(struct config_token *t, const char *name, const char *token,
                      enum config_scope scope, const char *services)
{
    memset(t, 0, sizeof(*t));
    strcpy(t->name, name);
    strcpy(t->token, token);
    t->scope = scope;
    strcpy(t->services, services);
}

static void setup(void)
{
    set_token(&tokens[0], "deploy", "deploy-token-0123456789", CONFIG_SCOPE_WRITE, "web*");
    set_token(&tokens[1], "ops", "ops-token-0123456789abc", CONFIG_SCOPE_ADMIN, "*");
    set_token(&tokens[2], "monitor", "monitor-token-012345678", CONFIG_SCOPE_READ, "*");
}

TestSuite(tokens, .init = setup);

/* A token as tokens_find must see it: zero-padded to TOKENS_CMP_LEN. */
static void pad(char out[TOKENS_CMP_LEN], const char *text)
{
    memset(out, 0, TOKENS_CMP_LEN);
    memcpy(out, text, strlen(text));
}

Test(tokens, equal_compares_the_whole_padded_buffer)
{
    char a[TOKENS_CMP_LEN], b[TOKENS_CMP_LEN];
    pad(a, "secret-token-value");
    pad(b, "secret-token-value");
    cr_assert(tokens_equal(a, b));
    /* A difference in the first, a middle, and the last byte of the buffer. */
    b[0] = 'S';
    cr_assert_not(tokens_equal(a, b));
    pad(b, "secret-token-valuE");
    cr_assert_not(tokens_equal(a, b));
    pad(b, "secret-token-value");
    b[TOKENS_CMP_LEN - 1] = 'x';
    cr_assert_not(tokens_equal(a, b));
    /* A prefix is not equal: its padding differs. */
    pad(b, "secret-token-valu");
    cr_assert_not(tokens_equal(a, b));
}

Test(tokens, find_returns_the_matching_token)
{
    const char *t = "ops-token-0123456789abc";
    cr_assert_eq(tokens_find(tokens, 3, t, strlen(t)), &tokens[1]);
    t = "monitor-token-012345678";
    cr_assert_eq(tokens_find(tokens, 3, t, strlen(t)), &tokens[2]);
    t = "deploy-token-0123456789";
    cr_assert_eq(tokens_find(tokens, 3, t, strlen(t)), &tokens[0]);
}

Test(tokens, find_uses_only_len_bytes_of_presented)
{
    /* The header value may go on past the token (trailing blanks): only len bytes count. */
    const char *t = "ops-token-0123456789abc   ";
    cr_assert_eq(tokens_find(tokens, 3, t, 23), &tokens[1]);
    cr_assert_null(tokens_find(tokens, 3, t, 22));
}

Test(tokens, find_rejects_unknown_prefixed_and_extended_tokens)
{
    const char *bad[] = {"wrong", "ops-token-0123456789ab", "ops-token-0123456789abcd",
                         "OPS-TOKEN-0123456789ABC", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_null(tokens_find(tokens, 3, bad[i], strlen(bad[i])), "%s", bad[i]);
    cr_assert_null(tokens_find(tokens, 0, "ops-token-0123456789abc", 23));
}

Test(tokens, find_rejects_a_token_longer_than_the_buffer)
{
    /* 300 bytes whose first 255 equal a configured 255-byte token. */
    char longest[CONFIG_TOKEN_MAX_LEN + 1];
    char presented[300];
    memset(longest, 'k', CONFIG_TOKEN_MAX_LEN);
    longest[CONFIG_TOKEN_MAX_LEN] = '\0';
    set_token(&tokens[2], "long", longest, CONFIG_SCOPE_READ, "*");
    memset(presented, 'k', sizeof(presented));
    cr_assert_eq(tokens_find(tokens, 3, presented, CONFIG_TOKEN_MAX_LEN), &tokens[2]);
    cr_assert_null(tokens_find(tokens, 3, presented, CONFIG_TOKEN_MAX_LEN + 1));
    cr_assert_null(tokens_find(tokens, 3, presented, sizeof(presented)));
}

Test(tokens, bearer_header_is_parsed)
{
    const char *tok;
    size_t len;
    cr_assert(tokens_parse_bearer("Bearer abc.def", &tok, &len));
    cr_assert_eq(len, 7);
    cr_assert(strncmp(tok, "abc.def", len) == 0);
    /* RFC 6750 §2.1 / RFC 7235 §2.1: the scheme is case-insensitive. */
    cr_assert(tokens_parse_bearer("bearer   xyz  ", &tok, &len));
    cr_assert_eq(len, 3);
    cr_assert(strncmp(tok, "xyz", len) == 0);
}

Test(tokens, bearer_header_rejects_other_forms)
{
    const char *tok;
    size_t len;
    const char *bad[] = {"Basic dXNlcjpwYXNz", "Bearer", "Bearer ",  "Bearerabc",
                         "Bearer a b",         "",       "Token abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(tokens_parse_bearer(bad[i], &tok, &len), "%s", bad[i]);
    cr_assert_not(tokens_parse_bearer(NULL, &tok, &len));
}

Test(tokens, read_scope_may_only_read)
{
    const struct config_token *t = &tokens[2];
    cr_assert(tokens_allow(t, "GET", "/v1/services"));
    cr_assert(tokens_allow(t, "GET", "/v1/services/web?index=3&wait=1s"));
    cr_assert(tokens_allow(t, "HEAD", "/v1/health"));
    cr_assert(tokens_allow(t, "GET", "/metrics"));
    cr_assert_not(tokens_allow(t, "PUT", "/v1/services/web/instances/web-1"));
    cr_assert_not(tokens_allow(t, "DELETE", "/v1/services/web/instances/web-1"));
    cr_assert_not(tokens_allow(t, "PUT", "/v1/services/web/instances/web-1/heartbeat"));
}

Test(tokens, write_scope_is_limited_by_the_service_glob)
{
    const struct config_token *t = &tokens[0]; /* services = "web*" */
    cr_assert(tokens_allow(t, "PUT", "/v1/services/web/instances/web-1"));
    cr_assert(tokens_allow(t, "PUT", "/v1/services/webapi/instances/a/heartbeat"));
    cr_assert(tokens_allow(t, "DELETE", "/v1/services/web-2/instances/a"));
    cr_assert(tokens_allow(t, "PUT", "/v1/services/WEB/instances/a?x=1"));
    cr_assert_not(tokens_allow(t, "PUT", "/v1/services/db/instances/db-1"));
    cr_assert_not(tokens_allow(t, "DELETE", "/v1/services/myweb/instances/a"));
    cr_assert_not(tokens_allow(t, "PUT", "/v1/services/"));
    cr_assert_not(tokens_allow(t, "PUT", "/v1/elsewhere"));
    /* Reading is not limited by the glob. */
    cr_assert(tokens_allow(t, "GET", "/v1/services/db"));
}

Test(tokens, write_scope_default_glob_matches_every_service)
{
    set_token(&tokens[0], "all", "all-services-token-1234", CONFIG_SCOPE_WRITE, "*");
    cr_assert(tokens_allow(&tokens[0], "PUT", "/v1/services/db/instances/db-1"));
    cr_assert(tokens_allow(&tokens[0], "PUT", "/v1/services/web/instances/w/maintenance"));
}

Test(tokens, snapshot_needs_admin)
{
    cr_assert_not(tokens_allow(&tokens[0], "POST", "/v1/snapshot"));
    cr_assert_not(tokens_allow(&tokens[2], "POST", "/v1/snapshot"));
    cr_assert_not(tokens_allow(&tokens[2], "GET", "/v1/snapshot"));
    cr_assert_not(tokens_allow(&tokens[0], "PUT", "/v1/snapshot?now"));
    cr_assert(tokens_allow(&tokens[1], "POST", "/v1/snapshot"));
    cr_assert(tokens_allow(&tokens[1], "PUT", "/v1/snapshot"));
}

Test(tokens, admin_scope_may_do_everything)
{
    const struct config_token *t = &tokens[1];
    cr_assert(tokens_allow(t, "PUT", "/v1/services/db/instances/db-1"));
    cr_assert(tokens_allow(t, "DELETE", "/v1/services/anything/instances/x"));
    cr_assert(tokens_allow(t, "GET", "/v1/health"));
}
