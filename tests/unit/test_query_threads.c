/* SPDX-License-Identifier: BSD-2-Clause
 * Tests for query on a DNS worker thread: a reader thread answers queries (both the lean
 * path and the ldns one, every registry record type) through its own query contexts, inside
 * liburcu read-side critical sections as server.c does, while this thread registers and
 * removes the instances it asks for. Every response must parse and carry NOERROR or
 * NXDOMAIN; under ASan a snapshot used after it was replaced is an error. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <urcu/urcu-memb.h>

#include "answers.h"
#include "query_fixture.h"
#include "query.h"
#include "registry.h"
#include "zonestore.h"

#define NOW 1000000

static struct zonestore *zs; /* the synthesised apex of service.internal. only */

static const struct query_config config = {
    .domain = "service.internal.", .dns_ttl = 30, .udp_max_size = 1232};
/* Every question through ldns too, not only those the lean path leaves to it. */
static const struct query_config config_full = {
    .domain = "service.internal.", .dns_ttl = 30, .udp_max_size = 1232, .full_path_only = true};

static void setup(void)
{
    /* The writer is a registered RCU thread, as dnsd's main thread is. */
    urcu_memb_register_thread();
    char dir[] = "/tmp/dnsd-query-threads-XXXXXX", err[512] = "";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(zonestore_load(dir, &apex, &zs, err, sizeof(err)), 0, "%s", err);
    rmdir(dir);
    ans = answers_new(config.domain, false);
    reg = registry_new(NULL, on_change, NULL);
    cr_assert(ans && reg);
}

static void teardown(void)
{
    registry_free(reg);
    answers_free(ans);
    zonestore_free(zs);
    urcu_memb_unregister_thread();
}

TestSuite(query_threads, .init = setup, .fini = teardown);

static void put(const char *id, const char *addr, const char *tag)
{
    struct registry_instance inst;
    memset(&inst, 0, sizeof(inst));
    char *tags[1] = {(char *)tag};
    struct registry_meta meta = {(char *)"version", (char *)"1"};
    struct registry_addr a = {0};
    a.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    cr_assert_eq(inet_pton(a.family, addr, a.bytes), 1);
    inst.service = (char *)"web";
    inst.id = (char *)id;
    inst.addrs = &a;
    inst.n_addrs = 1;
    inst.port = 8080;
    inst.weight = 1;
    inst.tags = tag ? tags : NULL;
    inst.n_tags = tag ? 1 : 0;
    inst.meta = &meta;
    inst.n_meta = 1;
    inst.ttl_s = 30;
    const char *field = NULL;
    cr_assert_eq(registry_put(reg, &inst, NOW, &field), 0, "put %s: %s", id, field ? field : "");
}

struct question {
    const char *name;
    ldns_rr_type type;
    bool dnssec_ok; /* with EDNS and DO */
};

static const struct question questions[] = {
    {"web.service.internal.", LDNS_RR_TYPE_A, false},
    {"web.service.internal.", LDNS_RR_TYPE_AAAA, false},
    {"_web._tcp.service.internal.", LDNS_RR_TYPE_SRV, false},
    {"_web._tcp.service.internal.", LDNS_RR_TYPE_SRV, true},
    {"_blue._sub._web._tcp.service.internal.", LDNS_RR_TYPE_SRV, true},
    {"web-1.web.service.internal.", LDNS_RR_TYPE_TXT, true},
    {"web-2.web.service.internal.", LDNS_RR_TYPE_A, false},
    {"web.service.internal.", LDNS_RR_TYPE_ANY, true},
};
#define N_QUESTIONS (sizeof(questions) / sizeof(questions[0]))

struct reader {
    uint8_t *wire[N_QUESTIONS];
    size_t len[N_QUESTIONS];
    atomic_bool stop;
    atomic_long answered;
    atomic_long wrong; /* unparsable, or an rcode other than NOERROR and NXDOMAIN */
};

static void *ask_until_stopped(void *arg)
{
    struct reader *r = arg;
    struct query_ctx *lean = query_ctx_new(&config), *full = query_ctx_new(&config_full);
    if (!lean || !full) {
        atomic_fetch_add(&r->wrong, 1);
        query_ctx_free(lean);
        query_ctx_free(full);
        return NULL;
    }
    urcu_memb_register_thread();
    for (size_t n = 0; !atomic_load(&r->stop); n++) {
        size_t q = n % N_QUESTIONS;
        struct query_ctx *ctx = (n / N_QUESTIONS) % 2 ? full : lean;
        const uint8_t *resp = NULL;
        size_t resp_len = 0;
        urcu_memb_read_lock();
        int rc =
            query_answer(ctx, zs, ans, r->wire[q], r->len[q], QUERY_UDP, NOW, &resp, &resp_len);
        ldns_pkt *pkt = NULL;
        bool ok = rc == 0 && resp_len > 0 && ldns_wire2pkt(&pkt, resp, resp_len) == LDNS_STATUS_OK;
        urcu_memb_read_unlock();
        if (!ok || (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR &&
                    ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NXDOMAIN))
            atomic_fetch_add(&r->wrong, 1);
        ldns_pkt_free(pkt);
        atomic_fetch_add(&r->answered, 1);
    }
    urcu_memb_unregister_thread();
    query_ctx_free(lean);
    query_ctx_free(full);
    return NULL;
}

static size_t make_request(const struct question *q, uint8_t **out)
{
    ldns_pkt *pkt =
        ldns_pkt_query_new(ldns_dname_new_frm_str(q->name), q->type, LDNS_RR_CLASS_IN, LDNS_RD);
    cr_assert_not_null(pkt);
    if (q->dnssec_ok) {
        ldns_pkt_set_edns_udp_size(pkt, 1232);
        ldns_pkt_set_edns_do(pkt, true);
    }
    size_t len = 0;
    cr_assert_eq(ldns_pkt2wire(out, pkt, &len), LDNS_STATUS_OK);
    ldns_pkt_free(pkt);
    return len;
}

Test(query_threads, answers_while_the_registry_changes)
{
    struct reader r = {0};
    for (size_t q = 0; q < N_QUESTIONS; q++)
        r.len[q] = make_request(&questions[q], &r.wire[q]);
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, ask_until_stopped, &r), 0);
    /* Register, change and remove the service being asked for, over and over: every
     * question meets a service that appears, changes and disappears under it. */
    char id[16], addr[32];
    for (int round = 0; round < 400; round++) {
        for (int i = 1; i <= 3; i++) {
            snprintf(id, sizeof(id), "web-%d", i);
            snprintf(addr, sizeof(addr), i == 2 ? "2001:db8::%d" : "192.0.2.%d", round % 250 + 1);
            put(id, addr, i == 1 ? "blue" : NULL);
        }
        for (int i = 1; i <= 3; i++) {
            snprintf(id, sizeof(id), "web-%d", i);
            cr_assert_eq(registry_remove(reg, "web", id), 0);
        }
    }
    atomic_store(&r.stop, true);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    for (size_t q = 0; q < N_QUESTIONS; q++)
        free(r.wire[q]);
    cr_assert_gt(atomic_load(&r.answered), 0);
    cr_assert_eq(atomic_load(&r.wrong), 0, "%ld of %ld answers were wrong", atomic_load(&r.wrong),
                 atomic_load(&r.answered));
}
