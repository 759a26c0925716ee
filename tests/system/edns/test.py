#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# edns: the OPT record (RFC 6891): echoed with our payload size 1232, a client's larger
# size clamped to it, BADVERS for an unknown EDNS version, and a plain 512-byte UDP reply
# truncated (TC) when the answer does not fit. A burst of UDP queries, read by dnsd in
# recvmmsg batches, mixing EDNS and plain queries: each is answered on its own terms.

import socket
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode

from dnsdtest import Dnsd, check, eq, main, rrs

D = "service.internal."
N_BIG = 40


def test():
    with Dnsd() as d:
        d.put_instance("web", "web-1", addresses=["127.0.0.10"], port=80)

        r = d.query("web." + D, "A", payload=1232)
        eq(r.edns, 0, "OPT present in reply to an EDNS query (version 0)")
        eq(r.payload, 1232, "our OPT payload size")
        eq(rrs(r, "A"), ["127.0.0.10"], "EDNS query answered")

        r = d.query("web." + D, "A", payload=4096)
        eq(r.edns, 0, "OPT present for payload 4096")
        eq(r.payload, 1232, "client payload 4096: our OPT still says 1232")

        r = d.query("web." + D, "A", payload=512)
        eq(r.edns, 0, "OPT present for payload 512")

        r = d.query("web." + D, "A", use_edns=False)
        eq(r.edns, -1, "no OPT in reply to a query without EDNS")
        eq(rrs(r, "A"), ["127.0.0.10"], "plain query answered")

        rd = d.dig("web." + D, "A", "+bufsize=4096")
        check("udp: 1232" in rd.text, "dig sees our OPT with udp 1232:\n%s" % rd.text)
        rd = d.kdig("web." + D, "A", "+edns=0", "+bufsize=1232")
        check("UDP size: 1232" in rd.text,
              "kdig sees OPT udp 1232:\n%s" % rd.text)

        # EDNS version 1: BADVERS with an OPT of version 0 (RFC 6891 §6.1.3).
        q = dns.message.make_query("web." + D, "A")
        q.use_edns(1, payload=1232)  # make_query(use_edns=1) would mean True, i.e. version 0
        eq(q.to_wire()[-5], 1, "the query carries EDNS version 1 (OPT TTL byte 2)")
        reply = d.udp_raw(q.to_wire(), timeout=2)
        check(reply is not None, "reply to EDNS version 1")
        m = dns.message.from_wire(reply)
        eq(m.id, q.id, "BADVERS reply id")
        eq(dns.rcode.to_text(m.rcode()), "BADVERS", "EDNS version 1 rcode")
        eq(m.edns, 0, "BADVERS reply carries OPT version 0")
        eq(len(m.answer), 0, "BADVERS reply has no answer")
        rd = d.dig("web." + D, "A", "+edns=1", "+noednsnegotiation")
        eq(rd.rcode, "BADVERS", "dig +edns=1 gets BADVERS")
        check("; EDNS: version: 0" in rd.text, "dig sees OPT version 0:\n%s" % rd.text)

        # Without EDNS the reply is limited to 512 bytes: TC with many instances.
        for i in range(N_BIG):
            d.put_instance("big", "big-instance-%02d" % i,
                           addresses=["10.1.%d.%d" % (i // 200, i % 200 + 1)], port=80)
        q = dns.message.make_query("big." + D, "A", use_edns=False)
        reply = d.udp_raw(q.to_wire(), timeout=2)
        check(reply is not None, "reply to big query without EDNS")
        check(len(reply) <= 512, "reply without EDNS is at most 512 bytes (%d)" % len(reply))
        m = dns.message.from_wire(reply)
        check(m.flags & dns.flags.TC, "TC set when the answer does not fit 512 bytes")
        eq(dns.rcode.to_text(m.rcode()), "NOERROR", "truncated reply rcode")

        rd = d.dig("big." + D, "A", "+noedns", "+ignore")
        check("tc" in rd.flags, "dig +noedns sees TC (flags %s)" % rd.flags)

        r = d.query("big." + D, "A", payload=1232)
        check(not r.flags & dns.flags.TC, "40 A records fit in 1232 bytes")
        eq(len(rrs(r, "A")), N_BIG, "all A records with EDNS 1232")

        r = d.query("big." + D, "A", use_edns=False, tcp=True)
        check(not r.flags & dns.flags.TC, "no TC over TCP")
        eq(len(rrs(r, "A")), N_BIG, "all A records over TCP")

        udp_burst_is_answered_query_by_query(d)


def udp_burst_is_answered_query_by_query(d):
    """Queries sent back to back reach dnsd in batches (recvmmsg, several datagrams per
    read); every one must get its own answer: its ID, its EDNS or not, its truncation."""
    count = 150
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect(("127.0.0.1", d.port))
        for i in range(count):
            if i % 2:
                q = dns.message.make_query("web." + D, "A", use_edns=0, payload=1232)
            else:
                q = dns.message.make_query("big." + D, "A", use_edns=False)
            q.id = 0x4000 + i
            s.send(q.to_wire())
        got = {}
        s.settimeout(0.5)
        deadline = time.monotonic() + 5
        while len(got) < count and time.monotonic() < deadline:
            try:
                m = dns.message.from_wire(s.recv(65536))
            except socket.timeout:
                continue
            got[m.id - 0x4000] = m
    finally:
        s.close()
    eq(sorted(got), list(range(count)), "every query of the burst answered once")
    eq([i for i, m in got.items() if (m.edns == 0) != bool(i % 2)], [],
       "OPT in exactly the replies to EDNS queries")
    eq([i for i, m in got.items() if bool(m.flags & dns.flags.TC) == bool(i % 2)], [],
       "TC in exactly the replies to the big plain queries")
    eq(sorted({rrs(m, "A")[0] for i, m in got.items() if i % 2}), ["127.0.0.10"],
       "EDNS replies carry the web answer")


main(test)
