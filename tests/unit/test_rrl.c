/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for rrl.c: the token bucket per client prefix, the drop/slip pattern, refill,
 * prefix grouping (IPv4 /24, IPv6 /56), exempt networks, a full table, the off switch, and
 * several threads deciding at once (as DNS worker threads do). Time is a number moved by
 * the tests. No sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dnsd/error.h"
#include "rrl.h"

#define SEED UINT64_C(0x5eed)

/* A socket address for a numeric IPv4 or IPv6 text. */
static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(40000);
    } else {
        cr_assert_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1, "bad address %s", text);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(40000);
    }
    return ss;
}

static enum rrl_verdict decide(struct rrl *rrl, const char *client, uint64_t now_ms)
{
    struct sockaddr_storage ss = addr(client);
    return rrl_decide(rrl, (const struct sockaddr *)&ss, now_ms);
}

/* Defaults with no exempt networks and the given rate and slip. */
static struct rrl *make(uint32_t rate, uint32_t slip)
{
    struct rrl_config cfg;
    rrl_config_init(&cfg);
    cfg.n_exempt = 0;
    cfg.responses_per_second = rate;
    cfg.slip = slip;
    struct rrl *rrl = NULL;
    cr_assert_eq(rrl_new(&cfg, SEED, &rrl), 0);
    return rrl;
}

/* n answers to client at now_ms; counts of each verdict into out[3]. */
static void burst(struct rrl *rrl, const char *client, unsigned n, uint64_t now_ms, unsigned out[3])
{
    out[RRL_SEND] = out[RRL_DROP] = out[RRL_SLIP] = 0;
    for (unsigned i = 0; i < n; i++)
        out[decide(rrl, client, now_ms)]++;
}

Test(rrl, defaults_are_documented_values)
{
    struct rrl_config cfg;
    rrl_config_init(&cfg);
    cr_assert(cfg.enabled);
    cr_assert_eq(cfg.responses_per_second, 1000);
    cr_assert_eq(cfg.slip, 2);
    cr_assert_eq(cfg.ipv4_prefix, 24);
    cr_assert_eq(cfg.ipv6_prefix, 56);
    cr_assert_eq(cfg.table_size, 65536);
    cr_assert_eq(cfg.n_exempt, 2);
    char text[NETLIST_NET_TEXT_LEN];
    netlist_format(&cfg.exempt[0], text, sizeof(text));
    cr_assert_str_eq(text, "127.0.0.0/8");
    netlist_format(&cfg.exempt[1], text, sizeof(text));
    cr_assert_str_eq(text, "::1/128");
}

Test(rrl, out_of_range_config_is_einval)
{
    struct rrl_config bad[7];
    for (size_t i = 0; i < 7; i++)
        rrl_config_init(&bad[i]);
    bad[0].responses_per_second = 0;
    bad[1].responses_per_second = 1000001;
    bad[2].slip = 11;
    bad[3].ipv4_prefix = 7;
    bad[4].ipv6_prefix = 129;
    bad[5].table_size = 0;
    bad[6].n_exempt = RRL_MAX_EXEMPT + 1;
    for (size_t i = 0; i < 7; i++) {
        struct rrl *rrl = (struct rrl *)&bad[i]; /* must stay untouched */
        cr_assert_eq(rrl_new(&bad[i], SEED, &rrl), DNSD_EINVAL, "case %zu", i);
        cr_assert_eq((void *)rrl, (void *)&bad[i], "case %zu wrote *out", i);
    }
}

Test(rrl, under_the_rate_every_answer_is_sent)
{
    struct rrl *rrl = make(100, 2);
    /* 100 per second spread over 10 s: one every 10 ms, never more than the rate. */
    for (uint64_t t = 0; t < 10000; t += 10)
        cr_assert_eq(decide(rrl, "192.0.2.1", t), RRL_SEND, "at %llu ms", (unsigned long long)t);
    /* A burst of one second's worth at once is allowed too. */
    unsigned n[3];
    burst(rrl, "198.51.100.7", 100, 20000, n);
    cr_assert_eq(n[RRL_SEND], 100);
    cr_assert(rrl_check(rrl));
    rrl_free(rrl);
}

Test(rrl, slip_2_drops_then_slips_alternately)
{
    struct rrl *rrl = make(10, 2);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(decide(rrl, "192.0.2.1", 0), RRL_SEND);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(decide(rrl, "192.0.2.1", 0), i % 2 == 0 ? RRL_DROP : RRL_SLIP, "limited #%d",
                     i);
    rrl_free(rrl);
}

Test(rrl, slip_1_truncates_every_limited_answer)
{
    struct rrl *rrl = make(10, 1);
    unsigned n[3];
    burst(rrl, "192.0.2.1", 30, 0, n);
    cr_assert_eq(n[RRL_SEND], 10);
    cr_assert_eq(n[RRL_SLIP], 20);
    cr_assert_eq(n[RRL_DROP], 0);
    rrl_free(rrl);
}

Test(rrl, slip_0_drops_every_limited_answer)
{
    struct rrl *rrl = make(10, 0);
    unsigned n[3];
    burst(rrl, "192.0.2.1", 30, 0, n);
    cr_assert_eq(n[RRL_SEND], 10);
    cr_assert_eq(n[RRL_SLIP], 0);
    cr_assert_eq(n[RRL_DROP], 20);
    rrl_free(rrl);
}

Test(rrl, slip_3_slips_every_third_limited_answer)
{
    struct rrl *rrl = make(5, 3);
    unsigned n[3];
    burst(rrl, "192.0.2.1", 5, 0, n);
    cr_assert_eq(n[RRL_SEND], 5);
    for (int i = 0; i < 9; i++)
        cr_assert_eq(decide(rrl, "192.0.2.1", 0), i % 3 == 2 ? RRL_SLIP : RRL_DROP, "limited #%d",
                     i);
    rrl_free(rrl);
}

Test(rrl, credits_refill_with_time)
{
    struct rrl *rrl = make(100, 0);
    unsigned n[3];
    burst(rrl, "192.0.2.1", 150, 1000, n);
    cr_assert_eq(n[RRL_SEND], 100);
    /* 100 per second: 10 ms earn exactly one answer, 9 ms none. */
    cr_assert_eq(decide(rrl, "192.0.2.1", 1009), RRL_DROP);
    cr_assert_eq(decide(rrl, "192.0.2.1", 1010), RRL_SEND);
    cr_assert_eq(decide(rrl, "192.0.2.1", 1010), RRL_DROP);
    /* Half a second: half the burst. */
    burst(rrl, "192.0.2.1", 80, 1510, n);
    cr_assert_eq(n[RRL_SEND], 50);
    /* Long idle: full again, but never above one second's worth. */
    burst(rrl, "192.0.2.1", 300, 60000, n);
    cr_assert_eq(n[RRL_SEND], 100);
    cr_assert(rrl_check(rrl));
    rrl_free(rrl);
}

Test(rrl, separate_prefixes_have_separate_buckets)
{
    struct rrl *rrl = make(20, 0);
    unsigned n[3];
    burst(rrl, "192.0.2.1", 50, 0, n);
    cr_assert_eq(n[RRL_SEND], 20);
    burst(rrl, "198.51.100.1", 50, 0, n);
    cr_assert_eq(n[RRL_SEND], 20, "another /24 is not limited by the first");
    burst(rrl, "2001:db8:1::1", 50, 0, n);
    cr_assert_eq(n[RRL_SEND], 20, "an IPv6 client is not limited by IPv4 ones");
    cr_assert_eq(rrl_count(rrl), 3);
    rrl_free(rrl);
}

Test(rrl, same_ipv4_24_shares_a_bucket)
{
    struct rrl *rrl = make(20, 0);
    unsigned n[3];
    burst(rrl, "192.0.2.1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 15);
    burst(rrl, "192.0.2.254", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 5, "192.0.2.254 shares 192.0.2.0/24 with 192.0.2.1");
    burst(rrl, "192.0.3.1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 15, "192.0.3.0/24 is another bucket");
    /* An IPv4-mapped IPv6 client is the same IPv4 client. */
    cr_assert_eq(decide(rrl, "::ffff:192.0.2.9", 0), RRL_DROP);
    cr_assert_eq(rrl_count(rrl), 2);
    rrl_free(rrl);
}

Test(rrl, ipv6_56_groups_clients)
{
    struct rrl *rrl = make(20, 0);
    unsigned n[3];
    burst(rrl, "2001:db8:0:1200::1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 15);
    /* 2001:db8:0:12ff:: is inside 2001:db8:0:1200::/56 */
    burst(rrl, "2001:db8:0:12ff:abcd::1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 5);
    /* 2001:db8:0:1300:: is the next /56 */
    burst(rrl, "2001:db8:0:1300::1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 15);
    cr_assert_eq(rrl_count(rrl), 2);
    cr_assert(rrl_check(rrl));
    rrl_free(rrl);
}

Test(rrl, prefix_lengths_are_configurable)
{
    struct rrl_config cfg;
    rrl_config_init(&cfg);
    cfg.n_exempt = 0;
    cfg.responses_per_second = 10;
    cfg.slip = 0;
    cfg.ipv4_prefix = 32;
    cfg.ipv6_prefix = 64;
    struct rrl *rrl = NULL;
    cr_assert_eq(rrl_new(&cfg, SEED, &rrl), 0);
    unsigned n[3];
    burst(rrl, "192.0.2.1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 10);
    burst(rrl, "192.0.2.2", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 10, "/32: each host its own bucket");
    burst(rrl, "2001:db8:0:1200::1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 10);
    burst(rrl, "2001:db8:0:12ff::1", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 10, "/64: another /64 in the same /56 is separate");
    burst(rrl, "2001:db8:0:1200::2", 15, 0, n);
    cr_assert_eq(n[RRL_SEND], 0, "/64: same /64 shares");
    rrl_free(rrl);
}

Test(rrl, exempt_networks_are_never_limited)
{
    struct rrl_config cfg;
    rrl_config_init(&cfg); /* 127.0.0.0/8 and ::1/128 */
    cfg.responses_per_second = 5;
    cr_assert_eq(netlist_parse("10.1.0.0/16", &cfg.exempt[cfg.n_exempt++]), 0);
    struct rrl *rrl = NULL;
    cr_assert_eq(rrl_new(&cfg, SEED, &rrl), 0);
    unsigned n[3];
    burst(rrl, "127.0.0.1", 1000, 0, n);
    cr_assert_eq(n[RRL_SEND], 1000);
    burst(rrl, "::1", 1000, 0, n);
    cr_assert_eq(n[RRL_SEND], 1000);
    burst(rrl, "10.1.200.3", 1000, 0, n);
    cr_assert_eq(n[RRL_SEND], 1000);
    cr_assert_eq(rrl_count(rrl), 0, "exempt clients take no bucket");
    burst(rrl, "10.2.0.1", 10, 0, n);
    cr_assert_eq(n[RRL_SEND], 5, "outside the exempt networks the rate applies");
    burst(rrl, "::2", 10, 0, n);
    cr_assert_eq(n[RRL_SEND], 5);
    rrl_free(rrl);
}

Test(rrl, full_table_keeps_its_size_and_still_limits)
{
    struct rrl_config cfg;
    rrl_config_init(&cfg);
    cfg.n_exempt = 0;
    cfg.responses_per_second = 10;
    cfg.slip = 0;
    cfg.table_size = 1024;
    struct rrl *rrl = NULL;
    cr_assert_eq(rrl_new(&cfg, SEED, &rrl), 0);
    cr_assert_eq(rrl_capacity(rrl), 1024);
    /* A spoofed-source flood: 16 times as many /24s as buckets, all at the same moment. */
    char client[32];
    for (unsigned i = 0; i < 16 * 1024; i++) {
        snprintf(client, sizeof(client), "10.%u.%u.1", i >> 8, i & 0xFF);
        cr_assert_eq(decide(rrl, client, 5000), RRL_SEND);
    }
    cr_assert_leq(rrl_count(rrl), 1024);
    cr_assert_geq(rrl_count(rrl), 1000, "the flood fills the table");
    /* A client asking in the middle of it gets a bucket and is limited at its rate. */
    unsigned n[3];
    burst(rrl, "192.0.2.1", 40, 5000, n);
    cr_assert_eq(n[RRL_SEND], 10);
    cr_assert_eq(n[RRL_DROP], 30);
    /* A second flood of new prefixes over the next 16 ms, the limited client asking once
     * every 16 of them: its empty bucket is never the one given away, so it earns only what
     * 116 ms at 10 per second give (one answer), not a fresh burst. */
    unsigned sent = 0;
    for (unsigned i = 0; i < 16 * 1024; i++) {
        snprintf(client, sizeof(client), "172.16.%u.%u", i >> 8, i & 0xFF);
        uint64_t now = 5100 + i / 1024;
        decide(rrl, client, now);
        if (i % 16 == 0)
            sent += decide(rrl, "192.0.2.1", now) == RRL_SEND;
    }
    cr_assert_eq(sent, 1);
    cr_assert_leq(rrl_count(rrl), 1024);
    cr_assert(rrl_check(rrl));
    rrl_free(rrl);
}

Test(rrl, idle_bucket_is_reused_before_a_limited_one)
{
    /* A table of 8 buckets: one window, so a ninth prefix must take one of them. */
    struct rrl_config cfg;
    rrl_config_init(&cfg);
    cfg.n_exempt = 0;
    cfg.responses_per_second = 10;
    cfg.slip = 0;
    cfg.table_size = 8;
    struct rrl *rrl = NULL;
    cr_assert_eq(rrl_new(&cfg, SEED, &rrl), 0);
    char client[32];
    /* Seven prefixes asked once long ago; one prefix emptied its bucket at 100 ms. */
    for (unsigned i = 0; i < 7; i++) {
        snprintf(client, sizeof(client), "10.0.%u.1", i);
        decide(rrl, client, 0);
    }
    unsigned n[3];
    burst(rrl, "192.0.2.1", 20, 100, n);
    cr_assert_eq(n[RRL_SEND], 10);
    cr_assert_eq(rrl_count(rrl), 8);
    /* Seven new prefixes at 1050 ms each take an idle (refilled) bucket... */
    for (unsigned i = 0; i < 7; i++) {
        snprintf(client, sizeof(client), "10.1.%u.1", i);
        cr_assert_eq(decide(rrl, client, 1050), RRL_SEND);
    }
    cr_assert_eq(rrl_count(rrl), 8);
    /* ... and the limited prefix still has its own: 950 ms earned 9 answers, not a fresh 10. */
    burst(rrl, "192.0.2.1", 20, 1050, n);
    cr_assert_eq(n[RRL_SEND], 9);
    cr_assert(rrl_check(rrl));
    rrl_free(rrl);
}

Test(rrl, disabled_always_sends)
{
    struct rrl_config cfg;
    rrl_config_init(&cfg);
    cfg.enabled = false;
    cfg.n_exempt = 0;
    cfg.responses_per_second = 1;
    struct rrl *rrl = NULL;
    cr_assert_eq(rrl_new(&cfg, SEED, &rrl), 0);
    cr_assert_eq(rrl_capacity(rrl), 0, "no table is allocated");
    unsigned n[3];
    burst(rrl, "192.0.2.1", 1000, 0, n);
    cr_assert_eq(n[RRL_SEND], 1000);
    cr_assert_eq(rrl_count(rrl), 0);
    struct rrl_summary s;
    cr_assert_not(rrl_summary_due(rrl, 0, &s));
    rrl_free(rrl);
}

Test(rrl, other_address_families_are_sent)
{
    struct rrl *rrl = make(1, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(rrl_decide(rrl, (const struct sockaddr *)&ss, 0), RRL_SEND);
    cr_assert_eq(rrl_count(rrl), 0);
    rrl_free(rrl);
}

Test(rrl, summary_at_most_every_interval)
{
    struct rrl *rrl = make(10, 2);
    struct rrl_summary s;
    unsigned n[3];
    cr_assert_not(rrl_summary_due(rrl, 0, &s), "nothing limited yet");
    burst(rrl, "192.0.2.77", 14, 0, n); /* 10 sent, 2 dropped, 2 slipped */
    cr_assert(rrl_summary_due(rrl, 0, &s), "the first limiting is reported at once");
    cr_assert_eq(s.dropped, 2);
    cr_assert_eq(s.slipped, 2);
    cr_assert_eq(s.interval_ms, 0);
    cr_assert_str_eq(s.last_prefix, "192.0.2.0/24");
    burst(rrl, "2001:db8::1", 13, 100, n); /* 10 sent, 2 dropped, 1 slipped */
    cr_assert_not(rrl_summary_due(rrl, RRL_SUMMARY_INTERVAL_MS - 1, &s));
    cr_assert(rrl_summary_due(rrl, RRL_SUMMARY_INTERVAL_MS, &s));
    cr_assert_eq(s.dropped, 2);
    cr_assert_eq(s.slipped, 1);
    cr_assert_eq(s.interval_ms, RRL_SUMMARY_INTERVAL_MS);
    cr_assert_str_eq(s.last_prefix, "2001:db8::/56");
    cr_assert_not(rrl_summary_due(rrl, 3 * RRL_SUMMARY_INTERVAL_MS, &s),
                  "nothing limited since the last summary");
    rrl_free(rrl);
}

Test(rrl, free_null_does_nothing)
{
    rrl_free(NULL);
    struct rrl *rrl = make(1, 0);
    cr_assert_eq(rrl_count(rrl), 0);
    rrl_free(rrl);
}

/* Four threads answer the same 300 networks at one instant, each network 40 times per
 * thread: with a rate of 50 a network gets exactly 50 answers sent in all, whichever
 * threads asked, and the table stays consistent. */
#define RACE_THREADS 4
#define RACE_NETS 300
#define RACE_EACH 40

struct race {
    struct rrl *rrl;
    unsigned thread;
    unsigned nets; /* networks asked for, at most RACE_NETS */
    atomic_uint sent[RACE_NETS];
    atomic_uint limited;
};

static void *race_decide(void *arg)
{
    struct race *r = arg;
    char client[32];
    for (unsigned k = 0; k < RACE_EACH; k++) {
        for (unsigned i = 0; i < r->nets; i++) {
            /* Each thread walks the networks from its own offset, with its own hosts. */
            unsigned net = (i + r->thread * 77) % r->nets;
            snprintf(client, sizeof(client), "10.%u.%u.%u", net / 256, net % 256, r->thread + 1);
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof(ss));
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            inet_pton(AF_INET, client, &in->sin_addr);
            if (rrl_decide(r->rrl, (const struct sockaddr *)&ss, 5000) == RRL_SEND)
                atomic_fetch_add(&r->sent[net], 1);
            else
                atomic_fetch_add(&r->limited, 1);
        }
    }
    return NULL;
}

/* Run the race on a table of table_size buckets with the first nets networks. */
static void race(uint32_t table_size, unsigned nets)
{
    struct rrl_config cfg;
    rrl_config_init(&cfg);
    cfg.n_exempt = 0;
    cfg.responses_per_second = 50;
    cfg.slip = 2;
    cfg.table_size = table_size;
    struct rrl *rrl = NULL;
    cr_assert_eq(rrl_new(&cfg, SEED, &rrl), 0);
    struct race args[RACE_THREADS];
    pthread_t threads[RACE_THREADS];
    for (unsigned t = 0; t < RACE_THREADS; t++) {
        args[t].rrl = rrl;
        args[t].thread = t;
        args[t].nets = nets;
        for (unsigned i = 0; i < RACE_NETS; i++)
            atomic_init(&args[t].sent[i], 0);
        atomic_init(&args[t].limited, 0);
        cr_assert_eq(pthread_create(&threads[t], NULL, race_decide, &args[t]), 0);
    }
    unsigned limited = 0;
    for (unsigned t = 0; t < RACE_THREADS; t++) {
        cr_assert_eq(pthread_join(threads[t], NULL), 0);
        limited += atomic_load(&args[t].limited);
    }
    for (unsigned i = 0; i < nets; i++) {
        unsigned sent = 0;
        for (unsigned t = 0; t < RACE_THREADS; t++)
            sent += atomic_load(&args[t].sent[i]);
        cr_assert_eq(sent, 50, "table %u, network %u: %u answers sent, want the burst of 50",
                     table_size, i, sent);
    }
    cr_assert_eq(limited, RACE_THREADS * nets * RACE_EACH - nets * 50);
    cr_assert_eq(rrl_count(rrl), nets);
    cr_assert(rrl_check(rrl));
    struct rrl_summary s;
    cr_assert(rrl_summary_due(rrl, 5000, &s));
    cr_assert_eq(s.dropped + s.slipped, limited, "every stripe's counts are summed");
    rrl_free(rrl);
}

Test(rrl, threads_share_each_networks_rate)
{
    race(65536, RACE_NETS);
    /* 1025 buckets: stripes of 16 and a last one of 17, windows wrapping from it to 0. */
    race(1025, 60);
}
