/* SPDX-License-Identifier: BSD-2-Clause
 * Parsing and matching of IP networks. */
#include "netlist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/error.h"

/* The first 12 bytes of an IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2). */
static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

int netlist_parse(const char *text, struct netlist_net *out)
{
    char host[INET6_ADDRSTRLEN];
    if (text == NULL)
        return DNSD_EINVAL;
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n >= sizeof(host))
        return DNSD_EINVAL;
    memcpy(host, text, n);
    host[n] = '\0';
    struct netlist_net net;
    memset(&net, 0, sizeof(net));
    unsigned max;
    if (inet_pton(AF_INET, host, net.addr) == 1) {
        net.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, net.addr) == 1) {
        net.family = AF_INET6;
        max = 128;
    } else {
        return DNSD_EINVAL;
    }
    unsigned prefix = max;
    if (slash) {
        char *end;
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || strlen(p) > 3)
            return DNSD_EINVAL;
        unsigned long v = strtoul(p, &end, 10);
        if (*end != '\0' || v > max)
            return DNSD_EINVAL;
        prefix = (unsigned)v;
    }
    for (unsigned bit = prefix; bit < max; bit++)
        if (net.addr[bit / 8] & (0x80U >> (bit % 8)))
            return DNSD_EINVAL;
    net.prefix = (uint8_t)prefix;
    *out = net;
    return 0;
}

void netlist_format(const struct netlist_net *net, char *out, size_t out_len)
{
    char host[INET6_ADDRSTRLEN];
    if (inet_ntop(net->family, net->addr, host, sizeof(host)) == NULL)
        snprintf(host, sizeof(host), "?");
    snprintf(out, out_len, "%s/%u", host, (unsigned)net->prefix);
}

/* Do the first prefix bits of a and b agree? */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned bytes = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFU << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool netlist_contains_addr(const struct netlist_net *nets, size_t n, int family,
                           const uint8_t *addr)
{
    if (family == AF_INET6 && memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
        family = AF_INET;
        addr += sizeof(v4mapped);
    }
    if (family != AF_INET && family != AF_INET6)
        return false;
    for (size_t i = 0; i < n; i++)
        if (nets[i].family == family && prefix_equal(nets[i].addr, addr, nets[i].prefix))
            return true;
    return false;
}

int netlist_address(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
        memcpy(out, a + sizeof(v4mapped), 4);
        return AF_INET;
    }
    memcpy(out, a, 16);
    return AF_INET6;
}

bool netlist_contains(const struct netlist_net *nets, size_t n, const struct sockaddr *sa)
{
    uint8_t addr[16];
    int family = netlist_address(sa, addr);
    return family != 0 && netlist_contains_addr(nets, n, family, addr);
}
