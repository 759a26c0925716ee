# SPDX-License-Identifier: BSD-2-Clause
"""Pipelined HTTP/1.1 over AF_UNIX for bench.py: enough API requests per second from Python.

http.client sends one request and waits for its answer, so one Python process tops out at a
few thousand requests/s. Here a batch of requests is written in one send() and the answers,
which libmicrohttpd gives in request order, are read back and counted. Several sockets per
process keep dnsd busy while Python parses; several processes (see run_workers) add CPU.
Only answers with Content-Length are understood (dnsd's API always sends one).
"""

import re
import socket
import time

_CLEN = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)


def request(method, url, body=b""):
    """One HTTP/1.1 request as bytes (keep-alive; Content-Length always present)."""
    if isinstance(body, str):
        body = body.encode()
    head = "%s %s HTTP/1.1\r\nHost: dnsd\r\nContent-Length: %d\r\n" % (method, url, len(body))
    if body:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + body


class PipeConn:
    """One AF_UNIX connection; send a batch of requests, then read exactly that many answers."""

    def __init__(self, path, timeout=10.0):
        self.path, self.timeout = path, timeout
        self.sock = None
        self.buf = bytearray()
        self.connect()

    def connect(self):
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s
        self.buf = bytearray()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, blob):
        self.sock.sendall(blob)

    def read(self, count, want_bodies=False):
        """Reads `count` answers. Returns (statuses, bodies or None). Raises OSError when the
        connection drops or times out before all of them arrived."""
        statuses, bodies = [], ([] if want_bodies else None)
        buf = self.buf
        pos = 0
        while len(statuses) < count:
            end = buf.find(b"\r\n\r\n", pos)
            if end >= 0:
                m = _CLEN.search(buf, pos, end + 2)
                if m is None:
                    raise OSError("answer without Content-Length: %r" % bytes(buf[pos:end])[:200])
                stop = end + 4 + int(m.group(1))
                if len(buf) >= stop:
                    statuses.append(int(buf[pos + 9:pos + 12]))
                    if want_bodies:
                        bodies.append(bytes(buf[end + 4:stop]))
                    pos = stop
                    continue
            if pos:
                del buf[:pos]
                pos = 0
            data = self.sock.recv(1 << 18)
            if not data:
                raise OSError("connection closed by dnsd after %d of %d answers"
                              % (len(statuses), count))
            buf += data
        del buf[:pos]
        return statuses, bodies


def batches(reqs, size):
    """[(blob, count)]: the requests joined `size` at a time (one send() each)."""
    return [(b"".join(reqs[k:k + size]), len(reqs[k:k + size]))
            for k in range(0, len(reqs), size)]


def paced_loop(api_path, blobs, ok_codes, sockets, rate, cycle, stop_evt, deadline, counters,
               slot):
    """Sends the batches in `blobs` over `sockets` connections: every round writes one batch
    on each socket (as far as they are due), then reads all their answers. With rate > 0
    (requests/s) request n is not sent before t0 + n/rate (a late sender catches up without
    sleeping); with cycle the list
    is repeated until stop_evt is set or the deadline (monotonic) passes. counters (a shared
    array, 3 slots per worker at `slot`) gets ok, failed and rounds as they happen.
    Returns (ok, failed, seconds, first_error, round_trip_ms list)."""
    conns = [PipeConn(api_path) for _ in range(sockets)]
    ok = bad = sent = rounds = 0
    first_err = None
    rtts = []
    t0 = time.monotonic()
    i = ci = 0
    try:
        while True:
            now = time.monotonic()
            if now >= deadline or (stop_evt is not None and stop_evt.is_set()):
                break
            if not cycle and i >= len(blobs):
                break
            if rate > 0:
                due = t0 + sent / rate
                if due > now:
                    time.sleep(min(due - now, 0.2))
                    continue
            inflight = []
            for _ in range(len(conns)):
                if not cycle and i >= len(blobs):
                    break
                if inflight and rate > 0 and t0 + sent / rate > time.monotonic():
                    break  # the next batch is not due yet: read what is out first
                # round-robin, so that no connection sits idle into dnsd's API timeout
                c = conns[ci % len(conns)]
                ci += 1
                blob, n = blobs[i % len(blobs)]
                i += 1
                try:
                    try:
                        c.send(blob)
                    except OSError:  # closed while idle: reconnect and send once more
                        c.connect()
                        c.send(blob)
                    inflight.append((c, n))
                except OSError as e:
                    bad += n
                    first_err = first_err or "send: %s" % e
                    c.connect()
                sent += n
            r0 = time.monotonic()
            for c, n in inflight:
                try:
                    statuses, bodies = c.read(n, want_bodies=first_err is None)
                except OSError as e:
                    bad += n
                    first_err = first_err or "read: %s" % e
                    c.connect()
                    continue
                for k, st in enumerate(statuses):
                    if st in ok_codes:
                        ok += 1
                    else:
                        bad += 1
                        if first_err is None:
                            first_err = "HTTP %d %s" % (st, bodies[k][:300].decode(errors="replace"))
            rtts.append((time.monotonic() - r0) * 1e3)
            rounds += 1
            if counters is not None:
                counters[slot * 3] = ok
                counters[slot * 3 + 1] = bad
                counters[slot * 3 + 2] = rounds
    finally:
        for c in conns:
            c.close()
    return ok, bad, time.monotonic() - t0, first_err, rtts


def fetch_all(api_path, urls, batch=50, sockets=4, timeout_s=120.0):
    """GETs every url (pipelined); returns a list of (status, body bytes) in url order."""
    conns = [PipeConn(api_path, timeout=30.0) for _ in range(sockets)]
    out = []
    deadline = time.monotonic() + timeout_s
    try:
        i = 0
        while i < len(urls):
            if time.monotonic() > deadline:
                raise OSError("fetch_all: gave up after %.0f s (%d of %d)"
                              % (timeout_s, i, len(urls)))
            inflight = []
            for c in conns:
                part = urls[i:i + batch]
                if not part:
                    break
                i += len(part)
                c.send(b"".join(request("GET", u) for u in part))
                inflight.append((c, len(part)))
            for c, n in inflight:
                st, bodies = c.read(n, want_bodies=True)
                out.extend(zip(st, bodies))
    finally:
        for c in conns:
            c.close()
    return out
