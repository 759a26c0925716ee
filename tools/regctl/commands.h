/* SPDX-License-Identifier: BSD-2-Clause
 * regctl's commands: the command line (global options, command, its options) becomes one
 * API request (method, path, JSON body), and the server's reply becomes human-readable
 * output or pretty JSON. Also the help texts and the exit-status rules. No network here:
 * client.c sends the request, regctl.c ties the two together. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define COMMANDS_DEFAULT_TIMEOUT_MS 10000L
#define COMMANDS_TOKEN_ENV "DNSD_TOKEN"   /* the bearer token when --token is not given */
#define COMMANDS_CACERT_ENV "DNSD_CACERT" /* the CA file for https: when --cacert is not given */
#define COMMANDS_WATCH_DEFAULT_WAIT_MS (5ULL * 60 * 1000) /* dnsd's own default */
#define COMMANDS_WATCH_MAX_WAIT_MS (10ULL * 60 * 1000)    /* the most dnsd accepts */

/* regctl's exit statuses. */
enum regctl_exit {
    REGCTL_EXIT_OK = 0,          /* success, or help/version printed */
    REGCTL_EXIT_REFUSED = 1,     /* dnsd refused the request or replied badly; local failure */
    REGCTL_EXIT_USAGE = 2,       /* bad command line */
    REGCTL_EXIT_UNREACHABLE = 3, /* dnsd cannot be reached */
};

enum commands_kind {
    COMMANDS_NONE = 0, /* nothing to send (help, version, usage error) */
    COMMANDS_REGISTER,
    COMMANDS_DEREGISTER,
    COMMANDS_HEARTBEAT,
    COMMANDS_LIST,
    COMMANDS_HEALTH,
    COMMANDS_MAINTENANCE,
    COMMANDS_WATCH,
    COMMANDS_SNAPSHOT,
};

/* A parsed command line: what to send, where, and how to show the reply. */
struct commands_request {
    enum commands_kind kind;
    const char *api;           /* borrowed from argv; the --api value, or NULL when not given */
    const char *token;         /* borrowed from argv; the --token value, or NULL */
    const char *cacert;        /* borrowed from argv; the --cacert value, or NULL */
    bool json;                 /* --json: print the reply as JSON */
    long timeout_ms;           /* --timeout, else COMMANDS_DEFAULT_TIMEOUT_MS */
    const char *service;       /* borrowed from argv; NULL when the command has none */
    const char *id;            /* borrowed from argv; NULL when the command has none */
    const char *method;        /* static: "GET", "PUT" or "DELETE"; NULL when kind is NONE */
    char *path;                /* owned; e.g. "/v1/services/web/instances/web-1" */
    char *body;                /* owned; compact JSON (register, maintenance, heartbeat with
                                  --status or --note), else NULL */
    bool maintenance;          /* maintenance: true for on, false for off */
    unsigned long watch_count; /* watch --count: stop after this many changes; 0 = never */
    uint64_t watch_wait_ms;    /* watch --wait, else COMMANDS_WATCH_DEFAULT_WAIT_MS */
};

/* Parse regctl's whole command line (argv[0] is the program name) into req. Help and
 * --version go to out; usage errors go to err with a hint at the right --help. Global
 * options (--api, --token, --cacert, --json, --timeout) may come before or after the
 * command.
 * Returns: REGCTL_EXIT_OK (send req when req->kind != COMMANDS_NONE, else exit 0),
 * REGCTL_EXIT_USAGE (message printed), REGCTL_EXIT_REFUSED (out of memory, message printed).
 * Ownership: req's path and body are the caller's, released with commands_request_clear,
 * whatever the result; req borrows strings from argv. argv may be permuted. */
int commands_parse(int argc, char **argv, struct commands_request *req, FILE *out, FILE *err);

/* Release req's path and body and zero it; a zeroed request is fine. */
void commands_request_clear(struct commands_request *req);

/* Is token usable in an Authorization header: non-empty printable ASCII without blanks?
 * Returns: true when it is. */
bool commands_token_is_valid(const char *token);

/* Choose the bearer token: opt (--token) when given, else env (DNSD_TOKEN) when set and
 * non-empty, else none.
 * Returns: opt, env or NULL. */
const char *commands_token(const char *opt, const char *env);

/* Choose the CA file for an https: endpoint: opt (--cacert) when given, else env
 * (DNSD_CACERT) when set and non-empty, else none (the system's CAs).
 * Returns: opt, env or NULL. */
const char *commands_cacert(const char *opt, const char *env);

/* Choose the API address: opt (--api) when given, else env (the DNSD_API variable) when set
 * and non-empty, else "unix:" DNSD_DEFAULT_API_SOCKET.
 * Returns: opt, env or a static string. */
const char *commands_api_address(const char *opt, const char *env);

/* Print the usage text (or command's help text when command names one) to out.
 * Returns: REGCTL_EXIT_OK, or REGCTL_EXIT_USAGE (error to err) for an unknown command. */
int commands_print_help(const char *command, FILE *out, FILE *err);

/* Show dnsd's reply to req: a 2xx reply goes to out (a sentence, a table, or with --json the
 * reply re-indented); anything else becomes "regctl: <error> (field: <field>)" on err.
 * Returns: REGCTL_EXIT_OK, or REGCTL_EXIT_REFUSED for a non-2xx status, a body that is not
 * JSON, or a 2xx body without the expected shape. */
int commands_print_reply(const struct commands_request *req, long status, const char *body,
                         size_t len, FILE *out, FILE *err);

/* The path of one blocking query of a watch: the service's path with "?index=I&wait=D".
 * Returns: a string the caller frees, or NULL when out of memory. */
char *commands_watch_path(const struct commands_request *req, uint64_t index);

/* Show one state of a watched service (the body of GET /v1/services/SERVICE at index) seen
 * at wall-clock time when: with --json the body as one compact JSON line, else the line
 * "2026-11-26T04:10:00Z web index 42: 2 passing, 1 warning, 1 critical, 0 maintenance"
 * followed by "  ID HEALTH: REASON" for each instance that is not passing. out is flushed.
 * Returns: REGCTL_EXIT_OK, or REGCTL_EXIT_REFUSED (message on err) for a body that is not
 * a JSON object with an "instances" list. */
int commands_print_watch(const struct commands_request *req, const char *body, size_t len,
                         uint64_t index, time_t when, FILE *out, FILE *err);

/* The exit status for a failed client_request() code (see client.h).
 * Returns: REGCTL_EXIT_UNREACHABLE for DNSD_EIO, REGCTL_EXIT_USAGE for DNSD_EINVAL,
 * REGCTL_EXIT_REFUSED for anything else. */
int commands_exit_for_client_error(int err);

/* The exit status for an HTTP status: REGCTL_EXIT_OK for 2xx, else REGCTL_EXIT_REFUSED. */
int commands_exit_for_status(long status);
