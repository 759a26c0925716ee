/* SPDX-License-Identifier: BSD-2-Clause
 * regctl's unit tests: command-line parsing into API requests (method, path, JSON body),
 * usage errors, help, the rendering of sample dnsd replies, exit statuses, and API address
 * parsing. No sockets: nothing here sends a request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "client.h"
#include "commands.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "dnsd/version.h"

#define ARGV(...) ((char *[]){"regctl", __VA_ARGS__, NULL})

static struct commands_request req;
static char *out_text;
static char *err_text;

static void teardown(void)
{
    commands_request_clear(&req);
    free(out_text);
    free(err_text);
    out_text = NULL;
    err_text = NULL;
}

TestSuite(commands, .fini = teardown);
TestSuite(client);

/* Parse argv (NULL-terminated) into req, capturing out and err. */
static int parse(char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    commands_request_clear(&req);
    free(out_text);
    free(err_text);
    size_t out_len, err_len;
    FILE *out = open_memstream(&out_text, &out_len);
    FILE *err = open_memstream(&err_text, &err_len);
    cr_assert(out != NULL && err != NULL);
    int rc = commands_parse(argc, argv, &req, out, err);
    fclose(out);
    fclose(err);
    return rc;
}

/* Render a reply for the command line in argv, capturing out and err. */
static int reply(char **argv, long status, const char *body)
{
    cr_assert_eq(parse(argv), REGCTL_EXIT_OK);
    free(out_text);
    free(err_text);
    size_t out_len, err_len;
    FILE *out = open_memstream(&out_text, &out_len);
    FILE *err = open_memstream(&err_text, &err_len);
    cr_assert(out != NULL && err != NULL);
    int rc = commands_print_reply(&req, status, body, strlen(body), out, err);
    fclose(out);
    fclose(err);
    return rc;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Does req's body hold exactly the JSON in expected? */
static void assert_body(const char *expected)
{
    cr_assert_not_null(req.body);
    json_t *want = json_loads(expected, 0, NULL);
    json_t *got = json_loads(req.body, 0, NULL);
    cr_assert_not_null(want, "bad expected JSON in the test");
    cr_assert_not_null(got, "body is not JSON: %s", req.body);
    bool same = json_equal(want, got);
    json_decref(want);
    json_decref(got);
    cr_assert(same, "body %s, expected %s", req.body, expected);
}

/* A usage error: exit 2, nothing to send, message and hint on err, nothing on out. */
static void assert_usage(int rc, const char *message, const char *command)
{
    char hint[64];
    snprintf(hint, sizeof(hint), "see 'regctl %s%s--help'", command ? command : "",
             command ? " " : "");
    cr_assert_eq(rc, REGCTL_EXIT_USAGE, "rc %d, err: %s", rc, err_text);
    cr_assert_eq(req.kind, COMMANDS_NONE);
    cr_assert_str_empty(out_text);
    cr_assert(strstr(err_text, message) != NULL, "err '%s' lacks '%s'", err_text, message);
    cr_assert(starts_with(err_text, "regctl: "), "err: %s", err_text);
    cr_assert(strstr(err_text, hint) != NULL, "err '%s' lacks '%s'", err_text, hint);
}

static const char INSTANCE[] =
    "{\"service\":\"web\",\"id\":\"web-1\",\"addresses\":[\"192.0.2.10\",\"2001:db8::10\"],"
    "\"port\":8080,\"proto\":\"tcp\",\"priority\":0,\"weight\":1,\"tags\":[\"primary\"],"
    "\"meta\":{\"version\":\"1.4\"},\"ttl\":30,\"health\":\"passing\","
    "\"lease_remaining_ms\":27312,\"last_heartbeat_ms_ago\":124,\"registered_ms_ago\":5000}\n";

/* ---- register ---- */

Test(commands, register_builds_every_field)
{
    int rc = parse(ARGV("register", "web", "web-1", "--addr", "192.0.2.10", "--addr",
                        "2001:db8::10", "--port", "8080", "--proto", "udp", "--ttl", "30",
                        "--priority", "5", "--weight", "7", "--tag", "primary", "--tag", "eu",
                        "--meta", "version=1.4", "--meta", "zone=a"));
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    cr_assert_eq(req.kind, COMMANDS_REGISTER);
    cr_assert_str_eq(req.method, "PUT");
    cr_assert_str_eq(req.path, "/v1/services/web/instances/web-1");
    cr_assert_str_eq(req.service, "web");
    cr_assert_str_eq(req.id, "web-1");
    assert_body("{\"addresses\":[\"192.0.2.10\",\"2001:db8::10\"],\"port\":8080,\"proto\":\"udp\","
                "\"ttl\":30,\"priority\":5,\"weight\":7,\"tags\":[\"primary\",\"eu\"],"
                "\"meta\":{\"version\":\"1.4\",\"zone\":\"a\"}}");
    cr_assert_str_empty(out_text);
    cr_assert_str_empty(err_text);
}

Test(commands, register_builds_tcp_check_and_deregister_after)
{
    int rc = parse(ARGV("register", "web", "web-1", "--addr", "127.0.0.1", "--port", "8080",
                        "--check-tcp", "127.0.0.1:8080", "--check-interval", "500ms",
                        "--check-timeout", "200ms", "--check-success", "2", "--check-failures", "3",
                        "--deregister-after", "2m"));
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    assert_body("{\"addresses\":[\"127.0.0.1\"],\"port\":8080,"
                "\"check\":{\"tcp\":\"127.0.0.1:8080\",\"interval\":\"500ms\","
                "\"timeout\":\"200ms\",\"success_before_passing\":2,"
                "\"failures_before_critical\":3},\"deregister_after\":\"2m\"}");
}

Test(commands, register_builds_http_check_with_only_given_fields)
{
    int rc = parse(ARGV("register", "web", "web-1", "--addr", "::1", "--port", "80", "--check-http",
                        "http://[::1]:80/health"));
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    assert_body("{\"addresses\":[\"::1\"],\"port\":80,"
                "\"check\":{\"http\":\"http://[::1]:80/health\"}}");
    rc = parse(ARGV("register", "web", "web-1", "--addr", "::1", "--port", "80",
                    "--deregister-after", "0s"));
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    assert_body("{\"addresses\":[\"::1\"],\"port\":80,\"deregister_after\":\"0s\"}");
}

Test(commands, register_check_options_need_a_target)
{
    static const char *const opts[][2] = {
        {"--check-interval", "1s"},
        {"--check-timeout", "1s"},
        {"--check-success", "1"},
        {"--check-failures", "1"},
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char *opt = (char *)opts[i][0], *value = (char *)opts[i][1];
        char expected[96];
        snprintf(expected, sizeof(expected), "%s needs --check-tcp or --check-http", opt);
        assert_usage(
            parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80", opt, value)),
            expected, "register");
    }
}

Test(commands, register_takes_one_check)
{
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--check-tcp", "192.0.2.1:80", "--check-http", "http://192.0.2.1:80/")),
                 "give only one of --check-tcp and --check-http", "register");
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--check-tcp", "192.0.2.1:80", "--check-tcp", "192.0.2.1:81")),
                 "give only one of --check-tcp and --check-http", "register");
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--check-tcp", "")),
                 "invalid --check-tcp '': the target is empty", "register");
}

Test(commands, register_durations_are_validated)
{
    static const struct {
        const char *opt, *value, *message;
    } cases[] = {
        {"--check-interval", "10", "expected a duration like 500ms, 10s, 2m or 1h"},
        {"--check-interval", "10 s", "expected a duration like 500ms, 10s, 2m or 1h"},
        {"--check-timeout", "2S", "expected a duration like 500ms, 10s, 2m or 1h"},
        {"--check-timeout", "-1s", "expected a duration like 500ms, 10s, 2m or 1h"},
        {"--deregister-after", "soon", "expected a duration like 500ms, 10s, 2m or 1h"},
        {"--deregister-after", "169h", "at most 7 days"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *opt = (char *)cases[i].opt, *value = (char *)cases[i].value;
        char expected[128];
        snprintf(expected, sizeof(expected), "invalid %s '%s': %s", opt, value, cases[i].message);
        assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                                "--check-tcp", "192.0.2.1:80", opt, value)),
                     expected, "register");
    }
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--deregister-after", "1m", "--deregister-after", "2m")),
                 "--deregister-after given more than once", "register");
    cr_assert_eq(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--deregister-after", "168h")),
                 REGCTL_EXIT_OK, "7 days is the longest duration: %s", err_text);
}

Test(commands, register_check_thresholds_are_ranged)
{
    static const struct {
        const char *opt, *value;
        bool ok;
    } cases[] = {
        {"--check-success", "1", true},    {"--check-success", "100", true},
        {"--check-success", "0", false},   {"--check-success", "101", false},
        {"--check-failures", "1", true},   {"--check-failures", "100", true},
        {"--check-failures", "0", false},  {"--check-failures", "101", false},
        {"--check-failures", "2x", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *opt = (char *)cases[i].opt, *value = (char *)cases[i].value;
        int rc = parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--check-tcp", "192.0.2.1:80", opt, value));
        if (cases[i].ok) {
            cr_assert_eq(rc, REGCTL_EXIT_OK, "%s %s: %s", opt, value, err_text);
        } else {
            char expected[96];
            snprintf(expected, sizeof(expected), "invalid %s '%s': expected an integer 1-100", opt,
                     value);
            assert_usage(rc, expected, "register");
        }
    }
}

Test(commands, register_sends_only_given_fields)
{
    cr_assert_eq(parse(ARGV("register", "web", "web-1", "--addr", "192.0.2.10", "--port", "80")),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(req.body, "{\"addresses\":[\"192.0.2.10\"],\"port\":80}");
}

Test(commands, register_takes_options_anywhere)
{
    int rc = parse(ARGV("register", "--port", "80", "web", "--json", "--addr", "192.0.2.1", "web-1",
                        "--api", "tcp:127.0.0.1:8500", "--timeout", "2"));
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    cr_assert_str_eq(req.path, "/v1/services/web/instances/web-1");
    cr_assert(req.json);
    cr_assert_str_eq(req.api, "tcp:127.0.0.1:8500");
    cr_assert_eq(req.timeout_ms, 2000);
    assert_body("{\"addresses\":[\"192.0.2.1\"],\"port\":80}");
}

Test(commands, register_meta_splits_at_first_equals)
{
    int rc = parse(ARGV("register", "web", "web-1", "--addr", "192.0.2.1", "--port", "80", "--meta",
                        "url=http://x/?a=b", "--meta", "empty="));
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    assert_body("{\"addresses\":[\"192.0.2.1\"],\"port\":80,"
                "\"meta\":{\"url\":\"http://x/?a=b\",\"empty\":\"\"}}");
}

Test(commands, register_rejects_meta_without_key_or_equals)
{
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--meta", "novalue")),
                 "invalid --meta 'novalue': expected KEY=VALUE", "register");
    assert_usage(
        parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80", "--meta", "=v")),
        "invalid --meta '=v': expected KEY=VALUE", "register");
}

Test(commands, register_rejects_repeated_meta_key)
{
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--meta", "Version=1", "--meta", "version=2")),
                 "--meta key 'version' given more than once", "register");
}

Test(commands, register_rejects_meta_that_is_not_utf8)
{
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--meta", "k=\xff\xfe")),
                 "must be UTF-8", "register");
}

Test(commands, register_proto_is_tcp_or_udp_in_any_case)
{
    cr_assert_eq(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "53",
                            "--proto", "UDP")),
                 REGCTL_EXIT_OK);
    assert_body("{\"addresses\":[\"192.0.2.1\"],\"port\":53,\"proto\":\"udp\"}");
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "53",
                            "--proto", "sctp")),
                 "invalid --proto 'sctp': expected tcp or udp", "register");
}

Test(commands, register_requires_addr_and_port)
{
    assert_usage(parse(ARGV("register", "web", "w1", "--port", "80")),
                 "register needs at least one --addr", "register");
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1")),
                 "register needs --port", "register");
}

Test(commands, register_requires_service_and_id)
{
    assert_usage(parse(ARGV("register", "web", "--addr", "192.0.2.1", "--port", "80")),
                 "register needs SERVICE and ID", "register");
    assert_usage(parse(ARGV("register", "web", "w1", "extra", "--addr", "192.0.2.1")),
                 "unexpected argument 'extra'", "register");
}

Test(commands, register_rejects_bad_address)
{
    const char *bad[] = {"192.0.2", "192.0.2.256", "web.example", "2001:db8::g", "", " 1.2.3.4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *addr = (char *)bad[i];
        char expected[64];
        snprintf(expected, sizeof(expected), "invalid --addr '%s'", addr);
        assert_usage(parse(ARGV("register", "web", "w1", "--port", "80", "--addr", addr)), expected,
                     "register");
    }
}

/* Each numeric option with values just inside and just outside its range, and junk. */
Test(commands, register_numbers_are_strict_and_ranged)
{
    static const struct {
        const char *opt, *value;
        bool ok;
    } cases[] = {
        {"--port", "1", true},
        {"--port", "65535", true},
        {"--port", "0", false},
        {"--port", "65536", false},
        {"--port", "80x", false},
        {"--port", "-1", false},
        {"--port", "+80", false},
        {"--port", " 80", false},
        {"--port", "", false},
        {"--port", "0x50", false},
        {"--priority", "0", true},
        {"--priority", "65535", true},
        {"--priority", "65536", false},
        {"--weight", "0", true},
        {"--weight", "65535", true},
        {"--weight", "65536", false},
        {"--ttl", "1", true},
        {"--ttl", "4294967295", true},
        {"--ttl", "0", false},
        {"--ttl", "4294967296", false},
        {"--ttl", "99999999999999999999999", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *opt = (char *)cases[i].opt, *value = (char *)cases[i].value;
        char *port = strcmp(opt, "--port") == 0 ? "--priority" : "--port";
        char *port_value = strcmp(opt, "--port") == 0 ? "1" : "80";
        int rc = parse(
            ARGV("register", "web", "w1", "--addr", "192.0.2.1", port, port_value, opt, value));
        if (cases[i].ok) {
            cr_assert_eq(rc, REGCTL_EXIT_OK, "%s %s: %s", opt, value, err_text);
            json_t *body = json_loads(req.body, 0, NULL);
            cr_assert_not_null(body);
            json_int_t got = json_integer_value(json_object_get(body, opt + 2));
            json_decref(body);
            cr_assert_eq(got, strtoll(value, NULL, 10), "%s %s sent %lld", opt, value,
                         (long long)got);
        } else {
            char expected[96];
            snprintf(expected, sizeof(expected), "invalid %s '%s': expected an integer", opt,
                     value);
            assert_usage(rc, expected, "register");
        }
    }
}

Test(commands, register_rejects_repeated_single_value_options)
{
    assert_usage(
        parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80", "--port", "81")),
        "--port given more than once", "register");
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80",
                            "--proto", "tcp", "--proto", "udp")),
                 "--proto given more than once", "register");
}

Test(commands, register_checks_labels)
{
    assert_usage(parse(ARGV("register", "web_1", "w1", "--addr", "192.0.2.1", "--port", "80")),
                 "invalid service name 'web_1'", "register");
    assert_usage(parse(ARGV("register", "--addr", "192.0.2.1", "--port", "80", "--", "web", "-w1")),
                 "invalid instance id '-w1'", "register");
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port", "80", "--tag",
                            "_sub")),
                 "invalid tag '_sub'", "register");
    char long_label[DNSD_LABEL_MAX + 2];
    memset(long_label, 'a', DNSD_LABEL_MAX + 1);
    long_label[DNSD_LABEL_MAX + 1] = '\0';
    assert_usage(parse(ARGV("register", long_label, "w1", "--addr", "192.0.2.1", "--port", "80")),
                 "1 to 63 characters", "register");
    long_label[DNSD_LABEL_MAX] = '\0';
    cr_assert_eq(parse(ARGV("register", long_label, "w1", "--addr", "192.0.2.1", "--port", "80")),
                 REGCTL_EXIT_OK);
}

/* ---- deregister, heartbeat, list, health ---- */

Test(commands, deregister_sends_delete)
{
    cr_assert_eq(parse(ARGV("deregister", "web", "web-1")), REGCTL_EXIT_OK);
    cr_assert_eq(req.kind, COMMANDS_DEREGISTER);
    cr_assert_str_eq(req.method, "DELETE");
    cr_assert_str_eq(req.path, "/v1/services/web/instances/web-1");
    cr_assert_null(req.body);
}

Test(commands, heartbeat_sends_put_without_body)
{
    cr_assert_eq(parse(ARGV("heartbeat", "web", "web-1")), REGCTL_EXIT_OK);
    cr_assert_eq(req.kind, COMMANDS_HEARTBEAT);
    cr_assert_str_eq(req.method, "PUT");
    cr_assert_str_eq(req.path, "/v1/services/web/instances/web-1/heartbeat");
    cr_assert_null(req.body);
}

Test(commands, deregister_and_heartbeat_need_service_and_id)
{
    assert_usage(parse(ARGV("deregister", "web")), "deregister needs SERVICE and ID", "deregister");
    assert_usage(parse(ARGV("heartbeat", "web", "w1", "w2")), "unexpected argument 'w2'",
                 "heartbeat");
    assert_usage(parse(ARGV("heartbeat", "web", "w.1")), "invalid instance id 'w.1'", "heartbeat");
    assert_usage(parse(ARGV("deregister", "w b", "w1")), "invalid service name 'w b'",
                 "deregister");
}

Test(commands, list_without_service_gets_all)
{
    cr_assert_eq(parse(ARGV("list")), REGCTL_EXIT_OK);
    cr_assert_eq(req.kind, COMMANDS_LIST);
    cr_assert_str_eq(req.method, "GET");
    cr_assert_str_eq(req.path, "/v1/services");
    cr_assert_null(req.service);
}

Test(commands, list_with_service_gets_its_instances)
{
    cr_assert_eq(parse(ARGV("list", "web")), REGCTL_EXIT_OK);
    cr_assert_str_eq(req.path, "/v1/services/web");
    cr_assert_str_eq(req.service, "web");
    assert_usage(parse(ARGV("list", "_web")), "invalid service name '_web'", "list");
    assert_usage(parse(ARGV("list", "web", "db")), "unexpected argument 'db'", "list");
}

Test(commands, health_gets_health_and_takes_no_argument)
{
    cr_assert_eq(parse(ARGV("health")), REGCTL_EXIT_OK);
    cr_assert_eq(req.kind, COMMANDS_HEALTH);
    cr_assert_str_eq(req.method, "GET");
    cr_assert_str_eq(req.path, "/v1/health");
    assert_usage(parse(ARGV("health", "now")), "unexpected argument 'now'", "health");
}

Test(commands, snapshot_posts_and_takes_no_argument)
{
    cr_assert_eq(parse(ARGV("snapshot")), REGCTL_EXIT_OK);
    cr_assert_eq(req.kind, COMMANDS_SNAPSHOT);
    cr_assert_str_eq(req.method, "POST");
    cr_assert_str_eq(req.path, "/v1/snapshot");
    assert_usage(parse(ARGV("snapshot", "now")), "unexpected argument 'now'", "snapshot");
}

Test(commands, snapshot_reply_names_generation_and_count)
{
    cr_assert_eq(
        reply(ARGV("snapshot"), 200, "{\"snapshot\":true,\"generation\":7,\"instances\":42}\n"),
        REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "snapshot 7: 42 instances\n");
    cr_assert_eq(reply(ARGV("snapshot"), 400,
                       "{\"error\":\"persistence is off: dnsd runs without a data_dir\"}\n"),
                 REGCTL_EXIT_REFUSED);
    cr_assert_str_eq(err_text, "regctl: persistence is off: dnsd runs without a data_dir\n");
}

Test(commands, heartbeat_sends_status_and_note)
{
    cr_assert_eq(
        parse(ARGV("heartbeat", "web", "web-1", "--status", "Warning", "--note", "disk 90%")),
        REGCTL_EXIT_OK, "err: %s", err_text);
    cr_assert_eq(req.kind, COMMANDS_HEARTBEAT);
    cr_assert_str_eq(req.method, "PUT");
    cr_assert_str_eq(req.path, "/v1/services/web/instances/web-1/heartbeat");
    assert_body("{\"status\":\"warning\",\"note\":\"disk 90%\"}");
    cr_assert_eq(parse(ARGV("heartbeat", "--status", "critical", "web", "web-1")), REGCTL_EXIT_OK);
    assert_body("{\"status\":\"critical\"}");
    cr_assert_eq(parse(ARGV("heartbeat", "web", "web-1", "--note", "")), REGCTL_EXIT_OK);
    assert_body("{\"note\":\"\"}");
    cr_assert_eq(parse(ARGV("heartbeat", "web", "web-1", "--status", "passing")), REGCTL_EXIT_OK);
    assert_body("{\"status\":\"passing\"}");
}

Test(commands, heartbeat_rejects_bad_status_and_note)
{
    assert_usage(parse(ARGV("heartbeat", "web", "web-1", "--status", "ok")),
                 "invalid --status 'ok': expected passing, warning or critical", "heartbeat");
    assert_usage(
        parse(ARGV("heartbeat", "web", "web-1", "--status", "warning", "--status", "critical")),
        "--status given more than once", "heartbeat");
    assert_usage(parse(ARGV("heartbeat", "web", "web-1", "--note", "a", "--note", "b")),
                 "--note given more than once", "heartbeat");
    assert_usage(parse(ARGV("heartbeat", "web", "web-1", "--note", "\xff")),
                 "invalid --note: it must be UTF-8", "heartbeat");
    assert_usage(parse(ARGV("heartbeat", "web", "web-1", "--reason", "x")),
                 "unknown option '--reason'", "heartbeat");
}

Test(commands, maintenance_on_sends_enabled_and_reason)
{
    cr_assert_eq(parse(ARGV("maintenance", "web", "web-1", "on", "--reason", "deploy")),
                 REGCTL_EXIT_OK, "err: %s", err_text);
    cr_assert_eq(req.kind, COMMANDS_MAINTENANCE);
    cr_assert_str_eq(req.method, "PUT");
    cr_assert_str_eq(req.path, "/v1/services/web/instances/web-1/maintenance");
    cr_assert_str_eq(req.service, "web");
    cr_assert_str_eq(req.id, "web-1");
    cr_assert(req.maintenance);
    assert_body("{\"enabled\":true,\"reason\":\"deploy\"}");
    cr_assert_eq(parse(ARGV("maintenance", "web", "web-1", "on")), REGCTL_EXIT_OK);
    assert_body("{\"enabled\":true}");
}

Test(commands, maintenance_off_sends_disabled)
{
    cr_assert_eq(parse(ARGV("maintenance", "web", "web-1", "off")), REGCTL_EXIT_OK);
    cr_assert_not(req.maintenance);
    assert_body("{\"enabled\":false}");
}

Test(commands, maintenance_needs_on_or_off)
{
    assert_usage(parse(ARGV("maintenance", "web", "web-1")),
                 "maintenance needs SERVICE, ID and on or off", "maintenance");
    assert_usage(parse(ARGV("maintenance", "web", "web-1", "yes")),
                 "invalid state 'yes': expected on or off", "maintenance");
    assert_usage(parse(ARGV("maintenance", "web", "web-1", "off", "--reason", "done")),
                 "--reason goes with on, not with off", "maintenance");
    assert_usage(parse(ARGV("maintenance", "web", "web-1", "on", "now")),
                 "unexpected argument 'now'", "maintenance");
    assert_usage(parse(ARGV("maintenance", "web", "web_1", "on")), "invalid instance id 'web_1'",
                 "maintenance");
}

Test(commands, watch_parses_count_and_wait)
{
    cr_assert_eq(parse(ARGV("watch", "web", "--count", "3", "--wait", "30s", "--json")),
                 REGCTL_EXIT_OK, "err: %s", err_text);
    cr_assert_eq(req.kind, COMMANDS_WATCH);
    cr_assert_str_eq(req.method, "GET");
    cr_assert_str_eq(req.path, "/v1/services/web");
    cr_assert_str_eq(req.service, "web");
    cr_assert_eq(req.watch_count, 3);
    cr_assert_eq(req.watch_wait_ms, 30000);
    cr_assert(req.json);
    cr_assert_null(req.body);
}

Test(commands, watch_defaults_to_forever_and_dnsd_wait)
{
    cr_assert_eq(parse(ARGV("watch", "web")), REGCTL_EXIT_OK);
    cr_assert_eq(req.watch_count, 0);
    cr_assert_eq(req.watch_wait_ms, COMMANDS_WATCH_DEFAULT_WAIT_MS);
    cr_assert_eq(COMMANDS_WATCH_DEFAULT_WAIT_MS, 300000);
}

Test(commands, watch_rejects_bad_count_wait_and_arguments)
{
    assert_usage(parse(ARGV("watch")), "watch needs SERVICE", "watch");
    assert_usage(parse(ARGV("watch", "web", "db")), "unexpected argument 'db'", "watch");
    assert_usage(parse(ARGV("watch", "_web")), "invalid service name '_web'", "watch");
    assert_usage(parse(ARGV("watch", "web", "--count", "0")),
                 "invalid --count '0': expected an integer 1-4294967295", "watch");
    assert_usage(parse(ARGV("watch", "web", "--count", "2", "--count", "3")),
                 "--count given more than once", "watch");
    assert_usage(parse(ARGV("watch", "web", "--wait", "30")),
                 "invalid --wait '30': expected a duration like 500ms, 10s, 2m or 1h", "watch");
    assert_usage(parse(ARGV("watch", "web", "--wait", "0s")),
                 "invalid --wait '0s': more than 0 and at most 10m", "watch");
    assert_usage(parse(ARGV("watch", "web", "--wait", "601s")),
                 "invalid --wait '601s': more than 0 and at most 10m", "watch");
    cr_assert_eq(parse(ARGV("watch", "web", "--wait", "10m")), REGCTL_EXIT_OK);
    cr_assert_eq(req.watch_wait_ms, 600000);
}

Test(commands, watch_path_carries_index_and_wait)
{
    cr_assert_eq(parse(ARGV("watch", "web", "--wait", "1500ms")), REGCTL_EXIT_OK);
    char *path = commands_watch_path(&req, 42);
    cr_assert_str_eq(path, "/v1/services/web?index=42&wait=1500ms");
    free(path);
    cr_assert_eq(parse(ARGV("watch", "db")), REGCTL_EXIT_OK);
    path = commands_watch_path(&req, UINT64_MAX);
    cr_assert_str_eq(path, "/v1/services/db?index=18446744073709551615&wait=5m");
    free(path);
}

/* ---- global options ---- */

Test(commands, defaults_without_global_options)
{
    cr_assert_eq(parse(ARGV("health")), REGCTL_EXIT_OK);
    cr_assert_null(req.api);
    cr_assert_not(req.json);
    cr_assert_eq(req.timeout_ms, COMMANDS_DEFAULT_TIMEOUT_MS);
}

Test(commands, global_options_before_or_after_the_command)
{
    cr_assert_eq(parse(ARGV("--api", "unix:/tmp/a.sock", "--json", "--timeout", "3", "list")),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(req.api, "unix:/tmp/a.sock");
    cr_assert(req.json);
    cr_assert_eq(req.timeout_ms, 3000);
    cr_assert_eq(parse(ARGV("list", "web", "--api=tcp:[::1]:8500", "--json", "--timeout=0.25")),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(req.api, "tcp:[::1]:8500");
    cr_assert(req.json);
    cr_assert_eq(req.timeout_ms, 250);
    cr_assert_str_eq(req.service, "web");
}

Test(commands, timeout_must_be_positive_seconds)
{
    const char *bad[] = {"0", "0.0", "-1", "abc", "1e3", "0x10", "", "1.5s", "86401", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char expected[64];
        snprintf(expected, sizeof(expected), "invalid --timeout '%s'", bad[i]);
        assert_usage(parse(ARGV("--timeout", (char *)bad[i], "health")), expected, NULL);
        assert_usage(parse(ARGV("health", "--timeout", (char *)bad[i])), expected, "health");
    }
    cr_assert_eq(parse(ARGV("--timeout", "86400", "health")), REGCTL_EXIT_OK);
    cr_assert_eq(req.timeout_ms, 86400000L);
    cr_assert_eq(parse(ARGV("--timeout", "0.0001", "health")), REGCTL_EXIT_OK);
    cr_assert_eq(req.timeout_ms, 1, "a tiny timeout still waits 1 ms");
}

Test(commands, api_address_prefers_option_then_env_then_default)
{
    cr_assert_str_eq(commands_api_address("tcp:h:1", "unix:/env"), "tcp:h:1");
    cr_assert_str_eq(commands_api_address(NULL, "unix:/env"), "unix:/env");
    cr_assert_str_eq(commands_api_address(NULL, ""), "unix:" DNSD_DEFAULT_API_SOCKET);
    cr_assert_str_eq(commands_api_address(NULL, NULL), "unix:/run/dnsd/api.sock");
}

Test(commands, token_option_is_global_and_kept)
{
    cr_assert_eq(parse(ARGV("--token", "abc.DEF-123", "list")), REGCTL_EXIT_OK);
    cr_assert_str_eq(req.token, "abc.DEF-123");
    cr_assert_eq(parse(ARGV("health", "--token", "t0k3n")), REGCTL_EXIT_OK);
    cr_assert_str_eq(req.token, "t0k3n");
    cr_assert_eq(parse(ARGV("list")), REGCTL_EXIT_OK);
    cr_assert_null(req.token);
}

Test(commands, token_with_blanks_is_usage_error_without_echo)
{
    assert_usage(parse(ARGV("--token", "secret value", "list")),
                 "invalid --token: expected printable ASCII without blanks", NULL);
    cr_assert_null(strstr(err_text, "secret"), "the token is echoed: %s", err_text);
    assert_usage(parse(ARGV("list", "--token", "")), "invalid --token", "list");
}

Test(commands, cacert_option_is_global_and_kept)
{
    cr_assert_eq(parse(ARGV("--cacert", "/etc/dnsd/ca.pem", "list")), REGCTL_EXIT_OK);
    cr_assert_str_eq(req.cacert, "/etc/dnsd/ca.pem");
    cr_assert_eq(parse(ARGV("health", "--cacert", "ca.pem")), REGCTL_EXIT_OK);
    cr_assert_str_eq(req.cacert, "ca.pem");
    cr_assert_eq(parse(ARGV("list")), REGCTL_EXIT_OK);
    cr_assert_null(req.cacert);
    assert_usage(parse(ARGV("list", "--cacert", "")), "invalid --cacert", "list");
}

Test(commands, cacert_prefers_option_then_env)
{
    cr_assert_str_eq(commands_cacert("opt.pem", "env.pem"), "opt.pem");
    cr_assert_str_eq(commands_cacert(NULL, "env.pem"), "env.pem");
    cr_assert_null(commands_cacert(NULL, ""));
    cr_assert_null(commands_cacert(NULL, NULL));
}

Test(commands, token_prefers_option_then_env)
{
    cr_assert_str_eq(commands_token("opt", "env"), "opt");
    cr_assert_str_eq(commands_token(NULL, "env"), "env");
    cr_assert_null(commands_token(NULL, ""));
    cr_assert_null(commands_token(NULL, NULL));
}

Test(commands, token_validity)
{
    cr_assert(commands_token_is_valid("a"));
    cr_assert(commands_token_is_valid("Zz09-._~+/=!"));
    cr_assert_not(commands_token_is_valid(""));
    cr_assert_not(commands_token_is_valid(NULL));
    cr_assert_not(commands_token_is_valid("a b"));
    cr_assert_not(commands_token_is_valid("a\r\nX-Evil: 1"));
    cr_assert_not(commands_token_is_valid("caf\xc3\xa9"));
}

/* ---- bad usage in general ---- */

Test(commands, no_command_is_usage_error)
{
    assert_usage(parse(ARGV("--json")), "no command given", NULL);
}

Test(commands, unknown_command_is_usage_error)
{
    assert_usage(parse(ARGV("lsit")), "unknown command 'lsit'", NULL);
}

Test(commands, unknown_option_is_usage_error)
{
    assert_usage(parse(ARGV("--verbose", "list")), "unknown option '--verbose'", NULL);
    assert_usage(parse(ARGV("list", "--bogus")), "unknown option '--bogus'", "list");
    assert_usage(parse(ARGV("register", "web", "w1", "-x")), "unknown option '-x'", "register");
}

Test(commands, option_without_its_value_is_usage_error)
{
    assert_usage(parse(ARGV("register", "web", "w1", "--addr", "192.0.2.1", "--port")),
                 "option '--port' needs a value", "register");
    assert_usage(parse(ARGV("--api")), "option '--api' needs a value", NULL);
}

Test(commands, value_for_a_flag_is_usage_error)
{
    assert_usage(parse(ARGV("health", "--json=yes")), "option '--json' takes no value", "health");
}

Test(commands, ambiguous_abbreviation_is_usage_error)
{
    assert_usage(parse(ARGV("register", "web", "w1", "--t", "3")), "option '--t' is ambiguous",
                 "register");
    cr_assert_eq(parse(ARGV("register", "web", "w1", "--ad", "192.0.2.1", "--po", "80")),
                 REGCTL_EXIT_OK, "unique abbreviations work, as with any getopt_long tool");
}

/* ---- help and version ---- */

Test(commands, help_option_prints_usage)
{
    cr_assert_eq(parse(ARGV("--help")), REGCTL_EXIT_OK);
    cr_assert_eq(req.kind, COMMANDS_NONE);
    cr_assert(
        starts_with(out_text, "usage: regctl [--api unix:PATH|tcp:HOST:PORT|https:HOST:PORT]"));
    cr_assert(strstr(out_text, "--cacert FILE") != NULL);
    cr_assert(strstr(out_text, "register SERVICE ID") != NULL);
    cr_assert(strstr(out_text, "unix:/run/dnsd/api.sock") != NULL);
    cr_assert_str_empty(err_text);
    char *usage = strdup(out_text);
    cr_assert_eq(parse(ARGV("help")), REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, usage, "regctl help prints the same text");
    cr_assert_eq(parse(ARGV("-h")), REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, usage);
    free(usage);
}

Test(commands, command_help_prints_its_usage)
{
    static const char *const names[] = {"register", "deregister", "heartbeat", "maintenance",
                                        "list",     "watch",      "health",    "help"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *name = (char *)names[i];
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "usage: regctl %s", name);
        cr_assert_eq(parse(ARGV(name, "--help")), REGCTL_EXIT_OK);
        cr_assert_eq(req.kind, COMMANDS_NONE, "%s --help sends nothing", name);
        cr_assert(starts_with(out_text, prefix), "%s", out_text);
        char *text = strdup(out_text);
        cr_assert_eq(parse(ARGV("help", name)), REGCTL_EXIT_OK);
        cr_assert_str_eq(out_text, text, "help %s matches %s --help", name, name);
        free(text);
    }
}

Test(commands, help_for_unknown_command_is_usage_error)
{
    assert_usage(parse(ARGV("help", "frobnicate")), "unknown command 'frobnicate'", "help");
    assert_usage(parse(ARGV("help", "list", "health")), "unexpected argument 'health'", "help");
}

Test(commands, version_prints_version)
{
    cr_assert_eq(parse(ARGV("--version")), REGCTL_EXIT_OK);
    cr_assert_eq(req.kind, COMMANDS_NONE);
    cr_assert_str_eq(out_text, "regctl " DNSD_VERSION "\n");
}

/* ---- replies ---- */

Test(commands, register_reply_prints_granted_lease)
{
    int rc = reply(ARGV("register", "Web", "Web-1", "--addr", "192.0.2.10", "--port", "8080"), 201,
                   INSTANCE);
    cr_assert_eq(rc, REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "registered web/web-1 (lease 30s)\n", "names as dnsd echoed them");
    cr_assert_str_empty(err_text);
}

Test(commands, heartbeat_reply_prints_renewed)
{
    cr_assert_eq(reply(ARGV("heartbeat", "web", "web-1"), 200, INSTANCE), REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "renewed web/web-1 (lease 30s)\n");
}

Test(commands, heartbeat_reply_shows_health_when_not_passing)
{
    cr_assert_eq(
        reply(ARGV("heartbeat", "web", "web-1", "--status", "warning", "--note", "disk 90%"), 200,
              "{\"service\":\"web\",\"id\":\"web-1\",\"ttl\":30,"
              "\"health\":\"warning\",\"reason\":\"heartbeat: disk 90%\"}\n"),
        REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text,
                     "renewed web/web-1 (lease 30s); health warning: heartbeat: disk 90%\n");
    cr_assert_eq(reply(ARGV("heartbeat", "web", "web-1"), 200,
                       "{\"service\":\"web\",\"id\":\"web-1\",\"ttl\":30,"
                       "\"health\":\"maintenance\",\"reason\":\"\"}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "renewed web/web-1 (lease 30s); health maintenance\n");
}

Test(commands, maintenance_reply_prints_state_and_reason)
{
    cr_assert_eq(reply(ARGV("maintenance", "web", "web-1", "on", "--reason", "deploy"), 200,
                       "{\"service\":\"web\",\"id\":\"web-1\",\"health\":\"maintenance\","
                       "\"maintenance\":{\"enabled\":true,\"reason\":\"deploy\"}}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "web/web-1 maintenance on (deploy)\n");
    cr_assert_eq(reply(ARGV("maintenance", "web", "web-1", "on"), 200,
                       "{\"service\":\"web\",\"id\":\"web-1\",\"maintenance\":"
                       "{\"enabled\":true,\"reason\":\"maintenance mode\"}}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "web/web-1 maintenance on (maintenance mode)\n",
                     "the reason dnsd stored, default included");
    cr_assert_eq(reply(ARGV("maintenance", "web", "web-1", "on"), 200,
                       "{\"service\":\"web\",\"id\":\"web-1\",\"health\":\"maintenance\","
                       "\"reason\":\"maintenance mode\",\"maintenance\":{\"enabled\":true,"
                       "\"reason\":null}}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "web/web-1 maintenance on (maintenance mode)\n",
                     "without a reason of its own, the instance's reason");
    cr_assert_eq(reply(ARGV("maintenance", "web", "web-1", "off"), 200,
                       "{\"service\":\"web\",\"id\":\"web-1\",\"health\":\"passing\","
                       "\"maintenance\":{\"enabled\":false}}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "web/web-1 maintenance off\n");
}

Test(commands, deregister_reply_prints_deregistered)
{
    cr_assert_eq(reply(ARGV("deregister", "web", "web-1"), 200,
                       "{\"service\":\"web\",\"id\":\"web-1\",\"deregistered\":true}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "deregistered web/web-1\n");
}

Test(commands, list_reply_prints_service_table)
{
    int rc = reply(ARGV("list"), 200,
                   "{\"services\":[{\"name\":\"web\",\"instances\":3},"
                   "{\"name\":\"database-primary\",\"instances\":12}]}\n");
    cr_assert_eq(rc, REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "SERVICE           INSTANCES\n"
                               "web               3\n"
                               "database-primary  12\n");
}

Test(commands, list_service_reply_prints_instance_table)
{
    int rc = reply(ARGV("list", "web"), 200,
                   "{\"service\":\"web\",\"instances\":["
                   "{\"id\":\"web-1\",\"addresses\":[\"192.0.2.10\",\"2001:db8::10\"],"
                   "\"port\":8080,\"proto\":\"tcp\",\"priority\":0,\"weight\":1,"
                   "\"tags\":[\"primary\",\"eu\"],\"meta\":{\"version\":\"1.4\",\"zone\":\"a\"},"
                   "\"ttl\":30,\"health\":\"passing\",\"lease_remaining_ms\":27312},"
                   "{\"id\":\"web-22\",\"addresses\":[\"192.0.2.11\"],\"port\":443,"
                   "\"proto\":\"udp\",\"priority\":10,\"weight\":100,\"tags\":[],\"meta\":{},"
                   "\"ttl\":5,\"health\":\"passing\",\"lease_remaining_ms\":950}]}\n");
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    cr_assert_str_eq(out_text,
                     "ID      ADDRESSES                PORT  PROTO  HEALTH   REASON  HEARTBEAT  "
                     "LEASE LEFT  TAGS        META                PRIO  WEIGHT\n"
                     "web-1   192.0.2.10,2001:db8::10  8080  tcp    passing  -       -          "
                     "27.3s       primary,eu  version=1.4,zone=a  0     1\n"
                     "web-22  192.0.2.11               443   udp    passing  -       -          "
                     "0.9s        -           -                   10    100\n");
}

Test(commands, list_service_reply_shows_health_reason_heartbeat_and_lease)
{
    int rc = reply(ARGV("list", "web"), 200,
                   "{\"service\":\"web\",\"instances\":["
                   "{\"id\":\"web-1\",\"addresses\":[\"192.0.2.10\"],\"port\":80,"
                   "\"proto\":\"tcp\",\"priority\":0,\"weight\":1,\"tags\":[],\"meta\":{},"
                   "\"health\":\"passing\",\"reason\":\"\",\"last_heartbeat_ms_ago\":1234,"
                   "\"lease_remaining_ms\":28766},"
                   "{\"id\":\"web-2\",\"addresses\":[\"192.0.2.11\"],\"port\":80,"
                   "\"proto\":\"tcp\",\"priority\":0,\"weight\":1,\"tags\":[],\"meta\":{},"
                   "\"health\":\"critical\",\"reason\":\"lease expired\","
                   "\"last_heartbeat_ms_ago\":725000,\"lease_remaining_ms\":0},"
                   "{\"id\":\"web-3\",\"addresses\":[\"192.0.2.12\"],\"port\":80,"
                   "\"proto\":\"tcp\",\"priority\":0,\"weight\":1,\"tags\":[],\"meta\":{},"
                   "\"health\":\"maintenance\",\"reason\":\"deploy\","
                   "\"last_heartbeat_ms_ago\":11100000,\"lease_remaining_ms\":90000}]}\n");
    cr_assert_eq(rc, REGCTL_EXIT_OK, "err: %s", err_text);
    cr_assert_str_eq(out_text,
                     "ID     ADDRESSES   PORT  PROTO  HEALTH       REASON         HEARTBEAT   "
                     "LEASE LEFT  TAGS  META  PRIO  WEIGHT\n"
                     "web-1  192.0.2.10  80    tcp    passing      -              1.2s ago    "
                     "28.8s       -     -     0     1\n"
                     "web-2  192.0.2.11  80    tcp    critical     lease expired  12m05s ago  "
                     "expired     -     -     0     1\n"
                     "web-3  192.0.2.12  80    tcp    maintenance  deploy         3h05m ago   "
                     "1m30s       -     -     0     1\n");
}

Test(commands, list_reply_without_entries_says_so)
{
    cr_assert_eq(reply(ARGV("list"), 200, "{\"services\":[]}\n"), REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "no services registered\n");
    cr_assert_eq(reply(ARGV("list", "web"), 200, "{\"service\":\"web\",\"instances\":[]}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "no instances of web registered\n");
}

Test(commands, health_reply_prints_counts)
{
    cr_assert_eq(reply(ARGV("health"), 200, "{\"status\":\"ok\",\"services\":2,\"instances\":5}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "ok: 2 services, 5 instances\n");
}

Test(commands, json_option_prints_reply_as_json)
{
    cr_assert_eq(reply(ARGV("--json", "health"), 200,
                       "{\"status\":\"ok\",\"services\":2,\"instances\":5}\n"),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text,
                     "{\n  \"status\": \"ok\",\n  \"services\": 2,\n  \"instances\": 5\n}\n");
    cr_assert_eq(reply(ARGV("list", "web", "--json"), 200, INSTANCE), REGCTL_EXIT_OK);
    json_t *printed = json_loads(out_text, 0, NULL);
    json_t *sent = json_loads(INSTANCE, 0, NULL);
    cr_assert(json_equal(printed, sent), "--json prints the reply whatever its shape");
    json_decref(printed);
    json_decref(sent);
}

Test(commands, error_reply_prints_error_and_field)
{
    int rc = reply(ARGV("heartbeat", "web", "web-9"), 404,
                   "{\"error\":\"instance web/web-9 is not registered\",\"field\":\"id\"}\n");
    cr_assert_eq(rc, REGCTL_EXIT_REFUSED);
    cr_assert_str_empty(out_text);
    cr_assert_str_eq(err_text, "regctl: instance web/web-9 is not registered (field: id)\n");
}

Test(commands, error_reply_without_field)
{
    cr_assert_eq(reply(ARGV("--json", "list"), 405, "{\"error\":\"method not allowed\"}\n"),
                 REGCTL_EXIT_REFUSED);
    cr_assert_str_empty(out_text, "errors go to stderr even with --json");
    cr_assert_str_eq(err_text, "regctl: method not allowed\n");
}

Test(commands, starting_server_is_not_ready)
{
    cr_assert_eq(reply(ARGV("health"), 503, "{\"status\":\"starting\"}\n"), REGCTL_EXIT_REFUSED);
    cr_assert_str_eq(err_text, "regctl: dnsd is not ready (status: starting)\n");
}

Test(commands, server_error_without_json_is_refused)
{
    cr_assert_eq(reply(ARGV("list"), 500, "<html>Internal error</html>"), REGCTL_EXIT_REFUSED);
    cr_assert_str_eq(err_text, "regctl: dnsd replied HTTP 500 with a body that is not JSON\n");
    cr_assert_eq(reply(ARGV("list"), 502, "{}"), REGCTL_EXIT_REFUSED);
    cr_assert_str_eq(err_text, "regctl: dnsd replied HTTP 502 without an error message\n");
}

Test(commands, success_without_json_is_refused)
{
    cr_assert_eq(reply(ARGV("list"), 200, "services: web"), REGCTL_EXIT_REFUSED);
    cr_assert_str_empty(out_text);
    cr_assert(starts_with(err_text, "regctl: dnsd replied HTTP 200 with a body that is not JSON"),
              "%s", err_text);
    cr_assert_eq(reply(ARGV("health"), 200, ""), REGCTL_EXIT_REFUSED);
    cr_assert(strstr(err_text, "not JSON") != NULL);
}

Test(commands, success_with_unexpected_shape_is_refused)
{
    cr_assert_eq(reply(ARGV("list"), 200, "{\"services\":3}"), REGCTL_EXIT_REFUSED);
    cr_assert_str_eq(err_text, "regctl: unexpected reply from dnsd: no \"services\" list\n");
    cr_assert_eq(reply(ARGV("list", "web"), 200, "[1,2]"), REGCTL_EXIT_REFUSED);
    cr_assert_str_eq(err_text, "regctl: unexpected reply from dnsd: not a JSON object\n");
    cr_assert_eq(reply(ARGV("health"), 200, "{\"status\":\"ok\"}"), REGCTL_EXIT_REFUSED);
    cr_assert(strstr(err_text, "unexpected reply") != NULL);
}

Test(commands, control_characters_in_replies_are_masked)
{
    cr_assert_eq(
        reply(ARGV("list"), 200, "{\"services\":[{\"name\":\"a\\u001b[2Jb\",\"instances\":1}]}"),
        REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "SERVICE  INSTANCES\n"
                               "a?[2Jb   1\n");
    cr_assert_eq(reply(ARGV("list"), 400, "{\"error\":\"bad\\nthing\"}"), REGCTL_EXIT_REFUSED);
    cr_assert_str_eq(err_text, "regctl: bad?thing\n");
}

/* ---- watch output ---- */

static const char WATCH_REPLY[] =
    "{\"service\":\"web\",\"instances\":["
    "{\"id\":\"web-1\",\"health\":\"passing\",\"reason\":\"\"},"
    "{\"id\":\"web-2\",\"health\":\"warning\",\"reason\":\"heartbeat: disk 90%\"},"
    "{\"id\":\"web-3\",\"health\":\"critical\",\"reason\":\"lease expired\"},"
    "{\"id\":\"web-4\",\"health\":\"passing\",\"reason\":\"\"},"
    "{\"id\":\"web-5\",\"health\":\"maintenance\",\"reason\":\"\"}]}\n";

#define WATCH_TIME ((time_t)1795666200) /* 2026-11-26T04:10:00Z */

/* Render one watch state for the command line in argv, capturing out and err. */
static int watch_state(char **argv, const char *body, uint64_t index)
{
    cr_assert_eq(parse(argv), REGCTL_EXIT_OK);
    free(out_text);
    free(err_text);
    size_t out_len, err_len;
    FILE *out = open_memstream(&out_text, &out_len);
    FILE *err = open_memstream(&err_text, &err_len);
    cr_assert(out != NULL && err != NULL);
    int rc = commands_print_watch(&req, body, strlen(body), index, WATCH_TIME, out, err);
    fclose(out);
    fclose(err);
    return rc;
}

Test(commands, watch_prints_summary_and_instances_not_passing)
{
    cr_assert_eq(watch_state(ARGV("watch", "web"), WATCH_REPLY, 42), REGCTL_EXIT_OK, "err: %s",
                 err_text);
    cr_assert_str_eq(out_text, "2026-11-26T04:10:00Z web index 42: 2 passing, 1 warning, "
                               "1 critical, 1 maintenance\n"
                               "  web-2 warning: heartbeat: disk 90%\n"
                               "  web-3 critical: lease expired\n"
                               "  web-5 maintenance\n");
    cr_assert_str_empty(err_text);
}

Test(commands, watch_prints_empty_service)
{
    cr_assert_eq(watch_state(ARGV("watch", "db"), "{\"service\":\"db\",\"instances\":[]}", 7),
                 REGCTL_EXIT_OK);
    cr_assert_str_eq(out_text, "2026-11-26T04:10:00Z db index 7: 0 passing, 0 warning, "
                               "0 critical, 0 maintenance\n");
}

Test(commands, watch_json_prints_each_state_on_one_line)
{
    cr_assert_eq(watch_state(ARGV("watch", "web", "--json"), WATCH_REPLY, 42), REGCTL_EXIT_OK);
    size_t len = strlen(out_text);
    cr_assert(len > 1 && out_text[len - 1] == '\n');
    cr_assert_eq(strchr(out_text, '\n'), out_text + len - 1, "one line: %s", out_text);
    json_t *printed = json_loads(out_text, 0, NULL);
    json_t *sent = json_loads(WATCH_REPLY, 0, NULL);
    cr_assert(json_equal(printed, sent), "the reply as sent: %s", out_text);
    json_decref(printed);
    json_decref(sent);
}

Test(commands, watch_reply_without_instances_is_refused)
{
    cr_assert_eq(watch_state(ARGV("watch", "web"), "{\"service\":\"web\"}", 1),
                 REGCTL_EXIT_REFUSED);
    cr_assert_str_empty(out_text);
    cr_assert_str_eq(err_text, "regctl: unexpected reply from dnsd: no \"instances\" list\n");
    cr_assert_eq(watch_state(ARGV("watch", "web"), "not json", 1), REGCTL_EXIT_REFUSED);
    cr_assert(starts_with(err_text, "regctl: dnsd replied with a body that is not JSON"), "%s",
              err_text);
}

Test(commands, watch_masks_control_characters)
{
    cr_assert_eq(watch_state(ARGV("watch", "web"),
                             "{\"service\":\"web\",\"instances\":[{\"id\":\"w1\","
                             "\"health\":\"critical\",\"reason\":\"check: a\\u001b[2Jb\"}]}",
                             3),
                 REGCTL_EXIT_OK);
    cr_assert(strstr(out_text, "  w1 critical: check: a?[2Jb\n") != NULL, "%s", out_text);
}

/* ---- exit statuses ---- */

Test(commands, exit_status_for_http_status)
{
    cr_assert_eq(commands_exit_for_status(200), REGCTL_EXIT_OK);
    cr_assert_eq(commands_exit_for_status(201), REGCTL_EXIT_OK);
    cr_assert_eq(commands_exit_for_status(299), REGCTL_EXIT_OK);
    cr_assert_eq(commands_exit_for_status(199), REGCTL_EXIT_REFUSED);
    cr_assert_eq(commands_exit_for_status(304), REGCTL_EXIT_REFUSED);
    cr_assert_eq(commands_exit_for_status(404), REGCTL_EXIT_REFUSED);
    cr_assert_eq(commands_exit_for_status(503), REGCTL_EXIT_REFUSED);
}

Test(commands, exit_status_for_client_error)
{
    cr_assert_eq(commands_exit_for_client_error(DNSD_EIO), REGCTL_EXIT_UNREACHABLE);
    cr_assert_eq(commands_exit_for_client_error(DNSD_EINVAL), REGCTL_EXIT_USAGE);
    cr_assert_eq(commands_exit_for_client_error(DNSD_ENOMEM), REGCTL_EXIT_REFUSED);
    cr_assert_eq(commands_exit_for_client_error(DNSD_ERANGE), REGCTL_EXIT_REFUSED);
    cr_assert_eq(REGCTL_EXIT_OK, 0);
    cr_assert_eq(REGCTL_EXIT_REFUSED, 1);
    cr_assert_eq(REGCTL_EXIT_USAGE, 2);
    cr_assert_eq(REGCTL_EXIT_UNREACHABLE, 3);
}

/* ---- client: API addresses ---- */

Test(client, unix_address_parses)
{
    struct client_endpoint ep = {0};
    cr_assert_eq(client_endpoint_parse("unix:/run/dnsd/api.sock", &ep), 0);
    cr_assert_str_eq(ep.unix_path, "/run/dnsd/api.sock");
    cr_assert_str_eq(ep.base_url, "http://localhost");
    char *url = client_url(&ep, "/v1/health");
    cr_assert_str_eq(url, "http://localhost/v1/health");
    free(url);
    client_endpoint_clear(&ep);
    cr_assert_null(ep.unix_path);
    cr_assert_null(ep.base_url);
}

Test(client, tcp_address_parses)
{
    static const struct {
        const char *api, *base;
    } cases[] = {
        {"tcp:127.0.0.1:8500", "http://127.0.0.1:8500"},
        {"tcp:localhost:1", "http://localhost:1"},
        {"tcp:[::1]:8500", "http://[::1]:8500"},
        {"tcp:[2001:db8::5]:65535", "http://[2001:db8::5]:65535"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client_endpoint ep = {0};
        cr_assert_eq(client_endpoint_parse(cases[i].api, &ep), 0, "%s", cases[i].api);
        cr_assert_null(ep.unix_path);
        cr_assert_str_eq(ep.base_url, cases[i].base);
        char *url = client_url(&ep, "/v1/services/web");
        char expected[128];
        snprintf(expected, sizeof(expected), "%s/v1/services/web", cases[i].base);
        cr_assert_str_eq(url, expected);
        free(url);
        client_endpoint_clear(&ep);
    }
}

Test(client, https_address_parses_and_asks_for_tls)
{
    static const struct {
        const char *api, *base;
    } cases[] = {
        {"https:127.0.0.1:8443", "https://127.0.0.1:8443"},
        {"https://127.0.0.1:8443", "https://127.0.0.1:8443"},
        {"https:dnsd.example:443", "https://dnsd.example:443"},
        {"https://[::1]:8443", "https://[::1]:8443"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client_endpoint ep = {0};
        cr_assert_eq(client_endpoint_parse(cases[i].api, &ep), 0, "%s", cases[i].api);
        cr_assert(ep.tls, "%s", cases[i].api);
        cr_assert_null(ep.unix_path);
        cr_assert_str_eq(ep.base_url, cases[i].base);
        client_endpoint_clear(&ep);
        cr_assert_not(ep.tls);
    }
    struct client_endpoint ep = {0};
    cr_assert_eq(client_endpoint_parse("tcp:127.0.0.1:8500", &ep), 0);
    cr_assert_not(ep.tls, "tcp: stays plain HTTP");
    client_endpoint_clear(&ep);
}

Test(client, malformed_https_address_is_rejected)
{
    static const char *const bad[] = {
        "https:",           "https://",        "https:host",    "https://host",
        "https:host:0",     "https://[::1]",   "https:::1:443", "https://user@host:443",
        "https:host/x:443", "https:/host:443",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct client_endpoint ep = {0};
        cr_assert_eq(client_endpoint_parse(bad[i], &ep), DNSD_EINVAL, "'%s' accepted", bad[i]);
        cr_assert_null(ep.base_url, "nothing written on failure");
    }
}

Test(client, cacert_is_copied_replaced_and_cleared)
{
    struct client_endpoint ep = {0};
    char path[] = "/etc/dnsd/ca.pem";
    cr_assert_eq(client_endpoint_parse("https:127.0.0.1:8443", &ep), 0);
    cr_assert_null(ep.cacert);
    cr_assert_eq(client_endpoint_set_cacert(&ep, path), 0);
    path[0] = 'X';
    cr_assert_str_eq(ep.cacert, "/etc/dnsd/ca.pem");
    cr_assert_eq(client_endpoint_set_cacert(&ep, NULL), 0);
    cr_assert_null(ep.cacert);
    cr_assert_eq(client_endpoint_set_cacert(&ep, "/x.pem"), 0);
    client_endpoint_clear(&ep);
    cr_assert_null(ep.cacert);
}

Test(client, malformed_address_is_rejected)
{
    static const char *const bad[] = {
        "",
        "/run/dnsd/api.sock",
        "unix:",
        "tcp:",
        "tcp:host",
        "tcp:host:",
        "tcp::8500",
        "tcp:host:0",
        "tcp:host:65536",
        "tcp:host:80x",
        "tcp:host:-1",
        "tcp:::1:8500",
        "tcp:[::1]",
        "tcp:[]:80",
        "tcp:[::1:80",
        "tcp:a b:80",
        "tcp:user@host:80",
        "tcp:host/x:80",
        "http://localhost:80",
        "udp:host:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct client_endpoint ep = {0};
        cr_assert_eq(client_endpoint_parse(bad[i], &ep), DNSD_EINVAL, "'%s' accepted", bad[i]);
        cr_assert_null(ep.base_url, "nothing written on failure");
    }
}

Test(client, unix_path_must_fit_a_socket_address)
{
    char api[5 + 200 + 1] = "unix:";
    memset(api + 5, 'a', 200);
    api[5 + 200] = '\0';
    struct client_endpoint ep = {0};
    cr_assert_eq(client_endpoint_parse(api, &ep), DNSD_EINVAL);
    api[5 + 107] = '\0'; /* sun_path holds 108 bytes with the NUL */
    cr_assert_eq(client_endpoint_parse(api, &ep), 0);
    client_endpoint_clear(&ep);
    api[5 + 107] = 'a';
    api[5 + 108] = '\0';
    cr_assert_eq(client_endpoint_parse(api, &ep), DNSD_EINVAL);
}

Test(client, index_header_parses)
{
    static const struct {
        const char *line;
        bool ok;
        uint64_t index;
    } cases[] = {
        {"X-Dnsd-Index: 42\r\n", true, 42},
        {"x-dnsd-index:7", true, 7},
        {"X-DNSD-INDEX: \t 0 \r\n", true, 0},
        {"X-Dnsd-Index: 18446744073709551615\r\n", true, UINT64_MAX},
        {"X-Dnsd-Index: 18446744073709551616\r\n", false, 0},
        {"X-Dnsd-Index: \r\n", false, 0},
        {"X-Dnsd-Index: 4x\r\n", false, 0},
        {"X-Dnsd-Index: -1\r\n", false, 0},
        {"X-Dnsd-Indexes: 4\r\n", false, 0},
        {"Content-Type: application/json\r\n", false, 0},
        {"HTTP/1.1 200 OK\r\n", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t index = 99;
        bool ok = client_parse_index_header(cases[i].line, strlen(cases[i].line), &index);
        cr_assert_eq(ok, cases[i].ok, "'%s'", cases[i].line);
        cr_assert_eq(index, cases[i].ok ? cases[i].index : 99, "'%s' gave %llu", cases[i].line,
                     (unsigned long long)index);
    }
}

Test(client, token_is_copied_replaced_and_cleared)
{
    struct client_endpoint ep = {0};
    char token[] = "first-token";
    cr_assert_eq(client_endpoint_parse("tcp:127.0.0.1:8500", &ep), 0);
    cr_assert_null(ep.token);
    cr_assert_eq(client_endpoint_set_token(&ep, token), 0);
    token[0] = 'X';
    cr_assert_str_eq(ep.token, "first-token");
    cr_assert_eq(client_endpoint_set_token(&ep, "second"), 0);
    cr_assert_str_eq(ep.token, "second");
    cr_assert_eq(client_endpoint_set_token(&ep, NULL), 0);
    cr_assert_null(ep.token);
    cr_assert_eq(client_endpoint_set_token(&ep, "third"), 0);
    client_endpoint_clear(&ep);
    cr_assert_null(ep.token);
}

Test(client, clearing_zeroed_structs_is_harmless)
{
    struct client_endpoint ep = {0};
    struct client_reply rep = {0};
    client_endpoint_clear(&ep);
    client_reply_clear(&rep);
    cr_assert_null(ep.base_url);
    cr_assert_null(rep.body);
    cr_assert_eq(rep.len, 0);
}
