/* SPDX-License-Identifier: BSD-2-Clause
 * regctl's HTTP client: one request to the dnsd registration API over libcurl, either on a
 * Unix socket (unix:PATH), on TCP (tcp:HOST:PORT, IPv6 as tcp:[::1]:8500) or over TLS
 * (https:HOST:PORT, the server's certificate always verified). It tells "dnsd cannot be
 * reached" apart from an HTTP reply of any status. It knows nothing of JSON or of
 * the commands, and it never prints. curl_global_init/cleanup belong to main. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLIENT_MAX_REPLY (8u * 1024u * 1024u) /* larger replies are refused */

/* Where the API listens, parsed from "unix:PATH", "tcp:HOST:PORT" or "https:HOST:PORT". */
struct client_endpoint {
    char *unix_path; /* owned; the socket path, or NULL for TCP */
    char *base_url;  /* owned; "http://localhost" for a socket, else "http://HOST:PORT" or
                        "https://HOST:PORT" */
    char *token;     /* owned; sent as "Authorization: Bearer TOKEN" (RFC 6750), or NULL */
    char *cacert;    /* owned; PEM file of the CAs trusted for https (CURLOPT_CAINFO), or
                        NULL: the system's */
    bool tls;        /* https: only HTTPS, peer and host name verified */
};

#define CLIENT_INDEX_HEADER "X-Dnsd-Index" /* a service's state index (watch queries) */

/* One HTTP reply. */
struct client_reply {
    long status;    /* HTTP status code */
    char *body;     /* owned; the body, NUL-terminated (never NULL once filled) */
    size_t len;     /* body length in bytes, without the NUL */
    bool has_index; /* the reply carried a valid X-Dnsd-Index header */
    uint64_t index; /* its value when has_index */
};

/* Parse an API address: "unix:PATH" (PATH non-empty and short enough for a socket address),
 * "tcp:HOST:PORT" (PORT 1..65535; an IPv6 HOST in brackets) or "https:HOST:PORT" (also
 * written "https://HOST:PORT"; HOST must match dnsd's certificate).
 * Returns: 0 and *ep filled, DNSD_EINVAL (malformed address), DNSD_ENOMEM.
 * Ownership: *ep's strings are the caller's, released with client_endpoint_clear. */
int client_endpoint_parse(const char *api, struct client_endpoint *ep);

/* Send token (copied; NULL: none) with every request to ep from now on.
 * Returns: 0, DNSD_ENOMEM. */
int client_endpoint_set_token(struct client_endpoint *ep, const char *token);

/* Trust the CAs in the PEM file cacert (copied; NULL: the system's) for https endpoints.
 * Returns: 0, DNSD_ENOMEM. */
int client_endpoint_set_cacert(struct client_endpoint *ep, const char *cacert);

/* Release ep's strings and zero it; a zeroed endpoint is fine. */
void client_endpoint_clear(struct client_endpoint *ep);

/* The full URL of path (which starts with '/') at ep.
 * Returns: a string the caller frees, or NULL when out of memory. */
char *client_url(const struct client_endpoint *ep, const char *path);

/* Parse one raw response header line (as curl hands it over, CRLF included or not): when
 * it is "X-Dnsd-Index: <decimal>" (name in any case, blanks around the value), store the
 * number.
 * Returns: true and *index when the line is a well-formed index header, else false. */
bool client_parse_index_header(const char *line, size_t len, uint64_t *index);

/* Send method ("GET", "PUT", "DELETE") to path with body (JSON, or NULL for none; a PUT
 * without a body sends an empty one) and wait for the reply, giving up after timeout_ms for
 * connecting and again for the whole exchange. On DNSD_EIO errbuf says why, in curl's words.
 * The reply's X-Dnsd-Index header, when present, is in reply->index.
 * Returns: 0 and *reply filled for any HTTP status; DNSD_EIO when dnsd cannot be reached
 * (socket missing, connection refused, timeout, connection dropped, not HTTP, a TLS
 * handshake or certificate verification that failed); DNSD_ERANGE when the reply exceeds
 * CLIENT_MAX_REPLY; DNSD_EINVAL when curl rejects the request setup or cannot use the CA
 * file; DNSD_ENOMEM.
 * Ownership: reply->body is the caller's, released with client_reply_clear. */
int client_request(const struct client_endpoint *ep, const char *method, const char *path,
                   const char *body, long timeout_ms, struct client_reply *reply, char *errbuf,
                   size_t errlen);

/* client_request with separate limits: connect_ms for connecting, total_ms for the whole
 * exchange (a watch query waits on the server for up to its wait time).
 * Returns and Ownership: as client_request. */
int client_request_timed(const struct client_endpoint *ep, const char *method, const char *path,
                         const char *body, long connect_ms, long total_ms,
                         struct client_reply *reply, char *errbuf, size_t errlen);

/* Release reply's body and zero it; a zeroed reply is fine. */
void client_reply_clear(struct client_reply *reply);
