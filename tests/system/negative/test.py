#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# negative: NXDOMAIN and NODATA with the SOA in authority (RFC 2308), REFUSED outside our
# zones, the apex SOA and its serial, NOTIMP for an unknown opcode, FORMERR for bad question
# counts, and garbage packets that must not stop the server from answering.

import random
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.rcode

from dnsdtest import (Dnsd, check, eq, header, main, question, reply_header, rrs, rrsets,
                      wire_name)

D = "service.internal."


def alive(d, what):
    r = d.query("web." + D, "A", timeout=2)
    eq(rrs(r, "A"), ["127.0.0.10"], "server answers after %s" % what)


def soa_of(d):
    r = d.query(D, "SOA")
    sets = rrsets(r, "SOA")
    eq(len(sets), 1, "one SOA RRset at the apex")
    return sets[0], r


def test():
    with Dnsd() as d:
        d.put_instance("web", "web-1", addresses=["127.0.0.10"], port=80)

        soa, r = soa_of(d)
        eq(dns.rcode.to_text(r.rcode()), "NOERROR", "apex SOA rcode")
        check(r.flags & dns.flags.AA, "apex SOA is authoritative")
        eq(soa.name.to_text(), D, "SOA owner")
        minimum = soa[0].minimum
        serial = soa[0].serial

        rd = d.dig("nosuch." + D, "A")
        eq(rd.rcode, "NXDOMAIN", "unknown service")
        check("aa" in rd.flags, "NXDOMAIN is authoritative")
        eq(rd.answer, [], "NXDOMAIN answer")
        soas = [x for x in rd.authority if x.type == "SOA"]
        eq(len(soas), 1, "SOA in NXDOMAIN authority (%r)" % rd.authority)
        eq(soas[0].name, D, "authority SOA owner")
        eq(soas[0].ttl, minimum, "negative TTL = SOA minimum")

        r = d.query("nosuch-1.web." + D, "A")
        eq(dns.rcode.to_text(r.rcode()), "NXDOMAIN", "unknown instance of a known service")

        for name, rtype, what in (("web." + D, "AAAA", "AAAA of an IPv4-only service"),
                                  ("web." + D, "TXT", "TXT at SERVICE"),
                                  ("web-1.web." + D, "AAAA", "AAAA of an IPv4 instance")):
            r = d.query(name, rtype)
            eq(dns.rcode.to_text(r.rcode()), "NOERROR", "NODATA rcode for " + what)
            eq(len(r.answer), 0, "NODATA empty answer for " + what)
            auth = rrsets(r, "SOA", "authority")
            eq(len(auth), 1, "NODATA SOA in authority for " + what)
            eq(auth[0].ttl, minimum, "NODATA negative TTL for " + what)
            check(r.flags & dns.flags.AA, "NODATA authoritative for " + what)

        rd = d.drill("example.com.", "A")
        eq(rd.rcode, "REFUSED", "name outside our zones")
        check("aa" not in rd.flags, "REFUSED is not authoritative")
        r = d.query("www.example.com.", "AAAA")
        eq(dns.rcode.to_text(r.rcode()), "REFUSED", "another name outside our zones")

        d.put_instance("api", "api-1", addresses=["127.0.0.11"], port=81)
        soa2, _ = soa_of(d)
        check(soa2[0].serial > serial, "SOA serial increases after a registration "
              "(%d -> %d)" % (serial, soa2[0].serial))

        # Unknown opcode (STATUS, 2): NOTIMP (RFC 1035 §4.1.1).
        q = dns.message.make_query("web." + D, "A")
        q.set_opcode(dns.opcode.STATUS)
        reply = d.udp_raw(q.to_wire(), timeout=2)
        check(reply is not None, "reply to opcode STATUS")
        m = dns.message.from_wire(reply)
        eq(m.id, q.id, "STATUS reply id")
        check(m.flags & dns.flags.QR, "STATUS reply has QR")
        eq(dns.rcode.to_text(m.rcode()), "NOTIMP", "opcode STATUS")
        eq(dns.opcode.to_text(m.opcode()), "STATUS", "opcode echoed")

        # QDCOUNT 0 and 2: FORMERR.
        for qd, body, what in ((0, b"", "QDCOUNT=0"),
                               (2, question("web." + D) + question("api." + D), "QDCOUNT=2")):
            pkt = header(0x4242 + qd, 0x0100, qd=qd) + body
            reply = d.udp_raw(pkt, timeout=2)
            check(reply is not None and len(reply) >= 12, "reply to %s" % what)
            qid, flags, _, an, _, _ = reply_header(reply)
            eq(qid, 0x4242 + qd, "%s reply id" % what)
            check(flags & 0x8000, "%s reply has QR" % what)
            eq(flags & 0xF, 1, "%s rcode FORMERR" % what)
            eq(an, 0, "%s reply has no answer" % what)
        alive(d, "bad question counts")

        # Garbage: a short header gets no reply; a broken question gets FORMERR or nothing.
        reply = d.udp_raw(b"\x12\x34\x01\x00\x00", timeout=0.5)
        eq(reply, None, "no reply to a 5-byte packet")
        alive(d, "truncated header")

        broken = {
            "truncated name": header(0x1111, 0x0100) + b"\x03web\x07serv",
            "name without type/class": header(0x1112, 0x0100) + wire_name("web." + D),
            "compression loop": header(0x1113, 0x0100) + b"\xc0\x0c" + struct.pack("!HH", 1, 1),
            "pointer past end": header(0x1114, 0x0100) + b"\xc0\xff" + struct.pack("!HH", 1, 1),
            "label too long": header(0x1115, 0x0100) + b"\x7f" + b"a" * 20,
            "answer count lies": header(0x1116, 0x0100, an=5) + question("web." + D),
        }
        for what, pkt in broken.items():
            reply = d.udp_raw(pkt, timeout=0.5)
            if reply is not None:
                check(len(reply) >= 12, "%s: reply has a header" % what)
                qid, flags, _, _, _, _ = reply_header(reply)
                eq(qid, struct.unpack("!H", pkt[:2])[0], "%s: reply id" % what)
                check(flags & 0x8000, "%s: reply has QR" % what)
                eq(flags & 0xF, 1, "%s: rcode FORMERR" % what)
            alive(d, what)

        rng = random.Random(20240101)
        for i in range(200):
            n = rng.randrange(0, 600)
            d.udp_raw(bytes(rng.randrange(256) for _ in range(n)), timeout=0.01)
        # A response packet (QR set) must never be answered (no reflection loops).
        resp_pkt = header(0x2222, 0x8400) + question("web." + D)
        eq(d.udp_raw(resp_pkt, timeout=0.5), None, "no reply to a packet with QR set")
        alive(d, "200 random packets")


main(test)
