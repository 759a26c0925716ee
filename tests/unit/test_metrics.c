/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for metrics: the counting helpers and the exact Prometheus text for a known
 * state (counter structs filled by hand, a registry with instances in several health
 * states), label escaping, and families left out when their source is missing. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dnsd/version.h"
#include "registry_fixture.h"

/* Render src and return the text (the caller frees it). */
static char *render(const struct metrics_sources *src)
{
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(metrics_render(src, &text, &len), 0);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    return text;
}

Test(metrics, classifies_query_types)
{
    cr_assert_eq(metrics_qtype_of(1), METRICS_QTYPE_A);
    cr_assert_eq(metrics_qtype_of(28), METRICS_QTYPE_AAAA);
    cr_assert_eq(metrics_qtype_of(33), METRICS_QTYPE_SRV);
    cr_assert_eq(metrics_qtype_of(16), METRICS_QTYPE_TXT);
    cr_assert_eq(metrics_qtype_of(6), METRICS_QTYPE_SOA);
    cr_assert_eq(metrics_qtype_of(2), METRICS_QTYPE_NS);
    cr_assert_eq(metrics_qtype_of(255), METRICS_QTYPE_ANY);
    cr_assert_eq(metrics_qtype_of(15), METRICS_QTYPE_OTHER);
    cr_assert_eq(metrics_qtype_of(0), METRICS_QTYPE_OTHER);
}

Test(metrics, classifies_rcodes_including_extended)
{
    cr_assert_eq(metrics_rcode_of(0), METRICS_RCODE_NOERROR);
    cr_assert_eq(metrics_rcode_of(1), METRICS_RCODE_FORMERR);
    cr_assert_eq(metrics_rcode_of(2), METRICS_RCODE_SERVFAIL);
    cr_assert_eq(metrics_rcode_of(3), METRICS_RCODE_NXDOMAIN);
    cr_assert_eq(metrics_rcode_of(4), METRICS_RCODE_NOTIMP);
    cr_assert_eq(metrics_rcode_of(5), METRICS_RCODE_REFUSED);
    cr_assert_eq(metrics_rcode_of(16), METRICS_RCODE_BADVERS);
    cr_assert_eq(metrics_rcode_of(9), METRICS_RCODE_OTHER);
}

Test(metrics, counts_one_query_per_call)
{
    struct metrics_dns m = {0};
    metrics_dns_count(&m, METRICS_UDP, 1, 0, false);
    metrics_dns_count(&m, METRICS_TCP, 33, 3, true);
    metrics_dns_count(&m, METRICS_TCP, 33, 0, false);
    cr_assert_eq(m.queries[METRICS_UDP][METRICS_QTYPE_A], 1);
    cr_assert_eq(m.queries[METRICS_TCP][METRICS_QTYPE_SRV], 2);
    cr_assert_eq(m.queries[METRICS_UDP][METRICS_QTYPE_SRV], 0);
    cr_assert_eq(m.responses[METRICS_RCODE_NOERROR], 2);
    cr_assert_eq(m.responses[METRICS_RCODE_NXDOMAIN], 1);
    cr_assert_eq(m.truncated, 1);
}

Test(metrics, duration_bucket_bounds_are_inclusive)
{
    struct metrics_dns m = {0};
    metrics_dns_duration(&m, 5000);      /* exactly the first bound */
    metrics_dns_duration(&m, 5001);      /* just above it */
    metrics_dns_duration(&m, 100000000); /* exactly the last bound */
    metrics_dns_duration(&m, 100000001); /* +Inf */
    cr_assert_eq(m.duration_buckets[0], 1);
    cr_assert_eq(m.duration_buckets[1], 1);
    cr_assert_eq(m.duration_buckets[METRICS_N_DURATION_BOUNDS - 1], 1);
    cr_assert_eq(m.duration_buckets[METRICS_N_DURATION_BOUNDS], 1);
    cr_assert_eq(m.duration_sum_ns, 5000 + 5001 + 100000000 + 100000001ULL);
}

Test(metrics, api_status_classes)
{
    cr_assert_eq(metrics_api_class_of(200), METRICS_API_2XX);
    cr_assert_eq(metrics_api_class_of(201), METRICS_API_2XX);
    cr_assert_eq(metrics_api_class_of(400), METRICS_API_4XX);
    cr_assert_eq(metrics_api_class_of(413), METRICS_API_4XX);
    cr_assert_eq(metrics_api_class_of(499), METRICS_API_4XX);
    cr_assert_eq(metrics_api_class_of(500), METRICS_API_5XX);
    cr_assert_eq(metrics_api_class_of(503), METRICS_API_5XX);
}

Test(metrics, per_loop_counters_add_up)
{
    struct metrics_dns a = {0}, b = {0}, sum = {0};
    metrics_dns_count(&a, METRICS_UDP, 1, 0, false);
    metrics_dns_duration(&a, 7000);
    a.tcp_connections = 2;
    metrics_dns_count(&b, METRICS_UDP, 1, 3, true);
    metrics_dns_count(&b, METRICS_TCP, 255, 5, false);
    metrics_dns_duration(&b, 8000);
    b.tcp_connections = 3;
    metrics_dns_add(&sum, &a);
    metrics_dns_add(&sum, &b);
    cr_assert_eq(sum.queries[METRICS_UDP][METRICS_QTYPE_A], 2);
    cr_assert_eq(sum.queries[METRICS_TCP][METRICS_QTYPE_ANY], 1);
    cr_assert_eq(sum.responses[METRICS_RCODE_NOERROR], 1);
    cr_assert_eq(sum.responses[METRICS_RCODE_NXDOMAIN], 1);
    cr_assert_eq(sum.responses[METRICS_RCODE_REFUSED], 1);
    cr_assert_eq(sum.truncated, 1);
    cr_assert_eq(sum.duration_buckets[1], 2);
    cr_assert_eq(sum.duration_sum_ns, 15000);
    cr_assert_eq(sum.tcp_connections, 5);
}

Test(metrics, forward_outcomes_add_up)
{
    struct metrics_dns a = {0}, b = {0}, sum = {0};
    a.forwarded[METRICS_FORWARD_ANSWERED] = 2;
    a.forwarded[METRICS_FORWARD_REFUSED] = 1;
    b.forwarded[METRICS_FORWARD_ANSWERED] = 3;
    b.forwarded[METRICS_FORWARD_SERVFAIL] = 4;
    metrics_dns_add(&sum, &a);
    metrics_dns_add(&sum, &b);
    cr_assert_eq(sum.forwarded[METRICS_FORWARD_ANSWERED], 5);
    cr_assert_eq(sum.forwarded[METRICS_FORWARD_SERVFAIL], 4);
    cr_assert_eq(sum.forwarded[METRICS_FORWARD_REFUSED], 1);
}

Test(metrics, rate_limited_answers_add_up)
{
    struct metrics_dns a = {0}, b = {0}, sum = {0};
    a.rate_limited[METRICS_RRL_DROPPED] = 7;
    a.rate_limited[METRICS_RRL_SLIPPED] = 6;
    b.rate_limited[METRICS_RRL_DROPPED] = 2;
    metrics_dns_add(&sum, &a);
    metrics_dns_add(&sum, &b);
    cr_assert_eq(sum.rate_limited[METRICS_RRL_DROPPED], 9);
    cr_assert_eq(sum.rate_limited[METRICS_RRL_SLIPPED], 6);
}

static const char expected_full[] =
    "# HELP dnsd_up 1 while dnsd is serving.\n"
    "# TYPE dnsd_up gauge\n"
    "dnsd_up 1\n"
    "# HELP dnsd_build_info The running dnsd's version; the value is always 1.\n"
    "# TYPE dnsd_build_info gauge\n"
    "dnsd_build_info{version=\"9.8.7\"} 1\n"
    "# HELP dnsd_dns_queries_total DNS queries answered, by transport and question type.\n"
    "# TYPE dnsd_dns_queries_total counter\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"A\"} 7\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"AAAA\"} 0\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"SRV\"} 0\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"TXT\"} 0\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"SOA\"} 0\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"NS\"} 0\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"ANY\"} 0\n"
    "dnsd_dns_queries_total{transport=\"udp\",qtype=\"other\"} 1\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"A\"} 0\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"AAAA\"} 0\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"SRV\"} 2\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"TXT\"} 0\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"SOA\"} 0\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"NS\"} 0\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"ANY\"} 0\n"
    "dnsd_dns_queries_total{transport=\"tcp\",qtype=\"other\"} 0\n"
    "# HELP dnsd_dns_responses_total DNS responses sent, by RCODE.\n"
    "# TYPE dnsd_dns_responses_total counter\n"
    "dnsd_dns_responses_total{rcode=\"NOERROR\"} 6\n"
    "dnsd_dns_responses_total{rcode=\"NXDOMAIN\"} 3\n"
    "dnsd_dns_responses_total{rcode=\"REFUSED\"} 0\n"
    "dnsd_dns_responses_total{rcode=\"FORMERR\"} 0\n"
    "dnsd_dns_responses_total{rcode=\"NOTIMP\"} 0\n"
    "dnsd_dns_responses_total{rcode=\"SERVFAIL\"} 0\n"
    "dnsd_dns_responses_total{rcode=\"BADVERS\"} 1\n"
    "dnsd_dns_responses_total{rcode=\"other\"} 0\n"
    "# HELP dnsd_dns_truncated_total DNS responses sent with the TC bit set (too large for "
    "UDP).\n"
    "# TYPE dnsd_dns_truncated_total counter\n"
    "dnsd_dns_truncated_total 4\n"
    "# HELP dnsd_dns_query_duration_seconds Time to compute one DNS answer, measured on 1 in "
    "16 queries.\n"
    "# TYPE dnsd_dns_query_duration_seconds histogram\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.000005\"} 2\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.00001\"} 2\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.000025\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.00005\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.0001\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.00025\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.0005\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.001\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.01\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"0.1\"} 5\n"
    "dnsd_dns_query_duration_seconds_bucket{le=\"+Inf\"} 6\n"
    "dnsd_dns_query_duration_seconds_sum 2.000012345\n"
    "dnsd_dns_query_duration_seconds_count 6\n"
    "# HELP dnsd_tcp_connections Open DNS TCP connections.\n"
    "# TYPE dnsd_tcp_connections gauge\n"
    "dnsd_tcp_connections 3\n"
    "# HELP dnsd_forward_queries_total Questions for names outside every zone, by outcome: "
    "answered (a forwarder's answer passed on), servfail (every forwarder failed), refused (no "
    "forwarders or client not allowed).\n"
    "# TYPE dnsd_forward_queries_total counter\n"
    "dnsd_forward_queries_total{outcome=\"answered\"} 5\n"
    "dnsd_forward_queries_total{outcome=\"servfail\"} 0\n"
    "dnsd_forward_queries_total{outcome=\"refused\"} 2\n"
    "# HELP dnsd_dns_rate_limited_total UDP answers over their client network's rate (dns.rrl), "
    "by action: dropped (not sent) or slipped (sent truncated so the client retries over TCP).\n"
    "# TYPE dnsd_dns_rate_limited_total counter\n"
    "dnsd_dns_rate_limited_total{action=\"dropped\"} 9\n"
    "dnsd_dns_rate_limited_total{action=\"slipped\"} 4\n"
    "# HELP dnsd_registry_services Services with at least one instance.\n"
    "# TYPE dnsd_registry_services gauge\n"
    "dnsd_registry_services 2\n"
    "# HELP dnsd_registry_instances Registered instances, by effective health.\n"
    "# TYPE dnsd_registry_instances gauge\n"
    "dnsd_registry_instances{health=\"passing\"} 2\n"
    "dnsd_registry_instances{health=\"warning\"} 1\n"
    "dnsd_registry_instances{health=\"critical\"} 0\n"
    "dnsd_registry_instances{health=\"maintenance\"} 1\n"
    "# HELP dnsd_registry_serial Registry change counter: grows by one on every put, renewal, "
    "health change, removal and expiry.\n"
    "# TYPE dnsd_registry_serial gauge\n"
    "dnsd_registry_serial 6\n"
    "# HELP dnsd_registry_changes_total Registry changes, by kind: register, deregister, "
    "heartbeat (lease renewed), expire (removed after deregister_after), health (health "
    "changed).\n"
    "# TYPE dnsd_registry_changes_total counter\n"
    "dnsd_registry_changes_total{kind=\"register\"} 4\n"
    "dnsd_registry_changes_total{kind=\"deregister\"} 1\n"
    "dnsd_registry_changes_total{kind=\"heartbeat\"} 9\n"
    "dnsd_registry_changes_total{kind=\"expire\"} 0\n"
    "dnsd_registry_changes_total{kind=\"health\"} 2\n"
    "# HELP dnsd_health_checks_total Active health check probes finished, by kind and "
    "outcome.\n"
    "# TYPE dnsd_health_checks_total counter\n"
    "dnsd_health_checks_total{kind=\"tcp\",outcome=\"pass\"} 10\n"
    "dnsd_health_checks_total{kind=\"tcp\",outcome=\"warn\"} 0\n"
    "dnsd_health_checks_total{kind=\"tcp\",outcome=\"fail\"} 2\n"
    "dnsd_health_checks_total{kind=\"http\",outcome=\"pass\"} 0\n"
    "dnsd_health_checks_total{kind=\"http\",outcome=\"warn\"} 1\n"
    "dnsd_health_checks_total{kind=\"http\",outcome=\"fail\"} 0\n"
    "# HELP dnsd_api_requests_total API replies sent (metrics scrapes included), by status "
    "class.\n"
    "# TYPE dnsd_api_requests_total counter\n"
    "dnsd_api_requests_total{code=\"2xx\"} 12\n"
    "dnsd_api_requests_total{code=\"4xx\"} 3\n"
    "dnsd_api_requests_total{code=\"5xx\"} 1\n";

Test(metrics, renders_known_state_exactly)
{
    struct metrics_dns dns = {0};
    dns.queries[METRICS_UDP][METRICS_QTYPE_A] = 5; /* and 2 on the second loop */
    dns.queries[METRICS_UDP][METRICS_QTYPE_OTHER] = 1;
    dns.queries[METRICS_TCP][METRICS_QTYPE_SRV] = 2;
    dns.responses[METRICS_RCODE_NOERROR] = 6;
    dns.responses[METRICS_RCODE_NXDOMAIN] = 3;
    dns.responses[METRICS_RCODE_BADVERS] = 1;
    dns.truncated = 3; /* and 1 on the second loop */
    metrics_dns_duration(&dns, 1000);
    metrics_dns_duration(&dns, 2000);
    metrics_dns_duration(&dns, 11000);
    metrics_dns_duration(&dns, 12000);
    metrics_dns_duration(&dns, 1999974345); /* about 2 s: +Inf */
    dns.tcp_connections = 3;
    dns.forwarded[METRICS_FORWARD_ANSWERED] = 5;
    dns.forwarded[METRICS_FORWARD_REFUSED] = 2;
    dns.rate_limited[METRICS_RRL_DROPPED] = 9;
    dns.rate_limited[METRICS_RRL_SLIPPED] = 4;

    /* web/a passing, web/b warning, db/c passing, db/d maintenance; serial 6. */
    struct registry *reg = registry_new(NULL, NULL, NULL);
    cr_assert_not_null(reg);
    put(reg, "web", "a", 30, 1000);
    put(reg, "web", "b", 30, 1000);
    put(reg, "db", "c", 30, 1000);
    put(reg, "db", "d", 30, 1000);
    cr_assert_eq(registry_heartbeat(reg, "web", "b", REGISTRY_HEALTH_WARNING, "slow", 2000, NULL),
                 0);
    cr_assert_eq(registry_set_maintenance(reg, "db", "d", true, NULL, 2000, NULL), 0);

    struct metrics_checks checks = {{{10, 0, 2}, {0, 1, 0}}};
    struct metrics_api api = {{12, 3, 1}};
    struct metrics_registry changes = {{4, 1, 9, 0, 2}};
    /* Every loop's counters are added up. */
    struct metrics_dns second = {0};
    second.queries[METRICS_UDP][METRICS_QTYPE_A] = 2;
    second.truncated = 1;
    metrics_dns_duration(&second, 12000);
    const struct metrics_dns *loops[2] = {&dns, &second};
    struct metrics_sources src = {.reg = reg,
                                  .dns = loops,
                                  .n_dns = 2,
                                  .checks = &checks,
                                  .api = &api,
                                  .changes = &changes,
                                  .version = "9.8.7"};
    char *text = render(&src);
    cr_assert_str_eq(text, expected_full);
    free(text);
    registry_free(reg);
}

Test(metrics, escapes_label_values)
{
    struct metrics_sources src = {.version = "1.0\"rc\\2\nx"};
    char *text = render(&src);
    cr_assert_not_null(strstr(text, "dnsd_build_info{version=\"1.0\\\"rc\\\\2\\nx\"} 1\n"), "%s",
                       text);
    free(text);
}

Test(metrics, leaves_out_families_without_a_source)
{
    struct metrics_sources src = {0};
    char *text = render(&src);
    cr_assert_str_eq(text, "# HELP dnsd_up 1 while dnsd is serving.\n"
                           "# TYPE dnsd_up gauge\n"
                           "dnsd_up 1\n"
                           "# HELP dnsd_build_info The running dnsd's version; the value is "
                           "always 1.\n"
                           "# TYPE dnsd_build_info gauge\n"
                           "dnsd_build_info{version=\"" DNSD_VERSION "\"} 1\n");
    free(text);
}
