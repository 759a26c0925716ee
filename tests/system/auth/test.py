#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# auth: bearer tokens on a TCP API endpoint. For a read, a write (services "web*") and an
# admin token: allowed requests pass, requests beyond the scope get 403, and no token,
# another scheme or an unknown token get 401 with WWW-Authenticate: Bearer; /metrics and
# /v1/health need a token too; refusals are logged by token name, never with the token.
# The Unix socket needs no token. regctl sends --token or DNSD_TOKEN (never printing it).
# dnsd exits 2 with a TCP endpoint but no token, and for 0.0.0.0 without TLS
# (api_options.tls_cert/tls_key) or api_options.allow_plain_tcp, before binding anything. (Serving on 0.0.0.0 with
# allow_plain_tcp is not started here: it would expose the port beyond loopback.)

import http.client
import json
import os
import socket

from dnsdtest import REGCTL_BIN, Dnsd, check, contains, eq, free_port, main, run, run_dnsd

WRITE = "deploy-token-0123456789abcdef"
ADMIN = "ops-token-0123456789abcdef"
READ = "monitor-token-0123456789abcdef"
TOKENS = """tokens = (
    { name = "deploy"; token = "%s"; scope = "write"; services = "web*"; },
    { name = "ops"; token = "%s"; scope = "admin"; },
    { name = "monitor"; token = "%s"; scope = "read"; }
);
""" % (WRITE, ADMIN, READ)
BODY = {"addresses": ["192.0.2.10"], "port": 8080}


def start(api_port, extra=""):
    config = ('api = [ "unix:@TMP@/api.sock", "tcp:127.0.0.1:%d" ];\n' % api_port
              + 'data_dir = "@TMP@/data";\n' + TOKENS + extra)
    d = Dnsd(config=config, cli_api=False)
    d.api_port = api_port
    return d


def tcp_api(d, method, path, token=None, auth=None, body=None):
    """One request on the TCP endpoint. Returns (status, json, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.api_port, timeout=5)
    headers = {}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    if auth is not None:
        headers["Authorization"] = auth
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    try:
        doc = json.loads(text) if text.strip() and method != "HEAD" else None
    except ValueError:
        doc = None
    return resp.status, doc, {k.lower(): v for k, v in resp.getheaders()}


def expect(d, method, path, token, want, body=None, auth=None, what=""):
    status, doc, headers = tcp_api(d, method, path, token=token, auth=auth, body=body)
    eq(status, want, "%s %s %s: status (%r)" % (what, method, path, doc))
    if want in (401, 403):
        check(isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"],
              "%s %s %s: JSON error body (%r)" % (what, method, path, doc))
    if want == 401:
        check(headers.get("www-authenticate", "").startswith("Bearer"),
              "%s: 401 carries WWW-Authenticate: Bearer (%r)" % (what, headers))
    return doc


def test_scopes():
    with start(free_port()) as d:
        web = "/v1/services/web/instances/web-1"
        db = "/v1/services/db/instances/db-1"
        # No token, another scheme, an unknown token: 401 on every path, reads included.
        for path in ("/v1/health", "/metrics", "/v1/services", web):
            method = "PUT" if path == web else "GET"
            body = BODY if path == web else None
            expect(d, method, path, None, 401, body=body, what="no token")
            expect(d, method, path, None, 401, body=body, auth="Basic b3BzOm9wcw==",
                   what="basic auth")
            expect(d, method, path, "not-a-token-0123456789abcdef", 401, body=body,
                   what="bad token")
            expect(d, method, path, READ[:-1], 401, body=body, what="token prefix")
            expect(d, method, path, READ + "x", 401, body=body, what="token extended")

        # read: GET and HEAD only, /metrics and /v1/health included.
        expect(d, "GET", "/v1/health", READ, 200, what="read")
        expect(d, "GET", "/metrics", READ, 200, what="read")
        expect(d, "HEAD", "/v1/services", READ, 200, what="read")
        expect(d, "PUT", web, READ, 403, body=BODY, what="read")
        expect(d, "POST", "/v1/snapshot", READ, 403, what="read")

        # write: register, heartbeat, maintenance and deregister within "web*" only.
        expect(d, "PUT", web, WRITE, 201, body=BODY, what="write")
        expect(d, "PUT", "/v1/services/webapi/instances/a", WRITE, 201, body=BODY,
               what="write")
        expect(d, "PUT", web + "/heartbeat", WRITE, 200, what="write")
        expect(d, "PUT", db, WRITE, 403, body=BODY, what="write outside its glob")
        expect(d, "PUT", "/v1/services/myweb/instances/a", WRITE, 403, body=BODY,
               what="write outside its glob")
        expect(d, "POST", "/v1/snapshot", WRITE, 403, what="write")
        doc = expect(d, "GET", "/v1/services", WRITE, 200, what="write may read")
        eq([s["name"] for s in doc["services"]], ["web", "webapi"], "write: registered")
        expect(d, "DELETE", "/v1/services/webapi/instances/a", WRITE, 200, what="write")

        # admin: everything.
        expect(d, "PUT", db, ADMIN, 201, body=BODY, what="admin")
        expect(d, "POST", "/v1/snapshot", ADMIN, 200, what="admin")
        expect(d, "DELETE", db, ADMIN, 200, what="admin")

        # A refused write changed nothing.
        doc = expect(d, "GET", "/v1/services", READ, 200, what="read")
        eq([s["name"] for s in doc["services"]], ["web"], "refused writes left no trace")

        # The Unix socket needs no token: its file mode is its access control.
        status, _, _ = d.api("PUT", db, BODY)
        eq(status, 201, "Unix socket: PUT without a token")

        # Refusals are logged with the token's name, never the token itself.
        log = d.stderr_text()
        contains(log, "refused (401)", "401 is logged")
        contains(log, "refused (403): token 'monitor'", "403 names the read token")
        contains(log, "refused (403): token 'deploy'", "403 names the write token")
        for secret in (WRITE, ADMIN, READ, READ[:-1], "not-a-token-0123456789abcdef"):
            check(secret not in log, "the log never shows a token (%s...)" % secret[:6])


def test_regctl():
    with start(free_port()) as d:
        api = "tcp:127.0.0.1:%d" % d.api_port

        rc, out, err = d.regctl("register", "web", "web-7", "--addr", "192.0.2.7", "--port",
                                "80", api=api)
        eq(rc, 1, "regctl without a token: refused (stderr %r)" % err)
        contains(err, "Authorization", "regctl prints the 401 error")

        rc, out, err = d.regctl("--token", WRITE, "register", "web", "web-7", "--addr",
                                "192.0.2.7", "--port", "80", api=api)
        eq(rc, 0, "regctl --token write (stderr %r)" % err)
        rc, out, err = d.regctl("--token", WRITE, "register", "db", "db-7", "--addr",
                                "192.0.2.7", "--port", "80", api=api)
        eq(rc, 1, "regctl --token write outside its glob (stderr %r)" % err)
        contains(err, "deploy", "the 403 message names the token")
        check(WRITE not in out + err, "regctl never prints the token")

        env = dict(os.environ, DNSD_API=api, DNSD_TOKEN=READ)
        rc, out, err = run_env([REGCTL_BIN, "list"], env)
        eq(rc, 0, "regctl with DNSD_TOKEN read: list (stderr %r)" % err)
        contains(out, "web", "list shows the registered service")
        rc, out, err = run_env([REGCTL_BIN, "deregister", "web", "web-7"], env)
        eq(rc, 1, "DNSD_TOKEN read: deregister refused (stderr %r)" % err)
        check(READ not in out + err, "regctl never prints DNSD_TOKEN")
        rc, out, err = run_env([REGCTL_BIN, "--token", ADMIN, "snapshot"], env)
        eq(rc, 0, "--token wins over DNSD_TOKEN: admin snapshot (stderr %r)" % err)
        env["DNSD_TOKEN"] = "wrong-token-0123456789abcdef"
        rc, out, err = run_env([REGCTL_BIN, "health"], env)
        eq(rc, 1, "regctl with a bad DNSD_TOKEN (stderr %r)" % err)
        rc, out, err = run_env([REGCTL_BIN, "--token", "a b", "health"], env)
        eq(rc, 2, "regctl --token with a blank: usage error (stderr %r)" % err)


def run_env(argv, env):
    return run(argv, timeout=15, env=env)


def listening(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def test_refused_start():
    tmp = Dnsd(cli_api=False).tmp
    sock = os.path.join(tmp, "api.sock")
    port, api_port = free_port(), free_port()
    listen = ["--listen", "127.0.0.1:%d" % port]

    # A TCP endpoint without any token: exit 2, nothing bound.
    rc, _, err = run_dnsd(listen + ["--api", "unix:" + sock, "--api",
                                    "tcp:127.0.0.1:%d" % api_port])
    eq(rc, 2, "TCP endpoint without tokens: exit status (stderr %r)" % err)
    contains(err, "tokens", "the message names the missing tokens")
    contains(err, "tcp:127.0.0.1:%d" % api_port, "the message names the endpoint")
    check(not os.path.exists(sock), "no socket created")
    check(not listening(api_port), "nothing listens on the API port")

    # 0.0.0.0 with tokens but without allow_plain_tcp: exit 2 before binding.
    conf = os.path.join(tmp, "plain.conf")
    with open(conf, "w") as f:
        f.write(TOKENS)
    rc, _, err = run_dnsd(["-c", conf] + listen + ["--api", "unix:" + sock, "--api",
                                                   "tcp:0.0.0.0:%d" % api_port])
    eq(rc, 2, "0.0.0.0 without allow_plain_tcp: exit status (stderr %r)" % err)
    contains(err, "not a loopback address", "the message says why")
    contains(err, "api_options.tls_cert", "the message names the TLS options")
    contains(err, "allow_plain_tcp", "the message names the switch")
    check(not os.path.exists(sock), "no socket created")
    check(not listening(api_port), "nothing listens on the API port")
    check(not listening(port), "nothing listens on the DNS port")


if __name__ == "__main__":
    main(lambda: (test_scopes(), test_regctl(), test_refused_start()))
