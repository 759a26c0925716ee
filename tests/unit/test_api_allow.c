/* SPDX-License-Identifier: BSD-2-Clause
 * api: allowed_addresses (issue 6): a registration claiming an address outside every
 * allowed network gets 403 with field "addresses" and leaves the registry as it was. */
#include "api_fixture.h"

#include "netlist.h"

static struct netlist_net nets[3];

/* Replace the fixture's api by one allowing 10.0.0.0/8, 2001:db8:1::/48 and 192.0.2.7. */
static void allow_some(void)
{
    cr_assert_eq(netlist_parse("10.0.0.0/8", &nets[0]), 0);
    cr_assert_eq(netlist_parse("2001:db8:1::/48", &nets[1]), 0);
    cr_assert_eq(netlist_parse("192.0.2.7", &nets[2]), 0);
    struct api_config cfg = test_cfg;
    cfg.allowed = nets;
    cfg.n_allowed = 3;
    api_free(api);
    api = api_new(reg, &cfg);
    cr_assert_not_null(api);
}

#define WEB1 "/v1/services/web/instances/web-1"

Test(api, addresses_inside_allowed_networks_register)
{
    allow_some();
    struct reply r = call("PUT", WEB1,
                          "{\"addresses\":[\"10.1.2.3\",\"2001:db8:1::5\",\"192.0.2.7\"],"
                          "\"port\":80}",
                          1000);
    cr_assert_eq(r.status, 201);
    r = call("PUT", "/v1/services/web/instances/web-2",
             "{\"addresses\":[\"::ffff:10.0.0.9\"],\"port\":80}", 1000);
    cr_assert_eq(r.status, 201, "an IPv4-mapped address counts as IPv4");
    cr_assert_eq(registry_instance_count(reg), 2);
}

Test(api, address_outside_allowed_networks_is_403_naming_it)
{
    allow_some();
    struct reply r =
        call("PUT", WEB1, "{\"addresses\":[\"10.0.0.1\",\"203.0.113.9\"],\"port\":80}", 1000);
    expect_error(r, 403, "addresses", "address 203.0.113.9 is not in allowed_addresses");
    cr_assert_str_eq(get_str(r.json, "error"), "address 203.0.113.9 is not in allowed_addresses");
    cr_assert_eq(registry_instance_count(reg), 0, "nothing registered");
    expect_error(call("PUT", WEB1, "{\"addresses\":[\"2001:db8:2::1\"],\"port\":80}", 1000), 403,
                 "addresses", "address 2001:db8:2::1 is not in allowed_addresses");
    expect_error(call("PUT", WEB1, "{\"addresses\":[\"192.0.2.8\"],\"port\":80}", 1000), 403,
                 "addresses", "address 192.0.2.8 is not in allowed_addresses");
    cr_assert_eq(registry_instance_count(reg), 0);
}

Test(api, refused_replacement_keeps_the_old_instance)
{
    allow_some();
    cr_assert_eq(call("PUT", WEB1, "{\"addresses\":[\"10.0.0.1\"],\"port\":80}", 1000).status, 201);
    expect_error(call("PUT", WEB1, "{\"addresses\":[\"198.51.100.1\"],\"port\":81}", 2000), 403,
                 "addresses", "address 198.51.100.1 is not in allowed_addresses");
    json_t *inst = listed("web", 0, 2000);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(inst, "addresses"), 0)),
                     "10.0.0.1");
    cr_assert_eq(get_int(inst, "port"), 80);
    cr_assert_eq(get_int(inst, "registered_ms_ago"), 1000, "not re-registered");
}

Test(api, bad_body_is_400_before_the_allow_list)
{
    allow_some();
    expect_error(call("PUT", WEB1, "{\"addresses\":[\"203.0.113.9\"]}", 1000), 400, "port",
                 "port: required");
}

Test(api, without_allowed_networks_any_address_registers)
{
    struct reply r = call("PUT", WEB1, "{\"addresses\":[\"203.0.113.9\"],\"port\":80}", 1000);
    cr_assert_eq(r.status, 201);
}
