/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for the shared contracts in include/dnsd: label validation and lower-casing
 * (names.h) and error descriptions (error.h). */
#include "dnsd/names.h"

#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dnsd/error.h"

Test(names, accepts_hostname_labels)
{
    const char *good[] = {"a", "web", "web-1", "WEB", "0", "123", "a-b-c", "x--y", "Web-01"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert(dnsd_label_is_valid(good[i]), "\"%s\" should be valid", good[i]);
}

Test(names, rejects_non_ldh_characters)
{
    const char *bad[] = {"_web",        "web_1", "web.1", "we b", "web/1",
                         "caf\xc3\xa9", "a*",    "a\tb",  "@",    "a:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(dnsd_label_is_valid(bad[i]), "\"%s\" should be invalid", bad[i]);
}

Test(names, rejects_edge_hyphens)
{
    cr_assert_not(dnsd_label_is_valid("-web"));
    cr_assert_not(dnsd_label_is_valid("web-"));
    cr_assert_not(dnsd_label_is_valid("-"));
}

Test(names, rejects_empty_and_null)
{
    cr_assert_not(dnsd_label_is_valid(""));
    cr_assert_not(dnsd_label_is_valid(NULL));
}

Test(names, limits_length_to_63)
{
    char label[DNSD_LABEL_MAX + 2];
    memset(label, 'a', sizeof(label) - 1);
    label[DNSD_LABEL_MAX + 1] = '\0';
    cr_assert_not(dnsd_label_is_valid(label), "64 bytes is too long");
    label[DNSD_LABEL_MAX] = '\0';
    cr_assert(dnsd_label_is_valid(label), "63 bytes is allowed");
    cr_assert_eq(DNSD_LABEL_MAX, 63);
}

Test(names, lower_cases_ascii_only)
{
    char label[] = "Web-01-XYZ";
    dnsd_label_lower(label);
    cr_assert_str_eq(label, "web-01-xyz");

    char mixed[] = "A_\xc3\x89@[Z]";
    dnsd_label_lower(mixed);
    cr_assert_str_eq(mixed, "a_\xc3\x89@[z]", "non-letters and non-ASCII stay as they are");

    char empty[] = "";
    dnsd_label_lower(empty);
    cr_assert_str_eq(empty, "");
}

Test(names, defaults_are_consistent)
{
    cr_assert_str_eq(DNSD_DEFAULT_DOMAIN, "service.internal.");
    cr_assert_str_eq(DNSD_DEFAULT_API_SOCKET, "/run/dnsd/api.sock");
    cr_assert_str_eq(DNSD_API_ENV, "DNSD_API");
    cr_assert_gt(DNSD_DEFAULT_DNS_PORT, 0);
}

Test(error, names_every_dnsd_code)
{
    struct {
        int err;
        const char *text;
    } cases[] = {
        {DNSD_OK, "success"},
        {DNSD_ENOMEM, "out of memory"},
        {DNSD_EINVAL, "invalid argument"},
        {DNSD_ENOENT, "not found"},
        {DNSD_EEXIST, "already exists"},
        {DNSD_ERANGE, "value out of range"},
        {DNSD_EIO, "input/output error"},
        {DNSD_ENOSPC, "capacity exhausted"},
        {DNSD_EPARSE, "syntax error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_str_eq(dnsd_strerror(cases[i].err), cases[i].text);
}

Test(error, codes_equal_negative_errno)
{
    cr_assert_eq(DNSD_ENOMEM, -ENOMEM);
    cr_assert_eq(DNSD_EINVAL, -EINVAL);
    cr_assert_eq(DNSD_ENOENT, -ENOENT);
    cr_assert_eq(DNSD_EEXIST, -EEXIST);
    cr_assert_eq(DNSD_ERANGE, -ERANGE);
    cr_assert_eq(DNSD_EIO, -EIO);
    cr_assert_eq(DNSD_ENOSPC, -ENOSPC);
}

Test(error, other_negative_errno_uses_strerror)
{
    cr_assert_str_eq(dnsd_strerror(-EACCES), strerror(EACCES));
    cr_assert_str_eq(dnsd_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
}

Test(error, positive_code_is_unknown)
{
    cr_assert_str_eq(dnsd_strerror(5), "unknown error");
    cr_assert_not_null(dnsd_strerror(-99999));
}
