#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# limits: every registration resource limit exceeded on purpose. The registry's capacity
# (limits.max_instances -> 503, limits.max_instances_per_service -> 429, replacing always
# allowed, limits.max_meta_bytes -> 400 "meta"), the fixed per-instance limits at the API
# (32 tags, 64 meta keys, 255-byte TXT strings), oversized request headers
# (api_options.max_header: libmicrohttpd answers 431 or 414 and closes), and a slow client
# that trickles its request one byte a second (slowloris: cut off after
# api_options.timeout_s while other clients are served). After each, dnsd answers DNS and
# the API normally. The connection limit (api_options.max_connections) is covered by the
# api test.

import socket
import time

from dnsdtest import DOMAIN, check, eq, main, rrs, Dnsd

BASE = {"addresses": ["127.0.0.10"], "port": 80}


def path(service, iid):
    return "/v1/services/%s/instances/%s" % (service, iid)


def expect_error(d, method, p, body, status, field, text):
    got, doc, hdr = d.api(method, p, body)
    eq(got, status, "%s %s: status (body %r)" % (method, p, hdr["_body"]))
    check(isinstance(doc, dict) and text in doc.get("error", ""),
          "%s %s: error mentions %r (%r)" % (method, p, text, doc))
    if field is None:
        check("field" not in doc, "%s %s: no field (%r)" % (method, p, doc))
    else:
        eq(doc.get("field"), field, "%s %s: field" % (method, p))


def healthy(d, instances):
    status, doc, _ = d.api("GET", "/v1/health")
    eq(status, 200, "health after hitting a limit")
    eq(doc["instances"], instances, "instances counted in health")
    r = d.query("web." + DOMAIN, "A")
    eq(sorted(rrs(r, "A")), ["127.0.0.10", "127.0.0.11"], "DNS still answers web")


def test_registry_capacity():
    config = """
limits = { max_instances = 4; max_instances_per_service = 2; max_meta_bytes = 40; };
"""
    with Dnsd(config=config) as d:
        eq(d.api("PUT", path("web", "a"), BASE)[0], 201, "first web instance")
        eq(d.api("PUT", path("web", "b"), dict(BASE, addresses=["127.0.0.11"]))[0], 201,
           "second web instance")
        expect_error(d, "PUT", path("web", "c"), BASE, 429, None,
                     "service web is full: at most 2 instances per service")
        eq(d.api("GET", "/v1/services/web")[1]["instances"].__len__(), 2,
           "the refused instance was not stored")
        eq(d.api("PUT", path("web", "b"), dict(BASE, addresses=["127.0.0.11"], port=81))[0],
           200, "replacing in a full service")
        rc, out, err = d.regctl("register", "web", "c", "--addr", "127.0.0.12", "--port", "80")
        eq(rc, 1, "regctl: a full service is a refusal (stderr %r)" % err)
        check("at most 2 instances per service" in err + out, "regctl prints why: %r" % err)

        eq(d.api("PUT", path("db", "a"), BASE)[0], 201, "third instance")
        eq(d.api("PUT", path("db", "b"), BASE)[0], 201, "fourth instance")
        expect_error(d, "PUT", path("cache", "a"), BASE, 503, None,
                     "registry full: at most 4 instances")
        status, doc, _ = d.api("GET", "/v1/services")
        eq([s["name"] for s in doc["services"]], ["db", "web"], "no service for the refusal")
        healthy(d, 4)
        eq(d.api("DELETE", path("db", "b"))[0], 200, "deregister to make room")
        eq(d.api("PUT", path("cache", "a"), BASE)[0], 201, "room again after a deregistration")

        # Meta: 40 bytes of "key=value" in all pass, 41 do not.
        meta = {"k1": "x" * 15, "k2": "y" * 17}  # "k1=" + 15 + "k2=" + 17 = 38
        eq(d.api("PUT", path("cache", "a"), dict(BASE, meta=meta))[0], 200, "meta within")
        meta["k3"] = "z"  # + "k3=z" = 42
        expect_error(d, "PUT", path("cache", "a"), dict(BASE, meta=meta), 400, "meta",
                     "exceed 40 bytes in all")
        status, doc, _ = d.api("GET", "/v1/services/cache")
        eq(sorted(doc["instances"][0]["meta"]), ["k1", "k2"], "refused meta not stored")


def test_instance_limits():
    """The fixed limits of one instance, at the API, with the field at fault."""
    with Dnsd() as d:
        expect_error(d, "PUT", path("web", "a"),
                     dict(BASE, tags=["t%d" % i for i in range(33)]), 400, "tags",
                     "at most 32")
        eq(d.api("PUT", path("web", "a"), dict(BASE, tags=["t%d" % i for i in range(32)]))[0],
           201, "32 tags")
        expect_error(d, "PUT", path("web", "b"),
                     dict(BASE, meta={"k%d" % i: "v" for i in range(65)}), 400, "meta",
                     "at most 64")
        eq(d.api("PUT", path("web", "b"), dict(BASE, meta={"k%d" % i: "v" for i in range(64)}))[0],
           201, "64 meta keys")
        expect_error(d, "PUT", path("web", "c"), dict(BASE, meta={"k": "v" * 254}), 400, "meta",
                     "longer than 255 bytes")
        eq(d.api("PUT", path("web", "c"), dict(BASE, meta={"k": "v" * 253}))[0], 201,
           "a 255-byte TXT string")
        r = d.query("c.web." + DOMAIN, "TXT", tcp=True)
        txt = rrs(r, "TXT")
        eq(len(txt), 1, "one TXT record")
        check(("k=" + "v" * 253) in txt[0], "the 255-byte string is served")


def http(d, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(d.sock)
    return s


def read_until_closed(s):
    """Everything s receives until dnsd closes it (a reset after the reply counts as a
    close)."""
    buf = b""
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        buf += data
    s.close()
    return buf


def test_header_size():
    with Dnsd(config="api_options = { max_header = 4096; };") as d:
        s = http(d)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 2000 +
                  b"\r\nConnection: close\r\n\r\n")
        reply = read_until_closed(s)
        check(reply.startswith(b"HTTP/1.1 200 "), "2000-byte header fits: %r" % reply[:40])

        # libmicrohttpd 0.9.75 answers by itself, with a short HTML body (not our JSON
        # shape, which it gives no hook for), and closes the connection.
        for what, req, status in (
                ("one long header", b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                 b"a" * 5000 + b"\r\n\r\n", b"431"),
                ("many headers", b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" +
                 b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n", b"431"),
                ("a long request line", b"GET /v1/" + b"a" * 6000 +
                 b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414")):
            s = http(d)
            try:
                s.sendall(req)
            except (BrokenPipeError, ConnectionResetError):
                pass  # dnsd may answer and close before it has read everything
            reply = read_until_closed(s)
            check(reply.startswith(b"HTTP/1.1 " + status + b" "),
                  "%s: %s (%r)" % (what, status.decode(), reply[:60]))
            check(b"\r\nConnection: close\r\n" in reply, "%s: Connection: close" % what)
        status, doc, _ = d.api("PUT", path("web", "a"), dict(BASE, meta={"k": "v" * 200}))
        eq(status, 201, "a normal request with a 400-byte body after the 431s")


def test_slowloris():
    config = "api_options = { timeout_s = 2; max_connections = 8; };"
    with Dnsd(config=config) as d:
        req = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30 + b"\r\n\r\n"
        slow = [http(d, timeout=0.05) for _ in range(3)]
        t0 = time.monotonic()
        closed_at = [None] * len(slow)
        served = []
        for i in range(len(req)):
            for j, s in enumerate(slow):
                if closed_at[j] is not None:
                    continue
                try:
                    s.sendall(req[i:i + 1])
                    data = s.recv(100)
                    check(not data, "slow client %d got a reply: %r" % (j, data))
                    closed_at[j] = time.monotonic() - t0
                except socket.timeout:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    closed_at[j] = time.monotonic() - t0
            if all(c is not None for c in closed_at) or time.monotonic() - t0 > 8:
                break
            if i == 1:
                # Meanwhile a normal client is served at once.
                t1 = time.monotonic()
                served.append(d.api("GET", "/v1/health")[0])
                check(time.monotonic() - t1 < 1, "normal client served promptly")
            time.sleep(1)
        eq(served, [200], "normal client served while slow clients hold connections")
        for j, c in enumerate(closed_at):
            check(c is not None, "slow client %d was never cut off" % j)
            check(1.5 <= c <= 4.5, "slow client %d cut off after about 2 s: %.2f s" % (j, c))
        for s in slow:
            s.close()

        # A slow body is cut off the same way: the whole request must arrive in time.
        s = http(d, timeout=0.05)
        body = b'{"addresses":["127.0.0.10"],"port":80}'
        s.sendall(b"PUT /v1/services/web/instances/slow HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        t0, cut = time.monotonic(), None
        for i in range(len(body)):
            try:
                s.sendall(body[i:i + 1])
                data = s.recv(100)
                check(not data, "slow body got a reply: %r" % data)
                cut = time.monotonic() - t0
                break
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                cut = time.monotonic() - t0
                break
            time.sleep(0.5)
        s.close()
        check(cut is not None and 1.5 <= cut <= 4.5, "slow body cut off after about 2 s: %r"
              % cut)
        eq(d.api("GET", "/v1/services/web")[1]["instances"], [], "the slow PUT stored nothing")

        # A client that is merely slow but finishes in time is served, several times on one
        # kept-alive connection (each request gets its own deadline).
        s = http(d, timeout=5)
        for n in range(3):
            for i in range(0, len(req), 20):
                s.sendall(req[i:i + 20])
                time.sleep(0.3)
            data = s.recv(65536)
            check(data.startswith(b"HTTP/1.1 200 "), "request %d within the deadline: %r"
                  % (n, data[:40]))
        s.close()


def test_all():
    test_registry_capacity()
    test_instance_limits()
    test_header_size()
    test_slowloris()


if __name__ == "__main__":
    main(test_all)
