#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# basic: register two instances with regctl and find them with dig, drill and kdig (A,
# AAAA, SRV with glue, TXT, tag filters); deregister; register through curl and see the
# instance in DNS as soon as the API replied.

from dnsdtest import HAVE_IPV6, Dnsd, check, contains, eq, main, rrs

D = "service.internal."


def test():
    with Dnsd() as d:
        d.must_regctl("register", "web", "web-1", "--addr", "127.0.0.10", "--port", "8080",
                      "--tag", "primary", "--meta", "version=1.4")
        d.must_regctl("register", "web", "web-2", "--addr", "2001:db8::20", "--addr",
                      "127.0.0.11", "--port", "8081")

        r = d.dig("web." + D, "A")
        eq(r.rcode, "NOERROR", "dig web A rcode")
        check("aa" in r.flags, "dig web A: AA set (flags %s)" % r.flags)
        eq(sorted(r.rdata("A")), ["127.0.0.10", "127.0.0.11"], "dig web A addresses")
        check(all(rec.name == "web." + D for rec in r.answer), "A owner is web.%s" % D)

        if HAVE_IPV6:
            r = d.dig("web." + D, "A", addr="::1")
            eq(sorted(r.rdata("A")), ["127.0.0.10", "127.0.0.11"], "dig @::1 web A")
            m = d.query("web." + D, "AAAA", tcp=True, addr="::1")
            eq(rrs(m, "AAAA"), ["2001:db8::20"], "AAAA over TCP to ::1")

        r = d.drill("web." + D, "AAAA")
        eq(r.rcode, "NOERROR", "drill web AAAA rcode")
        check("aa" in r.flags, "drill web AAAA: AA set")
        eq(r.rdata("AAAA"), ["2001:db8::20"], "drill web AAAA")

        r = d.dig("_web._tcp." + D, "SRV")
        eq(r.rcode, "NOERROR", "SRV rcode")
        check("aa" in r.flags, "SRV: AA set")
        srv = sorted(x.split() for x in r.rdata("SRV"))
        eq(len(srv), 2, "two SRV records (%r)" % r.answer)
        eq([s[3] for s in srv], ["web-1.web." + D, "web-2.web." + D], "SRV targets")
        eq(sorted(int(s[2]) for s in srv), [8080, 8081], "SRV ports")
        glue = sorted((x.name, x.type, x.rdata) for x in r.additional
                      if x.type in ("A", "AAAA"))
        eq(glue, [("web-1.web." + D, "A", "127.0.0.10"),
                  ("web-2.web." + D, "A", "127.0.0.11"),
                  ("web-2.web." + D, "AAAA", "2001:db8::20")], "SRV glue in additional")

        r = d.kdig("web-1.web." + D, "TXT")
        eq(r.rcode, "NOERROR", "kdig TXT rcode")
        check("aa" in r.flags, "kdig TXT: AA set")
        eq(r.rdata("TXT"), ['"version=1.4"'], "web-1 TXT")

        r = d.dig("web-2.web." + D, "A")
        eq(r.rdata("A"), ["127.0.0.11"], "web-2 instance A")

        r = d.dig("_primary._sub.web." + D, "A")
        eq(r.rcode, "NOERROR", "tag filter A rcode")
        eq(r.rdata("A"), ["127.0.0.10"], "_primary._sub.web A: only web-1")

        r = d.drill("_primary._sub._web._tcp." + D, "SRV")
        eq(r.rcode, "NOERROR", "tag filter SRV rcode")
        eq([x.split()[3] for x in r.rdata("SRV")], ["web-1.web." + D],
           "_primary._sub._web._tcp SRV: only web-1")

        d.must_regctl("deregister", "web", "web-1")
        r = d.dig("web-1.web." + D, "A")
        eq(r.rcode, "NXDOMAIN", "web-1 after deregister")
        r = d.dig("web." + D, "A")
        eq(r.rdata("A"), ["127.0.0.11"], "web A after deregistering web-1")
        r = d.dig("_primary._sub.web." + D, "A")
        eq(r.rdata("A"), [], "tag filter empty after deregister")
        d.must_regctl("deregister", "web", "web-2")
        r = d.dig("web." + D, "A")
        eq(r.rcode, "NXDOMAIN", "web after deregistering every instance")
        r = d.dig("_web._tcp." + D, "SRV")
        eq(r.rcode, "NXDOMAIN", "_web._tcp SRV after deregistering every instance")

        # Registration through the API is visible as soon as the reply arrives.
        status, doc, _ = d.api("PUT", "/v1/services/api/instances/api-1",
                               {"addresses": ["127.0.0.30"], "port": 9000})
        eq(status, 201, "curl PUT new instance")
        eq(doc.get("id") if doc else None, "api-1", "PUT reply id")
        r = d.dig("api." + D, "A")
        eq(r.rcode, "NOERROR", "api A right after PUT")
        eq(r.rdata("A"), ["127.0.0.30"], "api A right after PUT")
        contains(d.dig("api-1.api." + D, "TXT").rdata("TXT"), '""',
                 "instance without meta has one empty TXT string")


main(test)
