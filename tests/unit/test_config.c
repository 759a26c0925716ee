/* SPDX-License-Identifier: BSD-2-Clause
 * Unit tests for config: defaults, the sample file, custom files, every error class with
 * its "file:line: option: why" message, cfg untouched on failure, endpoint and domain
 * parsing, and config_validate's cross-field rules. Fixtures: tests/data/config/. */
#include "config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "dnsd/error.h"
#include "dnsd/names.h"

/* tests/data, from $DNSD_TEST_DATA (set by CTest) or relative to the source tree. */
static const char *data_dir(void)
{
    const char *d = getenv("DNSD_TEST_DATA");
    return d && d[0] ? d : "tests/data";
}

static void fixture_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/config/%s", data_dir(), name);
}

/* The sample lives next to the sources: tests/data/../../dnsd/dnsd.conf.sample. */
static void sample_path(char *out, size_t len)
{
    snprintf(out, len, "%s/../../dnsd/dnsd.conf.sample", data_dir());
}

/* A configuration unlike the defaults in every field, to show what a load keeps. */
static void init_custom(struct dnsd_config *cfg)
{
    config_init_defaults(cfg);
    cfg->dns_ttl = 99;
    cfg->soa_refresh = 1234;
    cfg->api_max_body = 777;
    cfg->log_level = LOG_LEVEL_ERROR;
    strcpy(cfg->pid_file, "/run/custom.pid");
}

Test(config, defaults_are_the_documented_values)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);

    cr_assert_str_eq(cfg.domain, "service.internal.");
    cr_assert_str_eq(cfg.zones_dir, "/etc/dnsd/zones");
    cr_assert_not(cfg.zones_dir_set);
    cr_assert_eq(cfg.n_listen, 2);
    cr_assert_eq(cfg.listen[0].family, AF_INET);
    cr_assert_str_eq(cfg.listen[0].host, "127.0.0.1");
    cr_assert_eq(cfg.listen[0].port, 8053);
    cr_assert_eq(cfg.listen[1].family, AF_INET6);
    cr_assert_str_eq(cfg.listen[1].host, "::1");
    cr_assert_eq(cfg.listen[1].port, 8053);
    cr_assert_eq(cfg.n_api, 1);
    cr_assert_eq(cfg.api[0].kind, CONFIG_API_UNIX);
    cr_assert_str_eq(cfg.api[0].path, DNSD_DEFAULT_API_SOCKET);
    cr_assert_eq(cfg.log_level, LOG_LEVEL_INFO);
    cr_assert_eq(cfg.log_format, LOG_FORMAT_TEXT);
    cr_assert_not(cfg.query_log_enabled);
    cr_assert_eq(cfg.query_log_sample, 1);
    cr_assert_str_eq(cfg.pid_file, "");
    cr_assert_eq(cfg.dns_ttl, 5);
    cr_assert_eq(cfg.udp_max_size, 1232);
    cr_assert_eq(cfg.tcp_idle_timeout_ms, 10000);
    cr_assert_eq(cfg.tcp_max_connections, 512);
    cr_assert_eq(cfg.tcp_max_connection_ms, 60000);
    cr_assert_eq(cfg.udp_rcvbuf, 4194304);
    cr_assert_str_eq(cfg.ns_name, "");
    cr_assert_str_eq(cfg.rname, "");
    cr_assert_eq(cfg.soa_refresh, 3600);
    cr_assert_eq(cfg.soa_retry, 600);
    cr_assert_eq(cfg.soa_expire, 86400);
    cr_assert_eq(cfg.soa_minimum, 5);
    cr_assert_eq(cfg.soa_ttl, 60);
    cr_assert_eq(cfg.api_socket_mode, 0660);
    cr_assert_eq(cfg.api_max_body, 65536);
    cr_assert_eq(cfg.api_max_connections, 256);
    cr_assert_eq(cfg.api_timeout_s, 30);
    cr_assert_eq(cfg.api_max_header, 8192);
    cr_assert_eq(cfg.limits_max_instances, 100000);
    cr_assert_eq(cfg.limits_max_instances_per_service, 10000);
    cr_assert_eq(cfg.limits_max_meta_bytes, 4096);
    cr_assert_eq(cfg.lease_default_s, 30);
    cr_assert_eq(cfg.lease_min_s, 1);
    cr_assert_eq(cfg.lease_max_s, 86400);
    cr_assert_eq(cfg.dns_min_ttl, 0);
    cr_assert_not(cfg.health_only_passing);
    cr_assert_eq(cfg.health_deregister_after_ms, 60000);
    cr_assert(cfg.preservation_enabled);
    cr_assert_float_eq(cfg.preservation_threshold, 0.5, 1e-12);
    cr_assert_eq(cfg.preservation_min_instances, 10);
    cr_assert_eq(cfg.preservation_max_ms, 300000);
    cr_assert_str_eq(cfg.data_dir, "", "no data directory: in memory only");
    cr_assert_eq(cfg.persist_fsync, CONFIG_FSYNC_ALWAYS);
    cr_assert_eq(cfg.persist_fsync_interval_ms, 100);
    cr_assert_eq(cfg.persist_snapshot_every, 10000);
    cr_assert_eq(cfg.persist_restart_grace_ms, CONFIG_GRACE_ONE_LEASE);
}

Test(config, defaults_pass_validation)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&cfg);
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, sample_file_yields_exactly_the_defaults)
{
    struct dnsd_config defaults, cfg;
    char path[PATH_MAX], err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&defaults);
    init_custom(&cfg);
    sample_path(path, sizeof(path));

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), 0, "%s", err);
    /* The sample sets zones_dir (to its default), which marks it as set. */
    cr_assert(cfg.zones_dir_set);
    cfg.zones_dir_set = false;
    cr_assert_str_eq(cfg.domain, defaults.domain);
    cr_assert_eq(cfg.dns_ttl, defaults.dns_ttl);
    cr_assert_eq(cfg.soa_refresh, defaults.soa_refresh);
    cr_assert_eq(cfg.api_max_body, defaults.api_max_body);
    cr_assert_eq(cfg.log_level, defaults.log_level);
    cr_assert_str_eq(cfg.pid_file, defaults.pid_file);
    cr_assert_eq(memcmp(&cfg, &defaults, sizeof(cfg)), 0,
                 "the sample differs from config_init_defaults()");
}

Test(config, full_file_sets_every_option)
{
    struct dnsd_config cfg;
    char path[PATH_MAX], err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&cfg);
    fixture_path(path, sizeof(path), "full.conf");

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(cfg.domain, "example.org.");
    cr_assert_str_eq(cfg.zones_dir, "/srv/dnsd/zones");
    cr_assert(cfg.zones_dir_set);
    cr_assert_eq(cfg.n_listen, 3);
    cr_assert_eq(cfg.listen[0].family, AF_INET);
    cr_assert_str_eq(cfg.listen[0].host, "192.0.2.1");
    cr_assert_eq(cfg.listen[0].port, 53);
    cr_assert_eq(cfg.listen[1].family, AF_INET6);
    cr_assert_str_eq(cfg.listen[1].host, "2001:db8::1");
    cr_assert_eq(cfg.listen[1].port, 5353);
    cr_assert_str_eq(cfg.listen[2].host, "0.0.0.0");
    cr_assert_eq(cfg.listen[2].port, 0);
    cr_assert_eq(cfg.n_api, 3);
    cr_assert_eq(cfg.api[0].kind, CONFIG_API_UNIX);
    cr_assert_str_eq(cfg.api[0].path, "/tmp/dnsd-test/api.sock");
    cr_assert_eq(cfg.api[1].kind, CONFIG_API_TCP);
    cr_assert_eq(cfg.api[1].family, AF_INET);
    cr_assert_str_eq(cfg.api[1].host, "127.0.0.1");
    cr_assert_eq(cfg.api[1].port, 8500);
    cr_assert_eq(cfg.api[2].kind, CONFIG_API_TCP);
    cr_assert_eq(cfg.api[2].family, AF_INET6);
    cr_assert_str_eq(cfg.api[2].host, "::1");
    cr_assert_eq(cfg.api[2].port, 8501);
    cr_assert(cfg.api_allow_plain_tcp);
    cr_assert_eq(cfg.n_tokens, 2);
    cr_assert_str_eq(cfg.tokens[0].services, "web*");
    cr_assert_eq(cfg.tokens[1].scope, CONFIG_SCOPE_ADMIN);
    cr_assert_eq(cfg.log_level, LOG_LEVEL_DEBUG);
    cr_assert_eq(cfg.log_format, LOG_FORMAT_JSON);
    cr_assert(cfg.query_log_enabled);
    cr_assert_eq(cfg.query_log_sample, 10);
    cr_assert_str_eq(cfg.pid_file, "/run/99999999999/dnsd.pid");
    cr_assert_eq(cfg.dns_ttl, 30);
    cr_assert_eq(cfg.udp_max_size, 4096);
    cr_assert_eq(cfg.tcp_idle_timeout_ms, 2500);
    cr_assert_eq(cfg.tcp_max_connections, 64);
    cr_assert_eq(cfg.tcp_max_connection_ms, 30000);
    cr_assert_eq(cfg.udp_rcvbuf, 0);
    cr_assert_str_eq(cfg.ns_name, "ns1.example.org.");
    cr_assert_str_eq(cfg.rname, "dns-admin.example.org.");
    cr_assert_eq(cfg.soa_refresh, 7200);
    cr_assert_eq(cfg.soa_retry, 900);
    cr_assert_eq(cfg.soa_expire, 604800);
    cr_assert_eq(cfg.soa_minimum, 60);
    cr_assert_eq(cfg.soa_ttl, 300);
    cr_assert_eq(cfg.api_socket_mode, 0600);
    cr_assert_eq(cfg.api_max_body, 1048576);
    cr_assert_eq(cfg.api_max_connections, 16);
    cr_assert_eq(cfg.api_timeout_s, 5);
    cr_assert_eq(cfg.api_max_header, 16384);
    cr_assert_eq(cfg.limits_max_instances, 500);
    cr_assert_eq(cfg.limits_max_instances_per_service, 50);
    cr_assert_eq(cfg.limits_max_meta_bytes, 1000);
    cr_assert_eq(cfg.lease_default_s, 60);
    cr_assert_eq(cfg.lease_min_s, 10);
    cr_assert_eq(cfg.lease_max_s, 3600);
    cr_assert_eq(cfg.dns_min_ttl, 2);
    cr_assert(cfg.health_only_passing);
    cr_assert_eq(cfg.health_deregister_after_ms, 0);
    cr_assert_not(cfg.preservation_enabled);
    cr_assert_float_eq(cfg.preservation_threshold, 0.25, 1e-12);
    cr_assert_eq(cfg.preservation_min_instances, 3);
    cr_assert_eq(cfg.preservation_max_ms, 90000);
    cr_assert_str_eq(cfg.data_dir, "/var/lib/dnsd-test");
    cr_assert_eq(cfg.persist_fsync, CONFIG_FSYNC_INTERVAL);
    cr_assert_eq(cfg.persist_fsync_interval_ms, 250);
    cr_assert_eq(cfg.persist_snapshot_every, 500);
    cr_assert_eq(cfg.persist_restart_grace_ms, 120000);
}

Test(config, fsync_names_round_trip)
{
    cr_assert_str_eq(config_fsync_name(CONFIG_FSYNC_ALWAYS), "always");
    cr_assert_str_eq(config_fsync_name(CONFIG_FSYNC_INTERVAL), "interval");
    cr_assert_str_eq(config_fsync_name(CONFIG_FSYNC_OFF), "off");
    cr_assert_str_eq(config_fsync_name((enum config_fsync)7), "unknown");
}

Test(config, threshold_accepts_the_integer_one)
{
    struct dnsd_config cfg;
    char path[PATH_MAX], err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&cfg);
    fixture_path(path, sizeof(path), "threshold_int.conf");

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_float_eq(cfg.preservation_threshold, 1.0, 1e-12);
    cr_assert(cfg.preservation_enabled, "the rest of the group keeps its value");
    cr_assert_eq(cfg.preservation_max_ms, 300000);
}

Test(config, absent_settings_keep_their_values)
{
    struct dnsd_config cfg;
    char path[PATH_MAX], err[CONFIG_ERR_LEN] = "";
    init_custom(&cfg);
    fixture_path(path, sizeof(path), "partial.conf");

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.dns_ttl, 7);
    cr_assert_eq(cfg.lease_max_s, 600);
    cr_assert_eq(cfg.soa_refresh, 1234);
    cr_assert_eq(cfg.api_max_body, 777);
    cr_assert_eq(cfg.log_level, LOG_LEVEL_ERROR);
    cr_assert_str_eq(cfg.pid_file, "/run/custom.pid");
    cr_assert_eq(cfg.udp_max_size, 1232);
    cr_assert_not(cfg.zones_dir_set);
}

Test(config, listen_list_replaces_the_defaults)
{
    struct dnsd_config cfg;
    char path[PATH_MAX], err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&cfg);
    fixture_path(path, sizeof(path), "partial.conf");

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.n_listen, 1);
    cr_assert_str_eq(cfg.listen[0].host, "127.0.0.2");
    cr_assert_eq(cfg.listen[0].port, 5300);
    cr_assert_str_eq(cfg.listen[1].host, "", "a replaced entry must not linger");
    cr_assert_eq(cfg.n_api, 1, "api is absent from the file and keeps its default");
}

Test(config, missing_file_is_enoent)
{
    struct dnsd_config cfg, before;
    char path[PATH_MAX], expected[PATH_MAX + 64], err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&cfg);
    before = cfg;
    fixture_path(path, sizeof(path), "no-such-file.conf");
    snprintf(expected, sizeof(expected), "%s: No such file or directory", path);

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), DNSD_ENOENT);
    cr_assert_str_eq(err, expected);
    cr_assert_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}

Test(config, directory_is_enoent)
{
    struct dnsd_config cfg;
    char path[PATH_MAX], expected[PATH_MAX + 64], err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&cfg);
    snprintf(path, sizeof(path), "%s/config", data_dir());
    snprintf(expected, sizeof(expected), "%s: Is a directory", path);

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), DNSD_ENOENT);
    cr_assert_str_eq(err, expected);
}

/* One bad file: its expected code and the message after "PATH:". */
struct bad_file {
    char file[40];
    int rc;
    char msg[160];
};

ParameterizedTestParameters(config, bad_file_is_reported_with_file_and_line)
{
    static struct bad_file cases[] = {
        {"unknown_option.invalid", DNSD_EINVAL, "2: unknown option 'lsten'"},
        {"unknown_nested.invalid", DNSD_EINVAL, "3: unknown option 'dns.tll'"},
        {"syntax_error.invalid", DNSD_EPARSE, "3: syntax error"},
        {"duplicate.invalid", DNSD_EPARSE, "2: duplicate setting name"},
        {"type_int.invalid", DNSD_EINVAL, "2: dns.ttl: must be an integer"},
        {"type_float.invalid", DNSD_EINVAL, "2: dns.ttl: must be an integer"},
        {"type_string.invalid", DNSD_EINVAL, "2: domain: must be a string"},
        {"type_group.invalid", DNSD_EINVAL, "2: dns: must be a group { ... }"},
        {"type_list.invalid", DNSD_EINVAL,
         "1: listen: must be a list of strings such as [ \"...\" ]"},
        {"type_list_elem.invalid", DNSD_EINVAL, "3: listen[1]: must be a string"},
        {"range_udp.invalid", DNSD_EINVAL, "7: dns.udp_max_size: must be 512..65535"},
        {"range_negative.invalid", DNSD_EINVAL, "2: lease.min: must be 1..31536000"},
        {"range_int64.invalid", DNSD_EINVAL, "2: lease.max: must be 1..31536000"},
        {"wrapped_int.invalid", DNSD_EINVAL,
         "3: lease.max: integer 4294967297 does not fit in 32 bits"},
        {"empty_listen.invalid", DNSD_EINVAL, "1: listen: must not be empty"},
        {"too_many_api.invalid", DNSD_EINVAL, "1: api: at most 4 entries"},
        {"bad_listen.invalid", DNSD_EINVAL,
         "3: listen[1]: 'localhost:53': not a numeric IPv4 address (host names are not "
         "resolved)"},
        {"bad_api.invalid", DNSD_EINVAL,
         "1: api[0]: 'http://127.0.0.1:8500': must be unix:PATH or tcp:ADDR:PORT"},
        {"bad_domain.invalid", DNSD_EINVAL,
         "1: domain: 'a..b' is not a valid domain name (labels of letters, digits, '-' or "
         "'_', 1..63 bytes, 253 in all)"},
        {"bad_log_level.invalid", DNSD_EINVAL,
         "1: log_level: 'verbose' is not error, warn, info or debug"},
        {"bad_log_format.invalid", DNSD_EINVAL, "1: log_format: 'yaml' is not text or json"},
        {"range_query_log.invalid", DNSD_EINVAL, "1: query_log.sample: must be 1..1000000"},
        {"bad_socket_mode.invalid", DNSD_EINVAL,
         "1: api_options.socket_mode: must be an octal mode 0000..0777"},
        {"socket_mode_int.invalid", DNSD_EINVAL,
         "2: api_options.socket_mode: must be an octal string such as \"0660\""},
        {"bad_ns_name.invalid", DNSD_EINVAL,
         "1: soa.ns_name: 'ns 1.example.org' is not a valid domain name"},
        {"empty_zones_dir.invalid", DNSD_EINVAL, "1: zones_dir: must not be empty"},
        {"lease_order.invalid", DNSD_EINVAL, "3: lease.default: 30 is below lease.min (60)"},
        {"range_min_ttl.invalid", DNSD_EINVAL, "2: dns.min_ttl: must be 0..3600"},
        {"range_tcp_lifetime.invalid", DNSD_EINVAL,
         "2: dns.tcp_max_connection_ms: must be 1..86400000"},
        {"range_max_header.invalid", DNSD_EINVAL,
         "2: api_options.max_header: must be "
         "4096..1048576"},
        {"range_limits.invalid", DNSD_EINVAL, "3: limits.max_meta_bytes: must be 1..16320"},
        {"unknown_limit.invalid", DNSD_EINVAL, "2: unknown option 'limits.max_tags'"},
        {"min_ttl_order.invalid", DNSD_EINVAL, "3: dns.min_ttl: 6 is above dns.ttl (5)"},
        {"type_bool.invalid", DNSD_EINVAL, "2: health.only_passing: must be true or false"},
        {"bad_duration.invalid", DNSD_EINVAL,
         "2: health.deregister_after: '60': must be a duration from 0s to 168h such as "
         "\"60s\""},
        {"duration_int.invalid", DNSD_EINVAL,
         "2: health.deregister_after: must be a duration from 0s to 168h such as \"60s\""},
        {"range_duration.invalid", DNSD_EINVAL,
         "2: health.deregister_after: '169h': must be a duration from 0s to 168h such as "
         "\"60s\""},
        {"zero_max_duration.invalid", DNSD_EINVAL,
         "3: health.self_preservation.max_duration: '0s': must be a duration from 1ms to 168h "
         "such as \"60s\""},
        {"range_threshold.invalid", DNSD_EINVAL,
         "3: health.self_preservation.threshold: must be a number above 0 and at most 1"},
        {"zero_threshold.invalid", DNSD_EINVAL,
         "3: health.self_preservation.threshold: must be a number above 0 and at most 1"},
        {"type_threshold.invalid", DNSD_EINVAL,
         "3: health.self_preservation.threshold: must be a number such as 0.5"},
        {"unknown_deep.invalid", DNSD_EINVAL,
         "3: unknown option 'health.self_preservation.enable'"},
        {"type_nested_group.invalid", DNSD_EINVAL,
         "2: health.self_preservation: must be a group { ... }"},
        {"bad_fsync.invalid", DNSD_EINVAL,
         "2: persistence.fsync: 'sometimes': must be \"always\", \"interval\" or \"off\""},
        {"range_snapshot_every.invalid", DNSD_EINVAL,
         "2: persistence.snapshot_every: must be 1..2147483647"},
        {"bad_restart_grace.invalid", DNSD_EINVAL,
         "2: persistence.restart_grace: 'soon': must be a duration from 0s to 168h such as "
         "\"60s\""},
    };
    return cr_make_param_array(struct bad_file, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_file *c, config, bad_file_is_reported_with_file_and_line)
{
    struct dnsd_config cfg, before;
    char path[PATH_MAX], expected[PATH_MAX + 200], err[CONFIG_ERR_LEN] = "";
    init_custom(&cfg);
    memcpy(&before, &cfg, sizeof(cfg));
    fixture_path(path, sizeof(path), c->file);
    snprintf(expected, sizeof(expected), "%s:%s", path, c->msg);

    int rc = config_load_file(path, &cfg, err, sizeof(err));
    cr_assert_eq(rc, c->rc, "%s: rc %d (%s), err %s", c->file, rc, dnsd_strerror(rc), err);
    cr_assert_str_eq(err, expected);
    cr_assert_eq(memcmp(&cfg, &before, sizeof(cfg)), 0, "%s changed cfg", c->file);
}

Test(config, failure_after_good_settings_leaves_cfg_untouched)
{
    /* range_udp.invalid sets domain and log_level (valid) before the bad dns.udp_max_size. */
    struct dnsd_config cfg, before;
    char path[PATH_MAX], err[CONFIG_ERR_LEN] = "";
    init_custom(&cfg);
    memcpy(&before, &cfg, sizeof(cfg));
    fixture_path(path, sizeof(path), "range_udp.invalid");

    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), DNSD_EINVAL);
    cr_assert_eq(cfg.log_level, LOG_LEVEL_ERROR, "log_level = \"warn\" must not leak");
    cr_assert_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}

Test(config, error_buffer_may_be_absent)
{
    struct dnsd_config cfg;
    char path[PATH_MAX];
    config_init_defaults(&cfg);
    fixture_path(path, sizeof(path), "unknown_option.invalid");
    cr_assert_eq(config_load_file(path, &cfg, NULL, 0), DNSD_EINVAL);
    fixture_path(path, sizeof(path), "syntax_error.invalid");
    cr_assert_eq(config_load_file(path, &cfg, NULL, 0), DNSD_EPARSE);
}

Test(config, long_error_is_truncated_to_the_buffer)
{
    struct dnsd_config cfg;
    char path[PATH_MAX], err[16];
    config_init_defaults(&cfg);
    fixture_path(path, sizeof(path), "range_udp.invalid");
    memset(err, 'x', sizeof(err));
    cr_assert_eq(config_load_file(path, &cfg, err, sizeof(err)), DNSD_EINVAL);
    cr_assert_eq(strlen(err), sizeof(err) - 1);
    cr_assert_eq(strncmp(err, path, sizeof(err) - 1), 0);
}

/* ---- endpoints ---- */

struct listen_case {
    char text[80];
    bool ok;
    int family;
    char host[64];
    uint16_t port;
};

ParameterizedTestParameters(config, parse_listen_forms)
{
    static struct listen_case cases[] = {
        {"127.0.0.1:53", true, AF_INET, "127.0.0.1", 53},
        {"0.0.0.0:0", true, AF_INET, "0.0.0.0", 0},
        {"192.0.2.7:65535", true, AF_INET, "192.0.2.7", 65535},
        {"[::1]:8053", true, AF_INET6, "::1", 8053},
        {"[2001:DB8:0::10]:53", true, AF_INET6, "2001:db8::10", 53},
        {"[::ffff:192.0.2.1]:53", true, AF_INET6, "::ffff:192.0.2.1", 53},
        {"", false, 0, "", 0},
        {"127.0.0.1", false, 0, "", 0},
        {"127.0.0.1:", false, 0, "", 0},
        {"127.0.0.1:65536", false, 0, "", 0},
        {"127.0.0.1:100000", false, 0, "", 0},
        {"127.0.0.1:-1", false, 0, "", 0},
        {"127.0.0.1:+53", false, 0, "", 0},
        {"127.0.0.1:53x", false, 0, "", 0},
        {"127.0.0.1: 53", false, 0, "", 0},
        {"localhost:53", false, 0, "", 0},
        {"256.0.0.1:53", false, 0, "", 0},
        {"::1:53", false, 0, "", 0},
        {"[::1]", false, 0, "", 0},
        {"[::1]53", false, 0, "", 0},
        {"[::1:53", false, 0, "", 0},
        {"[127.0.0.1]:53", false, 0, "", 0},
        {"[fe80::1%lo]:53", false, 0, "", 0},
        {"[fe80::1%lo]", false, 0, "", 0},
        {"[::1]:8053 ", false, 0, "", 0},
    };
    return cr_make_param_array(struct listen_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct listen_case *c, config, parse_listen_forms)
{
    struct config_listen l;
    memset(&l, 0xAB, sizeof(l));
    int rc = config_parse_listen(c->text, &l);
    if (!c->ok) {
        cr_assert_eq(rc, DNSD_EINVAL, "'%s' must be rejected", c->text);
        cr_assert_eq(l.port, 0xABAB, "'%s': out written on failure", c->text);
        return;
    }
    cr_assert_eq(rc, 0, "'%s' must be accepted", c->text);
    cr_assert_eq(l.family, c->family);
    cr_assert_str_eq(l.host, c->host);
    cr_assert_eq(l.port, c->port);
}

struct api_case {
    char text[160];
    bool ok;
    enum config_api_kind kind;
    char where[120]; /* path, or host */
    uint16_t port;
};

ParameterizedTestParameters(config, parse_api_forms)
{
    static struct api_case cases[] = {
        {"unix:/run/dnsd/api.sock", true, CONFIG_API_UNIX, "/run/dnsd/api.sock", 0},
        {"unix:api.sock", true, CONFIG_API_UNIX, "api.sock", 0},
        {"tcp:127.0.0.1:8500", true, CONFIG_API_TCP, "127.0.0.1", 8500},
        {"tcp:[::1]:8500", true, CONFIG_API_TCP, "::1", 8500},
        {"unix:", false, CONFIG_API_UNIX, "", 0},
        {"tcp:", false, CONFIG_API_TCP, "", 0},
        {"tcp:localhost:8500", false, CONFIG_API_TCP, "", 0},
        {"tcp:127.0.0.1", false, CONFIG_API_TCP, "", 0},
        {"tcp:::1:8500", false, CONFIG_API_TCP, "", 0},
        {"/run/dnsd/api.sock", false, CONFIG_API_UNIX, "", 0},
        {"http://127.0.0.1:8500", false, CONFIG_API_TCP, "", 0},
        {"UNIX:/run/dnsd/api.sock", false, CONFIG_API_UNIX, "", 0},
        {"", false, CONFIG_API_UNIX, "", 0},
    };
    return cr_make_param_array(struct api_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct api_case *c, config, parse_api_forms)
{
    struct config_api a;
    memset(&a, 0xAB, sizeof(a));
    int rc = config_parse_api(c->text, &a);
    if (!c->ok) {
        cr_assert_eq(rc, DNSD_EINVAL, "'%s' must be rejected", c->text);
        cr_assert_eq(a.port, 0xABAB, "'%s': out written on failure", c->text);
        return;
    }
    cr_assert_eq(rc, 0, "'%s' must be accepted", c->text);
    cr_assert_eq(a.kind, c->kind);
    if (c->kind == CONFIG_API_UNIX) {
        cr_assert_str_eq(a.path, c->where);
    } else {
        cr_assert_str_eq(a.host, c->where);
        cr_assert_eq(a.port, c->port);
        cr_assert_eq(a.family, strchr(c->where, ':') ? AF_INET6 : AF_INET);
    }
}

Test(config, parse_api_unix_path_fits_sun_path)
{
    struct config_api a;
    char text[160] = "unix:/";
    char *path = text + 5;
    /* 107 bytes: the longest path sun_path (108) holds with its terminator. */
    memset(path + 1, 'p', 106);
    path[107] = '\0';
    cr_assert_eq(strlen(path), sizeof(a.path) - 1);
    cr_assert_eq(config_parse_api(text, &a), 0);
    cr_assert_str_eq(a.path, path);
    strcat(text, "p");
    cr_assert_eq(config_parse_api(text, &a), DNSD_EINVAL, "108-byte path");
}

Test(config, null_endpoint_text_is_rejected)
{
    struct config_listen l;
    struct config_api a;
    cr_assert_eq(config_parse_listen(NULL, &l), DNSD_EINVAL);
    cr_assert_eq(config_parse_api(NULL, &a), DNSD_EINVAL);
}

/* ---- domains ---- */

Test(config, normalize_domain_lowercases_and_adds_the_dot)
{
    char out[256];
    cr_assert_eq(config_normalize_domain("Service.Internal", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "service.internal.");
    cr_assert_eq(config_normalize_domain("service.internal.", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "service.internal.");
    cr_assert_eq(config_normalize_domain("LOCAL", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "local.");
    cr_assert_eq(config_normalize_domain("_dns-sd._udp.Example.", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "_dns-sd._udp.example.");
}

Test(config, normalize_domain_rejects_malformed_names)
{
    static const char *const bad[] = {
        "", ".", "..", "a..b", ".a", "a.b..", "a b.c", "a/b", "a\\.b", "*.example", "é.example",
    };
    char out[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(out, "untouched");
        cr_assert_eq(config_normalize_domain(bad[i], out, sizeof(out)), DNSD_EINVAL, "'%s'",
                     bad[i]);
        cr_assert_str_eq(out, "untouched");
    }
    cr_assert_eq(config_normalize_domain(NULL, out, sizeof(out)), DNSD_EINVAL);
}

Test(config, normalize_domain_enforces_label_and_name_lengths)
{
    char label[80], name[300], out[300];
    memset(label, 'a', 63);
    label[63] = '\0';
    cr_assert_eq(config_normalize_domain(label, out, sizeof(out)), 0);
    strcat(label, "a");
    cr_assert_eq(config_normalize_domain(label, out, sizeof(out)), DNSD_EINVAL, "64-byte label");

    /* 4 labels of 61 bytes + 3 dots = 247; one more "abcde." brings it to 253. */
    memset(name, 0, sizeof(name));
    for (int i = 0; i < 4; i++) {
        memset(name + strlen(name), 'b', 61);
        strcat(name, ".");
    }
    strcat(name, "abcde");
    cr_assert_eq(strlen(name), 253);
    cr_assert_eq(config_normalize_domain(name, out, sizeof(out)), 0);
    cr_assert_eq(strlen(out), 254);
    strcat(name, "f");
    cr_assert_eq(config_normalize_domain(name, out, sizeof(out)), DNSD_EINVAL, "254 bytes");
}

Test(config, normalize_domain_needs_room_for_the_dot)
{
    char out[8];
    cr_assert_eq(config_normalize_domain("abcdef", out, sizeof(out)), 0);
    cr_assert_str_eq(out, "abcdef.");
    cr_assert_eq(config_normalize_domain("abcdefg", out, sizeof(out)), DNSD_EINVAL);
}

/* ---- validation ---- */

static void assert_invalid(const struct dnsd_config *cfg, const char *expected)
{
    char err[CONFIG_ERR_LEN] = "";
    cr_assert_eq(config_validate(cfg, err, sizeof(err)), DNSD_EINVAL, "expected: %s", expected);
    cr_assert_str_eq(err, expected);
}

Test(config, validate_requires_lease_min_default_max_order)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cfg.lease_min_s = 40;
    assert_invalid(&cfg, "lease.default: 30 is below lease.min (40)");

    config_init_defaults(&cfg);
    cfg.lease_max_s = 20;
    assert_invalid(&cfg, "lease.default: 30 is above lease.max (20)");

    config_init_defaults(&cfg);
    cfg.lease_min_s = 100;
    cfg.lease_max_s = 50;
    assert_invalid(&cfg, "lease.min: 100 is above lease.max (50)");

    config_init_defaults(&cfg);
    cfg.lease_min_s = 0;
    assert_invalid(&cfg, "lease.min: must be 1..31536000");
}

Test(config, validate_requires_listen_and_api_endpoints)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cfg.n_listen = 0;
    assert_invalid(&cfg, "listen: must name 1..16 addresses");

    config_init_defaults(&cfg);
    cfg.n_api = 0;
    assert_invalid(&cfg, "api: must name 1..4 endpoints");
}

Test(config, validate_checks_value_ranges)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cfg.udp_max_size = 511;
    assert_invalid(&cfg, "dns.udp_max_size: must be 512..65535");

    config_init_defaults(&cfg);
    cfg.dns_ttl = 604801;
    assert_invalid(&cfg, "dns.ttl: must be 0..604800");

    config_init_defaults(&cfg);
    cfg.api_max_body = 0;
    assert_invalid(&cfg, "api_options.max_body: must be 1..67108864");

    config_init_defaults(&cfg);
    cfg.api_socket_mode = 01777;
    assert_invalid(&cfg, "api_options.socket_mode: must be an octal mode 0000..0777");

    config_init_defaults(&cfg);
    cfg.log_level = (enum log_level)7;
    assert_invalid(&cfg, "log_level: must be error, warn, info or debug");

    config_init_defaults(&cfg);
    cfg.log_format = (enum log_format)2;
    assert_invalid(&cfg, "log_format: must be text or json");

    config_init_defaults(&cfg);
    cfg.query_log_sample = 0;
    assert_invalid(&cfg, "query_log.sample: must be 1..1000000");
}

Test(config, validate_checks_names)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    strcpy(cfg.domain, "Service.Internal.");
    assert_invalid(&cfg, "domain: 'Service.Internal.' is not a normalised domain name");

    config_init_defaults(&cfg);
    strcpy(cfg.rname, "a..b");
    assert_invalid(&cfg, "soa.rname: 'a..b' is not a valid domain name");

    config_init_defaults(&cfg);
    cfg.zones_dir[0] = '\0';
    assert_invalid(&cfg, "zones_dir: must not be empty");
}

Test(config, validate_requires_room_for_the_derived_soa_names)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    char name[300] = "";
    /* 3 labels of 63 bytes + 53 bytes + 3 dots = 245 bytes: fits "ns." but not
     * "hostmaster." (11 bytes) within 253. */
    for (int i = 0; i < 3; i++) {
        memset(name + strlen(name), 'c', 63);
        strcat(name, ".");
    }
    memset(name + strlen(name), 'd', 53);
    cr_assert_eq(strlen(name), 245);
    config_init_defaults(&cfg);
    cr_assert_eq(config_normalize_domain(name, cfg.domain, sizeof(cfg.domain)), 0);

    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), DNSD_EINVAL);
    cr_assert_not_null(strstr(err, "domain: too long for the default soa.rname"), "%s", err);
    strcpy(cfg.rname, "hostmaster.example.org.");
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

Test(config, validate_checks_health_values)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cfg.dns_min_ttl = 6;
    assert_invalid(&cfg, "dns.min_ttl: 6 is above dns.ttl (5)");

    config_init_defaults(&cfg);
    cfg.dns_ttl = 7200;
    cfg.dns_min_ttl = 3601;
    assert_invalid(&cfg, "dns.min_ttl: must be 0..3600");

    config_init_defaults(&cfg);
    cfg.preservation_threshold = 0.0;
    assert_invalid(&cfg, "health.self_preservation.threshold: must be a number above 0 and at "
                         "most 1");
    cfg.preservation_threshold = 1.0000001;
    assert_invalid(&cfg, "health.self_preservation.threshold: must be a number above 0 and at "
                         "most 1");
    cfg.preservation_threshold = NAN;
    assert_invalid(&cfg, "health.self_preservation.threshold: must be a number above 0 and at "
                         "most 1");

    config_init_defaults(&cfg);
    cfg.preservation_max_ms = 0;
    assert_invalid(&cfg, "health.self_preservation.max_duration: must be a duration from 1ms to "
                         "168h such as \"60s\"");

    config_init_defaults(&cfg);
    cfg.health_deregister_after_ms = 7ULL * 24 * 3600 * 1000 + 1;
    assert_invalid(&cfg, "health.deregister_after: must be a duration from 0s to 168h such as "
                         "\"60s\"");
}

Test(config, validate_accepts_boundary_values)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    config_init_defaults(&cfg);
    cfg.udp_max_size = 512;
    cfg.dns_ttl = 604800;
    cfg.lease_min_s = cfg.lease_default_s = cfg.lease_max_s = 1;
    cfg.api_socket_mode = 0777;
    cfg.dns_min_ttl = 3600;
    cfg.preservation_threshold = 1.0;
    cfg.preservation_max_ms = 1;
    cfg.health_deregister_after_ms = 7ULL * 24 * 3600 * 1000;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
    cfg.udp_max_size = 65535;
    cfg.dns_ttl = 0;
    cfg.dns_min_ttl = 0;
    cfg.preservation_threshold = 1e-9;
    cfg.health_deregister_after_ms = 0;
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), 0, "%s", err);
}

/* ---- tokens and TCP API endpoints ---------------------------------------------------------- */

/* Load text as a config file over the defaults; err gets the message. */
static int load_text(const char *text, struct dnsd_config *cfg, char *err, size_t err_len)
{
    char path[] = "/tmp/test_config_tokens_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *fp = fdopen(fd, "w");
    cr_assert_not_null(fp);
    fputs(text, fp);
    fclose(fp);
    config_init_defaults(cfg);
    int rc = config_load_file(path, cfg, err, err_len);
    unlink(path);
    return rc;
}

Test(config, tokens_are_loaded_with_scope_and_services)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    int rc = load_text("api = [ \"tcp:127.0.0.1:8500\" ];\n"
                       "tokens = ( { name = \"deploy\"; token = \"deploy-token-0123456789\";\n"
                       "             scope = \"write\"; services = \"web*\"; },\n"
                       "           { name = \"ops\"; token = \"ops-token-0123456789abc\";\n"
                       "             scope = \"admin\"; },\n"
                       "           { name = \"monitor\"; token = \"monitor-token-012345678\";\n"
                       "             scope = \"read\"; } );\n",
                       &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(cfg.n_tokens, 3);
    cr_assert_str_eq(cfg.tokens[0].name, "deploy");
    cr_assert_str_eq(cfg.tokens[0].token, "deploy-token-0123456789");
    cr_assert_eq(cfg.tokens[0].scope, CONFIG_SCOPE_WRITE);
    cr_assert_str_eq(cfg.tokens[0].services, "web*");
    cr_assert_eq(cfg.tokens[1].scope, CONFIG_SCOPE_ADMIN);
    cr_assert_str_eq(cfg.tokens[1].services, "*");
    cr_assert_eq(cfg.tokens[2].scope, CONFIG_SCOPE_READ);
    cr_assert_not(cfg.api_allow_plain_tcp);
}

Test(config, bad_token_entries_are_rejected)
{
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"tokens = ( { name = \"a\"; token = \"short\"; scope = \"read\"; } );",
         "tokens[0].token: must be 16..255 bytes"},
        {"tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; scope = \"root\"; } );",
         "tokens[0].scope: 'root': must be \"read\", \"write\" or \"admin\""},
        {"tokens = ( { token = \"0123456789abcdef\"; scope = \"read\"; } );",
         "tokens[0]: 'name' is missing"},
        {"tokens = ( { name = \"a\"; token = \"0123456789 abcdef\"; scope = \"read\"; } );",
         "tokens[0].token: only printable ASCII without blanks"},
        {"tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; scope = \"read\"; x = 1; } );",
         "unknown option 'tokens[0].x'"},
        {"tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; scope = \"read\"; },\n"
         "           { name = \"a\"; token = \"0123456789abcdeg\"; scope = \"read\"; } );",
         "tokens[1].name: 'a' is used twice"},
        {"tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; scope = \"read\"; },\n"
         "           { name = \"b\"; token = \"0123456789abcdef\"; scope = \"read\"; } );",
         "tokens[1].token: the same token as tokens[0]"},
        {"tokens = [ \"0123456789abcdef\" ];", "tokens: must be a list"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dnsd_config cfg;
        char err[CONFIG_ERR_LEN] = "";
        cr_assert_eq(load_text(cases[i].text, &cfg, err, sizeof(err)), DNSD_EINVAL, "%s",
                     cases[i].text);
        cr_assert_not_null(strstr(err, cases[i].why), "%s: got '%s'", cases[i].why, err);
        cr_assert_eq(cfg.n_tokens, 0);
    }
}

Test(config, tcp_api_endpoint_needs_a_token)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cr_assert_eq(config_parse_api("tcp:127.0.0.1:8500", &cfg.api[0]), 0);
    assert_invalid(&cfg, "api: tcp:127.0.0.1:8500 needs at least one entry in 'tokens': every "
                         "request on a TCP endpoint must carry Authorization: Bearer TOKEN");
    cfg.n_tokens = 1;
    strcpy(cfg.tokens[0].token, "0123456789abcdef");
    cr_assert_eq(config_validate(&cfg, NULL, 0), 0);
}

Test(config, non_loopback_tcp_api_needs_allow_plain_tcp)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cfg.n_tokens = 1;
    cr_assert_eq(config_parse_api("tcp:0.0.0.0:8500", &cfg.api[0]), 0);
    char err[CONFIG_ERR_LEN] = "";
    cr_assert_eq(config_validate(&cfg, err, sizeof(err)), DNSD_EINVAL);
    cr_assert_not_null(strstr(err, "tcp:0.0.0.0:8500 is not a loopback address: set "
                                   "api_options.tls_cert and api_options.tls_key to serve HTTPS "
                                   "there, or api_options.allow_plain_tcp = true"),
                       "%s", err);
    cfg.api_allow_plain_tcp = true;
    cr_assert_eq(config_validate(&cfg, NULL, 0), 0);
}

Test(config, non_loopback_tcp_api_is_accepted_with_tls)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cfg.n_tokens = 1;
    cr_assert_eq(config_parse_api("tcp:[::]:8500", &cfg.api[0]), 0);
    cr_assert_eq(config_validate(&cfg, NULL, 0), DNSD_EINVAL);
    strcpy(cfg.api_tls_cert, "/etc/dnsd/cert.pem");
    strcpy(cfg.api_tls_key, "/etc/dnsd/key.pem");
    cr_assert_eq(config_validate(&cfg, NULL, 0), 0);
    cr_assert_not(cfg.api_allow_plain_tcp);
}

Test(config, tls_cert_and_key_go_together)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    strcpy(cfg.api_tls_cert, "/etc/dnsd/cert.pem");
    assert_invalid(&cfg, "api_options.tls_cert: set without api_options.tls_key; TLS needs both "
                         "the certificate and its private key");
    config_init_defaults(&cfg);
    strcpy(cfg.api_tls_key, "/etc/dnsd/key.pem");
    assert_invalid(&cfg, "api_options.tls_key: set without api_options.tls_cert; TLS needs both "
                         "the certificate and its private key");
}

Test(config, tls_and_socket_group_default_to_empty)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cr_assert_str_eq(cfg.api_tls_cert, "");
    cr_assert_str_eq(cfg.api_tls_key, "");
    cr_assert_str_eq(cfg.api_socket_group, "");
}

Test(config, tls_and_socket_group_are_read_from_api_options)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    int rc = load_text("api = [ \"tcp:0.0.0.0:8500\" ];\n"
                       "api_options = { tls_cert = \"/etc/dnsd/cert.pem\"; "
                       "tls_key = \"/etc/dnsd/key.pem\"; socket_group = \"dnsd-api\"; };\n"
                       "tokens = ( { name = \"r\"; token = \"0123456789abcdef\"; "
                       "scope = \"read\"; } );\n",
                       &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(cfg.api_tls_cert, "/etc/dnsd/cert.pem");
    cr_assert_str_eq(cfg.api_tls_key, "/etc/dnsd/key.pem");
    cr_assert_str_eq(cfg.api_socket_group, "dnsd-api");
}

Test(config, tls_key_alone_in_a_file_is_refused_with_its_line)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    int rc = load_text("log_level = \"info\";\napi_options = {\n  tls_key = \"/k.pem\";\n};\n",
                       &cfg, err, sizeof(err));
    cr_assert_eq(rc, DNSD_EINVAL);
    cr_assert_not_null(strstr(err, ":3: api_options.tls_key: set without api_options.tls_cert"),
                       "%s", err);
}

Test(config, string_options_must_fit_and_be_strings)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "", text[256];
    snprintf(text, sizeof(text), "api_options = { socket_group = \"%064d\"; };\n", 7);
    cr_assert_eq(load_text(text, &cfg, err, sizeof(err)), DNSD_EINVAL);
    cr_assert_not_null(strstr(err, "api_options.socket_group: longer than 63 bytes"), "%s", err);
    cr_assert_eq(load_text("api_options = { socket_group = 100; };\n", &cfg, err, sizeof(err)),
                 DNSD_EINVAL);
    cr_assert_not_null(strstr(err, "api_options.socket_group"), "%s", err);
}

Test(config, loopback_is_127_slash_8_and_ipv6_one)
{
    static const struct {
        const char *api;
        bool loopback;
    } cases[] = {
        {"tcp:127.0.0.1:1", true},  {"tcp:127.9.8.7:1", true},  {"tcp:[::1]:1", true},
        {"unix:/run/x.sock", true}, {"tcp:0.0.0.0:1", false},   {"tcp:[::]:1", false},
        {"tcp:128.0.0.1:1", false}, {"tcp:192.0.2.1:1", false}, {"tcp:[::ffff:127.0.0.1]:1", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config_api a;
        cr_assert_eq(config_parse_api(cases[i].api, &a), 0, "%s", cases[i].api);
        cr_assert_eq(config_api_is_loopback(&a), cases[i].loopback, "%s", cases[i].api);
    }
}

Test(config, allow_plain_tcp_is_read_from_api_options)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    int rc = load_text("api = [ \"tcp:0.0.0.0:8500\" ];\n"
                       "api_options = { allow_plain_tcp = true; };\n"
                       "tokens = ( { name = \"r\"; token = \"0123456789abcdef\"; "
                       "scope = \"read\"; } );\n",
                       &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(cfg.api_allow_plain_tcp);
}

Test(config, forwarders_and_forward_group_are_read)
{
    struct dnsd_config cfg;
    char err[CONFIG_ERR_LEN] = "";
    int rc = load_text("forwarders = [ \"127.0.0.1:5353\", \"[::1]:53\", \"192.0.2.1\" ];\n"
                       "forward = { strategy = \"random\"; timeout_ms = 700; retries = 2;\n"
                       "            allow = [ \"10.0.0.0/8\" ]; };\n",
                       &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(cfg.forward.n_servers, 3);
    cr_assert_eq(cfg.forward.servers[1].addr.ss_family, AF_INET6);
    cr_assert_eq(cfg.forward.strategy, FORWARD_RANDOM);
    cr_assert_eq(cfg.forward.timeout_ms, 700);
    cr_assert_eq(cfg.forward.retries, 2);
    cr_assert_eq(cfg.forward.n_allow, 1);
    cr_assert_eq(cfg.forward.allow[0].prefix, 8);
}

Test(config, forwarding_is_off_by_default_with_loopback_allowed)
{
    struct dnsd_config cfg;
    config_init_defaults(&cfg);
    cr_assert_eq(cfg.forward.n_servers, 0);
    cr_assert_eq(cfg.forward.strategy, FORWARD_SEQUENTIAL);
    cr_assert_eq(cfg.forward.timeout_ms, 1500);
    cr_assert_eq(cfg.forward.retries, 1);
    cr_assert_eq(cfg.forward.n_allow, 2);
}

Test(config, bad_forwarding_settings_are_named)
{
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"forwarders = [ \"dns.example\" ];\n", "forwarders[0]"},
        {"forwarders = \"127.0.0.1\";\n", "forwarders: must be a list"},
        {"forward = { strategy = \"fastest\"; };\n", "forward.strategy"},
        {"forward = { timeout_ms = 0; };\n", "forward.timeout_ms"},
        {"forward = { retries = 11; };\n", "forward.retries"},
        {"forward = { allow = [ \"10.0.0.1/8\" ]; };\n", "forward.allow[0]"},
        {"forward = { recursion = true; };\n", "forward.recursion"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dnsd_config cfg;
        char err[CONFIG_ERR_LEN] = "";
        cr_assert_eq(load_text(cases[i].text, &cfg, err, sizeof(err)), DNSD_EINVAL, "%s",
                     cases[i].text);
        cr_assert(strstr(err, cases[i].expect), "%s -> %s", cases[i].text, err);
    }
}
