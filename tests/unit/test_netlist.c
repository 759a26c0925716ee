/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for netlist.c: parsing, formatting and matching of IP networks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dnsd/error.h"
#include "netlist.h"

/* A parsed network; the test fails if text does not parse. */
static struct netlist_net net(const char *text)
{
    struct netlist_net n;
    cr_assert_eq(netlist_parse(text, &n), 0, "%s", text);
    return n;
}

/* The 4 or 16 address bytes of text. */
static int addr_of(const char *text, uint8_t out[16])
{
    if (inet_pton(AF_INET, text, out) == 1)
        return AF_INET;
    cr_assert_eq(inet_pton(AF_INET6, text, out), 1, "%s", text);
    return AF_INET6;
}

static bool contains(const struct netlist_net *nets, size_t n, const char *text)
{
    uint8_t a[16];
    int family = addr_of(text, a);
    return netlist_contains_addr(nets, n, family, a);
}

Test(netlist, networks_parse_with_prefix_or_as_host)
{
    struct netlist_net n = net("10.1.0.0/16");
    cr_assert_eq(n.family, AF_INET);
    cr_assert_eq(n.prefix, 16);
    cr_assert_eq(n.addr[0], 10);
    cr_assert_eq(n.addr[1], 1);
    cr_assert_eq(net("192.0.2.9").prefix, 32);
    n = net("2001:db8::/32");
    cr_assert_eq(n.family, AF_INET6);
    cr_assert_eq(n.prefix, 32);
    cr_assert_eq(net("::1").prefix, 128);
    cr_assert_eq(net("0.0.0.0/0").prefix, 0);
    cr_assert_eq(net("::/0").prefix, 0);
}

Test(netlist, bad_networks_are_rejected)
{
    struct netlist_net n;
    const char *bad[] = {
        "10.0.0.1/8", "10.0.0.0/33", "::1/129",       "10.0.0.0/",    "10.0.0.0/x",   "host/8",
        "",           "10.0.0.0/-1", "10.0.0.0/0008", "10.0.0.0/8/8", "fe80::1%eth0", "1.2.3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(netlist_parse(bad[i], &n), DNSD_EINVAL, "%s", bad[i]);
    cr_assert_eq(netlist_parse(NULL, &n), DNSD_EINVAL);
}

Test(netlist, format_writes_address_and_prefix)
{
    char text[NETLIST_NET_TEXT_LEN];
    struct netlist_net n = net("192.0.2.0/24");
    netlist_format(&n, text, sizeof(text));
    cr_assert_str_eq(text, "192.0.2.0/24");
    n = net("2001:DB8::");
    netlist_format(&n, text, sizeof(text));
    cr_assert_str_eq(text, "2001:db8::/128");
}

Test(netlist, prefix_boundaries_are_exact)
{
    struct netlist_net nets[] = {net("192.0.2.128/25"), net("2001:db8:0:100::/56")};
    cr_assert(contains(nets, 2, "192.0.2.128"));
    cr_assert(contains(nets, 2, "192.0.2.255"));
    cr_assert_not(contains(nets, 2, "192.0.2.127"));
    cr_assert(contains(nets, 2, "2001:db8:0:1ff::1"));
    cr_assert_not(contains(nets, 2, "2001:db8:0:200::1"));
    cr_assert_not(contains(nets, 0, "192.0.2.200"), "an empty list holds nothing");
}

Test(netlist, zero_prefix_holds_its_whole_family_only)
{
    struct netlist_net v4[] = {net("0.0.0.0/0")};
    cr_assert(contains(v4, 1, "203.0.113.9"));
    cr_assert_not(contains(v4, 1, "2001:db8::1"));
    struct netlist_net v6[] = {net("::/0")};
    cr_assert(contains(v6, 1, "2001:db8::1"));
    cr_assert_not(contains(v6, 1, "203.0.113.9"));
}

Test(netlist, ipv4_mapped_ipv6_counts_as_ipv4)
{
    struct netlist_net nets[] = {net("127.0.0.0/8")};
    cr_assert(contains(nets, 1, "::ffff:127.0.0.1"));
    struct sockaddr_in6 sa6;
    memset(&sa6, 0, sizeof(sa6));
    sa6.sin6_family = AF_INET6;
    cr_assert_eq(inet_pton(AF_INET6, "::ffff:127.1.2.3", &sa6.sin6_addr), 1);
    cr_assert(netlist_contains(nets, 1, (const struct sockaddr *)&sa6));
}

Test(netlist, socket_addresses_match_by_family)
{
    struct netlist_net nets[] = {net("10.0.0.0/8"), net("::1")};
    struct sockaddr_in sa4;
    memset(&sa4, 0, sizeof(sa4));
    sa4.sin_family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, "10.20.30.40", &sa4.sin_addr), 1);
    cr_assert(netlist_contains(nets, 2, (const struct sockaddr *)&sa4));
    cr_assert_eq(inet_pton(AF_INET, "11.0.0.1", &sa4.sin_addr), 1);
    cr_assert_not(netlist_contains(nets, 2, (const struct sockaddr *)&sa4));
    struct sockaddr_un_like {
        sa_family_t family;
    } other = {AF_UNIX};
    cr_assert_not(netlist_contains(nets, 2, (const struct sockaddr *)(const void *)&other));
}

Test(netlist, address_of_a_socket_address_is_normalised)
{
    uint8_t out[16];
    struct sockaddr_in6 sa6;
    memset(&sa6, 0, sizeof(sa6));
    sa6.sin6_family = AF_INET6;
    cr_assert_eq(inet_pton(AF_INET6, "::ffff:192.0.2.9", &sa6.sin6_addr), 1);
    cr_assert_eq(netlist_address((const struct sockaddr *)&sa6, out), AF_INET);
    const uint8_t want4[16] = {192, 0, 2, 9};
    cr_assert_arr_eq(out, want4, 16, "IPv4-mapped: the IPv4 bytes, the rest zero");
    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", &sa6.sin6_addr), 1);
    cr_assert_eq(netlist_address((const struct sockaddr *)&sa6, out), AF_INET6);
    cr_assert_arr_eq(out, sa6.sin6_addr.s6_addr, 16);
    struct sockaddr other = {.sa_family = AF_UNIX};
    cr_assert_eq(netlist_address(&other, out), 0);
}
