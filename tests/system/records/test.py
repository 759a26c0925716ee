#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# records: SRV priority/weight/port as registered, a udp service under _udp only, the
# default TTL of 5 s, answer order rotating between queries, and the question's case echoed
# byte for byte (RFC 1035 §7.3 / the 0x20 trick relies on it).

import dns.message
import dns.rcode

from dnsdtest import Dnsd, check, eq, main, rrs, rrsets

D = "service.internal."


def test():
    with Dnsd() as d:
        d.put_instance("sip", "sip-1", addresses=["127.0.0.40"], port=5060, proto="udp",
                       priority=10, weight=20)
        d.put_instance("sip", "sip-2", addresses=["127.0.0.41"], port=5061, proto="udp",
                       priority=30, weight=40)
        d.put_instance("db", "db-1", addresses=["127.0.0.50"], port=5432, priority=7,
                       weight=9)

        r = d.query("_sip._udp." + D, "SRV")
        eq(dns.rcode.to_text(r.rcode()), "NOERROR", "_sip._udp SRV rcode")
        got = sorted(rrs(r, "SRV"))
        eq(got, ["10 20 5060 sip-1.sip." + D, "30 40 5061 sip-2.sip." + D],
           "udp SRV priority weight port target")

        rd = d.dig("_sip._tcp." + D, "SRV")
        eq(rd.rcode, "NXDOMAIN", "udp-only service has no _tcp SRV name")
        eq(rd.answer, [], "no SRV at _sip._tcp")

        r = d.query("_db._tcp." + D, "SRV")
        eq(rrs(r, "SRV"), ["7 9 5432 db-1.db." + D], "tcp SRV priority weight port target")
        rd = d.drill("_db._udp." + D, "SRV")
        eq(rd.rcode, "NXDOMAIN", "tcp-only service has no _udp SRV name")

        # Default dns.ttl is 5 s (the lease is the default 30 s).
        for name, rtype in (("db." + D, "A"), ("_db._tcp." + D, "SRV"),
                            ("db-1.db." + D, "TXT"), ("db-1.db." + D, "A")):
            r = d.query(name, rtype)
            sets = rrsets(r, rtype)
            eq(len(sets), 1, "one %s RRset for %s" % (rtype, name))
            eq(sets[0].ttl, 5, "TTL of %s %s" % (name, rtype))
        rd = d.dig("db." + D, "A")
        eq([x.ttl for x in rd.answer], [5], "dig sees TTL 5")

        # Answer order rotates between repeated queries.
        for i in range(4):
            d.put_instance("rr", "rr-%d" % i, addresses=["127.0.1.%d" % (i + 1)], port=80)
        orders = set()
        for _ in range(8):
            r = d.query("rr." + D, "A")
            order = tuple(rd.address for rs in rrsets(r, "A") for rd in rs)
            eq(sorted(order), ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"],
               "rr A answer set")
            orders.add(order)
        check(len(orders) > 1, "answer order rotates over 8 queries (saw only %r)" % orders)
        srv_orders = set()
        for _ in range(8):
            r = d.query("_rr._tcp." + D, "SRV")
            srv_orders.add(tuple(rd.target.to_text() for rs in rrsets(r, "SRV") for rd in rs))
        check(len(srv_orders) > 1, "SRV order rotates over 8 queries (saw %r)" % srv_orders)

        # Case echo: the reply's question keeps the query's exact bytes.
        q = dns.message.make_query("WeB.SeRvIcE.InTeRnAl.", "A")
        d.put_instance("web", "web-1", addresses=["127.0.0.10"], port=80)
        wire = q.to_wire()
        reply = d.udp_raw(wire, timeout=2)
        check(reply is not None, "reply to mixed-case query")
        qname_wire = wire[12:]  # question: name + type + class
        eq(reply[:2], wire[:2], "reply id")
        eq(reply[12:12 + len(qname_wire)], qname_wire, "question section echoed byte for byte")
        m = dns.message.from_wire(reply)
        eq(dns.rcode.to_text(m.rcode()), "NOERROR", "mixed-case query rcode")
        eq(rrs(m, "A"), ["127.0.0.10"], "mixed-case query answered")
        eq(m.question[0].name.to_text(), "WeB.SeRvIcE.InTeRnAl.", "question name text")


main(test)
