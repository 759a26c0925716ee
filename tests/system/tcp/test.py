#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# tcp: a 60-instance SRV answer is truncated over UDP and complete over TCP (RFC 7766);
# pipelined queries on one connection are all answered; an idle connection is closed after
# dns.tcp_idle_timeout_ms.

import socket
import time

import dns.flags
import dns.message
import dns.rcode

from dnsdtest import (Dnsd, check, eq, main, rrs, tcp_read_message, tcp_send_query)

D = "service.internal."
N = 60
CONFIG = """
dns = {
    tcp_idle_timeout_ms = 500;
};
"""


def test():
    with Dnsd(config=CONFIG) as d:
        for i in range(N):
            d.put_instance("many", "m-%02d" % i, addresses=["10.2.0.%d" % (i + 1)],
                           port=1000 + i)

        r = d.query("_many._tcp." + D, "SRV", payload=1232)
        check(r.flags & dns.flags.TC, "UDP SRV with 60 instances has TC=1")
        rd = d.dig("_many._tcp." + D, "SRV", "+ignore")
        check("tc" in rd.flags, "dig +ignore sees TC (flags %s)" % rd.flags)

        r = d.query("_many._tcp." + D, "SRV", tcp=True)
        check(not r.flags & dns.flags.TC, "no TC over TCP")
        srv = rrs(r, "SRV")
        eq(len(srv), N, "all 60 SRV records over TCP")
        eq(sorted(int(x.split()[2]) for x in srv), list(range(1000, 1000 + N)),
           "SRV ports over TCP")
        rd = d.dig("_many._tcp." + D, "SRV", "+tcp")
        eq(len(rd.rdata("SRV")), N, "dig +tcp gets 60 SRV")
        rd = d.drill("_many._tcp." + D, "SRV", "-t")
        eq(len(rd.rdata("SRV")), N, "drill -t gets 60 SRV")

        # Three pipelined queries written at once on one connection.
        qs = [dns.message.make_query("_many._tcp." + D, "SRV"),
              dns.message.make_query("many." + D, "A"),
              dns.message.make_query("nosuch." + D, "A")]
        ids = [0x1001, 0x1002, 0x1003]
        for q, i in zip(qs, ids):
            q.id = i
        s = d.tcp_connect()
        try:
            blob = b""
            for q in qs:
                w = q.to_wire()
                blob += len(w).to_bytes(2, "big") + w
            s.sendall(blob)
            got = {}
            for _ in qs:
                m = dns.message.from_wire(tcp_read_message(s))
                got[m.id] = m
        finally:
            s.close()
        eq(sorted(got), ids, "three pipelined answers, matched by ID")
        eq(len(rrs(got[0x1001], "SRV")), N, "pipelined SRV answer")
        eq(len(rrs(got[0x1002], "A")), N, "pipelined A answer")
        eq(dns.rcode.to_text(got[0x1003].rcode()), "NXDOMAIN", "pipelined NXDOMAIN answer")

        # A connection that is used and then goes idle is also closed.
        s = d.tcp_connect()
        try:
            tcp_send_query(s, dns.message.make_query("many." + D, "A").to_wire())
            m = dns.message.from_wire(tcp_read_message(s))
            eq(len(rrs(m, "A")), N, "answer before going idle")
            t0 = time.monotonic()
            s.settimeout(5)
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                data = None
            elapsed = time.monotonic() - t0
        finally:
            s.close()
        eq(data, b"", "server closes a used connection once idle")
        check(0.3 <= elapsed <= 3.0, "closed after about 500 ms idle (%.2f s)" % elapsed)

        # A connection that never sends anything is closed after the idle timeout.
        s = d.tcp_connect()
        t0 = time.monotonic()
        try:
            s.settimeout(5)
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                data = None
            elapsed = time.monotonic() - t0
        finally:
            s.close()
        eq(data, b"", "server closes a silent connection")
        check(0.3 <= elapsed <= 3.0, "silent connection closed after about 500 ms (%.2f s)"
              % elapsed)

        r = d.query("many." + D, "A", tcp=True)
        eq(len(rrs(r, "A")), N, "new TCP connection still served")


main(test)
