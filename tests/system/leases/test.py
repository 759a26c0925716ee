#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
# leases: an instance whose lease runs out without a heartbeat turns critical ("lease
# expired") and disappears from DNS; regctl list still shows it, as critical, until
# health.deregister_after (here 1s) removes it; heartbeats keep one alive; an answer's TTL
# never outlives the lease.

import json
import time

import dns.rcode

from dnsdtest import Dnsd, check, contains, dnsd_config, eq, main, rrs, rrsets, wait_until

D = "service.internal."


def rcode(r):
    return dns.rcode.to_text(r.rcode())


def test():
    config = dnsd_config(health={"deregister_after": "1s"},
                         preservation={"enabled": False})
    with Dnsd(config=config) as d:
        d.must_regctl("register", "short", "short-1", "--addr", "127.0.0.60", "--port", "80",
                      "--ttl", "1")
        t0 = time.monotonic()
        rd = d.dig("short." + D, "A")
        eq(rd.rdata("A"), ["127.0.0.60"], "ttl-1 instance answered right away")
        check(time.monotonic() - t0 < 1.0, "checked within the lease")
        out = d.must_regctl("list", "short")
        check("short-1" in out, "regctl list shows short-1 while leased:\n%s" % out)

        time.sleep(max(0.0, 1.6 - (time.monotonic() - t0)))
        rd = d.dig("short." + D, "A")
        eq(rd.rcode, "NXDOMAIN", "ttl-1 instance gone from DNS 1.6 s later without heartbeat")
        rd = d.dig("short-1.short." + D, "A")
        eq(rd.rcode, "NXDOMAIN", "instance name gone too")
        # Lapsed but not yet removed: listed as critical for deregister_after (1 s).
        out = d.must_regctl("list", "short")
        row = [l for l in out.splitlines() if l.startswith("short-1 ")]
        eq(len(row), 1, "regctl list still shows the lapsed short-1:\n%s" % out)
        contains(row[0], "critical", "lapsed instance is critical")
        contains(row[0], "lease expired", "reason")

        def listed():
            return "short-1" in d.must_regctl("list", "short")

        check(wait_until(lambda: not listed(), 3.0, 0.1),
              "regctl list no longer shows short-1 after deregister_after")
        check(time.monotonic() - t0 >= 1.9, "not removed before lease 1 s + deregister_after 1 s")
        out = d.must_regctl("--json", "list")
        names = [svc["name"] for svc in json.loads(out)["services"]]
        check("short" not in names, "regctl --json list no longer has short: %r" % names)

        # ttl 2, heartbeat every 0.5 s for 4 s: always answered.
        d.must_regctl("register", "kept", "kept-1", "--addr", "127.0.0.61", "--port", "80",
                      "--ttl", "2")
        start = time.monotonic()
        rounds = 0
        while time.monotonic() - start < 4.0:
            d.must_regctl("heartbeat", "kept", "kept-1")
            r = d.query("kept." + D, "A")
            eq(rrs(r, "A"), ["127.0.0.61"], "heartbeated instance answered at %.1f s"
               % (time.monotonic() - start))
            rounds += 1
            time.sleep(0.5)
        check(rounds >= 5, "at least 5 heartbeat rounds (%d)" % rounds)
        out = d.must_regctl("list", "kept")
        check("kept-1" in out, "heartbeated instance still listed:\n%s" % out)

        # DNS TTL never exceeds the remaining lease (dns.ttl is 5, the lease 3).
        d.must_regctl("register", "brief", "brief-1", "--addr", "127.0.0.62", "--port", "80",
                      "--ttl", "3")
        t0 = time.monotonic()
        for name, rtype in (("brief." + D, "A"), ("_brief._tcp." + D, "SRV"),
                            ("brief-1.brief." + D, "A"), ("brief-1.brief." + D, "TXT")):
            r = d.query(name, rtype)
            sets = rrsets(r, rtype)
            eq(len(sets), 1, "%s %s answered" % (name, rtype))
            check(1 <= sets[0].ttl <= 3, "%s %s TTL %d <= lease 3" % (name, rtype, sets[0].ttl))
        time.sleep(max(0.0, 1.3 - (time.monotonic() - t0)))
        r = d.query("brief." + D, "A")
        sets = rrsets(r, "A")
        eq(len(sets), 1, "brief still answered at 1.3 s")
        check(sets[0].ttl <= 2, "TTL %d <= remaining lease (< 2 s) at 1.3 s" % sets[0].ttl)
        rd = d.dig("brief." + D, "A")
        check(all(x.ttl <= 2 for x in rd.answer), "dig TTL <= remaining lease: %r" % rd.answer)


main(test)
