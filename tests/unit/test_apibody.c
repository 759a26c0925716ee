/* SPDX-License-Identifier: BSD-2-Clause
 * Tests for apibody: loading a body (blank, not NUL-terminated, invalid, not an object,
 * duplicate keys), unknown members, free text members, PUT decoding (required port, lease
 * clamping and default) and the address allow-list, each rejection naming its field.
 * The whole API is tested through api_handle in test_api.c. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "apibody.h"
#include "dnsd/error.h"
#include "netlist.h"

static const struct api_config config = {
    .lease_default_s = 30, .lease_min_s = 5, .lease_max_s = 3600};

/* body as an exact-size heap buffer with no terminating NUL, as the HTTP layer hands it. */
static char *unterminated(const char *text)
{
    size_t n = strlen(text);
    char *buf = malloc(n ? n : 1);
    cr_assert_not_null(buf);
    memcpy(buf, text, n);
    return buf;
}

static int load(const char *text, bool empty_ok, json_t **root, struct apibody_error *bad)
{
    char *buf = unterminated(text);
    int rc = apibody_load(buf, strlen(text), empty_ok, root, bad);
    free(buf);
    return rc;
}

Test(apibody, blank_body_is_empty_only_when_allowed)
{
    struct apibody_error bad = {0};
    json_t *root = (json_t *)1;
    cr_assert_eq(load(" \r\n\t", true, &root, &bad), 0);
    cr_assert_null(root);
    cr_assert_eq(apibody_load(NULL, 0, true, &root, &bad), 0);
    cr_assert_null(root);
    cr_assert_eq(load(" ", false, &root, &bad), APIBODY_REJECTED);
    cr_assert_str_eq(bad.field, "body");
}

Test(apibody, unterminated_object_loads)
{
    struct apibody_error bad = {0};
    json_t *root = NULL;
    cr_assert_eq(load(" {\"port\": 80}", true, &root, &bad), 0);
    cr_assert(json_is_object(root));
    cr_assert_eq(json_integer_value(json_object_get(root, "port")), 80);
    json_decref(root);
}

Test(apibody, bad_json_names_the_body)
{
    struct apibody_error bad = {0};
    json_t *root = NULL;
    cr_assert_eq(load("{\"port\": ", false, &root, &bad), APIBODY_REJECTED);
    cr_assert_str_eq(bad.field, "body");
    cr_assert(strstr(bad.msg, "invalid JSON") != NULL, "%s", bad.msg);
    cr_assert_eq(load("[1, 2]", false, &root, &bad), APIBODY_REJECTED);
    cr_assert_str_eq(bad.msg, "body must be a JSON object");
    cr_assert_eq(load("{\"port\": 1, \"port\": 2}", false, &root, &bad), APIBODY_REJECTED,
                 "duplicate keys are rejected");
}

Test(apibody, unknown_member_is_named)
{
    static const char *const fields[] = {"status", "note"};
    struct apibody_error bad = {0};
    json_t *root = json_pack("{s:s, s:i}", "status", "passing", "colour", 3);
    cr_assert_not_null(root);
    cr_assert_not(apibody_only_known(root, fields, 2, "", NULL, &bad));
    cr_assert_str_eq(bad.field, "colour");
    cr_assert(strstr(bad.msg, "colour") != NULL, "%s", bad.msg);
    cr_assert_not(apibody_only_known(root, fields, 2, "check.", "check", &bad));
    cr_assert_str_eq(bad.field, "check", "a nested object's members are blamed on it");
    json_decref(root);
}

Test(apibody, text_members_are_short_printable_strings)
{
    struct apibody_error bad = {0};
    const char *out = (const char *)1;
    json_t *root =
        json_pack("{s:s, s:i, s:s}", "note", "disk 91% full", "count", 3, "bell", "ding\adong");
    cr_assert_not_null(root);
    cr_assert(apibody_text(root, "note", &out, &bad));
    cr_assert_str_eq(out, "disk 91% full");
    cr_assert(apibody_text(root, "absent", &out, &bad));
    cr_assert_null(out);
    cr_assert_not(apibody_text(root, "count", &out, &bad));
    cr_assert_str_eq(bad.field, "count");
    cr_assert_not(apibody_text(root, "bell", &out, &bad));
    cr_assert(strstr(bad.msg, "control character") != NULL, "%s", bad.msg);
    char *long_note = calloc(REGISTRY_MAX_NOTE_LEN + 2, 1);
    cr_assert_not_null(long_note);
    memset(long_note, 'x', REGISTRY_MAX_NOTE_LEN + 1);
    json_object_set_new(root, "long", json_string(long_note));
    cr_assert_not(apibody_text(root, "long", &out, &bad));
    cr_assert_str_eq(bad.field, "long");
    free(long_note);
    json_decref(root);
}

/* Decode a PUT body text into inst. */
static int decode(const char *text, struct registry_instance *inst, struct apibody_error *bad)
{
    json_t *root = NULL;
    cr_assert_eq(load(text, false, &root, bad), 0, "%s", bad->msg);
    memset(inst, 0, sizeof(*inst));
    int rc = apibody_decode_put(&config, root, inst, bad);
    json_decref(root);
    return rc;
}

Test(apibody, put_needs_a_port)
{
    struct apibody_error bad = {0};
    struct registry_instance inst;
    cr_assert_eq(decode("{\"addresses\": [\"192.0.2.1\"]}", &inst, &bad), APIBODY_REJECTED);
    cr_assert_str_eq(bad.field, "port");
    registry_instance_clear(&inst);
    cr_assert_eq(decode("{\"addresses\": [\"192.0.2.1\"], \"port\": 70000}", &inst, &bad),
                 APIBODY_REJECTED);
    cr_assert_str_eq(bad.field, "port");
    registry_instance_clear(&inst);
}

Test(apibody, put_lease_is_clamped_and_defaulted)
{
    struct apibody_error bad = {0};
    struct registry_instance inst;
    cr_assert_eq(decode("{\"addresses\": [\"192.0.2.1\"], \"port\": 80}", &inst, &bad), 0);
    cr_assert_eq(inst.ttl_s, 30, "the default lease");
    cr_assert_eq(inst.port, 80);
    cr_assert_eq(inst.n_addrs, 1);
    cr_assert_eq(inst.addrs[0].family, AF_INET);
    registry_instance_clear(&inst);
    cr_assert_eq(
        decode("{\"addresses\": [\"2001:db8::1\"], \"port\": 80, \"ttl\": 1}", &inst, &bad), 0);
    cr_assert_eq(inst.ttl_s, 5, "raised to lease_min");
    registry_instance_clear(&inst);
    cr_assert_eq(
        decode("{\"addresses\": [\"192.0.2.1\"], \"port\": 80, \"ttl\": 999999}", &inst, &bad), 0);
    cr_assert_eq(inst.ttl_s, 3600, "lowered to lease_max");
    registry_instance_clear(&inst);
}

Test(apibody, addresses_outside_the_allow_list_are_named)
{
    struct netlist_net allowed;
    cr_assert_eq(netlist_parse("10.0.0.0/8", &allowed), 0);
    struct api_config cfg = config;
    cfg.allowed = &allowed;
    cfg.n_allowed = 1;
    struct apibody_error bad = {0};
    struct registry_instance inst;
    cr_assert_eq(
        decode("{\"addresses\": [\"10.1.2.3\", \"192.0.2.1\"], \"port\": 80}", &inst, &bad), 0);
    cr_assert_not(apibody_addresses_allowed(&cfg, &inst, &bad));
    cr_assert_str_eq(bad.field, "addresses");
    cr_assert(strstr(bad.msg, "192.0.2.1") != NULL, "%s", bad.msg);
    cr_assert(apibody_addresses_allowed(&config, &inst, &bad), "no list: any address");
    registry_instance_clear(&inst);
}

Test(apibody, quote_keeps_printable_text_and_cuts_long_text)
{
    char buf[APIBODY_QUOTE_MAX + 4];
    cr_assert_str_eq(apibody_quote("a\x01z\n", 4, buf), "a?z?");
    char longer[APIBODY_QUOTE_MAX + 10];
    memset(longer, 'q', sizeof(longer));
    const char *q = apibody_quote(longer, sizeof(longer), buf);
    cr_assert_eq(strlen(q), APIBODY_QUOTE_MAX + 3);
    cr_assert_str_eq(q + APIBODY_QUOTE_MAX, "...");
}
