/* SPDX-License-Identifier: BSD-2-Clause
 * dnsd's configuration: built-in defaults, the libconfig file and the textual endpoint forms.
 * This is the only file that includes libconfig.h: every value is checked and copied into
 * struct dnsd_config, libconfig errors become "file:line: message", and the config_t is
 * destroyed before any function returns. No globals, no logging: callers report err. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <libconfig.h>

#include "dnsd/duration.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "registry.h"

/* ---- endpoints ---------------------------------------------------------------------------- */

/* Parse "ADDR:PORT" or "[ADDR]:PORT"; *why names the fault on DNSD_EINVAL. */
static int parse_hostport(const char *text, int *family, char host[64], uint16_t *port,
                          const char **why)
{
    char addr[64];
    const char *colon;
    int fam;

    if (text[0] == '\0') {
        *why = "empty address";
        return DNSD_EINVAL;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close) {
            *why = "missing ']'";
            return DNSD_EINVAL;
        }
        if (close[1] != ':') {
            *why = "expected ':PORT' after ']'";
            return DNSD_EINVAL;
        }
        if ((size_t)(close - text - 1) >= sizeof(addr)) {
            *why = "not a numeric IPv6 address";
            return DNSD_EINVAL;
        }
        memcpy(addr, text + 1, (size_t)(close - text - 1));
        addr[close - text - 1] = '\0';
        colon = close + 1;
        fam = AF_INET6;
    } else {
        colon = strrchr(text, ':');
        if (!colon) {
            *why = "missing ':PORT'";
            return DNSD_EINVAL;
        }
        if (memchr(text, ':', (size_t)(colon - text))) {
            *why = "an IPv6 address must be in brackets, as in [::1]:8053";
            return DNSD_EINVAL;
        }
        if ((size_t)(colon - text) >= sizeof(addr)) {
            *why = "not a numeric IPv4 address (host names are not resolved)";
            return DNSD_EINVAL;
        }
        memcpy(addr, text, (size_t)(colon - text));
        addr[colon - text] = '\0';
        fam = AF_INET;
    }

    /* A scope id would bind to one interface only; dnsd does not support that. */
    if (strchr(addr, '%')) {
        *why = "zone ids ('%') are not supported";
        return DNSD_EINVAL;
    }
    unsigned char bin[16];
    if (inet_pton(fam, addr, bin) != 1) {
        *why = fam == AF_INET6 ? "not a numeric IPv6 address"
                               : "not a numeric IPv4 address (host names are not resolved)";
        return DNSD_EINVAL;
    }

    const char *p = colon + 1;
    size_t ndigits = strspn(p, "0123456789");
    if (ndigits == 0 || p[ndigits] != '\0' || ndigits > 5 || strtoul(p, NULL, 10) > 65535) {
        *why = "port must be a number 0..65535";
        return DNSD_EINVAL;
    }

    char canon[INET6_ADDRSTRLEN];
    if (!inet_ntop(fam, bin, canon, sizeof(canon))) {
        *why = "address cannot be formatted";
        return DNSD_EINVAL;
    }
    *family = fam;
    memset(host, 0, 64);
    memcpy(host, canon, strlen(canon));
    *port = (uint16_t)strtoul(p, NULL, 10);
    return 0;
}

static int parse_listen(const char *text, struct config_listen *out, const char **why)
{
    struct config_listen l;
    memset(&l, 0, sizeof(l));
    int rc = parse_hostport(text, &l.family, l.host, &l.port, why);
    if (rc < 0)
        return rc;
    memcpy(out, &l, sizeof(l));
    return 0;
}

static int parse_api(const char *text, struct config_api *out, const char **why)
{
    struct config_api a;
    memset(&a, 0, sizeof(a));
    if (strncmp(text, "unix:", 5) == 0) {
        const char *path = text + 5;
        if (path[0] == '\0') {
            *why = "the Unix socket path is empty";
            return DNSD_EINVAL;
        }
        if (strlen(path) >= sizeof(a.path)) {
            *why = "the Unix socket path is longer than 107 bytes";
            return DNSD_EINVAL;
        }
        a.kind = CONFIG_API_UNIX;
        memcpy(a.path, path, strlen(path));
    } else if (strncmp(text, "tcp:", 4) == 0) {
        int rc = parse_hostport(text + 4, &a.family, a.host, &a.port, why);
        if (rc < 0)
            return rc;
        a.kind = CONFIG_API_TCP;
    } else {
        *why = "must be unix:PATH or tcp:ADDR:PORT";
        return DNSD_EINVAL;
    }
    memcpy(out, &a, sizeof(a));
    return 0;
}

int config_parse_listen(const char *text, struct config_listen *out)
{
    const char *why;
    return text ? parse_listen(text, out, &why) : DNSD_EINVAL;
}

bool config_api_is_loopback(const struct config_api *api)
{
    unsigned char a[16];
    if (api->kind == CONFIG_API_UNIX)
        return true;
    if (api->family == AF_INET)
        return inet_pton(AF_INET, api->host, a) == 1 && a[0] == 127;
    return inet_pton(AF_INET6, api->host, a) == 1 && memcmp(a, &in6addr_loopback, 16) == 0;
}

int config_parse_api(const char *text, struct config_api *out)
{
    const char *why;
    return text ? parse_api(text, out, &why) : DNSD_EINVAL;
}

/* ---- domain names ------------------------------------------------------------------------- */

/* Letters, digits, hyphen and underscore: enough for service domains and SRV-style labels. */
static bool is_domain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int config_normalize_domain(const char *text, char *out, size_t out_len)
{
    if (!text)
        return DNSD_EINVAL;
    size_t len = strlen(text);
    if (len > 0 && text[len - 1] == '.')
        len--;
    /* 253 presentation bytes without the final dot = 255 wire bytes (RFC 1035 §2.3.4). */
    if (len == 0 || len > 253 || len + 2 > out_len)
        return DNSD_EINVAL;

    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '.') {
            if (label == 0)
                return DNSD_EINVAL;
            label = 0;
        } else if (!is_domain_char(text[i]) || ++label > DNSD_LABEL_MAX) {
            return DNSD_EINVAL;
        }
    }
    if (label == 0)
        return DNSD_EINVAL;

    memcpy(out, text, len);
    out[len] = '.';
    out[len + 1] = '\0';
    dnsd_label_lower(out);
    return 0;
}

/* ---- option table ------------------------------------------------------------------------- */

enum opt_kind {
    OPT_U16,
    OPT_U32,
    OPT_SIZE,
    OPT_NAME,     /* "" or a domain name, stored normalised in char[256] */
    OPT_MODE,     /* octal string such as "0660" */
    OPT_BOOL,     /* true or false, stored in a bool */
    OPT_DURATION, /* "60s" (dnsd_duration_parse), stored as uint64_t milliseconds */
    OPT_SHARE,    /* a number 0 < x <= 1, stored as a double */
    OPT_FSYNC,    /* "always", "interval" or "off", stored as enum config_fsync */
    OPT_GRACE,    /* "" (CONFIG_GRACE_ONE_LEASE) or a duration, stored as uint64_t ms */
    OPT_STRING,   /* any string shorter than max bytes, stored in char[max] */
    OPT_NETS,     /* a list of 0..max networks (netlist_parse) in struct netlist_net[max] */
    OPT_GROUP,    /* a nested group { ... } of the options in sub */
};

struct opt {
    const char *name;
    enum opt_kind kind;
    size_t offset;
    int64_t min, max;      /* integers and durations (in ms) */
    const struct opt *sub; /* OPT_GROUP: its options, ended by a NULL name */
    size_t count;          /* OPT_NETS: offset of the size_t holding the number of networks */
};

#define OPT(name, kind, field, min, max)                                                           \
    {                                                                                              \
        name, kind, offsetof(struct dnsd_config, field), min, max, NULL, 0                         \
    }
#define GROUP(name, opts)                                                                          \
    {                                                                                              \
        name, OPT_GROUP, 0, 0, 0, opts, 0                                                          \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, OPT_U32, 0, 0, 0, NULL, 0                                                            \
    }
#define NETS_OPT(name, field, n_field, max)                                                        \
    {                                                                                              \
        name, OPT_NETS, offsetof(struct dnsd_config, field), 0, max, NULL,                         \
            offsetof(struct dnsd_config, n_field)                                                  \
    }
#define STRING_OPT(name, field)                                                                    \
    OPT(name, OPT_STRING, field, 0, sizeof(((struct dnsd_config *)0)->field))
#define TTL_MAX INT64_C(2147483647) /* RFC 2181 §8 */

static const struct opt rrl_opts[] = {
    OPT("enabled", OPT_BOOL, rrl.enabled, 0, 1),
    OPT("responses_per_second", OPT_U32, rrl.responses_per_second, 1, 1000000),
    OPT("slip", OPT_U32, rrl.slip, 0, 10),
    OPT("ipv4_prefix", OPT_U32, rrl.ipv4_prefix, 8, 32),
    OPT("ipv6_prefix", OPT_U32, rrl.ipv6_prefix, 16, 128),
    OPT("table_size", OPT_U32, rrl.table_size, 1024, 16777216),
    NETS_OPT("exempt", rrl.exempt, rrl.n_exempt, RRL_MAX_EXEMPT),
    END,
};

static const struct opt dns_opts[] = {
    OPT("ttl", OPT_U32, dns_ttl, 0, 604800),
    OPT("min_ttl", OPT_U32, dns_min_ttl, 0, 3600),
    OPT("udp_max_size", OPT_U16, udp_max_size, 512, 65535),
    OPT("tcp_idle_timeout_ms", OPT_U32, tcp_idle_timeout_ms, 1, 3600000),
    OPT("tcp_max_connections", OPT_U32, tcp_max_connections, 1, 65535),
    OPT("tcp_max_connection_ms", OPT_U32, tcp_max_connection_ms, 1, 86400000),
    OPT("udp_rcvbuf", OPT_U32, udp_rcvbuf, 0, 1073741824),
    OPT("workers", OPT_U32, dns_workers, 0, 64),
    GROUP("rrl", rrl_opts),
    END,
};

static const struct opt soa_opts[] = {
    OPT("ns_name", OPT_NAME, ns_name, 0, 0),
    OPT("rname", OPT_NAME, rname, 0, 0),
    OPT("refresh", OPT_U32, soa_refresh, 0, TTL_MAX),
    OPT("retry", OPT_U32, soa_retry, 0, TTL_MAX),
    OPT("expire", OPT_U32, soa_expire, 0, TTL_MAX),
    OPT("minimum", OPT_U32, soa_minimum, 0, 86400),
    OPT("ttl", OPT_U32, soa_ttl, 0, 604800),
    END,
};

static const struct opt api_opts[] = {
    OPT("socket_mode", OPT_MODE, api_socket_mode, 0, 0777),
    OPT("max_body", OPT_SIZE, api_max_body, 1, 64 * 1024 * 1024),
    OPT("max_connections", OPT_U32, api_max_connections, 1, 65535),
    OPT("timeout_s", OPT_U32, api_timeout_s, 1, 3600),
    OPT("max_header", OPT_SIZE, api_max_header, 4096, 1024 * 1024),
    OPT("allow_plain_tcp", OPT_BOOL, api_allow_plain_tcp, 0, 1),
    STRING_OPT("tls_cert", api_tls_cert),
    STRING_OPT("tls_key", api_tls_key),
    STRING_OPT("socket_group", api_socket_group),
    END,
};

/* 64 meta strings of 255 bytes at most: a larger byte limit could never be reached. */
#define META_BYTES_MAX (REGISTRY_MAX_META * REGISTRY_MAX_TXT_LEN)

static const struct opt limits_opts[] = {
    OPT("max_instances", OPT_U32, limits_max_instances, 1, INT32_MAX),
    OPT("max_instances_per_service", OPT_U32, limits_max_instances_per_service, 1, INT32_MAX),
    OPT("max_meta_bytes", OPT_U32, limits_max_meta_bytes, 1, META_BYTES_MAX),
    END,
};

static const struct opt lease_opts[] = {
    OPT("default", OPT_U32, lease_default_s, 1, 31536000),
    OPT("min", OPT_U32, lease_min_s, 1, 31536000),
    OPT("max", OPT_U32, lease_max_s, 1, 31536000),
    END,
};

#define DURATION_MAX ((int64_t)DNSD_DURATION_MAX_MS)

static const struct opt preservation_opts[] = {
    OPT("enabled", OPT_BOOL, preservation_enabled, 0, 1),
    OPT("threshold", OPT_SHARE, preservation_threshold, 0, 0),
    OPT("min_instances", OPT_U32, preservation_min_instances, 0, INT32_MAX),
    OPT("max_duration", OPT_DURATION, preservation_max_ms, 1, DURATION_MAX),
    END,
};

static const struct opt health_opts[] = {
    OPT("only_passing", OPT_BOOL, health_only_passing, 0, 1),
    OPT("deregister_after", OPT_DURATION, health_deregister_after_ms, 0, DURATION_MAX),
    GROUP("self_preservation", preservation_opts),
    END,
};

static const struct opt query_log_opts[] = {
    OPT("enabled", OPT_BOOL, query_log_enabled, 0, 1),
    OPT("sample", OPT_U32, query_log_sample, 1, 1000000),
    END,
};

static const struct opt persistence_opts[] = {
    OPT("fsync", OPT_FSYNC, persist_fsync, CONFIG_FSYNC_ALWAYS, CONFIG_FSYNC_OFF),
    OPT("fsync_interval", OPT_DURATION, persist_fsync_interval_ms, 1, 3600 * 1000),
    OPT("snapshot_every", OPT_U32, persist_snapshot_every, 1, INT32_MAX),
    OPT("restart_grace", OPT_GRACE, persist_restart_grace_ms, 0, DURATION_MAX),
    END,
};

struct group {
    const char *name;
    const struct opt *opts;
};

static const struct group groups[] = {
    {"dns", dns_opts},         {"soa", soa_opts},
    {"api_options", api_opts}, {"lease", lease_opts},
    {"health", health_opts},   {"persistence", persistence_opts},
    {"limits", limits_opts},   {"query_log", query_log_opts},
};

#define N_GROUPS (sizeof(groups) / sizeof(groups[0]))

/* The integer field an option describes, widened. */
static int64_t opt_get(const struct dnsd_config *cfg, const struct opt *o)
{
    const char *base = (const char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_U16:
        return *(const uint16_t *)(const void *)base;
    case OPT_SIZE:
        return (int64_t)(*(const size_t *)(const void *)base);
    case OPT_BOOL:
        return *(const bool *)(const void *)base;
    case OPT_DURATION:
    case OPT_GRACE:
        return (int64_t)(*(const uint64_t *)(const void *)base);
    case OPT_FSYNC:
        return *(const enum config_fsync *)(const void *)base;
    default:
        return *(const uint32_t *)(const void *)base;
    }
}

/* Store an integer already checked against o->min..o->max. */
static void opt_set(struct dnsd_config *cfg, const struct opt *o, int64_t v)
{
    char *base = (char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_U16:
        *(uint16_t *)(void *)base = (uint16_t)v;
        break;
    case OPT_SIZE:
        *(size_t *)(void *)base = (size_t)v;
        break;
    case OPT_BOOL:
        *(bool *)(void *)base = v != 0;
        break;
    case OPT_DURATION:
    case OPT_GRACE:
        *(uint64_t *)(void *)base = (uint64_t)v;
        break;
    case OPT_FSYNC:
        *(enum config_fsync *)(void *)base = (enum config_fsync)v;
        break;
    default:
        *(uint32_t *)(void *)base = (uint32_t)v;
        break;
    }
}

/* ---- defaults and validation -------------------------------------------------------------- */

static void set_string(char *dst, size_t dst_len, const char *src)
{
    /* Clear the whole buffer so equal configurations are equal byte for byte. */
    memset(dst, 0, dst_len);
    memcpy(dst, src, strlen(src));
}

void config_init_defaults(struct dnsd_config *cfg)
{
    int rc;
    memset(cfg, 0, sizeof(*cfg));
    set_string(cfg->domain, sizeof(cfg->domain), DNSD_DEFAULT_DOMAIN);
    set_string(cfg->zones_dir, sizeof(cfg->zones_dir), "/etc/dnsd/zones");
    cfg->zones_dir_set = false;
    forward_config_init(&cfg->forward);
    rrl_config_init(&cfg->rrl);
    set_string(cfg->user, sizeof(cfg->user), "dnsd");
    /* Any address: the allow-list is opt-in. */
    rc = netlist_parse("0.0.0.0/0", &cfg->allowed_addresses[0]);
    rc |= netlist_parse("::/0", &cfg->allowed_addresses[1]);
    cfg->n_allowed_addresses = 2;

    const char *why;
    rc |= parse_listen("127.0.0.1:8053", &cfg->listen[0], &why);
    rc |= parse_listen("[::1]:8053", &cfg->listen[1], &why);
    rc |= parse_api("unix:" DNSD_DEFAULT_API_SOCKET, &cfg->api[0], &why);
    (void)rc; /* constant input: cannot fail */
    cfg->n_listen = 2;
    cfg->n_api = 1;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->log_format = LOG_FORMAT_TEXT;
    cfg->query_log_enabled = false;
    cfg->query_log_sample = 1;

    cfg->dns_ttl = 5;
    cfg->udp_max_size = 1232; /* DNS flag day 2020: no IP fragmentation */
    cfg->tcp_idle_timeout_ms = 10000;
    cfg->tcp_max_connections = 512;
    cfg->tcp_max_connection_ms = 60000;
    cfg->udp_rcvbuf = 4194304;

    cfg->soa_refresh = 3600;
    cfg->soa_retry = 600;
    cfg->soa_expire = 86400;
    /* Short negative caching (RFC 2308 §5): a service that has just registered must be found
     * quickly by resolvers that cached its NXDOMAIN. */
    cfg->soa_minimum = 5;
    cfg->soa_ttl = 60;

    cfg->api_socket_mode = 0660;
    cfg->api_max_body = 65536;
    cfg->api_max_connections = 256;
    cfg->api_timeout_s = 30;
    /* Room for a request line and headers of a few KiB, as nginx's 8k header buffers. */
    cfg->api_max_header = 8192;

    /* Generous for one fleet, yet a runaway registrar cannot exhaust memory. */
    cfg->limits_max_instances = 100000;
    cfg->limits_max_instances_per_service = 10000;
    /* Keeps an instance's TXT answer well inside a 64 KiB TCP message. */
    cfg->limits_max_meta_bytes = 4096;

    cfg->lease_default_s = 30;
    cfg->lease_min_s = 1;
    cfg->lease_max_s = 86400;

    cfg->health_only_passing = false;
    cfg->health_deregister_after_ms = 60 * 1000;
    /* Eureka-style: hold the last health when half of a large fleet lapses at once. */
    cfg->preservation_enabled = true;
    cfg->preservation_threshold = 0.5;
    cfg->preservation_min_instances = 10;
    cfg->preservation_max_ms = 5 * 60 * 1000;

    /* No data directory: the registry is in memory only, as before persistence existed. */
    cfg->persist_fsync = CONFIG_FSYNC_ALWAYS;
    cfg->persist_fsync_interval_ms = 100;
    cfg->persist_snapshot_every = 10000;
    cfg->persist_restart_grace_ms = CONFIG_GRACE_ONE_LEASE;
}

const char *config_fsync_name(enum config_fsync fsync)
{
    switch (fsync) {
    case CONFIG_FSYNC_ALWAYS:
        return "always";
    case CONFIG_FSYNC_INTERVAL:
        return "interval";
    case CONFIG_FSYNC_OFF:
        return "off";
    }
    return "unknown";
}

/* "must be a duration from 0s to 168h, such as "60s"" for option o. */
static void duration_rule(const struct opt *o, char *out, size_t len)
{
    char lo[24], hi[24]; /* a u64 of milliseconds is at most 20 digits and "ms" */
    dnsd_duration_format((uint64_t)o->min, lo, sizeof(lo));
    dnsd_duration_format((uint64_t)o->max, hi, sizeof(hi));
    snprintf(out, len, "must be a duration from %s to %s such as \"60s\"", lo, hi);
}

/* Is x a share of a whole: 0 < x <= 1 (NaN is not)? */
static bool is_share(double x)
{
    return x > 0.0 && x <= 1.0;
}

#define FAIL(opt1, opt2, ...)                                                                      \
    do {                                                                                           \
        snprintf(where[0], 64, "%s", opt1);                                                        \
        snprintf(where[1], 64, "%s", opt2);                                                        \
        snprintf(err, err_len, __VA_ARGS__);                                                       \
        return DNSD_EINVAL;                                                                        \
    } while (0)

/* The range and form rules of every option in opts (named prefix.NAME), nested groups
 * included; same err and where as check_config. */
static int check_opts(const struct dnsd_config *cfg, const char *prefix, const struct opt *opts,
                      char *err, size_t err_len, char where[2][64])
{
    char name[256], path[64], rule[128];
    for (const struct opt *o = opts; o->name; o++) {
        snprintf(path, sizeof(path), "%s.%s", prefix, o->name);
        if (o->kind == OPT_GROUP) {
            int rc = check_opts(cfg, path, o->sub, err, err_len, where);
            if (rc < 0)
                return rc;
            continue;
        }
        if (o->kind == OPT_NAME) {
            const char *v = (const char *)cfg + o->offset;
            if (v[0] != '\0' && config_normalize_domain(v, name, sizeof(name)) < 0)
                FAIL(path, "", "%s: '%s' is not a valid domain name", path, v);
            continue;
        }
        if (o->kind == OPT_STRING)
            continue; /* any text that fits; its meaning is checked where it is used */
        if (o->kind == OPT_NETS) {
            if (*(const size_t *)(const void *)((const char *)cfg + o->count) > (size_t)o->max)
                FAIL(path, "", "%s: at most %" PRId64 " networks", path, o->max);
            continue;
        }
        if (o->kind == OPT_SHARE) {
            if (!is_share(*(const double *)(const void *)((const char *)cfg + o->offset)))
                FAIL(path, "", "%s: must be a number above 0 and at most 1", path);
            continue;
        }
        if (o->kind == OPT_GRACE &&
            *(const uint64_t *)(const void *)((const char *)cfg + o->offset) ==
                CONFIG_GRACE_ONE_LEASE)
            continue;
        int64_t v = opt_get(cfg, o);
        if (v < o->min || v > o->max) {
            if (o->kind == OPT_FSYNC)
                FAIL(path, "", "%s: must be \"always\", \"interval\" or \"off\"", path);
            if (o->kind == OPT_MODE)
                FAIL(path, "", "%s: must be an octal mode 0000..0777", path);
            if (o->kind == OPT_DURATION || o->kind == OPT_GRACE) {
                duration_rule(o, rule, sizeof(rule));
                FAIL(path, "", "%s: %s", path, rule);
            }
            FAIL(path, "", "%s: must be %" PRId64 "..%" PRId64, path, o->min, o->max);
        }
    }
    return 0;
}

/* Every rule, checked on a whole configuration. On failure err is "option: why" and
 * where[0..1] name the options a file location should point at ("" when unused). */
static int check_config(const struct dnsd_config *cfg, char *err, size_t err_len, char where[2][64])
{
    char name[256];
    where[0][0] = where[1][0] = '\0';

    if (config_normalize_domain(cfg->domain, name, sizeof(name)) < 0 ||
        strcmp(name, cfg->domain) != 0)
        FAIL("domain", "", "domain: '%s' is not a normalised domain name", cfg->domain);
    /* The derived SOA names must still be domain names (253 bytes, RFC 1035 §2.3.4). */
    size_t dlen = strlen(cfg->domain) - 1;
    if (cfg->ns_name[0] == '\0' && strlen("ns.") + dlen > 253)
        FAIL("domain", "", "domain: too long for the default soa.ns_name 'ns.%s'; set soa.ns_name",
             cfg->domain);
    if (cfg->rname[0] == '\0' && strlen("hostmaster.") + dlen > 253)
        FAIL("domain", "",
             "domain: too long for the default soa.rname 'hostmaster.%s'; set soa.rname",
             cfg->domain);
    if (cfg->zones_dir[0] == '\0')
        FAIL("zones_dir", "", "zones_dir: must not be empty");
    if (cfg->n_listen < 1 || cfg->n_listen > CONFIG_MAX_LISTEN)
        FAIL("listen", "", "listen: must name 1..%d addresses", CONFIG_MAX_LISTEN);
    if (cfg->n_api < 1 || cfg->n_api > CONFIG_MAX_API)
        FAIL("api", "", "api: must name 1..%d endpoints", CONFIG_MAX_API);
    if (cfg->log_level < LOG_LEVEL_ERROR || cfg->log_level > LOG_LEVEL_DEBUG)
        FAIL("log_level", "", "log_level: must be error, warn, info or debug");
    if (cfg->log_format != LOG_FORMAT_TEXT && cfg->log_format != LOG_FORMAT_JSON)
        FAIL("log_format", "", "log_format: must be text or json");
    if (cfg->user[0] == '\0')
        FAIL("user", "",
             "user: must not be empty: name the unprivileged user dnsd runs as after binding "
             "(\"root\" keeps running as root)");
    if (cfg->n_allowed_addresses < 1 || cfg->n_allowed_addresses > CONFIG_MAX_ALLOWED_ADDRESSES)
        FAIL("allowed_addresses", "", "allowed_addresses: must name 1..%d networks",
             CONFIG_MAX_ALLOWED_ADDRESSES);
    for (size_t i = 0; i < cfg->n_api && i < CONFIG_MAX_API; i++) {
        const struct config_api *a = &cfg->api[i];
        if (a->kind != CONFIG_API_TCP)
            continue;
        /* Only a Unix socket has file permissions to guard it. */
        if (cfg->n_tokens == 0)
            FAIL("api", "",
                 "api: tcp:%s:%u needs at least one entry in 'tokens': every request "
                 "on a TCP endpoint must carry Authorization: Bearer TOKEN",
                 a->host, a->port);
        /* Bearer tokens must not cross a network in clear text unless explicitly allowed. */
        if (!config_api_is_loopback(a) && cfg->api_tls_cert[0] == '\0' && !cfg->api_allow_plain_tcp)
            FAIL("api", "api_options.allow_plain_tcp",
                 "api: tcp:%s:%u is not a loopback address: set api_options.tls_cert and "
                 "api_options.tls_key to serve HTTPS there, or api_options.allow_plain_tcp = "
                 "true to serve plain HTTP (tokens and registrations then cross the network "
                 "unencrypted)",
                 a->host, a->port);
    }
    if ((cfg->api_tls_cert[0] == '\0') != (cfg->api_tls_key[0] == '\0'))
        FAIL(cfg->api_tls_cert[0] ? "api_options.tls_cert" : "api_options.tls_key", "",
             "api_options.%s: set without api_options.%s; TLS needs both the certificate and "
             "its private key",
             cfg->api_tls_cert[0] ? "tls_cert" : "tls_key",
             cfg->api_tls_cert[0] ? "tls_key" : "tls_cert");

    for (size_t g = 0; g < N_GROUPS; g++) {
        int rc = check_opts(cfg, groups[g].name, groups[g].opts, err, err_len, where);
        if (rc < 0)
            return rc;
    }
    /* A floor above the cap would make dns.ttl meaningless. */
    if (cfg->dns_min_ttl > cfg->dns_ttl)
        FAIL("dns.min_ttl", "dns.ttl", "dns.min_ttl: %" PRIu32 " is above dns.ttl (%" PRIu32 ")",
             cfg->dns_min_ttl, cfg->dns_ttl);

    if (cfg->lease_min_s > cfg->lease_max_s)
        FAIL("lease.min", "lease.max", "lease.min: %" PRIu32 " is above lease.max (%" PRIu32 ")",
             cfg->lease_min_s, cfg->lease_max_s);
    if (cfg->lease_default_s < cfg->lease_min_s)
        FAIL("lease.default", "lease.min",
             "lease.default: %" PRIu32 " is below lease.min (%" PRIu32 ")", cfg->lease_default_s,
             cfg->lease_min_s);
    if (cfg->lease_default_s > cfg->lease_max_s)
        FAIL("lease.default", "lease.max",
             "lease.default: %" PRIu32 " is above lease.max (%" PRIu32 ")", cfg->lease_default_s,
             cfg->lease_max_s);
    return 0;
}
#undef FAIL

int config_validate(const struct dnsd_config *cfg, char *err, size_t err_len)
{
    char where[2][64];
    char buf[CONFIG_ERR_LEN];
    int rc = check_config(cfg, buf, sizeof(buf), where);
    if (rc < 0 && err && err_len > 0)
        snprintf(err, err_len, "%s", buf);
    return rc;
}

/* ---- the file ----------------------------------------------------------------------------- */

struct loader {
    const char *path; /* borrowed from the caller */
    char *err;        /* borrowed from the caller; may be NULL */
    size_t err_len;
};

/* Report "file:line: message" for setting s (or just "file: message" when s is NULL). */
__attribute__((format(printf, 3, 4))) static int fail(struct loader *ld, const config_setting_t *s,
                                                      const char *fmt, ...)
{
    char msg[CONFIG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!ld->err || ld->err_len == 0)
        return DNSD_EINVAL;

    const char *file =
        s && config_setting_source_file(s) ? config_setting_source_file(s) : ld->path;
    unsigned line = 0;
    /* List elements and group members may carry no line of their own; use the parent's. */
    for (const config_setting_t *p = s; p && line == 0; p = config_setting_parent(p))
        line = config_setting_source_line(p);
    if (line > 0)
        snprintf(ld->err, ld->err_len, "%s:%u: %s", file, line, msg);
    else
        snprintf(ld->err, ld->err_len, "%s: %s", file, msg);
    return DNSD_EINVAL;
}

static int get_string(struct loader *ld, const config_setting_t *s, const char *path,
                      const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(ld, s, "%s: must be a string", path);
    *out = config_setting_get_string(s);
    return 0;
}

static int load_int(struct loader *ld, const config_setting_t *s, const char *path,
                    const struct opt *o, struct dnsd_config *cfg)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return fail(ld, s, "%s: must be an integer", path);
    /* Range check on the 64-bit value before narrowing into the field. */
    long long v = config_setting_get_int64(s);
    if (v < o->min || v > o->max)
        return fail(ld, s, "%s: must be %" PRId64 "..%" PRId64, path, o->min, o->max);
    opt_set(cfg, o, v);
    return 0;
}

static int load_group(struct loader *ld, const config_setting_t *grp, const char *prefix,
                      const struct opt *opts, struct dnsd_config *cfg);

static int check_string_list(struct loader *ld, const config_setting_t *s, const char *name,
                             size_t max);

/* A list of networks ("ADDR/PREFIX" or "ADDR") at path into nets[0..max): checked whole,
 * then it replaces the previous list (the rest zeroed, as the defaults are); [ ] empties it
 * unless non_empty. The one loader of forward.allow, dns.rrl.exempt and allowed_addresses. */
static int load_net_list(struct loader *ld, const config_setting_t *s, const char *path,
                         bool non_empty, struct netlist_net *nets, size_t max, size_t *n_out)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return fail(ld, s, "%s: must be a list of strings such as [ \"10.0.0.0/8\" ]", path);
    int n = config_setting_length(s);
    int rc = n > 0 || non_empty ? check_string_list(ld, s, path, max) : 0;
    if (rc < 0)
        return rc;
    struct netlist_net net;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *text = config_setting_get_string(e);
        if (netlist_parse(text, &net) < 0)
            return fail(ld, e,
                        "%s[%d]: '%s': not ADDR/PREFIX or ADDR (numeric IPv4 or IPv6, no host "
                        "bits set past the prefix)",
                        path, i, text);
    }
    memset(nets, 0, sizeof(*nets) * max);
    for (int i = 0; i < n; i++)
        (void)netlist_parse(config_setting_get_string(config_setting_get_elem(s, (unsigned)i)),
                            &nets[i]);
    *n_out = (size_t)n;
    return 0;
}

/* An OPT_NETS option. */
static int load_nets(struct loader *ld, const config_setting_t *s, const char *path,
                     const struct opt *o, struct dnsd_config *cfg)
{
    return load_net_list(ld, s, path, false,
                         (struct netlist_net *)(void *)((char *)cfg + o->offset), (size_t)o->max,
                         (size_t *)(void *)((char *)cfg + o->count));
}

static int load_option(struct loader *ld, const config_setting_t *s, const char *path,
                       const struct opt *o, struct dnsd_config *cfg)
{
    const char *text = "";
    int rc;
    char *field = (char *)cfg + o->offset;
    char rule[128];

    switch (o->kind) {
    case OPT_GROUP:
        return load_group(ld, s, path, o->sub, cfg);
    case OPT_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return fail(ld, s, "%s: must be true or false", path);
        opt_set(cfg, o, config_setting_get_bool(s));
        return 0;
    case OPT_FSYNC:
        if ((rc = get_string(ld, s, path, &text)) < 0)
            return rc;
        for (int64_t v = o->min; v <= o->max; v++) {
            if (strcmp(text, config_fsync_name((enum config_fsync)v)) == 0) {
                opt_set(cfg, o, v);
                return 0;
            }
        }
        return fail(ld, s, "%s: '%s': must be \"always\", \"interval\" or \"off\"", path, text);
    case OPT_GRACE:
    case OPT_DURATION: {
        uint64_t ms = 0;
        duration_rule(o, rule, sizeof(rule));
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return fail(ld, s, "%s: %s", path, rule);
        text = config_setting_get_string(s);
        if (o->kind == OPT_GRACE && text[0] == '\0') {
            opt_set(cfg, o, (int64_t)CONFIG_GRACE_ONE_LEASE);
            return 0;
        }
        if (dnsd_duration_parse(text, &ms) != 0 || ms < (uint64_t)o->min || ms > (uint64_t)o->max)
            return fail(ld, s, "%s: '%s': %s", path, text, rule);
        opt_set(cfg, o, (int64_t)ms);
        return 0;
    }
    case OPT_SHARE: {
        /* A float; the integer 1 (all instances) is accepted too. */
        int type = config_setting_type(s);
        double v;
        if (type == CONFIG_TYPE_FLOAT)
            v = config_setting_get_float(s);
        else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
            v = (double)config_setting_get_int64(s);
        else
            return fail(ld, s, "%s: must be a number such as 0.5", path);
        if (!is_share(v))
            return fail(ld, s, "%s: must be a number above 0 and at most 1", path);
        *(double *)(void *)field = v;
        return 0;
    }
    case OPT_NAME: {
        if ((rc = get_string(ld, s, path, &text)) < 0)
            return rc;
        if (text[0] == '\0') {
            memset(field, 0, 256);
            return 0;
        }
        char name[256];
        if (config_normalize_domain(text, name, sizeof(name)) < 0)
            return fail(ld, s, "%s: '%s' is not a valid domain name", path, text);
        set_string(field, 256, name);
        return 0;
    }
    case OPT_NETS:
        return load_nets(ld, s, path, o, cfg);
    case OPT_STRING:
        if ((rc = get_string(ld, s, path, &text)) < 0)
            return rc;
        if (strlen(text) >= (size_t)o->max)
            return fail(ld, s, "%s: longer than %" PRId64 " bytes", path, o->max - 1);
        set_string(field, (size_t)o->max, text);
        return 0;
    case OPT_MODE: {
        /* libconfig has no octal integers (0660 would read as 660), hence a string. */
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return fail(ld, s, "%s: must be an octal string such as \"0660\"", path);
        text = config_setting_get_string(s);
        size_t n = strspn(text, "01234567");
        if (n == 0 || text[n] != '\0' || n > 4 || strtoul(text, NULL, 8) > 0777)
            return fail(ld, s, "%s: must be an octal mode 0000..0777", path);
        opt_set(cfg, o, (int64_t)strtoul(text, NULL, 8));
        return 0;
    }
    default:
        return load_int(ld, s, path, o, cfg);
    }
}

static int load_group(struct loader *ld, const config_setting_t *grp, const char *prefix,
                      const struct opt *opts, struct dnsd_config *cfg)
{
    if (config_setting_type(grp) != CONFIG_TYPE_GROUP)
        return fail(ld, grp, "%s: must be a group { ... }", prefix);
    for (int i = 0; i < config_setting_length(grp); i++) {
        const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
        const char *name = config_setting_name(s);
        char path[128];
        snprintf(path, sizeof(path), "%s.%s", prefix, name);
        const struct opt *o = opts;
        while (o->name && strcmp(o->name, name) != 0)
            o++;
        if (!o->name)
            return fail(ld, s, "unknown option '%s'", path);
        int rc = load_option(ld, s, path, o, cfg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A list of strings ("listen", "api"): array [ ] or list ( ). */
static int check_string_list(struct loader *ld, const config_setting_t *s, const char *name,
                             size_t max)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return fail(ld, s, "%s: must be a list of strings such as [ \"...\" ]", name);
    int n = config_setting_length(s);
    if (n == 0)
        return fail(ld, s, "%s: must not be empty", name);
    if ((size_t)n > max)
        return fail(ld, s, "%s: at most %zu entries", name, max);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return fail(ld, e, "%s[%d]: must be a string", name, i);
    }
    return 0;
}

static int load_listen(struct loader *ld, const config_setting_t *s, struct dnsd_config *cfg)
{
    int rc = check_string_list(ld, s, "listen", CONFIG_MAX_LISTEN);
    if (rc < 0)
        return rc;
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *text = config_setting_get_string(e);
        const char *why;
        if (parse_listen(text, &cfg->listen[i], &why) < 0)
            return fail(ld, e, "listen[%d]: '%s': %s", i, text, why);
    }
    memset(&cfg->listen[n], 0, sizeof(cfg->listen[0]) * (CONFIG_MAX_LISTEN - (size_t)n));
    cfg->n_listen = (size_t)n;
    return 0;
}

static int load_api(struct loader *ld, const config_setting_t *s, struct dnsd_config *cfg)
{
    int rc = check_string_list(ld, s, "api", CONFIG_MAX_API);
    if (rc < 0)
        return rc;
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *text = config_setting_get_string(e);
        const char *why;
        if (parse_api(text, &cfg->api[i], &why) < 0)
            return fail(ld, e, "api[%d]: '%s': %s", i, text, why);
    }
    memset(&cfg->api[n], 0, sizeof(cfg->api[0]) * (CONFIG_MAX_API - (size_t)n));
    cfg->n_api = (size_t)n;
    return 0;
}

/* One string member of a tokens entry: 1..max bytes of printable ASCII without blanks. */
static int token_string(struct loader *ld, const config_setting_t *e, int i, const char *member,
                        size_t min, size_t max, const char **out)
{
    const config_setting_t *s = config_setting_get_member(e, member);
    if (s == NULL)
        return fail(ld, e, "tokens[%d]: '%s' is missing", i, member);
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(ld, s, "tokens[%d].%s: must be a string", i, member);
    const char *text = config_setting_get_string(s);
    size_t n = strlen(text);
    for (size_t k = 0; k < n; k++) {
        if (text[k] <= ' ' || text[k] > '~')
            return fail(ld, s, "tokens[%d].%s: only printable ASCII without blanks", i, member);
    }
    if (n < min || n > max)
        return fail(ld, s, "tokens[%d].%s: must be %zu..%zu bytes", i, member, min, max);
    *out = text;
    return 0;
}

/* tokens = ( { name = "deploy"; token = "..."; scope = "write"; services = "web*"; }, ... ) */
static int load_tokens(struct loader *ld, const config_setting_t *s, struct dnsd_config *cfg)
{
    static const char *const scopes[] = {"", "read", "write", "admin"};
    if (config_setting_type(s) != CONFIG_TYPE_LIST)
        return fail(ld, s, "tokens: must be a list ( { name = ...; token = ...; scope = ...; } )");
    int n = config_setting_length(s);
    if (n > CONFIG_MAX_TOKENS)
        return fail(ld, s, "tokens: at most %d entries", CONFIG_MAX_TOKENS);
    memset(cfg->tokens, 0, sizeof(cfg->tokens));
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct config_token *t = &cfg->tokens[i];
        const char *name, *token, *scope, *services = "*";
        int rc;
        if (config_setting_type(e) != CONFIG_TYPE_GROUP)
            return fail(ld, e, "tokens[%d]: must be a group { ... }", i);
        for (int m = 0; m < config_setting_length(e); m++) {
            const char *member = config_setting_name(config_setting_get_elem(e, (unsigned)m));
            if (strcmp(member, "name") != 0 && strcmp(member, "token") != 0 &&
                strcmp(member, "scope") != 0 && strcmp(member, "services") != 0)
                return fail(ld, config_setting_get_elem(e, (unsigned)m),
                            "unknown option 'tokens[%d].%s'", i, member);
        }
        if ((rc = token_string(ld, e, i, "name", 1, sizeof(t->name) - 1, &name)) < 0 ||
            (rc = token_string(ld, e, i, "token", CONFIG_TOKEN_MIN_LEN, CONFIG_TOKEN_MAX_LEN,
                               &token)) < 0 ||
            (rc = token_string(ld, e, i, "scope", 1, 5, &scope)) < 0)
            return rc;
        if (config_setting_get_member(e, "services") &&
            (rc = token_string(ld, e, i, "services", 1, sizeof(t->services) - 1, &services)) < 0)
            return rc;
        for (int k = CONFIG_SCOPE_READ; k <= CONFIG_SCOPE_ADMIN; k++) {
            if (strcmp(scope, scopes[k]) == 0)
                t->scope = (enum config_scope)k;
        }
        if (t->scope == 0)
            return fail(ld, e, "tokens[%d].scope: '%s': must be \"read\", \"write\" or \"admin\"",
                        i, scope);
        for (int k = 0; k < i; k++) {
            if (strcmp(cfg->tokens[k].name, name) == 0)
                return fail(ld, e, "tokens[%d].name: '%s' is used twice", i, name);
            if (strcmp(cfg->tokens[k].token, token) == 0)
                return fail(ld, e, "tokens[%d].token: the same token as tokens[%d]", i, k);
        }
        set_string(t->name, sizeof(t->name), name);
        set_string(t->token, sizeof(t->token), token);
        set_string(t->services, sizeof(t->services), services);
    }
    cfg->n_tokens = (size_t)n;
    return 0;
}

/* A file path option: non-empty unless allow_empty, shorter than 4096 bytes. */
static int load_path(struct loader *ld, const config_setting_t *s, const char *name,
                     bool allow_empty, char *dst)
{
    const char *text = "";
    int rc = get_string(ld, s, name, &text);
    if (rc < 0)
        return rc;
    if (!allow_empty && text[0] == '\0')
        return fail(ld, s, "%s: must not be empty", name);
    if (strlen(text) >= 4096)
        return fail(ld, s, "%s: longer than 4095 bytes", name);
    set_string(dst, 4096, text);
    return 0;
}

/* user / group: a name or a number, shorter than 64 bytes; user must not be empty. */
static int load_account(struct loader *ld, const config_setting_t *s, const char *name,
                        char dst[64])
{
    const char *text = "";
    int rc = get_string(ld, s, name, &text);
    if (rc < 0)
        return rc;
    if (name[0] == 'u' && text[0] == '\0')
        return fail(ld, s,
                    "user: must not be empty: name the unprivileged user dnsd runs as after "
                    "binding (\"root\" keeps running as root)");
    if (strlen(text) >= 64)
        return fail(ld, s, "%s: longer than 63 bytes", name);
    set_string(dst, 64, text);
    return 0;
}

/* forwarders = [ "ADDR[:PORT]", ... ]: replaces the list; [ ] turns forwarding off. */
static int load_forwarders(struct loader *ld, const config_setting_t *s, struct dnsd_config *cfg)
{
    struct forward_config *fc = &cfg->forward;
    int n = config_setting_length(s);
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return fail(ld, s, "forwarders: must be a list of strings such as [ \"...\" ]");
    int rc = n > 0 ? check_string_list(ld, s, "forwarders", FORWARD_MAX_SERVERS) : 0;
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *text = config_setting_get_string(e);
        if (forward_parse_server(text, &fc->servers[i]) < 0)
            return fail(ld, e, "forwarders[%d]: '%s': not ADDR[:PORT] or [ADDR]:PORT", i, text);
    }
    fc->n_servers = (size_t)n;
    return 0;
}

/* forward { strategy; timeout_ms; retries; allow; } */
static int load_forward(struct loader *ld, const config_setting_t *grp, struct dnsd_config *cfg)
{
    struct forward_config *fc = &cfg->forward;
    if (config_setting_type(grp) != CONFIG_TYPE_GROUP)
        return fail(ld, grp, "forward: must be a group { ... }");
    for (int i = 0; i < config_setting_length(grp); i++) {
        const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
        const char *name = config_setting_name(s);
        const char *text = "";
        int rc;
        if (strcmp(name, "strategy") == 0) {
            if ((rc = get_string(ld, s, "forward.strategy", &text)) < 0)
                return rc;
            if (strcmp(text, "sequential") == 0)
                fc->strategy = FORWARD_SEQUENTIAL;
            else if (strcmp(text, "random") == 0)
                fc->strategy = FORWARD_RANDOM;
            else
                return fail(ld, s, "forward.strategy: must be \"sequential\" or \"random\"");
        } else if (strcmp(name, "timeout_ms") == 0 || strcmp(name, "retries") == 0) {
            bool timeout = name[0] == 't';
            long long lo = timeout ? 1 : 0, hi = timeout ? 60000 : 10;
            int type = config_setting_type(s);
            long long v = config_setting_get_int64(s);
            if ((type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) || v < lo || v > hi)
                return fail(ld, s, "forward.%s: must be an integer %lld..%lld", name, lo, hi);
            *(timeout ? &fc->timeout_ms : &fc->retries) = (uint32_t)v;
        } else if (strcmp(name, "allow") == 0) {
            if ((rc = load_net_list(ld, s, "forward.allow", false, fc->allow, FORWARD_MAX_ALLOW,
                                    &fc->n_allow)) < 0)
                return rc;
        } else {
            return fail(ld, s, "unknown option 'forward.%s'", name);
        }
    }
    return 0;
}

static int load_root_setting(struct loader *ld, const config_setting_t *s, struct dnsd_config *cfg)
{
    const char *name = config_setting_name(s);
    const char *text = "";
    int rc;

    for (size_t g = 0; g < N_GROUPS; g++) {
        if (strcmp(name, groups[g].name) == 0)
            return load_group(ld, s, groups[g].name, groups[g].opts, cfg);
    }
    if (strcmp(name, "domain") == 0) {
        if ((rc = get_string(ld, s, name, &text)) < 0)
            return rc;
        char dom[256];
        if (config_normalize_domain(text, dom, sizeof(dom)) < 0)
            return fail(ld, s,
                        "domain: '%s' is not a valid domain name (labels of letters, digits, "
                        "'-' or '_', 1..63 bytes, 253 in all)",
                        text);
        set_string(cfg->domain, sizeof(cfg->domain), dom);
        return 0;
    }
    if (strcmp(name, "zones_dir") == 0) {
        if ((rc = load_path(ld, s, name, false, cfg->zones_dir)) < 0)
            return rc;
        cfg->zones_dir_set = true;
        return 0;
    }
    if (strcmp(name, "pid_file") == 0)
        return load_path(ld, s, name, true, cfg->pid_file);
    if (strcmp(name, "data_dir") == 0)
        return load_path(ld, s, name, true, cfg->data_dir);
    if (strcmp(name, "user") == 0 || strcmp(name, "group") == 0)
        return load_account(ld, s, name, name[0] == 'u' ? cfg->user : cfg->group);
    if (strcmp(name, "allowed_addresses") == 0)
        return load_net_list(ld, s, "allowed_addresses", true, cfg->allowed_addresses,
                             CONFIG_MAX_ALLOWED_ADDRESSES, &cfg->n_allowed_addresses);
    if (strcmp(name, "log_level") == 0) {
        if ((rc = get_string(ld, s, name, &text)) < 0)
            return rc;
        if (log_parse_level(text, &cfg->log_level) < 0)
            return fail(ld, s, "log_level: '%s' is not error, warn, info or debug", text);
        return 0;
    }
    if (strcmp(name, "log_format") == 0) {
        if ((rc = get_string(ld, s, name, &text)) < 0)
            return rc;
        if (log_parse_format(text, &cfg->log_format) < 0)
            return fail(ld, s, "log_format: '%s' is not text or json", text);
        return 0;
    }
    if (strcmp(name, "listen") == 0)
        return load_listen(ld, s, cfg);
    if (strcmp(name, "api") == 0)
        return load_api(ld, s, cfg);
    if (strcmp(name, "tokens") == 0)
        return load_tokens(ld, s, cfg);
    if (strcmp(name, "forwarders") == 0)
        return load_forwarders(ld, s, cfg);
    if (strcmp(name, "forward") == 0)
        return load_forward(ld, s, cfg);
    return fail(ld, s, "unknown option '%s'", name);
}

/* Does the (syntactically valid) file hold an integer literal without the L suffix that
 * does not fit in 32 bits? libconfig 1.5 reads such literals with atoi() and silently
 * wraps them (99999999999 becomes 1215752191), so they must be caught here. On a hit,
 * *line, lit and path (the innermost setting name, dotted) describe it. */
static bool find_wrapped_int(FILE *fp, unsigned *line, char *lit, size_t lit_len, char *path,
                             size_t path_len)
{
    char names[8][64] = {{0}};
    char ident[64] = "";
    int depth = 0;
    unsigned ln = 1;
    int c;

    while ((c = getc(fp)) != EOF) {
        if (c == '\n') {
            ln++;
        } else if (c == '#') {
            while ((c = getc(fp)) != EOF && c != '\n')
                ;
            ln++;
        } else if (c == '/') {
            int d = getc(fp);
            if (d == '/') {
                while ((c = getc(fp)) != EOF && c != '\n')
                    ;
                ln++;
            } else if (d == '*') {
                int prev = 0;
                while ((c = getc(fp)) != EOF && !(prev == '*' && c == '/')) {
                    ln += c == '\n';
                    prev = c;
                }
            } else if (d != EOF) {
                ungetc(d, fp);
            }
        } else if (c == '"') {
            while ((c = getc(fp)) != EOF && c != '"') {
                ln += c == '\n';
                if (c == '\\' && (c = getc(fp)) == '\n')
                    ln++;
            }
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*' || c == '@') {
            size_t n = 0;
            do {
                if (n + 1 < sizeof(ident))
                    ident[n++] = (char)c;
                c = getc(fp);
            } while (c != EOF && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*'));
            ident[n] = '\0';
            if (c != EOF)
                ungetc(c, fp);
        } else if (c == '{') {
            if (depth < 8)
                snprintf(names[depth], sizeof(names[depth]), "%s", ident);
            depth++;
        } else if (c == '}') {
            depth -= depth > 0;
        } else if ((c >= '0' && c <= '9') || c == '-' || c == '+') {
            char tok[64];
            size_t n = 0;
            bool hex = false, fl = false, too_long = false;
            do {
                if (n + 1 < sizeof(tok))
                    tok[n++] = (char)c;
                else
                    too_long = true;
                if (c == 'x' || c == 'X')
                    hex = true;
                if (c == '.' || (!hex && (c == 'e' || c == 'E')))
                    fl = true;
                int prev = c;
                c = getc(fp);
                /* A sign continues a token only as a float exponent's sign. */
                if ((c == '-' || c == '+') && !(fl || (!hex && (prev == 'e' || prev == 'E'))))
                    break;
            } while (c != EOF && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                  (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '+'));
            tok[n] = '\0';
            if (c != EOF)
                ungetc(c, fp);
            if (fl || tok[n - 1] == 'L' || (n == 1 && (tok[0] == '-' || tok[0] == '+')))
                continue;
            errno = 0;
            long long v = strtoll(tok, NULL, hex ? 16 : 10);
            if (too_long || errno == ERANGE || v > INT32_MAX || v < INT32_MIN) {
                /* Deep groups with long names may not fit: the path is then cut, and off
                 * never passes the buffer (snprintf returns what it would have written). */
                size_t off = 0;
                path[0] = '\0';
                for (int i = 0; i < depth && i < 8 && off + 1 < path_len; i++) {
                    int w = snprintf(path + off, path_len - off, "%s.", names[i]);
                    off = w < 0 || (size_t)w >= path_len - off ? path_len - 1 : off + (size_t)w;
                }
                snprintf(path + off, path_len - off, "%s", ident);
                snprintf(lit, lit_len, "%s", tok);
                *line = ln;
                return true;
            }
        }
    }
    return false;
}

int config_load_file(const char *path, struct dnsd_config *cfg, char *err, size_t err_len)
{
    struct loader ld = {.path = path, .err = err, .err_len = err_len};
    struct dnsd_config copy;
    config_t lc;
    struct stat st;
    int rc;

    /* Open it ourselves first: libconfig reports only "file I/O error" without the cause. */
    FILE *fp = fopen(path, "r");
    if (!fp || fstat(fileno(fp), &st) < 0 || S_ISDIR(st.st_mode)) {
        int e = !fp ? errno : S_ISDIR(st.st_mode) ? EISDIR : errno;
        if (err && err_len > 0)
            snprintf(err, err_len, "%s: %s", path, strerror(e));
        if (fp)
            fclose(fp);
        return DNSD_ENOENT;
    }

    config_init(&lc);
    if (!config_read_file(&lc, path)) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
            if (err && err_len > 0)
                snprintf(err, err_len, "%s: cannot be read", path);
            rc = DNSD_ENOENT;
        } else {
            const char *file = config_error_file(&lc) ? config_error_file(&lc) : path;
            if (err && err_len > 0)
                snprintf(err, err_len, "%s:%d: %s", file, config_error_line(&lc),
                         config_error_text(&lc));
            rc = DNSD_EPARSE;
        }
        goto out;
    }

    char lit[64], opt[128];
    unsigned line;
    if (find_wrapped_int(fp, &line, lit, sizeof(lit), opt, sizeof(opt))) {
        if (err && err_len > 0)
            snprintf(err, err_len, "%s:%u: %s: integer %s does not fit in 32 bits", path, line, opt,
                     lit);
        rc = DNSD_EINVAL;
        goto out;
    }

    /* Work on a copy so that cfg is untouched unless the whole file is good. */
    memcpy(&copy, cfg, sizeof(copy));
    const config_setting_t *root = config_root_setting(&lc);
    for (int i = 0; i < config_setting_length(root); i++) {
        rc = load_root_setting(&ld, config_setting_get_elem(root, (unsigned)i), &copy);
        if (rc < 0)
            goto out;
    }

    char why[CONFIG_ERR_LEN];
    char where[2][64];
    rc = check_config(&copy, why, sizeof(why), where);
    if (rc < 0) {
        /* Point at whichever of the options involved the file sets. */
        const config_setting_t *s = NULL;
        for (int i = 0; i < 2 && !s && where[i][0]; i++)
            s = config_lookup(&lc, where[i]);
        fail(&ld, s, "%s", why);
        goto out;
    }
    memcpy(cfg, &copy, sizeof(copy));
    rc = 0;
out:
    config_destroy(&lc);
    fclose(fp);
    return rc;
}
