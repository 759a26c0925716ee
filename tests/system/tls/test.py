#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# tls: HTTPS on a TCP API endpoint and the Unix socket's group. A throwaway CA and a server
# certificate for 127.0.0.1 are made with the openssl CLI at test time. With
# api_options.tls_cert/tls_key dnsd serves HTTPS only on 127.0.0.1: curl --cacert registers
# and reads, plain HTTP to the port gets no reply, a bearer token is still required (401),
# regctl --api https:... --cacert --token works and fails with exit 3 and a certificate
# message without --cacert, and a stalled TLS handshake is cut off by the request deadline.
# Start-up: a TCP endpoint outside loopback is refused without TLS (exit 2, before binding;
# accepting it with TLS is a config_validate unit test, so nothing is exposed here); a
# missing, non-PEM or mismatched certificate or key stops dnsd naming the option and file.
# socket_group: the socket file gets the group and mode 0660; an unknown group stops dnsd.

import grp
import http.client
import json
import os
import socket
import ssl
import stat
import time

from dnsdtest import (REGCTL_BIN, Dnsd, check, contains, eq, free_port, main, run, run_dnsd)

TOKEN = "ops-token-0123456789abcdef"
TOKENS = ('tokens = ( { name = "ops"; token = "%s"; scope = "admin"; } );\n' % TOKEN)
BODY = {"addresses": ["192.0.2.10"], "port": 8080}
TIMEOUT_S = 2  # api_options.timeout_s: also the request (and handshake) deadline


def openssl(*args):
    rc, out, err = run(["openssl"] + list(args), timeout=60)
    eq(rc, 0, "openssl %s (stderr %r)" % (args[0], err))


def make_pki(tmp):
    """A CA, a server certificate for IP 127.0.0.1 signed by it, and an unrelated key."""
    pki = os.path.join(tmp, "pki")
    os.makedirs(pki)
    p = {name: os.path.join(pki, name) for name in
         ("ca.pem", "ca.key", "server.pem", "server.key", "server.csr", "ext.cnf", "other.key",
          "ca.srl")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p["ca.key"], "-out", p["ca.pem"], "-days", "2",
            "-subj", "/CN=dnsd test CA")
    openssl("req", *ec, "-keyout", p["server.key"], "-out", p["server.csr"], "-subj",
            "/CN=127.0.0.1")
    with open(p["ext.cnf"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", p["server.csr"], "-CA", p["ca.pem"], "-CAkey", p["ca.key"],
            "-CAserial", p["ca.srl"], "-CAcreateserial", "-out", p["server.pem"], "-days", "2",
            "-extfile", p["ext.cnf"])
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            p["other.key"])
    return p


def start_tls(pki, extra=""):
    api_port = free_port()
    config = ('api = [ "unix:@TMP@/api.sock", "tcp:127.0.0.1:%d" ];\n' % api_port
              + 'api_options = { tls_cert = "%s"; tls_key = "%s"; timeout_s = %d; %s};\n'
              % (pki["server.pem"], pki["server.key"], TIMEOUT_S, extra) + TOKENS)
    d = Dnsd(config=config, cli_api=False)
    d.api_port = api_port
    return d


def curl(d, pki, method, path, token=TOKEN, body=None, scheme="https", cacert=True):
    """curl on the TCP endpoint. Returns (curl exit code, HTTP status or 0, body text)."""
    argv = ["curl", "-sS", "--max-time", "5", "-X", method, "-o", "-", "-w", "\n%{http_code}",
            "-H", "Expect:", "--noproxy", "*"]
    if cacert:
        argv += ["--cacert", pki["ca.pem"]]
    if token:
        argv += ["-H", "Authorization: Bearer " + token]
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    argv.append("%s://127.0.0.1:%d%s" % (scheme, d.api_port, path))
    rc, out, err = run(argv, timeout=15, input_bytes=data)
    text, _, code = out.rpartition("\n")
    return rc, int(code) if code.isdigit() else 0, text + err


def regctl(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DNSD_API", "DNSD_TOKEN", "DNSD_CACERT")}
    env.update(env_extra or {})
    return run([REGCTL_BIN] + list(args), timeout=20, env=env)


def test_https(pki):
    with start_tls(pki) as d:
        contains(d.stderr_text(), "listening on tcp:127.0.0.1:%d (HTTPS)" % d.api_port,
                 "the log says the endpoint serves HTTPS")
        web = "/v1/services/web/instances/web-1"
        rc, status, text = curl(d, pki, "PUT", web, body=BODY)
        eq((rc, status), (0, 201), "curl --cacert https PUT registers (%r)" % text)
        rc, status, text = curl(d, pki, "GET", "/v1/services/web")
        eq((rc, status), (0, 200), "curl --cacert https GET (%r)" % text)
        eq(json.loads(text)["instances"][0]["id"], "web-1", "the registration reads back")

        # Still a token on every request (401 without).
        rc, status, text = curl(d, pki, "GET", "/v1/services", token=None)
        eq((rc, status), (0, 401), "https without a token (%r)" % text)
        contains(text, "Bearer", "the 401 names the bearer scheme")

        # Plain HTTP to the TLS port: no HTTP reply at all, nothing registered.
        rc, status, text = curl(d, pki, "PUT", "/v1/services/web/instances/web-2", body=BODY,
                                scheme="http")
        check(rc != 0 and status == 0, "plain HTTP to the TLS port fails (curl %d, status %d, "
              "%r)" % (rc, status, text))
        # Failed handshakes are anyone's to cause: they must not flood the log with warnings
        # (at most one per 10 s per endpoint; the rest go to debug level).
        def api_warnings():
            return sum(1 for ln in d.stderr_text().splitlines()
                       if " warn api: tcp:127.0.0.1:%d" % d.api_port in ln)
        before = api_warnings()
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", d.api_port), timeout=5) as s:
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
        time.sleep(0.3)
        check(api_warnings() - before <= 1, "20 failed handshakes: at most one warning "
              "(%d before, %d after)" % (before, api_warnings()))
        # Python's own TLS client agrees on the certificate (another client than curl).
        ctx = ssl.create_default_context(cafile=pki["ca.pem"])
        conn = http.client.HTTPSConnection("127.0.0.1", d.api_port, timeout=5, context=ctx)
        conn.request("GET", "/v1/services/web", headers={"Authorization": "Bearer " + TOKEN})
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        conn.close()
        eq(resp.status, 200, "python ssl client: status")
        eq([i["id"] for i in doc["instances"]], ["web-1"], "plain HTTP registered nothing")
        # Without the CA, curl refuses the certificate.
        rc, status, text = curl(d, pki, "GET", "/v1/health", cacert=False)
        eq(rc, 60, "curl without --cacert: certificate problem (%r)" % text)

        api = "https:127.0.0.1:%d" % d.api_port
        rc, out, err = regctl("--api", api, "--cacert", pki["ca.pem"], "--token", TOKEN,
                              "register", "web", "web-3", "--addr", "192.0.2.13", "--port", "80")
        eq(rc, 0, "regctl --api https: --cacert --token register (stderr %r)" % err)
        rc, out, err = regctl("list", "web", env_extra={
            "DNSD_API": "https://127.0.0.1:%d" % d.api_port, "DNSD_CACERT": pki["ca.pem"],
            "DNSD_TOKEN": TOKEN})
        eq(rc, 0, "regctl with DNSD_API https://, DNSD_CACERT, DNSD_TOKEN (stderr %r)" % err)
        contains(out, "web-3", "regctl list shows the registration")
        rc, out, err = regctl("--api", api, "--token", TOKEN, "list")
        eq(rc, 3, "regctl without --cacert: exit 3 (stderr %r)" % err)
        contains(err, "certificate", "regctl says the certificate did not verify")
        rc, out, err = regctl("--api", api, "--cacert", pki["ca.pem"], "list")
        eq(rc, 1, "regctl over https without a token: refused (stderr %r)" % err)
        contains(err, "Authorization", "regctl prints the 401 error")
        rc, out, err = regctl("--api", "tcp:127.0.0.1:%d" % d.api_port, "--token", TOKEN,
                              "list")
        eq(rc, 3, "regctl with plain tcp: to the TLS port: unreachable (stderr %r)" % err)
        rc, out, err = regctl("--api", "unix:" + d.sock, "--cacert", pki["ca.pem"], "list")
        eq(rc, 2, "regctl --cacert with a unix: address: usage error (stderr %r)" % err)

        # The Unix socket stays plain HTTP.
        status, doc, _ = d.api("GET", "/v1/services/web")
        eq(status, 200, "the Unix socket serves plain HTTP beside the TLS endpoint")

        # A client that stalls in the TLS handshake is cut off by the request deadline.
        s = socket.create_connection(("127.0.0.1", d.api_port), timeout=5)
        s.settimeout(TIMEOUT_S + 5)
        t0 = time.monotonic()
        s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        elapsed = time.monotonic() - t0
        s.close()
        check(TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + 3,
              "a stalled handshake is closed after about %d s (took %.1f s)" % (TIMEOUT_S,
                                                                                elapsed))
        rc, status, text = curl(d, pki, "GET", "/v1/health")
        eq((rc, status), (0, 200), "dnsd still serves HTTPS afterwards (%r)" % text)


def listening(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def test_refused_start(pki):
    tmp = Dnsd(cli_api=False).tmp
    sock = os.path.join(tmp, "api.sock")
    port, api_port = free_port(), free_port()
    listen = ["--listen", "127.0.0.1:%d" % port]

    def conf(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text + TOKENS)
        return path

    # Outside loopback without TLS and without allow_plain_tcp: exit 2 before binding.
    rc, _, err = run_dnsd(["-c", conf("plain.conf", "")] + listen
                          + ["--api", "unix:" + sock, "--api", "tcp:0.0.0.0:%d" % api_port])
    eq(rc, 2, "0.0.0.0 without TLS: exit status (stderr %r)" % err)
    contains(err, "not a loopback address", "the message says why")
    contains(err, "api_options.tls_cert", "the message names the TLS options")
    contains(err, "allow_plain_tcp", "the message names the switch")
    check(not os.path.exists(sock), "no socket created")
    check(not listening(api_port), "nothing listens on the API port")

    # Only one of the pair: exit 2, naming the missing one.
    rc, _, err = run_dnsd(["-c", conf("half.conf", 'api_options = { tls_cert = "%s"; };\n'
                                      % pki["server.pem"])] + listen + ["--api", "unix:" + sock])
    eq(rc, 2, "tls_cert without tls_key: exit status (stderr %r)" % err)
    contains(err, "api_options.tls_cert: set without api_options.tls_key", "the message")

    api = ["--api", "unix:" + sock, "--api", "tcp:127.0.0.1:%d" % api_port]
    missing = os.path.join(tmp, "missing.pem")
    garbage = os.path.join(tmp, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("this is not PEM\n")
    cases = [
        (missing, pki["server.key"], "api_options.tls_cert: cannot read %s" % missing),
        (garbage, pki["server.key"], "api_options.tls_cert: %s: not a PEM certificate" % garbage),
        (pki["server.pem"], garbage, "api_options.tls_key: %s: not a PEM private key" % garbage),
        (pki["server.pem"], pki["other.key"], "TLS refused api_options.tls_cert"),
    ]
    for cert, key, want in cases:
        path = conf("bad.conf", 'api_options = { tls_cert = "%s"; tls_key = "%s"; };\n'
                    % (cert, key))
        rc, _, err = run_dnsd(["-c", path] + listen + api)
        check(rc != 0, "bad TLS files (%s, %s): non-zero exit (stderr %r)" % (cert, key, err))
        contains(err, want, "the error names the option and file")
        check(not os.path.exists(sock), "no socket left behind (%s)" % want)
        check(not listening(api_port), "nothing listens on the API port (%s)" % want)
    contains(err, "do not match", "a mismatched key is explained (GnuTLS's words)")


def group_for_test():
    """A group the socket can be given: 'nogroup' as root, else a supplementary group."""
    if os.geteuid() == 0:
        return grp.getgrnam("nogroup")
    for gid in os.getgroups():
        if gid != os.getegid():
            return grp.getgrgid(gid)
    return None


def test_socket_group():
    g = group_for_test()
    if g is None:
        print("tls: socket_group: no second group to test with; skipped", flush=True)
    else:
        config = ('api = [ "unix:@TMP@/api.sock" ];\n'
                  'api_options = { socket_group = "%s"; socket_mode = "0660"; };\n' % g.gr_name)
        with Dnsd(config=config, cli_api=False) as d:
            st = os.stat(d.sock)
            check(stat.S_ISSOCK(st.st_mode), "the API path is a socket")
            eq(st.st_gid, g.gr_gid, "the socket's group is socket_group")
            eq(stat.S_IMODE(st.st_mode), 0o660, "the socket's mode is socket_mode")
            leftovers = [n for n in os.listdir(d.tmp) if n.startswith(".dnsd-")]
            eq(leftovers, [], "no temporary directory is left beside the socket")
            status, _, _ = d.api("GET", "/v1/health")
            eq(status, 200, "the socket serves")
        # A numeric gid works the same.
        config = config.replace('"%s"' % g.gr_name, '"%d"' % g.gr_gid)
        with Dnsd(config=config, cli_api=False) as d:
            eq(os.stat(d.sock).st_gid, g.gr_gid, "a numeric socket_group")
        # A path too long for the temporary directory beside it (the bind under umask 0777
        # fallback) gets the same group and mode.
        d = Dnsd(cli_api=False)
        long_dir = os.path.join(d.tmp, "d" * (95 - len(d.tmp) - 1))
        d.sock = os.path.join(long_dir, "api.sock")
        check(len(d.sock) <= 107, "the long socket path still fits sun_path")
        d.config = ('api = [ "unix:%s" ];\n' % d.sock
                    + 'api_options = { socket_group = "%s"; };\n' % g.gr_name)
        with d:
            st = os.stat(d.sock)
            eq((st.st_gid, stat.S_IMODE(st.st_mode)), (g.gr_gid, 0o660),
               "long socket path: group and mode")
            status, _, _ = d.api("GET", "/v1/health")
            eq(status, 200, "the long-path socket serves")

    tmp = Dnsd(cli_api=False).tmp
    sock = os.path.join(tmp, "api.sock")
    path = os.path.join(tmp, "nogroup.conf")
    with open(path, "w") as f:
        f.write('api_options = { socket_group = "no-such-group-dnsd"; };\n')
    rc, _, err = run_dnsd(["-c", path, "--listen", "127.0.0.1:%d" % free_port(), "--api",
                           "unix:" + sock])
    check(rc != 0, "unknown socket_group: non-zero exit (stderr %r)" % err)
    contains(err, "api_options.socket_group: 'no-such-group-dnsd': no such group", "the message")
    check(not os.path.exists(sock), "no socket created")


def all_tests():
    tmp = Dnsd(cli_api=False).tmp
    pki = make_pki(tmp)
    test_https(pki)
    test_refused_start(pki)
    test_socket_group()


if __name__ == "__main__":
    main(all_tests)
