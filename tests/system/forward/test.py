#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# forward: names outside every zone go to the configured forwarders. A fake upstream (UDP and
# TCP on one loopback port) answers example.com A 192.0.2.1 TTL 1234; dig through dnsd gets
# it with the TTL and RCODE passed through and no AA of dnsd's own; service names are still
# answered by dnsd itself. An upstream TC makes dnsd ask again over TCP; an upstream answer
# larger than the client's UDP size becomes TC. A silent forwarder fails over to a good one
# within the timeout; when every forwarder is dead the client gets SERVFAIL. Clients outside
# forward.allow get REFUSED; without forwarders everything outside the zones is REFUSED.

import socket
import socketserver
import struct
import threading
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from dnsdtest import HAVE_IPV6, CheckFailed, Dnsd, check, eq, main, rrs

D = "service.internal."
BIG = 100  # A records in many.example.com: larger than 1232 bytes


class Upstream:
    """A fake recursive server on 127.0.0.1 (UDP and TCP on the same port)."""

    def __init__(self):
        self.seen = []  # (transport, qname) in arrival order
        self.lock = threading.Lock()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self.stopped = False
        for target in (self.serve_udp, self.serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    def answer(self, wire, transport):
        q = dns.message.from_wire(wire)
        name = q.question[0].name.to_text().lower()
        with self.lock:
            self.seen.append((transport, name))
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        if name == "example.com.":
            r.answer.append(dns.rrset.from_text(name, 1234, "IN", "A", "192.0.2.1"))
        elif name == "tc.example.com.":
            if transport == "udp":
                r.flags |= dns.flags.TC
            else:
                r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.11",
                                                    "192.0.2.12", "192.0.2.13"))
        elif name == "many.example.com.":
            r.answer.append(dns.rrset.from_text(
                name, 60, "IN", "A", *["198.51.100.%d" % i for i in range(1, BIG + 1)]))
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
        return r.to_wire(max_size=65535)

    def serve_udp(self):
        while not self.stopped:
            try:
                data, addr = self.udp.recvfrom(65535)
                self.udp.sendto(self.answer(data, "udp"), addr)
            except OSError:
                return

    def serve_tcp(self):
        while not self.stopped:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    n = struct.unpack("!H", recv_all(conn, 2))[0]
                    out = self.answer(recv_all(conn, n), "tcp")
                    conn.sendall(struct.pack("!H", len(out)) + out)
                except (OSError, ValueError):
                    pass

    def count(self, transport, name):
        with self.lock:
            return self.seen.count((transport, name))

    def close(self):
        self.stopped = True
        self.udp.close()
        self.tcp.close()


def recv_all(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ValueError("short read")
        buf += chunk
    return buf


def silent_port():
    """A UDP socket that receives and never answers (a black hole); kept open by the caller."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def dead_port():
    """A port nobody listens on (UDP and TCP closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def config(forwarders, forward=""):
    return "forwarders = [%s];\n%s\n" % (", ".join('"%s"' % f for f in forwarders), forward)


def passthrough(up):
    with Dnsd(config=config(["127.0.0.1:%d" % up.port])) as d:
        d.put_instance("web", "web-1", addresses=["10.0.0.1"], port=80)
        r = d.dig("example.com", "A")
        eq(r.rcode, "NOERROR", "forwarded status")
        eq(r.rdata("A"), ["192.0.2.1"], "forwarded address")
        eq([rr.ttl for rr in r.answer], [1234], "upstream TTL passed through")
        check("aa" not in r.flags, "no AA of dnsd's own on a forwarded answer (%s)" % r.flags)
        check("ra" in r.flags, "upstream RA passed through (%s)" % r.flags)
        eq(up.count("udp", "example.com."), 1, "one UDP query upstream")

        m = d.query("example.com.", "A", tcp=True)
        eq(rrs(m, "A"), ["192.0.2.1"], "forwarded over a TCP client connection")
        eq(m.rcode(), dns.rcode.NOERROR, "TCP client rcode")

        r = d.dig("nosuch.example.com", "A")
        eq(r.rcode, "NXDOMAIN", "upstream NXDOMAIN passed through")

        r = d.dig("web." + D, "A")
        eq(r.rdata("A"), ["10.0.0.1"], "service names still answered by dnsd")
        check("aa" in r.flags, "dnsd's own answer is authoritative")
        eq(up.count("udp", "web." + D), 0, "service names never forwarded")

        # TC over UDP from the upstream: dnsd asks again over TCP and returns everything.
        r = d.dig("tc.example.com", "A", "+ignore")
        eq(sorted(r.rdata("A")), ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
           "full answer after the TCP retry")
        check("tc" not in r.flags, "no TC after the TCP retry")
        eq(up.count("tcp", "tc.example.com."), 1, "dnsd retried over TCP")

        # An upstream answer larger than the client's UDP size: TC with the question only.
        m = d.query("many.example.com.", "A", payload=4096)
        check(m.flags & dns.flags.TC, "oversized forwarded answer has TC")
        eq(len(m.answer), 0, "TC answer carries no records")
        eq(m.question[0].name.to_text(), "many.example.com.", "TC answer keeps the question")
        m = d.query("many.example.com.", "A", tcp=True)
        eq(len(rrs(m, "A")), BIG, "the whole answer over TCP")


def failover(up):
    hole = silent_port()
    try:
        fw = ["127.0.0.1:%d" % hole.getsockname()[1], "127.0.0.1:%d" % up.port]
        with Dnsd(config=config(fw, "forward = { timeout_ms = 400; retries = 0; };")) as d:
            start = time.monotonic()
            m = d.query("example.com.", "A", timeout=3)
            took = time.monotonic() - start
            eq(rrs(m, "A"), ["192.0.2.1"], "answered by the second forwarder")
            check(0.35 <= took < 1.5, "failover after one timeout (took %.2f s)" % took)
            hole.settimeout(1)
            check(len(hole.recv(512)) > 12, "the silent forwarder was asked first")
    finally:
        hole.close()


def all_dead():
    hole = silent_port()
    try:
        fw = ["127.0.0.1:%d" % hole.getsockname()[1], "127.0.0.1:%d" % dead_port()]
        cfg = config(fw, 'forward = { strategy = "random"; timeout_ms = 200; retries = 1; };')
        with Dnsd(config=cfg) as d:
            start = time.monotonic()
            m = d.query("example.com.", "A", timeout=3)
            took = time.monotonic() - start
            eq(m.rcode(), dns.rcode.SERVFAIL, "SERVFAIL when every forwarder failed")
            eq(m.question[0].name.to_text(), "example.com.", "SERVFAIL keeps the question")
            check(0.7 <= took < 2.0, "four tries of 200 ms (took %.2f s)" % took)
            r = d.dig("example.com", "A", "+tcp")
            eq(r.rcode, "SERVFAIL", "SERVFAIL to a TCP client too")
    finally:
        hole.close()


def allow_list(up):
    cfg = config(["127.0.0.1:%d" % up.port], 'forward = { allow = ["::1/128"]; };')
    with Dnsd(config=cfg) as d:
        r = d.dig("example.com", "A")
        eq(r.rcode, "REFUSED", "127.0.0.1 is outside forward.allow")
        r = d.dig("example.com", "A", "+tcp")
        eq(r.rcode, "REFUSED", "127.0.0.1 over TCP is outside forward.allow")
        if HAVE_IPV6:
            r = d.dig("example.com", "A", addr="::1")
            eq(r.rcode, "NOERROR", "::1 may forward")
            eq(r.rdata("A"), ["192.0.2.1"], "::1 gets the forwarded answer")
            r = d.dig("example.com", "A", "+tcp", addr="::1")
            eq(r.rdata("A"), ["192.0.2.1"], "::1 over TCP gets the forwarded answer")
        else:
            print("note: no IPv6 loopback, the ::1 half skipped")


def no_forwarders(up):
    with Dnsd() as d:
        r = d.dig("example.com", "A")
        eq(r.rcode, "REFUSED", "no forwarders: REFUSED as before")
        check("aa" not in r.flags, "REFUSED without AA")
    with Dnsd(config="forwarders = [];\n") as d:
        eq(d.dig("example.com", "A").rcode, "REFUSED", "empty forwarders: REFUSED")
    eq(up.count("udp", "example.com."), 0, "nothing reached the upstream")


def bad_config():
    with Dnsd(config=config(["dns.example:53"])) as d:
        raise CheckFailed("dnsd started with a host name as forwarder: %s" % d.argv)


def test():
    up = Upstream()
    try:
        no_forwarders(up)
        passthrough(up)
        failover(up)
        all_dead()
        allow_list(up)
        try:
            bad_config()
        except CheckFailed as e:
            check("forwarders[0]" in str(e), "a bad forwarder is named on start-up: %s" % e)
    finally:
        up.close()


if __name__ == "__main__":
    main(test)
