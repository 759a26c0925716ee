/* SPDX-License-Identifier: BSD-2-Clause
 * Lists of IP networks ("ADDR/PREFIX" or a single "ADDR"), the one place that parses and
 * matches them: forwarding's allowed clients, response rate limiting's exempt clients and
 * the addresses a registration may claim all use it. Pure: no I/O, no allocation.
 * Loop: any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest text of a network: an IPv6 address, '/' and three digits. */
#define NETLIST_NET_TEXT_LEN 64

/* One network: the address with every bit past the prefix zero. */
struct netlist_net {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint8_t prefix; /* 0..32 for AF_INET, 0..128 for AF_INET6 */
};

/* Parse "ADDR/PREFIX" or "ADDR" (a host: /32 or /128), numeric IPv4 or IPv6 only. Host bits
 * set past the prefix are refused (a typo more often than not).
 * Returns: 0 and *out, DNSD_EINVAL. */
int netlist_parse(const char *text, struct netlist_net *out);

/* Write net as "ADDR/PREFIX" into out (at least NETLIST_NET_TEXT_LEN bytes). */
void netlist_format(const struct netlist_net *net, char *out, size_t out_len);

/* Is the address (family AF_INET with 4 bytes or AF_INET6 with 16 bytes at addr) inside one
 * of the n networks? An IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as IPv4. */
bool netlist_contains_addr(const struct netlist_net *nets, size_t n, int family,
                           const uint8_t *addr);

/* The address of a socket address into out (4 bytes for AF_INET, 16 for AF_INET6, the rest
 * zeroed), an IPv4-mapped IPv6 address as IPv4.
 * Returns: AF_INET, AF_INET6, or 0 for any other family. */
int netlist_address(const struct sockaddr *sa, uint8_t out[16]);

/* The same for a socket address (AF_INET or AF_INET6; any other family is outside). */
bool netlist_contains(const struct netlist_net *nets, size_t n, const struct sockaddr *sa);
