# SPDX-License-Identifier: BSD-2-Clause
# Hostile traffic against a dnsd on loopback, in bounded bursts: random and truncated UDP
# packets; garbage, oversized and truncated DNS over TCP; half-open and slow TCP
# connections; oversized and malformed API requests and slow or surplus API connections on
# the Unix socket. Shared by the hostile system test (which asserts on what each burst
# returns) and tools/bench/soak.py (which counts). Standard library only; every wait is
# bounded; a seeded random.Random makes a run repeatable.

import json
import os
import socket
import struct
import time


class Target:
    """Where dnsd listens: DNS on 127.0.0.1:port (UDP and TCP), the API on the Unix socket
    sock."""

    def __init__(self, port, sock):
        self.port = port
        self.sock = sock


def rss_kib(pid):
    """VmRSS of pid, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def fd_count(pid):
    """Open file descriptors of pid."""
    return len(os.listdir("/proc/%d/fd" % pid))


def garbage(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def dns_header(qid, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def dns_query(rng, name="web.service.internal.", qtype=1):
    q = dns_header(rng.getrandbits(16), 0x0100)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", qtype, 1)


def read_closed(s, timeout):
    """True when the peer closes s (EOF or reset) within timeout; data read is dropped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(max(0.01, left))
        try:
            if not s.recv(65535):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True


def _drain(socks):
    for s in socks:
        while True:
            try:
                s.recv(65535)
            except OSError:
                break


# ---------------------------------------------------------------------------------------
# DNS


def udp_burst(t, rng, count):
    """count packets: random bytes, truncated queries, valid headers followed by garbage,
    and oversized garbage; sent without waiting, replies drained. Returns: packets sent."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    sent = 0
    try:
        for s in socks:
            s.setblocking(False)
        for i in range(count):
            kind = i % 4
            if kind == 0:
                pkt = garbage(rng, rng.randrange(0, 600))
            elif kind == 1:
                q = dns_query(rng)
                pkt = q[:rng.randrange(0, len(q))]
            elif kind == 2:
                pkt = dns_header(rng.getrandbits(16), rng.getrandbits(16), rng.randrange(3),
                                 rng.randrange(3), rng.randrange(3), rng.randrange(3))
                pkt += garbage(rng, rng.randrange(0, 300))
            else:
                pkt = garbage(rng, rng.randrange(1200, 4000))
            try:
                socks[i % len(socks)].sendto(pkt, ("127.0.0.1", t.port))
                sent += 1
            except BlockingIOError:
                time.sleep(0.001)
            if i % 64 == 0:
                _drain(socks)
        _drain(socks)
    finally:
        for s in socks:
            s.close()
    return sent


def tcp_garbage_burst(t, rng, count, wait_s):
    """count connections, in batches of 50, that send a garbage frame, a 65535-byte length
    with a short body, zero lengths, a query cut short, or a whole frame of garbage.
    Returns: how many dnsd had not closed wait_s after their batch was sent."""
    left_open = 0
    for first in range(0, count, 50):
        conns = []
        for i in range(first, min(count, first + 50)):
            s = socket.create_connection(("127.0.0.1", t.port), timeout=2)
            kind = i % 5
            if kind == 0:
                data = garbage(rng, rng.randrange(1, 300))
            elif kind == 1:
                data = struct.pack("!H", 65535) + garbage(rng, rng.randrange(100, 2000))
            elif kind == 2:
                data = struct.pack("!HH", 0, 0)
            elif kind == 3:
                q = dns_query(rng)
                data = struct.pack("!H", len(q)) + q[:rng.randrange(0, len(q))]
            else:
                g = garbage(rng, rng.randrange(12, 512))
                data = struct.pack("!H", len(g)) + g
            try:
                s.sendall(data)
            except OSError:
                pass
            conns.append(s)
        deadline = time.monotonic() + wait_s
        left_open += sum(1 for s in conns if not read_closed(s, deadline - time.monotonic()))
        for s in conns:
            s.close()
    return left_open


def tcp_slow_burst(t, rng, half_open, slow, wait_s, during=None):
    """half_open connections send one byte of the length prefix and stall; slow ones
    trickle a query a byte every 100 ms. during() (if given) runs once while all are held.
    Returns: (stalled connections dnsd had not closed within wait_s, trickled queries
    answered)."""
    stalled = []
    trickle = []
    try:
        for _ in range(half_open):
            s = socket.create_connection(("127.0.0.1", t.port), timeout=2)
            s.sendall(b"\x00")
            stalled.append(s)
        for _ in range(slow):
            q = dns_query(rng)
            trickle.append([socket.create_connection(("127.0.0.1", t.port), timeout=2),
                            struct.pack("!H", len(q)) + q, 0])
        t0 = time.monotonic()
        if during:
            during()
        while any(pos < len(data) for _, data, pos in trickle) and time.monotonic() - t0 < 10:
            for tr in trickle:
                if tr[2] < len(tr[1]):
                    try:
                        tr[0].sendall(tr[1][tr[2]:tr[2] + 1])
                    except OSError:
                        tr[2] = len(tr[1])
                    tr[2] += 1
            time.sleep(0.1)
        answered = 0
        for s, _, _ in trickle:
            s.settimeout(2)
            try:
                if len(s.recv(65535)) > 2:
                    answered += 1
            except OSError:
                pass
        deadline = t0 + wait_s
        left_open = sum(1 for s in stalled if not read_closed(s, deadline - time.monotonic()))
        return left_open, answered
    finally:
        for s in stalled + [tr[0] for tr in trickle]:
            s.close()


# ---------------------------------------------------------------------------------------
# Registration API


def api_conn(t, timeout=2):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(t.sock)
    return s


def api_exchange(t, data, timeout=3):
    """Send data, half-close, read until dnsd closes or goes quiet for timeout.
    Returns: the HTTP status, or None for no status line."""
    s = api_conn(t, timeout)
    reply = b""
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # dnsd may answer and close before reading everything
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except OSError:
        pass
    finally:
        s.close()
    if reply.startswith(b"HTTP/1.") and len(reply) >= 12 and reply[9:12].isdigit():
        return int(reply[9:12])
    return None


def _put(body, path=b"/v1/services/web/instances/evil"):
    return (b"PUT " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def api_malformed_burst(t, rng, rounds=1):
    """Oversized and malformed requests, each on its own connection. PUTs target the
    instance web/evil. Returns: {kind: [status or None, ...]}."""
    out = {}

    def note(kind, data):
        out.setdefault(kind, []).append(api_exchange(t, data))

    good = json.dumps({"addresses": ["127.0.0.10"], "port": 80}).encode()
    for _ in range(rounds):
        note("huge header", b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: " +
             b"a" * 200000 + b"\r\n\r\n")
        note("many headers", b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" +
             b"".join(b"X-%d: v\r\n" % i for i in range(20000)) + b"\r\n")
        note("huge body", _put(b'{"addresses":["127.0.0.10"],"port":80,"meta":{"k":"' +
                               b"x" * 300000 + b'"}}'))
        note("huge declared body", b"PUT /v1/services/web/instances/evil HTTP/1.1\r\n"
             b"Host: x\r\nContent-Length: 999999999999\r\n\r\n{")
        for _ in range(20):
            note("random body", _put(garbage(rng, rng.randrange(1, 2000))))
        for _ in range(10):
            note("truncated JSON", _put(good[:rng.randrange(1, len(good))]))
        note("deep JSON", _put(b"[" * 20000 + b"]" * 20000))
        note("wrong types", _put(b'{"addresses":7,"port":"x","tags":{}}'))
        for body in (b"ZZZ\r\nabc\r\n0\r\n\r\n", b"FFFFFFFF\r\n{}\r\n0\r\n\r\n", b"5\r\n{}\r\n",
                     b"-1\r\n{}\r\n0\r\n\r\n"):
            note("bad chunked", b"PUT /v1/services/web/instances/evil HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + body)
        for data in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"BREW /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", garbage(rng, 3000),
                     b"GET /v1/services/" + b"%" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
            note("garbage request", data)
    return out


def api_slow_burst(t, slow, surplus, limit_s):
    """slow connections trickle a request a byte every 200 ms; surplus more are opened and
    left idle (beyond api_options.max_connections when it is smaller). Everything is
    closed after limit_s. Returns: [seconds until dnsd cut each slow client, or None]."""
    req = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n"
    conns = [api_conn(t, timeout=0.05) for _ in range(slow)]
    idle = []
    try:
        for _ in range(surplus):
            try:
                idle.append(api_conn(t, timeout=0.5))
            except OSError:
                break  # the listen backlog is full: refused, which is fine
        t0 = time.monotonic()
        cut = [None] * slow
        pos = 0
        while pos < len(req) and time.monotonic() - t0 < limit_s:
            for j, s in enumerate(conns):
                if cut[j] is not None:
                    continue
                try:
                    s.sendall(req[pos:pos + 1])
                    if not s.recv(100):
                        cut[j] = time.monotonic() - t0
                except socket.timeout:
                    pass
                except OSError:
                    cut[j] = time.monotonic() - t0
            pos += 1
            if all(c is not None for c in cut):
                break
            time.sleep(0.2)
        return cut
    finally:
        for s in conns + idle:
            s.close()
