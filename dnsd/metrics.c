/* SPDX-License-Identifier: BSD-2-Clause
 * Prometheus text exposition format 0.0.4 from the counter structs and the registry. Every
 * family is written whole, with its HELP and TYPE lines first, and every label combination
 * is always present (0 until it moves) so a rate() never starts from a missing series. */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/error.h"
#include "dnsd/version.h"
#include "registry.h"

const uint64_t metrics_duration_bounds_ns[METRICS_N_DURATION_BOUNDS] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 10000000, 100000000,
};

/* The same bounds as le label values, in seconds. */
static const char *const duration_le[METRICS_N_DURATION_BOUNDS] = {
    "0.000005", "0.00001", "0.000025", "0.00005", "0.0001",
    "0.00025",  "0.0005",  "0.001",    "0.01",    "0.1",
};

static const char *const transport_names[METRICS_N_TRANSPORTS] = {"udp", "tcp"};
static const char *const qtype_names[METRICS_N_QTYPES] = {"A",   "AAAA", "SRV", "TXT",
                                                          "SOA", "NS",   "ANY", "other"};
static const char *const rcode_names[METRICS_N_RCODES] = {
    "NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "NOTIMP", "SERVFAIL", "BADVERS", "other"};
static const char *const check_kind_names[2] = {"tcp", "http"};
static const char *const check_outcome_names[3] = {"pass", "warn", "fail"};
static const char *const forward_outcome_names[METRICS_N_FORWARD_OUTCOMES] = {
    "answered", "servfail", "refused"};
static const char *const rrl_action_names[METRICS_N_RRL_ACTIONS] = {"dropped", "slipped"};
static const char *const reg_kind_names[METRICS_N_REG_KINDS] = {"register", "deregister",
                                                                "heartbeat", "expire", "health"};
static const char *const api_class_names[METRICS_N_API_CLASSES] = {"2xx", "4xx", "5xx"};
/* In enum registry_health order. */
static const char *const health_names[4] = {"passing", "warning", "critical", "maintenance"};

void metrics_dns_add(struct metrics_dns *sum, const struct metrics_dns *part)
{
    for (size_t t = 0; t < METRICS_N_TRANSPORTS; t++)
        for (size_t q = 0; q < METRICS_N_QTYPES; q++)
            sum->queries[t][q] += metrics_read(&part->queries[t][q]);
    for (size_t r = 0; r < METRICS_N_RCODES; r++)
        sum->responses[r] += metrics_read(&part->responses[r]);
    sum->truncated += metrics_read(&part->truncated);
    for (size_t b = 0; b <= METRICS_N_DURATION_BOUNDS; b++)
        sum->duration_buckets[b] += metrics_read(&part->duration_buckets[b]);
    sum->duration_sum_ns += metrics_read(&part->duration_sum_ns);
    sum->tcp_connections += metrics_read(&part->tcp_connections);
    for (size_t o = 0; o < METRICS_N_FORWARD_OUTCOMES; o++)
        sum->forwarded[o] += metrics_read(&part->forwarded[o]);
    for (size_t a = 0; a < METRICS_N_RRL_ACTIONS; a++)
        sum->rate_limited[a] += metrics_read(&part->rate_limited[a]);
}

/* HELP and TYPE lines of one family. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with backslash, double quote and line feed escaped (format 0.0.4). */
static void label_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '"')
            fputs("\\\"", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void render_dns(FILE *f, const struct metrics_dns *m)
{
    family(f, "dnsd_dns_queries_total", "counter",
           "DNS queries answered, by transport and question type.");
    for (size_t t = 0; t < METRICS_N_TRANSPORTS; t++)
        for (size_t q = 0; q < METRICS_N_QTYPES; q++)
            fprintf(f, "dnsd_dns_queries_total{transport=\"%s\",qtype=\"%s\"} %" PRIu64 "\n",
                    transport_names[t], qtype_names[q], m->queries[t][q]);
    family(f, "dnsd_dns_responses_total", "counter", "DNS responses sent, by RCODE.");
    for (size_t r = 0; r < METRICS_N_RCODES; r++)
        fprintf(f, "dnsd_dns_responses_total{rcode=\"%s\"} %" PRIu64 "\n", rcode_names[r],
                m->responses[r]);
    family(f, "dnsd_dns_truncated_total", "counter",
           "DNS responses sent with the TC bit set (too large for UDP).");
    fprintf(f, "dnsd_dns_truncated_total %" PRIu64 "\n", m->truncated);

    if (METRICS_DURATION_SAMPLE > 1)
        fprintf(f,
                "# HELP dnsd_dns_query_duration_seconds Time to compute one DNS answer, "
                "measured on 1 in %u queries.\n",
                METRICS_DURATION_SAMPLE);
    else
        fputs("# HELP dnsd_dns_query_duration_seconds Time to compute one DNS answer.\n", f);
    fputs("# TYPE dnsd_dns_query_duration_seconds histogram\n", f);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < METRICS_N_DURATION_BOUNDS; b++) {
        cumulative += m->duration_buckets[b];
        fprintf(f, "dnsd_dns_query_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                duration_le[b], cumulative);
    }
    cumulative += m->duration_buckets[METRICS_N_DURATION_BOUNDS];
    fprintf(f, "dnsd_dns_query_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    /* Exact decimal seconds, no floating-point rounding. */
    fprintf(f, "dnsd_dns_query_duration_seconds_sum %" PRIu64 ".%09" PRIu64 "\n",
            m->duration_sum_ns / 1000000000u, m->duration_sum_ns % 1000000000u);
    fprintf(f, "dnsd_dns_query_duration_seconds_count %" PRIu64 "\n", cumulative);

    family(f, "dnsd_tcp_connections", "gauge", "Open DNS TCP connections.");
    fprintf(f, "dnsd_tcp_connections %" PRIu64 "\n", m->tcp_connections);

    family(f, "dnsd_forward_queries_total", "counter",
           "Questions for names outside every zone, by outcome: answered (a forwarder's "
           "answer passed on), servfail (every forwarder failed), refused (no forwarders or "
           "client not allowed).");
    for (size_t o = 0; o < METRICS_N_FORWARD_OUTCOMES; o++)
        fprintf(f, "dnsd_forward_queries_total{outcome=\"%s\"} %" PRIu64 "\n",
                forward_outcome_names[o], m->forwarded[o]);

    family(f, "dnsd_dns_rate_limited_total", "counter",
           "UDP answers over their client network's rate (dns.rrl), by action: dropped (not "
           "sent) or slipped (sent truncated so the client retries over TCP).");
    for (size_t a = 0; a < METRICS_N_RRL_ACTIONS; a++)
        fprintf(f, "dnsd_dns_rate_limited_total{action=\"%s\"} %" PRIu64 "\n", rrl_action_names[a],
                m->rate_limited[a]);
}

static void render_changes(FILE *f, const struct metrics_registry *m)
{
    family(f, "dnsd_registry_changes_total", "counter",
           "Registry changes, by kind: register, deregister, heartbeat (lease renewed), "
           "expire (removed after deregister_after), health (health changed).");
    for (size_t k = 0; k < METRICS_N_REG_KINDS; k++)
        fprintf(f, "dnsd_registry_changes_total{kind=\"%s\"} %" PRIu64 "\n", reg_kind_names[k],
                m->changes[k]);
}

struct health_tally {
    uint64_t n[4];
};

static bool tally_service(const struct registry_service *svc, void *user)
{
    struct health_tally *t = user;
    size_t n = registry_service_instance_count(svc);
    for (size_t i = 0; i < n; i++) {
        unsigned h = (unsigned)registry_service_instance(svc, i)->health;
        if (h < 4)
            t->n[h]++;
    }
    return true;
}

static void render_registry(FILE *f, const struct registry *reg)
{
    struct health_tally tally = {{0}};
    registry_foreach_service(reg, tally_service, &tally);
    family(f, "dnsd_registry_services", "gauge", "Services with at least one instance.");
    fprintf(f, "dnsd_registry_services %zu\n", registry_service_count(reg));
    family(f, "dnsd_registry_instances", "gauge", "Registered instances, by effective health.");
    for (size_t h = 0; h < 4; h++)
        fprintf(f, "dnsd_registry_instances{health=\"%s\"} %" PRIu64 "\n", health_names[h],
                tally.n[h]);
    family(f, "dnsd_registry_serial", "gauge",
           "Registry change counter: grows by one on every put, renewal, health change, "
           "removal and expiry.");
    fprintf(f, "dnsd_registry_serial %" PRIu64 "\n", registry_serial(reg));
}

static void render_checks(FILE *f, const struct metrics_checks *m)
{
    family(f, "dnsd_health_checks_total", "counter",
           "Active health check probes finished, by kind and outcome.");
    for (size_t k = 0; k < 2; k++)
        for (size_t o = 0; o < 3; o++)
            fprintf(f, "dnsd_health_checks_total{kind=\"%s\",outcome=\"%s\"} %" PRIu64 "\n",
                    check_kind_names[k], check_outcome_names[o], m->results[k][o]);
}

static void render_api(FILE *f, const struct metrics_api *m)
{
    family(f, "dnsd_api_requests_total", "counter",
           "API replies sent (metrics scrapes included), by status class.");
    for (size_t c = 0; c < METRICS_N_API_CLASSES; c++)
        fprintf(f, "dnsd_api_requests_total{code=\"%s\"} %" PRIu64 "\n", api_class_names[c],
                m->requests[c]);
}

int metrics_render(const struct metrics_sources *src, char **out, size_t *out_len)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return DNSD_ENOMEM;
    family(f, "dnsd_up", "gauge", "1 while dnsd is serving.");
    fputs("dnsd_up 1\n", f);
    family(f, "dnsd_build_info", "gauge", "The running dnsd's version; the value is always 1.");
    fputs("dnsd_build_info{version=\"", f);
    label_value(f, src->version ? src->version : DNSD_VERSION);
    fputs("\"} 1\n", f);
    if (src->n_dns > 0) {
        struct metrics_dns sum;
        memset(&sum, 0, sizeof(sum));
        for (size_t i = 0; i < src->n_dns; i++)
            metrics_dns_add(&sum, src->dns[i]);
        render_dns(f, &sum);
    }
    if (src->reg)
        render_registry(f, src->reg);
    if (src->changes)
        render_changes(f, src->changes);
    if (src->checks)
        render_checks(f, src->checks);
    if (src->api)
        render_api(f, src->api);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(text);
        return DNSD_ENOMEM;
    }
    *out = text;
    *out_len = len;
    return 0;
}
