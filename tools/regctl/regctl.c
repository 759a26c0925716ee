/* SPDX-License-Identifier: BSD-2-Clause
 * regctl: the command-line client of dnsd's registration API. main parses the command line
 * (commands.c), sends the one request (client.c) and prints the reply, or runs the loop of
 * blocking queries behind 'watch'; it owns libcurl's global init and cleanup. Exit status: 0 ok, 1
 * refused, 2 usage, 3 dnsd unreachable. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "client.h"
#include "commands.h"
#include "dnsd/error.h"
#include "dnsd/names.h"

/* Report a failed client_request (rc < 0) at address. Returns: the exit status. */
static int report_client_error(int rc, const char *address, const char *why)
{
    int status = commands_exit_for_client_error(rc);
    if (status == REGCTL_EXIT_UNREACHABLE)
        fprintf(stderr, "regctl: cannot reach dnsd at %s: %s\n", address, why);
    else if (rc == DNSD_ERANGE)
        fprintf(stderr, "regctl: the reply from dnsd at %s is larger than %u bytes\n", address,
                CLIENT_MAX_REPLY);
    else
        fprintf(stderr, "regctl: request to %s failed: %s\n", address,
                why[0] != '\0' ? why : dnsd_strerror(rc));
    return status;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

/* regctl watch: the current state first (no index), then blocking queries from the last
 * index seen, printing each state whose index moved. Returns: an exit status. */
static int watch(const struct commands_request *req, const struct client_endpoint *ep,
                 const char *address)
{
    char why[512];
    uint64_t index = 0;
    unsigned long changes = 0;
    bool first = true;
    /* A correct dnsd answers an unchanged service only when the wait ends; one that answers
     * sooner without the index moving must not make the loop spin, so such replies are
     * spaced at least this far apart. A change is never lost by waiting: the next query's
     * index is behind, so it returns at once. */
    uint64_t spacing_ms = req->watch_wait_ms < 1000 ? req->watch_wait_ms : 1000;
    for (;;) {
        struct client_reply reply = {0};
        char *path = first ? strdup(req->path) : commands_watch_path(req, index);
        if (path == NULL) {
            fputs("regctl: out of memory\n", stderr);
            return REGCTL_EXIT_REFUSED;
        }
        long total_ms = req->timeout_ms;
        if (!first)
            total_ms += (long)req->watch_wait_ms;
        uint64_t sent_ms = monotonic_ms();
        int rc = client_request_timed(ep, "GET", path, NULL, req->timeout_ms, total_ms, &reply, why,
                                      sizeof(why));
        free(path);
        if (rc < 0)
            return report_client_error(rc, address, why);
        int status = REGCTL_EXIT_OK;
        if (commands_exit_for_status(reply.status) != REGCTL_EXIT_OK) {
            status = commands_print_reply(req, reply.status, reply.body, reply.len, stdout, stderr);
        } else if (!reply.has_index) {
            fputs("regctl: unexpected reply from dnsd: no " CLIENT_INDEX_HEADER " header\n",
                  stderr);
            status = REGCTL_EXIT_REFUSED;
        } else if (first || reply.index != index) {
            /* An index that went backwards means dnsd restarted: that is a change too. */
            status = commands_print_watch(req, reply.body, reply.len, reply.index, time(NULL),
                                          stdout, stderr);
            if (!first)
                changes++;
            first = false;
            index = reply.index;
            if (status == REGCTL_EXIT_OK && req->watch_count != 0 && changes >= req->watch_count) {
                client_reply_clear(&reply);
                return REGCTL_EXIT_OK;
            }
        } else {
            uint64_t elapsed = monotonic_ms() - sent_ms;
            if (elapsed < spacing_ms)
                sleep_ms(spacing_ms - elapsed);
        }
        client_reply_clear(&reply);
        if (status != REGCTL_EXIT_OK)
            return status;
    }
}

/* Send req to the API at address and print the outcome. Returns: an exit status. */
static int run(const struct commands_request *req, const char *address, bool from_env)
{
    struct client_endpoint ep = {0};
    struct client_reply reply = {0};
    char why[512];
    int status;

    int rc = client_endpoint_parse(address, &ep);
    if (rc == DNSD_EINVAL) {
        fprintf(stderr,
                "regctl: invalid API address '%s'%s: expected unix:PATH, tcp:HOST:PORT or "
                "https:HOST:PORT\n"
                "see 'regctl --help'\n",
                address, from_env ? " in " DNSD_API_ENV : "");
        return REGCTL_EXIT_USAGE;
    }
    if (rc == 0) {
        const char *token = commands_token(req->token, getenv(COMMANDS_TOKEN_ENV));
        if (token != NULL && !commands_token_is_valid(token)) {
            fprintf(stderr, "regctl: invalid token in " COMMANDS_TOKEN_ENV
                            ": expected printable ASCII without blanks\n");
            client_endpoint_clear(&ep);
            return REGCTL_EXIT_USAGE;
        }
        rc = client_endpoint_set_token(&ep, token);
    }
    if (rc == 0 && req->cacert != NULL && !ep.tls) {
        fprintf(stderr,
                "regctl: --cacert goes with an https:HOST:PORT API address, not '%s'\n"
                "see 'regctl --help'\n",
                address);
        client_endpoint_clear(&ep);
        return REGCTL_EXIT_USAGE;
    }
    if (rc == 0 && ep.tls)
        rc = client_endpoint_set_cacert(&ep,
                                        commands_cacert(req->cacert, getenv(COMMANDS_CACERT_ENV)));
    if (rc < 0) {
        client_endpoint_clear(&ep);
        fprintf(stderr, "regctl: %s\n", dnsd_strerror(rc));
        return REGCTL_EXIT_REFUSED;
    }
    if (req->kind == COMMANDS_WATCH) {
        status = watch(req, &ep, address);
        client_endpoint_clear(&ep);
        return status;
    }
    rc = client_request(&ep, req->method, req->path, req->body, req->timeout_ms, &reply, why,
                        sizeof(why));
    if (rc == 0)
        status = commands_print_reply(req, reply.status, reply.body, reply.len, stdout, stderr);
    else
        status = report_client_error(rc, address, why);
    client_reply_clear(&reply);
    client_endpoint_clear(&ep);
    return status;
}

int main(int argc, char **argv)
{
    struct commands_request req;
    int status = commands_parse(argc, argv, &req, stdout, stderr);
    if (status == REGCTL_EXIT_OK && req.kind != COMMANDS_NONE) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fputs("regctl: cannot initialise libcurl\n", stderr);
            status = REGCTL_EXIT_REFUSED;
        } else {
            const char *env = getenv(DNSD_API_ENV);
            const char *address = commands_api_address(req.api, env);
            status = run(&req, address, req.api == NULL && address == env);
            curl_global_cleanup();
        }
    }
    commands_request_clear(&req);
    if (fflush(stdout) != 0 && status == REGCTL_EXIT_OK) {
        perror("regctl: stdout");
        status = REGCTL_EXIT_REFUSED;
    }
    return status;
}
