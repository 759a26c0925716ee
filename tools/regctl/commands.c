/* SPDX-License-Identifier: BSD-2-Clause
 * regctl's commands: getopt_long parsing of the command line into one API request (JSON
 * built with jansson), the help texts, and the rendering of dnsd's replies as sentences,
 * aligned tables or re-indented JSON. Prints only to the streams it is given; no network. */
#include "commands.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <jansson.h>

#include "dnsd/duration.h"
#include "dnsd/error.h"
#include "dnsd/names.h"
#include "dnsd/version.h"

#define MAX_TIMEOUT_S 86400.0

/* Long-option values; short options are their own characters. */
enum {
    OPT_HELP = 'h',
    OPT_API = 256,
    OPT_TOKEN,
    OPT_CACERT,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_VERSION,
    OPT_ADDR,
    OPT_PORT,
    OPT_PROTO,
    OPT_TTL,
    OPT_PRIORITY,
    OPT_WEIGHT,
    OPT_TAG,
    OPT_META,
    OPT_CHECK_TCP,
    OPT_CHECK_HTTP,
    OPT_CHECK_INTERVAL,
    OPT_CHECK_TIMEOUT,
    OPT_CHECK_SUCCESS,
    OPT_CHECK_FAILURES,
    OPT_DEREGISTER_AFTER,
    OPT_STATUS,
    OPT_NOTE,
    OPT_REASON,
    OPT_COUNT,
    OPT_WAIT,
};

#define GLOBAL_OPTIONS                                                                             \
    {"api", required_argument, NULL, OPT_API}, {"json", no_argument, NULL, OPT_JSON},              \
        {"timeout", required_argument, NULL, OPT_TIMEOUT},                                         \
        {"token", required_argument, NULL, OPT_TOKEN},                                             \
        {"cacert", required_argument, NULL, OPT_CACERT},                                           \
    {                                                                                              \
        "help", no_argument, NULL, OPT_HELP                                                        \
    }

struct command {
    const char *name;
    enum commands_kind kind;
    const char *help;
};

static const char USAGE[] =
    "usage: regctl [--api unix:PATH|tcp:HOST:PORT|https:HOST:PORT] [--token TOKEN]\n"
    "              [--cacert FILE] [--json] [--timeout SECONDS] COMMAND [ARGS]\n"
    "\n"
    "Register service instances with dnsd and look at what it serves.\n"
    "\n"
    "commands:\n"
    "  register SERVICE ID    add or replace an instance (needs --addr and --port)\n"
    "  deregister SERVICE ID  remove an instance\n"
    "  heartbeat SERVICE ID   renew an instance's lease, optionally reporting its status\n"
    "  snapshot               write a snapshot of the registry to dnsd's data directory\n"
    "  maintenance SERVICE ID on|off\n"
    "                         take an instance out of DNS for maintenance, or put it back\n"
    "  list [SERVICE]         list the services, or the instances of one with their health\n"
    "  watch SERVICE          print each change of a service's instances as it happens\n"
    "  health                 check that dnsd is up and ready\n"
    "  help [COMMAND]         show this text, or the help of COMMAND\n"
    "\n"
    "global options (before or after the command):\n"
    "  --api ADDRESS      dnsd's API: unix:PATH, tcp:HOST:PORT (plain HTTP) or\n"
    "                     https:HOST:PORT (TLS; also https://HOST:PORT; IPv6: tcp:[::1]:8500);\n"
    "                     default $" DNSD_API_ENV ", else unix:" DNSD_DEFAULT_API_SOCKET "\n"
    "  --token TOKEN      bearer token for a TCP endpoint (default $" COMMANDS_TOKEN_ENV ");\n"
    "                     a Unix socket needs none\n"
    "  --cacert FILE      PEM file of the CA that signed dnsd's certificate, for https:\n"
    "                     (default $" COMMANDS_CACERT_ENV ", else the system's CAs); the\n"
    "                     certificate and its name are always verified\n"
    "  --json             print dnsd's JSON reply instead of text\n"
    "  --timeout SECONDS  give up after this long (default 10)\n"
    "  -h, --help         show help\n"
    "  --version          show regctl's version\n"
    "\n"
    "exit status: 0 success, 1 dnsd refused the request, 2 usage error,\n"
    "3 dnsd cannot be reached.\n";

static const char HELP_REGISTER[] =
    "usage: regctl register SERVICE ID --addr IP [--addr IP]... --port N [--proto tcp|udp]\n"
    "                       [--ttl S] [--priority N] [--weight N] [--tag T]... [--meta K=V]...\n"
    "                       [--check-tcp HOST:PORT | --check-http URL] [--check-interval D]\n"
    "                       [--check-timeout D] [--check-success N] [--check-failures N]\n"
    "                       [--deregister-after D]\n"
    "\n"
    "Add instance ID to SERVICE, or replace it when it exists. dnsd serves it in DNS while it\n"
    "is healthy: its lease has not run out (renew it with 'regctl heartbeat') and its active\n"
    "check, if it has one, passes. Options left out take dnsd's defaults.\n"
    "\n"
    "options:\n"
    "  --addr IP      an IPv4 or IPv6 address of the instance (repeat for more, up to 16)\n"
    "  --port N       the port it serves on (1-65535)\n"
    "  --proto P      tcp or udp, the protocol of its SRV records (default tcp)\n"
    "  --ttl S        lease in seconds (default and limits from dnsd's config)\n"
    "  --priority N   SRV priority (0-65535, default 0)\n"
    "  --weight N     SRV weight (0-65535, default 1)\n"
    "  --tag T        a tag, served as _T._sub.SERVICE (repeat for more)\n"
    "  --meta K=V     metadata, served in the instance's TXT record (repeat for more)\n"
    "  --check-tcp HOST:PORT\n"
    "                 let dnsd probe the instance by connecting to HOST:PORT ([::1]:80 for\n"
    "                 IPv6); HOST must be one of its --addr\n"
    "  --check-http URL\n"
    "                 let dnsd probe the instance with GET URL (http://HOST:PORT/path):\n"
    "                 2xx passing, 429 warning, anything else critical\n"
    "  --check-interval D  time between probes (default 10s)\n"
    "  --check-timeout D   a probe fails after this long (default 2s; less than the interval)\n"
    "  --check-success N   passes in a row before a failed check passes again (default 1)\n"
    "  --check-failures N  failures in a row before a passing check turns critical (default 1)\n"
    "  --deregister-after D\n"
    "                 remove the instance once it has been critical this long (default from\n"
    "                 dnsd's config; 0s = never)\n"
    "  -h, --help     show this help\n"
    "\n"
    "SERVICE, ID and tags: letters, digits and inner hyphens, 1 to 63 characters.\n"
    "Durations D: an integer and a unit, ms, s, m or h (500ms, 10s, 2m).\n"
    "An instance with a check is not answered until its first probe passed.\n"
    "Prints: registered SERVICE/ID (lease Ns)\n";

static const char HELP_DEREGISTER[] = "usage: regctl deregister SERVICE ID\n"
                                      "\n"
                                      "Remove instance ID from SERVICE; dnsd stops serving it "
                                      "at once.\n"
                                      "Prints: deregistered SERVICE/ID\n";

static const char HELP_HEARTBEAT[] =
    "usage: regctl heartbeat SERVICE ID [--status passing|warning|critical] [--note TEXT]\n"
    "\n"
    "Renew the lease of instance ID of SERVICE for its registered ttl, and report its own\n"
    "view of its health. A warning instance is still answered (unless dnsd is configured\n"
    "with only_passing); a critical one is not. The status stays until the next heartbeat.\n"
    "\n"
    "options:\n"
    "  --status S   passing (default), warning or critical\n"
    "  --note TEXT  a short explanation (up to 256 bytes), shown as the instance's reason\n"
    "  -h, --help   show this help\n"
    "\n"
    "Prints: renewed SERVICE/ID (lease Ns), plus its health when it is not passing\n";

static const char HELP_MAINTENANCE[] =
    "usage: regctl maintenance SERVICE ID on|off [--reason TEXT]\n"
    "\n"
    "Put instance ID of SERVICE into maintenance (on): dnsd stops answering it at once, but\n"
    "keeps it registered and never removes it for being unhealthy. 'off' puts it back.\n"
    "\n"
    "options:\n"
    "  --reason TEXT  why (with on), shown as the instance's reason\n"
    "  -h, --help     show this help\n"
    "\n"
    "Prints: SERVICE/ID maintenance on (REASON), or SERVICE/ID maintenance off\n";

static const char HELP_WATCH[] =
    "usage: regctl watch SERVICE [--count N] [--wait D]\n"
    "\n"
    "Print the state of SERVICE's instances, then again each time it changes (an instance\n"
    "registered, removed, or changing health), using dnsd's blocking queries. Runs until\n"
    "interrupted, or until --count changes were seen.\n"
    "\n"
    "options:\n"
    "  --count N   exit 0 after N changes (the first state printed does not count)\n"
    "  --wait D    how long each query waits on dnsd for a change (default 5m, at most\n"
    "              10m; an integer and ms, s, m or h)\n"
    "  --json      print each state as one line of JSON, as dnsd sent it\n"
    "  -h, --help  show this help\n"
    "\n"
    "Prints per state: TIME SERVICE index N: P passing, W warning, C critical, M maintenance\n"
    "followed by one indented line per instance that is not passing: ID HEALTH: REASON.\n"
    "Exits 3 when dnsd goes away.\n";

static const char HELP_LIST[] =
    "usage: regctl list [SERVICE]\n"
    "\n"
    "Without SERVICE, list every service with its number of instances. With SERVICE, list\n"
    "its instances: ID, ADDRESSES, PORT, PROTO, HEALTH, REASON, HEARTBEAT (time since the\n"
    "last one), LEASE LEFT, TAGS, META, PRIO, WEIGHT.\n";

static const char HELP_HEALTH[] = "usage: regctl health\n"
                                  "\n"
                                  "Check that dnsd is up and ready.\n"
                                  "Prints: ok: N services, M instances\n";

static const char HELP_SNAPSHOT[] =
    "usage: regctl snapshot\n"
    "\n"
    "Ask dnsd to write a snapshot of its registry to its data directory now, so that the\n"
    "journal starts afresh (dnsd also does this every persistence.snapshot_every changes).\n"
    "Prints: snapshot GENERATION: N instances\n";

static const char HELP_HELP[] = "usage: regctl help [COMMAND]\n"
                                "\n"
                                "Show regctl's usage, or the help of COMMAND.\n";

static const struct command COMMANDS[] = {
    {"register", COMMANDS_REGISTER, HELP_REGISTER},
    {"deregister", COMMANDS_DEREGISTER, HELP_DEREGISTER},
    {"heartbeat", COMMANDS_HEARTBEAT, HELP_HEARTBEAT},
    {"maintenance", COMMANDS_MAINTENANCE, HELP_MAINTENANCE},
    {"list", COMMANDS_LIST, HELP_LIST},
    {"watch", COMMANDS_WATCH, HELP_WATCH},
    {"health", COMMANDS_HEALTH, HELP_HEALTH},
    {"snapshot", COMMANDS_SNAPSHOT, HELP_SNAPSHOT},
    {"help", COMMANDS_NONE, HELP_HELP},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++) {
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    }
    return NULL;
}

/* Print "regctl: message" and the hint at the right help, then give the usage status. */
__attribute__((format(printf, 3, 4))) static int usage_error(FILE *err, const char *command,
                                                             const char *fmt, ...)
{
    va_list ap;
    fputs("regctl: ", err);
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
    if (command != NULL)
        fprintf(err, "\nsee 'regctl %s --help'\n", command);
    else
        fputs("\nsee 'regctl --help'\n", err);
    return REGCTL_EXIT_USAGE;
}

static int out_of_memory(FILE *err)
{
    fputs("regctl: out of memory\n", err);
    return REGCTL_EXIT_REFUSED;
}

/* How many of opts' long names start with the len bytes of name (getopt_long takes any
 * unique abbreviation)? */
static int count_prefix(const struct option *opts, const char *name, size_t len)
{
    int n = 0;
    for (; opts->name != NULL; opts++) {
        if (strncmp(opts->name, name, len) == 0)
            n++;
    }
    return n;
}

/* Explain the option getopt_long just rejected (it returned '?' or ':'). */
static int bad_option(int c, char **argv, const struct option *opts, const char *command, FILE *err)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    bool is_long = strncmp(arg, "--", 2) == 0;
    if (c == '?' && is_long && optopt == 0 &&
        count_prefix(opts, arg + 2, strcspn(arg + 2, "=")) > 1)
        return usage_error(err, command, "option '%.*s' is ambiguous", (int)strcspn(arg, "="), arg);
    if (c == ':') {
        if (is_long)
            return usage_error(err, command, "option '%s' needs a value", arg);
        return usage_error(err, command, "option '-%c' needs a value", optopt);
    }
    if (is_long && optopt != 0) {
        size_t len = strcspn(arg, "=");
        return usage_error(err, command, "option '%.*s' takes no value", (int)len, arg);
    }
    if (is_long)
        return usage_error(err, command, "unknown option '%s'", arg);
    return usage_error(err, command, "unknown option '-%c'", optopt);
}

/* Parse a decimal integer in [min, max]: digits only, no sign, no space, no suffix. */
static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Parse a positive number of seconds ("10", "0.5") into milliseconds. */
static bool parse_seconds(const char *s, long *ms)
{
    if (*s < '0' || *s > '9' || strspn(s, "0123456789.") != strlen(s))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0 || v > MAX_TIMEOUT_S)
        return false;
    long r = (long)(v * 1000.0 + 0.5); /* no lround: regctl does not link libm */
    *ms = r < 1 ? 1 : r;
    return true;
}

/* Apply a global option; c is known to be one. */
static int apply_global(int c, const char *arg, struct commands_request *req, const char *command,
                        FILE *err)
{
    switch (c) {
    case OPT_API:
        req->api = arg;
        return REGCTL_EXIT_OK;
    case OPT_JSON:
        req->json = true;
        return REGCTL_EXIT_OK;
    case OPT_TOKEN:
        /* The token itself is never echoed, not even in an error. */
        if (!commands_token_is_valid(arg))
            return usage_error(err, command,
                               "invalid --token: expected printable ASCII without blanks");
        req->token = arg;
        return REGCTL_EXIT_OK;
    case OPT_CACERT:
        if (arg[0] == '\0')
            return usage_error(err, command, "invalid --cacert '': the file name is empty");
        req->cacert = arg;
        return REGCTL_EXIT_OK;
    default:
        if (!parse_seconds(arg, &req->timeout_ms))
            return usage_error(err, command,
                               "invalid --timeout '%s': expected seconds, more than 0 and at "
                               "most 86400",
                               arg);
        return REGCTL_EXIT_OK;
    }
}

static bool is_global(int c)
{
    return c == OPT_API || c == OPT_JSON || c == OPT_TIMEOUT || c == OPT_TOKEN || c == OPT_CACERT;
}

/* Check a service name, instance id or tag, naming what it is in the message. */
static int check_label(const char *what, const char *label, const char *command, FILE *err)
{
    if (dnsd_label_is_valid(label))
        return REGCTL_EXIT_OK;
    return usage_error(err, command,
                       "invalid %s '%s': use letters, digits and inner hyphens, 1 to 63 "
                       "characters",
                       what, label);
}

static int set_path(struct commands_request *req, FILE *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_path(struct commands_request *req, FILE *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&req->path, fmt, ap);
    va_end(ap);
    if (n < 0) {
        req->path = NULL;
        return out_of_memory(err);
    }
    return REGCTL_EXIT_OK;
}

/* The options of register, collected before the body is assembled in API field order. */
struct reg_opts {
    json_t *addresses; /* owned */
    json_t *tags;      /* owned; NULL until a --tag */
    json_t *meta;      /* owned; NULL until a --meta */
    const char *proto; /* static "tcp"/"udp", or NULL */
    unsigned long port, ttl, priority, weight;
    bool has_port, has_ttl, has_priority, has_weight;
    const char *check_kind;       /* static "tcp"/"http", or NULL without a check */
    const char *check_target;     /* borrowed from argv */
    const char *check_interval;   /* borrowed from argv; validated duration or NULL */
    const char *check_timeout;    /* borrowed from argv; validated duration or NULL */
    const char *deregister_after; /* borrowed from argv; validated duration or NULL */
    unsigned long check_success, check_failures;
    bool has_check_success, has_check_failures;
};

static void reg_opts_clear(struct reg_opts *o)
{
    json_decref(o->addresses);
    json_decref(o->tags);
    json_decref(o->meta);
}

/* Store a numeric option given at most once. */
static int set_number(const char *command, const char *name, const char *arg, unsigned long min,
                      unsigned long max, unsigned long *value, bool *given, FILE *err)
{
    if (*given)
        return usage_error(err, command, "--%s given more than once", name);
    if (!parse_uint(arg, min, max, value))
        return usage_error(err, command, "invalid --%s '%s': expected an integer %lu-%lu", name,
                           arg, min, max);
    *given = true;
    return REGCTL_EXIT_OK;
}

static int add_string(json_t *array, const char *s, FILE *err)
{
    json_t *str = json_string(s);
    if (str == NULL || json_array_append_new(array, str) != 0)
        return out_of_memory(err);
    return REGCTL_EXIT_OK;
}

static int add_addr(struct reg_opts *o, const char *arg, FILE *err)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, arg, buf) != 1 && inet_pton(AF_INET6, arg, buf) != 1)
        return usage_error(err, "register", "invalid --addr '%s': expected an IPv4 or IPv6 address",
                           arg);
    return add_string(o->addresses, arg, err);
}

static int add_tag(struct reg_opts *o, const char *arg, FILE *err)
{
    int rc = check_label("tag", arg, "register", err);
    if (rc != REGCTL_EXIT_OK)
        return rc;
    if (o->tags == NULL && (o->tags = json_array()) == NULL)
        return out_of_memory(err);
    return add_string(o->tags, arg, err);
}

/* --meta K=V splits at the first '='; keys are unique case-insensitively (as dnsd wants),
 * and a repeated key is refused here because a JSON object would silently keep one. */
static int add_meta(struct reg_opts *o, const char *arg, FILE *err)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg)
        return usage_error(err, "register", "invalid --meta '%s': expected KEY=VALUE", arg);
    char *key = strndup(arg, (size_t)(eq - arg));
    if (key == NULL)
        return out_of_memory(err);
    int rc = REGCTL_EXIT_OK;
    if (o->meta == NULL && (o->meta = json_object()) == NULL) {
        rc = out_of_memory(err);
        goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o->meta, k, v)
    {
        if (strcasecmp(k, key) == 0) {
            rc = usage_error(err, "register", "--meta key '%s' given more than once", key);
            goto done;
        }
    }
    /* json_string refuses text that is not UTF-8 (JSON strings are Unicode, RFC 8259 §8.1). */
    json_t *value = json_string(eq + 1);
    if (value == NULL || json_object_set_new(o->meta, key, value) != 0) {
        rc = usage_error(err, "register", "invalid --meta '%s': key and value must be UTF-8", arg);
        goto done;
    }
done:
    free(key);
    return rc;
}

/* Store a duration option (validated as dnsd will read it) given at most once. */
static int set_duration(const char *command, const char *name, const char *arg, const char **value,
                        FILE *err)
{
    uint64_t ms;
    if (*value != NULL)
        return usage_error(err, command, "--%s given more than once", name);
    int rc = dnsd_duration_parse(arg, &ms);
    if (rc == DNSD_ERANGE)
        return usage_error(err, command, "invalid --%s '%s': at most 7 days", name, arg);
    if (rc < 0)
        return usage_error(err, command,
                           "invalid --%s '%s': expected a duration like 500ms, 10s, 2m or 1h", name,
                           arg);
    *value = arg;
    return REGCTL_EXIT_OK;
}

/* --check-tcp or --check-http: one check per instance. */
static int set_check_target(struct reg_opts *o, const char *kind, const char *arg, FILE *err)
{
    if (o->check_kind != NULL)
        return usage_error(err, "register", "give only one of --check-tcp and --check-http");
    if (arg[0] == '\0')
        return usage_error(err, "register", "invalid --check-%s '': the target is empty", kind);
    o->check_kind = kind;
    o->check_target = arg;
    return REGCTL_EXIT_OK;
}

/* The check options that need a target, as given; NULL when none was. */
static const char *check_option_without_target(const struct reg_opts *o)
{
    if (o->check_interval != NULL)
        return "--check-interval";
    if (o->check_timeout != NULL)
        return "--check-timeout";
    if (o->has_check_success)
        return "--check-success";
    if (o->has_check_failures)
        return "--check-failures";
    return NULL;
}

static int set_proto(struct reg_opts *o, const char *arg, FILE *err)
{
    if (o->proto != NULL)
        return usage_error(err, "register", "--proto given more than once");
    if (strcasecmp(arg, "tcp") == 0)
        o->proto = "tcp";
    else if (strcasecmp(arg, "udp") == 0)
        o->proto = "udp";
    else
        return usage_error(err, "register", "invalid --proto '%s': expected tcp or udp", arg);
    return REGCTL_EXIT_OK;
}

/* Add key = integer v to obj. */
static bool set_int(json_t *obj, const char *key, unsigned long v)
{
    return json_object_set_new(obj, key, json_integer((json_int_t)v)) == 0;
}

/* Assemble the PUT body in the API's field order, sending only the fields given. */
static char *register_body(struct reg_opts *o)
{
    char *text = NULL;
    json_t *body = json_object();
    if (body == NULL)
        return NULL;
    if (json_object_set(body, "addresses", o->addresses) != 0 || !set_int(body, "port", o->port))
        goto done;
    if (o->proto != NULL && json_object_set_new(body, "proto", json_string(o->proto)) != 0)
        goto done;
    if (o->has_ttl && !set_int(body, "ttl", o->ttl))
        goto done;
    if (o->has_priority && !set_int(body, "priority", o->priority))
        goto done;
    if (o->has_weight && !set_int(body, "weight", o->weight))
        goto done;
    if (o->tags != NULL && json_object_set(body, "tags", o->tags) != 0)
        goto done;
    if (o->meta != NULL && json_object_set(body, "meta", o->meta) != 0)
        goto done;
    if (o->check_kind != NULL) {
        json_t *check = json_object();
        if (check == NULL || json_object_set_new(body, "check", check) != 0)
            goto done;
        if (json_object_set_new(check, o->check_kind, json_string(o->check_target)) != 0)
            goto done;
        if (o->check_interval != NULL &&
            json_object_set_new(check, "interval", json_string(o->check_interval)) != 0)
            goto done;
        if (o->check_timeout != NULL &&
            json_object_set_new(check, "timeout", json_string(o->check_timeout)) != 0)
            goto done;
        if (o->has_check_success && !set_int(check, "success_before_passing", o->check_success))
            goto done;
        if (o->has_check_failures && !set_int(check, "failures_before_critical", o->check_failures))
            goto done;
    }
    if (o->deregister_after != NULL &&
        json_object_set_new(body, "deregister_after", json_string(o->deregister_after)) != 0)
        goto done;
    text = json_dumps(body, JSON_COMPACT);
done:
    json_decref(body);
    return text;
}

static int register_option(int c, struct reg_opts *o, FILE *err)
{
    switch (c) {
    case OPT_ADDR:
        return add_addr(o, optarg, err);
    case OPT_PORT:
        return set_number("register", "port", optarg, 1, 65535, &o->port, &o->has_port, err);
    case OPT_PROTO:
        return set_proto(o, optarg, err);
    case OPT_TTL:
        return set_number("register", "ttl", optarg, 1, UINT32_MAX, &o->ttl, &o->has_ttl, err);
    case OPT_PRIORITY:
        return set_number("register", "priority", optarg, 0, 65535, &o->priority, &o->has_priority,
                          err);
    case OPT_WEIGHT:
        return set_number("register", "weight", optarg, 0, 65535, &o->weight, &o->has_weight, err);
    case OPT_TAG:
        return add_tag(o, optarg, err);
    case OPT_CHECK_TCP:
        return set_check_target(o, "tcp", optarg, err);
    case OPT_CHECK_HTTP:
        return set_check_target(o, "http", optarg, err);
    case OPT_CHECK_INTERVAL:
        return set_duration("register", "check-interval", optarg, &o->check_interval, err);
    case OPT_CHECK_TIMEOUT:
        return set_duration("register", "check-timeout", optarg, &o->check_timeout, err);
    case OPT_CHECK_SUCCESS:
        return set_number("register", "check-success", optarg, 1, 100, &o->check_success,
                          &o->has_check_success, err);
    case OPT_CHECK_FAILURES:
        return set_number("register", "check-failures", optarg, 1, 100, &o->check_failures,
                          &o->has_check_failures, err);
    case OPT_DEREGISTER_AFTER:
        return set_duration("register", "deregister-after", optarg, &o->deregister_after, err);
    default:
        return add_meta(o, optarg, err);
    }
}

/* regctl register SERVICE ID --addr IP... --port N [...]; argv[0] is "register". */
static int parse_register(int argc, char **argv, struct commands_request *req, FILE *out, FILE *err)
{
    static const struct option opts[] = {
        GLOBAL_OPTIONS,
        {"addr", required_argument, NULL, OPT_ADDR},
        {"port", required_argument, NULL, OPT_PORT},
        {"proto", required_argument, NULL, OPT_PROTO},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {"weight", required_argument, NULL, OPT_WEIGHT},
        {"tag", required_argument, NULL, OPT_TAG},
        {"meta", required_argument, NULL, OPT_META},
        {"check-tcp", required_argument, NULL, OPT_CHECK_TCP},
        {"check-http", required_argument, NULL, OPT_CHECK_HTTP},
        {"check-interval", required_argument, NULL, OPT_CHECK_INTERVAL},
        {"check-timeout", required_argument, NULL, OPT_CHECK_TIMEOUT},
        {"check-success", required_argument, NULL, OPT_CHECK_SUCCESS},
        {"check-failures", required_argument, NULL, OPT_CHECK_FAILURES},
        {"deregister-after", required_argument, NULL, OPT_DEREGISTER_AFTER},
        {NULL, 0, NULL, 0},
    };
    struct reg_opts o = {0};
    int rc = REGCTL_EXIT_OK;
    o.addresses = json_array();
    if (o.addresses == NULL) {
        rc = out_of_memory(err);
        goto done;
    }
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(HELP_REGISTER, out);
            goto done;
        }
        if (c == '?' || c == ':')
            rc = bad_option(c, argv, opts, "register", err);
        else if (is_global(c))
            rc = apply_global(c, optarg, req, "register", err);
        else
            rc = register_option(c, &o, err);
        if (rc != REGCTL_EXIT_OK)
            goto done;
    }
    if (argc - optind < 2) {
        rc = usage_error(err, "register", "register needs SERVICE and ID");
        goto done;
    }
    if (argc - optind > 2) {
        rc = usage_error(err, "register", "unexpected argument '%s'", argv[optind + 2]);
        goto done;
    }
    const char *service = argv[optind], *id = argv[optind + 1];
    if ((rc = check_label("service name", service, "register", err)) != REGCTL_EXIT_OK ||
        (rc = check_label("instance id", id, "register", err)) != REGCTL_EXIT_OK)
        goto done;
    if (json_array_size(o.addresses) == 0) {
        rc = usage_error(err, "register", "register needs at least one --addr");
        goto done;
    }
    if (!o.has_port) {
        rc = usage_error(err, "register", "register needs --port");
        goto done;
    }
    const char *orphan = check_option_without_target(&o);
    if (o.check_kind == NULL && orphan != NULL) {
        rc = usage_error(err, "register", "%s needs --check-tcp or --check-http", orphan);
        goto done;
    }
    req->body = register_body(&o);
    if (req->body == NULL) {
        rc = out_of_memory(err);
        goto done;
    }
    rc = set_path(req, err, "/v1/services/%s/instances/%s", service, id);
    if (rc != REGCTL_EXIT_OK)
        goto done;
    req->service = service;
    req->id = id;
    req->method = "PUT";
    req->kind = COMMANDS_REGISTER;
done:
    reg_opts_clear(&o);
    return rc;
}

/* The options of heartbeat, maintenance and watch, collected while parsing. */
struct cmd_opts {
    const char *status;  /* heartbeat --status: static "passing"/"warning"/"critical" */
    const char *note;    /* borrowed from argv; heartbeat --note */
    const char *reason;  /* borrowed from argv; maintenance --reason */
    const char *wait;    /* borrowed from argv; watch --wait, validated */
    unsigned long count; /* watch --count */
    bool has_count;
};

/* Apply one command option of heartbeat, maintenance or watch. */
static int command_option(const struct command *cmd, int c, const char *arg, struct cmd_opts *o,
                          FILE *err)
{
    switch (c) {
    case OPT_STATUS:
        if (o->status != NULL)
            return usage_error(err, cmd->name, "--status given more than once");
        if (strcasecmp(arg, "passing") == 0)
            o->status = "passing";
        else if (strcasecmp(arg, "warning") == 0)
            o->status = "warning";
        else if (strcasecmp(arg, "critical") == 0)
            o->status = "critical";
        else
            return usage_error(err, cmd->name,
                               "invalid --status '%s': expected passing, warning or critical", arg);
        return REGCTL_EXIT_OK;
    case OPT_NOTE:
    case OPT_REASON: {
        const char **slot = c == OPT_NOTE ? &o->note : &o->reason;
        const char *name = c == OPT_NOTE ? "note" : "reason";
        if (*slot != NULL)
            return usage_error(err, cmd->name, "--%s given more than once", name);
        /* JSON strings are Unicode (RFC 8259 §8.1); dnsd checks length and content. */
        json_t *probe = json_string(arg);
        if (probe == NULL)
            return usage_error(err, cmd->name, "invalid --%s: it must be UTF-8", name);
        json_decref(probe);
        *slot = arg;
        return REGCTL_EXIT_OK;
    }
    case OPT_WAIT: {
        int rc = set_duration(cmd->name, "wait", arg, &o->wait, err);
        if (rc != REGCTL_EXIT_OK)
            return rc;
        uint64_t ms = 0;
        (void)dnsd_duration_parse(arg, &ms);
        if (ms == 0 || ms > COMMANDS_WATCH_MAX_WAIT_MS)
            return usage_error(err, cmd->name, "invalid --wait '%s': more than 0 and at most 10m",
                               arg);
        return REGCTL_EXIT_OK;
    }
    default:
        return set_number(cmd->name, "count", arg, 1, UINT32_MAX, &o->count, &o->has_count, err);
    }
}

/* Parse a command's options (global ones and those in its table) and check that between
 * min and max positional arguments remain; on success *args points at them and *nargs says
 * how many. */
static int parse_plain(const struct command *cmd, int argc, char **argv, int min, int max,
                       struct commands_request *req, struct cmd_opts *o, char ***args, int *nargs,
                       bool *helped, FILE *out, FILE *err)
{
    static const struct option plain[] = {GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    static const struct option heartbeat[] = {
        GLOBAL_OPTIONS,
        {"status", required_argument, NULL, OPT_STATUS},
        {"note", required_argument, NULL, OPT_NOTE},
        {NULL, 0, NULL, 0},
    };
    static const struct option maintenance[] = {
        GLOBAL_OPTIONS,
        {"reason", required_argument, NULL, OPT_REASON},
        {NULL, 0, NULL, 0},
    };
    static const struct option watch[] = {
        GLOBAL_OPTIONS,
        {"count", required_argument, NULL, OPT_COUNT},
        {"wait", required_argument, NULL, OPT_WAIT},
        {NULL, 0, NULL, 0},
    };
    const struct option *opts = cmd->kind == COMMANDS_HEARTBEAT     ? heartbeat
                                : cmd->kind == COMMANDS_MAINTENANCE ? maintenance
                                : cmd->kind == COMMANDS_WATCH       ? watch
                                                                    : plain;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(cmd->help, out);
            *helped = true;
            return REGCTL_EXIT_OK;
        }
        if (c == '?' || c == ':')
            return bad_option(c, argv, opts, cmd->name, err);
        int rc = is_global(c) ? apply_global(c, optarg, req, cmd->name, err)
                              : command_option(cmd, c, optarg, o, err);
        if (rc != REGCTL_EXIT_OK)
            return rc;
    }
    int n = argc - optind;
    if (n < min) {
        return usage_error(err, cmd->name, "%s needs %s", cmd->name,
                           min == 3                      ? "SERVICE, ID and on or off"
                           : min == 2                    ? "SERVICE and ID"
                           : cmd->kind == COMMANDS_WATCH ? "SERVICE"
                                                         : "an argument");
    }
    if (n > max)
        return usage_error(err, cmd->name, "unexpected argument '%s'", argv[optind + max]);
    *args = argv + optind;
    *nargs = n;
    return REGCTL_EXIT_OK;
}

/* The body of a heartbeat: only the fields given, or NULL (no body) when none was. */
static int heartbeat_body(const struct cmd_opts *o, struct commands_request *req, FILE *err)
{
    if (o->status == NULL && o->note == NULL)
        return REGCTL_EXIT_OK;
    json_t *body = json_object();
    bool ok = body != NULL;
    if (ok && o->status != NULL)
        ok = json_object_set_new(body, "status", json_string(o->status)) == 0;
    if (ok && o->note != NULL)
        ok = json_object_set_new(body, "note", json_string(o->note)) == 0;
    if (ok)
        req->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return req->body != NULL ? REGCTL_EXIT_OK : out_of_memory(err);
}

/* maintenance SERVICE ID on|off [--reason TEXT]: the body {"enabled":..., "reason":...}. */
static int maintenance_body(const struct cmd_opts *o, const char *state,
                            struct commands_request *req, FILE *err)
{
    if (strcmp(state, "on") == 0)
        req->maintenance = true;
    else if (strcmp(state, "off") == 0)
        req->maintenance = false;
    else
        return usage_error(err, "maintenance", "invalid state '%s': expected on or off", state);
    if (!req->maintenance && o->reason != NULL)
        return usage_error(err, "maintenance", "--reason goes with on, not with off");
    json_t *body = json_object();
    bool ok =
        body != NULL && json_object_set_new(body, "enabled", json_boolean(req->maintenance)) == 0;
    if (ok && o->reason != NULL)
        ok = json_object_set_new(body, "reason", json_string(o->reason)) == 0;
    if (ok)
        req->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return req->body != NULL ? REGCTL_EXIT_OK : out_of_memory(err);
}

/* deregister, heartbeat, maintenance, list, watch, health and help. */
static int parse_other(const struct command *cmd, int argc, char **argv,
                       struct commands_request *req, FILE *out, FILE *err)
{
    static const int min[] = {
        [COMMANDS_NONE] = 0,  [COMMANDS_DEREGISTER] = 2, [COMMANDS_HEARTBEAT] = 2,
        [COMMANDS_LIST] = 0,  [COMMANDS_HEALTH] = 0,     [COMMANDS_MAINTENANCE] = 3,
        [COMMANDS_WATCH] = 1, [COMMANDS_SNAPSHOT] = 0};
    static const int max[] = {
        [COMMANDS_NONE] = 1,  [COMMANDS_DEREGISTER] = 2, [COMMANDS_HEARTBEAT] = 2,
        [COMMANDS_LIST] = 1,  [COMMANDS_HEALTH] = 0,     [COMMANDS_MAINTENANCE] = 3,
        [COMMANDS_WATCH] = 1, [COMMANDS_SNAPSHOT] = 0};
    struct cmd_opts o = {0};
    char **args = NULL;
    int n = 0;
    bool helped = false;
    int rc = parse_plain(cmd, argc, argv, min[cmd->kind], max[cmd->kind], req, &o, &args, &n,
                         &helped, out, err);
    if (rc != REGCTL_EXIT_OK || helped)
        return rc;
    switch (cmd->kind) {
    case COMMANDS_NONE:
        return commands_print_help(n == 1 ? args[0] : NULL, out, err);
    case COMMANDS_DEREGISTER:
    case COMMANDS_HEARTBEAT:
    case COMMANDS_MAINTENANCE:
        if ((rc = check_label("service name", args[0], cmd->name, err)) != REGCTL_EXIT_OK ||
            (rc = check_label("instance id", args[1], cmd->name, err)) != REGCTL_EXIT_OK)
            return rc;
        if (cmd->kind == COMMANDS_HEARTBEAT)
            rc = heartbeat_body(&o, req, err);
        else if (cmd->kind == COMMANDS_MAINTENANCE)
            rc = maintenance_body(&o, args[2], req, err);
        if (rc != REGCTL_EXIT_OK)
            return rc;
        rc = set_path(req, err, "/v1/services/%s/instances/%s%s", args[0], args[1],
                      cmd->kind == COMMANDS_HEARTBEAT     ? "/heartbeat"
                      : cmd->kind == COMMANDS_MAINTENANCE ? "/maintenance"
                                                          : "");
        req->service = args[0];
        req->id = args[1];
        req->method = cmd->kind == COMMANDS_DEREGISTER ? "DELETE" : "PUT";
        break;
    case COMMANDS_LIST:
    case COMMANDS_WATCH:
        if (n == 1) {
            rc = check_label("service name", args[0], cmd->name, err);
            if (rc != REGCTL_EXIT_OK)
                return rc;
            rc = set_path(req, err, "/v1/services/%s", args[0]);
            req->service = args[0];
        } else {
            rc = set_path(req, err, "/v1/services");
        }
        req->method = "GET";
        if (cmd->kind == COMMANDS_WATCH) {
            req->watch_count = o.has_count ? o.count : 0;
            req->watch_wait_ms = COMMANDS_WATCH_DEFAULT_WAIT_MS;
            if (o.wait != NULL)
                (void)dnsd_duration_parse(o.wait, &req->watch_wait_ms);
        }
        break;
    case COMMANDS_SNAPSHOT:
        rc = set_path(req, err, "/v1/snapshot");
        req->method = "POST";
        break;
    default:
        rc = set_path(req, err, "/v1/health");
        req->method = "GET";
        break;
    }
    if (rc == REGCTL_EXIT_OK)
        req->kind = cmd->kind;
    return rc;
}

int commands_parse(int argc, char **argv, struct commands_request *req, FILE *out, FILE *err)
{
    static const struct option opts[] = {
        GLOBAL_OPTIONS,
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(req, 0, sizeof(*req));
    req->timeout_ms = COMMANDS_DEFAULT_TIMEOUT_MS;
    opterr = 0;
    optind = 0;
    int c;
    /* '+': stop at the command, whose own options are parsed with its own table. */
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c == OPT_HELP)
            return commands_print_help(NULL, out, err);
        if (c == OPT_VERSION) {
            fprintf(out, "regctl %s\n", DNSD_VERSION);
            return REGCTL_EXIT_OK;
        }
        if (c == '?' || c == ':')
            return bad_option(c, argv, opts, NULL, err);
        int rc = apply_global(c, optarg, req, NULL, err);
        if (rc != REGCTL_EXIT_OK)
            return rc;
    }
    if (optind >= argc)
        return usage_error(err, NULL, "no command given");
    const struct command *cmd = find_command(argv[optind]);
    if (cmd == NULL)
        return usage_error(err, NULL, "unknown command '%s'", argv[optind]);
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    int rc = cmd->kind == COMMANDS_REGISTER ? parse_register(sub_argc, sub_argv, req, out, err)
                                            : parse_other(cmd, sub_argc, sub_argv, req, out, err);
    if (rc != REGCTL_EXIT_OK)
        req->kind = COMMANDS_NONE;
    return rc;
}

void commands_request_clear(struct commands_request *req)
{
    free(req->path);
    free(req->body);
    memset(req, 0, sizeof(*req));
}

bool commands_token_is_valid(const char *token)
{
    if (token == NULL || token[0] == '\0')
        return false;
    for (const char *p = token; *p; p++) {
        if (*p <= ' ' || *p > '~')
            return false;
    }
    return true;
}

const char *commands_token(const char *opt, const char *env)
{
    if (opt != NULL)
        return opt;
    if (env != NULL && env[0] != '\0')
        return env;
    return NULL;
}

const char *commands_cacert(const char *opt, const char *env)
{
    if (opt != NULL)
        return opt;
    if (env != NULL && env[0] != '\0')
        return env;
    return NULL;
}

const char *commands_api_address(const char *opt, const char *env)
{
    if (opt != NULL)
        return opt;
    if (env != NULL && env[0] != '\0')
        return env;
    return "unix:" DNSD_DEFAULT_API_SOCKET;
}

int commands_print_help(const char *command, FILE *out, FILE *err)
{
    if (command == NULL) {
        fputs(USAGE, out);
        return REGCTL_EXIT_OK;
    }
    const struct command *cmd = find_command(command);
    if (cmd == NULL)
        return usage_error(err, "help", "unknown command '%s'", command);
    fputs(cmd->help, out);
    return REGCTL_EXIT_OK;
}

int commands_exit_for_client_error(int err)
{
    switch (err) {
    case DNSD_EIO:
        return REGCTL_EXIT_UNREACHABLE;
    case DNSD_EINVAL:
        return REGCTL_EXIT_USAGE;
    default:
        return REGCTL_EXIT_REFUSED;
    }
}

int commands_exit_for_status(long status)
{
    return status >= 200 && status <= 299 ? REGCTL_EXIT_OK : REGCTL_EXIT_REFUSED;
}

/* Write s to f with control characters shown as '?', so a reply cannot drive the terminal. */
static void put_clean(const char *s, FILE *f)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
}

/* Columns shown on a terminal: one per UTF-8 lead byte (good enough for alignment). */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    }
    return w;
}

/* A table of text cells filled row by row, printed with aligned columns. */
struct table {
    size_t ncols;
    size_t ncells;
    size_t cap;
    char **cells; /* owned, and so is each cell */
};

static void table_clear(struct table *t)
{
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->ncells = t->cap = 0;
}

/* Append cell (taken; NULL means its allocation failed). Returns: false when out of memory. */
static bool table_add(struct table *t, char *cell)
{
    if (cell == NULL)
        return false;
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **cells = realloc(t->cells, cap * sizeof(*cells));
        if (cells == NULL) {
            free(cell);
            return false;
        }
        t->cells = cells;
        t->cap = cap;
    }
    t->cells[t->ncells++] = cell;
    return true;
}

/* Print the table: columns two spaces apart, each as wide as its widest cell. */
static void table_print(const struct table *t, FILE *out)
{
    size_t widths[16] = {0};
    assert(t->ncols <= sizeof(widths) / sizeof(widths[0]));
    for (size_t i = 0; i < t->ncells; i++) {
        size_t w = display_width(t->cells[i]);
        if (w > widths[i % t->ncols])
            widths[i % t->ncols] = w;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t col = i % t->ncols;
        put_clean(t->cells[i], out);
        if (col + 1 == t->ncols) {
            fputc('\n', out);
            continue;
        }
        for (size_t pad = display_width(t->cells[i]); pad < widths[col] + 2; pad++)
            fputc(' ', out);
    }
}

static char *text_cell(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return strdup(s != NULL ? s : "-");
}

static char *int_cell(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    char *cell = NULL;
    if (!json_is_integer(v))
        return strdup("-");
    if (asprintf(&cell, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
        return NULL;
    return cell;
}

/* A span of time for a table: "27.3s" under a minute, "12m05s" under an hour, else
 * "3h07m". */
static char *span_text(json_int_t ms, const char *suffix)
{
    char *cell = NULL;
    int n;
    if (ms < 60000)
        n = asprintf(&cell, "%.1fs%s", (double)(ms < 0 ? 0 : ms) / 1000.0, suffix);
    else if (ms < 3600000)
        n = asprintf(&cell, "%dm%02ds%s", (int)(ms / 60000), (int)(ms / 1000 % 60), suffix);
    else
        n = asprintf(&cell, "%" JSON_INTEGER_FORMAT "h%02dm%s", ms / 3600000,
                     (int)(ms / 60000 % 60), suffix);
    return n < 0 ? NULL : cell;
}

/* Time left on the lease ("27.3s"), or "expired" once it has lapsed. */
static char *lease_cell(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "lease_remaining_ms");
    if (!json_is_integer(v))
        return strdup("-");
    if (json_integer_value(v) <= 0)
        return strdup("expired");
    return span_text(json_integer_value(v), "");
}

/* Time since the last heartbeat (or registration): "1.2s ago". */
static char *heartbeat_cell(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "last_heartbeat_ms_ago");
    if (!json_is_integer(v))
        return strdup("-");
    return span_text(json_integer_value(v), " ago");
}

/* The reason for the instance's health, "-" when there is none. */
static char *reason_cell(const json_t *obj)
{
    const char *s = json_string_value(json_object_get(obj, "reason"));
    return strdup(s != NULL && s[0] != '\0' ? s : "-");
}

/* An array of strings comma-joined, or an object as "k=v" comma-joined; "-" when empty. */
static char *joined_cell(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    char *cell = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&cell, &size);
    if (f == NULL)
        return NULL;
    bool first = true;
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            const char *s = json_string_value(item);
            if (s == NULL)
                continue;
            fprintf(f, "%s%s", first ? "" : ",", s);
            first = false;
        }
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *item;
        json_object_foreach((json_t *)v, k, item)
        {
            const char *s = json_string_value(item);
            fprintf(f, "%s%s=%s", first ? "" : ",", k, s != NULL ? s : "");
            first = false;
        }
    }
    if (first)
        fputc('-', f);
    if (fclose(f) != 0) {
        free(cell);
        return NULL;
    }
    return cell;
}

static int unexpected(const char *what, FILE *err)
{
    fprintf(err, "regctl: unexpected reply from dnsd: %s\n", what);
    return REGCTL_EXIT_REFUSED;
}

/* The table of GET /v1/services: SERVICE, INSTANCES. */
static int print_services(const json_t *root, FILE *out, FILE *err)
{
    const json_t *services = json_object_get(root, "services");
    if (!json_is_array(services))
        return unexpected("no \"services\" list", err);
    if (json_array_size(services) == 0) {
        fputs("no services registered\n", out);
        return REGCTL_EXIT_OK;
    }
    struct table t = {.ncols = 2};
    int rc = REGCTL_EXIT_OK;
    if (!table_add(&t, strdup("SERVICE")) || !table_add(&t, strdup("INSTANCES")))
        goto nomem;
    size_t i;
    const json_t *svc;
    json_array_foreach(services, i, svc)
    {
        if (!table_add(&t, text_cell(svc, "name")) || !table_add(&t, int_cell(svc, "instances")))
            goto nomem;
    }
    table_print(&t, out);
    goto done;
nomem:
    rc = out_of_memory(err);
done:
    table_clear(&t);
    return rc;
}

/* The table of GET /v1/services/{service}: one row per instance. */
static int print_instances(const struct commands_request *req, const json_t *root, FILE *out,
                           FILE *err)
{
    static const char *const header[] = {"ID",     "ADDRESSES", "PORT",      "PROTO",
                                         "HEALTH", "REASON",    "HEARTBEAT", "LEASE LEFT",
                                         "TAGS",   "META",      "PRIO",      "WEIGHT"};
    const json_t *instances = json_object_get(root, "instances");
    if (!json_is_array(instances))
        return unexpected("no \"instances\" list", err);
    if (json_array_size(instances) == 0) {
        const char *name = json_string_value(json_object_get(root, "service"));
        fputs("no instances of ", out);
        put_clean(name != NULL ? name : req->service, out);
        fputs(" registered\n", out);
        return REGCTL_EXIT_OK;
    }
    struct table t = {.ncols = sizeof(header) / sizeof(header[0])};
    int rc = REGCTL_EXIT_OK;
    for (size_t col = 0; col < t.ncols; col++) {
        if (!table_add(&t, strdup(header[col])))
            goto nomem;
    }
    size_t i;
    const json_t *inst;
    json_array_foreach(instances, i, inst)
    {
        if (!table_add(&t, text_cell(inst, "id")) ||
            !table_add(&t, joined_cell(inst, "addresses")) ||
            !table_add(&t, int_cell(inst, "port")) || !table_add(&t, text_cell(inst, "proto")) ||
            !table_add(&t, text_cell(inst, "health")) || !table_add(&t, reason_cell(inst)) ||
            !table_add(&t, heartbeat_cell(inst)) || !table_add(&t, lease_cell(inst)) ||
            !table_add(&t, joined_cell(inst, "tags")) ||
            !table_add(&t, joined_cell(inst, "meta")) ||
            !table_add(&t, int_cell(inst, "priority")) || !table_add(&t, int_cell(inst, "weight")))
            goto nomem;
    }
    table_print(&t, out);
    goto done;
nomem:
    rc = out_of_memory(err);
done:
    table_clear(&t);
    return rc;
}

/* "registered web/web-1 (lease 30s)" and the like, naming what dnsd echoed; no newline. */
static void print_instance_head(const char *verb, const struct commands_request *req,
                                const json_t *root, bool lease, FILE *out)
{
    const char *service = json_string_value(json_object_get(root, "service"));
    const char *id = json_string_value(json_object_get(root, "id"));
    const json_t *ttl = json_object_get(root, "ttl");
    fprintf(out, "%s ", verb);
    put_clean(service != NULL ? service : req->service, out);
    fputc('/', out);
    put_clean(id != NULL ? id : req->id, out);
    if (lease && json_is_integer(ttl))
        fprintf(out, " (lease %" JSON_INTEGER_FORMAT "s)", json_integer_value(ttl));
}

static int print_instance_line(const char *verb, const struct commands_request *req,
                               const json_t *root, bool lease, FILE *out)
{
    print_instance_head(verb, req, root, lease, out);
    fputc('\n', out);
    return REGCTL_EXIT_OK;
}

/* "renewed web/web-1 (lease 30s)", plus "; health warning: heartbeat: disk 90%" when the
 * instance is not passing, so a reported status shows how dnsd took it. */
static int print_heartbeat(const struct commands_request *req, const json_t *root, FILE *out)
{
    const char *health = json_string_value(json_object_get(root, "health"));
    const char *reason = json_string_value(json_object_get(root, "reason"));
    print_instance_head("renewed", req, root, true, out);
    if (health != NULL && strcmp(health, "passing") != 0) {
        fputs("; health ", out);
        put_clean(health, out);
        if (reason != NULL && reason[0] != '\0') {
            fputs(": ", out);
            put_clean(reason, out);
        }
    }
    fputc('\n', out);
    return REGCTL_EXIT_OK;
}

/* "web/web-1 maintenance on (deploy)" or "web/web-1 maintenance off", from dnsd's echo. */
static int print_maintenance(const struct commands_request *req, const json_t *root, FILE *out)
{
    const char *service = json_string_value(json_object_get(root, "service"));
    const char *id = json_string_value(json_object_get(root, "id"));
    const json_t *m = json_object_get(root, "maintenance");
    const json_t *enabled = json_object_get(m, "enabled");
    const char *reason = json_string_value(json_object_get(m, "reason"));
    bool on = json_is_boolean(enabled) ? json_is_true(enabled) : req->maintenance;
    const char *health = json_string_value(json_object_get(root, "health"));
    /* Without a reason of its own, the instance's reason is dnsd's default one. */
    if ((reason == NULL || reason[0] == '\0') && health != NULL &&
        strcmp(health, "maintenance") == 0)
        reason = json_string_value(json_object_get(root, "reason"));
    put_clean(service != NULL ? service : req->service, out);
    fputc('/', out);
    put_clean(id != NULL ? id : req->id, out);
    fprintf(out, " maintenance %s", on ? "on" : "off");
    if (on && reason != NULL && reason[0] != '\0') {
        fputs(" (", out);
        put_clean(reason, out);
        fputc(')', out);
    }
    fputc('\n', out);
    return REGCTL_EXIT_OK;
}

static int print_health(const json_t *root, FILE *out, FILE *err)
{
    const char *status = json_string_value(json_object_get(root, "status"));
    const json_t *services = json_object_get(root, "services");
    const json_t *instances = json_object_get(root, "instances");
    if (status == NULL || !json_is_integer(services) || !json_is_integer(instances))
        return unexpected("health without status, services and instances", err);
    put_clean(status, out);
    fprintf(out, ": %" JSON_INTEGER_FORMAT " services, %" JSON_INTEGER_FORMAT " instances\n",
            json_integer_value(services), json_integer_value(instances));
    return REGCTL_EXIT_OK;
}

static int print_snapshot(const json_t *root, FILE *out, FILE *err)
{
    const json_t *gen = json_object_get(root, "generation");
    const json_t *instances = json_object_get(root, "instances");
    if (!json_is_integer(gen) || !json_is_integer(instances))
        return unexpected("snapshot without generation and instances", err);
    fprintf(out, "snapshot %" JSON_INTEGER_FORMAT ": %" JSON_INTEGER_FORMAT " instances\n",
            json_integer_value(gen), json_integer_value(instances));
    return REGCTL_EXIT_OK;
}

/* A non-2xx reply: dnsd's own error message when it sent one. */
static int print_refusal(long status, const json_t *root, FILE *err)
{
    const char *error = json_string_value(json_object_get(root, "error"));
    const char *field = json_string_value(json_object_get(root, "field"));
    const char *state = json_string_value(json_object_get(root, "status"));
    fputs("regctl: ", err);
    if (error != NULL) {
        put_clean(error, err);
        if (field != NULL) {
            fputs(" (field: ", err);
            put_clean(field, err);
            fputc(')', err);
        }
    } else if (status == 503 && state != NULL) {
        fputs("dnsd is not ready (status: ", err);
        put_clean(state, err);
        fputc(')', err);
    } else if (root == NULL) {
        fprintf(err, "dnsd replied HTTP %ld with a body that is not JSON", status);
    } else {
        fprintf(err, "dnsd replied HTTP %ld without an error message", status);
    }
    fputc('\n', err);
    return REGCTL_EXIT_REFUSED;
}

int commands_print_reply(const struct commands_request *req, long status, const char *body,
                         size_t len, FILE *out, FILE *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, &jerr);
    int rc;
    if (commands_exit_for_status(status) != REGCTL_EXIT_OK) {
        rc = print_refusal(status, root, err);
    } else if (root == NULL) {
        fprintf(err, "regctl: dnsd replied HTTP %ld with a body that is not JSON: %s\n", status,
                jerr.text);
        rc = REGCTL_EXIT_REFUSED;
    } else if (!json_is_object(root)) {
        rc = unexpected("not a JSON object", err);
    } else if (req->json) {
        char *text = json_dumps(root, JSON_INDENT(2));
        if (text == NULL) {
            rc = out_of_memory(err);
        } else {
            fprintf(out, "%s\n", text);
            free(text);
            rc = REGCTL_EXIT_OK;
        }
    } else {
        switch (req->kind) {
        case COMMANDS_REGISTER:
            rc = print_instance_line("registered", req, root, true, out);
            break;
        case COMMANDS_HEARTBEAT:
            rc = print_heartbeat(req, root, out);
            break;
        case COMMANDS_MAINTENANCE:
            rc = print_maintenance(req, root, out);
            break;
        case COMMANDS_DEREGISTER:
            rc = print_instance_line("deregistered", req, root, false, out);
            break;
        case COMMANDS_LIST:
        case COMMANDS_WATCH:
            rc = req->service != NULL ? print_instances(req, root, out, err)
                                      : print_services(root, out, err);
            break;
        case COMMANDS_SNAPSHOT:
            rc = print_snapshot(root, out, err);
            break;
        default:
            rc = print_health(root, out, err);
            break;
        }
    }
    json_decref(root);
    return rc;
}

char *commands_watch_path(const struct commands_request *req, uint64_t index)
{
    char wait[32];
    char *path = NULL;
    dnsd_duration_format(req->watch_wait_ms, wait, sizeof(wait));
    if (asprintf(&path, "%s?index=%" PRIu64 "&wait=%s", req->path, index, wait) < 0)
        return NULL;
    return path;
}

/* The health of one instance as a counter slot: 0 passing .. 3 maintenance, 4 unknown. */
static size_t health_slot(const char *health)
{
    static const char *const names[] = {"passing", "warning", "critical", "maintenance"};
    for (size_t i = 0; i < 4; i++) {
        if (health != NULL && strcmp(health, names[i]) == 0)
            return i;
    }
    return 4;
}

int commands_print_watch(const struct commands_request *req, const char *body, size_t len,
                         uint64_t index, time_t when, FILE *out, FILE *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, &jerr);
    const json_t *instances = json_object_get(root, "instances");
    int rc = REGCTL_EXIT_OK;
    if (root == NULL) {
        fprintf(err, "regctl: dnsd replied with a body that is not JSON: %s\n", jerr.text);
        rc = REGCTL_EXIT_REFUSED;
        goto done;
    }
    if (!json_is_array(instances)) {
        rc = unexpected("no \"instances\" list", err);
        goto done;
    }
    if (req->json) {
        char *text = json_dumps(root, JSON_COMPACT);
        if (text == NULL) {
            rc = out_of_memory(err);
            goto done;
        }
        fprintf(out, "%s\n", text);
        free(text);
        goto done;
    }
    unsigned long counts[5] = {0};
    size_t i;
    const json_t *inst;
    json_array_foreach(instances, i, inst)
    {
        counts[health_slot(json_string_value(json_object_get(inst, "health")))]++;
    }
    char stamp[32];
    struct tm tm;
    if (gmtime_r(&when, &tm) == NULL ||
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(stamp, sizeof(stamp), "%lld", (long long)when);
    const char *service = json_string_value(json_object_get(root, "service"));
    fprintf(out, "%s ", stamp);
    put_clean(service != NULL ? service : req->service, out);
    fprintf(out, " index %" PRIu64 ": %lu passing, %lu warning, %lu critical, %lu maintenance",
            index, counts[0], counts[1], counts[2], counts[3]);
    if (counts[4] > 0)
        fprintf(out, ", %lu unknown", counts[4]);
    fputc('\n', out);
    json_array_foreach(instances, i, inst)
    {
        const char *health = json_string_value(json_object_get(inst, "health"));
        const char *id = json_string_value(json_object_get(inst, "id"));
        const char *reason = json_string_value(json_object_get(inst, "reason"));
        if (health_slot(health) == 0)
            continue;
        fputs("  ", out);
        put_clean(id != NULL ? id : "?", out);
        fputc(' ', out);
        put_clean(health != NULL ? health : "unknown", out);
        if (reason != NULL && reason[0] != '\0') {
            fputs(": ", out);
            put_clean(reason, out);
        }
        fputc('\n', out);
    }
done:
    fflush(out);
    json_decref(root);
    return rc;
}
