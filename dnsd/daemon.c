/* SPDX-License-Identifier: BSD-2-Clause
 * Wiring of the running server: the registry's change callback rebuilds the service's
 * prepared answers, logs the change once and re-arms the lease timer; the lease timer
 * removes lapsed instances. Zone reloads build a new store and swap it in whole. */
#include "daemon.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dnsd/error.h"
#include "answers.h"
#include "api.h"
#include "apiserver.h"
#include "log.h"
#include "registry.h"
#include "server.h"
#include "zonestore.h"

struct daemon {
    uv_loop_t *loop;        /* borrowed */
    struct dnsd_config cfg; /* copy */
    struct registry *reg;   /* owned */
    struct answers *ans;    /* owned */
    struct zonestore *zs;   /* owned; the server borrows it */
    struct api *api;        /* owned */
    struct server *dns;     /* owned until server_stop */
    struct apiserver *http; /* owned until apiserver_stop */
    uv_timer_t lease_timer;
    bool lease_timer_open;
    uint32_t serial_base; /* SOA serial of the synthesised apex at start-up */
    char ns_name[sizeof("hostmaster.") + sizeof(((struct dnsd_config *)0)->domain)];
    char rname[sizeof("hostmaster.") + sizeof(((struct dnsd_config *)0)->domain)];
};

static const char *change_name(enum registry_change change)
{
    switch (change) {
    case REGISTRY_CHANGE_PUT:
        return "registered";
    case REGISTRY_CHANGE_RENEW:
        return "renewed";
    case REGISTRY_CHANGE_REMOVE:
        return "deregistered";
    case REGISTRY_CHANGE_EXPIRE:
        return "lease expired, removed";
    }
    return "changed";
}

static void arm_lease_timer(struct daemon *d);

static void on_registry_change(void *user, enum registry_change change, const char *service,
                               const char *id)
{
    struct daemon *d = user;
    if (change != REGISTRY_CHANGE_RENEW || log_is_enabled(LOG_LEVEL_DEBUG)) {
        log_msg(change == REGISTRY_CHANGE_RENEW ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "registry",
                "%s/%s %s", service, id, change_name(change));
    }
    if (answers_update_service(d->ans, d->reg, service) != 0)
        log_error("registry", "%s: out of memory rebuilding answers; serving the old ones",
                  service);
    arm_lease_timer(d);
}

static void on_lease_timer(uv_timer_t *timer)
{
    struct daemon *d = timer->data;
    registry_expire(d->reg, uv_now(d->loop));
    arm_lease_timer(d);
}

static void arm_lease_timer(struct daemon *d)
{
    if (!d->lease_timer_open)
        return;
    uint64_t next = registry_next_expiry(d->reg);
    if (next == UINT64_MAX) {
        uv_timer_stop(&d->lease_timer);
        return;
    }
    uint64_t now = uv_now(d->loop);
    uv_timer_start(&d->lease_timer, on_lease_timer, next > now ? next - now : 0, 0);
}

/* Addresses the synthesised NS name resolves to: the specific listen addresses (a wildcard
 * such as 0.0.0.0 names no host). */
static size_t ns_addresses(const struct dnsd_config *cfg, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const char *host = cfg->listen[i].host;
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            continue;
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            seen = seen || strcmp(out[j], host) == 0;
        if (!seen)
            out[n++] = host;
    }
    return n;
}

static int load_zones(struct daemon *d, struct zonestore **out, char *err, size_t err_len)
{
    const struct dnsd_config *cfg = &d->cfg;
    const char *addrs[CONFIG_MAX_LISTEN];
    struct zonestore_apex apex = {
        .domain = cfg->domain,
        .ns_name = d->ns_name,
        .ns_addresses = addrs,
        .n_ns_addresses = ns_addresses(cfg, addrs),
        .rname = d->rname,
        .serial = d->serial_base,
        .refresh = cfg->soa_refresh,
        .retry = cfg->soa_retry,
        .expire = cfg->soa_expire,
        .minimum = cfg->soa_minimum,
        .ttl = cfg->soa_ttl,
    };
    /* The default zones directory is optional; one the operator named must exist. */
    struct stat st;
    const char *dir = cfg->zones_dir;
    if (!cfg->zones_dir_set && stat(dir, &st) != 0) {
        log_info("zones", "no zones directory %s; serving the service domain only", dir);
        dir = NULL;
    }
    return zonestore_load(dir, &apex, out, err, err_len);
}

int daemon_start(uv_loop_t *loop, const struct dnsd_config *cfg, struct daemon **out,
                 enum daemon_failure *why, char *err, size_t err_len)
{
    int rc = DNSD_ENOMEM;
    *why = DAEMON_FAILED_RUNTIME;
    struct daemon *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return DNSD_ENOMEM;
    d->loop = loop;
    d->cfg = *cfg;
    /* A fresh start must not go back in serial numbers: seconds since the epoch grow. */
    d->serial_base = (uint32_t)time(NULL);
    if (cfg->ns_name[0])
        snprintf(d->ns_name, sizeof(d->ns_name), "%s", cfg->ns_name);
    else
        snprintf(d->ns_name, sizeof(d->ns_name), "ns.%s", cfg->domain);
    if (cfg->rname[0])
        snprintf(d->rname, sizeof(d->rname), "%s", cfg->rname);
    else
        snprintf(d->rname, sizeof(d->rname), "hostmaster.%s", cfg->domain);

    rc = load_zones(d, &d->zs, err, err_len);
    if (rc != 0) {
        *why = DAEMON_FAILED_CONFIG;
        goto fail;
    }
    rc = DNSD_ENOMEM;
    d->reg = registry_new(on_registry_change, d);
    d->ans = answers_new(d->cfg.domain);
    struct api_config api_cfg = {
        .lease_default_s = cfg->lease_default_s,
        .lease_min_s = cfg->lease_min_s,
        .lease_max_s = cfg->lease_max_s,
    };
    d->api = d->reg ? api_new(d->reg, &api_cfg) : NULL;
    if (d->reg == NULL || d->ans == NULL || d->api == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    uv_timer_init(loop, &d->lease_timer);
    d->lease_timer.data = d;
    d->lease_timer_open = true;

    struct server_config dns_cfg = {
        .listen = cfg->listen,
        .n_listen = cfg->n_listen,
        .tcp_idle_timeout_ms = cfg->tcp_idle_timeout_ms,
        .tcp_max_connections = cfg->tcp_max_connections,
        .query = {.domain = d->cfg.domain,
                  .dns_ttl = cfg->dns_ttl,
                  .udp_max_size = cfg->udp_max_size},
    };
    rc = server_start(loop, &dns_cfg, d->zs, d->ans, &d->dns, err, err_len);
    if (rc != 0)
        goto fail;
    struct apiserver_config http_cfg = {
        .endpoints = cfg->api,
        .n_endpoints = cfg->n_api,
        .socket_mode = cfg->api_socket_mode,
        .max_body = cfg->api_max_body,
        .max_connections = cfg->api_max_connections,
        .timeout_s = cfg->api_timeout_s,
    };
    rc = apiserver_start(loop, &http_cfg, d->api, &d->http, err, err_len);
    if (rc != 0)
        goto fail;

    for (size_t i = 0; i < cfg->n_listen; i++) {
        const struct config_listen *l = &cfg->listen[i];
        log_info("dns",
                 l->family == AF_INET6 ? "listening on [%s]:%u (udp, tcp)"
                                       : "listening on %s:%u (udp, tcp)",
                 l->host, l->port);
    }
    log_info("dns", "authoritative for %s and %zu zone(s) in all", d->cfg.domain,
             zonestore_zone_count(d->zs));
    api_set_ready(d->api, true);
    *out = d;
    return 0;

fail:
    daemon_stop(d);
    return rc;
}

int daemon_reload(struct daemon *d, char *err, size_t err_len)
{
    struct zonestore *fresh;
    int rc = load_zones(d, &fresh, err, err_len);
    if (rc != 0)
        return rc;
    server_set_zonestore(d->dns, fresh);
    zonestore_free(d->zs);
    d->zs = fresh;
    log_info("zones", "reloaded: %zu zone(s)", zonestore_zone_count(fresh));
    return 0;
}

static void daemon_free(struct daemon *d)
{
    api_free(d->api);
    registry_free(d->reg);
    answers_free(d->ans);
    zonestore_free(d->zs);
    free(d);
}

static void lease_timer_closed(uv_handle_t *handle)
{
    daemon_free(handle->data);
}

void daemon_stop(struct daemon *d)
{
    if (d->http)
        apiserver_stop(d->http);
    if (d->dns)
        server_stop(d->dns);
    d->http = NULL;
    d->dns = NULL;
    if (d->lease_timer_open) {
        /* The daemon holds the timer handle, so it is freed only in the close callback. */
        d->lease_timer_open = false;
        uv_close((uv_handle_t *)&d->lease_timer, lease_timer_closed);
        return;
    }
    daemon_free(d);
}
