/* SPDX-License-Identifier: BSD-2-Clause
 * regctl's commands: getopt_long parsing of the command line into one API request (JSON
 * built with jansson), the help texts, and the rendering of dnsd's replies as sentences,
 * aligned tables or re-indented JSON. Prints only to the streams it is given; no network. */
#include "commands.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <jansson.h>

#include "dnsd/error.h"
#include "dnsd/names.h"
#include "dnsd/version.h"

#define MAX_TIMEOUT_S 86400.0

/* Long-option values; short options are their own characters. */
enum {
    OPT_HELP = 'h',
    OPT_API = 256,
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
};

#define GLOBAL_OPTIONS                                                                             \
    {"api", required_argument, NULL, OPT_API}, {"json", no_argument, NULL, OPT_JSON},              \
        {"timeout", required_argument, NULL, OPT_TIMEOUT},                                         \
    {                                                                                              \
        "help", no_argument, NULL, OPT_HELP                                                        \
    }

struct command {
    const char *name;
    enum commands_kind kind;
    const char *help;
};

static const char USAGE[] =
    "usage: regctl [--api unix:PATH|tcp:HOST:PORT] [--json] [--timeout SECONDS] COMMAND [ARGS]\n"
    "\n"
    "Register service instances with dnsd and look at what it serves.\n"
    "\n"
    "commands:\n"
    "  register SERVICE ID    add or replace an instance (needs --addr and --port)\n"
    "  deregister SERVICE ID  remove an instance\n"
    "  heartbeat SERVICE ID   renew an instance's lease\n"
    "  list [SERVICE]         list the services, or the instances of one\n"
    "  health                 check that dnsd is up and ready\n"
    "  help [COMMAND]         show this text, or the help of COMMAND\n"
    "\n"
    "global options (before or after the command):\n"
    "  --api ADDRESS      dnsd's API: unix:PATH or tcp:HOST:PORT (IPv6: tcp:[::1]:8500);\n"
    "                     default $" DNSD_API_ENV ", else unix:" DNSD_DEFAULT_API_SOCKET "\n"
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
    "\n"
    "Add instance ID to SERVICE, or replace it when it exists. dnsd serves it in DNS until\n"
    "its lease runs out; renew the lease with 'regctl heartbeat'. Options left out take\n"
    "dnsd's defaults.\n"
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
    "  -h, --help     show this help\n"
    "\n"
    "SERVICE, ID and tags: letters, digits and inner hyphens, 1 to 63 characters.\n"
    "Prints: registered SERVICE/ID (lease Ns)\n";

static const char HELP_DEREGISTER[] = "usage: regctl deregister SERVICE ID\n"
                                      "\n"
                                      "Remove instance ID from SERVICE; dnsd stops serving it "
                                      "at once.\n"
                                      "Prints: deregistered SERVICE/ID\n";

static const char HELP_HEARTBEAT[] = "usage: regctl heartbeat SERVICE ID\n"
                                     "\n"
                                     "Renew the lease of instance ID of SERVICE for its "
                                     "registered ttl.\n"
                                     "Prints: renewed SERVICE/ID (lease Ns)\n";

static const char HELP_LIST[] =
    "usage: regctl list [SERVICE]\n"
    "\n"
    "Without SERVICE, list every service with its number of instances. With SERVICE, list\n"
    "its instances: ID, ADDRESSES, PORT, PROTO, PRIO, WEIGHT, HEALTH, LEASE LEFT, TAGS, META.\n";

static const char HELP_HEALTH[] = "usage: regctl health\n"
                                  "\n"
                                  "Check that dnsd is up and ready.\n"
                                  "Prints: ok: N services, M instances\n";

static const char HELP_HELP[] = "usage: regctl help [COMMAND]\n"
                                "\n"
                                "Show regctl's usage, or the help of COMMAND.\n";

static const struct command COMMANDS[] = {
    {"register", COMMANDS_REGISTER, HELP_REGISTER},
    {"deregister", COMMANDS_DEREGISTER, HELP_DEREGISTER},
    {"heartbeat", COMMANDS_HEARTBEAT, HELP_HEARTBEAT},
    {"list", COMMANDS_LIST, HELP_LIST},
    {"health", COMMANDS_HEALTH, HELP_HEALTH},
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
    return c == OPT_API || c == OPT_JSON || c == OPT_TIMEOUT;
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
};

static void reg_opts_clear(struct reg_opts *o)
{
    json_decref(o->addresses);
    json_decref(o->tags);
    json_decref(o->meta);
}

/* Store a numeric option given at most once. */
static int set_number(const char *name, const char *arg, unsigned long min, unsigned long max,
                      unsigned long *value, bool *given, FILE *err)
{
    if (*given)
        return usage_error(err, "register", "--%s given more than once", name);
    if (!parse_uint(arg, min, max, value))
        return usage_error(err, "register", "invalid --%s '%s': expected an integer %lu-%lu", name,
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
        return set_number("port", optarg, 1, 65535, &o->port, &o->has_port, err);
    case OPT_PROTO:
        return set_proto(o, optarg, err);
    case OPT_TTL:
        return set_number("ttl", optarg, 1, UINT32_MAX, &o->ttl, &o->has_ttl, err);
    case OPT_PRIORITY:
        return set_number("priority", optarg, 0, 65535, &o->priority, &o->has_priority, err);
    case OPT_WEIGHT:
        return set_number("weight", optarg, 0, 65535, &o->weight, &o->has_weight, err);
    case OPT_TAG:
        return add_tag(o, optarg, err);
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

/* Parse a command that takes only global options and between min and max positional
 * arguments; on success *args points at them and *nargs says how many. */
static int parse_plain(const struct command *cmd, int argc, char **argv, int min, int max,
                       struct commands_request *req, char ***args, int *nargs, bool *helped,
                       FILE *out, FILE *err)
{
    static const struct option opts[] = {GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
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
        int rc = apply_global(c, optarg, req, cmd->name, err);
        if (rc != REGCTL_EXIT_OK)
            return rc;
    }
    int n = argc - optind;
    if (n < min) {
        return usage_error(err, cmd->name, "%s needs %s", cmd->name,
                           min == 2 ? "SERVICE and ID" : "an argument");
    }
    if (n > max)
        return usage_error(err, cmd->name, "unexpected argument '%s'", argv[optind + max]);
    *args = argv + optind;
    *nargs = n;
    return REGCTL_EXIT_OK;
}

/* deregister, heartbeat, list, health and help. */
static int parse_other(const struct command *cmd, int argc, char **argv,
                       struct commands_request *req, FILE *out, FILE *err)
{
    static const int min[] = {[COMMANDS_NONE] = 0,
                              [COMMANDS_DEREGISTER] = 2,
                              [COMMANDS_HEARTBEAT] = 2,
                              [COMMANDS_LIST] = 0,
                              [COMMANDS_HEALTH] = 0};
    static const int max[] = {[COMMANDS_NONE] = 1,
                              [COMMANDS_DEREGISTER] = 2,
                              [COMMANDS_HEARTBEAT] = 2,
                              [COMMANDS_LIST] = 1,
                              [COMMANDS_HEALTH] = 0};
    char **args = NULL;
    int n = 0;
    bool helped = false;
    int rc = parse_plain(cmd, argc, argv, min[cmd->kind], max[cmd->kind], req, &args, &n, &helped,
                         out, err);
    if (rc != REGCTL_EXIT_OK || helped)
        return rc;
    switch (cmd->kind) {
    case COMMANDS_NONE:
        return commands_print_help(n == 1 ? args[0] : NULL, out, err);
    case COMMANDS_DEREGISTER:
    case COMMANDS_HEARTBEAT:
        if ((rc = check_label("service name", args[0], cmd->name, err)) != REGCTL_EXIT_OK ||
            (rc = check_label("instance id", args[1], cmd->name, err)) != REGCTL_EXIT_OK)
            return rc;
        rc = set_path(req, err, "/v1/services/%s/instances/%s%s", args[0], args[1],
                      cmd->kind == COMMANDS_HEARTBEAT ? "/heartbeat" : "");
        req->service = args[0];
        req->id = args[1];
        req->method = cmd->kind == COMMANDS_HEARTBEAT ? "PUT" : "DELETE";
        break;
    case COMMANDS_LIST:
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

/* Seconds left on the lease, to a tenth: "27.3s". */
static char *lease_cell(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "lease_remaining_ms");
    char *cell = NULL;
    if (!json_is_integer(v))
        return strdup("-");
    json_int_t ms = json_integer_value(v);
    if (asprintf(&cell, "%.1fs", (double)(ms < 0 ? 0 : ms) / 1000.0) < 0)
        return NULL;
    return cell;
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
    static const char *const header[] = {"ID",     "ADDRESSES", "PORT",       "PROTO", "PRIO",
                                         "WEIGHT", "HEALTH",    "LEASE LEFT", "TAGS",  "META"};
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
            !table_add(&t, int_cell(inst, "priority")) ||
            !table_add(&t, int_cell(inst, "weight")) || !table_add(&t, text_cell(inst, "health")) ||
            !table_add(&t, lease_cell(inst)) || !table_add(&t, joined_cell(inst, "tags")) ||
            !table_add(&t, joined_cell(inst, "meta")))
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

/* "registered web/web-1 (lease 30s)" and the like, naming what dnsd echoed. */
static int print_instance_line(const char *verb, const struct commands_request *req,
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
            rc = print_instance_line("renewed", req, root, true, out);
            break;
        case COMMANDS_DEREGISTER:
            rc = print_instance_line("deregistered", req, root, false, out);
            break;
        case COMMANDS_LIST:
            rc = req->service != NULL ? print_instances(req, root, out, err)
                                      : print_services(root, out, err);
            break;
        default:
            rc = print_health(root, out, err);
            break;
        }
    }
    json_decref(root);
    return rc;
}
