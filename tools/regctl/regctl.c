/* SPDX-License-Identifier: BSD-2-Clause
 * regctl: the command-line client of dnsd's registration API. main parses the command line
 * (commands.c), sends the one request (client.c) and prints the reply; it owns libcurl's
 * global init and cleanup. Exit status: 0 ok, 1 refused, 2 usage, 3 dnsd unreachable. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "client.h"
#include "commands.h"
#include "dnsd/error.h"
#include "dnsd/names.h"

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
                "regctl: invalid API address '%s'%s: expected unix:PATH or tcp:HOST:PORT\n"
                "see 'regctl --help'\n",
                address, from_env ? " in " DNSD_API_ENV : "");
        return REGCTL_EXIT_USAGE;
    }
    if (rc < 0) {
        fprintf(stderr, "regctl: %s\n", dnsd_strerror(rc));
        return REGCTL_EXIT_REFUSED;
    }
    rc = client_request(&ep, req->method, req->path, req->body, req->timeout_ms, &reply, why,
                        sizeof(why));
    if (rc == 0) {
        status = commands_print_reply(req, reply.status, reply.body, reply.len, stdout, stderr);
    } else {
        status = commands_exit_for_client_error(rc);
        if (status == REGCTL_EXIT_UNREACHABLE)
            fprintf(stderr, "regctl: cannot reach dnsd at %s: %s\n", address, why);
        else if (rc == DNSD_ERANGE)
            fprintf(stderr, "regctl: the reply from dnsd at %s is larger than %u bytes\n", address,
                    CLIENT_MAX_REPLY);
        else
            fprintf(stderr, "regctl: request to %s failed: %s\n", address,
                    why[0] != '\0' ? why : dnsd_strerror(rc));
    }
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
