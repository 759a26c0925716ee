#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# api: the registration API over its Unix socket with curl: 201/200, 400 with the field at
# fault, 404, 405 with Allow, 413 over api_options.max_body, the GET shapes, /v1/health, a
# rejected request changing nothing, and the socket file mode. Then the HTTP layer on raw
# sockets: keep-alive, pipelining, bodies in slow pieces and chunked, 413 for chunked
# bodies, 50 parallel clients, the connection limit and the idle timeout.

import os
import socket
import stat
import subprocess
import time

from dnsdtest import CheckFailed, Dnsd, check, contains, eq, free_port, main, run_dnsd

MAX_BODY = 512
CONFIG = """
api_options = {
    max_body = %d;
};
""" % MAX_BODY

INSTANCE_KEYS = {"service", "id", "addresses", "port", "proto", "priority", "weight", "tags",
                 "meta", "ttl", "health", "lease_remaining_ms", "last_heartbeat_ms_ago",
                 "registered_ms_ago", "reason", "status", "note", "maintenance",
                 "deregister_after", "critical_for_ms"}
VOLATILE = ("lease_remaining_ms", "last_heartbeat_ms_ago", "registered_ms_ago",
            "critical_for_ms")

WEB1 = "/v1/services/web/instances/web-1"
GOOD = {"addresses": ["127.0.0.10", "2001:db8::10"], "port": 8080, "tags": ["primary"],
        "meta": {"version": "1.4"}}


def stable(doc):
    """A GET /v1/services/web reply without the clock-driven fields."""
    return [{k: v for k, v in inst.items() if k not in VOLATILE} for inst in doc["instances"]]


def expect_error(d, method, path, body, status, field, what, raw=None):
    got, doc, hdr = d.api(method, path, body, raw=raw)
    eq(got, status, "%s: status (body %r)" % (what, hdr["_body"]))
    check(isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"],
          "%s: JSON error message (%r)" % (what, hdr["_body"]))
    check(hdr["_body"].endswith("\n"), "%s: reply ends in newline" % what)
    if field is None:
        check("field" not in doc, "%s: no field (%r)" % (what, doc))
    else:
        eq(doc.get("field"), field, "%s: field" % what)
    return doc, hdr


def test():
    with Dnsd(config=CONFIG) as d:
        mode = stat.S_IMODE(os.stat(d.sock).st_mode)
        eq(oct(mode), oct(0o660), "API socket file mode")
        check(stat.S_ISSOCK(os.stat(d.sock).st_mode), "API path is a socket")

        status, doc, hdr = d.api("GET", "/v1/health")
        eq(status, 200, "health status")
        eq(doc, {"status": "ok", "services": 0, "instances": 0, "preserving": False}, "health when empty")
        check(hdr["_body"].endswith("\n"), "health reply ends in newline")
        contains(hdr.get("content-type", ""), "application/json", "health content type")

        status, doc, _ = d.api("PUT", WEB1, GOOD)
        eq(status, 201, "first PUT creates")
        eq(set(doc), INSTANCE_KEYS, "instance JSON keys")
        eq((doc["service"], doc["id"], doc["addresses"], doc["port"], doc["proto"],
            doc["priority"], doc["weight"], doc["tags"], doc["meta"], doc["ttl"],
            doc["health"]),
           ("web", "web-1", ["127.0.0.10", "2001:db8::10"], 8080, "tcp", 0, 1, ["primary"],
            {"version": "1.4"}, 30, "passing"), "stored instance with defaults")
        check(0 < doc["lease_remaining_ms"] <= 30000, "lease_remaining_ms %r"
              % doc["lease_remaining_ms"])

        status, doc, _ = d.api("PUT", WEB1, dict(GOOD, port=8081))
        eq(status, 200, "second PUT replaces")
        eq(doc["port"], 8081, "replaced port")

        status, doc, _ = d.api("PUT", "/v1/services/WEB/instances/Web-2",
                               {"addresses": ["127.0.0.11"], "port": 80, "ttl": 100000,
                                "proto": "udp", "priority": 3, "weight": 4})
        eq(status, 201, "PUT web-2")
        eq((doc["service"], doc["id"]), ("web", "web-2"), "labels stored lower-cased")
        check(doc["ttl"] < 100000, "ttl clamped to lease max (%r)" % doc["ttl"])

        status, doc, _ = d.api("GET", "/v1/services")
        eq(status, 200, "GET /v1/services")
        eq(doc, {"services": [{"name": "web", "instances": 2}]}, "services list")
        d.put_instance("api", "api-1", addresses=["127.0.0.12"], port=81)
        status, doc, _ = d.api("GET", "/v1/services")
        eq(doc, {"services": [{"name": "api", "instances": 1}, {"name": "web", "instances": 2}]},
           "services list in name order")

        status, doc, _ = d.api("GET", "/v1/services/web")
        eq(status, 200, "GET /v1/services/web")
        eq(set(doc), {"service", "instances"}, "service reply keys")
        eq(doc["service"], "web", "service reply name")
        eq(sorted(i["id"] for i in doc["instances"]), ["web-1", "web-2"], "service instances")
        for inst in doc["instances"]:
            eq(set(inst), INSTANCE_KEYS, "instance keys in service listing")
        status, doc, _ = d.api("GET", "/v1/services/nothing")
        eq((status, doc), (200, {"service": "nothing", "instances": []}), "unknown service")

        status, doc, _ = d.api("GET", "/v1/health")
        eq(doc, {"status": "ok", "services": 2, "instances": 3, "preserving": False}, "health counts")

        status, doc, _ = d.api("PUT", WEB1 + "/heartbeat", None)
        eq(status, 200, "heartbeat")
        eq(doc["id"], "web-1", "heartbeat reply is the instance")

        # A rejected request changes nothing.
        _, before, _ = d.api("GET", "/v1/services/web")
        _, svc_before, _ = d.api("GET", "/v1/services")
        bad = [
            ("PUT", WEB1, dict(GOOD, addresses=["127.0.0.300"]), 400, "addresses",
             "bad IPv4 address"),
            ("PUT", WEB1, dict(GOOD, addresses=["not-an-ip"]), 400, "addresses",
             "address that is no IP"),
            ("PUT", WEB1, dict(GOOD, addresses=[]), 400, "addresses", "no address"),
            ("PUT", WEB1, dict(GOOD, addresses=["127.0.0.1", "127.0.0.1"]), 400, "addresses",
             "duplicate address"),
            ("PUT", WEB1, dict(GOOD, port=0), 400, "port", "port 0"),
            ("PUT", WEB1, dict(GOOD, port=65536), 400, "port", "port 65536"),
            ("PUT", WEB1, dict(GOOD, port="80"), 400, "port", "port as a string"),
            ("PUT", WEB1, {"addresses": ["127.0.0.1"]}, 400, "port", "missing port"),
            ("PUT", WEB1, dict(GOOD, colour="blue"), 400, "colour", "unknown field"),
            ("PUT", WEB1, dict(GOOD, proto="sctp"), 400, "proto", "bad proto"),
            ("PUT", WEB1, dict(GOOD, tags=["_bad"]), 400, "tags", "bad tag"),
            ("PUT", WEB1, dict(GOOD, meta={"a=b": "c"}), 400, "meta", "meta key with ="),
            ("PUT", "/v1/services/bad_label/instances/x-1", GOOD, 400, "service",
             "bad service label in path"),
            ("PUT", "/v1/services/-web/instances/x-1", GOOD, 400, "service",
             "service label with leading hyphen"),
            ("PUT", "/v1/services/web/instances/_x", GOOD, 400, "id", "bad id label in path"),
            ("GET", "/v1/nothing", None, 404, None, "unknown path"),
            ("DELETE", "/v1/services/web/instances/nope", None, 404, "id", "unknown instance"),
            ("PUT", "/v1/services/web/instances/nope/heartbeat", None, 404, "id",
             "heartbeat of unknown instance"),
        ]
        for method, path, body, status, field, what in bad:
            expect_error(d, method, path, body, status, field, what)
        doc, _ = expect_error(d, "PUT", WEB1, None, 400, "body", "invalid JSON",
                              raw=b'{"addresses": ["127.0.0.1"], "port": 80')
        expect_error(d, "PUT", WEB1, None, 400, "body", "JSON that is not an object",
                     raw=b'[1, 2]')

        _, hdr = expect_error(d, "POST", "/v1/services", None, 405, None, "POST /v1/services")
        contains(hdr.get("allow", ""), "GET", "Allow header of /v1/services")
        _, hdr = expect_error(d, "GET", WEB1, None, 405, None, "GET on an instance path")
        check("PUT" in hdr.get("allow", "") and "DELETE" in hdr.get("allow", ""),
              "Allow header of an instance path: %r" % hdr.get("allow"))
        _, hdr = expect_error(d, "DELETE", "/v1/health", None, 405, None, "DELETE /v1/health")
        contains(hdr.get("allow", ""), "GET", "Allow header of /v1/health")

        big = dict(GOOD, meta={"k%d" % i: "v" * 40 for i in range(20)})
        expect_error(d, "PUT", WEB1, big, 413, "body", "body over api_options.max_body")

        _, after, _ = d.api("GET", "/v1/services/web")
        _, svc_after, _ = d.api("GET", "/v1/services")
        eq(stable(after), stable(before), "rejected requests changed no instance")
        eq(svc_after, svc_before, "rejected requests changed no service")
        rd = d.dig("web.service.internal.", "A")
        eq(sorted(rd.rdata("A")), ["127.0.0.10", "127.0.0.11"], "DNS unchanged too")

        status, doc, _ = d.api("DELETE", WEB1)
        eq((status, doc), (200, {"service": "web", "id": "web-1", "deregistered": True}),
           "DELETE reply")
        expect_error(d, "DELETE", WEB1, None, 404, "id", "second DELETE")


def http_conn(d, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(d.sock)
    return s


def read_replies(s, n):
    """Read n complete HTTP replies (each with Content-Length) from s; returns the status
    codes, or raises socket.timeout when dnsd stalls."""
    buf, codes = b"", []
    while len(codes) < n:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            lines = head.split(b"\r\n")
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(rest) >= length:
                codes.append(int(lines[0].split()[1]))
                buf = rest[length:]
                continue
        data = s.recv(65536)
        if not data:
            raise CheckFailed("connection closed after %d of %d replies" % (len(codes), n))
        buf += data
    return codes


def put_request(path, body, chunked=False):
    if chunked:
        return (b"PUT %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % path,
                body)
    return (b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path, len(body)),
            body)


def test_http_layer():
    config = """
api_options = { max_body = %d; max_connections = 3; timeout_s = 2; };
""" % MAX_BODY
    with Dnsd(config=config) as d:
        body = b'{"addresses":["127.0.0.20"],"port":80}'

        s = http_conn(d)
        for i in range(3):
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            eq(read_replies(s, 1), [200], "keep-alive request %d" % i)
        pipelined = b"".join(b"".join(put_request(b"/v1/services/pipe/instances/i%d" % i,
                                                  body)) for i in range(4))
        s.sendall(pipelined + b"GET /v1/services/pipe HTTP/1.1\r\nHost: x\r\n\r\n")
        eq(read_replies(s, 5), [201, 201, 201, 201, 200], "pipelined requests all answered")
        s.close()

        s = http_conn(d)
        head, _ = put_request(b"/v1/services/slow/instances/i1", body)
        s.sendall(head)
        for i in range(0, len(body), 7):
            s.sendall(body[i:i + 7])
            time.sleep(0.02)
        eq(read_replies(s, 1), [201], "body sent in slow pieces")
        head, _ = put_request(b"/v1/services/chunk/instances/i1", b"", chunked=True)
        s.sendall(head)
        for i in range(0, len(body), 9):
            part = body[i:i + 9]
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            time.sleep(0.02)
        s.sendall(b"0\r\n\r\n")
        eq(read_replies(s, 1), [201], "chunked body in slow pieces")
        big = b'{"addresses":["127.0.0.20"],"port":80,"meta":{"k":"' + b"v" * MAX_BODY + b'"}}'
        head, _ = put_request(b"/v1/services/chunk/instances/i2", b"", chunked=True)
        s.sendall(head + b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 100]), big[i:i + 100])
                                  for i in range(0, len(big), 100)) + b"0\r\n\r\n")
        eq(read_replies(s, 1), [413], "chunked body over max_body")
        s.close()
        status, doc, _ = d.api("GET", "/v1/services/chunk")
        eq([i["id"] for i in doc["instances"]], ["i1"], "413 chunked body stored nothing")

        procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                   "--max-time", "10", "--unix-socket", d.sock, "-X", "PUT",
                                   "--data-binary", body.decode(),
                                   "http://x/v1/services/par/instances/i%d" % i],
                                  stdout=subprocess.PIPE, text=True) for i in range(50)]
        codes = [p.communicate(timeout=20)[0] for p in procs]
        eq(codes, ["201"] * 50, "50 parallel clients over a limit of 3 connections")

        # At max_connections the next client waits in the backlog and is served as soon as
        # a slot frees up (not only after the idle timeout or another event).
        held = [http_conn(d) for _ in range(3)]
        for c in held:
            c.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            eq(read_replies(c, 1), [200], "connection within max_connections")
        waiting = http_conn(d, timeout=1.5)
        waiting.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            waiting.recv(1)
            check(False, "a fourth connection was served beyond max_connections = 3")
        except socket.timeout:
            pass
        held.pop().close()
        t0 = time.monotonic()
        eq(read_replies(waiting, 1), [200], "queued client served once a slot is free")
        check(time.monotonic() - t0 < 1.0, "queued client served promptly, not after the "
              "idle timeout (%.2f s)" % (time.monotonic() - t0))
        waiting.close()

        # Idle connections are closed after api_options.timeout_s (2 s), and dnsd accepts
        # new ones afterwards.
        for c in held:
            c.settimeout(5)
            t0 = time.monotonic()
            eq(c.recv(1), b"", "idle connection closed by dnsd")
            check(time.monotonic() - t0 < 4, "idle timeout honoured")
            c.close()
        status, _, _ = d.api("GET", "/v1/health")
        eq(status, 200, "new connection accepted after the idle ones closed")


def test_socket_file():
    """The socket's missing parent directories are created, a stale socket file is
    replaced, and a live dnsd's socket is never taken over."""
    d = Dnsd(cli_api=False)
    d.sock = os.path.join(d.tmp, "run", "dnsd", "api.sock")
    d.extra = ["--api", "unix:" + d.sock]
    os.makedirs(os.path.dirname(d.sock))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(d.sock)  # bound, never listening: what a killed dnsd leaves behind
    stale.close()
    with d:
        eq(oct(stat.S_IMODE(os.stat(d.sock).st_mode)), oct(0o660), "replaced socket's mode")
        status, _, _ = d.api("GET", "/v1/health")
        eq(status, 200, "stale socket file replaced by a working one")

        rc, _, err = run_dnsd(["--listen", "127.0.0.1:%d" % free_port(), "--api",
                               "unix:" + d.sock])
        eq(rc, 1, "second dnsd on a live socket: exit status (stderr %r)" % err)
        contains(err, d.sock, "second dnsd names the socket")
        contains(err, "another process", "second dnsd says why")
        check(os.path.exists(d.sock), "live socket file left in place")
        status, _, _ = d.api("GET", "/v1/health")
        eq(status, 200, "first dnsd still serves its socket")

        rc, _, err = run_dnsd(["--listen", "127.0.0.1:%d" % d.port, "--api",
                               "unix:" + os.path.join(d.tmp, "other.sock")])
        eq(rc, 1, "DNS port in use: exit status (stderr %r)" % err)
        contains(err, "127.0.0.1:%d" % d.port, "DNS port in use: the address is named")
        check(not os.path.exists(os.path.join(d.tmp, "other.sock")),
              "failed start leaves no socket file")

        plain = os.path.join(d.tmp, "plain")
        with open(plain, "w") as f:
            f.write("keep me\n")
        rc, _, err = run_dnsd(["--listen", "127.0.0.1:%d" % free_port(), "--api",
                               "unix:" + plain])
        eq(rc, 1, "API path is a regular file: exit status (stderr %r)" % err)
        contains(err, "not a socket", "regular file at the API path: message")
        with open(plain) as f:
            eq(f.read(), "keep me\n", "regular file at the API path left alone")

    tmp_dir = os.path.join(d.tmp, "nested")
    for sub in ("a", "a/b"):
        check(not os.path.exists(os.path.join(tmp_dir, sub)), "no %s yet" % sub)
    d2 = Dnsd(cli_api=False)
    d2.sock = os.path.join(tmp_dir, "a", "b", "api.sock")
    d2.extra = ["--api", "unix:" + d2.sock]
    with d2:
        check(os.path.isdir(os.path.join(tmp_dir, "a", "b")), "parent directories created")
        status, _, _ = d2.api("GET", "/v1/health")
        eq(status, 200, "API served in a newly created directory")


def test_all():
    test()
    test_http_layer()
    test_socket_file()


main(test_all)
