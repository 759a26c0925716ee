/* SPDX-License-Identifier: BSD-2-Clause
 * regctl's HTTP client over libcurl: parses the API address, sends one request and collects
 * the reply. curl errors are translated here into DNSD_E* codes plus curl's own message;
 * they never leave this file. Never prints. */
#include "client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <curl/curl.h>

#include "dnsd/error.h"
#include "dnsd/version.h"

/* Reply body being collected by the write callback. */
struct sink {
    char *buf; /* owned until handed to the reply */
    size_t len;
    size_t cap;
    bool too_big;
    bool nomem;
};

void client_endpoint_clear(struct client_endpoint *ep)
{
    free(ep->unix_path);
    free(ep->base_url);
    free(ep->token);
    free(ep->cacert);
    ep->unix_path = NULL;
    ep->base_url = NULL;
    ep->token = NULL;
    ep->cacert = NULL;
    ep->tls = false;
}

int client_endpoint_set_token(struct client_endpoint *ep, const char *token)
{
    char *copy = NULL;
    if (token != NULL && (copy = strdup(token)) == NULL)
        return DNSD_ENOMEM;
    free(ep->token);
    ep->token = copy;
    return 0;
}

int client_endpoint_set_cacert(struct client_endpoint *ep, const char *cacert)
{
    char *copy = NULL;
    if (cacert != NULL && (copy = strdup(cacert)) == NULL)
        return DNSD_ENOMEM;
    free(ep->cacert);
    ep->cacert = copy;
    return 0;
}

void client_reply_clear(struct client_reply *reply)
{
    free(reply->body);
    reply->body = NULL;
    reply->len = 0;
    reply->status = 0;
    reply->has_index = false;
    reply->index = 0;
}

/* Parse a decimal port 1..65535 with nothing around it. */
static bool parse_port(const char *s, unsigned *port)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
        return false;
    *port = (unsigned)v;
    return true;
}

/* Does curl accept url as an http URL (so a bad HOST is a usage error, not a failed connect)? */
static int check_url(const char *url)
{
    CURLU *u = curl_url();
    if (u == NULL)
        return DNSD_ENOMEM;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    curl_url_cleanup(u);
    if (uc == CURLUE_OUT_OF_MEMORY)
        return DNSD_ENOMEM;
    return uc == CURLUE_OK ? 0 : DNSD_EINVAL;
}

static int parse_tcp(const char *hostport, bool tls, struct client_endpoint *ep)
{
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || colon == hostport)
        return DNSD_EINVAL;
    size_t hostlen = (size_t)(colon - hostport);
    /* An IPv6 host has colons of its own, so it must come in brackets (RFC 3986 §3.2.2). */
    if (hostport[0] == '[') {
        if (hostlen < 3 || hostport[hostlen - 1] != ']')
            return DNSD_EINVAL;
    } else if (memchr(hostport, ':', hostlen) != NULL || memchr(hostport, ']', hostlen)) {
        return DNSD_EINVAL;
    }
    if (memchr(hostport, '/', hostlen) != NULL || memchr(hostport, '@', hostlen) != NULL ||
        memchr(hostport, '?', hostlen) != NULL || memchr(hostport, '#', hostlen) != NULL)
        return DNSD_EINVAL;
    unsigned port;
    if (!parse_port(colon + 1, &port))
        return DNSD_EINVAL;
    char *url = NULL;
    if (asprintf(&url, "%s://%.*s:%u", tls ? "https" : "http", (int)hostlen, hostport, port) < 0)
        return DNSD_ENOMEM;
    int rc = check_url(url);
    if (rc < 0) {
        free(url);
        return rc;
    }
    ep->unix_path = NULL;
    ep->base_url = url;
    ep->tls = tls;
    return 0;
}

static int parse_unix(const char *path, struct client_endpoint *ep)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    size_t len = strlen(path);
    if (len == 0 || len > max)
        return DNSD_EINVAL;
    char *copy = strdup(path);
    char *url = strdup("http://localhost");
    if (copy == NULL || url == NULL) {
        free(copy);
        free(url);
        return DNSD_ENOMEM;
    }
    ep->unix_path = copy;
    ep->base_url = url;
    return 0;
}

int client_endpoint_parse(const char *api, struct client_endpoint *ep)
{
    if (strncmp(api, "unix:", 5) == 0)
        return parse_unix(api + 5, ep);
    if (strncmp(api, "tcp:", 4) == 0)
        return parse_tcp(api + 4, false, ep);
    if (strncmp(api, "https://", 8) == 0)
        return parse_tcp(api + 8, true, ep);
    if (strncmp(api, "https:", 6) == 0)
        return parse_tcp(api + 6, true, ep);
    return DNSD_EINVAL;
}

char *client_url(const struct client_endpoint *ep, const char *path)
{
    char *url = NULL;
    if (asprintf(&url, "%s%s", ep->base_url, path) < 0)
        return NULL;
    return url;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct sink *sink = userdata;
    size_t n = size * nmemb;
    if (n > CLIENT_MAX_REPLY - sink->len) {
        sink->too_big = true;
        return 0;
    }
    if (sink->len + n + 1 > sink->cap) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap < sink->len + n + 1)
            cap *= 2;
        char *buf = realloc(sink->buf, cap);
        if (buf == NULL) {
            sink->nomem = true;
            return 0;
        }
        sink->buf = buf;
        sink->cap = cap;
    }
    memcpy(sink->buf + sink->len, data, n);
    sink->len += n;
    sink->buf[sink->len] = '\0';
    return n;
}

bool client_parse_index_header(const char *line, size_t len, uint64_t *index)
{
    static const char name[] = CLIENT_INDEX_HEADER ":";
    size_t nlen = sizeof(name) - 1;
    if (len < nlen || strncasecmp(line, name, nlen) != 0)
        return false;
    size_t i = nlen;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    uint64_t v = 0;
    size_t digits = 0;
    for (; i < len && line[i] >= '0' && line[i] <= '9'; i++, digits++) {
        unsigned d = (unsigned)(line[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (digits == 0)
        return false;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
        i++;
    if (i != len)
        return false;
    *index = v;
    return true;
}

/* curl's header callback: one header line at a time; only the index header is kept. A new
 * status line (a 100 Continue before the real reply) forgets what came before. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct client_reply *reply = userdata;
    size_t n = size * nmemb;
    uint64_t index;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        reply->has_index = false;
        reply->index = 0;
    } else if (client_parse_index_header(data, n, &index)) {
        reply->has_index = true;
        reply->index = index;
    }
    return n;
}

/* Write curl's explanation of rc into errbuf: its detailed message, else the generic one,
 * plus the OS error when there is one (for a socket: "No such file or directory"). */
static void describe(CURL *curl, CURLcode rc, const char *detail, char *errbuf, size_t errlen)
{
    if (errlen == 0)
        return;
    const char *text = detail[0] != '\0' ? detail : curl_easy_strerror(rc);
    long os_errno = 0;
    if (curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno != 0 &&
        strstr(text, strerror((int)os_errno)) == NULL)
        snprintf(errbuf, errlen, "%s (%s)", text, strerror((int)os_errno));
    else
        snprintf(errbuf, errlen, "%s", text);
}

/* Translate a failed transfer into a DNSD_E* code. */
static int transfer_error(CURLcode rc, const struct sink *sink)
{
    switch (rc) {
    case CURLE_OUT_OF_MEMORY:
        return DNSD_ENOMEM;
    case CURLE_WRITE_ERROR:
        if (sink->too_big)
            return DNSD_ERANGE;
        return sink->nomem ? DNSD_ENOMEM : DNSD_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_SSL_CACERT_BADFILE: /* --cacert names no usable CA file */
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
        return DNSD_EINVAL;
    default:
        /* Connect failures, timeouts, resets, and replies that are not HTTP at all. */
        return DNSD_EIO;
    }
}

int client_request(const struct client_endpoint *ep, const char *method, const char *path,
                   const char *body, long timeout_ms, struct client_reply *reply, char *errbuf,
                   size_t errlen)
{
    return client_request_timed(ep, method, path, body, timeout_ms, timeout_ms, reply, errbuf,
                                errlen);
}

int client_request_timed(const struct client_endpoint *ep, const char *method, const char *path,
                         const char *body, long connect_ms, long total_ms,
                         struct client_reply *reply, char *errbuf, size_t errlen)
{
    struct client_reply got = {0};
    char detail[CURL_ERROR_SIZE] = "";
    struct sink sink = {0};
    struct curl_slist *headers = NULL;
    char *url = NULL;
    int rc = DNSD_ENOMEM;
    bool is_get = strcmp(method, "GET") == 0;

    if (errlen > 0)
        errbuf[0] = '\0';
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        goto fail;
    url = client_url(ep, path);
    if (url == NULL)
        goto fail;

    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (h == NULL)
        goto fail;
    headers = h;
    /* Expect: 100-continue would only add a round trip; dnsd reads small bodies whole. */
    h = curl_slist_append(headers, "Expect:");
    if (h == NULL)
        goto fail;
    if (!is_get) {
        h = curl_slist_append(headers, "Content-Type: application/json");
        if (h == NULL)
            goto fail;
    }

    CURLcode set = CURLE_OK;
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_URL, url);
    if (set == CURLE_OK && ep->unix_path != NULL)
        set = curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, ep->unix_path);
    /* The only method allowed, so curl sends the bearer token at once, not after a 401. */
    if (set == CURLE_OK && ep->token != NULL)
        set = curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    if (set == CURLE_OK && ep->token != NULL)
        set = curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, ep->token);
    /* An http_proxy in the environment must not capture requests meant for a local dnsd. */
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_PROXY, "");
    /* An https endpoint speaks HTTPS only (no redirect or downgrade to plain HTTP), and
     * always verifies the certificate's chain and that it names the host. */
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, ep->tls ? "https" : "http");
    if (set == CURLE_OK && ep->tls)
        set = curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    if (set == CURLE_OK && ep->tls)
        set = curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (set == CURLE_OK && ep->tls && ep->cacert != NULL)
        set = curl_easy_setopt(curl, CURLOPT_CAINFO, ep->cacert);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_USERAGENT, "regctl/" DNSD_VERSION);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, total_ms);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    if (set == CURLE_OK)
        set = curl_easy_setopt(curl, CURLOPT_HEADERDATA, &got);
    if (set == CURLE_OK && !is_get) {
        const char *payload = body != NULL ? body : "";
        set = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
        if (set == CURLE_OK)
            set = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
        if (set == CURLE_OK)
            set = curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    if (set != CURLE_OK) {
        rc = set == CURLE_OUT_OF_MEMORY ? DNSD_ENOMEM : DNSD_EINVAL;
        describe(curl, set, "", errbuf, errlen);
        goto fail;
    }

    CURLcode res = curl_easy_perform(curl);
    if (res != CURLE_OK) {
        rc = transfer_error(res, &sink);
        /* curl's detail names "localhost port 80", which misleads for a Unix socket. */
        if (ep->unix_path != NULL && res == CURLE_COULDNT_CONNECT)
            detail[0] = '\0';
        describe(curl, res, detail, errbuf, errlen);
        if (res == CURLE_PEER_FAILED_VERIFICATION && errlen > 0) {
            size_t used = strlen(errbuf);
            snprintf(errbuf + used, errlen - used,
                     "; is --cacert (or DNSD_CACERT) the CA that signed dnsd's certificate, and "
                     "does the certificate name this host?");
        }
        goto fail;
    }
    long status = 0;
    if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status == 0) {
        rc = DNSD_EIO;
        if (errlen > 0)
            snprintf(errbuf, errlen, "no HTTP status in the reply");
        goto fail;
    }
    if (sink.buf == NULL) {
        sink.buf = calloc(1, 1);
        if (sink.buf == NULL)
            goto fail;
    }
    got.status = status;
    got.body = sink.buf;
    got.len = sink.len;
    *reply = got;
    sink.buf = NULL;
    rc = 0;

fail:
    free(sink.buf);
    free(url);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc;
}
