/* SPDX-License-Identifier: BSD-2-Clause
 * Tests for include/dnsd/duration.h: "10s"-style durations. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>

#include "dnsd/duration.h"
#include "dnsd/error.h"

/* Criterion may run parameters in a re-executed worker: keep them free of pointers. */
struct good_case {
    char text[32];
    uint64_t ms;
};

ParameterizedTestParameters(duration, parses_every_unit)
{
    static struct good_case cases[] = {
        {"0s", 0},
        {"500ms", 500},
        {"1s", 1000},
        {"10s", 10000},
        {"2m", 120000},
        {"1h", 3600000},
        {"90s", 90000},
        {"007s", 7000},
        {"604800s", 604800000},
        {"168h", 604800000},
        {"604800000ms", 604800000},
    };
    return cr_make_param_array(struct good_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct good_case *c, duration, parses_every_unit)
{
    uint64_t ms = 12345;
    cr_assert_eq(dnsd_duration_parse(c->text, &ms), 0, "%s", c->text);
    cr_assert_eq(ms, c->ms, "%s gave %llu", c->text, (unsigned long long)ms);
}

struct bad_case {
    char text[32];
    int err;
};

ParameterizedTestParameters(duration, rejects_malformed_and_too_long)
{
    static struct bad_case cases[] = {
        {"", DNSD_EINVAL},
        {"s", DNSD_EINVAL},
        {"10", DNSD_EINVAL},
        {"10 s", DNSD_EINVAL},
        {"-1s", DNSD_EINVAL},
        {"1.5s", DNSD_EINVAL},
        {"10S", DNSD_EINVAL},
        {"10sec", DNSD_EINVAL},
        {"10d", DNSD_EINVAL},
        {"5mss", DNSD_EINVAL},
        {"169h", DNSD_ERANGE},
        {"604800001ms", DNSD_ERANGE},
        {"99999999999999999999999s", DNSD_ERANGE},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, duration, rejects_malformed_and_too_long)
{
    uint64_t ms = 777;
    cr_assert_eq(dnsd_duration_parse(c->text, &ms), c->err, "%s", c->text);
    cr_assert_eq(ms, 777, "out-parameter written on failure for %s", c->text);
}

Test(duration, rejects_null)
{
    uint64_t ms = 1;
    cr_assert_eq(dnsd_duration_parse(NULL, &ms), DNSD_EINVAL);
}

Test(duration, formats_in_largest_exact_unit)
{
    char buf[32];
    dnsd_duration_format(0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "0s");
    dnsd_duration_format(1500, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1500ms");
    dnsd_duration_format(90000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "90s");
    dnsd_duration_format(120000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2m");
    dnsd_duration_format(7200000, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2h");
}

Test(duration, format_round_trips_through_parse)
{
    const uint64_t values[] = {
        1, 999, 1000, 59000, 60000, 61000, 3600000, 3601000, DNSD_DURATION_MAX_MS};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char buf[32];
        uint64_t back = 0;
        dnsd_duration_format(values[i], buf, sizeof(buf));
        cr_assert_eq(dnsd_duration_parse(buf, &back), 0, "%s", buf);
        cr_assert_eq(back, values[i], "%s", buf);
    }
}
