/* SPDX-License-Identifier: BSD-2-Clause
 * dnsd's configuration: defaults, the libconfig file (the only place libconfig.h is
 * included) and the textual endpoint forms shared with the command line. Every value is
 * copied into struct dnsd_config; nothing here keeps the file open or reads globals.
 * Loop: main thread at start-up. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward.h"
#include "log.h"
#include "netlist.h"
#include "rrl.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_API 4
#define CONFIG_ERR_LEN 512
#define CONFIG_MAX_ALLOWED_ADDRESSES 64
/* persistence.restart_grace "" (the default): each restored instance gets one lease. */
#define CONFIG_GRACE_ONE_LEASE UINT64_MAX

/* persistence.fsync: when an acknowledged change is on disk. */
enum config_fsync {
    CONFIG_FSYNC_ALWAYS = 0,   /* before the API answers (group commit) */
    CONFIG_FSYNC_INTERVAL = 1, /* every fsync_interval: at most that much is at risk */
    CONFIG_FSYNC_OFF = 2,      /* written at once, synced when the kernel pleases */
};

/* A DNS listening address: "ADDR:PORT" or "[ADDR]:PORT" (IPv6). */
struct config_listen {
    int family;    /* AF_INET or AF_INET6 */
    char host[64]; /* numeric address, without brackets */
    uint16_t port; /* 0 = let the kernel choose (tests) */
};

enum config_api_kind {
    CONFIG_API_UNIX,
    CONFIG_API_TCP,
};

/* A registration API endpoint: "unix:PATH" or "tcp:ADDR:PORT" / "tcp:[ADDR]:PORT". */
struct config_api {
    enum config_api_kind kind;
    char path[108]; /* CONFIG_API_UNIX: socket path (sun_path size) */
    int family;     /* CONFIG_API_TCP */
    char host[64];  /* CONFIG_API_TCP */
    uint16_t port;  /* CONFIG_API_TCP */
};

/* tokens ( { name; token; scope; services; } ): who may use a TCP API endpoint. */
#define CONFIG_MAX_TOKENS 32
#define CONFIG_TOKEN_MAX_LEN 255 /* bytes of a token; at least CONFIG_TOKEN_MIN_LEN */
#define CONFIG_TOKEN_MIN_LEN 16

enum config_scope {
    CONFIG_SCOPE_READ = 1,  /* GET and HEAD only (also /metrics and /v1/health) */
    CONFIG_SCOPE_WRITE = 2, /* read, and writes on services matching the glob */
    CONFIG_SCOPE_ADMIN = 3, /* everything, /v1/snapshot included */
};

struct config_token {
    char name[64];                        /* for logs; never the token itself */
    char token[CONFIG_TOKEN_MAX_LEN + 1]; /* zero-padded: compared in constant time */
    enum config_scope scope;
    char services[256]; /* fnmatch(3) glob of service names a write token may change */
};

struct dnsd_config {
    char domain[256]; /* service domain: absolute, lower-case, e.g. "service.internal." */
    char zones_dir[4096];
    bool zones_dir_set; /* false: the default directory, which may be missing */
    struct config_listen listen[CONFIG_MAX_LISTEN];
    size_t n_listen;
    struct config_api api[CONFIG_MAX_API];
    size_t n_api;
    enum log_level log_level;
    enum log_format log_format; /* "text" or "json" lines */
    /* query_log { }: one info line per sampled answered query */
    bool query_log_enabled;
    uint32_t query_log_sample;     /* 1 in this many queries is logged */
    char pid_file[4096];           /* "" = none */
    struct forward_config forward; /* forwarders [ ] and forward { }; no servers: REFUSED */
    /* user / group: who dnsd runs as after binding when started as root */
    char user[64];  /* a name or a numeric uid; "root" keeps running as root */
    char group[64]; /* a name or a numeric gid; "" = the user's primary group */
    /* allowed_addresses [ ]: the networks a registration may claim addresses in */
    struct netlist_net allowed_addresses[CONFIG_MAX_ALLOWED_ADDRESSES];
    size_t n_allowed_addresses;

    /* dns { } */
    uint32_t dns_ttl;      /* answer TTL cap for registry records, seconds */
    uint32_t dns_min_ttl;  /* answer TTL floor for registry records, seconds (<= dns_ttl) */
    uint16_t udp_max_size; /* EDNS UDP payload limit we honour (RFC 6891 §6.2.5) */
    uint32_t tcp_idle_timeout_ms;
    uint32_t tcp_max_connections;
    uint32_t tcp_max_connection_ms; /* total lifetime of a TCP connection */
    uint32_t udp_rcvbuf;            /* SO_RCVBUF asked for, bytes; 0 = system default */
    uint32_t dns_workers;           /* threads answering UDP, main loop included; 0 = cores */
    struct rrl_config rrl;          /* dns { rrl { } }: response rate limiting of UDP */

    /* soa { } : the synthesised apex of the service domain */
    char ns_name[256]; /* "" = "ns." + domain */
    char rname[256];   /* "" = "hostmaster." + domain */
    uint32_t soa_refresh, soa_retry, soa_expire, soa_minimum, soa_ttl;

    /* api_options { } */
    uint32_t api_socket_mode; /* file mode of Unix sockets, e.g. 0660 */
    size_t api_max_body;      /* request body limit, bytes */
    uint32_t api_max_connections;
    uint32_t api_timeout_s; /* idle connection timeout */
    size_t api_max_header;  /* per-connection memory for the request line, headers and
                               buffers (MHD_OPTION_CONNECTION_MEMORY_LIMIT), bytes */

    /* api_options.allow_plain_tcp: plain HTTP on a non-loopback TCP address without TLS */
    bool api_allow_plain_tcp;
    /* api_options.tls_cert / tls_key: PEM files; both set = TCP endpoints serve HTTPS only,
     * both "" = plain HTTP */
    char api_tls_cert[4096];
    char api_tls_key[4096];
    /* api_options.socket_group: group of the Unix socket files, a name or a numeric gid;
     * "" = the process's group */
    char api_socket_group[64];
    /* tokens ( ) */
    struct config_token tokens[CONFIG_MAX_TOKENS];
    size_t n_tokens;

    /* limits { } : registry capacity */
    uint32_t limits_max_instances;             /* instances in all */
    uint32_t limits_max_instances_per_service; /* instances of one service */
    uint32_t limits_max_meta_bytes;            /* sum of "key=value" bytes of one instance's meta */

    /* lease { } */
    uint32_t lease_default_s; /* when a registration names no ttl */
    uint32_t lease_min_s;     /* granted leases are clamped to [min, max] */
    uint32_t lease_max_s;

    /* health { } */
    bool health_only_passing;            /* DNS answers passing instances only, not warning */
    uint64_t health_deregister_after_ms; /* default deregister_after; 0 = never */
    /* health { self_preservation { } } */
    bool preservation_enabled;
    double preservation_threshold;       /* share of instances lapsing: 0 < t <= 1 */
    uint32_t preservation_min_instances; /* fewer instances never enter self-preservation */
    uint64_t preservation_max_ms;        /* longest stay in self-preservation */

    /* Durability: "" = no data directory, the registry lives in memory only. */
    char data_dir[4096];
    /* persistence { } */
    enum config_fsync persist_fsync;
    uint64_t persist_fsync_interval_ms;
    uint32_t persist_snapshot_every;   /* journal records between snapshots */
    uint64_t persist_restart_grace_ms; /* CONFIG_GRACE_ONE_LEASE: each instance's own ttl */
    bool persist_repair; /* --repair-journal (command line only): keep a damaged journal's
                            valid prefix and move the file aside */
};

/* Fill cfg with the built-in defaults (listen 127.0.0.1:8053 and [::1]:8053, API on
 * DNSD_DEFAULT_API_SOCKET, domain service.internal.). */
void config_init_defaults(struct dnsd_config *cfg);

/* Read a libconfig file over cfg; settings absent from the file keep their value, listen and
 * api lists replace the previous ones whole, and the result must pass config_validate.
 * Unknown options, wrong types, out-of-range values and integers that do not fit in 32 bits
 * without an L suffix (libconfig 1.5 would silently wrap them) are errors.
 * Returns: 0, DNSD_ENOENT (cannot open: err says why), DNSD_EPARSE (err is
 * "file:line: message"), DNSD_EINVAL (a bad value: err is "file:line: option: why").
 * Out-parameters are written only on success: cfg is unchanged on failure. */
int config_load_file(const char *path, struct dnsd_config *cfg, char *err, size_t err_len);

/* Parse "ADDR:PORT" or "[ADDR]:PORT" with a numeric address (no host names, no IPv6 zone
 * ids); host is stored in canonical form (inet_ntop).
 * Returns: 0 and *out, DNSD_EINVAL. */
int config_parse_listen(const char *text, struct config_listen *out);

/* Parse "unix:PATH", "tcp:ADDR:PORT" or "tcp:[ADDR]:PORT".
 * Returns: 0 and *out, DNSD_EINVAL. */
int config_parse_api(const char *text, struct config_api *out);

/* Is a TCP endpoint's address loopback (127.0.0.0/8 or ::1)? Unix sockets count as local.
 * Returns: true for those. */
bool config_api_is_loopback(const struct config_api *api);

/* Normalise a domain name: lower-case, one trailing dot, labels 1..63 bytes of letters,
 * digits, '-' or '_', total <= 253 (without the final dot); "" and "." are invalid.
 * Returns: 0 and out filled, DNSD_EINVAL. */
int config_normalize_domain(const char *text, char *out, size_t out_len);

/* Name of an fsync policy: "always", "interval", "off" ("unknown" out of range).
 * Returns: a static string. */
const char *config_fsync_name(enum config_fsync fsync);

/* Check cross-field rules (lease_min <= lease_default <= lease_max, dns_min_ttl <= dns_ttl,
 * at least one listen address, udp_max_size in 512..65535, a TCP API endpoint only with a
 * token, on a non-loopback address only with TLS (api_options.tls_cert and tls_key, set
 * both or neither) or api_options.allow_plain_tcp ...). No I/O: the TLS files and the
 * socket group are checked when the API server starts.
 * Returns: 0, DNSD_EINVAL with err naming the option. */
int config_validate(const struct dnsd_config *cfg, char *err, size_t err_len);
