/* SPDX-License-Identifier: BSD-2-Clause
 * Fuzz target: DNS query bytes through the whole query path (wire parse, zone and registry
 * lookup, render) with query_answer. The zone store (tests/data/zones) and a registry with
 * a few services, tags, IPv6 addresses and metadata are built once. Input byte 0 picks the
 * transport (bit 0) and how far the clock has moved (bits 1..7, so leases lapse); the rest
 * is the request. Aborts when the response breaks the query contract. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ldns/ldns.h>
#include <urcu/urcu-memb.h>

#include "answers.h"
#include "query.h"
#include "registry.h"
#include "zonestore.h"

#define NOW 1000000
#define UDP_MAX 1232

static struct zonestore *zs;
static struct registry *reg;
static struct answers *ans;
static struct query_ctx *ctx;

static const struct query_config config = {
    .domain = "service.internal.", .dns_ttl = 30, .udp_max_size = UDP_MAX};

static const char *const apex_addrs[] = {"192.0.2.1", "2001:db8::1"};
static const struct zonestore_apex apex = {.domain = "service.internal.",
                                           .ns_name = "ns.service.internal.",
                                           .ns_addresses = apex_addrs,
                                           .n_ns_addresses = 2,
                                           .rname = "hostmaster.service.internal.",
                                           .serial = 100,
                                           .refresh = 3600,
                                           .retry = 600,
                                           .expire = 86400,
                                           .minimum = 30,
                                           .ttl = 300};

/* One registration: up to three addresses, two tags and two metadata entries. */
struct seed {
    const char *service, *id;
    const char *addrs[3];
    uint16_t port;
    enum registry_proto proto;
    const char *tags[2];
    const char *meta[2][2];
    uint32_t ttl_s;
};

static const struct seed seeds[] = {
    {"web",
     "web-1",
     {"192.0.2.10", "2001:db8::10"},
     8080,
     REGISTRY_PROTO_TCP,
     {"primary", "eu"},
     {{"version", "1.4"}, {"path", "/api"}},
     30},
    {"web",
     "web-2",
     {"192.0.2.11"},
     8080,
     REGISTRY_PROTO_TCP,
     {"canary"},
     {{"version", "1.5"}},
     300},
    {"web",
     "web-3",
     {"2001:db8::12", "2001:db8::13", "192.0.2.12"},
     8081,
     REGISTRY_PROTO_TCP,
     {0},
     {{0}},
     60},
    {"dns", "dns-a", {"192.0.2.53"}, 53, REGISTRY_PROTO_UDP, {"primary"}, {{"zone", ""}}, 120},
    {"db", "db-1", {"10.0.0.5"}, 5432, REGISTRY_PROTO_TCP, {0}, {{0}}, 3600},
    /* Shares a name with a static host in the service.internal. zone file. */
    {"static", "static-1", {"192.0.2.99"}, 80, REGISTRY_PROTO_TCP, {0}, {{0}}, 30},
};

static void on_change(void *user, enum registry_change change, const char *service, const char *id)
{
    (void)user;
    (void)id;
    if (change == REGISTRY_CHANGE_PRESERVATION)
        return; /* registry-wide, names no service */
    if (answers_update_service(ans, reg, service) != 0)
        abort();
}

static void put(const struct seed *s)
{
    struct registry_instance inst;
    struct registry_meta meta[2];
    char *tags[2];
    memset(&inst, 0, sizeof(inst));
    inst.service = (char *)s->service;
    inst.id = (char *)s->id;
    struct registry_addr addrs[3] = {0};
    inst.addrs = addrs;
    for (size_t i = 0; i < 3 && s->addrs[i]; i++) {
        struct registry_addr *a = &inst.addrs[inst.n_addrs++];
        a->family = strchr(s->addrs[i], ':') ? AF_INET6 : AF_INET;
        if (inet_pton(a->family, s->addrs[i], a->bytes) != 1)
            abort();
    }
    for (size_t i = 0; i < 2 && s->tags[i]; i++)
        tags[inst.n_tags++] = (char *)s->tags[i];
    for (size_t i = 0; i < 2 && s->meta[i][0]; i++)
        meta[inst.n_meta++] = (struct registry_meta){(char *)s->meta[i][0], (char *)s->meta[i][1]};
    inst.tags = inst.n_tags ? tags : NULL;
    inst.meta = inst.n_meta ? meta : NULL;
    inst.port = s->port;
    inst.proto = s->proto;
    inst.weight = 1;
    inst.ttl_s = s->ttl_s;
    const char *field = NULL;
    if (registry_put(reg, &inst, NOW, &field) != 0) {
        fprintf(stderr, "fuzz_query: cannot register %s/%s: %s\n", s->service, s->id,
                field ? field : "?");
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* answers' writer is a registered RCU thread (call_rcu), as dnsd's main thread is. */
    urcu_memb_register_thread();
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof(dir), "%s/zones", fuzz_data_dir());
    if (zonestore_load(dir, &apex, &zs, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_query: %s\n", err);
        abort();
    }
    ans = answers_new(config.domain, false);
    reg = registry_new(NULL, on_change, NULL);
    ctx = query_ctx_new(&config);
    if (!ans || !reg || !ctx)
        abort();
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        put(&seeds[i]);
    return 0;
}

/* The most a UDP response to req may hold: 512 without EDNS, else the client's EDNS size
 * clamped to [512, UDP_MAX] (RFC 6891 §6.2.5). Found with ldns, independently of wire.c;
 * a request ldns cannot read only gets the hard cap. */
static size_t udp_limit(const uint8_t *req, size_t len)
{
    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, req, len) != LDNS_STATUS_OK)
        return UDP_MAX;
    size_t size = ldns_pkt_edns_udp_size(pkt);
    ldns_pkt_free(pkt);
    return size < 512 ? 512 : size > UDP_MAX ? UDP_MAX : size;
}

/* Do a and b carry the same flags, RCODE and sections, ignoring the order of records? */
static bool same_answer(const ldns_pkt *a, const ldns_pkt *b)
{
    if (ldns_pkt_get_rcode(a) != ldns_pkt_get_rcode(b) || ldns_pkt_aa(a) != ldns_pkt_aa(b) ||
        ldns_pkt_tc(a) != ldns_pkt_tc(b) || ldns_pkt_qdcount(a) != ldns_pkt_qdcount(b) ||
        ldns_pkt_ancount(a) != ldns_pkt_ancount(b) || ldns_pkt_nscount(a) != ldns_pkt_nscount(b))
        return false;
    bool same = true;
    for (ldns_pkt_section s = LDNS_SECTION_ANSWER; s <= LDNS_SECTION_AUTHORITY && same; s++) {
        ldns_rr_list *x = ldns_pkt_get_section_clone(a, s);
        ldns_rr_list *y = ldns_pkt_get_section_clone(b, s);
        if (!x || !y)
            abort();
        ldns_rr_list_sort(x);
        ldns_rr_list_sort(y);
        same = ldns_rr_list_compare(x, y) == 0;
        ldns_rr_list_deep_free(x);
        ldns_rr_list_deep_free(y);
    }
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum query_transport transport = data[0] & 1 ? QUERY_TCP : QUERY_UDP;
    uint64_t now = NOW + (uint64_t)(data[0] >> 1) * 1000;
    /* An exact-size copy, so that reading past the request is caught by ASan. */
    size_t len = size - 1;
    uint8_t *req = malloc(len ? len : 1);
    if (!req)
        return 0;
    memcpy(req, data + 1, len);

    const uint8_t *resp = NULL;
    size_t resp_len = SIZE_MAX;
    fuzz_check(query_answer(ctx, zs, ans, req, len, transport, now, &resp, &resp_len) == 0,
               "query_answer returns 0");
    fuzz_check(resp_len != SIZE_MAX && (resp_len == 0 || resp), "response set");
    if (len < 12 || (req[2] & 0x80))
        fuzz_check(resp_len == 0, "no reply to a short request or to a response");
    if (transport == QUERY_UDP)
        fuzz_check(resp_len <= udp_limit(req, len), "UDP response within the client's size");
    else
        fuzz_check(resp_len <= 65535, "TCP response within 65535 bytes");

    if (resp_len > 0) {
        fuzz_check(resp_len >= 12, "response holds a header");
        ldns_pkt *pkt = NULL;
        fuzz_check(ldns_wire2pkt(&pkt, resp, resp_len) == LDNS_STATUS_OK, "response parses");
        fuzz_check(ldns_pkt_qr(pkt), "response has QR");
        if (len >= 2)
            fuzz_check(ldns_pkt_id(pkt) == (uint16_t)(req[0] << 8 | req[1]),
                       "response ID is the query's");

        /* The context is reused: the same request must get the same answer again, up to
         * the order of records (registry RRsets rotate from one query to the next). */
        fuzz_check(query_answer(ctx, zs, ans, req, len, transport, now, &resp, &resp_len) == 0,
                   "query_answer returns 0 on rerun");
        ldns_pkt *again = NULL;
        fuzz_check(resp_len > 0 && ldns_wire2pkt(&again, resp, resp_len) == LDNS_STATUS_OK,
                   "rerun response parses");
        fuzz_check(same_answer(pkt, again), "a rerun gives the same answer");
        ldns_pkt_free(again);
        ldns_pkt_free(pkt);
    }
    free(req);
    return 0;
}
